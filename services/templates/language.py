"""Which languages a template may be shown in: the request field, then Accept-Language."""
from __future__ import annotations


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


def language_preferences(requested: str | None, accept_language: str | None) -> list[str]:
    """The explicit request field, then Accept-Language, best first. Which of them has a template
    is the template stage's call (it knows every language in Redis, also ones added at run time)."""
    return ([requested.lower()] if requested else []) + _parse_accept_language(accept_language or "")
