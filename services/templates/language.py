"""Which languages a template may be shown in: the request field, then Accept-Language, then the
language the user wrote in (py3langid), so a German question without headers gets German text."""
from __future__ import annotations

import functools


def _parse_accept_language(header: str) -> list[str]:
    """Languages from an Accept-Language header, best first (q-values respected)."""
    ranked: list[tuple[float, int, str]] = []
    for i, part in enumerate(header.split(",")):
        piece = part.strip()
        if not piece:
            continue
        tag, _, params = piece.partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        if tag.strip() != "*" and q > 0:
            ranked.append((-q, i, tag.strip().lower()))
    return [tag for _, _, tag in sorted(ranked)]


@functools.cache
def _identifier():
    """langid.py's model (BSD; ~0.9 s to load, then ~0.05 ms a text): loaded once per process."""
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def warm() -> None:
    """Load the detector now (replica start), not on the first request's event loop."""
    _identifier()


def detect_language(text: str, min_confidence: float) -> str | None:
    """ISO 639-1 code of `text`, or None when unsure: greetings and two-word requests carry too
    little signal ("hi" scores 0.01), so a low-confidence guess must not pick the template."""
    text = " ".join(text.split())[:1000]
    if not text or min_confidence > 1:
        return None
    lang, prob = _identifier().classify(text)
    return lang if prob >= min_confidence else None


def language_preferences(requested: str | None, accept_language: str | None) -> list[str]:
    """The explicit request field, then Accept-Language, best first. Which of them has a template
    is the template stage's call (it knows every language in Redis, also ones added at run time)."""
    return ([requested.lower()] if requested else []) + _parse_accept_language(accept_language or "")


def with_detected_language(prefs: list[str], text: str, min_confidence: float) -> list[str]:
    """`prefs`, then the language `text` is written in (off when min_confidence > 1). The guard asks
    only when it shows a template: most turns are never blocked, so most never pay for detection."""
    detected = detect_language(text, min_confidence)
    return prefs + ([detected] if detected and detected not in prefs else [])
