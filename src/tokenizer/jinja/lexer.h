// Jinja lexer: template text, {{ expressions }}, {% statements %} and {# comments #}, with
// whitespace control as Hugging Face configures jinja2 (trim_blocks, lstrip_blocks, "-" and "+"
// markers, one trailing newline dropped) and line/column on every token.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace kinfer::tokenizer::jinja {

struct Token {
  enum class Type {
    kText,        // template data between tags
    kVarBegin,    // {{
    kVarEnd,      // }}
    kBlockBegin,  // {%
    kBlockEnd,    // %}
    kName,
    kString,
    kInt,
    kFloat,
    kOp,  // operators and punctuation: + - * / // % ** ~ ( ) [ ] { } , . : | = == != < <= > >=
    kEof,
  };
  Type type;
  std::string value;  // text, name, string contents (unescaped) or operator
  int64_t int_value = 0;
  double float_value = 0;
  int line = 1;
  int column = 1;
};

// Throws Error (with the position) on an unterminated tag, string or comment.
std::vector<Token> Lex(std::string_view source);

}  // namespace kinfer::tokenizer::jinja
