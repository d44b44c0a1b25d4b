#include "core/progress_log.h"

#include <fmt/format.h>

#include "core/log.h"
#include "core/units.h"

namespace kinfer {

ProgressLog::ProgressLog(std::string what, double interval_seconds)
    : what_(std::move(what)),
      interval_(std::chrono::duration_cast<Clock::duration>(
          std::chrono::duration<double>(interval_seconds))) {}

std::string ProgressLog::Format(std::string_view what, std::string_view stage, int64_t done,
                                int64_t total, double seconds) {
  const double pct =
      total > 0 ? 100.0 * static_cast<double>(done) / static_cast<double>(total) : 100.0;
  return fmt::format("{}: {} {:.0f}% ({} of {}, {:.1f} s)", what, stage, pct, FormatBytes(done),
                     FormatBytes(total), seconds);
}

void ProgressLog::Update(std::string_view stage, int64_t done, int64_t total) {
  const Clock::time_point now = Clock::now();
  if (stage != stage_) {
    stage_ = std::string(stage);
    stage_start_ = last_ = now;
    logged_stage_ = false;
  }
  const bool finished = done >= total;
  if ((now - last_ >= interval_ && !finished) || (finished && logged_stage_) ||
      (finished && now - stage_start_ >= interval_)) {
    KINFER_LOG_INFO("{}", Format(what_, stage_, done, total,
                                 std::chrono::duration<double>(now - stage_start_).count()));
    last_ = now;
    logged_stage_ = !finished;
    ++lines_;
    if (finished) stage_.clear();
  }
}

}  // namespace kinfer
