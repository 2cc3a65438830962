"""The check-cost count on the real scanner: one shared process saves the request's second embedding."""
from services.config import ModerationSettings
from tools.bench.check_cost import measure, pairs


def test_a_shared_scanner_embeds_each_request_once():
    rows = pairs(6, 135)
    assert len(rows) == 6 and all(answer for _, answer in rows)
    shared = measure(ModerationSettings(), rows, shared=True)
    per_direction = measure(ModerationSettings(), rows, shared=False)
    # Per direction, the output check embeds the request again (once per request: its windows hit
    # the output process's cache); shared, the input check's window already holds it.
    assert per_direction["lows"] - shared["lows"] >= 0.8
    assert shared["lows"] >= 2  # the request, and at least one answer window
    assert shared["highs"] <= shared["lows"]  # an upper half only after a lower one
