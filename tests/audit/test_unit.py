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
async def test_publish_never_blocks_or_raises_when_broker_is_down(monkeypatch):
    from services.audit.publisher import DROPPED

    gate, entered = threading.Event(), threading.Event()

    def stuck(_payload):
        entered.set()
        gate.wait(20)  # a broker that hangs until the test releases it
        raise ConnectionError("down")

    dropped_before = DROPPED.labels(reason="queue_full")._value.get()
    p = AuditPublisher(_settings(monkeypatch, publish_queue_size=2), sender=stuck)
    await p.publish(_event())
    assert entered.wait(5)
    for _ in range(9):  # more than the queue holds: the rest are dropped, not waited for
        await p.publish(_event())
    # Every publish returned while the sender was still stuck: nothing waited on the broker.
    assert not gate.is_set()
    assert DROPPED.labels(reason="queue_full")._value.get() - dropped_before == 7
    gate.set()
    assert p.flush(10)
    p.close()


async def test_publish_disabled_sends_nothing(monkeypatch):
    sent = []
    p = AuditPublisher(_settings(monkeypatch, enabled="false"), sender=sent.append)
    await p.publish(_event())
    await asyncio.sleep(0.05)
    assert sent == []
