#include "kernels/moe.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/status.h"
#include "kernels/ops.h"

namespace kinfer::kernels {

void RouteTopK(const float* logits, int64_t E, int64_t k, bool normalize, int32_t* ids,
               float* weights) {
  float mx = logits[0];
  for (int64_t e = 1; e < E; ++e) mx = std::max(mx, logits[e]);
  float sum = 0;
  for (int64_t e = 0; e < E; ++e) sum += std::exp(logits[e] - mx);
  // Selection by the logits (softmax is monotonic): k passes over E, fine for k <= 8 of <= 256.
  for (int64_t j = 0; j < k; ++j) {
    int32_t best = -1;
    for (int64_t e = 0; e < E; ++e) {
      bool taken = false;
      for (int64_t i = 0; i < j; ++i) taken |= ids[i] == e;
      if (taken) continue;
      if (best < 0 || logits[e] > logits[best]) best = static_cast<int32_t>(e);
    }
    ids[j] = best;
    weights[j] = std::exp(logits[best] - mx) / sum;
  }
  if (normalize) {
    float chosen = 0;
    for (int64_t j = 0; j < k; ++j) chosen += weights[j];
    for (int64_t j = 0; j < k; ++j) weights[j] /= chosen;
  }
}

void GroupByExpert(const int32_t* ids, int64_t T, int64_t k, int64_t E, ExpertGroups* g) {
  g->offsets.assign(static_cast<size_t>(E + 1), 0);
  g->slots.resize(static_cast<size_t>(T * k));
  for (int64_t s = 0; s < T * k; ++s) {
    KINFER_CHECK(ids[s] >= 0 && ids[s] < E);
    ++g->offsets[static_cast<size_t>(ids[s]) + 1];
  }
  for (int64_t e = 0; e < E; ++e)
    g->offsets[static_cast<size_t>(e + 1)] += g->offsets[static_cast<size_t>(e)];
  std::vector<int32_t>& next = g->slots;  // filled in slot order: a stable counting sort
  thread_local std::vector<int32_t> cursor;
  cursor.assign(g->offsets.begin(), g->offsets.end() - 1);
  for (int64_t s = 0; s < T * k; ++s) {
    next[static_cast<size_t>(cursor[static_cast<size_t>(ids[s])]++)] = static_cast<int32_t>(s);
  }
}

void MoeFeedForward(const ExpertWeights& w, const float* x, int64_t T, int64_t H,
                    const int32_t* ids, const float* weights, int64_t k, float* out,
                    MoeWorkspace& ws, ThreadPool& pool) {
  const int64_t E = static_cast<int64_t>(w.gate.size());
  GroupByExpert(ids, T, k, E, &ws.groups);
  const size_t slots = static_cast<size_t>(T * k);
  if (ws.slot_out.size() < slots * static_cast<size_t>(H)) ws.slot_out.resize(slots * H);
  for (int64_t e = 0; e < E; ++e) {
    const int32_t begin = ws.groups.offsets[static_cast<size_t>(e)];
    const int64_t n = ws.groups.offsets[static_cast<size_t>(e + 1)] - begin;
    if (n == 0) continue;
    const TensorView& gate = w.gate[static_cast<size_t>(e)];
    const TensorView& up = w.up[static_cast<size_t>(e)];
    const TensorView& down = w.down[static_cast<size_t>(e)];
    const int64_t F = gate.rows();
    const size_t nx = static_cast<size_t>(n * H), nf = static_cast<size_t>(n * F);
    if (ws.x.size() < nx) ws.x.resize(nx);
    if (ws.y.size() < nx) ws.y.resize(nx);
    if (ws.gate.size() < nf) ws.gate.resize(nf);
    if (ws.up.size() < nf) ws.up.resize(nf);
    for (int64_t i = 0; i < n; ++i) {
      const int64_t t = ws.groups.slots[static_cast<size_t>(begin + i)] / k;
      std::memcpy(ws.x.data() + i * H, x + t * H, static_cast<size_t>(H) * 4);
    }
    const MatMulJob gate_up[] = {{&gate, ws.x.data(), ws.gate.data()},
                                 {&up, ws.x.data(), ws.up.data()}};
    MatMulMany(gate_up, n, pool);
    for (int64_t i = 0; i < n; ++i) {
      SiluMul(ws.gate.data() + i * F, ws.up.data() + i * F, F, ws.gate.data() + i * F);
    }
    MatMul(down, ws.gate.data(), n, ws.y.data(), pool);
    for (int64_t i = 0; i < n; ++i) {
      const int64_t s = ws.groups.slots[static_cast<size_t>(begin + i)];
      std::memcpy(ws.slot_out.data() + s * H, ws.y.data() + i * H, static_cast<size_t>(H) * 4);
    }
  }
  for (int64_t t = 0; t < T; ++t) {
    float* o = out + t * H;
    const float* y0 = ws.slot_out.data() + t * k * H;
    const float w0 = weights[t * k];
    for (int64_t i = 0; i < H; ++i) o[i] = w0 * y0[i];
    for (int64_t j = 1; j < k; ++j) {
      const float* yj = ws.slot_out.data() + (t * k + j) * H;
      const float wj = weights[t * k + j];
      for (int64_t i = 0; i < H; ++i) o[i] = std::fma(wj, yj[i], o[i]);
    }
  }
}

}  // namespace kinfer::kernels
