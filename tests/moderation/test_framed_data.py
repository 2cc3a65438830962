"""tools.moderation.data.gen_requests.framed_rows: red-team framings around the plain frames'
contents. The framing must carry no label, and a content held out of the plain rows must be held
out of the framed ones too (else the eval's harmful tasks are trained on inside a wrapper)."""
from __future__ import annotations

from collections import defaultdict

import pytest

from tools.moderation.data.gen_requests import FRAMED_FAMILY, framed_rows, request_rows


@pytest.fixture(scope="module")
def framed():
    return framed_rows()


def test_a_content_sits_on_the_same_side_framed_and_plain(framed):
    plain = {(r.source.replace("gen_", ""), r.meta["item"]): r.split for r in request_rows()}
    for r in framed:
        assert plain[(r.source.replace("gen_framed_", ""), r.meta["item"])] == r.split, r.group


def test_every_framing_wraps_benign_and_harmful_contents(framed):
    families = defaultdict(set)
    for r in framed:
        families[(r.source, r.meta["frame"])].add(r.family)
    assert len(families) > 60
    assert all(f == {"framed_harmful", "framed_benign"} for f in families.values()), families
    assert {r.split for r in framed} == {"train", "eval"}
    # a framing is in one split only, so the eval's framings are new to the model
    split_of = defaultdict(set)
    for r in framed:
        split_of[r.meta["frame"]].add(r.split)
    assert all(len(s) == 1 for s in split_of.values())


def test_labels_follow_the_content_and_every_language_is_framed(framed):
    for r in framed:
        assert (r.family == FRAMED_FAMILY["harmful"]) == bool(r.labels), r.text
    assert {r.lang for r in framed} == {"en", "de", "fr", "es"}

