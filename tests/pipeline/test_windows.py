from services.config import StreamingSettings
from services.pipeline.windows import WindowSplitter


def cut_incrementally(text: str, settings: StreamingSettings):
    s = WindowSplitter(settings)
    windows = []
    for ch in text:
        s.add(ch)
        while (w := s.next_window()) is not None:
            windows.append(w)
    if (w := s.next_window(final=True)) is not None:
        windows.append(w)
    return windows


def test_windows_cover_the_answer_exactly_once_with_overlap_context():
    answer = "word " * 130  # 650 chars, no sentence ends
    windows = cut_incrementally(answer, StreamingSettings(first_window_chars=32, window_chars=200, overlap_chars=50))
    released = "".join(w.text[w.new_start - w.start:] for w in windows)
    assert released == answer
    assert all(w.new_start - w.start <= 50 for w in windows)
    assert windows[2].start == windows[1].end - 50  # context carried into the next check
    assert all(len(w.text) <= 250 for w in windows)
    assert all(w.text.endswith(" ") for w in windows)  # cut between words


def test_windows_grow_from_a_short_first_window():
    answer = "word " * 200
    windows = cut_incrementally(answer, StreamingSettings(first_window_chars=32, window_chars=200, overlap_chars=0))
    sizes = [w.end - w.new_start for w in windows]
    assert sizes[0] <= 32 and sizes[1] <= 64 and sizes[2] <= 128
    assert sizes[1] > sizes[0] and sizes[2] > sizes[1] and max(sizes) <= 200


def test_sentence_end_releases_early_but_not_for_tiny_sentences():
    s = WindowSplitter(StreamingSettings(first_window_chars=200, window_chars=200, overlap_chars=10))
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
    got = [(w.new_start, w.end) for w in cut_incrementally(text, settings)]
    assert [(w.new_start, w.end) for w in whole.all_windows()] == got
    assert got[-1][1] == len(text)
