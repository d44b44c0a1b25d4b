// Hugging Face tokenizer.json (model BPE or WordPiece with its normalizer, pre-tokenizer,
// post-processor, decoder and added tokens) plus tokenizer_config.json (BOS/EOS and their
// add_*_token rules, chat templates) and generation_config.json (EOS ids) when they sit beside it.
#pragma once

#include <string>
#include <string_view>

#include "core/status.h"
#include "tokenizer/tokenizer.h"

namespace kinfer::tokenizer {

// Reads `tokenizer_json_path` and the config files in its directory.
Result<TokenizerParts> LoadHfTokenizerJson(const std::string& tokenizer_json_path);

// The same from text (tests and fuzzing). `config_json`, `generation_config_json` and
// `chat_template_jinja` may be empty.
Result<TokenizerParts> ParseHfTokenizer(std::string_view tokenizer_json,
                                        std::string_view config_json,
                                        std::string_view generation_config_json,
                                        std::string_view chat_template_jinja, std::string source);

}  // namespace kinfer::tokenizer
