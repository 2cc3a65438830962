"""LoopLagMonitor: a loop blocked by synchronous work shows up as lag; an idle loop does not."""
import asyncio
import time

from services.observability.loop_lag import LoopLagMonitor
from services.observability.metrics import PipelineMetrics


def _lags(metrics: PipelineMetrics) -> tuple[float, float]:
    count = metrics.registry.get_sample_value("chatgate_event_loop_lag_seconds_count") or 0
    total = metrics.registry.get_sample_value("chatgate_event_loop_lag_seconds_sum") or 0
    return count, total


async def test_a_blocked_loop_is_measured_as_lag_and_an_idle_one_is_not():
    metrics = PipelineMetrics()
    monitor = LoopLagMonitor(metrics, interval_s=0.01)
    monitor.ensure_started()
    monitor.ensure_started()  # idempotent: one task
    await asyncio.sleep(0.1)
    count, idle_total = _lags(metrics)
    assert count >= 3 and idle_total / count < 0.02
    time.sleep(0.2)  # synchronous work on the loop: the monitor wakes ~0.2 s late
    await asyncio.sleep(0.05)
    _, total = _lags(metrics)
    assert total - idle_total >= 0.15
    monitor.stop()
