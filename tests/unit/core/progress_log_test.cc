// ProgressLog: what a progress line says, and that quick work logs nothing while slow work logs
// during the stage and at its end.
#include "core/progress_log.h"

#include <gtest/gtest.h>

#include <thread>

namespace kinfer {
namespace {

TEST(ProgressLog, LineSaysStagePercentBytesAndTime) {
  EXPECT_EQ(ProgressLog::Format("loading m.gguf", "reading weights", 512 << 20, 2048LL << 20, 3.14),
            "loading m.gguf: reading weights 25% (512.0 MiB of 2.0 GiB, 3.1 s)");
  EXPECT_EQ(ProgressLog::Format("x", "y", 0, 0, 0), "x: y 100% (0 B of 0 B, 0.0 s)");
}

TEST(ProgressLog, QuickWorkLogsNothing) {
  ProgressLog log("loading", 10.0);
  for (int i = 0; i <= 100; ++i) log.Update("reading weights", i, 100);
  EXPECT_EQ(log.lines(), 0);
}

TEST(ProgressLog, SlowWorkLogsAlongTheWayAndAtTheEnd) {
  ProgressLog log("loading", 0.01);
  for (int i = 0; i < 5; ++i) {
    log.Update("repacking weights", i, 5);
    std::this_thread::sleep_for(std::chrono::milliseconds(15));
  }
  const int during = log.lines();
  EXPECT_GE(during, 3);
  log.Update("repacking weights", 5, 5);
  EXPECT_EQ(log.lines(), during + 1);    // the final 100% line
  log.Update("reading weights", 0, 10);  // a new stage starts quiet
  EXPECT_EQ(log.lines(), during + 1);
}

}  // namespace
}  // namespace kinfer
