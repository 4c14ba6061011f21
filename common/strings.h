// common/strings.h
// Bridges std::string_view and Debian's absl::string_view, which is a
// separate type in absl 20220623 (absl::StrCat does not take std::string_view).
//
// Example (given std::string_view key):
//   absl::string_view for_absl = Av(key);  // e.g. for absl::StrCat
//   std::string_view back = Sv(for_absl);
#ifndef UNDERSTUDY_COMMON_STRINGS_H_
#define UNDERSTUDY_COMMON_STRINGS_H_

#include <string_view>

#include "absl/strings/string_view.h"

namespace understudy {

// Av views a std::string_view as an absl::string_view (no copy).
inline absl::string_view Av(std::string_view s) { return absl::string_view(s.data(), s.size()); }
// Sv views an absl::string_view as a std::string_view (no copy).
inline std::string_view Sv(absl::string_view s) { return std::string_view(s.data(), s.size()); }

}  // namespace understudy

#endif  // UNDERSTUDY_COMMON_STRINGS_H_
