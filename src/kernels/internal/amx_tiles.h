// The tile configuration every AMX kernel here loads before its tile instructions (internal to
// src/kernels; x86-64 only, and only on a CPU and kernel that allow AMX: core/cpu_features.h).
#pragma once

#if defined(__x86_64__)
#include <immintrin.h>

#include <array>
#include <cstdint>

namespace kinfer::kernels::internal {

// The shapes of tiles 0-7: rows, and bytes a row (at most 16 and 64).
struct TileShapes {
  std::array<uint8_t, 8> rows;
  std::array<uint8_t, 8> row_bytes;
};

// Loads palette 1 with `shapes` for this thread; the tiles' contents are undefined after it.
__attribute__((target("amx-tile"))) inline void LoadTileConfig(const TileShapes& shapes) {
  alignas(64) unsigned char cfg[64] = {};
  cfg[0] = 1;  // palette 1: 8 tiles of up to 16 rows x 64 bytes
  for (int t = 0; t < 8; ++t) {
    cfg[16 + 2 * t] = shapes.row_bytes[static_cast<size_t>(t)];  // a 16-bit field: low byte
    cfg[48 + t] = shapes.rows[static_cast<size_t>(t)];
  }
  // GCC 12 does not see that ldtilecfg reads `cfg` and drops the stores above without this.
  __asm__ volatile("" : : "r"(cfg) : "memory");
  _tile_loadconfig(cfg);
}

// Eight tiles of 16 rows of 64 bytes: what the BF16 and K-quant kernels use.
inline constexpr TileShapes kFullTiles = {{16, 16, 16, 16, 16, 16, 16, 16},
                                          {64, 64, 64, 64, 64, 64, 64, 64}};

}  // namespace kinfer::kernels::internal

#endif  // __x86_64__
