"""Where the growing answer is cut into moderation windows.

Windows grow: the first is short (`first_window_chars`, or an earlier sentence end), so a
buffered stream shows its first words after one quick check; each next window may be twice as
long, up to `window_chars`. Each window carries the last `overlap_chars` of already-checked text
as context, so a phrase split across two windows is still seen whole. A window ends at the
first sentence end that is long enough, else at the last space before its limit. Streaming and
non-streaming use the same cuts, so both see the same verdicts.

The trade: a shorter first window shows text sooner but is judged with less context; the
overlap and the growing windows that follow re-read it with more.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from services.config import StreamingSettings

_SENTENCE_END = re.compile(r"[.!?…。！？](?=\s)|\n")
MIN_SENTENCE_CHARS = 24  # don't pay a check for every tiny sentence


@dataclass(frozen=True)
class Window:
    start: int  # where the checked text begins (includes overlap context)
    new_start: int  # where the not-yet-checked part begins
    end: int
    text: str  # answer[start:end]

    @property
    def new_text_len(self) -> int:
        return self.end - self.new_start


class WindowSplitter:
    def __init__(self, settings: StreamingSettings):
        self.first_window_chars = min(settings.first_window_chars, settings.window_chars)
        self.window_chars = settings.window_chars
        self.overlap_chars = settings.overlap_chars
        self.at_sentences = settings.check_at_sentence_end
        self.answer = ""
        self.checked_upto = 0
        self.windows_cut = 0

    @property
    def limit(self) -> int:
        """Length limit of the next window: doubling from the first window's up to window_chars."""
        return min(self.window_chars, self.first_window_chars << min(self.windows_cut, 16))

    def add(self, delta: str) -> None:
        self.answer += delta

    def _cut(self) -> int | None:
        """First sentence end past the minimum, else a full window; None if neither yet.

        Cutting at the *first* eligible point makes the cuts independent of how the text
        arrived (token by token or all at once), so both API paths check the same windows.
        """
        limit = self.limit
        pending = self.answer[self.checked_upto : self.checked_upto + limit + 1]
        if self.at_sentences:
            shortest = min(MIN_SENTENCE_CHARS, limit // 2)
            for m in _SENTENCE_END.finditer(pending):
                if shortest <= m.end() <= limit:
                    return self.checked_upto + m.end()
        if len(pending) > limit:
            # Known up to the limit: end after the last space in its second half (whole words).
            space = pending.rfind(" ", limit // 2, limit)
            return self.checked_upto + (space + 1 if space > 0 else limit)
        return None

    def next_window(self, final: bool = False) -> Window | None:
        """The next window to check, or None if not enough new text yet (`final`: flush the rest)."""
        if self.checked_upto >= len(self.answer):
            return None
        end = len(self.answer) if final else self._cut()
        if end is None:
            return None
        start = max(0, self.checked_upto - self.overlap_chars)
        window = Window(start, self.checked_upto, end, self.answer[start:end])
        self.checked_upto = end
        self.windows_cut += 1
        return window

    def all_windows(self) -> list[Window]:
        windows = []
        while (w := self.next_window()) is not None:
            windows.append(w)
        if (w := self.next_window(final=True)) is not None:
            windows.append(w)
        return windows
