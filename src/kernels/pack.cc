#include "kernels/pack.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <mutex>

#include "core/huge_pages.h"
#include "core/status.h"
#include "kernels/matmul.h"
#include "kernels/quant.h"

namespace kinfer::kernels {

std::optional<DType> PackedTypeOf(DType stored) {
  switch (stored) {
    case DType::kQ8_0:
      return DType::kQ8_0x16;
    case DType::kQ4_0:
      return DType::kQ4_0x16;
    case DType::kQ5_0:
      return DType::kQ5_0x16;
    case DType::kQ5_1:
      return DType::kQ5_1x16;
    case DType::kQ4_K:
      return DType::kQ4_Kx16;
    case DType::kQ5_K:
      return DType::kQ5_Kx16;
    case DType::kQ6_K:
      return DType::kQ6_Kx16;
    case DType::kF16:
      return DType::kF16x16;
    case DType::kBF16:
      return DType::kBF16x16;
    default:
      return std::nullopt;
  }
}

DType StoredTypeOf(DType t) {
  switch (t) {
    case DType::kQ8_0x16:
      return DType::kQ8_0;
    case DType::kQ4_0x16:
      return DType::kQ4_0;
    case DType::kQ5_0x16:
      return DType::kQ5_0;
    case DType::kQ5_1x16:
      return DType::kQ5_1;
    case DType::kQ4_Kx16:
      return DType::kQ4_K;
    case DType::kQ5_Kx16:
      return DType::kQ5_K;
    case DType::kQ6_Kx16:
      return DType::kQ6_K;
    case DType::kF16x16:
      return DType::kF16;
    case DType::kBF16x16:
      return DType::kBF16;
    default:
      return t;
  }
}

PackedLayout::PackedLayout(const TensorView& w)
    : groups((w.rows() + kPackRows - 1) / kPackRows),
      blocks(w.cols() / kQK),
      quant_bytes(w.dtype == DType::kQ8_0x16   ? 512
                  : w.dtype == DType::kQ4_0x16 ? 256
                                               : 320),
      scale_bytes(w.dtype == DType::kQ5_1x16 ? 64 : 32),
      base(static_cast<const uint8_t*>(w.data)) {
  KINFER_CHECK(IsPacked(w.dtype) && !IsPackedK(w.dtype) && !IsPackedTile(w.dtype) &&
               w.cols() % kQK == 0);
}

namespace {

// Where a stored 32-block keeps its parts: scale d at 0, then min m (Q4_1-like types), the fifth
// bits (Q5 types), then the quants.
struct Block32 {
  size_t bytes, m, qh, qs;  // offsets; m, qh = 0 when absent
};
Block32 Block32Of(DType stored) {
  switch (stored) {
    case DType::kQ8_0:
      return {sizeof(BlockQ8_0), 0, 0, 2};
    case DType::kQ4_0:
      return {sizeof(BlockQ4_0), 0, 0, 2};
    case DType::kQ5_0:
      return {sizeof(BlockQ5_0), 0, 2, 6};
    default:  // Q5_1
      return {sizeof(BlockQ5_1), 2, 4, 8};
  }
}

}  // namespace

PackedKLayout::PackedKLayout(const TensorView& w)
    : groups((w.rows() + kPackRows - 1) / kPackRows),
      blocks(w.cols() / kQKK),
      block_bytes(PackedKBlockBytes(w.dtype)),
      base(static_cast<const uint8_t*>(w.data)) {
  KINFER_CHECK(IsPackedK(w.dtype) && w.cols() % kQKK == 0);
}

namespace {

// Byte offsets inside one group's super-block of a K layout (pack.h).
struct KOffsets {
  int64_t qh, scales, mins, d, dmin;
};
constexpr KOffsets OffsetsOf(DType stored) {
  switch (stored) {
    case DType::kQ4_K:
      return {0, 2048, 2176, 2304, 2336};
    case DType::kQ5_K:
      return {2048, 2560, 2688, 2816, 2848};
    default:  // Q6_K
      return {2048, 3072, 0, 3328, 0};
  }
}

// The 12 bytes of K-format 6-bit scales and mins (the inverse of UnpackScaleMinK4).
void PackScaleMinK4(const uint8_t* sc, const uint8_t* m, uint8_t* q) {
  for (int j = 0; j < 4; ++j) {
    q[j] = static_cast<uint8_t>((sc[j] & 63) | ((sc[j + 4] >> 4) << 6));
    q[j + 4] = static_cast<uint8_t>((m[j] & 63) | ((m[j + 4] >> 4) << 6));
    q[j + 8] = static_cast<uint8_t>((sc[j + 4] & 0xF) | ((m[j + 4] & 0xF) << 4));
  }
}

// Copies `vecs` vectors of 4 bytes a row: vector v, row `lane` <-> src[4v .. 4v+3].
void Gather4(const uint8_t* src, int64_t vecs, int64_t lane, uint8_t* q) {
  for (int64_t v = 0; v < vecs; ++v) std::memcpy(q + v * 64 + lane * 4, src + 4 * v, 4);
}
void Scatter4(const uint8_t* q, int64_t vecs, int64_t lane, uint8_t* dst) {
  for (int64_t v = 0; v < vecs; ++v) std::memcpy(dst + 4 * v, q + v * 64 + lane * 4, 4);
}

// Row `lane` of one group's super-block <-> one stored super-block.
void PackKBlock(DType stored, const uint8_t* blk, int64_t lane, uint8_t* out) {
  const KOffsets o = OffsetsOf(stored);
  if (stored == DType::kQ6_K) {
    const auto* b = reinterpret_cast<const BlockQ6_K*>(blk);
    Gather4(b->ql, 32, lane, out);
    Gather4(b->qh, 16, lane, out + o.qh);
    for (int s = 0; s < 16; ++s) out[o.scales + 16 * s + lane] = static_cast<uint8_t>(b->scales[s]);
    std::memcpy(out + o.d + 2 * lane, &b->d, 2);
    return;
  }
  // Q4_K and Q5_K share the head: d, dmin, scales; then Q5_K's qh, then qs.
  const auto* b = reinterpret_cast<const BlockQ4_K*>(blk);
  const uint8_t* qs = stored == DType::kQ5_K ? reinterpret_cast<const BlockQ5_K*>(blk)->qs : b->qs;
  Gather4(qs, 32, lane, out);
  if (stored == DType::kQ5_K)
    Gather4(reinterpret_cast<const BlockQ5_K*>(blk)->qh, 8, lane, out + o.qh);
  for (int j = 0; j < 8; ++j) {
    uint8_t sc, m;
    UnpackScaleMinK4(j, b->scales, &sc, &m);
    out[o.scales + 16 * j + lane] = sc;
    out[o.mins + 32 * (j / 2) + 2 * lane + j % 2] = m;
  }
  std::memcpy(out + o.d + 2 * lane, &b->d, 2);
  std::memcpy(out + o.dmin + 2 * lane, &b->dmin, 2);
}

void UnpackKBlock(DType stored, const uint8_t* in, int64_t lane, uint8_t* blk) {
  const KOffsets o = OffsetsOf(stored);
  if (stored == DType::kQ6_K) {
    auto* b = reinterpret_cast<BlockQ6_K*>(blk);
    Scatter4(in, 32, lane, b->ql);
    Scatter4(in + o.qh, 16, lane, b->qh);
    for (int s = 0; s < 16; ++s) b->scales[s] = static_cast<int8_t>(in[o.scales + 16 * s + lane]);
    std::memcpy(&b->d, in + o.d + 2 * lane, 2);
    return;
  }
  auto* b = reinterpret_cast<BlockQ4_K*>(blk);
  uint8_t* qs = stored == DType::kQ5_K ? reinterpret_cast<BlockQ5_K*>(blk)->qs : b->qs;
  Scatter4(in, 32, lane, qs);
  if (stored == DType::kQ5_K) Scatter4(in + o.qh, 8, lane, reinterpret_cast<BlockQ5_K*>(blk)->qh);
  uint8_t sc[8], m[8];
  for (int j = 0; j < 8; ++j) {
    sc[j] = in[o.scales + 16 * j + lane];
    m[j] = in[o.mins + 32 * (j / 2) + 2 * lane + j % 2];
  }
  PackScaleMinK4(sc, m, b->scales);
  std::memcpy(&b->d, in + o.d + 2 * lane, 2);
  std::memcpy(&b->dmin, in + o.dmin + 2 * lane, 2);
}

}  // namespace

void PackGroupK(DType stored, const uint8_t* rows, size_t row_bytes, int64_t n, int64_t nb,
                uint8_t* out) {
  const DType packed = *PackedTypeOf(stored);
  const int64_t gb = PackedKBlockBytes(packed);
  const size_t bb = GetDTypeInfo(stored).block_bytes;
  std::memset(out, 0, static_cast<size_t>(nb * gb));  // padding rows: zero blocks
  for (int64_t b = 0; b < nb; ++b) {
    for (int64_t lane = 0; lane < n; ++lane) {
      PackKBlock(stored, rows + static_cast<size_t>(lane) * row_bytes + static_cast<size_t>(b) * bb,
                 lane, out + b * gb);
    }
  }
}

void UnpackRow(const TensorView& w, int64_t r, uint8_t* dst) {
  if (IsPackedTile(w.dtype)) {
    for (int64_t c = 0; c < w.cols() / 32; ++c) {
      const uint8_t* tile = PackedTile(w, r / kPackRows, c) + (r % kPackRows) * 4;
      for (int64_t i = 0; i < 16; ++i) std::memcpy(dst + c * 64 + i * 4, tile + i * 64, 4);
    }
    return;
  }
  if (IsPackedK(w.dtype)) {
    const PackedKLayout p(w);
    const DType stored = StoredTypeOf(w.dtype);
    const size_t bb = GetDTypeInfo(stored).block_bytes;
    for (int64_t b = 0; b < p.blocks; ++b) {
      UnpackKBlock(stored, p.block(r / kPackRows, b), r % kPackRows,
                   dst + static_cast<size_t>(b) * bb);
    }
    return;
  }
  const PackedLayout p(w);
  const int64_t g = r / kPackRows, lane = r % kPackRows;
  const DType stored = StoredTypeOf(w.dtype);
  const bool q8 = stored == DType::kQ8_0;
  const Block32 f = Block32Of(stored);
  for (int64_t b = 0; b < p.blocks; ++b) {
    uint8_t* blk = dst + static_cast<size_t>(b) * f.bytes;
    std::memcpy(blk, p.scales(g, b) + lane, 2);
    if (f.m) std::memcpy(blk + f.m, p.mins(g, b) + lane, 2);
    const uint8_t* q = p.quants(g, b);
    const int64_t vecs = q8 ? 8 : 4;
    for (int64_t j = 0; j < vecs; ++j) {
      for (int i = 0; i < 4; ++i) {
        const uint8_t v = q[j * 64 + lane * 4 + i];
        blk[f.qs + j * 4 + i] = q8 ? static_cast<uint8_t>(v ^ 0x80) : v;
      }
    }
    if (f.qh) std::memcpy(blk + f.qh, q + 4 * 64 + lane * 4, 4);
  }
}

void PackGroup(DType stored, const uint8_t* rows, size_t row_bytes, int64_t n, int64_t nb,
               uint8_t* quants, uint16_t* scales) {
  const bool q8 = stored == DType::kQ8_0;
  const Block32 f = Block32Of(stored);
  const int64_t qbytes = q8 ? 512 : f.qh ? 320 : 256, vecs = q8 ? 8 : 4;
  const int64_t sw = f.m ? 2 * kPackRows : kPackRows;  // f16 words of scales (and mins) a block
  for (int64_t b = 0; b < nb; ++b) {
    uint8_t* q = quants + b * qbytes;
    uint16_t* s = scales + b * sw;
    for (int64_t lane = 0; lane < kPackRows; ++lane) {
      if (lane >= n) {  // padding: zero scale (and min), quants of value 0
        s[lane] = 0;
        if (f.m) s[kPackRows + lane] = 0;
        for (int64_t j = 0; j < vecs; ++j) std::memset(q + j * 64 + lane * 4, q8 ? 0x80 : 0x88, 4);
        if (f.qh) std::memset(q + 4 * 64 + lane * 4, 0, 4);
        continue;
      }
      const uint8_t* blk =
          rows + static_cast<size_t>(lane) * row_bytes + static_cast<size_t>(b) * f.bytes;
      std::memcpy(&s[lane], blk, 2);
      if (f.m) std::memcpy(&s[kPackRows + lane], blk + f.m, 2);
      for (int64_t j = 0; j < vecs; ++j) {
        uint32_t v;
        std::memcpy(&v, blk + f.qs + j * 4, 4);
        if (q8) v ^= 0x80808080u;
        std::memcpy(q + j * 64 + lane * 4, &v, 4);
      }
      if (f.qh) std::memcpy(q + 4 * 64 + lane * 4, blk + f.qh, 4);
    }
  }
}

// Huge-page memory (core/huge_pages.h) that matrices are packed into one after another. A
// mapping of each matrix's own size left every matrix under 2 MiB (Qwen2.5-0.5B's q, k, v, o)
// and the tail of every larger one in 4 KiB pages, whose TLB walks and prefetcher restarts cost
// decode: in slabs, Qwen2.5-0.5B Q4_0/Q8_0 decode measured 1.25x/1.19x as fast, Llama-3.2-1B
// 1.11x/1.07x (kinfer_bench, 2 threads). A slab's memory goes back when its last matrix does (a
// model's matrices go together).
struct PackedMatrix::Slab {
  explicit Slab(size_t min_bytes) : memory(min_bytes) {}
  HugePageMapping memory;
  size_t used = 0;  // bytes handed out, under SlabFor's lock
};

namespace {

// Where the next `size` bytes of packed weights go: the current slab while it has room (the
// slab lives while a matrix in it does), else a new one of at least kSlabBytes. Untouched pages
// of a slab cost no memory.
std::shared_ptr<PackedMatrix::Slab> SlabFor(size_t size, uint8_t** at) {
  constexpr size_t kSlabBytes = size_t{64} << 20;
  static std::mutex mu;
  static std::weak_ptr<PackedMatrix::Slab> current;
  const size_t length = (size + 4095) / 4096 * 4096;
  std::lock_guard<std::mutex> lock(mu);
  std::shared_ptr<PackedMatrix::Slab> slab = current.lock();
  if (!slab || slab->memory.size() - slab->used < length) {
    slab = std::make_shared<PackedMatrix::Slab>(std::max(length, kSlabBytes));
    current = slab;
  }
  *at = slab->memory.data() + slab->used;
  slab->used += length;
  return slab;
}

}  // namespace

bool ShouldPack(const TensorView& w) {
  const std::optional<DType> packed = PackedTypeOf(w.dtype);
  if (!(w.ndim == 2 && packed && w.cols() % GetDTypeInfo(w.dtype).block_size == 0)) return false;
  const MatMulActivations a = MatMulActivationsFor(*packed, w.cols());
  return a == MatMulActivations::kInt8 || a == MatMulActivations::kInt8K ||
         (a == MatMulActivations::kBf16 && w.cols() % 32 == 0);
}

std::unique_ptr<PackedMatrix> PackMatrix(
    const TensorView& w, const std::function<void(const uint8_t*, const uint8_t*)>& consumed) {
  const std::optional<DType> packed = PackedTypeOf(w.dtype);
  KINFER_CHECK(packed && w.ndim == 2 && w.cols() % GetDTypeInfo(w.dtype).block_size == 0);
  const bool k = IsPackedK(*packed), tiles = IsPackedTile(*packed);
  KINFER_CHECK(!tiles || w.cols() % 32 == 0);
  auto out = std::make_unique<PackedMatrix>();
  TensorView& v = out->view_;
  v = w;
  v.dtype = *packed;
  v.data = nullptr;
  const int64_t groups = (w.rows() + kPackRows - 1) / kPackRows;
  const size_t size = tiles ? static_cast<size_t>(groups * (w.cols() / 32)) * 1024
                      : k   ? PackedKLayout(v).size()
                            : PackedLayout(v).size();
  uint8_t* bytes = nullptr;
  out->slab_ = SlabFor(size, &bytes);
  v.data = bytes;
  v.nbytes = size;

  const int64_t rows = w.rows();
  const size_t row_bytes = w.row_bytes();
  const auto* src = static_cast<const uint8_t*>(w.data);
  const uint8_t* released = src;
  constexpr size_t kReleaseBytes = size_t{4} << 20;
  for (int64_t g = 0; g < groups; ++g) {
    const int64_t first = g * kPackRows, n = std::min(kPackRows, rows - first);
    const uint8_t* group_rows = src + static_cast<size_t>(first) * row_bytes;
    if (tiles) {
      for (int64_t c = 0; c < w.cols() / 32; ++c) {
        auto* t = const_cast<uint8_t*>(PackedTile(v, g, c));
        std::memset(t, 0, 1024);
        for (int64_t r = 0; r < n; ++r) {
          const uint8_t* row = group_rows + r * row_bytes + c * 64;
          for (int64_t i = 0; i < 16; ++i) std::memcpy(t + i * 64 + r * 4, row + i * 4, 4);
        }
      }
    } else if (k) {
      const PackedKLayout p(v);
      PackGroupK(w.dtype, group_rows, row_bytes, n, p.blocks, const_cast<uint8_t*>(p.block(g, 0)));
    } else {
      const PackedLayout p(v);
      PackGroup(w.dtype, group_rows, row_bytes, n, p.blocks, const_cast<uint8_t*>(p.quants(g, 0)),
                const_cast<uint16_t*>(p.scales(g, 0)));
    }
    // Rows before the next group's first are read no more.
    const uint8_t* done = src + static_cast<size_t>(first + n) * row_bytes;
    if (consumed && (static_cast<size_t>(done - released) >= kReleaseBytes || g + 1 == groups)) {
      consumed(released, done);
      released = done;
    }
  }
  return out;
}

}  // namespace kinfer::kernels
