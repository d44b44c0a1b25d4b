// Reasoning text kept apart from the answer, for models that think inside <think>...</think>
// (DeepSeek-R1 and its distills, Qwen3, QwQ): what comes before </think> is reasoning, what comes
// after is the answer, split as the text streams, never leaking a half tag into either.
//
//   ReasoningParser p(ReasoningFormat::kQwen3, PromptOpensReasoning(prompt));
//   std::string reasoning, content;
//   p.Push("<think>\nLet me see.\n</think>\n\nIt is 4.", &reasoning, &content);
//   p.Finish(&reasoning, &content);  // reasoning "Let me see.", content "It is 4."
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace kinfer::structured {

enum class ReasoningFormat {
  kDeepSeekR1,  // reasoning first, whether or not the output opens with <think>
  kQwen3,       // reasoning only inside <think>, which the output or the prompt opens
};

// Names as vLLM's --reasoning-parser spells them: deepseek_r1, qwen3.
std::optional<ReasoningFormat> ReasoningFormatFromName(std::string_view name);
std::string_view ReasoningFormatName(ReasoningFormat f);
// From a chat template: one with enable_thinking is Qwen3's kind, other <think> templates R1's.
std::optional<ReasoningFormat> DetectReasoningFormat(std::string_view chat_template);
// True when the rendered prompt ends inside an open <think> (the template opened it).
bool PromptOpensReasoning(std::string_view prompt);

class ReasoningParser {
 public:
  ReasoningParser(ReasoningFormat format, bool prompt_opens_reasoning);
  // Appends the certain part of `text` to `reasoning` and `content`. Reasoning is trimmed of
  // surrounding whitespace, and so is the start of the answer after it.
  void Push(std::string_view text, std::string* reasoning, std::string* content);
  void Finish(std::string* reasoning, std::string* content);

 private:
  enum class State { kMaybeOpen, kOpening, kReasoning, kAnswerStart, kAnswer };
  void Process(std::string* reasoning, std::string* content, bool final);
  State state_;
  std::string buf_;
  bool reasoning_started_ = false;
};

}  // namespace kinfer::structured
