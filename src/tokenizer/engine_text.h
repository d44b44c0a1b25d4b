// The engine's text decoder backed by a tokenizer: incremental detokenization that continues
// the prompt's text.
#pragma once

#include <memory>
#include <span>

#include "engine/sequence.h"
#include "tokenizer/detokenizer.h"
#include "tokenizer/tokenizer.h"

namespace kinfer::tokenizer {

// A factory for EngineOptions::text_decoder. `tokenizer` must outlive the engine.
inline auto EngineTextDecoder(const Tokenizer& tokenizer) {
  return [&tokenizer](bool skip_special,
                      std::span<const int32_t> prompt) -> std::unique_ptr<engine::TextDecoder> {
    class Adapter : public engine::TextDecoder {
     public:
      Adapter(const Tokenizer& t, bool skip) : d_(t, skip) {}
      std::string Push(int32_t id) override { return d_.Push(id); }
      std::string Flush() override { return d_.Flush(); }
      IncrementalDetokenizer d_;
    };
    auto a = std::make_unique<Adapter>(tokenizer, skip_special);
    // Prime with the end of the prompt, discarding its text: the output then keeps the leading
    // space that a decode of prompt + output would keep, and completes a split character.
    constexpr size_t kContext = 32;
    const size_t from = prompt.size() > kContext ? prompt.size() - kContext : 0;
    for (size_t i = from; i < prompt.size(); ++i) a->d_.Push(prompt[i]);
    return a;
  };
}

}  // namespace kinfer::tokenizer
