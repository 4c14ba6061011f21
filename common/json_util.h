// sidecar/admin/json_util.h (internal to sidecar/admin)
// Shared JSON helpers for the admin server and client: reading numbers
// and strings written by the proto JSON mapping, and verdict names.
#ifndef UNDERSTUDY_SIDECAR_ADMIN_JSON_UTIL_H_
#define UNDERSTUDY_SIDECAR_ADMIN_JSON_UTIL_H_

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "common/proto_json.h"  // ProtoToJson, the wire mapping
#include "understudy/v1/compare.pb.h"

namespace understudy::admin {

// DumpJson serialises without throwing (invalid UTF-8 is replaced).
std::string DumpJson(const nlohmann::json& j, int indent = -1);

inline constexpr std::string_view kVerdictNames =
    "equivalent, minor_diff, major_diff, candidate_error, production_error, both_error";

// JsonInt64 reads an int64 that the proto JSON mapping wrote as a string
// (or a number); `def` when absent or malformed.
int64_t JsonInt64(const nlohmann::json& object, std::string_view key, int64_t def = 0);
// JsonDouble reads a number; `def` when absent or not a number.
double JsonDouble(const nlohmann::json& object, std::string_view key, double def = 0);
// JsonString reads a string; `def` when absent or not a string.
std::string JsonString(const nlohmann::json& object, std::string_view key, std::string def = "");

}  // namespace understudy::admin

#endif  // UNDERSTUDY_SIDECAR_ADMIN_JSON_UTIL_H_
