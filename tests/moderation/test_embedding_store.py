"""The build's embedding store: a rebuild embeds only texts the last build did not (fake encoder)."""
import numpy as np

from tools.moderation.embedding_store import EmbeddingStore
from tools.moderation.semantic_build import embed_all


class CountingEncoder:
    """Deterministic per text, like the real one run text by text; records what it embedded."""

    def __init__(self):
        self.seen: list[str] = []

    def embed(self, texts):
        self.seen += list(texts)
        return np.stack([np.full(4, float(len(t)) + (ord(t[0]) if t else 0), dtype=np.float32) for t in texts])


def test_a_second_build_embeds_only_new_texts_and_gets_identical_embeddings(tmp_path):
    first, second = CountingEncoder(), CountingEncoder()
    a = embed_all(first, ["bake bread", "make a bomb", "bake bread"], store=EmbeddingStore(tmp_path, "k"))
    assert sorted(first.seen) == ["bake bread", "make a bomb"]
    b = embed_all(second, ["make a bomb", "kill a process"], store=EmbeddingStore(tmp_path, "k"))
    assert second.seen == ["kill a process"]
    assert np.array_equal(a["make a bomb"], b["make a bomb"])
    fresh = CountingEncoder().embed(["make a bomb"])[0]
    assert np.array_equal(b["make a bomb"], fresh)


def test_the_store_keeps_only_the_last_build_and_keys_are_separate(tmp_path):
    embed_all(CountingEncoder(), ["old text", "kept"], store=EmbeddingStore(tmp_path, "k"))
    embed_all(CountingEncoder(), ["kept", "new text"], store=EmbeddingStore(tmp_path, "k"))
    store = EmbeddingStore(tmp_path, "k")
    assert len(store) == 2 and set(store.lookup(["old text", "kept", "new text"])) == {"kept", "new text"}
    assert len(EmbeddingStore(tmp_path, "other-encoder")) == 0


def test_the_key_follows_the_encoder_bytes_and_settings(tmp_path):
    from tools.moderation.embedding_store import store_key

    enc, tok = tmp_path / "encoder.onnx", tmp_path / "tokenizer.json"
    enc.write_bytes(b"graph-1")
    tok.write_text("{}")
    k = store_key(enc, tok, 128, 2)
    assert k == store_key(enc, tok, 128, 2)
    assert k != store_key(enc, tok, 64, 2) and k != store_key(enc, tok, 128, 1)
    enc.write_bytes(b"graph-2")
    assert k != store_key(enc, tok, 128, 2)


def test_digests_ending_in_a_zero_byte_are_found_again(tmp_path):
    """numpy's "S16" strings drop trailing NUL bytes: such digests (1 in 256) must still match."""
    from tools.moderation.embedding_store import _digest

    texts = [f"text {i}" for i in range(3000)]
    zero_tail = [t for t in texts if _digest(t).endswith(b"\x00")]
    assert zero_tail  # ~12 expected among 3,000
    embed_all(CountingEncoder(), texts, store=EmbeddingStore(tmp_path, "k"))
    again = CountingEncoder()
    embed_all(again, texts, store=EmbeddingStore(tmp_path, "k"))
    assert again.seen == []
