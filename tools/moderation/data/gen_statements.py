"""Generated statements: hate without slurs (groups x predicates) against benign statements about
the same groups; first-person threats and self-harm intent against harmless plans in the same
frames; second-person insults against friendly remarks. Frames/predicates and slot items are
partitioned train/eval separately, as in gen_requests.
"""
from __future__ import annotations

from tools.moderation.data.common import LANGS, Row, eval_part, fill, load_yaml, rng

PER_ITEM = {"en": 10, "de": 8, "fr": 8, "es": 8}  # groups per hate predicate
FRAMES_PER_ITEM = {"en": 6, "de": 4, "fr": 4, "es": 4}  # neutral frames per intent, insult or wish


def _agree(text: str, lang: str, gender: str) -> str:
    f = gender == "f"
    text = text.replace("{tous}", "toutes" if f else "tous").replace("{el}", "elles" if f else "els")
    return text.replace("{e}", "e" if f and lang == "fr" else "").replace("{o}", "a" if f else "o")


def _cross(templates: list[tuple[str, dict]], items: list[dict], fill, source: str, kind: str, per: dict) -> list[Row]:
    """templates: (family, {id, labels, en.. }) with a slot; items: slot values {id, en..}. Each
    template is combined with `per[lang]` items of the same split."""
    rows: list[Row] = []
    eval_t = eval_part([t["id"] for _, t in templates], salt=source + "t")
    eval_i = eval_part([i["id"] for i in items], salt=source + "i")
    for lang in LANGS:
        pools = {s: [i for i in items if i.get(lang) and ((i["id"] in eval_i) == (s == "eval"))] for s in ("eval", "train")}
        for family, t in templates:
            if not t.get(lang):
                continue
            split = "eval" if t["id"] in eval_t else "train"
            r = rng(source, lang, t["id"])
            for it in r.sample(pools[split], min(per[lang], len(pools[split]))):
                text, labels = fill(t, it, lang)
                rows.append(Row(text, labels, kind, family, lang, source, f"{source}:{lang}:{t['id']}:{it['id']}",
                                split=split, meta={"frame": t["id"], "item": it["id"]}))
    return rows


def _hate_fill(t: dict, g: dict, lang: str):
    name = g[lang]
    return fill(_agree(t[lang], lang, g.get("g", "m")), "g", name, lang), list(t.get("labels") or [])


def hate_rows() -> list[Row]:
    y = load_yaml("statements.yaml")
    templates = [("hate_no_slur", t) for t in y["hate"]] + [("group_benign", t) for t in y["benign"]]
    rows = _cross(templates, y["groups"], _hate_fill, "gen_hate", "statement", PER_ITEM)
    for lang, texts in y["pests"].items():
        held = eval_part(texts, salt="pests" + lang)
        for t in texts:
            rows.append(Row(t, [], "statement", "tricky_benign", lang, "gen_pests", f"gen_pests:{lang}:{t}",
                            split="eval" if t in held else "train"))
    return rows


def _slot_rows(frames: dict, groups: dict, slot: str, families: dict, source: str) -> list[Row]:
    """Frames x slot items where the family/labels come from the ITEM (the frame is neutral). Each
    item of a split takes FRAMES_PER_ITEM[lang] frames of the same split, so rows grow with the
    items: a fixed number of items per frame left most of 350 acts without a single row."""
    items = [dict(it, _family=families[k]) for k, lst in groups.items() for it in lst]
    eval_i = eval_part([it["id"] for it in items], salt=source + "i")
    rows: list[Row] = []
    for lang, lang_frames in frames.items():
        ids = [f"{source}{lang}{i}" for i in range(len(lang_frames))]
        eval_f = eval_part(ids, salt=source + "t")
        for it in items:
            if not it.get(lang):
                continue
            split = "eval" if it["id"] in eval_i else "train"
            pool = [(fid, f) for fid, f in zip(ids, lang_frames) if (fid in eval_f) == (split == "eval")]
            for fid, frame in rng(source, lang, it["id"]).sample(pool, min(FRAMES_PER_ITEM[lang], len(pool))):
                rows.append(Row(fill(frame, slot, it[lang], lang), list(it.get("labels") or []), "statement", it["_family"],
                                lang, source, f"{source}:{lang}:{fid}:{it['id']}", split=split,
                                meta={"frame": fid, "item": it["id"]}))
    return rows


def intent_rows() -> list[Row]:
    y = load_yaml("intents.yaml")
    rows = _slot_rows(y["frames"], y["acts"], "a", {"threat": "threat", "selfharm": "self_harm_intent", "benign": "benign_statement"}, "gen_intent")
    rows += _slot_rows(y["you_frames"], y["you"], "x", {"insult": "harassment", "friendly": "benign_statement"}, "gen_you")
    rows += _slot_rows(y["wish_frames"], y["wishes"], "w", {"wish_harm": "harassment", "wish_good": "benign_statement"}, "gen_wish")
    return rows
