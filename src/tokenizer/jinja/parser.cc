#include "tokenizer/jinja/parser.h"

#include <fmt/format.h>

#include <initializer_list>

#include "tokenizer/jinja/builtins.h"
#include "tokenizer/jinja/error.h"
#include "tokenizer/jinja/lexer.h"

namespace kinfer::tokenizer::jinja {
namespace {

// Templates are small; this bounds recursion on hostile input (e.g. "((((((...").
constexpr int kMaxNesting = 200;

using T = Token::Type;

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : toks_(std::move(tokens)) {}

  std::unique_ptr<Template> Run() {
    auto t = std::make_unique<Template>();
    std::string end;
    t->body = ParseBody({}, &end);
    return t;
  }

 private:
  struct DepthGuard {
    explicit DepthGuard(Parser* p) : p_(p) {
      if (++p_->depth_ > kMaxNesting) p_->Fail("template nested too deeply");
    }
    ~DepthGuard() { --p_->depth_; }
    Parser* p_;
  };

  const Token& Cur() const { return toks_[p_]; }
  const Token& Peek(size_t k = 1) const { return toks_[std::min(p_ + k, toks_.size() - 1)]; }
  void Next() {
    if (p_ + 1 < toks_.size()) ++p_;
  }
  bool IsOp(const char* op) const { return Cur().type == T::kOp && Cur().value == op; }
  bool IsName(const char* n) const { return Cur().type == T::kName && Cur().value == n; }

  [[noreturn]] void Fail(const std::string& msg) const {
    throw Error(msg, Cur().line, Cur().column);
  }
  std::string Describe(const Token& t) const {
    switch (t.type) {
      case T::kEof:
        return "end of template";
      case T::kBlockEnd:
        return "end of statement block";
      case T::kVarEnd:
        return "end of print statement";
      case T::kString:
        return "string";
      case T::kText:
        return "template data";
      default:
        return "'" + t.value + "'";
    }
  }
  void ExpectOp(const char* op) {
    if (!IsOp(op)) Fail(fmt::format("expected '{}', got {}", op, Describe(Cur())));
    Next();
  }
  std::string ExpectName() {
    if (Cur().type != T::kName) Fail(fmt::format("expected a name, got {}", Describe(Cur())));
    std::string n = Cur().value;
    Next();
    return n;
  }
  void ExpectBlockEnd() {
    if (Cur().type != T::kBlockEnd) {
      Fail(fmt::format("expected end of statement block, got {}", Describe(Cur())));
    }
    Next();
  }

  std::unique_ptr<Expr> Node(Expr::Kind kind, const Token& at) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->line = at.line;
    e->column = at.column;
    return e;
  }
  std::unique_ptr<Stmt> Statement(Stmt::Kind kind, const Token& at) {
    auto s = std::make_unique<Stmt>();
    s->kind = kind;
    s->line = at.line;
    s->column = at.column;
    return s;
  }

  // Statements until one of `ends` (a block tag whose name is in the list, left unconsumed
  // except for the name, which goes to *found) or the end of the template.
  Body ParseBody(std::initializer_list<std::string_view> ends, std::string* found) {
    DepthGuard guard(this);
    Body body;
    while (true) {
      const Token& t = Cur();
      if (t.type == T::kEof) {
        if (ends.size() != 0) {
          Fail(fmt::format("unexpected end of template, expected '{}'", *(ends.end() - 1)));
        }
        return body;
      }
      if (t.type == T::kText) {
        auto s = Statement(Stmt::Kind::kText, t);
        s->text = t.value;
        body.push_back(std::move(s));
        Next();
        continue;
      }
      if (t.type == T::kVarBegin) {
        auto s = Statement(Stmt::Kind::kOutput, t);
        Next();
        s->expr = ParseTuple(true);
        if (Cur().type != T::kVarEnd) {
          Fail(fmt::format("expected end of print statement, got {}", Describe(Cur())));
        }
        Next();
        body.push_back(std::move(s));
        continue;
      }
      if (t.type != T::kBlockBegin) Fail(fmt::format("unexpected {}", Describe(t)));
      Next();
      if (Cur().type != T::kName) Fail("expected a statement name");
      const std::string name = Cur().value;
      for (auto e : ends) {
        if (name == e) {
          *found = name;
          Next();
          return body;
        }
      }
      body.push_back(ParseStatement(t));
    }
  }

  std::unique_ptr<Stmt> ParseStatement(const Token& at) {
    const std::string name = Cur().value;
    Next();
    if (name == "if") return ParseIf(at);
    if (name == "for") return ParseFor(at);
    if (name == "set") return ParseSet(at);
    if (name == "macro") return ParseMacro(at);
    if (name == "filter") return ParseFilterBlock(at);
    if (name == "break" || name == "continue") {
      if (loop_depth_ == 0) {
        throw Error(fmt::format("'{}' outside of a loop", name), at.line, at.column);
      }
      ExpectBlockEnd();
      return Statement(name == "break" ? Stmt::Kind::kBreak : Stmt::Kind::kContinue, at);
    }
    if (name == "generation") {
      ExpectBlockEnd();
      auto s = Statement(Stmt::Kind::kPassthrough, at);
      std::string end;
      s->body = ParseBody({"endgeneration"}, &end);
      ExpectBlockEnd();
      return s;
    }
    throw Error(fmt::format("unsupported statement '{}'", name), at.line, at.column);
  }

  std::unique_ptr<Stmt> ParseIf(const Token& at) {
    auto s = Statement(Stmt::Kind::kIf, at);
    std::unique_ptr<Expr> cond = ParseTuple(true);
    ExpectBlockEnd();
    while (true) {
      std::string end;
      Body body = ParseBody({"elif", "else", "endif"}, &end);
      s->branches.emplace_back(std::move(cond), std::move(body));
      if (end == "elif") {
        cond = ParseTuple(true);
        ExpectBlockEnd();
        continue;
      }
      ExpectBlockEnd();
      if (end == "else") {
        Body else_body = ParseBody({"endif"}, &end);
        s->branches.emplace_back(nullptr, std::move(else_body));
        ExpectBlockEnd();
      }
      return s;
    }
  }

  std::unique_ptr<Stmt> ParseFor(const Token& at) {
    auto s = Statement(Stmt::Kind::kFor, at);
    const bool paren = IsOp("(");
    if (paren) Next();
    s->targets.push_back(ExpectName());
    while (IsOp(",")) {
      Next();
      if (IsName("in") || IsOp(")")) break;
      s->targets.push_back(ExpectName());
    }
    if (paren) ExpectOp(")");
    if (!IsName("in")) Fail(fmt::format("expected 'in', got {}", Describe(Cur())));
    Next();
    s->expr = ParseTuple(false);
    if (IsName("if")) {
      Next();
      s->filter = ParseExpression(true);
    }
    if (IsName("recursive")) {
      Next();
      s->recursive = true;
    }
    ExpectBlockEnd();
    std::string end;
    ++loop_depth_;
    s->body = ParseBody({"else", "endfor"}, &end);
    --loop_depth_;
    ExpectBlockEnd();
    if (end == "else") {
      s->else_body = ParseBody({"endfor"}, &end);
      ExpectBlockEnd();
    }
    return s;
  }

  std::unique_ptr<Stmt> ParseSet(const Token& at) {
    const std::string first = ExpectName();
    if (IsOp(".")) {
      Next();
      auto s = Statement(Stmt::Kind::kSet, at);
      s->targets.push_back(first);
      s->attr = ExpectName();
      ExpectOp("=");
      s->expr = ParseTuple(true);
      ExpectBlockEnd();
      return s;
    }
    std::vector<std::string> targets{first};
    while (IsOp(",")) {
      Next();
      targets.push_back(ExpectName());
    }
    if (IsOp("=")) {
      Next();
      auto s = Statement(Stmt::Kind::kSet, at);
      s->targets = std::move(targets);
      s->expr = ParseTuple(true);
      ExpectBlockEnd();
      return s;
    }
    if (targets.size() != 1) Fail("a block set takes one name");
    auto s = Statement(Stmt::Kind::kSetBlock, at);
    s->targets = std::move(targets);
    while (IsOp("|")) s->filters.push_back(ParseFilter(nullptr));
    ExpectBlockEnd();
    std::string end;
    s->body = ParseBody({"endset"}, &end);
    ExpectBlockEnd();
    return s;
  }

  std::unique_ptr<Stmt> ParseMacro(const Token& at) {
    auto s = Statement(Stmt::Kind::kMacro, at);
    s->name = ExpectName();
    ExpectOp("(");
    while (!IsOp(")")) {
      if (!s->params.empty()) ExpectOp(",");
      if (IsOp(")")) break;
      s->params.push_back(ExpectName());
      if (IsOp("=")) {
        Next();
        s->defaults.push_back(ParseExpression(true));
      } else {
        s->defaults.push_back(nullptr);
      }
    }
    Next();
    ExpectBlockEnd();
    std::string end;
    const int saved = loop_depth_;
    loop_depth_ = 0;
    s->body = ParseBody({"endmacro"}, &end);
    loop_depth_ = saved;
    if (Cur().type == T::kName) Next();  // {% endmacro name %}
    ExpectBlockEnd();
    return s;
  }

  std::unique_ptr<Stmt> ParseFilterBlock(const Token& at) {
    auto s = Statement(Stmt::Kind::kFilterBlock, at);
    s->filters.push_back(ParseFilterName(nullptr, Cur()));
    while (IsOp("|")) s->filters.push_back(ParseFilter(nullptr));
    ExpectBlockEnd();
    std::string end;
    s->body = ParseBody({"endfilter"}, &end);
    ExpectBlockEnd();
    return s;
  }

  // Expressions, lowest precedence first, as jinja2's parser.

  std::unique_ptr<Expr> ParseTuple(bool with_cond) {
    DepthGuard guard(this);
    const Token& at = Cur();
    auto first = ParseExpression(with_cond);
    if (!IsOp(",")) return first;
    auto t = Node(Expr::Kind::kTuple, at);
    t->children.push_back(std::move(first));
    while (IsOp(",")) {
      Next();
      if (Cur().type == T::kVarEnd || Cur().type == T::kBlockEnd || IsOp(")") || IsOp("=")) {
        break;
      }
      t->children.push_back(ParseExpression(with_cond));
    }
    return t;
  }

  std::unique_ptr<Expr> ParseExpression(bool with_cond) {
    DepthGuard guard(this);
    return with_cond ? ParseCondExpr() : ParseOr();
  }

  std::unique_ptr<Expr> ParseCondExpr() {
    const Token& at = Cur();
    auto expr = ParseOr();
    while (IsName("if")) {
      Next();
      auto c = Node(Expr::Kind::kCond, at);
      auto cond = ParseOr();
      std::unique_ptr<Expr> otherwise;
      if (IsName("else")) {
        Next();
        otherwise = ParseCondExpr();
      }
      c->children.push_back(std::move(expr));
      c->children.push_back(std::move(cond));
      c->children.push_back(std::move(otherwise));
      expr = std::move(c);
    }
    return expr;
  }

  std::unique_ptr<Expr> Binary(Expr::Kind kind, const Token& at, std::unique_ptr<Expr> l,
                               std::unique_ptr<Expr> r, std::string op = "") {
    auto e = Node(kind, at);
    e->name = std::move(op);
    e->children.push_back(std::move(l));
    e->children.push_back(std::move(r));
    return e;
  }

  std::unique_ptr<Expr> ParseOr() {
    const Token& at = Cur();
    auto left = ParseAnd();
    while (IsName("or")) {
      Next();
      left = Binary(Expr::Kind::kOr, at, std::move(left), ParseAnd());
    }
    return left;
  }

  std::unique_ptr<Expr> ParseAnd() {
    const Token& at = Cur();
    auto left = ParseNot();
    while (IsName("and")) {
      Next();
      left = Binary(Expr::Kind::kAnd, at, std::move(left), ParseNot());
    }
    return left;
  }

  std::unique_ptr<Expr> ParseNot() {
    DepthGuard guard(this);
    if (IsName("not")) {
      const Token& at = Cur();
      Next();
      auto e = Node(Expr::Kind::kNot, at);
      e->children.push_back(ParseNot());
      return e;
    }
    return ParseCompare();
  }

  std::unique_ptr<Expr> ParseCompare() {
    const Token& at = Cur();
    auto first = ParseMath1();
    std::unique_ptr<Expr> cmp;
    while (true) {
      std::string op;
      if (Cur().type == T::kOp &&
          (Cur().value == "==" || Cur().value == "!=" || Cur().value == "<" ||
           Cur().value == "<=" || Cur().value == ">" || Cur().value == ">=")) {
        op = Cur().value;
        Next();
      } else if (IsName("in")) {
        op = "in";
        Next();
      } else if (IsName("not") && Peek().type == T::kName && Peek().value == "in") {
        op = "not in";
        Next();
        Next();
      } else {
        break;
      }
      if (!cmp) {
        cmp = Node(Expr::Kind::kCompare, at);
        cmp->children.push_back(std::move(first));
      }
      cmp->ops.push_back(op);
      cmp->children.push_back(ParseMath1());
    }
    return cmp ? std::move(cmp) : std::move(first);
  }

  std::unique_ptr<Expr> ParseMath1() {
    const Token& at = Cur();
    auto left = ParseConcat();
    while (IsOp("+") || IsOp("-")) {
      std::string op = Cur().value;
      Next();
      left = Binary(Expr::Kind::kBinary, at, std::move(left), ParseConcat(), op);
    }
    return left;
  }

  std::unique_ptr<Expr> ParseConcat() {
    const Token& at = Cur();
    auto first = ParseMath2();
    if (!IsOp("~")) return first;
    auto e = Node(Expr::Kind::kConcat, at);
    e->children.push_back(std::move(first));
    while (IsOp("~")) {
      Next();
      e->children.push_back(ParseMath2());
    }
    return e;
  }

  std::unique_ptr<Expr> ParseMath2() {
    const Token& at = Cur();
    auto left = ParsePow();
    while (IsOp("*") || IsOp("/") || IsOp("//") || IsOp("%")) {
      std::string op = Cur().value;
      Next();
      left = Binary(Expr::Kind::kBinary, at, std::move(left), ParsePow(), op);
    }
    return left;
  }

  std::unique_ptr<Expr> ParsePow() {
    const Token& at = Cur();
    auto left = ParseUnary(true);
    while (IsOp("**")) {
      Next();
      left = Binary(Expr::Kind::kBinary, at, std::move(left), ParseUnary(true), "**");
    }
    return left;
  }

  std::unique_ptr<Expr> ParseUnary(bool with_filter) {
    DepthGuard guard(this);
    const Token& at = Cur();
    std::unique_ptr<Expr> node;
    if (IsOp("-") || IsOp("+")) {
      const bool neg = IsOp("-");
      Next();
      node = Node(neg ? Expr::Kind::kNeg : Expr::Kind::kPos, at);
      node->children.push_back(ParseUnary(false));
    } else {
      node = ParsePrimary();
    }
    node = ParsePostfix(std::move(node));
    if (with_filter) node = ParseFilterExpr(std::move(node));
    return node;
  }

  std::unique_ptr<Expr> ParsePrimary() {
    DepthGuard guard(this);
    const Token& t = Cur();
    switch (t.type) {
      case T::kName: {
        Next();
        if (t.value == "true" || t.value == "True" || t.value == "false" || t.value == "False") {
          auto e = Node(Expr::Kind::kLiteral, t);
          e->literal = Value(t.value == "true" || t.value == "True");
          return e;
        }
        if (t.value == "none" || t.value == "None") {
          auto e = Node(Expr::Kind::kLiteral, t);
          e->literal = Value::None();
          return e;
        }
        auto e = Node(Expr::Kind::kName, t);
        e->name = t.value;
        return e;
      }
      case T::kString: {
        std::string s = t.value;
        Next();
        while (Cur().type == T::kString) {
          s += Cur().value;
          Next();
        }
        auto e = Node(Expr::Kind::kLiteral, t);
        e->literal = Value(std::move(s));
        return e;
      }
      case T::kInt: {
        auto e = Node(Expr::Kind::kLiteral, t);
        e->literal = Value(t.int_value);
        Next();
        return e;
      }
      case T::kFloat: {
        auto e = Node(Expr::Kind::kLiteral, t);
        e->literal = Value(t.float_value);
        Next();
        return e;
      }
      case T::kOp:
        if (t.value == "(") {
          Next();
          if (IsOp(")")) {
            Next();
            return Node(Expr::Kind::kTuple, t);
          }
          auto first = ParseExpression(true);
          if (IsOp(")")) {
            Next();
            return first;
          }
          auto tuple = Node(Expr::Kind::kTuple, t);
          tuple->children.push_back(std::move(first));
          while (IsOp(",")) {
            Next();
            if (IsOp(")")) break;
            tuple->children.push_back(ParseExpression(true));
          }
          ExpectOp(")");
          return tuple;
        }
        if (t.value == "[") {
          Next();
          auto list = Node(Expr::Kind::kList, t);
          while (!IsOp("]")) {
            if (!list->children.empty()) ExpectOp(",");
            if (IsOp("]")) break;
            list->children.push_back(ParseExpression(true));
          }
          Next();
          return list;
        }
        if (t.value == "{") {
          Next();
          auto dict = Node(Expr::Kind::kDict, t);
          while (!IsOp("}")) {
            if (!dict->children.empty()) ExpectOp(",");
            if (IsOp("}")) break;
            dict->children.push_back(ParseExpression(true));
            ExpectOp(":");
            dict->children.push_back(ParseExpression(true));
          }
          Next();
          return dict;
        }
        break;
      default:
        break;
    }
    Fail(fmt::format("unexpected {}", Describe(t)));
  }

  std::unique_ptr<Expr> ParsePostfix(std::unique_ptr<Expr> node) {
    while (true) {
      // Errors in a.b, a[b] and a(b) point at the start of a.
      Token at = Cur();
      at.line = node->line;
      at.column = node->column;
      if (IsOp(".")) {
        Next();
        if (Cur().type == T::kName) {
          auto e = Node(Expr::Kind::kGetAttr, at);
          e->name = Cur().value;
          Next();
          e->children.push_back(std::move(node));
          node = std::move(e);
        } else if (Cur().type == T::kInt) {
          auto e = Node(Expr::Kind::kGetItem, at);
          auto idx = Node(Expr::Kind::kLiteral, Cur());
          idx->literal = Value(Cur().int_value);
          Next();
          e->children.push_back(std::move(node));
          e->children.push_back(std::move(idx));
          node = std::move(e);
        } else {
          Fail(fmt::format("expected an attribute name, got {}", Describe(Cur())));
        }
      } else if (IsOp("[")) {
        Next();
        node = ParseSubscript(std::move(node), at);
      } else if (IsOp("(")) {
        node = ParseCall(std::move(node));
      } else {
        return node;
      }
    }
  }

  std::unique_ptr<Expr> ParseSubscript(std::unique_ptr<Expr> obj, const Token& at) {
    std::unique_ptr<Expr> start;
    if (!IsOp(":")) {
      start = ParseExpression(true);
      if (IsOp("]")) {
        Next();
        auto e = Node(Expr::Kind::kGetItem, at);
        e->children.push_back(std::move(obj));
        e->children.push_back(std::move(start));
        return e;
      }
    }
    ExpectOp(":");
    auto e = Node(Expr::Kind::kSlice, at);
    e->children.push_back(std::move(obj));
    e->children.push_back(std::move(start));
    e->children.push_back(IsOp("]") || IsOp(":") ? nullptr : ParseExpression(true));
    if (IsOp(":")) {
      Next();
      e->children.push_back(IsOp("]") ? nullptr : ParseExpression(true));
    } else {
      e->children.push_back(nullptr);
    }
    ExpectOp("]");
    return e;
  }

  // Arguments in parentheses into e->children (after any already there) and e->kwargs.
  void ParseArgs(Expr* e) {
    ExpectOp("(");
    bool first = true;
    while (!IsOp(")")) {
      if (!first) ExpectOp(",");
      first = false;
      if (IsOp(")")) break;
      if (IsOp("*") || IsOp("**")) Fail("*args and **kwargs in calls are not supported");
      if (Cur().type == T::kName && Peek().type == T::kOp && Peek().value == "=") {
        std::string key = Cur().value;
        Next();
        Next();
        e->kwargs.emplace_back(std::move(key), ParseExpression(true));
      } else {
        if (!e->kwargs.empty()) Fail("positional argument after keyword argument");
        e->children.push_back(ParseExpression(true));
      }
    }
    Next();
  }

  std::unique_ptr<Expr> ParseCall(std::unique_ptr<Expr> callee) {
    auto e = Node(Expr::Kind::kCall, Cur());
    e->line = callee->line;
    e->column = callee->column;
    e->children.push_back(std::move(callee));
    ParseArgs(e.get());
    return e;
  }

  std::unique_ptr<Expr> ParseFilterExpr(std::unique_ptr<Expr> node) {
    while (true) {
      if (IsOp("|")) {
        node = ParseFilter(std::move(node));
      } else if (IsName("is")) {
        node = ParseTest(std::move(node));
      } else if (IsOp("(")) {
        node = ParseCall(std::move(node));
      } else {
        return node;
      }
    }
  }

  std::string DottedName() {
    std::string name = ExpectName();
    while (IsOp(".") && Peek().type == T::kName) {
      Next();
      name += "." + Cur().value;
      Next();
    }
    return name;
  }

  std::unique_ptr<Expr> ParseFilter(std::unique_ptr<Expr> input) {
    const Token& at = Cur();
    ExpectOp("|");
    return ParseFilterName(std::move(input), at);
  }

  std::unique_ptr<Expr> ParseFilterName(std::unique_ptr<Expr> input, const Token& at) {
    auto e = Node(Expr::Kind::kFilter, at);
    const Token& name_tok = Cur();
    e->name = DottedName();
    if (!IsFilter(e->name)) {
      throw Error(fmt::format("no filter named '{}'", e->name), name_tok.line, name_tok.column);
    }
    e->children.push_back(std::move(input));
    if (IsOp("(")) ParseArgs(e.get());
    return e;
  }

  std::unique_ptr<Expr> ParseTest(std::unique_ptr<Expr> input) {
    auto e = Node(Expr::Kind::kTest, Cur());
    Next();  // is
    if (IsName("not")) {
      e->negated = true;
      Next();
    }
    const Token& name_tok = Cur();
    e->name = DottedName();
    if (!IsTest(e->name)) {
      throw Error(fmt::format("no test named '{}'", e->name), name_tok.line, name_tok.column);
    }
    e->children.push_back(std::move(input));
    const Token& c = Cur();
    if (IsOp("(")) {
      ParseArgs(e.get());
    } else if ((c.type == T::kName || c.type == T::kString || c.type == T::kInt ||
                c.type == T::kFloat || IsOp("(") || IsOp("[") || IsOp("{")) &&
               !(IsName("else") || IsName("or") || IsName("and"))) {
      if (IsName("is")) Fail("you cannot chain multiple tests with is");
      e->children.push_back(ParsePostfix(ParsePrimary()));
    }
    return e;
  }

  std::vector<Token> toks_;
  size_t p_ = 0;
  int depth_ = 0;
  int loop_depth_ = 0;
};

}  // namespace

std::unique_ptr<Template> Parse(std::string_view source) { return Parser(Lex(source)).Run(); }

}  // namespace kinfer::tokenizer::jinja
