"""Simple numpy quantizers for the ggml K-quant types Q4_K, Q5_K and Q6_K.

gguf-py (0.19) ships dequantizers for these types but no quantizers. The
quantizers here are deliberately simple (min/max fitting per sub-block, no
iterative search), so their error is somewhat larger than llama-quantize's,
but the bit layout is exactly ggml's block layout (QK_K = 256):

  block_q4_K (144 bytes): f16 d, f16 dmin, u8 scales[12], u8 qs[128]
  block_q5_K (176 bytes): f16 d, f16 dmin, u8 scales[12], u8 qh[32], u8 qs[128]
  block_q6_K (210 bytes): u8 ql[128], u8 qh[64], i8 scales[16], f16 d

Q4_K/Q5_K: 8 sub-blocks of 32 values, value = d*sc[j]*q - dmin*m[j], with
6-bit sc/m packed into 12 bytes (see _pack_scales_k4). Q6_K: 16 sub-blocks of
16 values, value = d*scales[j]*(q - 32), q 6 bits.

Each quantize_* function takes a float array whose last dimension is a
multiple of 256 and returns a uint8 array of shape (*lead, row_bytes), ready
for GGUFWriter.add_tensor(..., raw_dtype=...). self_test() checks the output
against gguf.quants.dequantize.
"""

from __future__ import annotations

import numpy as np

QK_K = 256


def _as_blocks(x: np.ndarray) -> tuple[np.ndarray, tuple[int, ...]]:
    x = np.asarray(x, dtype=np.float32)
    if x.shape[-1] % QK_K != 0:
        raise ValueError(f"row size {x.shape[-1]} is not a multiple of {QK_K}")
    return x.reshape(-1, QK_K), x.shape


def _safe_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    out = np.zeros(np.broadcast(a, b).shape, dtype=np.float32)
    np.divide(a, b, out=out, where=(b != 0))
    return out


def _pack_scales_k4(sc: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Pack 8 six-bit scales and 8 six-bit mins per block into 12 bytes.

    Inverse of ggml's get_scale_min_k4:
      j < 4:  sc = q[j] & 63,                         m = q[j+4] & 63
      j >= 4: sc = (q[j+4] & 0xF) | ((q[j-4] >> 6) << 4),
              m  = (q[j+4] >> 4)  | ((q[j]   >> 6) << 4)
    """
    sc = sc.astype(np.uint8)
    m = m.astype(np.uint8)
    out = np.zeros((sc.shape[0], 12), dtype=np.uint8)
    lo_sc, hi_sc = sc[:, :4], sc[:, 4:]
    lo_m, hi_m = m[:, :4], m[:, 4:]
    out[:, 0:4] = (lo_sc & 63) | ((hi_sc >> 4) << 6)
    out[:, 4:8] = (lo_m & 63) | ((hi_m >> 4) << 6)
    out[:, 8:12] = (hi_sc & 0xF) | ((hi_m & 0xF) << 4)
    return out


def _quantize_affine_k(blocks: np.ndarray, nmax: int):
    """Shared part of Q4_K (nmax=15) and Q5_K (nmax=31).

    Returns (d f16, dmin f16, sc u8[8], m u8[8], q u8[256]) per block.
    """
    nb = blocks.shape[0]
    sub = blocks.reshape(nb, 8, 32)
    # x ~= scale*q - mn with q in [0, nmax] and mn >= 0 (ggml stores the
    # min as a positive number that is subtracted).
    xmin = np.minimum(sub.min(axis=-1), 0.0)
    xmax = sub.max(axis=-1)
    scale = (xmax - xmin) / nmax
    mn = -xmin

    d = (scale.max(axis=-1) / 63.0).astype(np.float16)
    dmin = (mn.max(axis=-1) / 63.0).astype(np.float16)
    df = d.astype(np.float32)[:, None]
    dminf = dmin.astype(np.float32)[:, None]

    sc = np.clip(np.round(_safe_div(scale, df)), 0, 63).astype(np.uint8)
    m = np.clip(np.round(_safe_div(mn, dminf)), 0, 63).astype(np.uint8)

    eff_scale = (df * sc.astype(np.float32))[..., None]
    eff_min = (dminf * m.astype(np.float32))[..., None]
    q = np.clip(np.round(_safe_div(sub + eff_min, eff_scale)), 0, nmax).astype(np.uint8)
    return d, dmin, sc, m, q.reshape(nb, QK_K)


def _pack_nibbles_k(q: np.ndarray) -> np.ndarray:
    """Low 4 bits of 256 values -> 128 bytes: for each 64-value chunk c,
    byte 32c+l holds value 64c+l (low nibble) and 64c+32+l (high nibble)."""
    nb = q.shape[0]
    q = (q & 0xF).reshape(nb, 4, 2, 32)
    return (q[:, :, 0, :] | (q[:, :, 1, :] << 4)).reshape(nb, 128).astype(np.uint8)


def quantize_q4_k(x: np.ndarray) -> np.ndarray:
    blocks, shape = _as_blocks(x)
    d, dmin, sc, m, q = _quantize_affine_k(blocks, 15)
    out = np.concatenate([
        d.reshape(-1, 1).view(np.uint8),
        dmin.reshape(-1, 1).view(np.uint8),
        _pack_scales_k4(sc, m),
        _pack_nibbles_k(q),
    ], axis=1)
    assert out.shape[1] == 144
    return out.reshape(*shape[:-1], shape[-1] // QK_K * 144)


def quantize_q5_k(x: np.ndarray) -> np.ndarray:
    blocks, shape = _as_blocks(x)
    d, dmin, sc, m, q = _quantize_affine_k(blocks, 31)
    nb = q.shape[0]
    # qh[l] bit j = bit 4 of value 32*j + l (sub-block j, element l)
    hi = ((q >> 4) & 1).reshape(nb, 8, 32).astype(np.uint8)
    qh = np.zeros((nb, 32), dtype=np.uint8)
    for j in range(8):
        qh |= hi[:, j, :] << j
    out = np.concatenate([
        d.reshape(-1, 1).view(np.uint8),
        dmin.reshape(-1, 1).view(np.uint8),
        _pack_scales_k4(sc, m),
        qh,
        _pack_nibbles_k(q),
    ], axis=1)
    assert out.shape[1] == 176
    return out.reshape(*shape[:-1], shape[-1] // QK_K * 176)


def quantize_q6_k(x: np.ndarray) -> np.ndarray:
    blocks, shape = _as_blocks(x)
    nb = blocks.shape[0]
    sub = blocks.reshape(nb, 16, 16)
    # Signed sub-block scale chosen so that the largest-magnitude value maps
    # exactly to q = -32 (the 6-bit range is [-32, 31]).
    idx = np.abs(sub).argmax(axis=-1)
    vmax = np.take_along_axis(sub, idx[..., None], axis=-1)[..., 0]
    s = -vmax / 32.0
    d = (np.abs(s).max(axis=-1) / 127.0).astype(np.float16)
    df = d.astype(np.float32)[:, None]
    sc = np.clip(np.round(_safe_div(s, df)), -128, 127).astype(np.int8)
    eff = (df * sc.astype(np.float32))[..., None]
    q = np.clip(np.round(_safe_div(sub, eff)), -32, 31).astype(np.int16) + 32
    q = q.reshape(nb, 2, 4, 32).astype(np.uint8)  # [half][quarter][l]
    # per 128-value half: ql[l] = q0|q2<<4, ql[32+l] = q1|q3<<4,
    # qh[l] = hi(q0) | hi(q1)<<2 | hi(q2)<<4 | hi(q3)<<6
    lo = q & 0xF
    hi = q >> 4
    ql = np.concatenate([lo[:, :, 0] | (lo[:, :, 2] << 4), lo[:, :, 1] | (lo[:, :, 3] << 4)], axis=-1)
    qh = hi[:, :, 0] | (hi[:, :, 1] << 2) | (hi[:, :, 2] << 4) | (hi[:, :, 3] << 6)
    out = np.concatenate([
        ql.reshape(nb, 128),
        qh.reshape(nb, 64),
        sc.view(np.uint8).reshape(nb, 16),
        d.reshape(-1, 1).view(np.uint8),
    ], axis=1).astype(np.uint8)
    assert out.shape[1] == 210
    return out.reshape(*shape[:-1], shape[-1] // QK_K * 210)


QUANTIZERS = {
    "Q4_K": quantize_q4_k,
    "Q5_K": quantize_q5_k,
    "Q6_K": quantize_q6_k,
}

# Relative RMS error bounds asserted by self_test / check_roundtrip on
# Gaussian data (observed with these simple quantizers: ~0.06, ~0.03, ~0.015).
MAX_REL_RMS = {"Q4_K": 0.12, "Q5_K": 0.06, "Q6_K": 0.03}


def quantize(x: np.ndarray, type_name: str) -> np.ndarray:
    return QUANTIZERS[type_name.upper()](x)


def rel_rms(a: np.ndarray, b: np.ndarray) -> float:
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    denom = np.sqrt(np.mean(b * b))
    return float(np.sqrt(np.mean((a - b) ** 2)) / denom) if denom > 0 else 0.0


def check_roundtrip(x: np.ndarray, type_name: str, raw: np.ndarray | None = None) -> float:
    """Quantize (unless raw given), dequantize with gguf-py, assert the
    relative RMS error is within MAX_REL_RMS; returns it."""
    import gguf

    qtype = gguf.GGMLQuantizationType[type_name.upper()]
    if raw is None:
        raw = quantize(x, type_name)
    back = gguf.quants.dequantize(raw, qtype).reshape(np.shape(x))
    err = rel_rms(back, x)
    limit = MAX_REL_RMS[type_name.upper()]
    assert err < limit, f"{type_name}: relative RMS error {err:.4f} >= {limit}"
    return err


def self_test(seed: int = 1234) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((8, 1024)).astype(np.float32) * 0.05
    x[0, :256] += 0.3                    # all-positive sub-blocks (min clamps to 0)
    x[1, :256] = -np.abs(x[1, :256])     # all-negative block
    x[2, 256:512] = 0.0                  # all-zero block
    x[3, :32] *= 50.0                    # one loud sub-block
    errs = {}
    for name in QUANTIZERS:
        errs[name] = check_roundtrip(x, name)
        # the all-zero block must come back as exact zeros
        import gguf
        back = gguf.quants.dequantize(quantize(x, name), gguf.GGMLQuantizationType[name]).reshape(x.shape)
        assert np.all(back[2, 256:512] == 0.0), name
    return errs


if __name__ == "__main__":
    for k, v in self_test().items():
        print(f"{k}: relative RMS error {v:.4f}")
