"""The worker's way into the moderated pipeline: the Serve app's own HTTP endpoint.

No second copy of the moderation/generation logic: a job item is exactly one
`POST {router_url}/v1/chat/completions` (non-streaming).
"""
from __future__ import annotations

from typing import Any

import httpx

# Transient: the same request may succeed later (timeout, overload, a hop restarting).
RETRYABLE_STATUS = frozenset({408, 429, 502, 503, 504})
# The category a fail-closed guard reports when the classifier could not run: an outage, not a verdict.
MODERATION_UNAVAILABLE = "moderation_unavailable"


class RetryableError(Exception):
    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class ItemFailed(Exception):
    def __init__(self, status: int | None, body: Any, code: str):
        super().__init__(f"{code}: {status}")
        self.status, self.body, self.code = status, body, code

    def error(self) -> dict[str, Any]:
        err = self.body.get("error") if isinstance(self.body, dict) else None
        message = (err or {}).get("message") if isinstance(err, dict) else None
        return {"code": self.code, "status": self.status, "message": message or str(self.body)[:500]}


def _retry_after(resp: httpx.Response) -> float | None:
    raw = resp.headers.get("retry-after")
    try:
        return max(0.0, float(raw)) if raw is not None else None
    except ValueError:
        return None


def _moderation_unavailable(payload: Any) -> bool:
    if not isinstance(payload, dict):
        return False
    err = payload.get("error")
    if isinstance(err, dict) and err.get("code") == MODERATION_UNAVAILABLE:
        return True
    mod = payload.get("chatgate_moderation") or {}
    return MODERATION_UNAVAILABLE in (mod.get("categories") or [])


def call_chat(client: httpx.Client, router_url: str, body: dict[str, Any], *, request_id: str,
              timeout_s: float, api_key: str = "") -> dict[str, Any]:
    """One chat completion through the Serve app. Raises RetryableError or ItemFailed."""
    headers = {"X-Request-ID": request_id, "X-Chatgate-Job": "1"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    try:
        resp = client.post(
            f"{router_url}/v1/chat/completions", json={**body, "stream": False}, headers=headers,
            timeout=httpx.Timeout(timeout_s, connect=min(10.0, timeout_s)),
        )
    except httpx.ConnectTimeout as exc:
        raise RetryableError("pipeline unreachable: connect timeout") from exc
    except httpx.TimeoutException as exc:
        raise TimeoutError(f"pipeline call timed out after {timeout_s:.0f}s") from exc
    except httpx.TransportError as exc:
        raise RetryableError(f"pipeline unreachable: {type(exc).__name__}: {exc}") from exc
    try:
        payload = resp.json()
    except ValueError:
        payload = resp.text
    if resp.status_code in RETRYABLE_STATUS:
        raise RetryableError(f"pipeline answered {resp.status_code}", _retry_after(resp))
    if _moderation_unavailable(payload):  # a fail-closed block is an outage: ask again later
        raise RetryableError(f"moderation unavailable ({resp.status_code})", _retry_after(resp))
    if resp.status_code != 200 or not isinstance(payload, dict) or "choices" not in payload:
        code = "pipeline_rejected" if 400 <= resp.status_code < 500 else "pipeline_error"
        raise ItemFailed(resp.status_code, payload, code)
    return payload
