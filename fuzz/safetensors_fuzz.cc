// libFuzzer target: the safetensors header parser must reject any byte string cleanly, and
// every tensor it accepts must lie inside the input.
#include <cstddef>
#include <cstdint>
#include <span>

#include "model/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto f = kinfer::model::SafetensorsFile::Parse(std::span<const uint8_t>(data, size),
                                                 "fuzz.safetensors");
  if (!f.ok()) return 0;
  volatile uint8_t sink = 0;
  for (const auto& t : (*f)->tensors()) {
    if (t.nbytes > 0) sink = sink + t.data[0] + t.data[t.nbytes - 1];
  }
  return 0;
}
