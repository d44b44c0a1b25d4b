// Hugging Face safetensors files, single or sharded with `model.safetensors.index.json`: the
// JSON header is validated (dtypes, shapes, offsets inside the file, no overlaps) and tensors are
// views into the mapped file.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/mapped_file.h"
#include "core/status.h"
#include "core/tensor.h"

namespace kinfer::model {

struct SafetensorsTensor {
  std::string name;
  std::string dtype_name;  // as written: "F32", "BF16", "I64", ...
  bool supported = false;  // whether dtype is F32, F16 or BF16
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;
  size_t nbytes = 0;

  TensorView View() const;  // only for supported dtypes and at most 4 dimensions
};

class SafetensorsFile {
 public:
  static Result<std::unique_ptr<SafetensorsFile>> Open(const std::string& path);
  static Result<std::unique_ptr<SafetensorsFile>> Parse(std::span<const uint8_t> bytes,
                                                        std::string name);

  const std::string& name() const { return name_; }
  const std::vector<SafetensorsTensor>& tensors() const { return tensors_; }
  const SafetensorsTensor* Find(std::string_view name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  SafetensorsFile() = default;
  Status ParseImpl(std::span<const uint8_t> bytes);

  std::string name_;
  std::unique_ptr<MappedFile> file_;
  std::vector<SafetensorsTensor> tensors_;
  std::unordered_map<std::string_view, size_t> index_;
  std::map<std::string, std::string> metadata_;
};

// All safetensors of a model directory: `model.safetensors`, or the shards listed by
// `model.safetensors.index.json`.
class SafetensorsModel {
 public:
  static Result<std::unique_ptr<SafetensorsModel>> Open(const std::string& dir);

  // The tensor and the file that holds it, or null.
  const SafetensorsTensor* Find(std::string_view name, std::string* file = nullptr) const;
  size_t num_tensors() const;
  const std::vector<std::unique_ptr<SafetensorsFile>>& files() const { return files_; }

 private:
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
};

}  // namespace kinfer::model
