// GGUF v2/v3 files: metadata of every type and the tensor directory, parsed from a byte span
// (usually an mmap) without copying tensor data. Every offset, count and length is checked
// against the file, so a truncated or hostile file gives an error naming the key or tensor.
//
//   KINFER_ASSIGN_OR_RETURN(auto gguf, GgufFile::Open("model.gguf"));
//   KINFER_ASSIGN_OR_RETURN(uint64_t layers, gguf->GetUint("llama.block_count"));
//   const GgufTensorInfo* t = gguf->FindTensor("token_embd.weight");
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/dtype.h"
#include "core/mapped_file.h"
#include "core/status.h"
#include "core/tensor.h"

namespace kinfer::model {

enum class GgufValueType : uint32_t {
  kUint8 = 0,
  kInt8 = 1,
  kUint16 = 2,
  kInt16 = 3,
  kUint32 = 4,
  kInt32 = 5,
  kFloat32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kUint64 = 10,
  kInt64 = 11,
  kFloat64 = 12,
};

std::string_view GgufValueTypeName(GgufValueType t);

struct GgufValue;

// An array value. Numbers are kept as a pointer into the file (read them with the accessors),
// strings as views into the file, nested arrays as values.
struct GgufArray {
  GgufValueType elem_type = GgufValueType::kUint8;
  uint64_t count = 0;
  const uint8_t* data = nullptr;          // numeric elements, packed little-endian
  std::vector<std::string_view> strings;  // when elem_type == kString
  std::vector<GgufValue> arrays;          // when elem_type == kArray

  // Element i as a number, converted; i < count and a numeric or bool type.
  int64_t GetInt(uint64_t i) const;
  double GetFloat(uint64_t i) const;
  bool IsNumeric() const;
};

struct GgufValue {
  GgufValueType type = GgufValueType::kUint8;
  uint64_t u = 0;  // unsigned integer types and bool
  int64_t i = 0;   // signed integer types
  double f = 0;    // float types
  std::string_view s;
  std::shared_ptr<const GgufArray> array;

  bool IsInteger() const;
  bool IsFloat() const {
    return type == GgufValueType::kFloat32 || type == GgufValueType::kFloat64;
  }
  // A short human-readable rendering ("[49152 strings]" for big arrays).
  std::string ToDisplayString() const;
};

struct GgufTensorInfo {
  std::string name;
  DType dtype = DType::kF32;
  int n_dims = 0;
  std::array<int64_t, 4> ne{};  // ggml order: ne[0] is the innermost (row) dimension
  uint64_t offset = 0;          // relative to the start of the data section
  size_t nbytes = 0;
  const uint8_t* data = nullptr;

  // The same tensor in Kinfer's row-major, outermost-first shape convention.
  TensorView View() const;
};

class GgufFile {
 public:
  // Maps and parses `path`.
  static Result<std::unique_ptr<GgufFile>> Open(const std::string& path);
  // Parses bytes that outlive the result; `name` is used in error messages.
  static Result<std::unique_ptr<GgufFile>> Parse(std::span<const uint8_t> bytes, std::string name);

  const std::string& name() const { return name_; }
  uint32_t version() const { return version_; }
  size_t alignment() const { return alignment_; }
  size_t data_offset() const { return data_offset_; }

  // Metadata in file order.
  const std::vector<std::pair<std::string, GgufValue>>& metadata() const { return metadata_; }
  const GgufValue* Find(std::string_view key) const;
  bool Has(std::string_view key) const { return Find(key) != nullptr; }

  // Typed getters; errors name the file and key and say what was expected.
  Result<std::string_view> GetString(std::string_view key) const;
  Result<uint64_t> GetUint(std::string_view key) const;  // any non-negative integer type
  Result<int64_t> GetInt(std::string_view key) const;    // any integer type that fits
  Result<double> GetFloat(std::string_view key) const;   // float or integer types
  Result<bool> GetBool(std::string_view key) const;
  Result<const GgufArray*> GetArray(std::string_view key) const;

  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  const GgufTensorInfo* FindTensor(std::string_view name) const;

 private:
  GgufFile() = default;
  Status ParseImpl(std::span<const uint8_t> bytes);

  std::string name_;
  std::unique_ptr<MappedFile> file_;  // set when opened from a path
  uint32_t version_ = 0;
  size_t alignment_ = 32;
  size_t data_offset_ = 0;
  std::vector<std::pair<std::string, GgufValue>> metadata_;
  std::unordered_map<std::string_view, size_t> metadata_index_;
  std::vector<GgufTensorInfo> tensors_;
  std::unordered_map<std::string_view, size_t> tensor_index_;
};

}  // namespace kinfer::model
