"""The two pretrained lexical models, converted to ONNX: alt-profanity-check (TF-IDF + calibrated
LinearSVC, through skl2onnx) and hatesonar (its shipped graph, locale fixed, ZipMap removed)."""
from __future__ import annotations

import io

from tools.moderation.lexical.onnx_ops import OPSET, UNICODE_TOKENEXP, fix_string_ops, prune
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


def load_hatesonar(wheel: Wheel):
    import onnx

    model = onnx.load_from_string(wheel.read("hatesonar/model/model.onnx"))
    fix_string_ops(model, None)  # locale only: the token pattern stays as shipped
    # Expose the probability tensor (the shipped graph ends in a ZipMap).
    g = model.graph
    zipmap = [n for n in g.node if n.op_type == "ZipMap"]
    prob_name = zipmap[0].input[0]
    for n in zipmap:
        g.node.remove(n)
    from onnx import TensorProto, helper

    del g.output[:]
    g.output.append(helper.make_tensor_value_info(prob_name, TensorProto.FLOAT, [None, 3]))
    # The label branch (Cast of output_label) is dead now; drop nodes whose outputs nobody uses.
    prune(model, [prob_name])
    return model, prob_name
