"""The fault suite's own PostgreSQL: it starts, dies like a crash, and comes back with its data."""
from __future__ import annotations

import psycopg
import pytest

from tools.faults.components import PostgresServer, replica_processes

pytestmark = pytest.mark.integration


def test_private_postgres_crashes_and_restarts():
    pg = PostgresServer().init()
    try:
        with psycopg.connect(pg.dsn, autocommit=True) as c:
            c.execute("CREATE TABLE t (x int)")
            c.execute("INSERT INTO t VALUES (1)")
        pg.kill()
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(pg.dsn, connect_timeout=2)
        pg.start()
        with psycopg.connect(pg.dsn) as c:
            assert c.execute("SELECT x FROM t").fetchall() == [(1,)]
    finally:
        pg.destroy()
    assert not pg.dir.exists()


def test_no_replica_matches_a_deployment_that_does_not_run():
    assert replica_processes("NoSuchDeployment") == []
