// Log lines for long work (a model load, a download): "loading: reading weights 45% (1.2 GiB of
// 2.7 GiB, 3.1 s)", at most one every `interval`, and the last one of each stage that logged
// any. Work that finishes within the interval logs nothing.
//
//   ProgressLog log("loading");
//   for (...) log.Update("reading weights", done, total);
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace kinfer {

class ProgressLog {
 public:
  explicit ProgressLog(std::string what, double interval_seconds = 2.0);
  // One thread updates; a new `stage` starts a new line of progress.
  void Update(std::string_view stage, int64_t done, int64_t total);
  // Lines logged so far (tests).
  int lines() const { return lines_; }

  // How a line reads.
  static std::string Format(std::string_view what, std::string_view stage, int64_t done,
                            int64_t total, double seconds);

 private:
  using Clock = std::chrono::steady_clock;
  std::string what_;
  Clock::duration interval_;
  std::string stage_;
  Clock::time_point stage_start_, last_;
  bool logged_stage_ = false;
  int lines_ = 0;
};

}  // namespace kinfer
