// The autoscaler's simulation (src/operator/autoscale_sim.h) on the four load profiles, with a
// fast-forwarded clock: writes one CSV per profile (a row per autoscaler step) and prints a JSON
// summary per profile. bench/autoscale_sim.py runs it and draws the plot.
//
//   autoscale_sim --out DIR [--load step|burst|sawtooth|diurnal|all] [--no-drain]
//                 [--cold-start S] [--shutdown-timeout S] [--seed N]
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>

#include <fmt/format.h>

#include "core/json.h"
#include "operator/autoscale_sim.h"

namespace {

using kinfer::op::SimLoad;
using kinfer::op::SimOptions;
using kinfer::op::SimResult;

int Usage() {
  std::fprintf(stderr,
               "usage: autoscale_sim --out DIR [--load step|burst|sawtooth|diurnal|all] "
               "[--no-drain] [--cold-start SECONDS] [--shutdown-timeout SECONDS] [--seed N]\n");
  return 2;
}

kinfer::Json Summary(const SimResult& r, const SimOptions& o) {
  int ups = 0, downs = 0;
  for (const auto& e : r.scale_events) (e.to > e.from ? ups : downs)++;
  kinfer::Json j = {{"load", r.load},
                    {"arrived", r.arrived},
                    {"completed", r.completed},
                    {"dropped_hold_timeout", r.dropped_hold_timeout},
                    {"dropped_queue_full", r.dropped_queue_full},
                    {"cut_by_scale_down", r.cut},
                    {"scale_ups", ups},
                    {"scale_downs", downs},
                    {"flaps_60s", r.flaps(60)},
                    {"max_replicas", r.max_spec},
                    {"wait_p50_s", r.wait_quantile(0.5)},
                    {"wait_p99_s", r.wait_quantile(0.99)},
                    {"wait_max_s", r.wait_quantile(1.0)},
                    {"cold_start_s", o.cold_start_s},
                    {"drain", o.drain},
                    {"shutdown_timeout_s", o.shutdown_timeout_s}};
  if (r.load == "step") {
    // The step up at 300 s to 8 requests/s: 32 in flight, 6 replicas at 6 per replica.
    j["step_time_to_spec_6_s"] = -1;
    for (const auto& p : r.series) {
      if (p.t >= 300 && p.spec >= 6) {
        j["step_time_to_spec_6_s"] = p.t - 300;
        break;
      }
    }
    j["step_time_to_ready_6_s"] = r.time_to_ready(300, 6);
  }
  double zero_at = -1;
  for (const auto& p : r.series) {
    if (p.spec == 0) {
      zero_at = p.t;
      break;
    }
  }
  j["first_zero_at_s"] = zero_at;
  return j;
}

}  // namespace

int main(int argc, char** argv) {
  std::string out, which = "all";
  SimOptions options;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    auto value = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    if (a == "--out") {
      const char* v = value();
      if (!v) return Usage();
      out = v;
    } else if (a == "--load") {
      const char* v = value();
      if (!v) return Usage();
      which = v;
    } else if (a == "--no-drain") {
      options.drain = false;
    } else if (a == "--cold-start") {
      const char* v = value();
      if (!v) return Usage();
      options.cold_start_s = std::atof(v);
    } else if (a == "--shutdown-timeout") {
      const char* v = value();
      if (!v) return Usage();
      options.shutdown_timeout_s = std::atof(v);
    } else if (a == "--seed") {
      const char* v = value();
      if (!v) return Usage();
      options.seed = std::strtoull(v, nullptr, 10);
    } else {
      return Usage();
    }
  }
  if (out.empty()) return Usage();
  std::filesystem::create_directories(out);
  bool any = false;
  for (const SimLoad& load : kinfer::op::AllLoads()) {
    if (which != "all" && which != load.name) continue;
    any = true;
    SimResult r = kinfer::op::RunSimulation(options, load);
    const std::string path = fmt::format("{}/{}.csv", out, load.name);
    std::FILE* f = std::fopen(path.c_str(), "w");
    if (!f) {
      std::fprintf(stderr, "autoscale_sim: cannot write %s\n", path.c_str());
      return 1;
    }
    std::fprintf(f, "t,spec,ready,starting,terminating,rate,in_flight,held,mode,reason\n");
    for (const auto& p : r.series) {
      std::fprintf(f, "%.1f,%d,%d,%d,%d,%.3f,%.0f,%.0f,%s,%s\n", p.t, p.spec, p.ready, p.starting,
                   p.terminating, p.rate, p.in_flight, p.held, p.mode.c_str(), p.reason.c_str());
    }
    std::fclose(f);
    std::printf("%s\n", Summary(r, options).dump().c_str());
  }
  if (!any) return Usage();
  return 0;
}
