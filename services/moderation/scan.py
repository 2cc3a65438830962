"""The Scanner: windows + normalisation + one batched call per stage; knows nothing of Ray or HTTP.

    scanner = load_scanner(settings.moderation)
    scanner.scan_inputs([["system prompt", "user message", ...], ...])   # per conversation
    scanner.scan_answers([(request, answer_window), ...])                  # answers in context

Every text is scored raw AND normalised (services.moderation.normalize), and a text that hides an
encoded payload (base64, ROT13, Morse, invisible Unicode...: services.moderation.decode) also with
the payload decoded; a category's score is the max over variants and windows, so neither Unicode
tricks, encodings nor harmless padding lower it. Scores are
calibrated so that each category's cross-validated cut is 0.5 (categories.yaml thresholds 0.5).
The lexical ONNX model adds the categories listed in the manifest's `lexical` map ({category: its
cut}), combined with the semantic score by the manifest's `lexical_mode` (max or mean).
"""
from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from services.moderation.categories import CATEGORIES
from services.moderation.heads import calibrate
from services.moderation.segment import capped, message_windows, short_sentences, unique

if TYPE_CHECKING:
    from services.config import ModerationSettings


class SemanticScorer(Protocol):
    def text_scores(self, texts: Sequence[str]) -> np.ndarray: ...
    def answer_scores(self, answers: Sequence[str], requests: Sequence[str]) -> np.ndarray: ...


class LexicalScorer(Protocol):
    def score_array(self, texts: Sequence[str], categories: Sequence[str]) -> np.ndarray: ...


class Scanner:
    def __init__(self, semantic: SemanticScorer, lexical: LexicalScorer | None = None,
                 lexical_cuts: dict[str, float] | None = None, lexical_mode: str = "max", normalize: Callable[[str], str] = lambda s: s,
                 window_chars: int = 200, min_window_chars: int = 24, max_windows: int = 48,
                 reveal: Callable[[str], list[str]] = lambda s: []):
        self.semantic = semantic
        self.lexical = lexical
        cuts = lexical_cuts or {}
        self._lex_cats = list(cuts)
        self._lex_idx = np.array([CATEGORIES.index(c) for c in cuts], dtype=np.int64)
        self._lex_cuts = np.array(list(cuts.values()), dtype=np.float32)
        if lexical_mode not in ("max", "mean"):
            raise ValueError(f"lexical_mode must be max or mean, not {lexical_mode!r}")
        self.lexical_mode = lexical_mode
        self.normalize = normalize
        self.reveal = reveal  # what a message hides in an encoding, decoded (services.moderation.decode)
        self.window_chars, self.min_window_chars, self.max_windows = window_chars, min_window_chars, max_windows

    def _revealed(self, texts: Sequence[str]) -> list[str]:
        """The texts, then what each hides in an encoding, decoded (in place, and each payload alone)."""
        return [*texts, *(r for t in texts for r in self.reveal(t))]

    def _variants(self, text: str) -> list[str]:
        texts = self._revealed([text])
        return unique(texts + [self.normalize(t) for t in texts])

    def windows(self, messages: Sequence[str]) -> list[str]:
        """All windows of one conversation, raw and normalised, at most max_windows of each."""
        def cut(texts: Sequence[str]) -> list[str]:
            wins = [w for m in texts for w in message_windows(m, self.window_chars, self.min_window_chars)]
            wins += [w for m in texts for w in short_sentences(m, self.min_window_chars)]
            return capped(unique(wins), self.max_windows)

        texts = self._revealed(messages)
        return unique(cut(texts) + cut([self.normalize(m) for m in texts]))

    def _combine(self, sem: np.ndarray, texts: Sequence[str]) -> np.ndarray:
        if self.lexical is None or not len(self._lex_idx) or not texts:
            return sem
        lex = self.lexical.score_array(list(texts), self._lex_cats)  # only the columns used
        lex = calibrate(lex, self._lex_cuts)
        sem = sem.copy()
        both = sem[:, self._lex_idx]
        sem[:, self._lex_idx] = np.maximum(both, lex) if self.lexical_mode == "max" else (both + lex) / 2
        return sem

    @staticmethod
    def _max_by(owner: list[int], scores: np.ndarray, n: int) -> list[dict[str, float]]:
        out = np.zeros((n, len(CATEGORIES)), dtype=np.float32)
        if len(owner):
            np.maximum.at(out, np.array(owner), scores)
        return [dict(zip(CATEGORIES, row)) for row in out.tolist()]

    def scan_inputs(self, conversations: Sequence[Sequence[str]]) -> list[dict[str, float]]:
        texts: list[str] = []
        owner: list[int] = []
        for i, messages in enumerate(conversations):
            wins = self.windows([m for m in messages if m and not m.isspace()])
            texts += wins
            owner += [i] * len(wins)
        scores = self._combine(self.semantic.text_scores(texts), texts) if texts else np.zeros((0, len(CATEGORIES)))
        return self._max_by(owner, scores, len(conversations))

    def scan_answers(self, pairs: Sequence[tuple[str, str]]) -> list[dict[str, float]]:
        answers: list[str] = []
        requests: list[str] = []
        owner: list[int] = []
        for i, (request, answer) in enumerate(pairs):
            if not answer or answer.isspace():
                continue
            req = self.normalize(" ".join((request or "").split()))
            for variant in self._variants(" ".join(answer.split())):
                answers.append(variant)
                requests.append(req)
                owner.append(i)
        scores = self._combine(self.semantic.answer_scores(answers, requests), answers) if answers else np.zeros((0, len(CATEGORIES)))
        return self._max_by(owner, scores, len(pairs))


def load_scanner(settings: "ModerationSettings") -> Scanner:
    """The built artefact in settings.model_dir: semantic stage + lexical model + manifest cuts."""
    from services.moderation.decode import reveal
    from services.moderation.decode.joined import lexicon
    from services.moderation.normalize import normalize
    from services.moderation.onnx_classifier import OnnxTextClassifier
    from services.moderation.semantic import SemanticModel

    model_dir = Path(settings.model_dir)
    if settings.reveal_encoded:
        lexicon()  # words run together are split with it: loaded now, so that no check waits for it
    lexical = OnnxTextClassifier(model_dir, intra_op_threads=settings.intra_op_threads)
    manifest = json.loads((model_dir / "manifest.json").read_text())
    return Scanner(
        SemanticModel(model_dir, threads=settings.intra_op_threads, cache_size=settings.embedding_cache_size,
                      cascade=settings.cascade), lexical,
        lexical_cuts=manifest.get("lexical", {}), lexical_mode=manifest.get("lexical_mode", "max"), normalize=normalize,
        window_chars=settings.window_chars, min_window_chars=settings.min_window_chars,
        max_windows=settings.max_windows, reveal=reveal if settings.reveal_encoded else (lambda s: []),
    )
