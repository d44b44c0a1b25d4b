// The parts of a generation request that shape its output: structured output, tools and the
// reasoning split (declared in request_parts.h).
#include <regex>
#include <set>

#include <fmt/format.h>

#include "server/request_parts.h"

namespace kinfer::server {
namespace {

using structured::GrammarKind;
using structured::GrammarSpec;

std::string Dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

// One way the request asks for structured output: the field that asked and what it asked for.
struct Source {
  std::string param;
  GrammarSpec spec;
};

// Kinfer's JSON defaults, unless the schema brings its own "x-guidance": compact JSON with a
// space after ',' and ':' (as json.dumps writes it), which keeps small models from wandering
// into endless whitespace; oneOf read as anyOf (Pydantic writes oneOf for tagged unions).
struct JsonStyle {
  bool flexible_whitespace = false;
  std::string whitespace_pattern;
  bool no_additional_properties = false;
};

// additionalProperties: false wherever a schema object lists properties and says nothing.
void CloseObjects(Json& s, int depth) {
  if (depth > 64 || !s.is_object()) return;
  if (s.contains("properties") && !s.contains("additionalProperties")) {
    s["additionalProperties"] = false;
  }
  for (const char* key : {"properties", "$defs", "definitions", "patternProperties"}) {
    if (s.contains(key) && s[key].is_object()) {
      for (auto& [k, v] : s[key].items()) CloseObjects(v, depth + 1);
    }
  }
  for (const char* key : {"items", "additionalItems", "not", "if", "then", "else"}) {
    if (s.contains(key)) CloseObjects(s[key], depth + 1);
  }
  for (const char* key : {"anyOf", "allOf", "oneOf", "prefixItems"}) {
    if (s.contains(key) && s[key].is_array()) {
      for (auto& v : s[key]) CloseObjects(v, depth + 1);
    }
  }
}

// The schema text handed to the grammar engine.
std::string SchemaText(Json schema, const JsonStyle& style) {
  if (schema.is_boolean()) schema = schema.get<bool>() ? Json::object() : Json{{"not", {}}};
  if (style.no_additional_properties) CloseObjects(schema, 0);
  if (schema.is_object() && !schema.contains("x-guidance")) {
    Json g = {{"coerce_one_of", true}};
    if (!style.whitespace_pattern.empty()) {
      g["whitespace_pattern"] = style.whitespace_pattern;
    } else if (!style.flexible_whitespace) {
      g["whitespace_flexible"] = false;
      g["item_separator"] = ", ";
      g["key_separator"] = ": ";
    }
    schema["x-guidance"] = g;
  }
  return Dump(schema);
}

// A schema given as an object or as JSON text (vLLM accepts both).
ParseError ReadSchema(const Json& v, const std::string& param, const JsonStyle& style,
                      GrammarSpec* spec) {
  Json schema = v;
  if (v.is_string()) {
    auto parsed = ParseJson(v.get<std::string>(), param, 64);
    if (!parsed.ok()) {
      return BadRequest(fmt::format("'{}' is not valid JSON: {}", param, parsed.status().message()),
                        param);
    }
    schema = *parsed;
  }
  if (!schema.is_object() && !schema.is_boolean()) {
    return BadRequest(fmt::format("'{}' must be a JSON schema (an object)", param), param);
  }
  spec->kind = GrammarKind::kJsonSchema;
  spec->source = SchemaText(std::move(schema), style);
  return std::nullopt;
}

ParseError ReadString(const Json& v, const std::string& param, GrammarKind kind,
                      GrammarSpec* spec) {
  if (!v.is_string() || v.get_ref<const std::string&>().empty()) {
    return BadRequest(fmt::format("'{}' must be a non-empty string", param), param);
  }
  spec->kind = kind;
  spec->source = v.get<std::string>();
  if (kind == GrammarKind::kLark && structured::LooksLikeGbnf(spec->source)) {
    spec->kind = GrammarKind::kGbnf;
  }
  return std::nullopt;
}

ParseError ReadChoice(const Json& v, const std::string& param, GrammarSpec* spec) {
  if (!v.is_array() || v.empty()) {
    return BadRequest(fmt::format("'{}' must be a non-empty array of strings", param), param);
  }
  for (const Json& c : v) {
    if (!c.is_string() || c.get_ref<const std::string&>().empty()) {
      return BadRequest(fmt::format("'{}' must be a non-empty array of non-empty strings", param),
                        param);
    }
  }
  spec->kind = GrammarKind::kChoice;
  spec->source = Dump(v);
  return std::nullopt;
}

ParseError ReadResponseFormat(const Json& rf, const JsonStyle& style, std::vector<Source>* out) {
  const std::string p = "response_format";
  if (!rf.is_object() || !rf.contains("type") || !rf["type"].is_string()) {
    return BadRequest("'response_format' must be an object with a 'type'", p);
  }
  const std::string type = rf["type"].get<std::string>();
  if (type == "text") return std::nullopt;
  if (type == "json_object") {
    out->push_back({p, {GrammarKind::kJsonObject, ""}});
    return std::nullopt;
  }
  if (type != "json_schema") {
    return BadRequest(fmt::format("response_format type '{}' is not supported (use text, "
                                  "json_object or json_schema)",
                                  type),
                      p);
  }
  auto js = rf.find("json_schema");
  if (js == rf.end() || !js->is_object()) {
    return BadRequest("response_format of type json_schema needs a 'json_schema' object", p);
  }
  for (auto it = js->begin(); it != js->end(); ++it) {
    const std::string& k = it.key();
    if (k == "name" || k == "description") {
      if (!it->is_string()) {
        return BadRequest(fmt::format("'response_format.json_schema.{}' must be a string", k), p);
      }
    } else if (k == "strict") {
      if (!it->is_boolean() && !it->is_null()) {
        return BadRequest("'response_format.json_schema.strict' must be a boolean", p);
      }
    } else if (k != "schema") {
      return BadRequest(fmt::format("'response_format.json_schema.{}' is not supported", k), p);
    }
  }
  if (js->contains("name")) {
    static const std::regex kName("^[a-zA-Z0-9_-]{1,64}$");
    if (!std::regex_match((*js)["name"].get<std::string>(), kName)) {
      return BadRequest(
          "'response_format.json_schema.name' must be 1 to 64 letters, digits, '_' or '-'", p);
    }
  }
  auto schema = js->find("schema");
  if (schema == js->end() || schema->is_null()) {
    return BadRequest("'response_format.json_schema.schema' is required", p);
  }
  Source s{p, {}};
  if (auto err = ReadSchema(*schema, "response_format.json_schema.schema", style, &s.spec)) {
    err->param = p;
    return err;
  }
  out->push_back(std::move(s));
  return std::nullopt;
}

ParseError ReadStructuredOutputs(const Json& so, JsonStyle style, std::vector<Source>* out) {
  const std::string p = "structured_outputs";
  if (!so.is_object()) return BadRequest("'structured_outputs' must be an object", p);
  for (const char* flag :
       {"disable_any_whitespace", "disable_additional_properties", "disable_fallback"}) {
    auto it = so.find(flag);
    if (it == so.end() || it->is_null()) continue;
    if (!it->is_boolean()) {
      return BadRequest(fmt::format("'structured_outputs.{}' must be a boolean", flag), p);
    }
    if (std::string_view(flag) == "disable_additional_properties") {
      style.no_additional_properties = it->get<bool>();
    }
    if (std::string_view(flag) == "disable_any_whitespace" && it->get<bool>()) {
      style.flexible_whitespace = false;
    }
  }
  if (auto it = so.find("whitespace_pattern"); it != so.end() && !it->is_null()) {
    if (!it->is_string()) {
      return BadRequest("'structured_outputs.whitespace_pattern' must be a string", p);
    }
    style.whitespace_pattern = it->get<std::string>();
  }
  static const std::set<std::string> kKnown = {"json",
                                               "regex",
                                               "choice",
                                               "grammar",
                                               "json_object",
                                               "disable_any_whitespace",
                                               "disable_fallback",
                                               "disable_additional_properties",
                                               "whitespace_pattern"};
  for (auto it = so.begin(); it != so.end(); ++it) {
    if (it.key() == "structural_tag") {
      return BadRequest("'structured_outputs.structural_tag' is not supported", p);
    }
    if (!kKnown.count(it.key())) {
      return BadRequest(fmt::format("'structured_outputs.{}' is not a known field (json, regex, "
                                    "choice, grammar, json_object and their options)",
                                    it.key()),
                        p);
    }
  }
  size_t before = out->size();
  for (auto it = so.begin(); it != so.end(); ++it) {
    if (it->is_null()) continue;
    const std::string param = p + "." + it.key();
    Source s{param, {}};
    ParseError err;
    if (it.key() == "json") {
      err = ReadSchema(*it, param, style, &s.spec);
    } else if (it.key() == "regex") {
      err = ReadString(*it, param, GrammarKind::kRegex, &s.spec);
    } else if (it.key() == "choice") {
      err = ReadChoice(*it, param, &s.spec);
    } else if (it.key() == "grammar") {
      err = ReadString(*it, param, GrammarKind::kLark, &s.spec);
    } else if (it.key() == "json_object") {
      if (!it->is_boolean()) err = BadRequest("'" + param + "' must be a boolean", p);
      if (!err && !it->get<bool>()) continue;
      s.spec.kind = GrammarKind::kJsonObject;
    } else {
      continue;
    }
    if (err) {
      err->param = p;
      return err;
    }
    out->push_back(std::move(s));
  }
  if (out->size() == before) {
    return BadRequest(
        "'structured_outputs' needs one of json, regex, choice, grammar or json_object", p);
  }
  return std::nullopt;
}

// An error from the grammar engine as a 400 naming the field.
ApiError CompileError(const Source& s, const Status& st) {
  return BadRequest(fmt::format("'{}': the {} cannot be used: {}", s.param,
                                structured::GrammarKindName(s.spec.kind), st.message()),
                    s.param.substr(0, s.param.find('.')), "invalid_grammar");
}

ParseError Compile(const ModelInfo& model, const Source& s, GenerationRequest* req) {
  if (!model.grammar) {
    return BadRequest(fmt::format("'{}': structured output is not available for this model (its "
                                  "vocabulary could not be given to the grammar engine; see the "
                                  "server log)",
                                  s.param),
                      s.param.substr(0, s.param.find('.')));
  }
  auto c = structured::CompileGrammar(*model.grammar, s.spec);
  if (!c.ok()) return CompileError(s, c.status());
  req->grammar = s.spec;
  req->params.constraint = *c;
  return std::nullopt;
}

const std::regex& FunctionNamePattern() {
  static const std::regex kName("^[a-zA-Z0-9_.-]{1,64}$");
  return kName;
}

}  // namespace

ParseError ParseOutputFormat(Fields& f, Endpoint endpoint, const ModelInfo& model,
                             GenerationRequest* req) {
  (void)endpoint;
  JsonStyle style;
  std::vector<Source> sources;
  if (const Json* rf = f.Get("response_format")) {
    if (auto err = ReadResponseFormat(*rf, style, &sources)) return err;
  }
  if (const Json* so = f.Get("structured_outputs")) {
    if (auto err = ReadStructuredOutputs(*so, style, &sources)) return err;
  }
  // vLLM's older fields and llama.cpp's.
  if (const Json* ws = f.Get("guided_whitespace_pattern")) {
    if (!ws->is_string()) {
      return BadRequest("'guided_whitespace_pattern' must be a string",
                        "guided_whitespace_pattern");
    }
    style.whitespace_pattern = ws->get<std::string>();
  }
  if (const Json* b = f.Get("guided_decoding_backend")) {
    static const std::set<std::string> kOk = {"auto", "guidance", "llguidance"};
    if (!b->is_string() || !kOk.count(b->get<std::string>())) {
      return BadRequest(
          "'guided_decoding_backend' must be auto, guidance or llguidance (Kinfer's "
          "one grammar engine)",
          "guided_decoding_backend");
    }
  }
  struct Field {
    const char* name;
    int how;  // 0 schema, 1 regex, 2 choice, 3 grammar (Lark or GBNF), 4 GBNF only
  };
  for (const Field& fd :
       {Field{"guided_json", 0}, Field{"guided_regex", 1}, Field{"guided_choice", 2},
        Field{"guided_grammar", 3}, Field{"json_schema", 0}, Field{"grammar", 4}}) {
    const Json* v = f.Get(fd.name);
    if (!v) continue;
    Source s{fd.name, {}};
    ParseError err;
    switch (fd.how) {
      case 0:
        err = ReadSchema(*v, fd.name, style, &s.spec);
        break;
      case 1:
        err = ReadString(*v, fd.name, GrammarKind::kRegex, &s.spec);
        break;
      case 2:
        err = ReadChoice(*v, fd.name, &s.spec);
        break;
      case 3:
        err = ReadString(*v, fd.name, GrammarKind::kLark, &s.spec);
        break;
      default:
        err = ReadString(*v, fd.name, GrammarKind::kGbnf, &s.spec);
        break;
    }
    if (err) return err;
    sources.push_back(std::move(s));
  }
  if (sources.empty()) return std::nullopt;
  if (sources.size() > 1) {
    return BadRequest(fmt::format("only one kind of structured output may be asked for, got '{}' "
                                  "and '{}'",
                                  sources[0].param, sources[1].param),
                      sources[1].param.substr(0, sources[1].param.find('.')));
  }
  return Compile(model, sources[0], req);
}

ParseError ParseTools(Fields& f, Endpoint endpoint, const ModelInfo& model,
                      GenerationRequest* req) {
  for (const char* old : {"functions", "function_call"}) {
    if (f.Get(old)) {
      return BadRequest(fmt::format("'{}' (deprecated by OpenAI) is not supported; use 'tools' "
                                    "and 'tool_choice'",
                                    old),
                        old);
    }
  }
  const Json* tools = f.Get("tools");
  const Json* choice = f.Get("tool_choice");
  const Json* parallel = f.Get("parallel_tool_calls");
  if (endpoint != Endpoint::kChat) {
    for (auto [name, v] : {std::pair{"tools", tools}, std::pair{"tool_choice", choice},
                           std::pair{"parallel_tool_calls", parallel}}) {
      if (v) {
        return BadRequest(fmt::format("'{}' is only supported by /v1/chat/completions", name),
                          name);
      }
    }
    return std::nullopt;
  }
  bool parallel_calls = true;
  f.Bool("parallel_tool_calls", &parallel_calls);
  if (!f.ok()) return f.error();

  // The tools: each a function with a unique name and a JSON schema for its parameters.
  std::map<std::string, Json> schemas;
  std::vector<std::string> order;
  if (tools) {
    if (!tools->is_array()) return BadRequest("'tools' must be an array of tools", "tools");
    if (tools->size() > 128) return BadRequest("'tools' takes at most 128 tools", "tools");
    for (size_t i = 0; i < tools->size(); ++i) {
      const Json& t = (*tools)[i];
      const std::string where = fmt::format("tools[{}]", i);
      if (!t.is_object()) return BadRequest(where + " must be an object", "tools");
      const Json type = t.value("type", Json("function"));
      if (type != "function") {
        return BadRequest(fmt::format("{}.type must be 'function', got {}", where, Dump(type)),
                          "tools");
      }
      auto fn = t.find("function");
      if (fn == t.end() || !fn->is_object()) {
        return BadRequest(where + ".function must be an object", "tools");
      }
      auto name = fn->find("name");
      if (name == fn->end() || !name->is_string() ||
          !std::regex_match(name->get<std::string>(), FunctionNamePattern())) {
        return BadRequest(where + ".function.name must be 1 to 64 letters, digits, '_', '.' or '-'",
                          "tools");
      }
      const std::string n = name->get<std::string>();
      if (schemas.count(n)) {
        return BadRequest(fmt::format("{}: a function named '{}' is already defined", where, n),
                          "tools");
      }
      if (auto d = fn->find("description"); d != fn->end() && !d->is_string() && !d->is_null()) {
        return BadRequest(where + ".function.description must be a string", "tools");
      }
      if (auto s = fn->find("strict"); s != fn->end() && !s->is_boolean() && !s->is_null()) {
        return BadRequest(where + ".function.strict must be a boolean", "tools");
      }
      Json params = Json{{"type", "object"}, {"properties", Json::object()}};
      if (auto p = fn->find("parameters"); p != fn->end() && !p->is_null()) {
        if (!p->is_object()) {
          return BadRequest(where + ".function.parameters must be a JSON schema object", "tools");
        }
        params = *p;
        if (model.grammar) {
          // A schema the grammar engine refuses is refused here, whatever tool_choice says.
          auto c = structured::CompileGrammar(
              *model.grammar, {GrammarKind::kJsonSchema, SchemaText(params, JsonStyle())});
          if (!c.ok()) {
            return BadRequest(fmt::format("{}.function.parameters is not a usable JSON schema: {}",
                                          where, c.status().message()),
                              "tools", "invalid_function_parameters");
          }
        }
      }
      schemas[n] = params;
      order.push_back(n);
    }
  }

  // tool_choice: "none", "auto", "required" or {"type": "function", "function": {"name"}}.
  std::string mode = schemas.empty() ? "none" : "auto";
  std::string named;
  if (choice) {
    if (choice->is_string()) {
      mode = choice->get<std::string>();
      if (mode != "none" && mode != "auto" && mode != "required") {
        return BadRequest(fmt::format("'tool_choice' must be none, auto, required or a named "
                                      "function, got '{}'",
                                      mode),
                          "tool_choice");
      }
    } else if (choice->is_object()) {
      auto fn = choice->find("function");
      if (choice->value("type", Json()) != "function" || fn == choice->end() || !fn->is_object() ||
          !fn->contains("name") || !(*fn)["name"].is_string()) {
        return BadRequest(
            "'tool_choice' as an object must be {\"type\": \"function\", \"function\": {\"name\": "
            "...}}",
            "tool_choice");
      }
      named = (*fn)["name"].get<std::string>();
      mode = "named";
      if (!schemas.count(named)) {
        return BadRequest(
            fmt::format("'tool_choice' names function '{}', which is not in 'tools'", named),
            "tool_choice");
      }
    } else {
      return BadRequest("'tool_choice' must be a string or an object", "tool_choice");
    }
    if (mode != "none" && schemas.empty()) {
      return BadRequest("'tool_choice' needs 'tools'", "tool_choice");
    }
  }
  if (mode == "none") return std::nullopt;

  structured::ToolParserOptions opts;
  opts.parameters = schemas;
  opts.parallel = parallel_calls;
  if (mode == "auto") {
    if (!model.tool_format) {
      return BadRequest(
          "tool_choice 'auto' needs to know how this model writes tool calls, and its chat "
          "template shows no format Kinfer knows: start the server with --tool-call-parser "
          "(hermes, llama3_json, mistral, qwen3_coder or pythonic), or use tool_choice "
          "'required' or a named function",
          "tool_choice");
    }
    req->output.tools = *model.tool_format;
    req->output.tool_options = std::move(opts);
    // Mistral's [TOOL_CALLS] and Llama's <|python_tag|> are special tokens: keep their text.
    if (*model.tool_format == structured::ToolFormat::kMistral ||
        *model.tool_format == structured::ToolFormat::kLlama3Json) {
      req->params.skip_special_tokens = false;
    }
    return std::nullopt;
  }
  if (req->grammar) {
    return BadRequest(
        "tool_choice 'required' or a named function constrains the output itself: "
        "it cannot be combined with a response_format or structured output",
        "tool_choice");
  }
  // Constrained: the named function's arguments, or an array of calls of the listed functions.
  Json schema;
  if (mode == "named") {
    schema = schemas[named];
    req->output.tools = structured::ToolFormat::kNamed;
    opts.named = named;
    req->named_tool_choice = true;
  } else {
    Json any = Json::array();
    for (const std::string& n : order) {
      any.push_back({{"type", "object"},
                     {"properties", {{"name", {{"const", n}}}, {"parameters", schemas[n]}}},
                     {"required", {"name", "parameters"}},
                     {"additionalProperties", false}});
    }
    schema = {{"type", "array"}, {"minItems", 1}, {"items", {{"anyOf", any}}}};
    if (!parallel_calls) schema["maxItems"] = 1;
    req->output.tools = structured::ToolFormat::kRequiredJson;
  }
  req->output.tool_options = std::move(opts);
  Source s{"tool_choice", {GrammarKind::kJsonSchema, SchemaText(schema, JsonStyle())}};
  return Compile(model, s, req);
}

ParseError ParseReasoning(Fields& f, Endpoint endpoint, const ModelInfo& model,
                          GenerationRequest* req) {
  if (endpoint != Endpoint::kChat || !model.reasoning_format) return std::nullopt;
  if (const Json* kw = f.Get("chat_template_kwargs")) {
    if (kw->is_object() && kw->contains("enable_thinking") &&
        (*kw)["enable_thinking"].is_boolean() && !(*kw)["enable_thinking"].get<bool>()) {
      return std::nullopt;
    }
  }
  // JSON (a schema, json_object, tool calls) or a choice has no room for thinking: all of it is
  // the answer. A regex or grammar may write the think block itself, so it keeps the split.
  if (req->grammar && req->grammar->kind != GrammarKind::kRegex &&
      req->grammar->kind != GrammarKind::kLark && req->grammar->kind != GrammarKind::kGbnf) {
    return std::nullopt;
  }
  if (req->named_tool_choice || req->output.tools == structured::ToolFormat::kRequiredJson) {
    return std::nullopt;
  }
  req->output.reasoning = *model.reasoning_format;
  req->output.prompt_opens_reasoning =
      !req->prompt_texts.empty() && structured::PromptOpensReasoning(req->prompt_texts[0]);
  return std::nullopt;
}

}  // namespace kinfer::server
