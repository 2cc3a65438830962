"""The lexical heads: TF-IDF (word 1-2-grams + character 2-4-grams) and one logistic regression per
category, stacked on the pretrained models' outputs, trained on the TRAIN split with each head's cut
from out-of-fold scores folded into its bias (0.5 is every head's operating point)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

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
SEED_WEIGHT = {"seed_reply": 3.0}  # per seed source; default 3.0
ANSWER_WEIGHT = 0.5  # sample weight of the packaged benign answers in training (see train_heads)
ANSWER_WEIGHT_BY_SET: dict[str, float] = {}  # per answer source ("benign_answer:<set>"), overrides ANSWER_WEIGHT


def log(msg: str) -> None:
    print(f"[moderation.lexical] {msg}", flush=True)


def load_rows(data: Path):
    """A1's labelled data (python -m tools.moderation.data): train.jsonl + eval.jsonl as
    (text, labels, source, split, group) rows; the lexical heads see the text only (no context).
    The model's own answers train only the semantic answer head (data/model_answers.py)."""
    from tools.moderation.data.model_answers import SOURCE as ANSWER_HEAD_ONLY

    rows = []
    for split in ("train", "eval"):
        for line in (data / f"{split}.jsonl").read_text(encoding="utf-8").split("\n"):
            if line.strip():
                r = json.loads(line)
                if r["source"] == ANSWER_HEAD_ONLY:
                    continue
                rows.append((" ".join(r["text"].split()), set(r["labels"]), r["source"], r["split"], r["group"]))
    return rows


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
        clf = LogisticRegression(C=LR_C, class_weight={0: 1.0, 1: pos_w}, solver="liblinear", max_iter=2000,
                                 random_state=0)  # liblinear shuffles: seeded, so rebuilds agree
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


SONAR_CHUNK = 4096


def stack_features(texts, prof_pipe, sonar_sess, sonar_prob) -> np.ndarray:
    """The extra features the heads see: [profanity p, hatesonar hate p, hatesonar offensive p]."""
    prof = prof_pipe.predict_proba(texts)[:, 1]
    # in chunks: the hatesonar graph holds a dense [texts x vocabulary] matrix, and all 115k training
    # texts in one run took 23 GB and the OOM killer (session 12); rows are independent of their chunk
    sonar = np.concatenate([sonar_sess.run([sonar_prob], {"text": np.array(texts[i : i + SONAR_CHUNK], dtype=object)})[0]
                            for i in range(0, len(texts), SONAR_CHUNK)]) if texts else np.zeros((0, 2), np.float32)
    return np.column_stack([prof, sonar[:, 0], sonar[:, 1]]).astype(np.float32)


def heads_reference(texts, vecs, W, b, prof_pipe, sonar_sess, sonar_prob) -> np.ndarray:
    """Heads' logits computed in sklearn/numpy (the parity reference for the ONNX graph)."""
    extra = stack_features(texts, prof_pipe, sonar_sess, sonar_prob)
    return np.asarray(design(vecs, texts, extra) @ W, dtype=np.float32) + b
