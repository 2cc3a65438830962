"""The vLLM plugin that makes engine processes nap instead of spin, found and applied by vLLM itself."""
import pytest

from services.config import GeneratorSettings
from services.generation.engine import spin_sleep_env
from services.generation.vllm_plugin import ENV, register

shm_broadcast = pytest.importorskip("vllm.distributed.device_communicators.shm_broadcast")


def test_vllm_finds_the_plugin_through_its_own_loader():
    from vllm.plugins import load_plugins_by_group

    assert "chatgate_spin_sleep" in load_plugins_by_group("vllm.general_plugins")


def test_the_spin_turn_naps_when_the_environment_asks(monkeypatch):
    calls = []
    monkeypatch.setattr(shm_broadcast, "sched_yield", lambda: calls.append("spin"))  # restored after the test
    monkeypatch.setenv(ENV, "0.002")
    register()
    import time

    t0 = time.perf_counter()
    for _ in range(5):
        shm_broadcast.sched_yield()
    assert not calls and time.perf_counter() - t0 >= 5 * 0.002  # slept, did not spin


def test_without_the_environment_vllm_keeps_spinning(monkeypatch):
    spin = shm_broadcast.sched_yield
    monkeypatch.delenv(ENV, raising=False)
    register()
    assert shm_broadcast.sched_yield is spin


def test_the_setting_becomes_the_environment_and_zero_turns_it_off():
    assert spin_sleep_env(GeneratorSettings(cpu_spin_sleep_ms=0.5)) == {ENV: "0.0005"}
    assert spin_sleep_env(GeneratorSettings(cpu_spin_sleep_ms=0)) == {}
