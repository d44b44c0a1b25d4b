#include "core/tensor.h"

#include <fmt/format.h>

namespace kinfer {

std::string TensorView::Describe() const {
  std::string s = "[";
  for (int i = 0; i < ndim; ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return fmt::format("{}] {}", s, DTypeName(dtype));
}

}  // namespace kinfer
