"""One onnxruntime graph for the whole lexical stage: the pretrained models, our vectorizers and
the heads' linear layer, with input `text` and outputs scores / profanity_check / hatesonar /
heads_logits."""
from __future__ import annotations

import numpy as np

from tools.moderation.lexical.heads import CATEGORIES, HEADS
from tools.moderation.lexical.onnx_ops import fast_l2_normalizers, prefixed


def build_graph(prof_onx, sonar_onx, sonar_prob, vec_onxs, W, b):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    P, S = "profanity/", "hatesonar/"
    V = ["heads/"] + [f"heads{k}/" for k in range(1, len(vec_onxs))]  # "heads/": the word vectorizer
    for m in (prof_onx, sonar_onx, *vec_onxs):
        fast_l2_normalizers(m)
    parts = [prefixed(prof_onx, P), prefixed(sonar_onx, S)] + [prefixed(m, v) for m, v in zip(vec_onxs, V)]
    nodes, inits = [], []
    for m in parts:
        nodes += list(m.graph.node)
        inits += list(m.graph.initializer)
    prof_out = P + prof_onx.graph.output[0].name
    sonar_out = S + sonar_prob
    vec_outs = [v + m.graph.output[0].name for m, v in zip(vec_onxs, V)]
    inits += [
        numpy_helper.from_array(W, "heads/W"),
        numpy_helper.from_array(b, "heads/b"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "c/one"),
        numpy_helper.from_array(np.array([2], dtype=np.int64), "c/two"),
        numpy_helper.from_array(np.array([0], dtype=np.int64), "c/zero"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "c/axis1"),
    ]
    nodes += [
        helper.make_node("Identity", [prof_out], ["profanity_check"]),
        helper.make_node("Identity", [sonar_out], ["hatesonar"]),
        # stacked features: profanity p (col 1), hatesonar hate (col 0) + offensive (col 1)
        helper.make_node("Slice", ["profanity_check", "c/one", "c/two", "c/axis1"], ["f/prof"]),
        helper.make_node("Slice", ["hatesonar", "c/zero", "c/two", "c/axis1"], ["f/sonar"]),
        helper.make_node("Concat", [*vec_outs, "f/prof", "f/sonar"], ["f/all"], axis=1),
        helper.make_node("MatMul", ["f/all", "heads/W"], ["f/mm"]),
        helper.make_node("Add", ["f/mm", "heads/b"], ["heads_logits"]),
        helper.make_node("Sigmoid", ["heads_logits"], ["f/heads_p"]),
        helper.make_node("Concat", ["f/heads_p", "f/prof"], ["scores"], axis=1),
    ]
    f = TensorProto.FLOAT
    graph = helper.make_graph(
        nodes,
        "chatgate_moderation",
        [helper.make_tensor_value_info("text", TensorProto.STRING, [None])],
        [
            helper.make_tensor_value_info("scores", f, [None, len(CATEGORIES)]),
            helper.make_tensor_value_info("profanity_check", f, [None, 2]),
            helper.make_tensor_value_info("hatesonar", f, [None, 3]),
            helper.make_tensor_value_info("heads_logits", f, [None, len(HEADS)]),
        ],
        inits,
    )
    opsets = {}
    for m in (prof_onx, sonar_onx, *vec_onxs):
        for o in m.opset_import:
            opsets[o.domain] = max(opsets.get(o.domain, 0), o.version)
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid(d, v) for d, v in sorted(opsets.items())],
        producer_name="chatgate-moderation-build",
    )
    model.ir_version = min(model.ir_version, 10)
    onnx.checker.check_model(model)  # no shape inference: it can crash on string-tokenizer graphs
    return model
