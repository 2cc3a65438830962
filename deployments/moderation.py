"""Moderation replica: the ONNX classifier, batched across concurrent requests.

Deployed twice by the builder, as InputModeration and OutputModeration, each with its own
replicas and user_config (thresholds, disabled categories, fail_open).
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any

from ray import serve

from services.config import ModerationSettings, load_settings
from services.moderation import load_classifier, load_policy
from services.moderation.base import ModerationVerdict, failed_open_verdict

log = logging.getLogger("ray.serve")


class Moderation:
    def __init__(self, settings: dict[str, Any] | None = None):
        self.settings: ModerationSettings = load_settings(settings).moderation
        self.classifier = load_classifier(self.settings.model_dir, self.settings.intra_op_threads)
        self.policy = load_policy(self.settings)
        self.check.set_max_batch_size(self.settings.max_batch_size)
        self.check.set_batch_wait_timeout_s(self.settings.batch_wait_timeout_s)

    def reconfigure(self, user_config: dict[str, Any]) -> None:
        """Thresholds, disabled categories and fail_open change at run time, without a restart."""
        self.settings = self.settings.model_copy(update=user_config)
        self.policy = load_policy(self.settings)
        log.info("moderation policy updated: %s", user_config)

    def _judge(self, texts: list[str]) -> list[ModerationVerdict]:
        try:
            return [self.policy.judge(s) for s in self.classifier.score(texts)]
        except Exception:
            log.exception("classifier failed")
            if self.settings.fail_open:
                return [failed_open_verdict() for _ in texts]
            raise  # the router fails closed

    @serve.batch(max_batch_size=32, batch_wait_timeout_s=0.002)
    async def check(self, texts: list[str]) -> list[ModerationVerdict]:
        # onnxruntime releases the GIL; a thread keeps the replica's event loop responsive.
        return await asyncio.to_thread(self._judge, texts)

    async def check_many(self, texts: list[str]) -> list[ModerationVerdict]:
        """/v1/moderations with several inputs: one classifier call for the whole list."""
        return await asyncio.to_thread(self._judge, texts)

    def categories(self) -> list[str]:
        return list(self.classifier.categories)
