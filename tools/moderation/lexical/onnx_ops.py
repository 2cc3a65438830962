"""Graph surgery the lexical stage needs: locale and token patterns that work on slim images,
a vectorised L2 normaliser, and a one-thread session."""
from __future__ import annotations

import numpy as np

LOCALE = "C.UTF-8"
# sklearn's default token_pattern (?u)\b\w\w+\b; skl2onnx emits the ASCII-only [a-zA-Z0-9_]+
# (and keeps 1-char tokens, which breaks bigrams such as "kill a python"). RE2 knows \p{..}.
UNICODE_TOKENEXP = r"[\p{L}\p{N}\p{Mn}_]{2,}"
OPSET = {"": 21, "ai.onnx.ml": 1}


def fix_string_ops(model, tokenexp: str | None) -> None:
    """C.UTF-8 locale on every StringNormalizer (slim images lack en_US.UTF-8); optionally a
    Unicode token pattern on every Tokenizer."""
    from onnx import helper

    for node in model.graph.node:
        if node.op_type == "StringNormalizer":
            for a in list(node.attribute):
                if a.name == "locale":
                    node.attribute.remove(a)
            node.attribute.append(helper.make_attribute("locale", LOCALE))
        if node.op_type == "Tokenizer" and tokenexp is not None:
            for a in node.attribute:
                if a.name == "tokenexp":
                    a.s = tokenexp.encode()
                if a.name == "mincharnum":
                    a.i = 1


def session(model_or_bytes):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    data = model_or_bytes if isinstance(model_or_bytes, bytes) else model_or_bytes.SerializeToString()
    return ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])


def fast_l2_normalizers(model) -> int:
    """Replace ai.onnx.ml Normalizer(L2) -- a slow scalar loop over the whole (dense, vocabulary-
    wide) TF-IDF row -- with ReduceL2 / Max(eps) / Div, which onnxruntime vectorises (~3x faster)."""
    from onnx import helper, numpy_helper

    g = model.graph
    new_nodes, n = [], 0
    for node in g.node:
        norm = next((a.s for a in node.attribute if a.name == "norm"), b"")
        if node.op_type == "Normalizer" and node.domain == "ai.onnx.ml" and norm == b"L2":
            x, y, k = node.input[0], node.output[0], f"fastl2_{n}"
            g.initializer.extend([
                numpy_helper.from_array(np.array([1], dtype=np.int64), k + "_axes"),
                numpy_helper.from_array(np.array(1e-12, dtype=np.float32), k + "_eps"),
            ])
            new_nodes += [
                helper.make_node("Cast", [x], [k + "_x"], to=1),
                helper.make_node("ReduceL2", [k + "_x", k + "_axes"], [k + "_n"], keepdims=1),
                helper.make_node("Max", [k + "_n", k + "_eps"], [k + "_m"]),
                helper.make_node("Div", [k + "_x", k + "_m"], [y]),
            ]
            n += 1
        else:
            new_nodes.append(node)
    del g.node[:]
    g.node.extend(new_nodes)
    return n
