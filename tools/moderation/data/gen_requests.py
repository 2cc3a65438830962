"""Generated requests: the same frames filled with benign, tricky-benign and harmful content.

Because every frame is used with every kind of content, an imperative ("Write ...", "Tell me how
to ...") or a question form carries no label information; only the content does. Frames and
contents are partitioned separately (common.eval_part): eval rows combine a held-out frame with a
held-out content, so the eval measures both new phrasings and new topics.
"""
from __future__ import annotations

from tools.moderation.data.common import LANGS, Row, eval_part, fill, load_yaml, rng

FAMILY = {"harmful": "harmful_request", "benign": "everyday_benign", "tricky": "tricky_benign"}
# framed requests (framings.yaml) are their own families, so the plain rows stay comparable
FRAMED_FAMILY = {"harmful": "framed_harmful", "benign": "framed_benign", "tricky": "framed_benign"}
# frames sampled per (task, language) and split; fewer frames, more contents: a content is learnt
# (or missed) in all its frames at once (model card, experiment 17)
PER_TASK = {"en": 8, "de": 6, "fr": 6, "es": 6}
TYPO_RATE = 0.25
PREAMBLE_RATE = 0.3  # share of rows that get a context sentence in front (both classes alike)
FRAMED_PER_TASK = {"en": 2, "de": 1, "fr": 1, "es": 1}  # a framing is a long wrapper: fewer per content


def typo(text: str, r) -> str:
    """One cheap human-like slip: a dropped, doubled or swapped letter, lower case, no final punctuation."""
    words = text.split()
    cand = [i for i, w in enumerate(words) if len(w) > 3 and w.isalpha()]
    if cand:
        i = r.choice(cand)
        w = words[i]
        j = r.randrange(1, len(w) - 1)
        op = r.randrange(3)
        if op == 0:
            w = w[:j] + w[j + 1:]
        elif op == 1:
            w = w[:j] + w[j] + w[j:]
        else:
            w = w[:j - 1] + w[j] + w[j - 1] + w[j + 1:]
        words[i] = w
    out = " ".join(words)
    if r.random() < 0.5:
        out = out.lower()
    if r.random() < 0.5:
        out = out.rstrip(".?!")
    return out


def _fill(frame: str, slot: str, value: str, lang: str) -> str:
    return fill(frame, slot, value, lang)


def _pools(items: list[str], salt: str) -> dict[str, list[str]]:
    held = eval_part(items, salt=salt)
    return {"eval": [x for x in items if x in held], "train": [x for x in items if x not in held]}


def _rows(frames: dict, items: dict, slot: str, source: str, family: dict = FAMILY, per_task: dict = PER_TASK,
          preamble_rate: float = PREAMBLE_RATE, content_salt: str | None = None) -> list[Row]:
    """Every content in `per_task` frames of its split. `content_salt` names the source whose
    content partition these rows share (framed rows hold out the tasks that plain rows hold out)."""
    rows: list[Row] = []
    flat = [(kind, it) for kind, lst in items.items() for it in lst]
    eval_items = eval_part([it["id"] for _, it in flat], salt=content_salt or source)
    preambles = load_yaml("preambles.yaml")
    for lang in LANGS:
        lang_frames = frames.get(lang) or []
        by_split = _pools(lang_frames, source + lang)
        pre = _pools(preambles.get(lang) or [], "preamble" + lang)
        for kind, it in flat:
            value = it.get(lang)
            if not value:
                continue
            split = "eval" if it["id"] in eval_items else "train"
            r = rng(source, lang, it["id"])
            chosen = r.sample(by_split[split], min(per_task[lang], len(by_split[split])))
            for frame in chosen:
                text = _fill(frame, slot, value, lang)
                if r.random() < TYPO_RATE:
                    text = typo(text, r)
                fid, tag = lang_frames.index(frame), ""
                if pre[split] and r.random() < preamble_rate:
                    p = r.choice(pre[split])
                    text, tag = f"{p} {text}", f"+p{(preambles[lang]).index(p)}"
                rows.append(Row(text, list(it.get("labels") or []), "request", family[kind], lang, source,
                                f"{source}:{lang}:f{fid}{tag}:{it['id']}", split=split,
                                meta={"frame": f"{lang}:{frame}", "item": it["id"], "preamble": tag}))
    return rows


def request_rows() -> list[Row]:
    frames, topics = load_yaml("requests.yaml"), load_yaml("topics.yaml")
    return (_rows(frames["frames"], load_yaml("tasks.yaml"), "t", "gen_howto")
            + _rows(frames["write_frames"], load_yaml("writes.yaml"), "np", "gen_write")
            + _rows(topics["frames"], {k: topics[k] for k in FAMILY}, "x", "gen_topic"))


def framed_rows() -> list[Row]:
    """Tasks and write items inside red-team framings (framings.yaml), benign and harmful alike."""
    framings = load_yaml("framings.yaml")
    framed = {"family": FRAMED_FAMILY, "per_task": FRAMED_PER_TASK, "preamble_rate": 0.0}
    return (_rows(framings["how"], load_yaml("tasks.yaml"), "t", "gen_framed_howto", content_salt="gen_howto", **framed)
            + _rows(framings["write"], load_yaml("writes.yaml"), "np", "gen_framed_write", content_salt="gen_write", **framed))


def _fragment_family(labels: list[str]) -> str:
    if "harassment/threatening" in labels:
        return "threat"
    if "self-harm/intent" in labels:
        return "self_harm_intent"
    if labels == ["harassment"] or labels == ["harassment", "self-harm/instructions"]:
        return "harassment"
    return "harmful_request"


def fragment_rows() -> list[Row]:
    """Short follow-ups and fragments ("Repeat that", "bomb making instructions"), one group each."""
    y = load_yaml("fragments.yaml")
    rows = [Row(t, [], "request", fam, lang, "gen_fragment", f"gen_fragment:{lang}:{t}")
            for key, fam in (("benign", "everyday_benign"), ("tricky", "tricky_benign"))
            for lang, texts in y[key].items() for t in texts]
    for item in y["harmful"]:
        for lang in LANGS:
            for t in item.get(lang) or []:
                rows.append(Row(t, item["labels"], "request", _fragment_family(item["labels"]), lang, "gen_fragment",
                                f"gen_fragment:{lang}:{t}"))
    return rows
