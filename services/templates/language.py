"""Which language a template is shown in: the request field, else Accept-Language, else default."""
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


def pick_language(requested: str | None, accept_language: str | None, available: set[str], default: str) -> str:
    """First of: the explicit request field, then Accept-Language, that we have templates for."""
    candidates = ([requested.lower()] if requested else []) + _parse_accept_language(accept_language or "")
    for tag in candidates:
        for option in (tag, tag.split("-")[0]):
            if option in available:
                return option
    return default
