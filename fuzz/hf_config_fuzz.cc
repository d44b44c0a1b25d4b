// libFuzzer target: config.json (every family's fields: Gemma layer types and rope per layer
// type, MoE counts, LongRoPE factors) must be accepted or refused with a message, never crash.
#include <cstddef>
#include <cstdint>
#include <string>

#include "model/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto c = kinfer::model::ParseHfConfig(text, "fuzz/config.json");
  if (c.ok()) {
    (void)c->Summary();
    for (int64_t l = 0; l < c->num_layers && l < 4096; ++l) (void)c->IsSlidingLayer(l);
  }
  return 0;
}
