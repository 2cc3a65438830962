"""Row type, categories, split partitions and wheel access shared by the data generators.

Standard library (+ pyyaml for the template files) only: this runs in the classifier build venv.
"""
from __future__ import annotations

import hashlib
import json
import random
import re
import unicodedata
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

TEMPLATES = Path(__file__).with_name("templates")

# Same order as services/moderation/categories.py CATEGORIES (a test checks they agree).
CATEGORIES = (
    "harassment", "harassment/threatening", "hate", "hate/threatening", "self-harm", "self-harm/intent",
    "self-harm/instructions", "sexual", "sexual/minors", "violence", "violence/graphic", "illicit",
    "illicit/violent", "profanity",
)
LANGS = ("en", "de", "fr", "es")
KINDS = ("request", "statement", "answer")
STABLE_MIN = 60  # ids from which eval_part holds out by hash threshold (see there)
EVAL_FRACTION = 0.35  # of each source's groups (corpora) or of frames and of slot items (generators)


@dataclass
class Row:
    text: str
    labels: list[str]
    kind: str
    family: str
    lang: str
    source: str
    group: str
    context: str | None = None
    split: str | None = None  # None: decided by assign_splits from the group
    meta: dict = field(default_factory=dict)  # not written out

    def __post_init__(self) -> None:
        self.text = " ".join(str(self.text).split()) if self.kind != "answer" else str(self.text).strip()
        labels = set(self.labels)
        for lab in list(labels):
            if "/" in lab:
                labels.add(lab.split("/")[0])  # a sub-category implies its parent
        unknown = labels - set(CATEGORIES)
        assert not unknown, f"unknown labels {unknown} in {self.source}"
        assert self.kind in KINDS and self.lang in LANGS, (self.kind, self.lang)
        self.labels = sorted(labels, key=CATEGORIES.index)

    def record(self) -> dict:
        d = asdict(self)
        d.pop("meta")
        return {k: d[k] for k in ("text", "context", "labels", "kind", "family", "lang", "source", "group", "split")}


HASH_RANGE = 16**12  # h() takes 12 hex digits


def h(s: str) -> int:
    return int(hashlib.sha256(s.encode("utf-8")).hexdigest()[:12], 16)


def eval_part(ids, frac: float = EVAL_FRACTION, salt: str = "") -> set:
    """The held-out part of a list of ids, independent of their order.

    From STABLE_MIN ids on, an id is held out when its hash falls under `frac` of the hash range: its
    side never changes when ids are added (an exact share moved old contents across the line with
    every data round, so a later build trained on contents an earlier one was judged on). Shorter
    lists (the frames of one language) take the exact share with the lowest hashes, both sides
    non-empty."""
    ids = sorted(set(ids), key=lambda i: h(salt + str(i)))
    if len(ids) >= STABLE_MIN:
        return {i for i in ids if h(salt + str(i)) < frac * HASH_RANGE}
    n = round(len(ids) * frac)
    if len(ids) >= 2:
        n = min(max(n, 1), len(ids) - 1)  # both sides get at least one
    return set(ids[:n])


def dedup_key(text: str) -> str:
    """Near-duplicate key: NFKC, case-folded, letters and digits only."""
    t = unicodedata.normalize("NFKC", text).casefold()
    return "".join(ch for ch in t if ch.isalnum())


def rng(*parts) -> random.Random:
    return random.Random(h("|".join(map(str, parts))))


def load_yaml(name: str) -> dict:
    return yaml.safe_load((TEMPLATES / name).read_text(encoding="utf-8"))


# (not before an aspirated h: le héros, la haine, la hache; not after a hyphen: "puis-je avaler")
_FR_ELISION = re.compile(r"(?<![\w-])([DdJjLlMmNnSsTt]e|[Qq]ue) (?!h[ée]ros|haine|ha[iï]r|hach|honte|hasard|huit|harc[eè]l|hamster|hurl|haut|hibou|hockey|hangar|haricot|hareng|hors)([aeiouyhéèêàâîôûAEIOUYHÉÈÊÀÂÎÔÛ])")
# Preposition + article contractions, applied only where a slot value meets the template text
# ("de {g}" + "les réfugiés" -> "des réfugiés"), never to a pronoun ("de les tuer" stays).
_CONTRACT = {"fr": (("de ", "le ", "du "), ("de ", "les ", "des "), ("à ", "le ", "au "), ("à ", "les ", "aux ")),
             "es": (("a ", "el ", "al "), ("de ", "el ", "del "))}


def fix_grammar(text: str, lang: str) -> str:
    """Elision that slot-filling breaks (fr: de/le/que + vowel) and spacing before , and ."""
    if lang == "fr":
        text = _FR_ELISION.sub(lambda m: m.group(1)[:-1] + "'" + m.group(2), text)
    return re.sub(r"\s+([,.])", r"\1", text).strip()


def fill(template: str, key: str, value: str, lang: str) -> str:
    """{key} -> value and {KEY} -> Value, contracting a preposition before the value (fr, es), then
    fix_grammar."""
    out = template
    for ph, val in (("{" + key.upper() + "}", cap_first(value)), ("{" + key + "}", value)):
        parts = out.split(ph)
        buf = parts[0]
        for rest in parts[1:]:
            for prep, art, joined in _CONTRACT.get(lang, ()):
                if buf.lower().endswith(" " + prep) or buf.lower() == prep:
                    if val.lower().startswith(art):
                        buf, val_ = buf[: len(buf) - len(prep)] + joined, val[len(art):]
                        break
            else:
                val_ = val
            buf = buf + val_ + rest
        out = buf
    return fix_grammar(out, lang)


def cap_first(text: str) -> str:
    for i, ch in enumerate(text):
        if ch.isalpha():
            return text[:i] + ch.upper() + text[i + 1:]
    return text


# ----------------------------------------------------------------------------- wheels
class Wheel:
    def __init__(self, path: Path):
        self.path = path
        self.zf = zipfile.ZipFile(path)

    def read(self, name: str) -> bytes:
        return self.zf.read(name)

    def text(self, name: str) -> str:
        return self.read(name).decode("utf-8")

    def jsonl(self, name: str) -> list[dict]:
        return parse_jsonl(self.text(name))

    def names(self, prefix: str) -> list[str]:
        return sorted(n for n in self.zf.namelist() if n.startswith(prefix))


def parse_jsonl(text: str) -> list[dict]:
    """One JSON object per line. Split at "\n" only, not splitlines(): texts may hold U+2028."""
    return [json.loads(line) for line in text.split("\n") if line.strip()]


def read_jsonl(path: Path) -> list[dict]:
    return parse_jsonl(Path(path).read_text(encoding="utf-8"))


def find_wheel(wheels: Path, stem: str) -> Wheel | None:
    hits = sorted(Path(wheels).glob(f"{stem}-*.whl"))
    if len(hits) > 1:
        raise SystemExit(f"expected one {stem} wheel in {wheels}, found {hits}")
    return Wheel(hits[0]) if hits else None
