// Jinja parser: tokens to a syntax tree, with jinja2's operator precedence and statements (if,
// for with loop filters and else, set and block set, macro, filter blocks, break/continue,
// raw, generation). Unknown filters and tests are errors here, as jinja2 reports them when it
// compiles a template.
#pragma once

#include <memory>
#include <string_view>

#include "tokenizer/jinja/ast.h"

namespace kinfer::tokenizer::jinja {

// Throws Error with the line and column of the offending token.
std::unique_ptr<Template> Parse(std::string_view source);

}  // namespace kinfer::tokenizer::jinja
