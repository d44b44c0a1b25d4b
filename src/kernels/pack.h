// Weight layouts made at load time for MatMul: Q8_0 and Q4_0 matrices with 16 rows interleaved
// (DType::kQ8_0x16, kQ4_0x16), where one 64-byte vector holds four bytes of the same block of
// each of 16 rows. VNNI's vpdpbusd then sums 16 rows' dot products in 16 lanes with no
// horizontal sums, for one token or many, and no batch has to repack the weights first.
//
// Byte layout of a [rows, cols] matrix, G = ceil(rows / 16) groups (rows past the end are zero
// blocks), nb = cols / 32 blocks a row, Q = 256 (Q4_0) or 512 (Q8_0) bytes of quants a block:
//   quants of group g, block b at (g * nb + b) * Q: Q / 64 vectors of 64 bytes; bytes 4r..4r+3
//     of vector j belong to row 16g + r:
//       Q4_0: the block's qs[4j..4j+3] (low nibbles: elements 4j..4j+3, high: 16+4j..16+4j+3);
//       Q8_0: qs[4j..4j+3] + 128 as unsigned bytes (elements 4j..4j+3);
//   then, after every group's quants, the f16 scales of group g, block b at
//     G * nb * Q + (g * nb + b) * 32: one per row.
// The packed matrix has exactly the bytes of the stored one (plus the padding rows), so
// packing a mapped file's tensor and dropping the mapped pages keeps one copy in memory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>

#include "core/tensor.h"

namespace kinfer::kernels {

constexpr int64_t kPackRows = 16;

// The packed layout of a stored type, or nullopt when it has none.
std::optional<DType> PackedTypeOf(DType stored);
// The stored type of a packed one (t itself when t is not packed).
DType StoredTypeOf(DType t);
inline bool IsPacked(DType t) { return t == DType::kQ8_0x16 || t == DType::kQ4_0x16; }

// Where the bytes of a packed matrix are.
struct PackedLayout {
  int64_t groups = 0;       // G
  int64_t blocks = 0;       // nb, blocks a row
  int64_t quant_bytes = 0;  // Q, quant bytes of one block of 16 rows
  const uint8_t* base = nullptr;

  explicit PackedLayout(const TensorView& w);
  const uint8_t* quants(int64_t g, int64_t b) const {
    return base + static_cast<size_t>((g * blocks + b) * quant_bytes);
  }
  const uint16_t* scales(int64_t g, int64_t b) const {
    return reinterpret_cast<const uint16_t*>(base +
                                             static_cast<size_t>(groups * blocks * quant_bytes) +
                                             static_cast<size_t>((g * blocks + b) * 32));
  }
  // Bytes of the whole packed matrix.
  size_t size() const { return static_cast<size_t>(groups * blocks * (quant_bytes + 32)); }
};

// Row r of a packed matrix back in its stored block format (nb blocks of 34 or 18 bytes).
void UnpackRow(const TensorView& w, int64_t r, uint8_t* dst);

// Packs n <= 16 rows of `stored` (Q8_0 or Q4_0) blocks, `row_bytes` apart, as one group: nb
// blocks of quants (nb * Q bytes) and of scales (nb * 16); rows n..15 become zero blocks.
void PackGroup(DType stored, const uint8_t* rows, size_t row_bytes, int64_t n, int64_t nb,
               uint8_t* quants, uint16_t* scales);

// A packed matrix and the memory it owns.
class PackedMatrix {
 public:
  const TensorView& view() const { return view_; }

 private:
  friend std::unique_ptr<PackedMatrix> PackMatrix(
      const TensorView& w, const std::function<void(const uint8_t*, const uint8_t*)>& consumed);
  // Anonymous memory of its own, in 2 MiB pages where the kernel gives them: a decode step
  // streams every matrix once, and the hardware prefetchers stop at page boundaries.
  struct Unmap {
    size_t length;
    void operator()(uint8_t* p) const;
  };
  TensorView view_;
  std::unique_ptr<uint8_t, Unmap> bytes_;
};

// Whether MatMul on this CPU runs faster on `w` packed: Q8_0 and Q4_0 matrices with whole
// blocks, where the 8-bit activation path runs (AVX-512 VNNI). Elsewhere nothing is packed, so
// the stored layout is what every other target reads.
bool ShouldPack(const TensorView& w);

// `w` (Q8_0 or Q4_0, 2-D) in its packed layout. MatMul on the result gives bit for bit what it
// gives on `w`. `consumed(begin, end)`, when given, is called in order for source byte ranges
// that packing will not read again, so that a caller whose weights are a mapped file can drop
// those pages as it goes and never hold both copies of the whole matrix.
std::unique_ptr<PackedMatrix> PackMatrix(
    const TensorView& w, const std::function<void(const uint8_t*, const uint8_t*)>& consumed = {});

}  // namespace kinfer::kernels
