from services.config import StreamingSettings
from services.pipeline.windows import WindowSplitter


def test_windows_cover_the_answer_exactly_once_with_overlap_context():
    answer = "word " * 130  # 650 chars, no sentence ends
    s = WindowSplitter(StreamingSettings(window_chars=200, overlap_chars=50))
    windows = []
    for ch in answer:
        s.add(ch)
        while (w := s.next_window()) is not None:
            windows.append(w)
    windows.append(s.next_window(final=True))
    released = "".join(w.text[w.new_start - w.start:] for w in windows)
    assert released == answer
    assert all(w.new_start - w.start <= 50 for w in windows)
    assert windows[1].start == windows[0].end - 50  # context carried into the next check
    assert all(len(w.text) <= 250 for w in windows)


def test_sentence_end_releases_early_but_not_for_tiny_sentences():
    s = WindowSplitter(StreamingSettings(window_chars=200, overlap_chars=10))
    s.add("Hi. ")
    assert s.next_window() is None  # below the minimum sentence length
    s.add("This sentence is long enough to check. And more")
    w = s.next_window()
    assert w is not None and w.text.endswith("enough to check.")
    assert s.next_window() is None  # "And more" waits for more text
    assert s.next_window(final=True).text.endswith("And more")


def test_all_windows_matches_incremental_cuts():
    text = "First sentence is here and long. Second one follows it closely! " * 8
    settings = StreamingSettings(window_chars=120, overlap_chars=30)
    whole = WindowSplitter(settings)
    whole.add(text)
    inc = WindowSplitter(settings)
    got = []
    for ch in text:
        inc.add(ch)
        while (w := inc.next_window()) is not None:
            got.append((w.new_start, w.end))
    if (w := inc.next_window(final=True)) is not None:
        got.append((w.new_start, w.end))
    assert [(w.new_start, w.end) for w in whole.all_windows()] == got
    assert got[-1][1] == len(text)
