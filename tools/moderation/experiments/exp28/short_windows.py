"""Experiment 28 (model card), part 2: do the short sentences scored alone (segment.short_sentences)
cause benign flags? Each eval input is scored with and without those windows; padded harmful
inputs (five "Tell me about bread." before each of 400 English harmful rows) show what they guard.

    python -m tools.moderation.experiments.exp28.short_windows [--model-dir DIR] [--data DIR]
"""
from __future__ import annotations

import numpy as np

from services.config import ModerationSettings
from services.moderation import load_policy
from services.moderation.categories import CATEGORIES
from services.moderation.scan import load_scanner
from services.moderation.segment import message_windows, short_sentences, unique
from tools.moderation.curve import BENIGN_FAMILIES
from tools.moderation.eval import HARMFUL
from tools.moderation.experiments.exp28.lang_cuts import input_rows, parse_args

PAD = "Tell me about bread. " * 5


def main(argv: list[str] | None = None) -> int:
    args = parse_args(__doc__, argv)
    settings = ModerationSettings(model_dir=args.model_dir)
    scanner, policy = load_scanner(settings), load_policy(settings)
    cut = np.array([policy.threshold(c) for c in CATEGORIES])
    on = np.array([c not in policy.disabled for c in CATEGORIES])

    def windows(text: str) -> list[tuple[str, bool]]:
        """(window, is a short sentence scored alone), raw and normalised, as Scanner.windows cuts them."""
        out = []
        for variant in unique([text, scanner.normalize(text)]):
            variant = " ".join(variant.split())
            out += [(w, False) for w in message_windows(variant, scanner.window_chars, scanner.min_window_chars)]
            out += [(w, True) for w in short_sentences(variant, scanner.min_window_chars)]
        return out

    def margins(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        per_text = [windows(t) for t in texts]
        every = list(dict.fromkeys(w for ws in per_text for w, _ in ws))
        scores = scanner._combine(scanner.semantic.text_scores(every), every)
        margin = dict(zip(every, np.where(on, scores - cut, -np.inf).max(axis=1)))
        full = np.array([max(margin[w] for w, _ in ws) for ws in per_text])
        without = np.array([max([margin[w] for w, short in ws if not short] or [-1.0]) for ws in per_text])
        return full, without

    rows = input_rows(args.data)
    fam = np.array([r["family"] for r in rows])
    lang = np.array([r["lang"] for r in rows])
    full, without = margins([r["text"] for r in rows])
    groups = {"benign": np.isin(fam, BENIGN_FAMILIES), "everyday": np.isin(fam, ("everyday_benign", "smalltalk")),
              "tricky": fam == "tricky_benign", "harmful": np.isin(fam, HARMFUL), "harmful requests": fam == "harmful_request"}
    groups |= {f"{lg} {k}": (lang == lg) & groups[k] for lg in ("en", "de", "fr", "es") for k in ("benign", "harmful")}
    for name, mask in groups.items():
        print(f"{name:18s} n={int(mask.sum()):5d}  flagged {np.mean(full[mask] >= 0):6.1%}  "
              f"without short windows {np.mean(without[mask] >= 0):6.1%}")
    idx = np.where(groups["harmful"] & (lang == "en"))[0][:400]
    padded_full, padded_without = margins([PAD + rows[i]["text"] for i in idx])
    print(f"padded en harmful n={len(idx)}: plain {np.mean(full[idx] >= 0):6.1%}  padded {np.mean(padded_full >= 0):6.1%}"
          f"  padded without short windows {np.mean(padded_without >= 0):6.1%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
