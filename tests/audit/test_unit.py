"""Audit unit tests: hashing/redaction, sampling, fire-and-forget publishing — no network."""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import threading

import pytest

from services.audit import AuditEvent, AuditPublisher
from services.audit.events import redacted, text_digest
from services.config import load_settings


def _event(**kw) -> AuditEvent:
    base = dict(request_id="r1", stage="input", flagged=True, categories=["harassment"],
                scores={"harassment": 0.9}, template_category="harassment", template_language="en",
                model="m", text="secret words")
    base.update(kw)
    return AuditEvent(**base)


def test_redaction_hashes_and_drops_text_by_default():
    safe = redacted(_event(), store_text=False)
    assert safe.text is None
    assert safe.text_sha256 == "sha256:" + hashlib.sha256(b"secret words").hexdigest()
    assert safe.text_chars == len("secret words")
    assert "secret words" not in safe.model_dump_json()


def test_redaction_keeps_text_when_configured_and_hmac_key():
    kept = redacted(_event(), store_text=True, hash_key="k")
    assert kept.text == "secret words"
    assert kept.text_sha256 == "hmac-sha256:" + hmac.new(b"k", b"secret words", hashlib.sha256).hexdigest()
    assert text_digest("a") != text_digest("b")


def test_redaction_idempotent_on_already_redacted():
    once = redacted(_event(), store_text=False)
    assert redacted(once, store_text=False) == once


def test_event_defaults():
    e = _event()
    assert e.ts.tzinfo is not None and len(e.event_id) == 32
    with pytest.raises(ValueError):
        AuditEvent(stage="middle", flagged=True)
    # The Router passes ts as epoch seconds.
    assert AuditEvent(ts=0.0, stage="input", flagged=False).ts.isoformat() == "1970-01-01T00:00:00+00:00"


def _settings(monkeypatch, **audit):
    for k, v in audit.items():
        monkeypatch.setenv(f"CHATGATE_AUDIT__{k.upper()}", str(v))
    return load_settings()


def test_should_record(monkeypatch):
    p = AuditPublisher(_settings(monkeypatch, sample_pass_rate=0.0), sender=lambda _: None)
    assert p.should_record(True) is True
    assert not any(p.should_record(False) for _ in range(200))
    p = AuditPublisher(_settings(monkeypatch, sample_pass_rate=1.0), sender=lambda _: None)
    assert all(p.should_record(False) for _ in range(50))
    p = AuditPublisher(_settings(monkeypatch, sample_pass_rate=0.5), sender=lambda _: None)
    hits = sum(p.should_record(False) for _ in range(2000))
    assert 800 < hits < 1200
    p = AuditPublisher(_settings(monkeypatch, enabled="false"), sender=lambda _: None)
    assert p.should_record(True) is False


async def test_publish_sends_redacted_payload(monkeypatch):
    sent = []
    p = AuditPublisher(_settings(monkeypatch), sender=sent.append)
    await p.publish(_event())
    assert p.flush(5)
    assert len(sent) == 1
    assert sent[0]["text"] is None and sent[0]["text_sha256"].startswith("sha256:")
    assert sent[0]["stage"] == "input" and sent[0]["categories"] == ["harassment"]
    p.close()


@pytest.mark.timeout(30)
async def test_publish_never_blocks_and_spools_what_the_queue_cannot_hold(monkeypatch, tmp_path):
    gate, entered = threading.Event(), threading.Event()
    sent = []

    def stuck(payload):
        entered.set()
        gate.wait(20)  # a broker that hangs until the test releases it
        sent.append(payload)

    p = AuditPublisher(_settings(monkeypatch, publish_queue_size=2, spool_dir=tmp_path), sender=stuck)
    events = [_event() for _ in range(10)]
    await p.publish(events[0])
    assert entered.wait(5)
    for e in events[1:]:  # more than the queue holds: the rest are spooled, not waited for
        await p.publish(e)
    # Every publish returned while the sender was still stuck: nothing waited on the broker.
    assert not gate.is_set()
    assert len(p.spool) == 7
    gate.set()
    assert p.flush(10)
    await p.publish(_event())  # a later success replays the spool through the broker
    assert p.flush(10)
    assert wait_for_value(lambda: len(p.spool) == 0)
    p.close()
    assert {e.event_id for e in events} <= {x["event_id"] for x in sent}


def wait_for_value(pred, timeout_s: float = 5.0) -> bool:
    import time

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.02)
    return pred()


async def test_broker_down_writes_to_postgres_and_both_down_spools(monkeypatch, tmp_path):
    def down(_payload):
        raise ConnectionError("broker down")

    direct = []
    p = AuditPublisher(_settings(monkeypatch, spool_dir=tmp_path), sender=down, direct=direct.append)
    e = _event()
    await p.publish(e)
    assert p.flush(5)
    assert [x["event_id"] for x in direct] == [e.event_id] and len(p.spool) == 0

    def pg_down(_payload):
        raise OSError("postgres down")

    p2 = AuditPublisher(_settings(monkeypatch, spool_dir=tmp_path), sender=down, direct=pg_down)
    e2 = _event()
    await p2.publish(e2)
    assert p2.flush(5)
    assert [path.stem for path in p2.spool.paths()] == [e2.event_id]
    assert "secret words" not in p2.spool.paths()[0].read_text()  # parked redacted, like it is sent
    p.close()
    p2.close()


async def test_close_spools_what_was_not_sent(monkeypatch, tmp_path):
    gate = threading.Event()
    p = AuditPublisher(_settings(monkeypatch, spool_dir=tmp_path, flush_timeout_s=0.5),
                       sender=lambda _p: gate.wait(10) and None)
    for _ in range(4):
        await p.publish(_event())
    p.close()  # the sender is stuck on the first event: the other three are spooled at once
    assert len(p.spool) == 3
    gate.set()


async def test_publish_disabled_sends_nothing(monkeypatch):
    sent = []
    p = AuditPublisher(_settings(monkeypatch, enabled="false"), sender=sent.append)
    await p.publish(_event())
    await asyncio.sleep(0.05)
    assert sent == []
