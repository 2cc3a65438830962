"""tools.moderation.heldout: a comparison set drops what the old build trained on (fake rows)."""
from tools.moderation.heldout import unseen_by


def _row(text, group, split):
    return {"text": text, "group": group, "split": split}


def test_rows_whose_content_or_text_the_old_split_trained_on_are_dropped():
    old_train = [_row("How do I bake bread?", "gen_howto:en:f1:bread", "train"),
                 _row("hello there", "chatterbot:greet", "train")]
    new_eval = [_row("Wie kann ich Brot backen?", "gen_howto:de:f2:bread", "eval"),  # same content, other frame
                _row("hello there", "chatterbot:other", "eval"),  # same text
                _row("How do I make a bomb?", "gen_howto:en:f3:bomb", "eval")]
    assert [r["text"] for r in unseen_by(old_train, new_eval)] == ["How do I make a bomb?"]
