"""Shared by tests/feedback and tests/web: a private PostgreSQL schema per test."""
from __future__ import annotations

import os
import uuid

import pytest


PG_BASE_DSN = os.environ.get("CHATGATE_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture
def feedback_pg():
    """A fresh private schema in the `test` database; the DSN sets search_path to it."""
    import psycopg

    schema = f"chatgate_fb_{uuid.uuid4().hex[:10]}"
    try:
        with psycopg.connect(PG_BASE_DSN, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL at {PG_BASE_DSN} is required for this test: {exc}")
    yield f"{PG_BASE_DSN}?options=-csearch_path%3D{schema}"
    with psycopg.connect(PG_BASE_DSN, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")
