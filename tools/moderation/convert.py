"""Lexical stage of the moderation classifier build. Runs INSIDE the build venv (scikit-learn==1.9.1,
skl2onnx, onnx, onnxruntime); `tools/moderation/build.py` calls it.

    python -m tools.moderation.convert --wheels DIR --out DIR

Produces in --out:
  model.onnx      alt-profanity-check 1.9.1 (TF-IDF + calibrated LinearSVC) converted with skl2onnx:
                  input `text` (string [N]), output `profanity_check` (float [N, 2], predict_proba)
  reference.json  probe texts + the ORIGINAL sklearn pipeline's predict_proba (parity tests)
  build_info.json parity numbers (build.py folds it into manifest.json)

The semantic stage scores every category; this model adds only its profanity column, which the
Scanner averages with the semantic profanity score (manifest `lexical`, model card exp. 11). Until
session 17 the graph also held hatesonar and 13 trained TF-IDF heads; run time had stopped using
them, and they cost ~950 s of every build on a slow CPU, so they were removed (model card).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from tools.moderation.lexical.graph import build_graph
from tools.moderation.lexical.onnx_ops import session
from tools.moderation.lexical.pretrained import convert_profanity, load_profanity
from tools.moderation.lexical.wheels import find_wheel

HERE = Path(__file__).resolve().parent


def log(msg: str) -> None:
    print(f"[moderation.convert] {msg}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--wheels", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()

    log("alt-profanity-check -> ONNX (skl2onnx)")
    prof_pipe = load_profanity(find_wheel(args.wheels, "alt_profanity_check"))
    model_bytes = build_graph(convert_profanity(prof_pipe)).SerializeToString()
    (args.out / "model.onnx").write_bytes(model_bytes)

    log("parity: the ONNX graph vs the sklearn pipeline")
    probes = [line for line in (HERE / "probes.txt").read_text().splitlines() if line.strip() and not line.startswith("#")]
    got = session(model_bytes).run(["profanity_check"], {"text": np.array(probes, dtype=object)})[0]
    ref = prof_pipe.predict_proba(probes)
    parity = {"profanity_check_max_abs_diff": float(np.abs(got - ref).max())}
    log(f"parity {parity}")
    if parity["profanity_check_max_abs_diff"] > 1e-4:
        raise SystemExit(f"parity check failed: {parity}")
    reference = {
        "texts": probes,
        "profanity_check": ref.round(6).tolist(),
        "note": "sklearn 1.9.1 predict_proba of alt-profanity-check's shipped pickles",
    }
    (args.out / "reference.json").write_text(json.dumps(reference, indent=1))
    info = {
        "inputs": {"text": "string [N]"},
        "outputs": {"profanity_check": "float [N, 2] alt-profanity-check predict_proba"},
        "parity": parity,
        "convert_seconds": round(time.time() - t0, 1),
    }
    (args.out / "build_info.json").write_text(json.dumps(info, indent=1))
    log(f"done in {time.time() - t0:.1f}s -> {args.out}")


if __name__ == "__main__":
    main()
