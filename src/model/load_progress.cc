#include "model/load_progress.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <vector>

#include "model/model.h"

namespace kinfer::model {

void ReadWeights(const Model& model, const LoadProgressFn& progress) {
  const ModelWeights& w = model.weights();
  std::vector<const TensorView*> tensors = {&w.token_embedding};
  if (w.lm_head.data && w.lm_head.data != w.token_embedding.data) tensors.push_back(&w.lm_head);
  for (const LayerWeights& l : w.layers) {
    for (const TensorView* t : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down}) {
      tensors.push_back(t);
    }
  }
  int64_t total = 0;
  for (const TensorView* t : tensors) total += static_cast<int64_t>(t->nbytes);
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  constexpr size_t kChunk = size_t{16} << 20;  // report every 16 MiB
  int64_t done = 0;
  volatile uint8_t sink = 0;
  if (progress) progress({"reading weights", 0, total});
  for (const TensorView* t : tensors) {
    const auto* p = static_cast<const uint8_t*>(t->data);
    if (!p) continue;
    // Ask for read-ahead of the whole tensor, then fault it in page by page.
    const uintptr_t lo = reinterpret_cast<uintptr_t>(p) / page * page;
    ::madvise(reinterpret_cast<void*>(lo), reinterpret_cast<uintptr_t>(p) - lo + t->nbytes,
              MADV_WILLNEED);
    for (size_t off = 0; off < t->nbytes; off += kChunk) {
      const size_t end = std::min(t->nbytes, off + kChunk);
      uint8_t acc = 0;
      for (size_t q = off; q < end; q += page) acc ^= p[q];
      sink = sink ^ acc;
      done += static_cast<int64_t>(end - off);
      if (progress) progress({"reading weights", done, total});
    }
  }
  (void)sink;
}

}  // namespace kinfer::model
