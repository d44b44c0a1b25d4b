// The parts of a generation request, each parsed and validated by its own function that owns
// its fields' error messages. ParseGenerationRequest (openai_api.h) runs them in order for
// /v1/completions and /v1/chat/completions; other front doors reuse the parts they share.
//
//   Fields f(body);
//   if (auto err = ParseSampling(f, model, &req.params)) return *err;
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "server/api_error.h"
#include "server/openai_api.h"
#include "server/request_fields.h"

namespace kinfer::server {

// `model`: one of the served names (404 model_not_found otherwise); absent: the first name.
ParseError ParseModelName(Fields& f, const ModelInfo& model, std::string* name);

// n, best_of, temperature, top_p, top_k, min_p, the penalties, seed and logit_bias.
ParseError ParseSampling(Fields& f, const ModelInfo& model, engine::SamplingParams* p);

// What ends a completion: max_tokens (and chat's max_completion_tokens, which wins), min_tokens,
// ignore_eos, stop strings, stop_token_ids, and what the output text keeps
// (include_stop_str_in_output, skip_special_tokens). `max_tokens` stays empty when the request
// names none: the default depends on the prompt (see CheckLengths).
ParseError ParseStopping(Fields& f, Endpoint endpoint, const ModelInfo& model,
                         engine::SamplingParams* p, std::optional<int32_t>* max_tokens);

// stream and stream_options (include_usage, continuous_usage_stats).
ParseError ParseStreaming(Fields& f, GenerationRequest* req);

// Scheduling and bookkeeping: priority, cache_salt, user.
ParseError ParseRequestMeta(Fields& f, GenerationRequest* req);

// logprobs (a count for completions; a boolean with top_logprobs for chat), echo,
// prompt_logprobs; completions' suffix is refused.
ParseError ParseLogprobs(Fields& f, Endpoint endpoint, GenerationRequest* req);

// Structured output, in every spelling clients use: OpenAI's response_format (text,
// json_object, json_schema), vLLM's structured_outputs {json, regex, choice, grammar,
// json_object} and the older guided_json/guided_regex/guided_choice/guided_grammar, llama.cpp's
// json_schema and grammar (GBNF). At most one; it is compiled here, so that a schema or grammar
// the engine cannot follow is a 400 naming the field and the problem.
ParseError ParseOutputFormat(Fields& f, Endpoint endpoint, const ModelInfo& model,
                             GenerationRequest* req);

// Chat's tools, tool_choice (none, auto, required, a named function) and parallel_tool_calls.
// "auto" parses the model's own tool-call format; "required" and a named function constrain the
// output (a JSON array of calls, the function's arguments) as vLLM does.
ParseError ParseTools(Fields& f, Endpoint endpoint, const ModelInfo& model, GenerationRequest* req);

// Chat's reasoning split (models that think in <think>): on when the model has a reasoning
// format, unless chat_template_kwargs.enable_thinking is false or the output is constrained.
ParseError ParseReasoning(Fields& f, Endpoint endpoint, const ModelInfo& model,
                          GenerationRequest* req);

// The prompt token ids: chat messages through the template (`body` is the raw text, whose key
// order the template sees), or completions' prompt in its four shapes.
ParseError ParsePrompts(Fields& f, Endpoint endpoint, const std::string& body,
                        const ModelInfo& model, GenerationRequest* req);

// Each prompt and the requested output fit the context; max_tokens gets its default (16 for
// completions, the rest of the context for chat); the finished parameters pass Validate.
ParseError CheckLengths(Endpoint endpoint, std::optional<int32_t> max_tokens,
                        const ModelInfo& model, GenerationRequest* req);

}  // namespace kinfer::server
