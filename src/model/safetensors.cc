#include "model/safetensors.h"

#include <algorithm>
#include <cstring>
#include <filesystem>

#include "core/json.h"

namespace kinfer::model {
namespace {

constexpr uint64_t kMaxHeaderBytes = 100 * 1024 * 1024;

size_t ElementSize(std::string_view dtype) {
  if (dtype == "F64" || dtype == "I64" || dtype == "U64") return 8;
  if (dtype == "F32" || dtype == "I32" || dtype == "U32") return 4;
  if (dtype == "F16" || dtype == "BF16" || dtype == "I16" || dtype == "U16") return 2;
  if (dtype == "I8" || dtype == "U8" || dtype == "BOOL" || dtype == "F8_E4M3" || dtype == "F8_E5M2")
    return 1;
  return 0;
}

}  // namespace

TensorView SafetensorsTensor::View() const {
  TensorView v;
  v.dtype = dtype;
  v.ndim = static_cast<int>(shape.size());
  for (size_t i = 0; i < shape.size() && i < 4; ++i) v.shape[i] = shape[i];
  v.data = data;
  v.nbytes = nbytes;
  return v;
}

Result<std::unique_ptr<SafetensorsFile>> SafetensorsFile::Open(const std::string& path) {
  KINFER_ASSIGN_OR_RETURN(auto mapped, MappedFile::Open(path));
  std::unique_ptr<SafetensorsFile> f(new SafetensorsFile());
  f->name_ = path;
  auto bytes = mapped->bytes();
  f->file_ = std::move(mapped);
  KINFER_RETURN_IF_ERROR(f->ParseImpl(bytes));
  return f;
}

Result<std::unique_ptr<SafetensorsFile>> SafetensorsFile::Parse(std::span<const uint8_t> bytes,
                                                                std::string name) {
  std::unique_ptr<SafetensorsFile> f(new SafetensorsFile());
  f->name_ = std::move(name);
  KINFER_RETURN_IF_ERROR(f->ParseImpl(bytes));
  return f;
}

Status SafetensorsFile::ParseImpl(std::span<const uint8_t> bytes) {
  if (bytes.size() < 8) {
    return DataLossError("{}: not a safetensors file: {} bytes is too short for the header length",
                         name_, bytes.size());
  }
  uint64_t header_len = 0;
  std::memcpy(&header_len, bytes.data(), 8);
  if (header_len > kMaxHeaderBytes || header_len > bytes.size() - 8) {
    return DataLossError(
        "{}: not a safetensors file or truncated: header length {} exceeds the {} bytes after it",
        name_, header_len, bytes.size() - 8);
  }
  std::string_view header(reinterpret_cast<const char*>(bytes.data() + 8), header_len);
  KINFER_ASSIGN_OR_RETURN(Json j, ParseJson(header, name_ + ": header", 16));
  if (!j.is_object()) return DataLossError("{}: header is not a JSON object", name_);
  const uint8_t* data_start = bytes.data() + 8 + header_len;
  uint64_t data_size = bytes.size() - 8 - header_len;

  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& key = it.key();
    if (key == "__metadata__") {
      if (!it->is_object()) return DataLossError("{}: '__metadata__' is not an object", name_);
      for (auto m = it->begin(); m != it->end(); ++m) {
        if (m->is_string()) metadata_[m.key()] = m->get<std::string>();
      }
      continue;
    }
    std::string where = name_ + ": tensor '" + key + "'";
    const Json& t = *it;
    if (!t.is_object()) return DataLossError("{}: expected an object", where);
    KINFER_ASSIGN_OR_RETURN(std::string dtype, JsonString(t, "dtype", where));
    size_t esize = ElementSize(dtype);
    if (esize == 0) return DataLossError("{}: unknown dtype '{}'", where, dtype);
    auto shape_it = t.find("shape");
    auto off_it = t.find("data_offsets");
    if (shape_it == t.end() || !shape_it->is_array()) {
      return DataLossError("{}: missing or invalid 'shape'", where);
    }
    if (off_it == t.end() || !off_it->is_array() || off_it->size() != 2 ||
        !(*off_it)[0].is_number_unsigned() || !(*off_it)[1].is_number_unsigned()) {
      return DataLossError("{}: 'data_offsets' must be two non-negative integers", where);
    }
    SafetensorsTensor st;
    st.name = key;
    st.dtype_name = dtype;
    uint64_t numel = 1;
    for (const Json& d : *shape_it) {
      if (!d.is_number_unsigned()) return DataLossError("{}: shape has a non-integer entry", where);
      uint64_t dim = d.get<uint64_t>();
      if (dim != 0 && numel > (uint64_t{1} << 50) / dim) {
        return DataLossError("{}: shape overflows", where);
      }
      numel *= dim;
      st.shape.push_back(static_cast<int64_t>(dim));
    }
    if (st.shape.size() > 8) return DataLossError("{}: more than 8 dimensions", where);
    uint64_t begin = (*off_it)[0].get<uint64_t>();
    uint64_t end = (*off_it)[1].get<uint64_t>();
    if (begin > end || end > data_size) {
      return DataLossError(
          "{}: data_offsets [{}, {}) outside the {}-byte data section; the file "
          "is truncated or corrupt",
          where, begin, end, data_size);
    }
    if (end - begin != numel * esize) {
      return DataLossError("{}: data_offsets span {} bytes but shape and dtype {} need {}", where,
                           end - begin, dtype, numel * esize);
    }
    st.data = data_start + begin;
    st.nbytes = end - begin;
    if (dtype == "F32") {
      st.supported = true;
      st.dtype = DType::kF32;
    } else if (dtype == "F16") {
      st.supported = true;
      st.dtype = DType::kF16;
    } else if (dtype == "BF16") {
      st.supported = true;
      st.dtype = DType::kBF16;
    }
    if (begin != end) ranges.emplace_back(begin, end);
    tensors_.push_back(std::move(st));
  }
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i) {
    if (ranges[i].first < ranges[i - 1].second) {
      return DataLossError("{}: tensor data ranges overlap at byte {}", name_, ranges[i].first);
    }
  }
  for (size_t i = 0; i < tensors_.size(); ++i) index_.emplace(tensors_[i].name, i);
  return Status::Ok();
}

const SafetensorsTensor* SafetensorsFile::Find(std::string_view name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

Result<std::unique_ptr<SafetensorsModel>> SafetensorsModel::Open(const std::string& dir) {
  namespace fs = std::filesystem;
  auto m = std::make_unique<SafetensorsModel>();
  fs::path index = fs::path(dir) / "model.safetensors.index.json";
  fs::path single = fs::path(dir) / "model.safetensors";
  std::error_code ec;
  if (fs::exists(index, ec)) {
    KINFER_ASSIGN_OR_RETURN(std::string text, ReadFileToString(index.string()));
    KINFER_ASSIGN_OR_RETURN(Json j, ParseJson(text, index.string()));
    auto wm = j.find("weight_map");
    if (wm == j.end() || !wm->is_object()) {
      return DataLossError("{}: missing object 'weight_map'", index.string());
    }
    std::vector<std::string> shard_names;
    for (auto it = wm->begin(); it != wm->end(); ++it) {
      if (!it->is_string()) {
        return DataLossError("{}: weight_map['{}'] is not a file name", index.string(), it.key());
      }
      std::string shard = it->get<std::string>();
      if (shard.find('/') != std::string::npos || shard.find("..") != std::string::npos) {
        return DataLossError("{}: weight_map['{}'] names '{}', outside the model directory",
                             index.string(), it.key(), shard);
      }
      if (std::find(shard_names.begin(), shard_names.end(), shard) == shard_names.end()) {
        shard_names.push_back(shard);
      }
    }
    std::sort(shard_names.begin(), shard_names.end());
    for (const std::string& s : shard_names) {
      KINFER_ASSIGN_OR_RETURN(auto f, SafetensorsFile::Open((fs::path(dir) / s).string()));
      m->files_.push_back(std::move(f));
    }
    for (auto it = wm->begin(); it != wm->end(); ++it) {
      std::string file;
      const SafetensorsTensor* t = m->Find(it.key(), &file);
      if (!t) {
        return DataLossError("{}: tensor '{}' is listed in the index but missing from '{}'",
                             index.string(), it.key(), it->get<std::string>());
      }
    }
  } else if (fs::exists(single, ec)) {
    KINFER_ASSIGN_OR_RETURN(auto f, SafetensorsFile::Open(single.string()));
    m->files_.push_back(std::move(f));
  } else {
    return NotFoundError("{}: no model.safetensors or model.safetensors.index.json", dir);
  }
  return m;
}

const SafetensorsTensor* SafetensorsModel::Find(std::string_view name, std::string* file) const {
  for (const auto& f : files_) {
    if (const SafetensorsTensor* t = f->Find(name)) {
      if (file) *file = f->name();
      return t;
    }
  }
  return nullptr;
}

size_t SafetensorsModel::num_tensors() const {
  size_t n = 0;
  for (const auto& f : files_) n += f->tensors().size();
  return n;
}

}  // namespace kinfer::model
