// tests/common/test_util.h
// Status matchers, after leveldb's testutil.h: EXPECT_OK / ASSERT_OK work on
// absl::Status and absl::StatusOr<T>.
#ifndef UNDERSTUDY_TESTS_COMMON_TEST_UTIL_H_
#define UNDERSTUDY_TESTS_COMMON_TEST_UTIL_H_

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace understudy::testing {

inline const absl::Status& GetStatus(const absl::Status& s) { return s; }
template <typename T>
const absl::Status& GetStatus(const absl::StatusOr<T>& s) {
  return s.status();
}

MATCHER(IsOk, "is OK") {
  const absl::Status& s = ::understudy::testing::GetStatus(arg);
  if (!s.ok()) *result_listener << "status is " << s.ToString();
  return s.ok();
}

// StatusIs(code, substring) matches a failed status with that code whose
// message contains substring.
MATCHER_P2(StatusIs, code, substring, "") {
  const absl::Status& s = ::understudy::testing::GetStatus(arg);
  *result_listener << "status is " << s.ToString();
  return s.code() == code &&
         std::string(s.message()).find(substring) != std::string::npos;
}

}  // namespace understudy::testing

#define EXPECT_OK(expr) EXPECT_THAT((expr), ::understudy::testing::IsOk())
#define ASSERT_OK(expr) ASSERT_THAT((expr), ::understudy::testing::IsOk())

#endif  // UNDERSTUDY_TESTS_COMMON_TEST_UTIL_H_
