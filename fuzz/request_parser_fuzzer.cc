// Fuzzes request parsing (compare::ParseRequest) and API detection from a
// path (compare::ApiKindFromPath). Input: the request body; its first line
// is also used as a path.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "compare/compare.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view body(reinterpret_cast<const char*>(data), size);
  (void)understudy::compare::ParseRequest(body);
  (void)understudy::compare::ApiKindFromPath(body.substr(0, body.find('\n')));
  return 0;
}
