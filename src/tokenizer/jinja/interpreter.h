// Executes a parsed template against variables. Jinja2's scoping: a for-loop iteration and a
// macro call get a scope of their own, if/set do not; macros see their defining scope as it is
// when they are called. Work, output size and call depth are bounded, so no template can run or
// grow without limit.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "tokenizer/jinja/ast.h"
#include "tokenizer/jinja/value.h"

namespace kinfer::tokenizer::jinja {

struct Limits {
  size_t max_output_bytes = size_t{16} << 20;  // also bounds any one string or list built
  int64_t max_steps = 5'000'000;               // statements + expressions + loop iterations
  int max_call_depth = 64;                     // macro calls nested (recursion)
};

class Scope {
 public:
  explicit Scope(std::shared_ptr<Scope> parent = nullptr) : parent_(std::move(parent)) {}
  const Value* Find(const std::string& name) const;
  void Set(const std::string& name, Value v) { vars_[name] = std::move(v); }

 private:
  std::unordered_map<std::string, Value> vars_;
  std::shared_ptr<Scope> parent_;
};

// Adds `units` of work to the render running on this thread (a no-op outside one): builtins
// charge for the bytes and elements they touch, so a loop over a huge string or list runs out
// of budget instead of running for hours.
void ChargeWork(size_t units);

class Interpreter {
 public:
  Interpreter(const Template& tmpl, Limits limits, std::chrono::system_clock::time_point now);
  ~Interpreter();

  // Renders with `variables` (messages, tools, ...) over the builtin functions. Throws Error.
  std::string Render(const std::vector<std::pair<std::string, Value>>& variables);

  // For builtins.
  void Step() { Charge(1); }
  void Charge(size_t units);
  void CheckSize(size_t bytes) const;
  std::chrono::system_clock::time_point now() const { return now_; }
  Value Call(const Value& fn, const CallArgs& args);
  // Namespaces can hold themselves; they are registered so Render can break such cycles.
  Value NewNamespace(std::shared_ptr<Dict> d);

 private:
  enum class Flow { kNormal, kBreak, kContinue };

  Flow ExecBody(const Body& body, const std::shared_ptr<Scope>& scope);
  Flow Exec(const Stmt& s, const std::shared_ptr<Scope>& scope);
  Flow ExecFor(const Stmt& s, const std::shared_ptr<Scope>& scope);
  void ExecSet(const Stmt& s, const std::shared_ptr<Scope>& scope);
  std::string Capture(const Body& body, const std::shared_ptr<Scope>& scope);
  Value ApplyFilters(const std::vector<std::unique_ptr<Expr>>& filters, Value v,
                     const std::shared_ptr<Scope>& scope);
  Value MakeMacro(const Stmt& s, const std::shared_ptr<Scope>& scope);

  Value Eval(const Expr& e, const std::shared_ptr<Scope>& scope);
  Value EvalInner(const Expr& e, const std::shared_ptr<Scope>& scope);
  Value EvalCall(const Expr& e, const std::shared_ptr<Scope>& scope);
  CallArgs EvalArgs(const Expr& e, size_t first, const std::shared_ptr<Scope>& scope);
  void Append(std::string_view s);

  const Template& tmpl_;
  Limits limits_;
  std::chrono::system_clock::time_point now_;
  std::string* out_ = nullptr;
  int64_t steps_ = 0;
  int call_depth_ = 0;
  std::vector<std::shared_ptr<Dict>> namespaces_;
};

}  // namespace kinfer::tokenizer::jinja
