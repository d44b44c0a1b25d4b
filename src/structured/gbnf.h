// GBNF (llama.cpp's grammar format, the `grammar` field of its server) converted to the Lark
// dialect llguidance compiles. Rules become Lark rules (names lower-cased, '-' to '_'), string
// literals JSON strings, character classes and `.` regexes, repetitions Lark's {m,n}; `root` is
// the start. Token references (<[123]>, <|name|>) pass through.
//
//   auto lark = GbnfToLark(R"(root ::= "yes" | "no")");  // start: root\nroot: "yes" | "no"
#pragma once

#include <string>
#include <string_view>

#include "core/status.h"

namespace kinfer::structured {

// Errors name the line and column and what was expected ("GBNF line 3, column 12: expected
// '::='"). Never crashes or loops on any input; nesting is bounded.
Result<std::string> GbnfToLark(std::string_view gbnf);

}  // namespace kinfer::structured
