#!/usr/bin/env python3
"""Regenerate tests/fixtures/quant/: one GGUF per ggml tensor type with a
4 x 512 tensor `t` of random block bytes, plus its dequantization.

For each type X: `X.gguf` (single tensor `t`, ne = [512, 4]) and `X.f32`
(gguf.quants.dequantize of the same bytes: raw little-endian float32, 4*512
values, row-major [4][512]). The block bytes are uniformly random (numpy
seed), so every bit pattern of the packed quantized values occurs; only the
f16 scale / min fields are overwritten with random finite f16 values of
moderate magnitude (|v| in [1e-3, 1], random sign), so no NaN/Inf appears.
F16 / BF16 are random bit patterns, re-drawn where not finite or where
|v| >= 2^16 (BF16); row 0 starts with pinned edge cases (+-0, subnormals,
largest finite values, 1.0, -2.0).

Run from the repo root:  python3 tests/reference/make_quant_fixtures.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

import gguf
from gguf import GGMLQuantizationType as QT

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
OUT = ROOT / "tests" / "fixtures" / "quant"

ROWS, COLS = 4, 512
SEED = 20240601

# byte offsets of the f16 scale/min fields inside one block
F16_FIELDS = {
    QT.Q8_0: [0],       # d, qs[32]
    QT.Q4_0: [0],       # d, qs[16]
    QT.Q4_1: [0, 2],    # d, m, qs[16]
    QT.Q5_0: [0],       # d, qh[4], qs[16]
    QT.Q5_1: [0, 2],    # d, m, qh[4], qs[16]
    QT.Q4_K: [0, 2],    # d, dmin, scales[12], qs[128]
    QT.Q5_K: [0, 2],    # d, dmin, scales[12], qh[32], qs[128]
    QT.Q6_K: [208],     # ql[128], qh[64], scales[16] (int8), d
}
# +0, -0, smallest subnormals, largest subnormal, smallest normal, largest
# allowed finite (both signs), 1.0, -2.0
SPECIAL_16BIT = {
    QT.F16: [0x0000, 0x8000, 0x0001, 0x8001, 0x03FF, 0x0400, 0x7BFF, 0xFBFF, 0x3C00, 0xC000],
    QT.BF16: [0x0000, 0x8000, 0x0001, 0x8001, 0x007F, 0x0080, 0x477F, 0xC77F, 0x3F80, 0xC000],
}
TYPES = [QT.F16, QT.BF16, QT.Q8_0, QT.Q4_0, QT.Q4_1, QT.Q5_0, QT.Q5_1, QT.Q4_K, QT.Q5_K, QT.Q6_K]


def random_scales(rng: np.random.Generator, n: int) -> np.ndarray:
    mag = np.exp(rng.uniform(np.log(1e-3), np.log(1.0), size=n))
    sign = np.where(rng.random(n) < 0.5, -1.0, 1.0)
    return (mag * sign).astype(np.float16)


def make_bytes(qtype: QT, rng: np.random.Generator) -> np.ndarray:
    block, tsize = gguf.GGML_QUANT_SIZES[qtype]
    row_bytes = COLS // block * tsize
    raw = rng.integers(0, 256, size=(ROWS, row_bytes), dtype=np.uint8)
    if qtype == QT.F16:
        v = raw.view(np.uint16)
        bad = (v & 0x7C00) == 0x7C00  # exponent all ones: Inf/NaN
        while bad.any():
            v[bad] = rng.integers(0, 1 << 16, size=int(bad.sum()), dtype=np.uint16)
            bad = (v & 0x7C00) == 0x7C00
    elif qtype == QT.BF16:
        # keep |v| < 2^16 like F16 (biased exponent < 127 + 16); this also
        # excludes Inf/NaN. Huge-but-finite bf16 values would only overflow
        # whatever arithmetic a test does with them.
        v = raw.view(np.uint16)
        bad = (v & 0x7F80) >= (143 << 7)
        while bad.any():
            v[bad] = rng.integers(0, 1 << 16, size=int(bad.sum()), dtype=np.uint16)
            bad = (v & 0x7F80) >= (143 << 7)
    if qtype in SPECIAL_16BIT:
        # pin edge cases at the start of row 0
        special = np.array(SPECIAL_16BIT[qtype], dtype=np.uint16)
        raw.view(np.uint16).reshape(-1)[: special.size] = special
    else:
        blocks = raw.reshape(-1, tsize)
        for off in F16_FIELDS[qtype]:
            blocks[:, off:off + 2] = random_scales(rng, blocks.shape[0]).reshape(-1, 1).view(np.uint8)
    return raw


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)
    for qtype in TYPES:
        raw = make_bytes(qtype, rng)
        vals = gguf.quants.dequantize(raw, qtype).astype(np.float32).reshape(ROWS, COLS)
        assert np.all(np.isfinite(vals)), qtype.name

        path = OUT / f"{qtype.name}.gguf"
        w = gguf.GGUFWriter(str(path), arch="kinfer-quant-test")
        w.add_type(gguf.GGUFType.MODEL)
        w.add_name(f"quant fixture {qtype.name}")
        # uint8 rows of raw block bytes + raw_dtype: the writer derives the
        # element shape (4, 512) -> ne = [512, 4]. (raw_shape, if given, is
        # also interpreted as a byte shape for uint8 data.)
        w.add_tensor("t", raw, raw_dtype=qtype)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        np.ascontiguousarray(vals, dtype="<f4").tofile(OUT / f"{qtype.name}.f32")

        # read back: same type, shape and bytes
        r = gguf.GGUFReader(str(path))
        (t,) = r.tensors
        assert t.name == "t" and t.tensor_type == qtype, (t.name, t.tensor_type)
        assert t.shape.tolist() == [COLS, ROWS], t.shape.tolist()
        assert np.array_equal(np.asarray(t.data).reshape(-1).view(np.uint8), raw.reshape(-1)), qtype.name
        print(f"{qtype.name:5s}: {path.stat().st_size:6d} bytes gguf, values in "
              f"[{vals.min():.4g}, {vals.max():.4g}], mean |v| {np.abs(vals).mean():.4g}", flush=True)

    (OUT / "README.md").write_text(
        "# ggml tensor-type fixtures\n\n"
        "Made by `tests/reference/make_quant_fixtures.py` (gguf-py 0.19, numpy seed "
        f"{SEED}). For each type X of F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K and Q6_K, "
        "`X.gguf` holds one tensor `t` of 4 rows x 512 columns (GGUF ne = [512, 4]) whose block bytes are "
        "uniformly random, except that every f16 scale/min field (d, m, dmin) is a random finite f16 with "
        "|v| in [1e-3, 1] and random sign (F16/BF16: random bit patterns, re-drawn where not finite or "
        "|v| >= 65536; row 0 starts with +-0, subnormals, the largest values, 1.0 and -2.0), "
        "so all bit patterns of the packed values occur but no NaN/Inf does; `X.f32` is "
        "`gguf.quants.dequantize` of the same bytes as raw little-endian float32, row-major [4][512]. "
        "A dequantizer is correct when it reproduces `X.f32` from `X.gguf` (exactly, up to float32 "
        "rounding of `d * q` products; F16/BF16 conversions must be bit-exact).\n"
    )
    print(f"wrote {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    sys.exit(main())
