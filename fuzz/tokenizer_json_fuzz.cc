// libFuzzer target: tokenizer.json (+ tokenizer_config.json) parsing must reject any input with a
// Status, and a tokenizer it accepts must encode and decode (short) text without crashing.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "tokenizer/hf_tokenizer_json.h"
#include "tokenizer/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  // An optional config after a NUL: tokenizer.json\0tokenizer_config.json
  const size_t nul = in.find('\0');
  const std::string_view tj = in.substr(0, nul);
  const std::string_view config = nul == std::string_view::npos ? "" : in.substr(nul + 1);
  auto parts = kinfer::tokenizer::ParseHfTokenizer(tj, config, "", "", "fuzz/tokenizer.json");
  if (!parts.ok()) return 0;
  auto tok = kinfer::tokenizer::Tokenizer::Create(std::move(*parts));
  if (!tok.ok()) return 0;
  for (std::string_view text : {"Hello world! 123 <s> \xe4\xbd\xa0\xff", "", "  \n\t x"}) {
    auto ids = (*tok)->Encode(text, true, true);
    (void)(*tok)->Decode(ids, false);
    (void)(*tok)->Decode(ids, true);
  }
  return 0;
}
