// common/status_macros.h
// RETURN_IF_ERROR and ASSIGN_OR_RETURN for absl::Status / absl::StatusOr.
// Debian's absl 20220623 has neither; rename to the ABSL_ versions when absl
// is upgraded.
//
// Example (given absl::Status written, absl::StatusOr<int> parsed):
//   RETURN_IF_ERROR(written);        // returns `written` from the caller if not OK
//   ASSIGN_OR_RETURN(int port, std::move(parsed));  // declares port, or returns
#ifndef UNDERSTUDY_COMMON_STATUS_MACROS_H_
#define UNDERSTUDY_COMMON_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define US_STATUS_CONCAT_INNER_(a, b) a##b
#define US_STATUS_CONCAT_(a, b) US_STATUS_CONCAT_INNER_(a, b)

#define RETURN_IF_ERROR(expr)                        \
  do {                                               \
    ::absl::Status us_status_ = (expr);              \
    if (!us_status_.ok()) return us_status_;         \
  } while (0)

#define ASSIGN_OR_RETURN(lhs, rexpr) \
  US_ASSIGN_OR_RETURN_IMPL_(US_STATUS_CONCAT_(us_statusor_, __LINE__), lhs, rexpr)

#define US_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                              \
  if (!statusor.ok()) return statusor.status();         \
  lhs = std::move(statusor).value()

#endif  // UNDERSTUDY_COMMON_STATUS_MACROS_H_
