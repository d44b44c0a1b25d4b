#include "kernels/pack.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstring>
#include <new>

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
    default:
      return t;
  }
}

PackedLayout::PackedLayout(const TensorView& w)
    : groups((w.rows() + kPackRows - 1) / kPackRows),
      blocks(w.cols() / kQK),
      quant_bytes(w.dtype == DType::kQ8_0x16 ? 512 : 256),
      base(static_cast<const uint8_t*>(w.data)) {
  KINFER_CHECK(IsPacked(w.dtype) && w.cols() % kQK == 0);
}

void UnpackRow(const TensorView& w, int64_t r, uint8_t* dst) {
  const PackedLayout p(w);
  const int64_t g = r / kPackRows, lane = r % kPackRows;
  const bool q8 = w.dtype == DType::kQ8_0x16;
  const size_t bb = q8 ? sizeof(BlockQ8_0) : sizeof(BlockQ4_0);
  for (int64_t b = 0; b < p.blocks; ++b) {
    uint8_t* blk = dst + static_cast<size_t>(b) * bb;
    std::memcpy(blk, p.scales(g, b) + lane, 2);
    const uint8_t* q = p.quants(g, b);
    for (int64_t j = 0; j < p.quant_bytes / 64; ++j) {
      for (int i = 0; i < 4; ++i) {
        const uint8_t v = q[j * 64 + lane * 4 + i];
        blk[2 + j * 4 + i] = q8 ? static_cast<uint8_t>(v ^ 0x80) : v;
      }
    }
  }
}

void PackGroup(DType stored, const uint8_t* rows, size_t row_bytes, int64_t n, int64_t nb,
               uint8_t* quants, uint16_t* scales) {
  const bool q8 = stored == DType::kQ8_0;
  const size_t bb = q8 ? sizeof(BlockQ8_0) : sizeof(BlockQ4_0);
  const int64_t qbytes = q8 ? 512 : 256, vecs = qbytes / 64;
  for (int64_t b = 0; b < nb; ++b) {
    uint8_t* q = quants + b * qbytes;
    uint16_t* s = scales + b * kPackRows;
    for (int64_t lane = 0; lane < kPackRows; ++lane) {
      if (lane >= n) {  // padding: zero scale, quants of value 0
        s[lane] = 0;
        for (int64_t j = 0; j < vecs; ++j) std::memset(q + j * 64 + lane * 4, q8 ? 0x80 : 0x88, 4);
        continue;
      }
      const uint8_t* blk =
          rows + static_cast<size_t>(lane) * row_bytes + static_cast<size_t>(b) * bb;
      std::memcpy(&s[lane], blk, 2);
      for (int64_t j = 0; j < vecs; ++j) {
        uint32_t v;
        std::memcpy(&v, blk + 2 + j * 4, 4);
        if (q8) v ^= 0x80808080u;
        std::memcpy(q + j * 64 + lane * 4, &v, 4);
      }
    }
  }
}

void PackedMatrix::Unmap::operator()(uint8_t* p) const { ::munmap(p, length); }

bool ShouldPack(const TensorView& w) {
  return w.ndim == 2 && PackedTypeOf(w.dtype) && w.cols() % kQK == 0 &&
         MatMulUsesQ8Activations(w.dtype, w.cols());
}

std::unique_ptr<PackedMatrix> PackMatrix(
    const TensorView& w, const std::function<void(const uint8_t*, const uint8_t*)>& consumed) {
  const std::optional<DType> packed = PackedTypeOf(w.dtype);
  KINFER_CHECK(packed && w.ndim == 2 && w.cols() % kQK == 0);
  auto out = std::make_unique<PackedMatrix>();
  TensorView& v = out->view_;
  v = w;
  v.dtype = *packed;
  v.data = nullptr;
  const size_t size = PackedLayout(v).size();
  // Mapped 2 MiB-aligned so that transparent huge pages can back it (madvise mode included);
  // the unused head and tail of the over-sized mapping go back at once.
  constexpr size_t kHuge = size_t{2} << 20;
  const size_t length = (size + 4095) / 4096 * 4096;
  void* m =
      ::mmap(nullptr, length + kHuge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) throw std::bad_alloc();
  const uintptr_t raw = reinterpret_cast<uintptr_t>(m);
  const uintptr_t aligned = (raw + kHuge - 1) / kHuge * kHuge;
  if (aligned > raw) ::munmap(m, aligned - raw);
  if (raw + length + kHuge > aligned + length) {
    ::munmap(reinterpret_cast<void*>(aligned + length), raw + length + kHuge - aligned - length);
  }
  auto* bytes = reinterpret_cast<uint8_t*>(aligned);
  ::madvise(bytes, length, MADV_HUGEPAGE);
  out->bytes_ = std::unique_ptr<uint8_t, PackedMatrix::Unmap>(bytes, PackedMatrix::Unmap{length});
  v.data = bytes;
  v.nbytes = size;
  const PackedLayout p(v);

  const int64_t rows = w.rows();
  const size_t row_bytes = w.row_bytes();
  const auto* src = static_cast<const uint8_t*>(w.data);
  const uint8_t* released = src;
  constexpr size_t kReleaseBytes = size_t{4} << 20;
  for (int64_t g = 0; g < p.groups; ++g) {
    const int64_t first = g * kPackRows, n = std::min(kPackRows, rows - first);
    PackGroup(w.dtype, src + static_cast<size_t>(first) * row_bytes, row_bytes, n, p.blocks,
              const_cast<uint8_t*>(p.quants(g, 0)), const_cast<uint16_t*>(p.scales(g, 0)));
    // Rows before the next group's first are read no more.
    const uint8_t* done = src + static_cast<size_t>(first + n) * row_bytes;
    if (consumed && (static_cast<size_t>(done - released) >= kReleaseBytes || g + 1 == p.groups)) {
      consumed(released, done);
      released = done;
    }
  }
  return out;
}

}  // namespace kinfer::kernels
