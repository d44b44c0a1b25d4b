// libFuzzer target: GBNF grammars (llama.cpp's `grammar` field) converted to Lark. Seeds are
// real GBNF grammars in fuzz/corpus/gbnf_fuzz/.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "structured/gbnf.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 1 << 16) return 0;
  auto lark =
      kinfer::structured::GbnfToLark(std::string_view(reinterpret_cast<const char*>(data), size));
  (void)lark;
  return 0;
}
