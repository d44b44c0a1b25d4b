// The engine's text decoder backed by a tokenizer: incremental detokenization that continues
// the prompt's text.
#pragma once

#include <algorithm>
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
      std::string Push(int32_t id) override {
        std::string text = d_.Push(id);
        if (!held_.empty() && !text.empty()) {
          // The prompt's own held-back text (a SentencePiece byte run such as the "\n" that
          // ends a chat prompt) comes out with the first output text: it is not output.
          const size_t n = std::min(held_.size(), text.size());
          if (text.compare(0, n, held_, 0, n) == 0) {
            text.erase(0, n);
            held_.erase(0, n);
          } else {
            held_.clear();
          }
        }
        return text;
      }
      std::string Flush() override { return d_.Flush(); }
      IncrementalDetokenizer d_;
      std::string held_;  // prompt text the stream still holds after priming
    };
    auto a = std::make_unique<Adapter>(tokenizer, skip_special);
    // Prime with the end of the prompt, discarding its text: the output then keeps the leading
    // space that a decode of prompt + output would keep, and completes a split character.
    constexpr size_t kContext = 32;
    const size_t from = prompt.size() > kContext ? prompt.size() - kContext : 0;
    std::string primed;
    for (size_t i = from; i < prompt.size(); ++i) primed += a->d_.Push(prompt[i]);
    const std::string whole = tokenizer.Decode(prompt.subspan(from), skip_special);
    if (whole.size() > primed.size() && whole.compare(0, primed.size(), primed) == 0) {
      a->held_ = whole.substr(primed.size());
    }
    return a;
  };
}

}  // namespace kinfer::tokenizer
