"""chatgate load test: benign chat, streaming chat (TTFT as its own metric), abusive prompts
(expect the template + finish_reason "content_filter"), /v1/moderations, and jobs (submit, poll).

Headless run against a running chatgate (see loadtest/README.md):

    locust -f loadtest/locustfile.py --headless -H http://127.0.0.1:8000 -u 8 -r 4 -t 60s \
        --csv loadtest/out/run --html loadtest/out/report.html \
        --mix benign,stream,abusive,moderation --max-tokens 32 \
        --max-fail-ratio 0.01 --max-p95-ms 20000

The user mix: `--mix` / LOADTEST_MIX, e.g. "benign:4,stream:2,abusive:1" (key[:weight], keys:
benign, stream, abusive, moderation, jobs, or "all"). Default: all but jobs (jobs needs a Celery
worker). Prompt sets: --benign-prompts / --abusive-prompts / --moderation-prompts (files in
loadtest/, one prompt per line). Exit code 1 when the error ratio or the aggregated p95 break
--max-fail-ratio / --max-p95-ms (and when fewer than --min-requests requests were made).
"""
from __future__ import annotations

import os
import random
import sys
import time

from locust import HttpUser, between, events, task  # noqa: F401
import requests

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from loadtest.common import MODEL, USER_CLASSES, check_limits, load_prompts, parse_mix  # noqa: E402
from loadtest.record import install_recorder  # noqa: E402
from tools.sse import StreamTimer, events as sse_events  # noqa: E402


def _mix_from_argv() -> str | None:
    """The mix must be known when this file is imported (locust builds the user list from it)."""
    argv = sys.argv
    for i, a in enumerate(argv):
        if a == "--mix" and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith("--mix="):
            return a.split("=", 1)[1]
    return os.environ.get("LOADTEST_MIX")


MIX = parse_mix(_mix_from_argv())


# Benign chats send a new text almost every time (978 distinct requests): with the 17 of
# prompts_benign.txt most requests would repeat a text the checks' embedding cache already holds,
# which real users' new messages are not, so the load would not pay for moderation.
DEFAULT_PROMPTS = {"benign": "prompts_distinct.txt", "abusive": "prompts_abusive.txt",
                   "moderation": "prompts_moderation.txt"}


@events.init_command_line_parser.add_listener
def _add_options(parser):
    g = parser.add_argument_group("chatgate")
    g.add_argument("--mix", type=str, env_var="LOADTEST_MIX", default="",
                   help="user classes and weights, e.g. benign:4,stream:2,abusive (default: all but jobs)")
    g.add_argument("--max-tokens", type=int, env_var="LOADTEST_MAX_TOKENS", default=32)
    g.add_argument("--moderation-mode", type=str, env_var="LOADTEST_MODERATION_MODE", default="server",
                   choices=["async", "buffered", "server"],
                   help="streaming users' moderation_mode (server, the default: omit it, the operator's mode "
                        "applies; async needs streaming.allow_client_async or a listed key)")
    g.add_argument("--think-time", type=float, env_var="LOADTEST_THINK_TIME", default=1.0,
                   help="each user waits uniform(0, N) seconds between requests")
    g.add_argument("--request-timeout", type=float, env_var="LOADTEST_REQUEST_TIMEOUT", default=120.0)
    g.add_argument("--job-timeout", type=float, env_var="LOADTEST_JOB_TIMEOUT", default=120.0)
    g.add_argument("--benign-prompts", type=str, env_var="LOADTEST_BENIGN_PROMPTS", default=DEFAULT_PROMPTS["benign"])
    g.add_argument("--abusive-prompts", type=str, env_var="LOADTEST_ABUSIVE_PROMPTS", default=DEFAULT_PROMPTS["abusive"])
    g.add_argument("--moderation-prompts", type=str, env_var="LOADTEST_MODERATION_PROMPTS",
                   default=DEFAULT_PROMPTS["moderation"])
    g.add_argument("--max-fail-ratio", type=float, env_var="LOADTEST_MAX_FAIL_RATIO", default=-1.0,
                   help="exit 1 when the failure ratio (0..1) exceeds this (negative: no limit)")
    g.add_argument("--max-p95-ms", type=float, env_var="LOADTEST_MAX_P95_MS", default=0.0,
                   help="exit 1 when the aggregated p95 response time exceeds this many ms (0: no limit)")
    g.add_argument("--min-requests", type=int, env_var="LOADTEST_MIN_REQUESTS", default=1)


PROMPTS: dict[str, list[str]] = {}


@events.init.add_listener
def _load_prompt_sets(environment, **_kw):
    o = environment.parsed_options
    if o is None:
        return
    PROMPTS["benign"] = load_prompts(o.benign_prompts)
    PROMPTS["abusive"] = load_prompts(o.abusive_prompts)
    PROMPTS["moderation"] = load_prompts(o.moderation_prompts)


@events.quitting.add_listener
def _enforce_limits(environment, **_kw):
    o = environment.parsed_options
    total = environment.stats.total
    p95 = total.get_response_time_percentile(0.95) if total.num_requests else None
    problems = check_limits(requests=total.num_requests, fail_ratio=total.fail_ratio, p95_ms=p95,
                            max_fail_ratio=o.max_fail_ratio, max_p95_ms=o.max_p95_ms,
                            min_requests=o.min_requests)
    summary = f"requests={total.num_requests} failures={total.num_failures} fail_ratio={total.fail_ratio:.4f} p95_ms={p95}"
    if problems:
        print(f"LOADTEST LIMITS BROKEN: {'; '.join(problems)} ({summary})", file=sys.stderr)
        environment.process_exit_code = 1
    else:
        print(f"LOADTEST LIMITS OK ({summary})", file=sys.stderr)


class _ChatUser(HttpUser):
    abstract = True

    def wait_time(self):
        return random.uniform(0, max(0.0, self.environment.parsed_options.think_time))

    @property
    def opts(self):
        return self.environment.parsed_options

    def _prompts(self, kind: str) -> list[str]:
        if kind not in PROMPTS:  # e.g. run as a library without the init event
            PROMPTS[kind] = load_prompts(DEFAULT_PROMPTS[kind])
        return PROMPTS[kind]

    def chat_body(self, prompt: str, **kw) -> dict:
        return {"model": MODEL, "messages": [{"role": "user", "content": prompt}],
                "max_tokens": self.opts.max_tokens, "temperature": 0, "seed": random.randrange(1 << 30), **kw}

    @staticmethod
    def _chat_choice(resp) -> tuple[dict, dict] | None:
        """The body and first choice of a chat response, or None after marking the request failed."""
        if resp.status_code != 200:
            resp.failure(f"HTTP {resp.status_code}: {resp.text[:200]}")
            return None
        try:
            data = resp.json()
            return data, data["choices"][0]
        except (ValueError, KeyError, IndexError) as exc:
            resp.failure(f"bad body: {exc!r}")
            return None

    def _fire(self, request_type: str, name: str, started: float, length: int = 0, exc: Exception | None = None,
              response_time_ms: float | None = None, context: dict | None = None):
        self.environment.events.request.fire(
            request_type=request_type, name=name,
            response_time=response_time_ms if response_time_ms is not None else (time.perf_counter() - started) * 1e3,
            response_length=length, exception=exc, context=context or {}, response=None)


class BenignChatUser(_ChatUser):
    """Non-streaming chat with benign prompts: expects a model answer (a block is reported as its own row)."""

    @task
    def chat(self):
        body = self.chat_body(random.choice(self._prompts("benign")))
        with self.client.post("/v1/chat/completions", json=body, name="chat", catch_response=True,
                              timeout=self.opts.request_timeout) as resp:
            parsed = self._chat_choice(resp)
            if parsed is None:
                return
            data, choice = parsed
            if choice.get("finish_reason") == "content_filter":
                resp.request_meta["name"] = "chat [blocked]"  # output moderation caught a benign prompt's answer
            elif not choice["message"].get("content"):
                resp.failure("empty answer")
            else:
                resp.success()


class StreamingChatUser(_ChatUser):
    """Streaming chat (SSE): reports "TTFT" (first content chunk) and "STREAM" (whole stream) rows."""

    def on_start(self):
        # A plain requests session: HttpSession's own reporting would time only the headers of a stream.
        self.raw = requests.Session()

    def on_stop(self):
        self.raw.close()

    @task
    def stream(self):
        extra = {"stream": True, "stream_options": {"include_usage": True}}
        if self.opts.moderation_mode != "server":
            extra["moderation_mode"] = self.opts.moderation_mode
        body = self.chat_body(random.choice(self._prompts("benign")), **extra)
        started = time.perf_counter()
        timer = StreamTimer(t0=started)
        status = retry_after = None
        try:
            with self.raw.request("POST", self.host.rstrip("/") + "/v1/chat/completions",
                                  json=body, stream=True, timeout=self.opts.request_timeout) as resp:
                status, retry_after = resp.status_code, resp.headers.get("retry-after")
                if resp.status_code != 200:
                    raise RuntimeError(f"HTTP {resp.status_code}: {resp.text[:200]}")
                for chunk in sse_events(resp.iter_lines(decode_unicode=True)):
                    timer.add(chunk)
            if timer.finish_reason is None:
                raise RuntimeError("stream ended without a finish_reason")
        except Exception as exc:  # noqa: BLE001 - every failure is a locust failure
            self._fire("STREAM", "chat stream", started, len(timer.text), exc,
                       context={"status": status, "retry_after": retry_after})
            return
        if timer.ttft is not None:
            self._fire("TTFT", "chat stream first token", started, 0, None, response_time_ms=timer.ttft * 1e3)
        name = "chat stream" + (" [blocked]" if timer.finish_reason == "content_filter" else "")
        self._fire("STREAM", name, started, len(timer.text), context={"status": status})


class AbusiveChatUser(_ChatUser):
    """Prompts the input classifier blocks: expects the template, finish_reason content_filter."""

    @task
    def abusive(self):
        body = self.chat_body(random.choice(self._prompts("abusive")))
        with self.client.post("/v1/chat/completions", json=body, name="chat abusive", catch_response=True,
                              timeout=self.opts.request_timeout) as resp:
            parsed = self._chat_choice(resp)
            if parsed is None:
                return
            data, choice = parsed
            if choice.get("finish_reason") != "content_filter":
                resp.failure(f"not blocked: finish_reason={choice.get('finish_reason')!r}")
            elif "chatgate_moderation" not in data:
                resp.failure("no chatgate_moderation field")
            elif not (choice.get("message") or {}).get("content"):
                resp.failure("empty template answer")
            else:
                resp.success()


class ModerationUser(_ChatUser):
    """POST /v1/moderations with one text."""

    @task
    def moderate(self):
        text = random.choice(self._prompts("moderation"))
        with self.client.post("/v1/moderations", json={"input": text}, name="moderations", catch_response=True,
                              timeout=self.opts.request_timeout) as resp:
            if resp.status_code != 200:
                resp.failure(f"HTTP {resp.status_code}: {resp.text[:200]}")
                return
            try:
                result = resp.json()["results"][0]
                ok = isinstance(result["flagged"], bool) and isinstance(result["category_scores"], dict)
            except (ValueError, KeyError, IndexError, TypeError) as exc:
                resp.failure(f"bad body: {exc!r}")
                return
            resp.success() if ok else resp.failure("bad result shape")


class JobsUser(_ChatUser):
    """POST /v1/jobs (one chat request), poll GET /v1/jobs/{id} to a terminal status; "JOB" row = submit -> done."""

    @task
    def job(self):
        body = self.chat_body(random.choice(self._prompts("benign")))
        started = time.perf_counter()
        with self.client.post("/v1/jobs", json=body, name="jobs submit", catch_response=True,
                              timeout=self.opts.request_timeout) as resp:
            if resp.status_code not in (200, 202):
                resp.failure(f"HTTP {resp.status_code}: {resp.text[:200]}")
                return
            try:
                job_id = resp.json()["id"]
            except (ValueError, KeyError) as exc:
                resp.failure(f"bad body: {exc!r}")
                return
        deadline = time.monotonic() + self.opts.job_timeout
        status = "queued"
        while time.monotonic() < deadline:
            time.sleep(0.5)
            with self.client.get(f"/v1/jobs/{job_id}", name="jobs poll", catch_response=True,
                                 timeout=self.opts.request_timeout) as poll:
                if poll.status_code != 200:
                    poll.failure(f"HTTP {poll.status_code}: {poll.text[:200]}")
                    continue
                status = poll.json().get("status")
            if status in ("succeeded", "failed", "cancelled"):
                break
        exc = None if status == "succeeded" else RuntimeError(f"job {job_id} ended {status!r}")
        self._fire("JOB", "job completion", started, 0, exc, context={"job_id": job_id, "job_status": status})


install_recorder(events)

# Apply the mix: classes outside it become abstract (locust skips them); weights from the mix.
for _key, (_cls_name, _w) in USER_CLASSES.items():
    _cls = globals()[_cls_name]
    if _key in MIX:
        _cls.weight = MIX[_key]
    else:
        _cls.abstract = True
del _key, _cls_name, _w, _cls
