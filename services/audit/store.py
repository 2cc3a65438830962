"""PostgreSQL audit store (psycopg 3).

Why PostgreSQL rather than a Redis stream: audit records must outlive Redis restarts and memory
pressure without special persistence settings, operators query them by time, stage, category and
request id (indexes, SQL), and retention is a plain DELETE. Writes are idempotent on event_id,
so a re-delivered audit task does not duplicate a row.
"""
from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

TABLE = "chatgate_audit"

DDL = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    id                bigserial PRIMARY KEY,
    event_id          text NOT NULL UNIQUE,
    ts                timestamptz NOT NULL,
    recorded_at       timestamptz NOT NULL DEFAULT now(),
    request_id        text,
    stage             text NOT NULL CHECK (stage IN ('input', 'output')),
    flagged           boolean NOT NULL,
    categories        text[] NOT NULL DEFAULT '{{}}',
    scores            jsonb NOT NULL DEFAULT '{{}}'::jsonb,
    template_category text,
    template_language text,
    model             text,
    text_sha256       text,
    text_chars        integer,
    text              text
);
CREATE INDEX IF NOT EXISTS {TABLE}_ts_idx ON {TABLE} (ts DESC);
CREATE INDEX IF NOT EXISTS {TABLE}_request_idx ON {TABLE} (request_id);
"""

COLUMNS = ("event_id", "ts", "request_id", "stage", "flagged", "categories", "scores", "template_category",
           "template_language", "model", "text_sha256", "text_chars", "text")


class AuditStore:
    """One connection per store, serialised by a lock, re-opened after errors."""

    def __init__(self, dsn: str, *, connect_timeout_s: int = 5):
        self.dsn = dsn
        self.connect_timeout_s = connect_timeout_s
        self._conn: psycopg.Connection | None = None
        self._lock = threading.Lock()
        self._schema_ready = False

    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = psycopg.connect(self.dsn, autocommit=True, connect_timeout=self.connect_timeout_s,
                                         row_factory=dict_row)
            self._schema_ready = False
        if not self._schema_ready:
            with self._conn.transaction():
                # Serialise concurrent first-time creation across workers.
                self._conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (TABLE,))
                self._conn.execute(DDL)
            self._schema_ready = True
        return self._conn

    def _run(self, fn):
        with self._lock:
            try:
                return fn(self._connection())
            except psycopg.OperationalError:
                self.close_unlocked()
                raise

    def insert(self, event: dict[str, Any]) -> bool:
        """Write one (already redacted) event; False if this event_id was already stored."""
        row = dict(event)
        row["scores"] = Jsonb(row.get("scores") or {})
        row["categories"] = list(row.get("categories") or [])
        values = [row.get(c) for c in COLUMNS]
        sql = (f"INSERT INTO {TABLE} ({', '.join(COLUMNS)}) VALUES ({', '.join(['%s'] * len(COLUMNS))}) "
               "ON CONFLICT (event_id) DO NOTHING")
        return self._run(lambda conn: conn.execute(sql, values).rowcount == 1)

    def recent(self, *, limit: int = 20, stage: str | None = None, flagged: bool | None = None,
               request_id: str | None = None, since: datetime | None = None) -> list[dict[str, Any]]:
        where, args = [], []
        if stage:
            where.append("stage = %s")
            args.append(stage)
        if flagged is not None:
            where.append("flagged = %s")
            args.append(flagged)
        if request_id:
            where.append("request_id = %s")
            args.append(request_id)
        if since:
            where.append("ts >= %s")
            args.append(since)
        sql = (f"SELECT id, {', '.join(COLUMNS)}, recorded_at FROM {TABLE}"
               + (f" WHERE {' AND '.join(where)}" if where else "")
               + " ORDER BY ts DESC, id DESC LIMIT %s")
        args.append(int(limit))
        return self._run(lambda conn: conn.execute(sql, args).fetchall())

    def prune(self, older_than_days: float) -> int:
        cutoff = datetime.now(timezone.utc) - timedelta(days=older_than_days)
        return self._run(lambda conn: conn.execute(f"DELETE FROM {TABLE} WHERE ts < %s", (cutoff,)).rowcount)

    def close_unlocked(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:
                pass
        self._conn = None

    def close(self) -> None:
        with self._lock:
            self.close_unlocked()
