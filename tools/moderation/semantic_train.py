"""Training of the semantic stage's heads on encoder embeddings (project venv: torch, numpy).

Two small heads on the int8 encoder's own embeddings (what run time computes, so no train/serve
skew):
  text head    embedding(window)                     -> 14 category logits   (scan_inputs)
  answer head  [e(answer), e(request), e(a) * e(r)]  -> 14 category logits   (scan_answers)
Thresholds: per category, from out-of-fold probabilities of a k-fold on the TRAIN split grouped by
content (content_key), so that the cuts see contents the heads never trained on, as the eval does.
"""
from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Callable, Sequence

import numpy as np

from services.moderation.categories import CATEGORIES

HIDDEN = 512
DROPOUT = 0.5
EPOCHS = 8
LR = 3e-3
WEIGHT_DECAY = 0.05
BATCH = 512
FOLDS = 4
AUG_SHARE = 0.35  # share of harmful rows that also train as normalise(obfuscate(text))
STATEMENT_SHARE_IN_ANSWER_HEAD = 0.5  # non-answer rows the answer head also sees (empty request)
LONG_CHARS = 300  # benign texts longer than this train as LONG_WINDOWS of their windows
LONG_WINDOWS = 2
SEED = 0
# The cascade's gate lets a text go after the encoder's lower half when every category's gate
# probability is below that category's exit point: the highest point that lets go at most this
# share of the category's rows the full head catches out of fold (session 30: model card, exp. 32).
GATE_MAX_LOSS = 0.005


def log(msg: str) -> None:
    print(f"[moderation.semantic] {msg}", flush=True)


def label_matrix(rows: Sequence[dict]) -> np.ndarray:
    y = np.zeros((len(rows), len(CATEGORIES)), dtype=np.float32)
    idx = {c: i for i, c in enumerate(CATEGORIES)}
    for i, r in enumerate(rows):
        for lab in r["labels"]:
            y[i, idx[lab]] = 1.0
            if "/" in lab:  # a sub-category implies its parent (as in OpenAI's taxonomy)
                parent = lab.split("/")[0]
                if parent in idx:
                    y[i, idx[parent]] = 1.0
    return y


def augmented(rows: list[dict], normalize: Callable[[str], str], obfuscations: dict) -> list[dict]:
    """Normalised rows, plus normalise(obfuscate(x)) for a share of harmful ones: normalisation is
    imperfect, so the heads also learn what its leftovers look like. Benign text also trains as the
    windows run time cuts it into: a sentence scored alone ("I live alone and nobody needs to know
    about this.") was never seen alone in training and was flagged (model card, experiment 14)."""
    from services.moderation.segment import message_windows

    rng = random.Random(SEED)
    names = sorted(obfuscations)
    out = []
    for r in rows:
        if not r["labels"]:
            wins = [w for w in message_windows(r["text"]) if w != " ".join(r["text"].split())]
            if len(r["text"]) > LONG_CHARS:  # run time scores it window by window: train on some
                out += [{**r, "text": normalize(w)} for w in rng.sample(wins, min(LONG_WINDOWS, len(wins)))]
                continue
            out += [{**r, "text": normalize(w)} for w in wins]
        out.append({**r, "text": normalize(r["text"])})
        if r["labels"] and names and rng.random() < AUG_SHARE:
            fn = obfuscations[names[rng.randrange(len(names))]]
            out.append({**r, "text": normalize(fn(r["text"]))})
    return out


def pair_features(e_ans: np.ndarray, e_req: np.ndarray) -> np.ndarray:
    return np.concatenate([e_ans, e_req, e_ans * e_req], axis=1).astype(np.float32)


def mid_features(x: np.ndarray, head: str) -> np.ndarray:
    """A head's inputs -> its gate's: the mid-layer block (the last third of each embedding, what
    the encoder's lower half returns). Text head: e -> mid(e); answer head: [e(a), e(r), e(a)*e(r)]
    -> [mid(a), mid(r), mid(a)*mid(r)]."""
    if head == "text":
        return np.ascontiguousarray(x[:, -x.shape[1] // 3:])
    dim = x.shape[1] // 3  # one embedding
    a, r = x[:, dim - dim // 3:dim], x[:, 2 * dim - dim // 3:2 * dim]
    return pair_features(a, r)


def exit_point(y: np.ndarray, head_oof: np.ndarray, cuts: np.ndarray, gate_oof: np.ndarray,
               max_loss: float = GATE_MAX_LOSS) -> tuple[np.ndarray, dict]:
    """The gate's exit point per category and what they do out of fold: a text whose gate
    probability is below the exit point in every category skips the full head. A category's point
    is the highest that lets go at most `max_loss` of the rows the full head flags in that
    category and that carry its label (a harmful row it misses anyway costs nothing), so no
    category pays for the others (one point for all let 1.9 points of self-harm intent go)."""
    hit = (head_oof >= cuts) & (y > 0)
    at = np.zeros(y.shape[1], dtype=np.float32)
    for j in range(y.shape[1]):
        ranked = np.sort(gate_oof[hit[:, j], j])
        # strictly below it: at most max_loss of them; where the head catches nothing, nothing is lost
        at[j] = ranked[int(max_loss * len(ranked))] if len(ranked) else 1.0
    go = (gate_oof < at).all(1)
    benign = y.sum(1) == 0
    caught = hit.any(1)
    flagged_benign = (head_oof >= cuts).any(1) & benign
    return at, {"exit": [round(float(a), 4) for a in at], "benign_let_go": round(float(go[benign].mean()), 4),
                "harmful_let_go": round(float(go[~benign].mean()), 4),
                "caught_let_go": round(float(go[caught].mean()), 4) if caught.any() else None,
                "caught_let_go_worst_category": round(float(max(go[hit[:, j]].mean() for j in range(y.shape[1]) if hit[:, j].any())), 4)
                if caught.any() else None,
                "benign_flags_let_go": round(float(go[flagged_benign].mean()), 4) if flagged_benign.any() else None}


def fold_of(group: str, k: int = FOLDS) -> int:
    return int(hashlib.sha256(group.encode()).hexdigest()[:8], 16) % k


# group prefix -> index of the part that names the content (task, write item, topic, hate predicate,
# intent/insult/wish item); the other parts are language, frame and preamble
_CONTENT_PART = {"gen_howto": -1, "gen_write": -1, "gen_topic": -1, "gen_answer": 2, "gen_hate": 2,
                 "gen_intent": 3, "gen_you": 3, "gen_wish": 3, "gen_framed_howto": -1, "gen_framed_write": -1}


def content_key(group: str) -> str:
    """The CV unit of a row: its content, not its (language, frame, content) group. A content is
    caught in all its frames and translations or in none (model card, session 8), so folds split
    by row group put every held-out row's content in training as well: out-of-fold scores then
    promise recall on memorised contents, and the cuts are chosen on them. An answer (and the
    model's answer windows) goes with the request it answers."""
    parts = group.split(":")
    if parts[0] == "model_answers":
        return content_key(":".join(parts[1:-1]))
    i = _CONTENT_PART.get(parts[0])
    if i is None or i >= len(parts):
        return group
    return f"content:{parts[i]}"


def content_fold(group: str) -> int:
    """The CV fold of a row: by content, the one rule the cut search and the fine-tune's holdout share."""
    return fold_of(content_key(group))


def fit_mlp(x: np.ndarray, y: np.ndarray, w: np.ndarray | None = None, epochs: int = EPOCHS) -> dict:
    """One hidden layer, multi-label BCE, on standardised inputs; returns numpy weights {w1, b1, w2,
    b2} for the raw inputs. e5's embeddings all point one way (unrelated texts at cosine ~0.75):
    unstandardised, the net's outputs were nearly constant. The scaling is folded into w1/b1, so
    heads.npz and run time stay as they are."""
    import torch

    torch.manual_seed(SEED)
    torch.set_num_threads(1)  # small matmuls: threads only spin-wait on a busy machine
    mu, sd = x.mean(0), x.std(0) + 1e-6
    xt, yt = torch.from_numpy(((x - mu) / sd).astype(np.float32)), torch.from_numpy(y)
    wt = torch.from_numpy(w if w is not None else np.ones(len(x), dtype=np.float32))
    pos = yt.sum(0)
    pos_weight = ((len(yt) - pos) / pos.clamp(min=1)).clamp(max=20.0).sqrt()  # rare categories
    net = torch.nn.Sequential(torch.nn.Linear(x.shape[1], HIDDEN), torch.nn.ReLU(), torch.nn.Dropout(DROPOUT),
                              torch.nn.Linear(HIDDEN, y.shape[1]))
    opt = torch.optim.AdamW(net.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
    loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=pos_weight, reduction="none")
    gen = torch.Generator().manual_seed(SEED)
    steps = epochs * ((len(x) + BATCH - 1) // BATCH)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=LR, total_steps=steps)
    net.train()
    for _ in range(epochs):
        perm = torch.randperm(len(x), generator=gen)
        for i in range(0, len(x), BATCH):
            b = perm[i : i + BATCH]
            loss = (loss_fn(net(xt[b]), yt[b]).mean(1) * wt[b]).sum() / wt[b].sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    net.eval()
    w1, b1 = net[0].weight.detach().numpy().T, net[0].bias.detach().numpy()
    return {"w1": (w1 / sd[:, None]).astype(np.float32), "b1": (b1 - (mu / sd) @ w1).astype(np.float32),
            "w2": net[3].weight.detach().numpy().T.copy(), "b2": net[3].bias.detach().numpy().copy()}


def best_cut(y: np.ndarray, p: np.ndarray, fp_cost: float) -> float:
    """Threshold maximising TP - fp_cost * FP - FN on out-of-fold probabilities (benign FPs cost
    more than misses: the product must answer everyday requests)."""
    if y.sum() == 0:
        return 0.5
    best, best_t = -1e18, 0.5
    for t in np.unique(np.round(p, 3)):
        if t < 0.05 or t > 0.98:
            continue
        hit = p >= t
        val = (hit & (y > 0)).sum() - fp_cost * (hit & (y == 0)).sum() - (~hit & (y > 0)).sum()
        if val > best:
            best, best_t = val, float(t)
    return best_t


def _fit_job(arrays: tuple, tr: np.ndarray, te: np.ndarray | None):
    """One fit: the head's weights (`te` None) or its probabilities on the rows `te`. `arrays` is
    (x, y, w), or the paths of .npy files a worker process maps them from instead of receiving a
    pickled copy. Seeded and one-threaded (fit_mlp), so any process computes the same numbers."""
    from services.moderation.heads import mlp_probs

    x, y, w = (np.load(a, mmap_mode="r") if isinstance(a, str) else a for a in arrays)
    head = fit_mlp(np.asarray(x[tr]), np.asarray(y[tr]), np.asarray(w[tr]))
    return head if te is None else mlp_probs(head, np.asarray(x[te]))


def save_arrays(folder, name: str, x: np.ndarray, y: np.ndarray, w: np.ndarray) -> tuple[str, ...]:
    """x, y, w as .npy files in `folder`, for `HeadTraining` with a pool of worker processes."""
    paths = []
    for key, arr in (("x", x), ("y", y), ("w", w)):
        path = folder / f"{name}-{key}.npy"
        np.save(path, arr)
        paths.append(str(path))
    return tuple(paths)


class InlineExecutor:
    """Runs each job as it is submitted: the sequential path (experiments, unit tests)."""

    def submit(self, fn, *args):
        from concurrent.futures import Future

        future: Future = Future()
        future.set_result(fn(*args))
        return future


class HeadTraining:
    """A head's group k-fold (out-of-fold probabilities -> per-category cuts) and, with
    `fit_final`, its fit on all rows: every fit is submitted to `executor` at once. Each fit is
    one-threaded (small matmuls), so a pool of one process per core runs them side by side."""

    def __init__(self, executor, arrays: tuple, y: np.ndarray, groups: Sequence[str], name: str, fit_final: bool = True):
        self.y, self.name = y, name
        self.folds = np.array([content_fold(g) for g in groups])
        self._t0 = time.time()
        self._oof = [executor.submit(_fit_job, arrays, self.folds != k, self.folds == k) for k in range(FOLDS)]
        self._final = executor.submit(_fit_job, arrays, np.ones(len(y), dtype=bool), None) if fit_final else None

    def cuts(self, fp_cost: float, cut_fold: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(cuts, oof). `cut_fold`: choose the cuts on that fold's rows only (the ones a fine-tuned
        encoder never saw)."""
        oof = np.zeros_like(self.y)
        for k, job in enumerate(self._oof):
            oof[self.folds == k] = job.result()
            log(f"{self.name} head: fold {k + 1}/{FOLDS} ({(self.folds == k).sum()} rows) done at {time.time() - self._t0:.0f}s")
        sel = self.folds == cut_fold if cut_fold is not None else np.ones(len(self.y), dtype=bool)
        cuts = np.array([best_cut(self.y[sel, j], oof[sel, j], fp_cost) for j in range(self.y.shape[1])], dtype=np.float32)
        return cuts, oof

    def head(self) -> dict:
        return self._final.result()


def cross_validate(x, y, groups, w, fp_cost: float, name: str, cut_fold: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold probabilities (group k-fold) -> per-category cuts, one fit after another;
    returns (cuts, oof)."""
    return HeadTraining(InlineExecutor(), (x, y, w), y, groups, name, fit_final=False).cuts(fp_cost, cut_fold)
