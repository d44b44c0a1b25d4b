#include "server/chat_renderer.h"

#include <memory>

#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace kinfer::server {

Result<ChatRenderer> MakeChatRenderer(const std::string& source, const tokenizer::Tokenizer& tok) {
  KINFER_ASSIGN_OR_RETURN(tokenizer::ChatTemplate parsed, tokenizer::ChatTemplate::Parse(source));
  auto tmpl = std::make_shared<const tokenizer::ChatTemplate>(std::move(parsed));
  std::string bos = tok.bos_token(), eos = tok.eos_token();
  return ChatRenderer([tmpl, bos, eos](const OrderedJson& messages,
                                       const ChatRenderOptions& o) -> Result<std::string> {
    tokenizer::ChatTemplateOptions opts;
    opts.tools = o.tools;
    opts.add_generation_prompt = o.add_generation_prompt;
    opts.extra_context = o.extra_context;
    opts.bos_token = bos;
    opts.eos_token = eos;
    return tmpl->Render(messages, opts);
  });
}

}  // namespace kinfer::server
