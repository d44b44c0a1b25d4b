// libFuzzer target: the GGUF header parser must reject any byte string cleanly, and whatever it
// accepts must be readable (metadata rendered, every tensor's bytes inside the input).
#include <cstddef>
#include <cstdint>
#include <span>

#include "model/config.h"
#include "model/gguf.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto f = kinfer::model::GgufFile::Parse(std::span<const uint8_t>(data, size), "fuzz.gguf");
  if (!f.ok()) return 0;
  for (const auto& [key, value] : (*f)->metadata()) (void)value.ToDisplayString();
  volatile uint8_t sink = 0;
  for (const auto& t : (*f)->tensors()) {
    if (t.nbytes > 0) sink = sink + t.data[0] + t.data[t.nbytes - 1];
  }
  (void)kinfer::model::ConfigFromGguf(**f);
  return 0;
}
