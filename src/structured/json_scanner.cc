#include "structured/json_scanner.h"

#include "core/json.h"

namespace kinfer::structured {

bool DecodeJsonStringBody(std::string_view raw, std::string* out) {
  std::string quoted;
  quoted.reserve(raw.size() + 2);
  quoted.push_back('"');
  quoted.append(raw);
  quoted.push_back('"');
  auto j = ParseJson(quoted, "string", 2);
  if (!j.ok() || !j->is_string()) return false;
  *out = j->get<std::string>();
  return true;
}

const JsonObjectScanner::Member* JsonObjectScanner::Find(std::string_view key) const {
  for (const Member& m : members_) {
    if (m.key == key) return &m;
  }
  return nullptr;
}

size_t JsonObjectScanner::Push(std::string_view text) {
  size_t i = 0;
  for (; i < text.size(); ++i) {
    if (state_ == State::kDone || state_ == State::kError) break;
    if (!Step(text[i])) break;
  }
  return i;
}

// Returns false when `c` is not part of the object (the object ended before it, or an error).
bool JsonObjectScanner::Step(char c) {
  const bool ws = c == ' ' || c == '\n' || c == '\r' || c == '\t';
  switch (state_) {
    case State::kStart:
      if (ws) return true;
      if (c != '{') {
        state_ = State::kError;
        return false;
      }
      state_ = State::kKeyOrEnd;
      return true;
    case State::kKeyOrEnd:
      if (ws) return true;
      if (c == '}' && members_.empty()) {
        state_ = State::kDone;
        return true;
      }
      if (c != '"') {
        state_ = State::kError;
        return false;
      }
      key_.clear();
      escape_ = false;
      state_ = State::kKey;
      return true;
    case State::kKey:
      if (escape_) {
        escape_ = false;
        key_.push_back(c);
      } else if (c == '\\') {
        escape_ = true;
        key_.push_back(c);
      } else if (c == '"') {
        Member m;
        if (!DecodeJsonStringBody(key_, &m.key)) {
          state_ = State::kError;
          return false;
        }
        members_.push_back(std::move(m));
        state_ = State::kColon;
      } else if (static_cast<unsigned char>(c) < 0x20) {
        state_ = State::kError;
        return false;
      } else {
        key_.push_back(c);
      }
      return true;
    case State::kColon:
      if (ws) return true;
      if (c != ':') {
        state_ = State::kError;
        return false;
      }
      state_ = State::kValue;
      return true;
    case State::kValue:
      if (ws) return true;
      if (c == ',' || c == '}' || c == ']' || c == ':') {
        state_ = State::kError;
        return false;
      }
      state_ = State::kInValue;
      depth_ = 0;
      in_string_ = false;
      escape_ = false;
      [[fallthrough]];
    case State::kInValue: {
      Member& m = members_.back();
      if (in_string_) {
        m.raw.push_back(c);
        if (escape_) {
          escape_ = false;
        } else if (c == '\\') {
          escape_ = true;
        } else if (c == '"') {
          in_string_ = false;
          if (depth_ == 0) {
            m.complete = true;
            state_ = State::kAfterValue;
          }
        }
        return true;
      }
      if (c == '"') {
        in_string_ = true;
        m.raw.push_back(c);
        return true;
      }
      if (c == '{' || c == '[') {
        ++depth_;
        if (depth_ > 256) {
          state_ = State::kError;
          return false;
        }
        m.raw.push_back(c);
        return true;
      }
      if (c == '}' || c == ']') {
        if (depth_ == 0) {
          // The end of a scalar value and of the object.
          if (c == ']' || m.raw.empty()) {
            state_ = State::kError;
            return false;
          }
          m.complete = true;
          state_ = State::kDone;
          return true;
        }
        --depth_;
        m.raw.push_back(c);
        if (depth_ == 0) {
          m.complete = true;
          state_ = State::kAfterValue;
        }
        return true;
      }
      if (depth_ == 0 && (ws || c == ',')) {
        // The end of a scalar (number, true, false, null).
        m.complete = true;
        state_ = c == ',' ? State::kKeyOrEnd : State::kAfterValue;
        if (c == ',') {
          state_ = State::kKeyOrEnd;
          key_.clear();
        }
        return true;
      }
      m.raw.push_back(c);
      return true;
    }
    case State::kAfterValue:
      if (ws) return true;
      if (c == ',') {
        state_ = State::kKeyOrEnd;
        return true;
      }
      if (c == '}') {
        state_ = State::kDone;
        return true;
      }
      state_ = State::kError;
      return false;
    case State::kDone:
    case State::kError:
      return false;
  }
  return false;
}

}  // namespace kinfer::structured
