"""The benchmark's CPU accounting: process roles, and cores used between two snapshots."""
import time

from tools.bench.cpu import CpuSnapshot, role_of


def test_roles_of_the_processes_a_run_has():
    assert role_of("VLLM::Worker_TP0", "", 1) == "vLLM worker (model)"
    assert role_of("VLLM::EngineCor", "", 1) == "vLLM EngineCore"
    assert role_of("ray::ServeRepli", "ray::ServeReplica:chatgate:InputModeration", 1) == "Serve InputModeration"
    assert role_of("python", "python -m vllm.entrypoints.openai.api_server --model m", 1) == "vLLM API server"
    assert role_of("raylet", "/x/raylet --port 1", 1) == "other"


def test_this_process_busy_shows_as_the_bench_client():
    before = CpuSnapshot()
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < 0.3:
        pass
    cores = CpuSnapshot().cores_since(before)
    assert cores["bench client"] > 0.05 and cores["machine busy"] >= cores["bench client"] - 0.05
    assert cores["machine steal"] >= 0  # what the hypervisor took (0 on bare metal)
