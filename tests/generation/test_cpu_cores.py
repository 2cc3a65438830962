"""The engine's own cores on a CPU host, and the other processes kept off them."""
import os
import threading

import pytest

from services.config import GeneratorSettings
from services.generation import cpu_cores
from services.generation.cpu_cores import engine_cores, keep_off_engine_cores, omp_threads_bind, parse_cpu_list


def test_the_kernels_cpu_list_format():
    assert parse_cpu_list("0-2,5\n") == [0, 1, 2, 5]
    assert parse_cpu_list("3") == [3]


def test_the_engine_gets_the_last_cores_and_leaves_the_rest():
    s = GeneratorSettings(cpu_threads=1)
    assert engine_cores(s, [0, 1]) == [1]
    assert engine_cores(GeneratorSettings(cpu_threads=2), [0, 1, 2, 3]) == [2, 3]
    # nothing to leave for the Router and the checks: no pinning at all
    assert engine_cores(s, [0]) is None
    assert engine_cores(GeneratorSettings(cpu_threads=2), [0, 1]) is None


def test_other_bind_values_go_to_vllm_as_they_are(monkeypatch):
    monkeypatch.setattr(cpu_cores, "host_cores", lambda: [0, 1])
    assert omp_threads_bind(GeneratorSettings()) == "1"
    assert omp_threads_bind(GeneratorSettings(cpu_omp_threads_bind="nobind")) == "nobind"
    assert omp_threads_bind(GeneratorSettings(cpu_omp_threads_bind="0-1")) == "0-1"
    assert engine_cores(GeneratorSettings(cpu_omp_threads_bind="nobind")) is None
    monkeypatch.setattr(cpu_cores, "host_cores", lambda: [0])
    assert omp_threads_bind(GeneratorSettings()) == "nobind"  # one core: nothing to dedicate


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2, reason="needs 2 cores")
def test_every_thread_of_a_process_keeps_off_the_engine_cores():
    """In a child process (pinning the test process would slow every later test): its thread that
    already runs is moved too, and a process it starts afterwards inherits the cores."""
    result = _in_spawned_child(_pinned_child)
    cores = sorted(os.sched_getaffinity(0))
    assert result["returned"] == cores[:-1]
    assert result["main"] == result["thread"] == result["grandchild"] == cores[:-1]


def _in_spawned_child(target) -> dict:
    """What `target` sends back, run in a fresh process (pinning the test process would slow every
    later test)."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=target, args=(child,))
    proc.start()
    result = parent.recv()
    proc.join(30)
    return result


def _pinned_child(conn) -> None:
    import subprocess
    import sys

    seen: dict = {}
    started, stop = threading.Event(), threading.Event()

    def worker():
        started.set()
        stop.wait()
        seen["thread"] = sorted(os.sched_getaffinity(0))

    t = threading.Thread(target=worker)
    t.start()
    started.wait()
    seen["returned"] = keep_off_engine_cores(GeneratorSettings(cpu_threads=1), "test")
    stop.set()
    t.join()
    seen["main"] = sorted(os.sched_getaffinity(0))
    out = subprocess.run([sys.executable, "-c", "import os; print(sorted(os.sched_getaffinity(0)))"],
                         capture_output=True, text=True, check=True).stdout
    seen["grandchild"] = eval(out)  # noqa: S307 - our own subprocess's list literal
    conn.send(seen)


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2, reason="needs 2 cores")
def test_the_engine_loads_on_every_core_then_its_cores_are_left_to_its_compute():
    """A replica started off the engine's cores (as tools/run.sh starts it) loads on every core; on
    leaving, it and the processes it started are moved off the engine's cores, except a thread
    that bound itself there (vLLM's OMP compute thread)."""
    result = _in_spawned_child(_loading_child)
    cores = sorted(os.sched_getaffinity(0))
    assert result["loading"] == result["started_child_while_loading"] == cores
    assert result["main"] == result["child"] == result["grandchild"] == cores[:-1]
    assert result["bound"] == cores[-1:]


def _loading_child(conn) -> None:
    import subprocess
    import sys

    import psutil

    from services.generation.cpu_cores import EngineLoadCores

    cores = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, cores[:-1])
    seen: dict = {}
    sleeper = "import os, subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); time.sleep(60)"
    binder = f"import os, time; os.sched_setaffinity(0, {{{cores[-1]}}}); print('bound', flush=True); time.sleep(60)"
    with EngineLoadCores(GeneratorSettings(cpu_threads=1), "test"):
        seen["loading"] = sorted(os.sched_getaffinity(0))
        plain = subprocess.Popen([sys.executable, "-c", sleeper])
        bound = subprocess.Popen([sys.executable, "-c", binder], stdout=subprocess.PIPE, text=True)
        bound.stdout.readline()
        seen["started_child_while_loading"] = sorted(os.sched_getaffinity(plain.pid))
        for _ in range(100):  # the sleeper's own child
            kids = [k.pid for k in psutil.Process(plain.pid).children()]
            if kids:
                break
            threading.Event().wait(0.05)
    seen["main"] = sorted(os.sched_getaffinity(0))
    seen["child"] = sorted(os.sched_getaffinity(plain.pid))
    seen["grandchild"] = sorted(os.sched_getaffinity(kids[0]))
    seen["bound"] = sorted(os.sched_getaffinity(bound.pid))
    for p in (plain, bound):
        p.kill()
    os.kill(kids[0], 9)
    conn.send(seen)
