"""The lexical stage's graph: alt-profanity-check with a vectorised L2 normaliser, input `text`,
output `profanity_check` (the run time's name for it)."""
from __future__ import annotations

from tools.moderation.lexical.onnx_ops import fast_l2_normalizers


def build_graph(prof_onx):
    import onnx
    from onnx import TensorProto, helper

    fast_l2_normalizers(prof_onx)
    g = prof_onx.graph
    g.node.append(helper.make_node("Identity", [g.output[0].name], ["profanity_check"]))
    del g.output[:]
    g.output.append(helper.make_tensor_value_info("profanity_check", TensorProto.FLOAT, [None, 2]))
    g.name = "chatgate_moderation_lexical"
    # skl2onnx lists the opset domains in a hash-seeded order: sorted, a build's bytes repeat
    opsets = sorted(prof_onx.opset_import, key=lambda o: o.domain)
    del prof_onx.opset_import[:]
    prof_onx.opset_import.extend(opsets)
    prof_onx.producer_name = "chatgate-moderation-build"
    prof_onx.ir_version = min(prof_onx.ir_version, 10)
    onnx.checker.check_model(prof_onx)  # no shape inference: it can crash on string-tokenizer graphs
    return prof_onx
