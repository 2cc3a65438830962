"""The spool (files) and the dead-letter list (a real Redis): parked events come back, in order,
and an entry is removed only after its write succeeded."""
from __future__ import annotations

import pytest
import redis

from services.audit.parking import DeadLetters, Spool


def test_spool_drains_oldest_first_and_keeps_what_failed(tmp_path):
    spool = Spool(tmp_path / "spool")
    assert len(spool) == 0 and spool.drain(lambda e: None) == 0  # no folder yet
    for i in range(3):
        spool.put({"event_id": f"e{i}", "n": i})
    got = []

    def flaky(event):
        if event["n"] == 1:
            raise ConnectionError("down again")
        got.append(event["n"])

    with pytest.raises(ConnectionError):
        spool.drain(flaky)
    assert got == [0] and sorted(p.stem for p in spool.paths()) == ["e1", "e2"]
    assert spool.drain(lambda e: got.append(e["n"])) == 2 and got == [0, 1, 2] and len(spool) == 0


@pytest.mark.integration
def test_dead_letters_in_redis(redis_server):
    r = redis.Redis(port=redis_server.port)
    dead = DeadLetters(r, "test:deadletter")
    for i in range(4):
        dead.put({"event_id": f"e{i}"})
    written = []

    def write(event):
        if event["event_id"] == "e2":
            raise OSError("postgres down")
        written.append(event["event_id"])

    with pytest.raises(OSError):
        dead.drain(write)
    assert written == ["e0", "e1"] and len(dead) == 2
    assert dead.drain(written.append) == 2 and written[2:] == [{"event_id": "e2"}, {"event_id": "e3"}]
    assert len(dead) == 0
