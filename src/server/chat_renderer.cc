#include "server/chat_renderer.h"

namespace kinfer::server {

Result<ChatRenderer> MakeChatRenderer(const std::string& source, const tokenizer::Tokenizer& tok) {
  (void)source;
  (void)tok;
  return UnimplementedError("chat templates are not available in this build yet");
}

}  // namespace kinfer::server
