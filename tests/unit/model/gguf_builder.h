// Test helper: writes small GGUF files byte by byte, so tests can build valid files and break
// them in one precise way.
#pragma once

#include <cstdint>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

namespace kinfer::model::testing {

class GgufBuilder {
 public:
  void KvString(const std::string& key, const std::string& value) {
    Key(key, 8);
    Str(value);
  }
  void KvU32(const std::string& key, uint32_t v) {
    Key(key, 4);
    Put(v);
  }
  void KvF32(const std::string& key, float v) {
    Key(key, 6);
    Put(v);
  }
  void KvBool(const std::string& key, bool v) {
    Key(key, 7);
    Put(static_cast<uint8_t>(v));
  }
  void KvStringArray(const std::string& key, const std::vector<std::string>& items) {
    Key(key, 9);
    Put(uint32_t{8});
    Put(static_cast<uint64_t>(items.size()));
    for (const auto& s : items) Str(s);
  }
  // A tensor with ggml dims `ne` (ne[0] innermost); data is zeros of `nbytes` unless given.
  void Tensor(const std::string& name, uint32_t type, std::vector<int64_t> ne, size_t nbytes,
              const std::vector<uint8_t>& data = {}) {
    tensors_.push_back({name, type, std::move(ne), nbytes, data});
  }
  // Overrides the offset written for tensor i (to make it point outside the file).
  void OverrideOffset(size_t i, uint64_t offset) { offsets_override_.emplace_back(i, offset); }

  std::vector<uint8_t> Build(uint32_t version = 3) const {
    std::vector<uint8_t> out;
    auto put = [&](const void* p, size_t n) {
      const auto* b = static_cast<const uint8_t*>(p);
      out.insert(out.end(), b, b + n);
    };
    uint32_t magic = 0x46554747u;
    put(&magic, 4);
    put(&version, 4);
    uint64_t nt = tensors_.size(), nkv = num_kv_;
    put(&nt, 8);
    put(&nkv, 8);
    out.insert(out.end(), kv_.begin(), kv_.end());
    uint64_t offset = 0;
    std::vector<uint64_t> offsets;
    for (size_t i = 0; i < tensors_.size(); ++i) {
      const auto& t = tensors_[i];
      uint64_t len = t.name.size();
      put(&len, 8);
      put(t.name.data(), len);
      uint32_t nd = static_cast<uint32_t>(t.ne.size());
      put(&nd, 4);
      for (int64_t d : t.ne) put(&d, 8);
      put(&t.type, 4);
      uint64_t off = offset;
      for (const auto& [idx, o] : offsets_override_) {
        if (idx == i) off = o;
      }
      put(&off, 8);
      offsets.push_back(offset);
      offset += (t.nbytes + 31) / 32 * 32;
    }
    while (out.size() % 32) out.push_back(0);
    size_t data_start = out.size();
    out.resize(data_start + offset, 0);
    for (size_t i = 0; i < tensors_.size(); ++i) {
      if (!tensors_[i].data.empty()) {
        std::memcpy(out.data() + data_start + offsets[i], tensors_[i].data.data(),
                    std::min(tensors_[i].data.size(), tensors_[i].nbytes));
      }
    }
    return out;
  }

  static void Write(const std::string& path, const std::vector<uint8_t>& bytes) {
    std::ofstream f(path, std::ios::binary);
    f.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
  }

 private:
  struct T {
    std::string name;
    uint32_t type;
    std::vector<int64_t> ne;
    size_t nbytes;
    std::vector<uint8_t> data;
  };
  template <typename V>
  void Put(V v) {
    const auto* b = reinterpret_cast<const uint8_t*>(&v);
    kv_.insert(kv_.end(), b, b + sizeof(V));
  }
  void Str(const std::string& s) {
    Put(static_cast<uint64_t>(s.size()));
    kv_.insert(kv_.end(), s.begin(), s.end());
  }
  void Key(const std::string& key, uint32_t type) {
    Str(key);
    Put(type);
    ++num_kv_;
  }

  std::vector<uint8_t> kv_;
  uint64_t num_kv_ = 0;
  std::vector<T> tensors_;
  std::vector<std::pair<size_t, uint64_t>> offsets_override_;
};

}  // namespace kinfer::model::testing
