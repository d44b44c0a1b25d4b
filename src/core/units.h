// Byte counts as people write them: parsed from flags ("2GiB", "512MB") and printed in progress
// and log lines ("1.5 MiB").
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace kinfer {

// "2GiB", "512MiB", "1.5G", "1000000" -> bytes (K/M/G and KB/MB/GB decimal, KiB/MiB/GiB binary,
// case-insensitive); nullopt when malformed, negative or too large.
std::optional<int64_t> ParseBytes(const std::string& s);

// 512 -> "512 B", 1536 -> "1.5 KiB", binary units up to TiB.
std::string FormatBytes(int64_t bytes);

}  // namespace kinfer
