"""The benchmark's CPU accounting: process roles, and cores used between two snapshots."""
import time

from tools.bench.cpu import CpuSnapshot, role_of


def test_roles_of_the_processes_a_run_has():
    assert role_of("VLLM::Worker_TP0", "", 1) == "vLLM worker (model)"
    assert role_of("VLLM::EngineCor", "", 1) == "vLLM EngineCore"
    assert role_of("ray::ServeRepli", "ray::ServeReplica:chatgate:InputModeration", 1) == "Serve InputModeration"
    assert role_of("python", "python -m vllm.entrypoints.openai.api_server --model m", 1) == "vLLM API server"
    assert role_of("raylet", "/v/ray/core/src/ray/raylet/raylet --port 1", 1) == "Ray raylet"
    assert role_of("python", "/v/python -u /v/ray/_private/log_monitor.py --raylet-name=/tmp/r", 1) == "Ray log monitor"
    assert role_of("python", "/v/python /v/ray/dashboard/agent.py --node-ip-address=1", 1) == "Ray dashboard agent"
    assert role_of("ray::ServeContr", "ray::ServeController", 1) == "Serve controller"
    assert role_of("python", "/v/python /v/bin/serve run deployments.yaml", 1) == "serve run (driver)"
    assert role_of("bash", "bash -c sleep 1", 1) == "other"


def test_this_process_busy_shows_as_the_bench_client():
    before = CpuSnapshot()
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < 0.3:
        pass
    cores = CpuSnapshot().cores_since(before)
    assert cores["bench client"] > 0.05 and cores["machine busy"] >= cores["bench client"] - 0.05
    assert cores["machine steal"] >= 0  # what the hypervisor took (0 on bare metal)


def test_two_busy_processes_on_one_cpu_show_runqueue_waits():
    """Two spinning processes pinned to one CPU each wait about half the time: the wait table
    sees contention that the cores table alone cannot (both just share one core)."""
    import os
    import subprocess
    import sys

    from tools.bench.cpu import runqueue_wait_s

    cpu = min(os.sched_getaffinity(0))
    spin = "import os, time; os.sched_setaffinity(0, {%d}); t = time.time()\nwhile time.time() - t < 1.0: pass" % cpu
    procs = [subprocess.Popen([sys.executable, "-c", spin]) for _ in range(2)]
    try:
        time.sleep(0.8)
        waited = [runqueue_wait_s(p.pid) for p in procs]
    finally:
        for p in procs:
            p.wait(timeout=10)
    assert sum(waited) > 0.2, waited  # ~0.6 s of 0.8 s of two-way sharing, minus start-up
    assert runqueue_wait_s(2**22 + 12345) == 0.0  # a pid that does not exist


def test_cpu_and_wait_tables_put_the_busiest_role_first():
    from tools.bench.report import cpu_table, wait_table

    report = {"vllm": {"results": [{"target": "vllm", "level": 1,
                                    "cpu": {"machine busy": 1.0, "machine steal": 0.0, "EngineCore": 0.9},
                                    "cpu_wait": {"EngineCore": 0.05}}]},
              "chatgate": {"results": [{"target": "chatgate-async", "level": 8,
                                        "cpu": {"machine busy": 1.8, "machine steal": 0.1, "EngineCore": 0.7, "Router": 0.8},
                                        "cpu_wait": {"EngineCore": 0.2, "Router": 0.01}}]}}
    cpu = cpu_table(report).splitlines()
    assert cpu[0] == "| CPU, cores used during the level | conc | machine busy | stolen by the hypervisor | EngineCore | Router |"
    assert cpu[3] == "| chatgate-async | 8 | 1.80 | 0.10 | 0.70 | 0.80 |"
    waits = wait_table(report).splitlines()
    assert waits[0] == "| waiting for a CPU, share of the level | conc | EngineCore | Router |"
    assert waits[2].startswith("| vllm | 1 | 0.050 |")
    assert wait_table({"vllm": {"results": [{"target": "vllm", "level": 1}]}}) == ""
