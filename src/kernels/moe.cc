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
  // Each expert's rows of x, its gate/up and its output live at the expert's slot offset, so
  // experts with as many tokens can share one parallel region (MatMulMany): two experts' gate
  // and up, or four experts' down, at a time. A decode step of top-8 routing then meets the
  // pool 6 times a layer instead of 16. MatMulMany computes each output as MatMul would.
  const int64_t F = w.gate.empty() ? 0 : w.gate[0].rows();
  if (ws.x.size() < slots * static_cast<size_t>(H)) ws.x.resize(slots * H);
  if (ws.gate.size() < slots * static_cast<size_t>(F)) ws.gate.resize(slots * F);
  if (ws.up.size() < slots * static_cast<size_t>(F)) ws.up.resize(slots * F);
  thread_local std::vector<int32_t> active;
  active.clear();
  for (int64_t e = 0; e < E; ++e) {
    if (ws.groups.offsets[static_cast<size_t>(e + 1)] > ws.groups.offsets[static_cast<size_t>(e)]) {
      active.push_back(static_cast<int32_t>(e));
    }
  }
  auto begin_of = [&](int32_t e) { return ws.groups.offsets[static_cast<size_t>(e)]; };
  auto count_of = [&](int32_t e) {
    return static_cast<int64_t>(ws.groups.offsets[static_cast<size_t>(e) + 1] - begin_of(e));
  };
  std::stable_sort(active.begin(), active.end(),
                   [&](int32_t a, int32_t b) { return count_of(a) < count_of(b); });
  for (int32_t e : active) {
    for (int64_t i = 0; i < count_of(e); ++i) {
      const int64_t t = ws.groups.slots[static_cast<size_t>(begin_of(e) + i)] / k;
      std::memcpy(ws.x.data() + (begin_of(e) + i) * H, x + t * H, static_cast<size_t>(H) * 4);
    }
  }
  // Runs of experts with equal token counts, `per` experts a region.
  auto for_runs = [&](size_t per, auto&& run) {
    for (size_t i = 0; i < active.size();) {
      size_t j = i + 1;
      while (j < active.size() && j - i < per && count_of(active[j]) == count_of(active[i])) ++j;
      run(std::span<const int32_t>(active.data() + i, j - i), count_of(active[i]));
      i = j;
    }
  };
  for_runs(2, [&](std::span<const int32_t> es, int64_t n) {
    MatMulJob jobs[4];
    size_t nj = 0;
    for (int32_t e : es) {
      const float* xe = ws.x.data() + begin_of(e) * H;
      jobs[nj++] = {&w.gate[static_cast<size_t>(e)], xe, ws.gate.data() + begin_of(e) * F};
      jobs[nj++] = {&w.up[static_cast<size_t>(e)], xe, ws.up.data() + begin_of(e) * F};
    }
    MatMulMany(std::span<const MatMulJob>(jobs, nj), n, pool);
  });
  for (int32_t e : active) {
    for (int64_t i = 0; i < count_of(e); ++i) {
      float* g = ws.gate.data() + (begin_of(e) + i) * F;
      SiluMul(g, ws.up.data() + (begin_of(e) + i) * F, F, g);
    }
  }
  // Down projections write into x's rows (no longer needed), then each row goes to its slot.
  for_runs(4, [&](std::span<const int32_t> es, int64_t n) {
    MatMulJob jobs[4];
    size_t nj = 0;
    for (int32_t e : es) {
      jobs[nj++] = {&w.down[static_cast<size_t>(e)], ws.gate.data() + begin_of(e) * F,
                    ws.x.data() + begin_of(e) * H};
    }
    MatMulMany(std::span<const MatMulJob>(jobs, nj), n, pool);
  });
  for (int32_t e : active) {
    for (int64_t i = 0; i < count_of(e); ++i) {
      const int64_t s = ws.groups.slots[static_cast<size_t>(begin_of(e) + i)];
      std::memcpy(ws.slot_out.data() + s * H, ws.x.data() + (begin_of(e) + i) * H,
                  static_cast<size_t>(H) * 4);
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
