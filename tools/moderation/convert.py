"""Conversion + training step of the moderation classifier build. Runs INSIDE the build venv
(scikit-learn==1.9.1, skl2onnx, onnx, onnxruntime, pyyaml); `tools/moderation/build.py` calls it.

    python -m tools.moderation.convert --wheels DIR --data DIR --out DIR

Produces in --out:
  model.onnx      one graph, input `text` (string [N]), outputs
                    scores            float [N, len(categories)]  (the runtime reads this one)
                    profanity_check   float [N, 2]  alt-profanity-check predict_proba
                    hatesonar         float [N, 3]  hatesonar (hate_speech, offensive_language, neither)
                    heads_logits      float [N, len(heads)]       trained heads, before the sigmoid
  eval.jsonl      the held-out split of the packaged labelled data (never trained on)
  reference.json  probe texts + the ORIGINAL models' outputs (sklearn / shipped ONNX graph)
  build_info.json categories, parity numbers, training-set sizes (build.py folds it into manifest.json)

Stages (all lexical, all in one onnxruntime graph; ~0.1-0.3 ms a text on one thread):
  1. alt-profanity-check 1.9.1: TF-IDF + calibrated LinearSVC, converted with skl2onnx.
  2. hatesonar 0.1.0: the shipped ONNX graph (locale attribute fixed).
  3. heads: our TF-IDF (word 1-2 grams + character 2-4 grams) + one logistic regression per category, trained here on
     A1's labelled data (train split), with the outputs of stages 1-2 as three extra features
     (stacking).

The parts live in tools/moderation/lexical/: wheels.py (reading the registry wheels), onnx_ops.py
(graph surgery), pretrained.py (stages 1-2), heads.py (stage 3's training), graph.py (the combined
graph); legacy_data.py is the earlier wheel-read data that `tools.moderation.cv` still uses.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from tools.moderation.lexical.graph import build_graph
from tools.moderation.lexical.heads import CATEGORIES, HEADS, heads_reference, load_rows, log, train_heads
from tools.moderation.lexical.onnx_ops import convert_vectorizer, session
from tools.moderation.lexical.pretrained import convert_profanity, load_hatesonar, load_profanity
from tools.moderation.lexical.wheels import find_wheel

HERE = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--wheels", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--data", type=Path, required=True, help="labelled data folder (python -m tools.moderation.data)")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()

    prof_wheel = find_wheel(args.wheels, "alt_profanity_check")
    sonar_wheel = find_wheel(args.wheels, "hatesonar")

    log("stage 1: alt-profanity-check -> ONNX (skl2onnx)")
    prof_pipe = load_profanity(prof_wheel)
    prof_onx = convert_profanity(prof_pipe)
    log("stage 2: hatesonar ONNX (locale fix)")
    sonar_onx, sonar_prob = load_hatesonar(sonar_wheel)
    sonar_sess = session(sonar_onx)

    log(f"stage 3: labelled data from {args.data}")
    rows = load_rows(args.data)
    by_source: dict[str, dict[str, int]] = {}
    for _, _, src, split, _ in rows:
        by_source.setdefault(src, {"train": 0, "eval": 0})[split] += 1
    log(f"{len(rows)} texts: {json.dumps(by_source)}")
    vecs, W, b, head_stats = train_heads(rows, prof_pipe, sonar_sess, sonar_prob)
    vec_onxs = [convert_vectorizer(v) for v in vecs]

    log("combining into one graph")
    model = build_graph(prof_onx, sonar_onx, sonar_prob, vec_onxs, W, b)
    model_bytes = model.SerializeToString()
    (args.out / "model.onnx").write_bytes(model_bytes)

    log("parity: combined ONNX graph vs the original models")
    probes = [line for line in (HERE / "probes.txt").read_text().splitlines() if line.strip() and not line.startswith("#")]
    sess = session(model_bytes)
    got_prof, got_sonar, got_logits = sess.run(["profanity_check", "hatesonar", "heads_logits"], {"text": np.array(probes, dtype=object)})
    ref_prof = prof_pipe.predict_proba(probes)
    # hatesonar reference: the shipped graph itself (only its locale attribute changed), run alone.
    ref_sonar = sonar_sess.run([sonar_prob], {"text": np.array(probes, dtype=object)})[0]
    ref_logits = heads_reference(probes, vecs, W, b, prof_pipe, sonar_sess, sonar_prob)
    parity = {
        "profanity_check_max_abs_diff": float(np.abs(got_prof - ref_prof).max()),
        "hatesonar_max_abs_diff": float(np.abs(got_sonar - ref_sonar).max()),
        "heads_logits_max_abs_diff": float(np.abs(got_logits - ref_logits).max()),
    }
    log(f"parity {parity}")
    if parity["profanity_check_max_abs_diff"] > 1e-4 or parity["hatesonar_max_abs_diff"] > 1e-5 or parity["heads_logits_max_abs_diff"] > 1e-3:
        raise SystemExit(f"parity check failed: {parity}")
    reference = {
        "texts": probes,
        "profanity_check": ref_prof.round(6).tolist(),
        "hatesonar": ref_sonar.round(6).tolist(),
        "heads": list(HEADS),
        "heads_logits": ref_logits.round(5).tolist(),
        "note": "profanity_check: sklearn 1.9.1 predict_proba of the shipped pickles; hatesonar: the shipped "
        "ONNX graph run alone (locale attribute set to C.UTF-8); heads_logits: sklearn TfidfVectorizer + "
        "numpy linear layer of this build",
    }
    (args.out / "reference.json").write_text(json.dumps(reference, indent=1))

    with open(args.out / "eval.jsonl", "w") as fh:
        for text, labels, src, split, _ in rows:
            if split == "eval":
                fh.write(json.dumps({"text": text, "labels": sorted(labels), "source": src}) + "\n")
    info = {
        "categories": list(CATEGORIES),
        "heads": list(HEADS),
        "inputs": {"text": "string [N]"},
        "outputs": {
            "scores": f"float [N, {len(CATEGORIES)}], columns = categories",
            "profanity_check": "float [N, 2] alt-profanity-check predict_proba",
            "hatesonar": "float [N, 3] hate_speech, offensive_language, neither",
            "heads_logits": f"float [N, {len(HEADS)}] trained heads before sigmoid",
        },
        "parity": parity,
        "training": {"heads": head_stats, "by_source": by_source, "vocabulary": [len(v.vocabulary_) for v in vecs]},
        "convert_seconds": round(time.time() - t0, 1),
    }
    (args.out / "build_info.json").write_text(json.dumps(info, indent=1))
    log(f"done in {time.time() - t0:.1f}s -> {args.out}")


if __name__ == "__main__":
    main()
