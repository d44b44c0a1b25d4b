// A constraint on what a sequence may generate (a JSON schema, a regex, a grammar), as the
// engine sees it: a mask of allowed next tokens, advanced token by token. The engine keeps one
// per constrained sequence (cloned from the request's prototype), computes the masks of a step's
// constrained sequences on its thread pool and the sampler applies them; a sequence without a
// constraint pays nothing. The grammar library behind it lives in src/structured/.
#pragma once

#include <cstdint>
#include <memory>
#include <span>

#include "core/status.h"

namespace kinfer::engine {

class Constraint {
 public:
  virtual ~Constraint() = default;

  // An independent copy in the same state (a fresh prototype gives a fresh constraint).
  virtual std::unique_ptr<Constraint> Clone() const = 0;

  // Writes the tokens allowed next: bit (t % 32) of mask[t / 32] is set for an allowed token t.
  // `mask` holds MaskWords(vocab_size) words. Safe to call for different constraints on
  // different threads at once.
  virtual Status ComputeMask(std::span<uint32_t> mask) = 0;

  // Advances past `token`, which the last mask allowed.
  virtual Status Accept(int32_t token) = 0;

  // True once the constraint allows nothing more: the output is complete.
  virtual bool IsTerminated() const = 0;
};

inline size_t MaskWords(int64_t vocab_size) { return static_cast<size_t>((vocab_size + 31) / 32); }

}  // namespace kinfer::engine
