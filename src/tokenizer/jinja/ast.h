// The syntax tree of a parsed template. Every node keeps the line and column of its first token
// so that runtime errors point into the template.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tokenizer/jinja/value.h"

namespace kinfer::tokenizer::jinja {

struct Expr {
  enum class Kind {
    kLiteral,  // literal
    kName,     // name
    kList,     // children: items
    kTuple,    // children: items
    kDict,     // children: key0, value0, key1, value1, ...
    kGetAttr,  // children[0].name
    kGetItem,  // children[0][children[1]]
    kSlice,    // children[0][children[1]:children[2]:children[3]], absent parts null
    kCall,     // children[0](children[1..], kwargs)
    kFilter,   // children[0] | name(children[1..], kwargs); children[0] null in filter blocks
    kTest,     // children[0] is [not] name(children[1..])
    kNeg,      // -children[0]
    kPos,      // +children[0]
    kBinary,   // children[0] name children[1]: + - * / // % **
    kConcat,   // children joined with ~
    kCompare,  // children[0] ops[0] children[1] ops[1] children[2] ...
    kAnd,
    kOr,
    kNot,
    kCond,  // children[0] if children[1] else children[2] (null: undefined)
  };
  Kind kind;
  int line = 0;
  int column = 0;
  Value literal;
  std::string name;
  bool negated = false;
  std::vector<std::unique_ptr<Expr>> children;
  std::vector<std::pair<std::string, std::unique_ptr<Expr>>> kwargs;
  std::vector<std::string> ops;
};

struct Stmt;
using Body = std::vector<std::unique_ptr<Stmt>>;

struct Stmt {
  enum class Kind {
    kText,         // text
    kOutput,       // {{ expr }}
    kIf,           // branches: (condition, body); a null condition is the else
    kFor,          // for targets in expr [if filter] ... [else else_body]
    kSet,          // set targets = expr, or set targets[0].attr = expr
    kSetBlock,     // set targets[0] [| filters] %}body{% endset
    kMacro,        // macro name(params = defaults) body
    kFilterBlock,  // filter filters %}body{% endfilter
    kBreak,
    kContinue,
    kPassthrough,  // {% generation %}: renders its body
  };
  Kind kind;
  int line = 0;
  int column = 0;
  std::string text;
  std::unique_ptr<Expr> expr;
  std::vector<std::pair<std::unique_ptr<Expr>, Body>> branches;
  std::vector<std::string> targets;
  std::string attr;
  std::unique_ptr<Expr> filter;
  std::vector<std::unique_ptr<Expr>> filters;
  Body body;
  Body else_body;
  bool recursive = false;
  std::string name;
  std::vector<std::string> params;
  std::vector<std::unique_ptr<Expr>> defaults;  // per param, null when none
};

struct Template {
  Body body;
};

}  // namespace kinfer::tokenizer::jinja
