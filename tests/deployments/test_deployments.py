"""The Ray Serve wrappers with injected fakes (no Ray cluster): what they bind, batch and validate."""
from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from services.config import Settings
from services.observability.metrics import PipelineMetrics
from tests.pipeline.fakes import FakeStages, keyword_verdict


# serve.batch keeps its queue per method (class level), bound to the loop that first used it, as in
# a replica: these tests share one loop.
pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest.fixture(autouse=True)
def no_replica_context(monkeypatch):
    """serve.batch asks the replica context for max_ongoing_requests; there is none in a unit test."""
    from ray.serve import batching

    monkeypatch.setattr(batching._BatchQueue, "_warn_if_max_batch_size_exceeds_max_ongoing_requests", lambda self: None)


class FakeScanner:
    def __init__(self):
        self.input_calls: list[list[list[str]]] = []
        self.answer_calls: list[list[tuple[str, str]]] = []

    def _scores(self, text: str) -> dict[str, float]:
        return {"harassment": 0.9 if "idiot" in text else 0.1, "violence": 0.0}

    def scan_inputs(self, conversations):
        self.input_calls.append([list(c) for c in conversations])
        return [self._scores(" ".join(c)) for c in conversations]

    def scan_answers(self, pairs):
        self.answer_calls.append(list(pairs))
        return [self._scores(answer) for _, answer in pairs]


@pytest.fixture
def moderation(monkeypatch):
    import deployments.moderation as mod

    scanner = FakeScanner()
    monkeypatch.setattr(mod, "load_scanner", lambda settings: scanner)
    # cpu_niceness 0 whatever the default: the replica would lower this test process's priority
    return mod.Moderation(Settings().moderation.model_copy(update={"cpu_niceness": 0})), scanner


async def test_moderation_batches_conversations_across_requests(moderation):
    replica, scanner = moderation
    verdicts = await asyncio.gather(replica.moderate_input(["hi", "you idiot"]), replica.moderate_input(["hello"]))
    assert [v.flagged for v in verdicts] == [True, False]
    assert len(scanner.input_calls) == 1 and len(scanner.input_calls[0]) == 2  # one model call for both


async def test_moderation_judges_answer_windows_against_their_request(moderation):
    replica, scanner = moderation
    verdicts = await replica.moderate_output("what am I?", ["A fine window.", "An idiot window."])
    assert [v.flagged for v in verdicts] == [False, True]
    assert scanner.answer_calls[0] == [("what am I?", "A fine window."), ("what am I?", "An idiot window.")]


async def test_moderation_reconfigure_is_typed(moderation):
    replica, _ = moderation
    replica.reconfigure({"thresholds": {"harassment": 0.95}})
    assert not (await replica.moderate_input(["you idiot"])).flagged
    with pytest.raises(ValidationError):  # fail_open moved to the Router's guard: refused loudly here
        replica.reconfigure({"fail_open": True})


async def test_a_direction_the_router_checks_loads_its_scanner_on_first_use(monkeypatch):
    import deployments.moderation as mod

    loads: list[FakeScanner] = []
    monkeypatch.setattr(mod, "load_scanner", lambda settings: loads.append(FakeScanner()) or loads[-1])
    settings = Settings().moderation.model_copy(update={"cpu_niceness": 0, "router_checks": ["input", "output"]})
    assert mod.Moderation(settings, "input") and len(loads) == 1  # serves /v1/moderations: loaded at start
    output = mod.Moderation(settings, "output")
    assert len(loads) == 1 and output.current_policy() is output.policy  # the policy needs no scanner
    verdicts = await output.moderate_output("q", ["An idiot window."])
    assert [v.flagged for v in verdicts] == [True] and len(loads) == 2
    await output.moderate_output("q", ["fine"])
    assert len(loads) == 2  # loaded once
    mod.Moderation(settings.model_copy(update={"router_checks": ["input"]}), "output")
    assert len(loads) == 3  # the hop serves this direction: loaded at start


# -- Router over fake handles -------------------------------------------------------------------
class _Call:
    def __init__(self, result):
        self.result = result
        self.cancelled = False

    def __await__(self):
        async def run():
            value = self.result() if callable(self.result) else self.result
            return await value if asyncio.iscoroutine(value) else value
        return run().__await__()

    def __aiter__(self):
        return self.result.__aiter__()

    def cancel(self):
        self.cancelled = True


class FakeHandle:
    """Just enough of a DeploymentHandle: `.method.remote(...)` and `.options(stream=True)`."""

    def __init__(self, target: Any):
        self.target = target

    def options(self, **_):
        return self

    def __getattr__(self, name):
        method = getattr(self.target, name)

        class Remote:
            @staticmethod
            def remote(*args, **kw):
                return _Call(lambda: method(*args, **kw)) if name != "stream" else _Call(method(*args, **kw))

        return Remote()


class FakeGeneratorReplica:
    def __init__(self, stages: FakeStages):
        self.stages = stages

    def stream(self, request):
        return self.stages.generate(request)

    async def abort(self, request_id):
        self.aborted = [*getattr(self, "aborted", []), request_id]

    async def stats(self):
        return {"requests_started": self.stages.generate_calls, "unfinished_requests": 0}


class FakeModerationReplica:
    async def moderate_input(self, texts):
        return keyword_verdict(" ".join(texts))

    async def moderate_output(self, request, texts):
        return [keyword_verdict(t) for t in texts]

    async def moderate_many(self, texts):
        return [keyword_verdict(t) for t in texts]

    async def categories(self):
        return ["harassment"]

    async def current_policy(self):
        from services.moderation import ModerationPolicy

        # tests/moderation/fake_scanner.py reports its batch size and pid among the scores: not categories
        return ModerationPolicy(thresholds=getattr(self, "thresholds", {}), disabled={"batch", "pid"})


class FakeTemplates:
    def __init__(self, up: bool = True):
        self.up = up

    async def get(self, category, languages):
        if not self.up:
            raise ConnectionError("redis down")
        return await FakeStages().template(category, languages)

    async def redis_ok(self):
        return self.up


@pytest.fixture
def router(monkeypatch):
    import deployments.router as r

    monkeypatch.setattr(r, "PipelineMetrics", lambda backend: PipelineMetrics())
    stages = FakeStages(answer="A friendly and harmless answer. It has two sentences.")
    settings = Settings.model_validate({"audit": {"enabled": False}, "feedback": {"enabled": False}})
    replica = r.Router(FakeHandle(FakeModerationReplica()), FakeHandle(FakeGeneratorReplica(stages)),
                       FakeHandle(FakeModerationReplica()), FakeHandle(FakeTemplates(up=False)), settings)
    return replica, stages


async def test_router_serves_the_api_over_its_handles(router):
    replica, stages = router
    from services.api.app import create_app

    app = create_app(replica)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        ok = (await c.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}]})).json()
        assert ok["choices"][0]["message"]["content"] == stages.answer
        blocked = (await c.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "you idiot"}]})).json()
        assert blocked["chatgate_moderation"]["template"]["source"] == "builtin"  # template replica down
        ready = (await c.get("/readyz")).json()
        assert ready == {"ready": True, "model_loaded": True, "classifier_loaded": True, "templates": "builtin_fallback"}


async def test_moderations_endpoint_answers_503_while_its_replica_is_gone(router):
    """A /v1/moderations call in flight when InputModeration is killed: a retryable 503 with
    Retry-After in OpenAI's error shape, not a 500 (the fault suite's input-moderation kill)."""
    from ray.exceptions import ActorUnavailableError

    from services.api.app import create_app

    replica, _ = router

    class Gone(FakeModerationReplica):
        async def moderate_many(self, texts):
            raise ActorUnavailableError("replica gone", None)

    replica.handles["input"] = FakeHandle(Gone())
    app = create_app(replica)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        resp = await c.post("/v1/moderations", json={"input": ["hello"]})
    assert resp.status_code == 503 and resp.headers["Retry-After"] == "2"
    assert resp.json()["error"]["code"] == "moderation_unavailable"


async def test_router_reconfigure_is_explicit_and_typed(router):
    replica, _ = router
    replica.reconfigure({"streaming": {"mode": "async", "window_chars": 120}, "guard": {"fail_open": True}})
    assert replica.pipeline.streaming.mode == "async" and replica.pipeline.streaming.window_chars == 120
    assert replica.guard.settings.fail_open is True and replica.settings.guard.fail_open is True
    with pytest.raises(ValidationError):
        replica.reconfigure({"streaming": {"window_chars": 2}})  # below the minimum
    with pytest.raises(ValidationError):
        replica.reconfigure({"fail_open": True})  # the old top-level key is refused, not ignored




def test_settings_refuse_misspelt_keys_and_merge_args_deeply(monkeypatch):
    from services.config import load_settings

    monkeypatch.setenv("CHATGATE_API__KEYS", "k1")
    settings = load_settings({"api": {"admission": {"max_active": 3}}})
    assert settings.api.keys == "k1" and settings.api.admission.max_active == 3
    assert settings.api.admission.max_waiting == 16  # the rest of the block keeps its defaults
    with pytest.raises(ValueError):
        load_settings({"generater": {"dtype": "float32"}})
    with pytest.raises(ValidationError):
        load_settings({"streaming": {"windw_chars": 100}})


@pytest.mark.parametrize("scanners", ["shared", "per_direction"])
async def test_router_checks_run_in_its_own_scanner_process_with_the_deployments_policy(monkeypatch, scanners):
    import deployments.router as r
    from services.moderation.process import ScannerProcess

    monkeypatch.setattr(r, "PipelineMetrics", lambda backend: PipelineMetrics())
    monkeypatch.setattr(r, "ScannerProcess", lambda settings_json, max_batch: ScannerProcess(
        settings_json, factory="tests.moderation.fake_scanner:make", max_batch=max_batch))

    class Unreachable(FakeModerationReplica):  # its checks must not be called: the Router scores itself
        async def moderate_input(self, texts):
            raise AssertionError("input check went over the hop")

        async def moderate_output(self, request, texts):
            raise AssertionError("output check went over the hop")

    input_mod, output_mod = Unreachable(), Unreachable()
    settings = Settings.model_validate({"audit": {"enabled": False}, "feedback": {"enabled": False},
                                        "moderation": {"router_checks": ["input", "output"], "policy_refresh_s": 0.01,
                                                       "router_scanners": scanners}})
    replica = r.Router(FakeHandle(input_mod), FakeHandle(FakeGeneratorReplica(FakeStages())), FakeHandle(output_mod),
                       FakeHandle(FakeTemplates()), settings)
    try:
        stages = replica.guard.stages
        assert (await stages.moderate_input(["hi", "you idiot"])).flagged
        outputs = await stages.moderate_output("q", ["fine", "idiot"])
        assert [v.flagged for v in outputs] == [False, True]
        inputs = await stages.moderate_input(["hi"])
        # shared: one process (one embedding cache) scores both; per_direction: one each
        assert (inputs.category_scores["pid"] == outputs[0].category_scores["pid"]) == (scanners == "shared")
        assert len(replica.local.processes()) == (1 if scanners == "shared" else 2)
        input_mod.thresholds = {"harassment": 0.95}  # changed at run time on the deployment
        for _ in range(50):  # a check starts the background re-read; a later one sees the new policy
            if not (await stages.moderate_input(["you idiot"])).flagged:
                break
            await asyncio.sleep(0.05)
        assert not (await stages.moderate_input(["you idiot"])).flagged
        assert (await stages.moderate_output("q", ["idiot"]))[0].flagged  # the output policy is its own
        assert (await replica.readiness())["classifier_loaded"] is True
    finally:
        replica.local.close()
