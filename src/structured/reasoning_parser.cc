#include "structured/reasoning_parser.h"

namespace kinfer::structured {
namespace {

constexpr std::string_view kOpen = "<think>";
constexpr std::string_view kClose = "</think>";

bool IsSpace(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

size_t SkipSpace(std::string_view s) {
  size_t i = 0;
  while (i < s.size() && IsSpace(s[i])) ++i;
  return i;
}

}  // namespace

std::optional<ReasoningFormat> ReasoningFormatFromName(std::string_view name) {
  if (name == "deepseek_r1") return ReasoningFormat::kDeepSeekR1;
  if (name == "qwen3") return ReasoningFormat::kQwen3;
  return std::nullopt;
}

std::string_view ReasoningFormatName(ReasoningFormat f) {
  return f == ReasoningFormat::kDeepSeekR1 ? "deepseek_r1" : "qwen3";
}

std::optional<ReasoningFormat> DetectReasoningFormat(std::string_view t) {
  if (t.find(kClose) == std::string_view::npos) return std::nullopt;
  if (t.find("enable_thinking") != std::string_view::npos) return ReasoningFormat::kQwen3;
  return ReasoningFormat::kDeepSeekR1;
}

bool PromptOpensReasoning(std::string_view prompt) {
  const size_t open = prompt.rfind(kOpen);
  if (open == std::string_view::npos) return false;
  const size_t close = prompt.rfind(kClose);
  return close == std::string_view::npos || close < open;
}

ReasoningParser::ReasoningParser(ReasoningFormat format, bool prompt_opens_reasoning)
    : state_(format == ReasoningFormat::kDeepSeekR1 || prompt_opens_reasoning ? State::kOpening
                                                                              : State::kMaybeOpen) {
}

void ReasoningParser::Push(std::string_view text, std::string* reasoning, std::string* content) {
  buf_.append(text);
  Process(reasoning, content, false);
}

void ReasoningParser::Finish(std::string* reasoning, std::string* content) {
  Process(reasoning, content, true);
  if (state_ == State::kMaybeOpen || state_ == State::kAnswer) content->append(buf_);
  buf_.clear();
}

void ReasoningParser::Process(std::string* reasoning, std::string* content, bool final) {
  while (true) {
    switch (state_) {
      case State::kMaybeOpen:
      case State::kOpening: {
        // Leading whitespace, then maybe <think> (dropped). kMaybeOpen: without it, an answer.
        const size_t ws = SkipSpace(buf_);
        std::string_view rest = std::string_view(buf_).substr(ws);
        if (rest.empty() && !final) return;
        if (rest.substr(0, kOpen.size()) == kOpen) {
          buf_.erase(0, ws + kOpen.size());
          state_ = State::kReasoning;
          continue;
        }
        if (!final && rest.size() < kOpen.size() && kOpen.substr(0, rest.size()) == rest) return;
        if (state_ == State::kOpening) {
          buf_.erase(0, ws);
          state_ = State::kReasoning;
        } else {
          state_ = State::kAnswer;
        }
        if (final && buf_.empty()) return;
        continue;
      }
      case State::kReasoning: {
        if (!reasoning_started_) {
          const size_t ws = SkipSpace(buf_);
          buf_.erase(0, ws);
          if (buf_.empty()) return;
          reasoning_started_ = true;
        }
        const size_t close = buf_.find(kClose);
        if (close != std::string::npos) {
          size_t end = close;
          while (end > 0 && IsSpace(buf_[end - 1])) --end;
          reasoning->append(buf_, 0, end);
          buf_.erase(0, close + kClose.size());
          state_ = State::kAnswerStart;
          continue;
        }
        // Hold a tail that may start </think>, and trailing whitespace (it may precede it).
        size_t n = buf_.size();
        if (!final) {
          for (size_t k = std::min(n, kClose.size() - 1); k > 0; --k) {
            if (kClose.substr(0, k) == std::string_view(buf_).substr(n - k)) {
              n -= k;
              break;
            }
          }
          while (n > 0 && IsSpace(buf_[n - 1])) --n;
        } else {
          while (n > 0 && IsSpace(buf_[n - 1])) --n;
        }
        reasoning->append(buf_, 0, n);
        buf_.erase(0, final ? buf_.size() : n);
        return;
      }
      case State::kAnswerStart: {
        const size_t ws = SkipSpace(buf_);
        buf_.erase(0, ws);
        if (buf_.empty()) return;
        state_ = State::kAnswer;
        continue;
      }
      case State::kAnswer:
        content->append(buf_);
        buf_.clear();
        return;
    }
  }
}

}  // namespace kinfer::structured
