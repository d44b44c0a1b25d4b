// Progress of a model load, which for a large file is minutes of disk reads: the weights are
// repacked (kernels/pack.h) and read into memory before the server says it is ready, and each
// step reports how many bytes of how many it has done.
//
//   LoadOptions o;
//   o.progress = [](const LoadProgress& p) { fmt::print("{} {}/{}\n", p.stage, p.done, p.total); };
//   auto model = LoadModel(path, o);
//   ReadWeights(**model, o.progress);
#pragma once

#include <cstdint>
#include <functional>
#include <string_view>

namespace kinfer::model {

class Model;

struct LoadProgress {
  std::string_view stage;  // "repacking weights", "reading weights"
  int64_t done = 0;        // bytes
  int64_t total = 0;
};
// Called on the loading thread, often (per tensor or per few MiB); keep it cheap.
using LoadProgressFn = std::function<void(const LoadProgress&)>;

// Brings every weight of `model` into memory (the pages of a mapped file are read from disk;
// packed copies are already there), reporting progress, so that the first requests after a load
// do not wait on the disk. The pages stay file-backed: the kernel may drop them under memory
// pressure and read them again.
void ReadWeights(const Model& model, const LoadProgressFn& progress);

}  // namespace kinfer::model
