#include "tokenizer/jinja/interpreter.h"

#include <fmt/format.h>

#include <algorithm>

#include "tokenizer/jinja/builtins.h"
#include "tokenizer/jinja/error.h"

namespace kinfer::tokenizer::jinja {
namespace {

thread_local Interpreter* g_current = nullptr;

// Fills in the node's position on an error thrown below it that has none yet.
template <typename Node, typename Fn>
auto AtNode(const Node& n, Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (Error& e) {
    if (!e.has_location() && !e.raised()) e.SetLocation(n.line, n.column);
    throw;
  }
}

void Unpack(const std::vector<std::string>& targets, const Value& v, Scope& scope) {
  if (targets.size() == 1) {
    scope.Set(targets[0], v);
    return;
  }
  ValueList items = Iterate(v.Defined());
  if (items.size() != targets.size()) {
    throw Error(fmt::format("cannot unpack {} values into {} names", items.size(), targets.size()));
  }
  for (size_t i = 0; i < targets.size(); ++i) scope.Set(targets[i], items[i]);
}

}  // namespace

const Value* Scope::Find(const std::string& name) const {
  for (const Scope* s = this; s != nullptr; s = s->parent_.get()) {
    auto it = s->vars_.find(name);
    if (it != s->vars_.end()) return &it->second;
  }
  return nullptr;
}

Interpreter::Interpreter(const Template& tmpl, Limits limits,
                         std::chrono::system_clock::time_point now)
    : tmpl_(tmpl), limits_(limits), now_(now) {}

Interpreter::~Interpreter() {
  // A namespace may hold itself (set ns.x = ns): empty them all so nothing leaks.
  for (auto& ns : namespaces_) *ns = Dict();
}

std::string Interpreter::Render(const std::vector<std::pair<std::string, Value>>& variables) {
  // Builtins sit under the caller's variables: a variable named "range" wins.
  auto builtins = std::make_shared<Scope>();
  AddGlobals(*builtins);
  auto top = std::make_shared<Scope>(builtins);
  for (const auto& [name, value] : variables) top->Set(name, value);
  std::string out;
  out_ = &out;
  Interpreter* const outer = g_current;
  g_current = this;
  try {
    ExecBody(tmpl_.body, top);
  } catch (...) {
    out_ = nullptr;
    g_current = outer;
    throw;
  }
  out_ = nullptr;
  g_current = outer;
  return out;
}

void ChargeWork(size_t units) {
  if (g_current != nullptr) g_current->Charge(units);
}

void Interpreter::Charge(size_t units) {
  steps_ += static_cast<int64_t>(std::min<size_t>(units, size_t{1} << 40));
  if (steps_ > limits_.max_steps) {
    throw Error(fmt::format("template exceeded its work limit ({} steps)", limits_.max_steps));
  }
}

void Interpreter::CheckSize(size_t bytes) const {
  if (bytes > limits_.max_output_bytes) {
    throw Error(fmt::format("template output exceeded {} bytes", limits_.max_output_bytes));
  }
}

void Interpreter::Append(std::string_view s) {
  Charge(s.size() >> 6);
  CheckSize(out_->size() + s.size());
  out_->append(s);
}

Value Interpreter::NewNamespace(std::shared_ptr<Dict> d) {
  namespaces_.push_back(d);
  return Value::MakeNamespace(std::move(d));
}

Value Interpreter::Call(const Value& fn, const CallArgs& args) {
  if (fn.is_undefined()) fn.Defined();
  if (!fn.is_function()) throw Error(fmt::format("'{}' object is not callable", fn.TypeName()));
  return fn.function().fn(*this, args);
}

Interpreter::Flow Interpreter::ExecBody(const Body& body, const std::shared_ptr<Scope>& scope) {
  for (const auto& s : body) {
    const Flow f = Exec(*s, scope);
    if (f != Flow::kNormal) return f;
  }
  return Flow::kNormal;
}

std::string Interpreter::Capture(const Body& body, const std::shared_ptr<Scope>& scope) {
  std::string buf;
  std::string* saved = out_;
  out_ = &buf;
  try {
    ExecBody(body, scope);
  } catch (...) {
    out_ = saved;
    throw;
  }
  out_ = saved;
  return buf;
}

Value Interpreter::ApplyFilters(const std::vector<std::unique_ptr<Expr>>& filters, Value v,
                                const std::shared_ptr<Scope>& scope) {
  for (const auto& f : filters) {
    v = AtNode(*f, [&] { return ApplyFilter(*this, f->name, v, EvalArgs(*f, 1, scope)); });
  }
  return v;
}

Interpreter::Flow Interpreter::Exec(const Stmt& s, const std::shared_ptr<Scope>& scope) {
  return AtNode(s, [&]() -> Flow {
    Step();
    switch (s.kind) {
      case Stmt::Kind::kText:
        Append(s.text);
        return Flow::kNormal;
      case Stmt::Kind::kOutput: {
        const Value v = Eval(*s.expr, scope);
        if (v.is_string()) {
          Append(v.s());
        } else {
          Append(v.Str());
        }
        return Flow::kNormal;
      }
      case Stmt::Kind::kIf:
        for (const auto& [cond, body] : s.branches) {
          if (cond == nullptr || Eval(*cond, scope).Truthy()) return ExecBody(body, scope);
        }
        return Flow::kNormal;
      case Stmt::Kind::kFor:
        return ExecFor(s, scope);
      case Stmt::Kind::kSet:
        ExecSet(s, scope);
        return Flow::kNormal;
      case Stmt::Kind::kSetBlock: {
        Value v(Capture(s.body, scope));
        scope->Set(s.targets[0], ApplyFilters(s.filters, std::move(v), scope));
        return Flow::kNormal;
      }
      case Stmt::Kind::kMacro:
        scope->Set(s.name, MakeMacro(s, scope));
        return Flow::kNormal;
      case Stmt::Kind::kFilterBlock: {
        Value v = ApplyFilters(s.filters, Value(Capture(s.body, scope)), scope);
        Append(v.Str());
        return Flow::kNormal;
      }
      case Stmt::Kind::kBreak:
        return Flow::kBreak;
      case Stmt::Kind::kContinue:
        return Flow::kContinue;
      case Stmt::Kind::kPassthrough:
        return ExecBody(s.body, scope);
    }
    return Flow::kNormal;
  });
}

Interpreter::Flow Interpreter::ExecFor(const Stmt& s, const std::shared_ptr<Scope>& scope) {
  if (s.recursive) throw Error("recursive for loops are not supported");
  const Value iterable = Eval(*s.expr, scope);
  if (iterable.is_none() || iterable.is_number() || iterable.is_function()) {
    throw Error(fmt::format("'{}' object is not iterable", iterable.TypeName()));
  }
  ValueList items = Iterate(iterable);
  if (s.filter) {
    ValueList kept;
    for (auto& item : items) {
      Step();
      auto probe = std::make_shared<Scope>(scope);
      Unpack(s.targets, item, *probe);
      if (Eval(*s.filter, probe).Truthy()) kept.push_back(std::move(item));
    }
    items = std::move(kept);
  }
  const int64_t n = static_cast<int64_t>(items.size());
  for (int64_t i = 0; i < n; ++i) {
    Step();
    auto iter = std::make_shared<Scope>(scope);
    Unpack(s.targets, items[i], *iter);
    auto loop = std::make_shared<Dict>();
    loop->Set(Value("index"), Value(i + 1));
    loop->Set(Value("index0"), Value(i));
    loop->Set(Value("revindex"), Value(n - i));
    loop->Set(Value("revindex0"), Value(n - i - 1));
    loop->Set(Value("first"), Value(i == 0));
    loop->Set(Value("last"), Value(i == n - 1));
    loop->Set(Value("length"), Value(n));
    loop->Set(Value("depth"), Value(1));
    loop->Set(Value("depth0"), Value(0));
    loop->Set(Value("previtem"),
              i > 0 ? items[i - 1] : Value::Undefined("there is no previous item"));
    loop->Set(Value("nextitem"),
              i + 1 < n ? items[i + 1] : Value::Undefined("there is no next item"));
    loop->Set(Value("cycle"),
              Value::MakeFunction("cycle", [i](Interpreter&, const CallArgs& a) -> Value {
                if (a.positional.empty()) throw Error("no items for cycling given");
                return a.positional[static_cast<size_t>(i) % a.positional.size()];
              }));
    iter->Set("loop", Value::MakeDict(std::move(loop)));
    const Flow f = ExecBody(s.body, iter);
    if (f == Flow::kBreak) break;
  }
  if (n == 0 && !s.else_body.empty()) {
    auto iter = std::make_shared<Scope>(scope);
    ExecBody(s.else_body, iter);
  }
  return Flow::kNormal;
}

void Interpreter::ExecSet(const Stmt& s, const std::shared_ptr<Scope>& scope) {
  Value v = Eval(*s.expr, scope);
  if (!s.attr.empty()) {
    const Value* target = scope->Find(s.targets[0]);
    if (target == nullptr || target->is_undefined()) {
      throw Error(fmt::format("'{}' is undefined", s.targets[0]));
    }
    if (!target->is_namespace()) {
      throw Error("cannot assign attribute on non-namespace object");
    }
    target->mutable_dict().Set(Value(s.attr), std::move(v));
    return;
  }
  Unpack(s.targets, v, *scope);
}

Value Interpreter::MakeMacro(const Stmt& s, const std::shared_ptr<Scope>& scope) {
  // The defining scope is held weakly: it holds the macro, and a strong reference back would
  // be a cycle that never frees.
  std::weak_ptr<Scope> defining = scope;
  const Stmt* m = &s;
  return Value::MakeFunction(s.name, [m, defining](Interpreter& in, const CallArgs& args) {
    auto parent = defining.lock();
    if (!parent) throw Error(fmt::format("macro '{}' called after its scope ended", m->name));
    if (++in.call_depth_ > in.limits_.max_call_depth) {
      --in.call_depth_;
      throw Error(fmt::format("macro calls nested deeper than {}", in.limits_.max_call_depth));
    }
    struct Leave {
      int* depth;
      ~Leave() { --*depth; }
    } leave{&in.call_depth_};
    auto local = std::make_shared<Scope>(parent);
    ValueList varargs;
    auto kwargs = std::make_shared<Dict>();
    for (size_t i = 0; i < m->params.size(); ++i) {
      const std::string& p = m->params[i];
      if (i < args.positional.size()) {
        local->Set(p, args.positional[i]);
      } else if (const Value* kw = args.Keyword(p)) {
        local->Set(p, *kw);
      } else if (m->defaults[i]) {
        local->Set(p, in.Eval(*m->defaults[i], local));
      } else {
        local->Set(p, Value::Undefined(fmt::format("'{}' is undefined", p)));
      }
    }
    for (size_t i = m->params.size(); i < args.positional.size(); ++i) {
      varargs.push_back(args.positional[i]);
    }
    for (const auto& [k, v] : args.keyword) {
      if (std::find(m->params.begin(), m->params.end(), k) == m->params.end()) {
        kwargs->Set(Value(k), v);
      }
    }
    local->Set("varargs", Value::List(std::move(varargs), /*tuple=*/true));
    local->Set("kwargs", Value::MakeDict(std::move(kwargs)));
    return Value(in.Capture(m->body, local));
  });
}

CallArgs Interpreter::EvalArgs(const Expr& e, size_t first, const std::shared_ptr<Scope>& scope) {
  CallArgs args;
  for (size_t i = first; i < e.children.size(); ++i) {
    args.positional.push_back(Eval(*e.children[i], scope));
  }
  for (const auto& [k, v] : e.kwargs) args.keyword.emplace_back(k, Eval(*v, scope));
  return args;
}

Value Interpreter::Eval(const Expr& e, const std::shared_ptr<Scope>& scope) {
  return AtNode(e, [&] { return EvalInner(e, scope); });
}

Value Interpreter::EvalCall(const Expr& e, const std::shared_ptr<Scope>& scope) {
  const Expr& callee = *e.children[0];
  if (callee.kind == Expr::Kind::kGetAttr) {
    const Value obj = Eval(*callee.children[0], scope);
    if (obj.is_string() || obj.is_list() || obj.is_dict()) {
      CallArgs args = EvalArgs(e, 1, scope);
      if (auto v = CallMethod(*this, obj, callee.name, args)) return std::move(*v);
    }
    const Value fn = GetAttr(obj, callee.name);
    return Call(fn, EvalArgs(e, 1, scope));
  }
  const Value fn = Eval(callee, scope);
  return Call(fn, EvalArgs(e, 1, scope));
}

Value Interpreter::EvalInner(const Expr& e, const std::shared_ptr<Scope>& scope) {
  Step();
  switch (e.kind) {
    case Expr::Kind::kLiteral:
      return e.literal;
    case Expr::Kind::kName: {
      const Value* v = scope->Find(e.name);
      if (v != nullptr) return *v;
      return Value::Undefined(fmt::format("'{}' is undefined", e.name));
    }
    case Expr::Kind::kList:
    case Expr::Kind::kTuple: {
      ValueList items;
      items.reserve(e.children.size());
      for (const auto& c : e.children) items.push_back(Eval(*c, scope));
      return Value::List(std::move(items), e.kind == Expr::Kind::kTuple);
    }
    case Expr::Kind::kDict: {
      auto d = std::make_shared<Dict>();
      for (size_t i = 0; i + 1 < e.children.size(); i += 2) {
        Value k = Eval(*e.children[i], scope);
        if (k.is_list() && !k.is_tuple())
          throw Error(fmt::format("unhashable type: '{}'", k.TypeName()));
        if (k.is_dict()) throw Error("unhashable type: 'dict'");
        d->Set(k, Eval(*e.children[i + 1], scope));
      }
      return Value::MakeDict(std::move(d));
    }
    case Expr::Kind::kGetAttr:
      return GetAttr(Eval(*e.children[0], scope), e.name);
    case Expr::Kind::kGetItem:
      return GetItem(Eval(*e.children[0], scope), Eval(*e.children[1], scope));
    case Expr::Kind::kSlice: {
      auto part = [&](size_t i) {
        return e.children[i] ? Eval(*e.children[i], scope) : Value::None();
      };
      return Slice(Eval(*e.children[0], scope), part(1), part(2), part(3));
    }
    case Expr::Kind::kCall:
      return EvalCall(e, scope);
    case Expr::Kind::kFilter: {
      const Value input = e.children[0] ? Eval(*e.children[0], scope) : Value();
      return ApplyFilter(*this, e.name, input, EvalArgs(e, 1, scope));
    }
    case Expr::Kind::kTest: {
      const Value input = Eval(*e.children[0], scope);
      const bool r = ApplyTest(*this, e.name, input, EvalArgs(e, 1, scope));
      return Value(e.negated ? !r : r);
    }
    case Expr::Kind::kNeg:
    case Expr::Kind::kPos: {
      const Value v = Eval(*e.children[0], scope).Defined();
      if (!v.is_number()) {
        throw Error(fmt::format("bad operand type for unary {}: '{}'",
                                e.kind == Expr::Kind::kNeg ? '-' : '+', v.TypeName()));
      }
      if (e.kind == Expr::Kind::kPos) return v.is_bool() ? Value(v.i()) : v;
      if (v.is_float()) return Value(-v.f());
      if (v.i() == INT64_MIN) throw Error("integer overflow");
      return Value(-v.i());
    }
    case Expr::Kind::kBinary:
      return BinaryOp(*this, e.name, Eval(*e.children[0], scope), Eval(*e.children[1], scope));
    case Expr::Kind::kConcat: {
      std::string out;
      for (const auto& c : e.children) {
        const Value v = Eval(*c, scope);
        out += v.is_string() ? v.s() : v.Str();
        Charge(out.size() >> 6);
        CheckSize(out.size());
      }
      return Value(std::move(out));
    }
    case Expr::Kind::kCompare: {
      Value left = Eval(*e.children[0], scope);
      for (size_t i = 0; i < e.ops.size(); ++i) {
        Value right = Eval(*e.children[i + 1], scope);
        if (!CompareOp(e.ops[i], left, right)) return Value(false);
        left = std::move(right);
      }
      return Value(true);
    }
    case Expr::Kind::kAnd: {
      Value l = Eval(*e.children[0], scope);
      if (!l.Truthy()) return l;
      return Eval(*e.children[1], scope);
    }
    case Expr::Kind::kOr: {
      Value l = Eval(*e.children[0], scope);
      if (l.Truthy()) return l;
      return Eval(*e.children[1], scope);
    }
    case Expr::Kind::kNot:
      return Value(!Eval(*e.children[0], scope).Truthy());
    case Expr::Kind::kCond:
      if (Eval(*e.children[1], scope).Truthy()) return Eval(*e.children[0], scope);
      if (e.children[2]) return Eval(*e.children[2], scope);
      return Value::Undefined(
          "the inline if-expression evaluated to false and no else section was defined");
  }
  return Value();
}

}  // namespace kinfer::tokenizer::jinja
