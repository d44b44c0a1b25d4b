// Status, Result and the error macros.
#include "core/status.h"

#include <gtest/gtest.h>

namespace kinfer {
namespace {

Result<int> ParsePositive(int v) {
  if (v <= 0) return InvalidArgumentError("value {} is not positive", v);
  return v;
}

Result<int> Doubled(int v) {
  KINFER_ASSIGN_OR_RETURN(int x, ParsePositive(v));
  return 2 * x;
}

Status Check(int v) {
  KINFER_RETURN_IF_ERROR(ParsePositive(v));
  return Status::Ok();
}

TEST(Status, ResultCarriesValueOrError) {
  EXPECT_EQ(*Doubled(4), 8);
  Result<int> bad = Doubled(-1);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.status().message(), "value -1 is not positive");
  EXPECT_EQ(bad.status().ToString(), "INVALID_ARGUMENT: value -1 is not positive");
}

TEST(Status, ReturnIfErrorPropagatesAndPrefixAddsContext) {
  EXPECT_TRUE(Check(3).ok());
  Status s = Check(0).WithPrefix("config.json");
  EXPECT_EQ(s.message(), "config.json: value 0 is not positive");
}

TEST(Status, ResultHoldsMoveOnlyValues) {
  Result<std::unique_ptr<int>> r = std::make_unique<int>(7);
  ASSERT_TRUE(r.ok());
  std::unique_ptr<int> p = std::move(r).value();
  EXPECT_EQ(*p, 7);
}

}  // namespace
}  // namespace kinfer
