// An incremental scanner of one JSON object's top-level members, for tool calls that models
// write as JSON ({"name": "f", "arguments": {...}}): it sees members appear as text arrives, with
// each value's raw text so far, so that argument text can be streamed before the object ends.
// It checks structure (strings, nesting, separators), not number or literal syntax: a value's
// raw text is the model's own, parsed by whoever needs its meaning.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace kinfer::structured {

class JsonObjectScanner {
 public:
  struct Member {
    std::string key;  // decoded
    std::string raw;  // the value's text so far (no surrounding whitespace)
    bool complete = false;
  };

  // Feeds text; returns how many bytes of it were consumed (less than all once the object has
  // ended or an error was found).
  size_t Push(std::string_view text);

  bool done() const { return state_ == State::kDone; }
  bool failed() const { return state_ == State::kError; }
  bool started() const { return state_ != State::kStart; }
  const std::vector<Member>& members() const { return members_; }
  // The member named `key`, or nullptr.
  const Member* Find(std::string_view key) const;

 private:
  enum class State {
    kStart,
    kKeyOrEnd,
    kKey,
    kColon,
    kValue,
    kInValue,
    kAfterValue,
    kDone,
    kError
  };
  bool Step(char c);

  State state_ = State::kStart;
  std::vector<Member> members_;
  std::string key_;  // raw key being read
  bool escape_ = false;
  bool in_string_ = false;  // inside a string within a value
  int depth_ = 0;           // nesting within a value
};

// Decodes a JSON string literal's inner text (between the quotes); false if malformed.
bool DecodeJsonStringBody(std::string_view raw, std::string* out);

}  // namespace kinfer::structured
