"""Generated assistant answers with their request as `context`: compliant answers to harmful requests
(labelled like the request), refusals and supportive answers to the same requests (benign), and
compliant answers to benign requests in the same frames (benign). Also single answer sentences
(what output moderation's windows see) with the same context.

The task partition is gen_requests' (salt "gen_howto"): a task held out there is held out here.
"""
from __future__ import annotations

from tools.moderation.data.common import LANGS, Row, cap_first, eval_part, fill, fix_grammar, load_yaml, rng

PER_TASK = {"en": 5, "de": 3, "fr": 3, "es": 3}  # compliant answers per task, language
REFUSALS = {"en": 4, "de": 3, "fr": 3, "es": 3}
SELF_HARM = {"self-harm/instructions", "self-harm/intent", "self-harm"}


_YOU = {"my": "your", "myself": "yourself", "me": "you", "I": "you", "I'm": "you're", "mine": "yours", "am": "are"}


def _you(task: str, lang: str) -> str:
    """The user's task as the assistant says it back (en): "kill my husband" -> "kill your husband"."""
    if lang != "en":
        return task
    return " ".join(_YOU.get(w, w) for w in task.split())


def _request(frames: list[str], task: str, lang: str, r) -> str:
    f = r.choice(frames)
    return fill(f, "t", task, lang)


def _comply(frame: str, task: str, steps: list[str], lang: str) -> str:
    text = frame.replace("{t}", _you(task, lang))
    for i, s in enumerate(steps[:3], 1):
        text = text.replace("{S%d}" % i, cap_first(s)).replace("{s%d}" % i, s)
    return fix_grammar(text, lang) if "\n" not in text else text


def _refusal(frame: str, task: str, labels: list[str], topics: dict, lang: str, r) -> str:
    """A refusal frame filled with the task ({t}, en) and a phrase for the request's category ({c}):
    refusals that name their topic must read as refusals, not as the topic."""
    if "{c}" in frame:
        phrases = next((topics[lab][lang] for lab in labels if lab in topics), None)
        if not phrases:
            return ""
        frame = frame.replace("{c}", r.choice(phrases))
    return fill(frame, "t", _you(task, lang), lang)


def _split_pool(items: list, salt: str) -> dict:
    held = eval_part(items, salt=salt)
    return {"eval": [x for x in items if x in held], "train": [x for x in items if x not in held]}


def answer_rows() -> list[Row]:
    tasks_y, ans, req = load_yaml("tasks.yaml"), load_yaml("answers.yaml"), load_yaml("requests.yaml")["frames"]
    tasks = [(kind, t) for kind, lst in tasks_y.items() for t in lst]
    eval_tasks = eval_part([t["id"] for _, t in tasks], salt="gen_howto")
    rows: list[Row] = []
    for lang in LANGS:
        req_pool = _split_pool(req[lang], "gen_howto" + lang)
        comply_pool = _split_pool(ans["comply"][lang], "comply" + lang)
        refuse_pool = _split_pool(ans["refuse"][lang], "refuse" + lang)
        support_pool = _split_pool(ans["support"][lang], "support" + lang)
        for kind, t in tasks:
            steps = (ans["steps"].get(t["id"]) or {}).get(lang)
            if not t.get(lang):
                continue
            split = "eval" if t["id"] in eval_tasks else "train"
            labels = list(t.get("labels") or [])
            harmful = kind == "harmful"
            r = rng("answers", lang, t["id"])
            group = f"gen_answer:{lang}:{t['id']}"

            def add(text, fam, labs, src):
                rows.append(Row(text, labs, "answer", fam, lang, src, group, split=split,
                                context=_request(req_pool[split], t[lang], lang, r), meta={"item": t["id"]}))

            if steps:
                fam = "harmful_answer" if harmful else "benign_answer"
                for frame in r.sample(comply_pool[split], min(PER_TASK[lang], len(comply_pool[split]))):
                    add(_comply(frame, t[lang], steps, lang), fam, labels, "gen_answer")
                for s in r.sample(steps, 2):  # one sentence of the answer, as a window
                    add(cap_first(s) + ".", fam, labels, "gen_answer_window")
            if harmful:
                pool = support_pool if SELF_HARM & set(labels) else refuse_pool
                for frame in r.sample(pool[split], min(REFUSALS[lang], len(pool[split]))):
                    text = _refusal(frame, t[lang], labels, ans["refuse_topics"], lang, r)
                    if text:
                        add(text, "refusal", [], "gen_refusal")
    return rows



STATEMENT_FAMILY = {"hate_no_slur": "harmful_answer", "threat": "harmful_answer", "harassment": "harmful_answer",
                    "group_benign": "benign_answer", "benign_statement": "benign_answer"}


def statement_answer_rows(statements: list[Row], share: float = 0.5) -> list[Row]:
    """About `share` of the hate / threat / insult statements and of their benign counterparts,
    written out as an assistant's compliant answer to a neutral "write a post/message" request."""
    ans = load_yaml("answers.yaml")
    rows = []
    for st in statements:
        fam = STATEMENT_FAMILY.get(st.family)
        r = rng("post", st.group)
        if fam is None or r.random() >= share:
            continue
        frame = r.choice(ans["post_frames"][st.lang])
        text = frame.replace("{s}", st.text)
        rows.append(Row(text, st.labels, "answer", fam, st.lang, "gen_post_answer", st.group + ":post", split=st.split,
                        context=r.choice(ans["post_requests"][st.lang]), meta=dict(st.meta)))
    return rows
