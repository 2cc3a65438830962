"""services.moderation.policy_mirror: the first read is awaited (and its failure raises: the guard
fails closed), later reads happen in the background, and a failed one keeps the last policy."""
from __future__ import annotations

import asyncio

import pytest

from services.moderation.base import ModerationPolicy
from services.moderation.policy_mirror import PolicyMirror

pytestmark = pytest.mark.asyncio


class Source:
    def __init__(self):
        self.policy: ModerationPolicy | Exception = ModerationPolicy(thresholds={"hate": 0.3})
        self.reads = 0

    async def fetch(self) -> ModerationPolicy:
        self.reads += 1
        if isinstance(self.policy, Exception):
            raise self.policy
        return self.policy


async def test_first_read_failure_raises_then_a_later_call_reads_again():
    source = Source()
    source.policy = ConnectionError("deployment down")
    mirror = PolicyMirror(source.fetch, refresh_s=60)
    with pytest.raises(ConnectionError):
        await mirror.get()
    source.policy = ModerationPolicy(thresholds={"hate": 0.3})
    assert (await mirror.get()).threshold("hate") == 0.3


async def test_refreshes_in_the_background_and_keeps_the_last_policy_when_a_read_fails():
    source = Source()
    mirror = PolicyMirror(source.fetch, refresh_s=0.01)
    assert (await mirror.get()).threshold("hate") == 0.3
    await asyncio.sleep(0.02)
    source.policy = ModerationPolicy(thresholds={"hate": 0.9})
    assert (await mirror.get()).threshold("hate") == 0.3  # this call starts the re-read, does not wait
    await asyncio.sleep(0.01)
    assert (await mirror.get()).threshold("hate") == 0.9
    await asyncio.sleep(0.02)
    source.policy = ConnectionError("deployment down")
    await mirror.get()
    await asyncio.sleep(0.01)
    assert (await mirror.get()).threshold("hate") == 0.9 and source.reads >= 3
