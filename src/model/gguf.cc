#include "model/gguf.h"

#include <cstring>
#include <limits>

#include <fmt/format.h>

namespace kinfer::model {
namespace {

constexpr int kMaxArrayDepth = 4;
constexpr int kMaxDims = 4;

// Little-endian cursor over the file bytes; every read checks the remaining length.
class Cursor {
 public:
  Cursor(std::span<const uint8_t> bytes, const std::string& name) : bytes_(bytes), name_(name) {}

  size_t pos() const { return pos_; }
  size_t remaining() const { return bytes_.size() - pos_; }

  template <typename T>
  Status Read(T* out, std::string_view what) {
    if (remaining() < sizeof(T)) return Truncated(what, sizeof(T));
    std::memcpy(out, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return Status::Ok();
  }

  Status ReadString(std::string_view* out, std::string_view what) {
    uint64_t len = 0;
    KINFER_RETURN_IF_ERROR(Read(&len, what));
    if (len > remaining()) {
      return DataLossError("{}: {}: string length {} at offset {} runs past the end of the file",
                           name_, what, len, pos_ - 8);
    }
    *out = std::string_view(reinterpret_cast<const char*>(bytes_.data() + pos_), len);
    pos_ += len;
    return Status::Ok();
  }

  Status Skip(uint64_t n, std::string_view what) {
    if (n > remaining()) return Truncated(what, n);
    pos_ += n;
    return Status::Ok();
  }

  const uint8_t* here() const { return bytes_.data() + pos_; }

  Status Truncated(std::string_view what, uint64_t need) const {
    return DataLossError("{}: truncated file: {} needs {} bytes at offset {}, only {} left", name_,
                         what, need, pos_, remaining());
  }

 private:
  std::span<const uint8_t> bytes_;
  const std::string& name_;
  size_t pos_ = 0;
};

size_t ScalarSize(GgufValueType t) {
  switch (t) {
    case GgufValueType::kUint8:
    case GgufValueType::kInt8:
    case GgufValueType::kBool:
      return 1;
    case GgufValueType::kUint16:
    case GgufValueType::kInt16:
      return 2;
    case GgufValueType::kUint32:
    case GgufValueType::kInt32:
    case GgufValueType::kFloat32:
      return 4;
    case GgufValueType::kUint64:
    case GgufValueType::kInt64:
    case GgufValueType::kFloat64:
      return 8;
    default:
      return 0;
  }
}

bool KnownType(uint32_t t) { return t <= static_cast<uint32_t>(GgufValueType::kFloat64); }

template <typename T>
T LoadAt(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

Status ReadScalar(Cursor& c, GgufValueType type, GgufValue* v, const std::string& key) {
  v->type = type;
  switch (type) {
    case GgufValueType::kUint8: {
      uint8_t x;
      KINFER_RETURN_IF_ERROR(c.Read(&x, key));
      v->u = x;
      v->i = x;
      return Status::Ok();
    }
    case GgufValueType::kInt8: {
      int8_t x;
      KINFER_RETURN_IF_ERROR(c.Read(&x, key));
      v->i = x;  // NOLINT(bugprone-signed-char-misuse): GGUF int8 is signed
      return Status::Ok();
    }
    case GgufValueType::kUint16: {
      uint16_t x;
      KINFER_RETURN_IF_ERROR(c.Read(&x, key));
      v->u = x;
      v->i = x;
      return Status::Ok();
    }
    case GgufValueType::kInt16: {
      int16_t x;
      KINFER_RETURN_IF_ERROR(c.Read(&x, key));
      v->i = x;
      return Status::Ok();
    }
    case GgufValueType::kUint32: {
      uint32_t x;
      KINFER_RETURN_IF_ERROR(c.Read(&x, key));
      v->u = x;
      v->i = x;
      return Status::Ok();
    }
    case GgufValueType::kInt32: {
      int32_t x;
      KINFER_RETURN_IF_ERROR(c.Read(&x, key));
      v->i = x;
      return Status::Ok();
    }
    case GgufValueType::kUint64: {
      uint64_t x;
      KINFER_RETURN_IF_ERROR(c.Read(&x, key));
      v->u = x;
      v->i = x > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())
                 ? -1
                 : static_cast<int64_t>(x);
      return Status::Ok();
    }
    case GgufValueType::kInt64: {
      int64_t x;
      KINFER_RETURN_IF_ERROR(c.Read(&x, key));
      v->i = x;
      return Status::Ok();
    }
    case GgufValueType::kFloat32: {
      float x;
      KINFER_RETURN_IF_ERROR(c.Read(&x, key));
      v->f = x;
      return Status::Ok();
    }
    case GgufValueType::kFloat64: {
      double x;
      KINFER_RETURN_IF_ERROR(c.Read(&x, key));
      v->f = x;
      return Status::Ok();
    }
    case GgufValueType::kBool: {
      uint8_t x;
      KINFER_RETURN_IF_ERROR(c.Read(&x, key));
      v->u = x != 0;
      return Status::Ok();
    }
    case GgufValueType::kString:
      return c.ReadString(&v->s, key);
    case GgufValueType::kArray:
      break;
  }
  return InternalError("unreachable");
}

Status ReadArray(Cursor& c, GgufValue* v, const std::string& key, const std::string& file,
                 int depth) {
  if (depth >= kMaxArrayDepth) {
    return DataLossError("{}: key '{}': arrays nested deeper than {}", file, key, kMaxArrayDepth);
  }
  uint32_t elem_type = 0;
  uint64_t count = 0;
  KINFER_RETURN_IF_ERROR(c.Read(&elem_type, key));
  KINFER_RETURN_IF_ERROR(c.Read(&count, key));
  if (!KnownType(elem_type)) {
    return DataLossError("{}: key '{}': unknown array element type {}", file, key, elem_type);
  }
  auto arr = std::make_shared<GgufArray>();
  arr->elem_type = static_cast<GgufValueType>(elem_type);
  arr->count = count;
  if (arr->elem_type == GgufValueType::kString) {
    // Each string takes at least its 8-byte length, which bounds the count before reserving.
    if (count > c.remaining() / 8) {
      return DataLossError("{}: key '{}': array of {} strings cannot fit in the {} bytes left",
                           file, key, count, c.remaining());
    }
    for (uint64_t i = 0; i < count; ++i) {
      std::string_view s;
      KINFER_RETURN_IF_ERROR(c.ReadString(&s, key));
      arr->strings.push_back(s);
    }
  } else if (arr->elem_type == GgufValueType::kArray) {
    if (count > c.remaining() / 12) {
      return DataLossError("{}: key '{}': array of {} arrays cannot fit in the {} bytes left", file,
                           key, count, c.remaining());
    }
    for (uint64_t i = 0; i < count; ++i) {
      GgufValue& item = arr->arrays.emplace_back();
      KINFER_RETURN_IF_ERROR(ReadArray(c, &item, key, file, depth + 1));
    }
  } else {
    size_t esize = ScalarSize(arr->elem_type);
    if (count > c.remaining() / esize) {
      return DataLossError("{}: key '{}': array of {} {} values runs past the end of the file",
                           file, key, count, GgufValueTypeName(arr->elem_type));
    }
    arr->data = c.here();
    KINFER_RETURN_IF_ERROR(c.Skip(count * esize, key));
  }
  v->type = GgufValueType::kArray;
  v->array = std::move(arr);
  return Status::Ok();
}

}  // namespace

std::string_view GgufValueTypeName(GgufValueType t) {
  switch (t) {
    case GgufValueType::kUint8:
      return "uint8";
    case GgufValueType::kInt8:
      return "int8";
    case GgufValueType::kUint16:
      return "uint16";
    case GgufValueType::kInt16:
      return "int16";
    case GgufValueType::kUint32:
      return "uint32";
    case GgufValueType::kInt32:
      return "int32";
    case GgufValueType::kFloat32:
      return "float32";
    case GgufValueType::kBool:
      return "bool";
    case GgufValueType::kString:
      return "string";
    case GgufValueType::kArray:
      return "array";
    case GgufValueType::kUint64:
      return "uint64";
    case GgufValueType::kInt64:
      return "int64";
    case GgufValueType::kFloat64:
      return "float64";
  }
  return "unknown";
}

bool GgufArray::IsNumeric() const {
  return elem_type != GgufValueType::kString && elem_type != GgufValueType::kArray;
}

int64_t GgufArray::GetInt(uint64_t i) const {
  const uint8_t* p = data + i * ScalarSize(elem_type);
  switch (elem_type) {
    case GgufValueType::kUint8:
    case GgufValueType::kBool:
      return LoadAt<uint8_t>(p);
    case GgufValueType::kInt8:
      return LoadAt<int8_t>(p);
    case GgufValueType::kUint16:
      return LoadAt<uint16_t>(p);
    case GgufValueType::kInt16:
      return LoadAt<int16_t>(p);
    case GgufValueType::kUint32:
      return LoadAt<uint32_t>(p);
    case GgufValueType::kInt32:
      return LoadAt<int32_t>(p);
    case GgufValueType::kUint64:
      return static_cast<int64_t>(LoadAt<uint64_t>(p));
    case GgufValueType::kInt64:
      return LoadAt<int64_t>(p);
    case GgufValueType::kFloat32:
      return static_cast<int64_t>(LoadAt<float>(p));
    case GgufValueType::kFloat64:
      return static_cast<int64_t>(LoadAt<double>(p));
    default:
      return 0;
  }
}

double GgufArray::GetFloat(uint64_t i) const {
  const uint8_t* p = data + i * ScalarSize(elem_type);
  switch (elem_type) {
    case GgufValueType::kFloat32:
      return LoadAt<float>(p);
    case GgufValueType::kFloat64:
      return LoadAt<double>(p);
    default:
      return static_cast<double>(GetInt(i));
  }
}

bool GgufValue::IsInteger() const {
  switch (type) {
    case GgufValueType::kUint8:
    case GgufValueType::kInt8:
    case GgufValueType::kUint16:
    case GgufValueType::kInt16:
    case GgufValueType::kUint32:
    case GgufValueType::kInt32:
    case GgufValueType::kUint64:
    case GgufValueType::kInt64:
      return true;
    default:
      return false;
  }
}

std::string GgufValue::ToDisplayString() const {
  switch (type) {
    case GgufValueType::kString: {
      std::string s(this->s.substr(0, 80));
      for (char& ch : s) {
        if (ch == '\n') ch = ' ';
      }
      return this->s.size() > 80 ? "\"" + s + "...\"" : "\"" + s + "\"";
    }
    case GgufValueType::kBool:
      return u ? "true" : "false";
    case GgufValueType::kFloat32:
    case GgufValueType::kFloat64:
      return fmt::format("{}", f);
    case GgufValueType::kUint64:
    case GgufValueType::kUint32:
    case GgufValueType::kUint16:
    case GgufValueType::kUint8:
      return fmt::format("{}", u);
    case GgufValueType::kArray: {
      const GgufArray& a = *array;
      if (a.count <= 8 && a.IsNumeric()) {
        std::string s = "[";
        for (uint64_t k = 0; k < a.count; ++k) {
          if (k) s += ", ";
          s += (a.elem_type == GgufValueType::kFloat32 || a.elem_type == GgufValueType::kFloat64)
                   ? fmt::format("{}", a.GetFloat(k))
                   : fmt::format("{}", a.GetInt(k));
        }
        return s + "]";
      }
      return fmt::format("[{} {}]", a.count, GgufValueTypeName(a.elem_type));
    }
    default:
      return fmt::format("{}", i);
  }
}

TensorView GgufTensorInfo::View() const {
  TensorView v;
  v.dtype = dtype;
  v.ndim = n_dims;
  for (int d = 0; d < n_dims; ++d) v.shape[d] = ne[n_dims - 1 - d];
  v.data = data;
  v.nbytes = nbytes;
  return v;
}

Result<std::unique_ptr<GgufFile>> GgufFile::Open(const std::string& path) {
  KINFER_ASSIGN_OR_RETURN(auto mapped, MappedFile::Open(path));
  std::unique_ptr<GgufFile> f(new GgufFile());
  f->name_ = path;
  std::span<const uint8_t> bytes = mapped->bytes();
  f->file_ = std::move(mapped);
  KINFER_RETURN_IF_ERROR(f->ParseImpl(bytes));
  return f;
}

Result<std::unique_ptr<GgufFile>> GgufFile::Parse(std::span<const uint8_t> bytes,
                                                  std::string name) {
  std::unique_ptr<GgufFile> f(new GgufFile());
  f->name_ = std::move(name);
  KINFER_RETURN_IF_ERROR(f->ParseImpl(bytes));
  return f;
}

Status GgufFile::ParseImpl(std::span<const uint8_t> bytes) {
  Cursor c(bytes, name_);
  uint32_t magic = 0;
  if (bytes.size() < 4) {
    return DataLossError("{}: not a GGUF file: {} bytes is too short for the header", name_,
                         bytes.size());
  }
  KINFER_RETURN_IF_ERROR(c.Read(&magic, "magic"));
  if (magic != 0x46554747u) {  // "GGUF" little-endian
    return InvalidArgumentError("{}: not a GGUF file: expected magic 'GGUF', got 0x{:08x}", name_,
                                magic);
  }
  KINFER_RETURN_IF_ERROR(c.Read(&version_, "version"));
  if (version_ == 1) {
    return UnimplementedError(
        "{}: GGUF version 1 is not supported (expected 2 or 3); "
        "re-convert the model with a current llama.cpp",
        name_);
  }
  if (version_ != 2 && version_ != 3) {
    if ((version_ & 0xFFFF) == 0 && (version_ >> 24) <= 3) {
      return UnimplementedError("{}: big-endian GGUF is not supported", name_);
    }
    return UnimplementedError("{}: GGUF version {} is not supported (expected 2 or 3)", name_,
                              version_);
  }
  uint64_t n_tensors = 0, n_kv = 0;
  KINFER_RETURN_IF_ERROR(c.Read(&n_tensors, "tensor count"));
  KINFER_RETURN_IF_ERROR(c.Read(&n_kv, "metadata count"));
  // A key-value pair takes at least 13 bytes, a tensor record at least 28.
  if (n_kv > c.remaining() / 13) {
    return DataLossError("{}: metadata count {} cannot fit in a {}-byte file", name_, n_kv,
                         bytes.size());
  }
  if (n_tensors > c.remaining() / 28) {
    return DataLossError("{}: tensor count {} cannot fit in a {}-byte file", name_, n_tensors,
                         bytes.size());
  }

  // Containers grow as records parse: counts from the file are not trusted for allocation.
  for (uint64_t k = 0; k < n_kv; ++k) {
    std::string_view key;
    KINFER_RETURN_IF_ERROR(c.ReadString(&key, fmt::format("metadata key #{}", k)));
    std::string key_str(key);
    uint32_t type = 0;
    KINFER_RETURN_IF_ERROR(c.Read(&type, key_str));
    if (!KnownType(type)) {
      return DataLossError("{}: key '{}': unknown value type {}", name_, key_str, type);
    }
    GgufValue v;
    if (static_cast<GgufValueType>(type) == GgufValueType::kArray) {
      KINFER_RETURN_IF_ERROR(ReadArray(c, &v, key_str, name_, 0));
    } else {
      KINFER_RETURN_IF_ERROR(ReadScalar(c, static_cast<GgufValueType>(type), &v, key_str));
    }
    metadata_.emplace_back(std::move(key_str), std::move(v));
  }
  for (size_t k = 0; k < metadata_.size(); ++k) {
    if (!metadata_index_.emplace(metadata_[k].first, k).second) {
      return DataLossError("{}: duplicate metadata key '{}'", name_, metadata_[k].first);
    }
  }

  if (const GgufValue* a = Find("general.alignment")) {
    if (!a->IsInteger() || a->u == 0 || a->u > (1u << 20) || (a->u & (a->u - 1)) != 0) {
      return DataLossError("{}: key 'general.alignment': expected a power of two, got {}", name_,
                           a->ToDisplayString());
    }
    alignment_ = a->u;
  }

  for (uint64_t t = 0; t < n_tensors; ++t) {
    GgufTensorInfo& info = tensors_.emplace_back();
    std::string_view tname;
    KINFER_RETURN_IF_ERROR(c.ReadString(&tname, fmt::format("tensor #{} name", t)));
    info.name = std::string(tname);
    std::string what = fmt::format("tensor '{}'", info.name);
    uint32_t n_dims = 0;
    KINFER_RETURN_IF_ERROR(c.Read(&n_dims, what));
    if (n_dims == 0 || n_dims > kMaxDims) {
      return DataLossError("{}: {}: expected 1 to {} dimensions, got {}", name_, what, kMaxDims,
                           n_dims);
    }
    info.n_dims = static_cast<int>(n_dims);
    uint64_t numel = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      int64_t ne = 0;
      KINFER_RETURN_IF_ERROR(c.Read(&ne, what));
      if (ne <= 0 || ne > (int64_t{1} << 40)) {
        return DataLossError("{}: {}: dimension {} is {}, expected a positive size", name_, what, d,
                             ne);
      }
      info.ne[d] = ne;
      if (numel > (uint64_t{1} << 48) / static_cast<uint64_t>(ne)) {
        return DataLossError("{}: {}: element count overflows", name_, what);
      }
      numel *= static_cast<uint64_t>(ne);
    }
    uint32_t type = 0;
    KINFER_RETURN_IF_ERROR(c.Read(&type, what));
    auto dinfo = GetDTypeInfo(type);
    if (!dinfo) return DataLossError("{}: {}: unknown tensor type {}", name_, what, type);
    info.dtype = static_cast<DType>(type);
    if (info.ne[0] % dinfo->block_size != 0) {
      return DataLossError("{}: {}: row length {} is not a multiple of the {} block size {}", name_,
                           what, info.ne[0], dinfo->name, dinfo->block_size);
    }
    info.nbytes = static_cast<size_t>(numel / dinfo->block_size) * dinfo->block_bytes;
    KINFER_RETURN_IF_ERROR(c.Read(&info.offset, what));
    if (info.offset % alignment_ != 0) {
      return DataLossError("{}: {}: data offset {} is not aligned to {}", name_, what, info.offset,
                           alignment_);
    }
  }
  for (size_t t = 0; t < tensors_.size(); ++t) {
    if (!tensor_index_.emplace(tensors_[t].name, t).second) {
      return DataLossError("{}: duplicate tensor name '{}'", name_, tensors_[t].name);
    }
  }

  size_t header_end = c.pos();
  data_offset_ = (header_end + alignment_ - 1) / alignment_ * alignment_;
  for (GgufTensorInfo& info : tensors_) {
    if (info.offset > bytes.size() || data_offset_ > bytes.size() - info.offset ||
        info.nbytes > bytes.size() - data_offset_ - info.offset) {
      return DataLossError(
          "{}: tensor '{}': data [{}, {}) lies outside the file ({} bytes); the file is "
          "truncated or corrupt",
          name_, info.name, data_offset_ + info.offset, data_offset_ + info.offset + info.nbytes,
          bytes.size());
    }
    info.data = bytes.data() + data_offset_ + info.offset;
  }
  return Status::Ok();
}

const GgufValue* GgufFile::Find(std::string_view key) const {
  auto it = metadata_index_.find(key);
  return it == metadata_index_.end() ? nullptr : &metadata_[it->second].second;
}

Result<std::string_view> GgufFile::GetString(std::string_view key) const {
  const GgufValue* v = Find(key);
  if (!v) return NotFoundError("{}: missing metadata key '{}'", name_, key);
  if (v->type != GgufValueType::kString) {
    return InvalidArgumentError("{}: key '{}': expected a string, got {}", name_, key,
                                GgufValueTypeName(v->type));
  }
  return v->s;
}

Result<int64_t> GgufFile::GetInt(std::string_view key) const {
  const GgufValue* v = Find(key);
  if (!v) return NotFoundError("{}: missing metadata key '{}'", name_, key);
  if (!v->IsInteger()) {
    return InvalidArgumentError("{}: key '{}': expected an integer, got {}", name_, key,
                                GgufValueTypeName(v->type));
  }
  if (v->type == GgufValueType::kUint64 && v->i < 0) {
    return InvalidArgumentError("{}: key '{}': value {} is too large", name_, key, v->u);
  }
  return v->i;
}

Result<uint64_t> GgufFile::GetUint(std::string_view key) const {
  KINFER_ASSIGN_OR_RETURN(int64_t i, GetInt(key));
  if (i < 0) {
    return InvalidArgumentError("{}: key '{}': expected a non-negative integer, got {}", name_, key,
                                i);
  }
  return static_cast<uint64_t>(i);
}

Result<double> GgufFile::GetFloat(std::string_view key) const {
  const GgufValue* v = Find(key);
  if (!v) return NotFoundError("{}: missing metadata key '{}'", name_, key);
  if (v->IsFloat()) return v->f;
  if (v->IsInteger()) return static_cast<double>(v->i);
  return InvalidArgumentError("{}: key '{}': expected a number, got {}", name_, key,
                              GgufValueTypeName(v->type));
}

Result<bool> GgufFile::GetBool(std::string_view key) const {
  const GgufValue* v = Find(key);
  if (!v) return NotFoundError("{}: missing metadata key '{}'", name_, key);
  if (v->type != GgufValueType::kBool) {
    return InvalidArgumentError("{}: key '{}': expected a bool, got {}", name_, key,
                                GgufValueTypeName(v->type));
  }
  return v->u != 0;
}

Result<const GgufArray*> GgufFile::GetArray(std::string_view key) const {
  const GgufValue* v = Find(key);
  if (!v) return NotFoundError("{}: missing metadata key '{}'", name_, key);
  if (v->type != GgufValueType::kArray) {
    return InvalidArgumentError("{}: key '{}': expected an array, got {}", name_, key,
                                GgufValueTypeName(v->type));
  }
  return v->array.get();
}

const GgufTensorInfo* GgufFile::FindTensor(std::string_view name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

}  // namespace kinfer::model
