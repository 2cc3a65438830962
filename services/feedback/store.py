"""PostgreSQL tables for completion records and feedback, beside the audit table (chatgate_audit).

  chatgate_completions         one row per completion: who asked (api key id), prompt digest, messages*
  chatgate_completion_choices  one row per choice: moderation outcome, categories, template, text digest, text*
  chatgate_feedback            ratings (per choice) and preferences (rankings of answers to one prompt)
(* only when the operator keeps texts, the audit's rule.) The completion id is the audit's
request_id, so `JOIN chatgate_audit a ON a.request_id = c.completion_id` gives every moderation
decision behind an answer. Tables are created idempotently on first use.
"""
from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

T = TypeVar("T")
COMPLETIONS, CHOICES, FEEDBACK = "chatgate_completions", "chatgate_completion_choices", "chatgate_feedback"

DDL = f"""
CREATE TABLE IF NOT EXISTS {COMPLETIONS} (
    completion_id  text PRIMARY KEY,
    api_key_id     text,
    model          text NOT NULL,
    created        timestamptz NOT NULL,
    recorded_at    timestamptz NOT NULL DEFAULT now(),
    prompt_sha256  text NOT NULL,
    prompt_chars   integer NOT NULL,
    messages       jsonb
);
CREATE INDEX IF NOT EXISTS {COMPLETIONS}_created_idx ON {COMPLETIONS} (created DESC);
CREATE TABLE IF NOT EXISTS {CHOICES} (
    completion_id     text NOT NULL REFERENCES {COMPLETIONS} ON DELETE CASCADE,
    choice_index      integer NOT NULL,
    outcome           text NOT NULL CHECK (outcome IN ('answered', 'input_blocked', 'output_blocked', 'error')),
    categories        text[] NOT NULL DEFAULT '{{}}',
    template_category text,
    text_sha256       text NOT NULL,
    text_chars        integer NOT NULL,
    text              text,
    PRIMARY KEY (completion_id, choice_index)
);
CREATE TABLE IF NOT EXISTS {FEEDBACK} (
    id            bigserial PRIMARY KEY,
    feedback_id   text NOT NULL UNIQUE,
    kind          text NOT NULL CHECK (kind IN ('rating', 'preference')),
    -- what is judged ("<completion>#<index>" or the sorted ranked answers): sending again replaces
    subject       text NOT NULL,
    api_key_id    text,
    completion_id text NOT NULL REFERENCES {COMPLETIONS} ON DELETE CASCADE,
    choice_index  integer,
    verdict       text CHECK (verdict IN ('positive', 'negative', 'neutral')),
    score         smallint,
    ranking       jsonb,  -- [[completion_id, index], ...] best first
    reason_sha256 text,
    reason        text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (kind, subject),
    FOREIGN KEY (completion_id, choice_index) REFERENCES {CHOICES} ON DELETE CASCADE
);
"""


class FeedbackStore:
    """One connection, serialised by a lock, re-opened after errors (as the audit store)."""

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
                self._conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (FEEDBACK,))
                self._conn.execute(DDL)
            self._schema_ready = True
        return self._conn

    def _run(self, fn: Callable[[psycopg.Connection], T]) -> T:
        with self._lock:
            try:
                return fn(self._connection())
            except psycopg.OperationalError:
                self._close_unlocked()
                raise

    # -- completions (written by the recorder) ---------------------------------------------------
    def insert_completions(self, rows: Iterable[dict[str, Any]]) -> int:
        """Already-redacted completion rows (with their "choices"), one transaction; idempotent."""
        rows = list(rows)

        def write(conn: psycopg.Connection) -> int:
            with conn.transaction(), conn.cursor() as cur:
                cur.executemany(
                    f"INSERT INTO {COMPLETIONS} (completion_id, api_key_id, model, created, prompt_sha256, "
                    "prompt_chars, messages) VALUES (%s, %s, %s, to_timestamp(%s), %s, %s, %s) "
                    "ON CONFLICT (completion_id) DO NOTHING",
                    [(r["completion_id"], r["api_key_id"], r["model"], r["created"], r["prompt_sha256"],
                      r["prompt_chars"], None if r["messages"] is None else Jsonb(r["messages"])) for r in rows])
                cur.executemany(
                    f"INSERT INTO {CHOICES} (completion_id, choice_index, outcome, categories, template_category, "
                    "text_sha256, text_chars, text) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                    [(r["completion_id"], c["index"], c["outcome"], c["categories"], c["template_category"],
                      c["text_sha256"], c["text_chars"], c["text"]) for r in rows for c in r["choices"]])
            return len(rows)

        return self._run(write)

    def completions(self, ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """{completion_id: {..., "choices": {index: {...}}}} for the ids that exist."""
        ids = sorted(set(ids))

        def read(conn: psycopg.Connection) -> dict[str, dict[str, Any]]:
            found = {r["completion_id"]: {**r, "choices": {}} for r in conn.execute(
                f"SELECT * FROM {COMPLETIONS} WHERE completion_id = ANY(%s)", (ids,)).fetchall()}
            for c in conn.execute(f"SELECT * FROM {CHOICES} WHERE completion_id = ANY(%s) ORDER BY choice_index",
                                  (ids,)).fetchall():
                if c["completion_id"] in found:  # committed between the two reads: next time
                    found[c["completion_id"]]["choices"][c["choice_index"]] = c
            return found

        return self._run(read)

    # -- feedback ----------------------------------------------------------------------------------
    def upsert_feedback(self, row: dict[str, Any]) -> tuple[str, bool]:
        """Insert, or replace the earlier judgement of the same subject. Returns (feedback_id, created)."""
        cols = ("feedback_id", "kind", "subject", "api_key_id", "completion_id", "choice_index", "verdict",
                "score", "ranking", "reason_sha256", "reason")
        values = {**row, "feedback_id": "fb-" + uuid.uuid4().hex}
        if values.get("ranking") is not None:
            values["ranking"] = Jsonb(values["ranking"])
        updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in cols[5:])
        sql = (f"INSERT INTO {FEEDBACK} ({', '.join(cols)}) VALUES ({', '.join(['%s'] * len(cols))}) "
               f"ON CONFLICT (kind, subject) DO UPDATE SET {updates}, updated_at = now() "
               "RETURNING feedback_id, (xmax = 0) AS created")
        got = self._run(lambda conn: conn.execute(sql, [values.get(c) for c in cols]).fetchone())
        assert got is not None
        return got["feedback_id"], bool(got["created"])

    def feedback(self, *, kind: str | None = None, completion_id: str | None = None) -> list[dict[str, Any]]:
        where, args = [], []
        if kind:
            where.append("kind = %s")
            args.append(kind)
        if completion_id:
            where.append("completion_id = %s")
            args.append(completion_id)
        sql = f"SELECT * FROM {FEEDBACK}" + (f" WHERE {' AND '.join(where)}" if where else "") + " ORDER BY id"
        return self._run(lambda conn: conn.execute(sql, args).fetchall())

    def judged_completion_ids(self) -> list[str]:
        """Every completion some feedback refers to (rated, or named in a ranking)."""
        sql = (f"SELECT completion_id FROM {FEEDBACK} UNION "
               f"SELECT r->>0 FROM {FEEDBACK}, jsonb_array_elements(COALESCE(ranking, '[]'::jsonb)) r")
        return [r["completion_id"] for r in self._run(lambda conn: conn.execute(sql).fetchall())]

    def _close_unlocked(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:
                pass
        self._conn = None

    def close(self) -> None:
        with self._lock:
            self._close_unlocked()
