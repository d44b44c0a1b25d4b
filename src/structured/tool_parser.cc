#include "structured/tool_parser.h"

#include <cmath>
#include <cstdlib>
#include <random>

#include "structured/json_scanner.h"
#include "structured/pythonic.h"

namespace kinfer::structured {
namespace {

constexpr std::string_view kToolCallOpen = "<tool_call>";
constexpr std::string_view kToolCallClose = "</tool_call>";
constexpr std::string_view kPythonTag = "<|python_tag|>";
constexpr std::string_view kMistralCalls = "[TOOL_CALLS]";
constexpr std::string_view kMistralArgs = "[ARGS]";
constexpr std::string_view kMistralCallId = "[CALL_ID]";
constexpr std::string_view kFunctionOpen = "<function=";
constexpr std::string_view kFunctionClose = "</function>";
constexpr std::string_view kParameterOpen = "<parameter=";
constexpr std::string_view kParameterClose = "</parameter>";
constexpr size_t kMaxNameLength = 256;

bool IsSpace(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

bool StartsWith(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

// How much of `buf` can be released: all but a tail that may begin one of `markers`.
size_t SafeLength(std::string_view buf, std::initializer_list<std::string_view> markers) {
  size_t keep = 0;
  for (std::string_view m : markers) {
    const size_t most = std::min(buf.size(), m.size() - 1);
    for (size_t k = most; k > keep; --k) {
      if (m.substr(0, k) == buf.substr(buf.size() - k)) {
        keep = k;
        break;
      }
    }
  }
  return buf.size() - keep;
}

// True when `buf` is a proper prefix of `marker` (more text may complete it).
bool MayBecome(std::string_view buf, std::string_view marker) {
  return buf.size() < marker.size() && StartsWith(marker, buf);
}

size_t SkipSpace(std::string_view s) {
  size_t i = 0;
  while (i < s.size() && IsSpace(s[i])) ++i;
  return i;
}

std::string Trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && IsSpace(s[b])) ++b;
  while (e > b && IsSpace(s[e - 1])) --e;
  return std::string(s.substr(b, e - b));
}

// One JSON object per call with the name under "name" and the arguments under "arguments" or
// "parameters", streamed as the object arrives.
class JsonCall {
 public:
  // Returns bytes of `text` consumed. Until the name is known, it stops right after the "name"
  // member completes, so that a bad name is seen at the same byte however the output was cut
  // into stream deltas (the caller decides what the rest is; see Update).
  size_t Push(std::string_view text) {
    if (begun_ || bad_name_) return scanner_.Push(text);
    size_t used = 0;
    while (used < text.size()) {
      if (scanner_.Push(text.substr(used, 1)) == 0) break;
      ++used;
      const auto* name = scanner_.Find("name");
      if (name && name->complete) break;
    }
    return used;
  }
  bool done() const { return scanner_.done(); }
  bool failed() const { return scanner_.failed(); }
  // Emits what became known: the first delta once the name is complete, then argument text.
  template <typename BeginFn, typename ArgsFn>
  void Update(BeginFn begin, ArgsFn args) {
    if (!begun_) {
      const auto* name = scanner_.Find("name");
      if (!name || !name->complete) return;
      std::string decoded;
      if (name->raw.size() < 2 || name->raw.front() != '"' ||
          !DecodeJsonStringBody(std::string_view(name->raw).substr(1, name->raw.size() - 2),
                                &decoded) ||
          decoded.empty()) {
        bad_name_ = true;
        return;
      }
      begun_ = true;
      begin(decoded);
    }
    const auto* a = scanner_.Find("arguments");
    if (!a) a = scanner_.Find("parameters");
    if (a && a->raw.size() > sent_) {
      args(std::string_view(a->raw).substr(sent_));
      sent_ = a->raw.size();
    }
  }
  // At the end of the object: arguments that never appeared are "{}".
  template <typename ArgsFn>
  void Close(ArgsFn args) {
    if (begun_ && sent_ == 0) args("{}");
  }
  bool begun() const { return begun_; }
  bool bad_name() const { return bad_name_; }

  // One step of a parser's call state: pushes `buf` (what was consumed is erased from it and,
  // when `raw` is given, appended there), emits what became known, and says what happened.
  enum class Step {
    kNotACall,  // failed, a bad name, or an object without one: the caller decides what it was
    kDone,      // the object closed (arguments that never appeared went out as "{}")
    kNeedMore,  // every byte consumed, the object still open
  };
  template <typename BeginFn, typename ArgsFn>
  Step Advance(std::string& buf, std::string* raw, BeginFn begin, ArgsFn args) {
    while (true) {
      const size_t used = Push(buf);
      if (raw) raw->append(buf, 0, used);
      buf.erase(0, used);
      Update(begin, args);
      if (failed() || bad_name() || (done() && !begun())) return Step::kNotACall;
      if (done()) {
        Close(args);
        return Step::kDone;
      }
      if (used == 0 || buf.empty()) return Step::kNeedMore;
      // Push stopped right after the name with input left: go on with the rest.
    }
  }

 private:
  JsonObjectScanner scanner_;
  bool begun_ = false;
  bool bad_name_ = false;
  size_t sent_ = 0;
};

// Shared by every format: numbering calls, ids, dropping calls after the first when parallel
// calls are off, and content that follows a call without its separating whitespace.
class Base : public ToolParser {
 public:
  Base(ToolFormat format, ToolParserOptions options) : format_(format), opt_(std::move(options)) {}
  bool called() const override { return calls_ > 0; }

 protected:
  void Begin(const std::string& name, OutputDelta* out) {
    if (!opt_.parallel && calls_ >= 1) {
      dropping_ = true;
      return;
    }
    dropping_ = false;
    ToolCallDelta d;
    d.index = calls_++;
    d.id = NewToolCallId(format_);
    d.name = name;
    d.first = true;
    out->tool_calls.push_back(std::move(d));
  }
  // One step of `call` on `buf`, its name and arguments emitted as this parser's deltas.
  JsonCall::Step StepCall(JsonCall& call, std::string& buf, std::string* raw, OutputDelta* out) {
    return call.Advance(
        buf, raw, [&](const std::string& n) { Begin(n, out); },
        [&](std::string_view a) { Args(a, out); });
  }
  void Args(std::string_view text, OutputDelta* out) {
    if (dropping_ || text.empty() || calls_ == 0) return;
    if (!out->tool_calls.empty() && out->tool_calls.back().index == calls_ - 1 &&
        !out->tool_calls.back().first) {
      out->tool_calls.back().arguments.append(text);
      return;
    }
    ToolCallDelta d;
    d.index = calls_ - 1;
    d.arguments = std::string(text);
    out->tool_calls.push_back(std::move(d));
  }
  void Content(std::string_view text, OutputDelta* out) {
    if (trim_) {
      const size_t ws = SkipSpace(text);
      text.remove_prefix(ws);
      if (text.empty()) return;
      trim_ = false;
    }
    out->content.append(text);
  }

  ToolFormat format_;
  ToolParserOptions opt_;
  int calls_ = 0;
  bool dropping_ = false;
  bool trim_ = false;  // drop whitespace between a call and what follows
};

// <tool_call>{json}</tool_call>, any number of times, with content around.
class HermesParser final : public Base {
 public:
  using Base::Base;
  void Push(std::string_view text, OutputDelta* out) override {
    buf_.append(text);
    Process(out, false);
  }
  void Finish(OutputDelta* out) override {
    Process(out, true);
    if (state_ == State::kCall && !call_.begun()) Content(raw_, out);
    if (state_ == State::kCall) call_.Close([&](std::string_view a) { Args(a, out); });
  }

 private:
  enum class State { kContent, kCall, kAfterCall };
  void Process(OutputDelta* out, bool final) {
    while (true) {
      if (state_ == State::kContent) {
        const size_t pos = buf_.find(kToolCallOpen);
        if (pos == std::string::npos) {
          const size_t n = final ? buf_.size() : SafeLength(buf_, {kToolCallOpen});
          Content(std::string_view(buf_).substr(0, n), out);
          buf_.erase(0, n);
          return;
        }
        Content(std::string_view(buf_).substr(0, pos), out);
        buf_.erase(0, pos + kToolCallOpen.size());
        state_ = State::kCall;
        call_ = JsonCall();
        raw_ = std::string(kToolCallOpen);
        continue;
      }
      if (state_ == State::kCall) {
        switch (StepCall(call_, buf_, &raw_, out)) {
          case JsonCall::Step::kNotACall:
            // Not a call after all: its text is content (if nothing of it went out as a call).
            if (!call_.begun()) Content(raw_, out);
            state_ = call_.begun() ? State::kAfterCall : State::kContent;
            continue;
          case JsonCall::Step::kDone:
            state_ = State::kAfterCall;
            continue;
          case JsonCall::Step::kNeedMore:
            return;
        }
      }
      // kAfterCall: the closing tag, then content again.
      const size_t ws = SkipSpace(buf_);
      std::string_view rest = std::string_view(buf_).substr(ws);
      if (StartsWith(rest, kToolCallClose)) {
        buf_.erase(0, ws + kToolCallClose.size());
      } else if (!final && (rest.empty() || MayBecome(rest, kToolCallClose))) {
        return;
      }
      state_ = State::kContent;
      trim_ = true;
    }
  }

  State state_ = State::kContent;
  std::string buf_;
  std::string raw_;
  JsonCall call_;
};

// Llama 3.x: the whole answer is one or more JSON calls ({"name", "parameters"}) separated by
// ';', maybe after <|python_tag|>; an answer that starts otherwise is content.
class Llama3JsonParser final : public Base {
 public:
  using Base::Base;
  void Push(std::string_view text, OutputDelta* out) override {
    buf_.append(text);
    Process(out, false);
  }
  void Finish(OutputDelta* out) override {
    Process(out, true);
    if (state_ == State::kStart) Content(buf_, out);
    if (state_ == State::kCall && !call_.begun()) Content(raw_ + buf_, out);
    if (state_ == State::kCall) call_.Close([&](std::string_view a) { Args(a, out); });
  }

 private:
  enum class State { kStart, kContent, kCall, kBetween };
  void Process(OutputDelta* out, bool final) {
    while (true) {
      switch (state_) {
        case State::kStart: {
          const size_t ws = SkipSpace(buf_);
          std::string_view rest = std::string_view(buf_).substr(ws);
          if (rest.empty()) return;
          if (StartsWith(rest, kPythonTag)) {
            raw_ = buf_.substr(0, ws + kPythonTag.size());
            buf_.erase(0, ws + kPythonTag.size());
            state_ = State::kBetween;
          } else if (rest[0] == '{') {
            raw_ = buf_.substr(0, ws);
            buf_.erase(0, ws);
            StartCall();
          } else if (!final && MayBecome(rest, kPythonTag)) {
            return;
          } else {
            state_ = State::kContent;
          }
          continue;
        }
        case State::kContent:
          Content(buf_, out);
          buf_.clear();
          return;
        case State::kBetween: {
          size_t i = 0;
          while (i < buf_.size() && (IsSpace(buf_[i]) || buf_[i] == ';')) ++i;
          if (i == buf_.size()) {
            if (final) buf_.clear();
            return;
          }
          if (buf_[i] == '{') {
            raw_.append(buf_, 0, i);
            buf_.erase(0, i);
            StartCall();
          } else {
            buf_.erase(0, i);
            state_ = State::kContent;
            trim_ = true;
          }
          continue;
        }
        case State::kCall:
          switch (StepCall(call_, buf_, &raw_, out)) {
            case JsonCall::Step::kNotACall:
              if (!call_.begun() && calls_ == 0) {
                Content(raw_, out);  // the answer was text that began with '{'
                state_ = State::kContent;
              } else {
                state_ = State::kBetween;
              }
              continue;
            case JsonCall::Step::kDone:
              state_ = State::kBetween;
              raw_.clear();
              continue;
            case JsonCall::Step::kNeedMore:
              return;
          }
          break;
      }
    }
  }
  void StartCall() {
    call_ = JsonCall();
    state_ = State::kCall;
  }

  State state_ = State::kStart;
  std::string buf_;
  std::string raw_;
  JsonCall call_;
};

// An array of JSON calls: Mistral's [TOOL_CALLS][...] and Kinfer's own "required" output.
// Mistral's newer form, [TOOL_CALLS]name[ARGS]{...} (with an optional [CALL_ID]id), also here.
class JsonArrayParser final : public Base {
 public:
  JsonArrayParser(ToolFormat format, ToolParserOptions options, bool marker)
      : Base(format, std::move(options)), marker_(marker) {
    if (!marker_) state_ = State::kAfterMarker;
  }
  void Push(std::string_view text, OutputDelta* out) override {
    buf_.append(text);
    Process(out, false);
  }
  void Finish(OutputDelta* out) override {
    Process(out, true);
    if (state_ == State::kCall) call_.Close([&](std::string_view a) { Args(a, out); });
    if (state_ == State::kName && !name_.empty() && calls_ == 0) {
      Content(std::string(kMistralCalls) + name_, out);
    }
  }

 private:
  enum class State { kContent, kAfterMarker, kArray, kCall, kName, kCallId, kArgs };
  void Process(OutputDelta* out, bool final) {
    while (true) {
      switch (state_) {
        case State::kContent: {
          if (!marker_) {
            Content(buf_, out);
            buf_.clear();
            return;
          }
          const size_t pos = buf_.find(kMistralCalls);
          if (pos == std::string::npos) {
            const size_t n = final ? buf_.size() : SafeLength(buf_, {kMistralCalls});
            Content(std::string_view(buf_).substr(0, n), out);
            buf_.erase(0, n);
            return;
          }
          Content(std::string_view(buf_).substr(0, pos), out);
          buf_.erase(0, pos + kMistralCalls.size());
          state_ = State::kAfterMarker;
          continue;
        }
        case State::kAfterMarker: {
          const size_t ws = SkipSpace(buf_);
          if (ws == buf_.size()) {
            if (!marker_) {
              if (!final) return;  // whitespace alone: content unless an array follows
              state_ = State::kContent;
              continue;
            }
            buf_.erase(0, ws);
            return;
          }
          if (buf_[ws] == '[') {
            buf_.erase(0, ws + 1);
            state_ = State::kArray;
          } else if (!marker_) {
            state_ = State::kContent;  // "required" output that is not an array: content
          } else {
            buf_.erase(0, ws);
            name_.clear();
            state_ = State::kName;
          }
          continue;
        }
        case State::kArray: {
          size_t i = 0;
          while (i < buf_.size() && (IsSpace(buf_[i]) || buf_[i] == ',')) ++i;
          buf_.erase(0, i);
          if (buf_.empty()) return;
          if (buf_[0] == ']') {
            buf_.erase(0, 1);
          } else if (buf_[0] == '{') {
            call_ = JsonCall();
            state_ = State::kCall;
            continue;
          }
          state_ = State::kContent;
          trim_ = true;
          continue;
        }
        case State::kCall:
          switch (StepCall(call_, buf_, nullptr, out)) {
            case JsonCall::Step::kNotACall:
              state_ = State::kContent;  // the rest is not calls
              trim_ = true;
              continue;
            case JsonCall::Step::kDone:
              state_ = State::kArray;
              continue;
            case JsonCall::Step::kNeedMore:
              return;
          }
          break;
        case State::kName:
        case State::kCallId: {
          const size_t args = buf_.find(kMistralArgs);
          const size_t id = state_ == State::kName ? buf_.find(kMistralCallId) : std::string::npos;
          const size_t end = std::min(args, id);
          if (end == std::string::npos) {
            const size_t n = final ? buf_.size() : SafeLength(buf_, {kMistralArgs, kMistralCallId});
            if (state_ == State::kName) name_.append(buf_, 0, n);
            buf_.erase(0, n);
            if (name_.size() > kMaxNameLength) {
              Content(std::string(kMistralCalls) + name_, out);
              name_.clear();
              state_ = State::kContent;
              continue;
            }
            return;
          }
          if (state_ == State::kName) name_.append(buf_, 0, end);
          if (end == id) {
            buf_.erase(0, end + kMistralCallId.size());
            state_ = State::kCallId;
            continue;
          }
          buf_.erase(0, end + kMistralArgs.size());
          Begin(Trim(name_), out);
          name_.clear();
          value_ = JsonObjectScanner();
          value_.Push("{\"a\":");
          sent_ = 0;
          state_ = State::kArgs;
          continue;
        }
        case State::kArgs: {
          // One byte at a time: the value ends where its member completes, whatever follows in
          // the same piece of text.
          size_t used = 0;
          while (used < buf_.size()) {
            if (value_.Push(std::string_view(buf_).substr(used, 1)) == 0) break;
            ++used;
            const auto* v = value_.Find("a");
            if ((v && v->complete) || value_.done() || value_.failed()) break;
          }
          buf_.erase(0, used);
          const auto* a = value_.Find("a");
          if (a && a->raw.size() > sent_) {
            Args(std::string_view(a->raw).substr(sent_), out);
            sent_ = a->raw.size();
          }
          if ((a && a->complete) || value_.failed() || value_.done()) {
            state_ = State::kContent;
            trim_ = true;
            continue;
          }
          return;
        }
      }
    }
  }

  bool marker_;
  State state_ = State::kContent;
  std::string buf_;
  std::string name_;
  JsonCall call_;
  JsonObjectScanner value_;
  size_t sent_ = 0;
};

// Qwen3-Coder's XML: <tool_call><function=f><parameter=p>value</parameter></function></tool_call>.
// Values are typed by the function's schema: the arguments are a JSON object.
class Qwen3CoderParser final : public Base {
 public:
  using Base::Base;
  void Push(std::string_view text, OutputDelta* out) override {
    buf_.append(text);
    Process(out, false);
  }
  void Finish(OutputDelta* out) override {
    Process(out, true);
    if (state_ == State::kOpen) Content(raw_ + buf_, out);
    if (state_ == State::kParams) Args(params_ == 0 ? "{}" : "}", out);  // cut short
  }

 private:
  enum class State { kContent, kOpen, kParams, kClose };

  std::string Value(const std::string& param, std::string value) const {
    if (!value.empty() && value.front() == '\n') value.erase(0, 1);
    if (!value.empty() && value.back() == '\n') value.pop_back();
    std::string type;
    auto fn = opt_.parameters.find(function_);
    if (fn != opt_.parameters.end() && fn->second.is_object()) {
      const Json& props = fn->second.value("properties", Json::object());
      if (props.is_object() && props.contains(param) && props[param].is_object()) {
        const Json& t = props[param].value("type", Json());
        if (t.is_string()) type = t.get<std::string>();
        if (t.is_array() && !t.empty() && t[0].is_string()) type = t[0].get<std::string>();
      }
    }
    const std::string trimmed = Trim(value);
    if (type == "integer" || type == "number") {
      auto j = ParseJson(trimmed, "value", 2);
      if (j.ok() && j->is_number()) return j->dump();
    } else if (type == "boolean") {
      if (trimmed == "true" || trimmed == "True") return "true";
      if (trimmed == "false" || trimmed == "False") return "false";
    } else if (type == "null") {
      if (trimmed == "null" || trimmed == "None") return "null";
    } else if (type == "object" || type == "array") {
      auto j = ParseJson(trimmed, "value", 64);
      if (j.ok() && (j->is_object() || j->is_array())) {
        return j->dump(-1, ' ', false, Json::error_handler_t::replace);
      }
    }
    return Json(value).dump(-1, ' ', false, Json::error_handler_t::replace);
  }

  void Process(OutputDelta* out, bool final) {
    while (true) {
      switch (state_) {
        case State::kContent: {
          const size_t a = buf_.find(kToolCallOpen), b = buf_.find(kFunctionOpen);
          const size_t pos = std::min(a, b);
          if (pos == std::string::npos) {
            const size_t n = final ? buf_.size() : SafeLength(buf_, {kToolCallOpen, kFunctionOpen});
            Content(std::string_view(buf_).substr(0, n), out);
            buf_.erase(0, n);
            return;
          }
          Content(std::string_view(buf_).substr(0, pos), out);
          buf_.erase(0, pos);
          raw_.clear();
          if (pos == a) {
            raw_ = std::string(kToolCallOpen);
            buf_.erase(0, kToolCallOpen.size());
          }
          state_ = State::kOpen;
          continue;
        }
        case State::kOpen: {
          const size_t ws = SkipSpace(buf_);
          std::string_view rest = std::string_view(buf_).substr(ws);
          if (StartsWith(rest, kFunctionOpen)) {
            const size_t gt = rest.find('>');
            if (gt == std::string_view::npos) {
              if (!final && rest.size() < kMaxNameLength) return;
            } else {
              function_ = Trim(rest.substr(kFunctionOpen.size(), gt - kFunctionOpen.size()));
              if (!function_.empty()) {
                buf_.erase(0, ws + gt + 1);
                Begin(function_, out);
                params_ = 0;
                state_ = State::kParams;
                continue;
              }
            }
          } else if (!final && (rest.empty() || MayBecome(rest, kFunctionOpen))) {
            return;
          }
          // Not a call: its opening text is content (consumed, so the search moves on).
          if (StartsWith(rest, kFunctionOpen)) {
            raw_.append(buf_, 0, ws + kFunctionOpen.size());
            buf_.erase(0, ws + kFunctionOpen.size());
          }
          Content(raw_, out);
          raw_.clear();
          state_ = State::kContent;
          continue;
        }
        case State::kParams: {
          const size_t ws = SkipSpace(buf_);
          std::string_view rest = std::string_view(buf_).substr(ws);
          if (StartsWith(rest, kParameterOpen)) {
            const size_t gt = rest.find('>');
            if (gt == std::string_view::npos) {
              if (!final) return;
              buf_.clear();
              continue;
            }
            const size_t close = rest.find(kParameterClose, gt + 1);
            if (close == std::string_view::npos && !final) return;
            const std::string name =
                Trim(rest.substr(kParameterOpen.size(), gt - kParameterOpen.size()));
            const size_t end = close == std::string_view::npos ? rest.size() : close;
            std::string value(rest.substr(gt + 1, end - gt - 1));
            Args((params_++ == 0 ? "{" : ", ") +
                     Json(name).dump(-1, ' ', false, Json::error_handler_t::replace) + ": " +
                     Value(name, value),
                 out);
            buf_.erase(0, ws + (close == std::string_view::npos ? rest.size()
                                                                : close + kParameterClose.size()));
            continue;
          }
          if (!final && (rest.empty() || MayBecome(rest, kParameterOpen) ||
                         MayBecome(rest, kFunctionClose))) {
            return;
          }
          if (StartsWith(rest, kFunctionClose)) buf_.erase(0, ws + kFunctionClose.size());
          Args(params_ == 0 ? "{}" : "}", out);
          state_ = State::kClose;
          continue;
        }
        case State::kClose: {
          const size_t ws = SkipSpace(buf_);
          std::string_view rest = std::string_view(buf_).substr(ws);
          if (StartsWith(rest, kToolCallClose)) {
            buf_.erase(0, ws + kToolCallClose.size());
          } else if (!final && (rest.empty() || MayBecome(rest, kToolCallClose))) {
            return;
          }
          state_ = State::kContent;
          trim_ = true;
          continue;
        }
      }
    }
  }

  State state_ = State::kContent;
  std::string buf_;
  std::string raw_;
  std::string function_;
  int params_ = 0;
};

// [f(a=1), g()] as the whole answer; anything else is content.
class PythonicParser final : public Base {
 public:
  using Base::Base;
  void Push(std::string_view text, OutputDelta* out) override {
    buf_.append(text);
    Process(out, false);
  }
  void Finish(OutputDelta* out) override {
    Process(out, true);
    if (state_ != State::kContent) Content(buf_, out);
  }

 private:
  enum class State { kStart, kList, kContent };
  void Process(OutputDelta* out, bool final) {
    if (state_ == State::kStart) {
      const size_t ws = SkipSpace(buf_);
      if (ws == buf_.size()) return;
      state_ = buf_[ws] == '[' ? State::kList : State::kContent;
      scan_ = ws;
    }
    if (state_ == State::kList) {
      for (; scan_ < buf_.size(); ++scan_) {
        const char c = buf_[scan_];
        if (quote_) {
          if (escape_) {
            escape_ = false;
          } else if (c == '\\') {
            escape_ = true;
          } else if (c == quote_) {
            quote_ = 0;
          }
          continue;
        }
        if (c == '"' || c == '\'') {
          quote_ = c;
        } else if (c == '[' || c == '(' || c == '{') {
          ++depth_;
        } else if (c == ']' || c == ')' || c == '}') {
          if (--depth_ == 0) {
            ++scan_;
            break;
          }
        }
      }
      if (depth_ > 0) return;  // the list goes on (Finish releases it as content if it never ends)
      auto calls = ParsePythonicCalls(Trim(std::string_view(buf_).substr(0, scan_)));
      if (!calls.ok()) {
        state_ = State::kContent;
      } else {
        for (const PythonicCall& c : *calls) {
          Begin(c.name, out);
          Args(c.arguments, out);
        }
        buf_.erase(0, scan_);
        state_ = State::kContent;
        trim_ = true;
      }
    }
    if (state_ == State::kContent) {
      Content(buf_, out);
      buf_.clear();
    }
    (void) final;
  }

  State state_ = State::kStart;
  std::string buf_;
  size_t scan_ = 0;
  int depth_ = 0;
  char quote_ = 0;
  bool escape_ = false;
};

// tool_choice naming a function: the whole output (constrained to its schema) is the arguments.
class NamedParser final : public Base {
 public:
  using Base::Base;
  void Push(std::string_view text, OutputDelta* out) override {
    if (!begun_) {
      begun_ = true;
      Begin(opt_.named, out);
    }
    Args(text, out);
  }
  void Finish(OutputDelta* out) override {
    if (!begun_) Push("", out);
  }

 private:
  bool begun_ = false;
};

}  // namespace

std::optional<ToolFormat> ToolFormatFromName(std::string_view name) {
  if (name == "hermes" || name == "qwen" || name == "qwen2_5" || name == "qwen3") {
    return ToolFormat::kHermes;
  }
  if (name == "llama3_json" || name == "llama3" || name == "llama") return ToolFormat::kLlama3Json;
  if (name == "mistral") return ToolFormat::kMistral;
  if (name == "qwen3_coder" || name == "qwen3_xml") return ToolFormat::kQwen3Coder;
  if (name == "pythonic") return ToolFormat::kPythonic;
  return std::nullopt;
}

std::string_view ToolFormatName(ToolFormat f) {
  switch (f) {
    case ToolFormat::kHermes:
      return "hermes";
    case ToolFormat::kLlama3Json:
      return "llama3_json";
    case ToolFormat::kMistral:
      return "mistral";
    case ToolFormat::kQwen3Coder:
      return "qwen3_coder";
    case ToolFormat::kPythonic:
      return "pythonic";
    case ToolFormat::kRequiredJson:
      return "required";
    case ToolFormat::kNamed:
      return "named";
  }
  return "";
}

std::optional<ToolFormat> DetectToolFormat(std::string_view t) {
  auto has = [&](std::string_view s) { return t.find(s) != std::string_view::npos; };
  if (has("<function=") && has("<parameter=")) return ToolFormat::kQwen3Coder;
  if (has("<tool_call>")) return ToolFormat::kHermes;
  if (has("[TOOL_CALLS]")) return ToolFormat::kMistral;
  if (has("<|python_tag|>") || (has("\"parameters\"") && has("<|eot_id|>"))) {
    return ToolFormat::kLlama3Json;
  }
  if (has("[func_name1(")) return ToolFormat::kPythonic;
  return std::nullopt;
}

std::unique_ptr<ToolParser> MakeToolParser(ToolFormat format, ToolParserOptions options) {
  switch (format) {
    case ToolFormat::kHermes:
      return std::make_unique<HermesParser>(format, std::move(options));
    case ToolFormat::kLlama3Json:
      return std::make_unique<Llama3JsonParser>(format, std::move(options));
    case ToolFormat::kMistral:
      return std::make_unique<JsonArrayParser>(format, std::move(options), true);
    case ToolFormat::kQwen3Coder:
      return std::make_unique<Qwen3CoderParser>(format, std::move(options));
    case ToolFormat::kPythonic:
      return std::make_unique<PythonicParser>(format, std::move(options));
    case ToolFormat::kRequiredJson:
      return std::make_unique<JsonArrayParser>(format, std::move(options), false);
    case ToolFormat::kNamed:
      return std::make_unique<NamedParser>(format, std::move(options));
  }
  return nullptr;
}

std::string NewToolCallId(ToolFormat format) {
  static constexpr char kChars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  thread_local std::mt19937_64 rng(std::random_device{}());
  const int n = format == ToolFormat::kMistral ? 9 : 24;
  std::string id = format == ToolFormat::kMistral ? "" : "call_";
  for (int i = 0; i < n; ++i) id.push_back(kChars[rng() % (sizeof(kChars) - 1)]);
  return id;
}

void Accumulate(const OutputDelta& d, std::string* content, std::string* reasoning,
                std::vector<ToolCall>* calls) {
  content->append(d.content);
  reasoning->append(d.reasoning);
  for (const ToolCallDelta& t : d.tool_calls) {
    if (t.first) {
      calls->push_back(ToolCall{t.id, t.name, ""});
    }
    if (t.index >= 0 && static_cast<size_t>(t.index) < calls->size()) {
      (*calls)[static_cast<size_t>(t.index)].arguments += t.arguments;
    }
  }
}

}  // namespace kinfer::structured
