// Fuzzes the feedback JSON parser (sidecar/feedback.h), which reads bodies
// posted by any client through Envoy and the admin API.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "sidecar/feedback.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view body(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<understudy::v1::Feedback> f = understudy::sidecar::ParseFeedbackJson(body);
  // A parsed score is always in [0, 1].
  if (f.ok() && !(f->score() >= 0 && f->score() <= 1)) __builtin_trap();
  return 0;
}
