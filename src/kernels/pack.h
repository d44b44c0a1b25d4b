// Weight layouts made at load time for MatMul: Q8_0, Q4_0, Q5_0, Q5_1, Q4_K, Q5_K and Q6_K
// matrices with 16 rows interleaved (DType::kQ8_0x16, kQ4_0x16, kQ5_0x16, kQ5_1x16, kQ4_Kx16,
// kQ5_Kx16, kQ6_Kx16), where one 64-byte
// vector holds four bytes of the same block of each of 16 rows. VNNI's vpdpbusd then sums 16
// rows' dot products in 16 lanes with no horizontal sums, for one token or many, and no batch
// has to repack the weights first.
//
// Byte layout of a [rows, cols] matrix, G = ceil(rows / 16) groups (rows past the end are zero
// blocks), nb = cols / 32 blocks a row, Q = 256 (Q4_0), 320 (Q5_0, Q5_1) or 512 (Q8_0) bytes of
// quants a block:
//   quants of group g, block b at (g * nb + b) * Q: Q / 64 vectors of 64 bytes; bytes 4r..4r+3
//     of vector j belong to row 16g + r:
//       Q4_0: the block's qs[4j..4j+3] (low nibbles: elements 4j..4j+3, high: 16+4j..16+4j+3);
//       Q5_0, Q5_1: as Q4_0 for j < 4; vector 4 holds the block's qh (the fifth bits);
//       Q8_0: qs[4j..4j+3] + 128 as unsigned bytes (elements 4j..4j+3);
//   then, after every group's quants, the f16 scales of group g, block b at
//     G * nb * Q + (g * nb + b) * S: one per row (S = 32), then for Q5_1 one min per row
//     (S = 64).
// The packed matrix has exactly the bytes of the stored one (plus the padding rows), so
// packing a mapped file's tensor and dropping the mapped pages keeps one copy in memory.
//
// The K layouts keep each group's super-block together: group g, super-block b (nb = cols / 256
// a row) is kPackedKBlockBytes(type) bytes at (g * nb + b) * that, laid out as below. In a
// 64-byte vector of quants, bytes 4r..4r+3 belong to row 16g + r; scales are one byte a row.
//   Q4_K (2368 bytes): [0, 2048) quants, vector 8c + j (c, j < 4, 8) = qs[32c + 4j .. +3]: low
//     nibbles are elements 64c + 4j.. (sub-block 2c), high nibbles 64c + 32 + 4j.. (2c + 1);
//     [2048, 2176) the 6-bit scales, byte 16j + r = sub-block j's of row r;
//     [2176, 2304) the 6-bit mins, byte 32k + 2r + i = sub-block 2k + i's of row r;
//     [2304, 2336) d and [2336, 2368) dmin, f16, one a row.
//   Q5_K (2880 bytes): quants as Q4_K; [2048, 2560) the fifth bits, vector j = qh[4j .. +3];
//     then scales, mins, d, dmin as Q4_K's, 512 bytes further on.
//   Q6_K (3360 bytes): [0, 2048) the low four bits, vector 16h + 8p + j = ql[64h + 32p + 4j ..];
//     [2048, 3072) the high two bits, vector 8h + j = qh[32h + 4j ..]; [3072, 3328) the 8-bit
//     scales, byte 16s + r = scale s of row r; [3328, 3360) d, f16, one a row.
//
// The tile layouts of F16 and BF16 (kF16x16, kBF16x16), for AMX: group g's 32 columns from 32c
// are 1 KiB at (g * C + c) * 1024, C = cols / 32: k pair i's 64 bytes at 64i, bytes 4r..4r+3 =
// row 16g + r's columns 32c + 2i, 2i + 1 (zero past the last row): TDPBF16PS's B operand.
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
inline bool IsPackedTile(DType t) { return t == DType::kF16x16 || t == DType::kBF16x16; }
inline bool IsPacked(DType t) {
  return t == DType::kQ8_0x16 || t == DType::kQ4_0x16 || t == DType::kQ5_0x16 ||
         t == DType::kQ5_1x16 || t == DType::kQ4_Kx16 || t == DType::kQ5_Kx16 ||
         t == DType::kQ6_Kx16 || IsPackedTile(t);
}

// The tile (1 KiB: 16 k pairs of 16 rows, above) of a packed F16/BF16 matrix holding rows 16g..
// and columns 32c..
inline const uint8_t* PackedTile(const TensorView& w, int64_t g, int64_t c) {
  return static_cast<const uint8_t*>(w.data) +
         static_cast<size_t>((g * (w.cols() / 32) + c)) * 1024;
}
inline bool IsPackedK(DType t) {
  return t == DType::kQ4_Kx16 || t == DType::kQ5_Kx16 || t == DType::kQ6_Kx16;
}

// Bytes of one group's super-block in a K layout (above), 0 for other types.
constexpr int64_t PackedKBlockBytes(DType t) {
  switch (t) {
    case DType::kQ4_Kx16:
      return 2368;
    case DType::kQ5_Kx16:
      return 2880;
    case DType::kQ6_Kx16:
      return 3360;
    default:
      return 0;
  }
}

// Where the bytes of a packed K matrix are.
struct PackedKLayout {
  int64_t groups = 0;       // G
  int64_t blocks = 0;       // nb, super-blocks a row
  int64_t block_bytes = 0;  // bytes of one group's super-block
  const uint8_t* base = nullptr;

  explicit PackedKLayout(const TensorView& w);
  const uint8_t* block(int64_t g, int64_t b) const {
    return base + static_cast<size_t>((g * blocks + b) * block_bytes);
  }
  size_t size() const { return static_cast<size_t>(groups * blocks * block_bytes); }
};

// Packs n <= 16 rows of K-format `stored` blocks, `row_bytes` apart, as one group of nb
// super-blocks (nb * PackedKBlockBytes bytes at `out`); rows n..15 become zero blocks.
void PackGroupK(DType stored, const uint8_t* rows, size_t row_bytes, int64_t n, int64_t nb,
                uint8_t* out);

// Where the bytes of a packed matrix are.
struct PackedLayout {
  int64_t groups = 0;       // G
  int64_t blocks = 0;       // nb, blocks a row
  int64_t quant_bytes = 0;  // Q, quant bytes of one block of 16 rows
  int64_t scale_bytes = 0;  // S, bytes of scales (and mins) of one block of 16 rows
  const uint8_t* base = nullptr;

  explicit PackedLayout(const TensorView& w);
  const uint8_t* quants(int64_t g, int64_t b) const {
    return base + static_cast<size_t>((g * blocks + b) * quant_bytes);
  }
  const uint16_t* scales(int64_t g, int64_t b) const {
    return reinterpret_cast<const uint16_t*>(base +
                                             static_cast<size_t>(groups * blocks * quant_bytes) +
                                             static_cast<size_t>((g * blocks + b) * scale_bytes));
  }
  // Q5_1's mins, after the scales.
  const uint16_t* mins(int64_t g, int64_t b) const { return scales(g, b) + kPackRows; }
  // Bytes of the whole packed matrix.
  size_t size() const { return static_cast<size_t>(groups * blocks * (quant_bytes + scale_bytes)); }
};

// Row r of a packed matrix back in its stored block format.
void UnpackRow(const TensorView& w, int64_t r, uint8_t* dst);

// Packs n <= 16 rows of `stored` (Q8_0, Q4_0, Q5_0 or Q5_1) blocks, `row_bytes` apart, as one
// group: nb blocks of quants (nb * Q bytes) and of scales (nb * S / 2); rows n..15 become zero
// blocks.
void PackGroup(DType stored, const uint8_t* rows, size_t row_bytes, int64_t n, int64_t nb,
               uint8_t* quants, uint16_t* scales);

// A packed matrix and the memory it owns.
class PackedMatrix {
 public:
  const TensorView& view() const { return view_; }
  struct Slab;  // the memory it lies in (pack.cc)

 private:
  friend std::unique_ptr<PackedMatrix> PackMatrix(
      const TensorView& w, const std::function<void(const uint8_t*, const uint8_t*)>& consumed);
  // Anonymous memory in 2 MiB pages where the kernel gives them (Slab in pack.cc), shared
  // with the matrices packed before and after it: a decode step streams every matrix once, and
  // the hardware prefetchers stop at page boundaries.
  TensorView view_;
  std::shared_ptr<const Slab> slab_;
};

// Whether MatMul on this CPU runs faster on `w` packed: the types above, with whole
// blocks, where the 8-bit activation path runs (AVX-512 VNNI). Elsewhere nothing is packed, so
// the stored layout is what every other target reads.
bool ShouldPack(const TensorView& w);

// `w` (Q8_0, Q4_0, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K, F16 or BF16, 2-D) in its packed layout. MatMul on
// the result gives bit for bit what it gives on `w`. `consumed(begin, end)`, when given, is called
// in order for source byte ranges that packing will not read again, so that a caller whose weights
// are a mapped file can drop those pages as it goes and never hold both copies of the whole matrix.
std::unique_ptr<PackedMatrix> PackMatrix(
    const TensorView& w, const std::function<void(const uint8_t*, const uint8_t*)>& consumed = {});

}  // namespace kinfer::kernels
