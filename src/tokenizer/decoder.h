// Decoders: token strings back to text, with Hugging Face's steps (ByteLevel, Metaspace, Replace,
// ByteFallback, Fuse, Strip, WordPiece) built as a streaming pipeline. Tokenizer::Decode pushes
// all tokens through one DecodeStream and the IncrementalDetokenizer pushes them one at a time, so
// the concatenated deltas equal the full decode by construction. The last stage turns bytes into
// valid UTF-8, holding an unfinished sequence until it completes or the stream finishes.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tokenizer/unicode.h"

namespace kinfer::tokenizer {

struct DecoderStep {
  enum class Kind {
    kByteLevel,     // GPT-2 code points back to bytes; the result is one token
    kMetaspace,     // `a` (U+2581) to ' '; dropped in the first token when `flag` (prepend)
    kReplace,       // literal `a` -> `b` in each token
    kByteFallback,  // runs of "<0xXX>" tokens to text; invalid runs to one U+FFFD per byte
    kFuse,          // everything after this is one token
    kStrip,         // up to `start` leading and `stop` trailing `a` characters of each token
    kWordPiece,     // strip prefix `a`, else space-join; `flag`: clean up spaces
    kJoinSpace,     // no decoder: tokens joined with ' '
  };
  explicit DecoderStep(Kind k, std::string a_ = "", std::string b_ = "", int start_ = 0,
                       int stop_ = 0, bool flag_ = false)
      : kind(k), a(std::move(a_)), b(std::move(b_)), start(start_), stop(stop_), flag(flag_) {}

  Kind kind;
  std::string a;
  std::string b;
  int start = 0;
  int stop = 0;
  bool flag = false;
};

class DecodeStream {
 public:
  explicit DecodeStream(const std::vector<DecoderStep>* steps);

  // Feeds the next token string; appends whatever text is final to `out`.
  void Push(std::string_view token, std::string* out);
  // Ends the stream: appends what was held back and resets to the initial state.
  void Finish(std::string* out);

 private:
  struct StepState {
    int64_t tokens = 0;    // tokens started so far at this step
    std::string bytes;     // ByteFallback: the pending run
    Utf8Stream utf8;       // ByteLevel
    bool emitted = false;  // ByteLevel, Fuse: something went downstream already
    int64_t leading = 0;   // Strip: leading characters looked at in this token
    bool leading_done = false;
    std::string held;  // Strip: trailing characters that may be stripped
    int held_count = 0;
  };

  void Feed(size_t step, std::string_view frag, bool new_token, std::string* out);
  void EndToken(size_t step, std::string* out);
  void FinishStep(size_t step, std::string* out);
  void Emit(size_t step, std::string_view frag, bool new_token, std::string* out) {
    Feed(step + 1, frag, new_token, out);
  }

  const std::vector<DecoderStep>* steps_;
  std::vector<StepState> state_;
  Utf8Stream final_;
};

}  // namespace kinfer::tokenizer
