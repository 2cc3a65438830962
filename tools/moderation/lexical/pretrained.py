"""The pretrained lexical model, converted to ONNX: alt-profanity-check (TF-IDF + calibrated
LinearSVC, through skl2onnx)."""
from __future__ import annotations

import io

from tools.moderation.lexical.onnx_ops import OPSET, UNICODE_TOKENEXP, fix_string_ops
from tools.moderation.lexical.wheels import Wheel


def load_profanity(wheel: Wheel):
    import joblib
    from sklearn.pipeline import Pipeline

    vec = joblib.load(io.BytesIO(wheel.read("profanity_check/data/vectorizer.joblib")))
    clf = joblib.load(io.BytesIO(wheel.read("profanity_check/data/model.joblib")))
    return Pipeline([("vectorizer", vec), ("model", clf)])


def convert_profanity(pipe):
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import StringTensorType

    clf = pipe.named_steps["model"]
    onx = convert_sklearn(
        pipe,
        initial_types=[("text", StringTensorType([None]))],
        options={id(clf): {"zipmap": False}},
        target_opset=OPSET,
    )
    fix_string_ops(onx, UNICODE_TOKENEXP)
    # keep only the probability output
    probs = [o for o in onx.graph.output if o.name == "probabilities"]
    del onx.graph.output[:]
    onx.graph.output.extend(probs)
    return onx
