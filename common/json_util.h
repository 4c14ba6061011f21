// common/json_util.h
// JSON helpers (nlohmann) shared by the admin server, the feedback parser and
// the CLI: dumping without throwing, reading request bodies with errors that
// name the field, and reading numbers and strings that the proto JSON
// mapping wrote.
#ifndef UNDERSTUDY_COMMON_JSON_UTIL_H_
#define UNDERSTUDY_COMMON_JSON_UTIL_H_

#include <nlohmann/json.hpp>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/proto_json.h"  // ProtoToJson, the wire mapping

namespace understudy {

// DumpJson serialises without throwing (invalid UTF-8 is replaced).
std::string DumpJson(const nlohmann::json& j, int indent = -1);

// ParseJsonObject parses a request body that must be a JSON object; an
// empty or blank body counts as {}. InvalidArgument ("body: invalid JSON:
// ...", "body: must be a JSON object, got array") otherwise.
[[nodiscard]] absl::StatusOr<nlohmann::json> ParseJsonObject(std::string_view body);
// CheckJsonFields fails with InvalidArgument naming the first key of `body`
// not in `allowed` ("colour: unknown field (allowed: a, b)").
[[nodiscard]] absl::Status CheckJsonFields(const nlohmann::json& body,
                                           std::initializer_list<std::string_view> allowed);
// JsonOptionalString returns the string at `key`, `def` when absent or null;
// InvalidArgument when it is not a string.
[[nodiscard]] absl::StatusOr<std::string> JsonOptionalString(const nlohmann::json& body,
                                                             const char* key, std::string def);
// JsonRequiredString is JsonOptionalString for a key that must be present
// and not blank ("reason: required", "reason: must not be empty").
[[nodiscard]] absl::StatusOr<std::string> JsonRequiredString(const nlohmann::json& body,
                                                             const char* key);

// JsonInt64 reads an int64 that the proto JSON mapping wrote as a string
// (or a number); `def` when absent, malformed or out of int64's range.
int64_t JsonInt64(const nlohmann::json& object, std::string_view key, int64_t def = 0);
// JsonDouble reads a number; `def` when absent or not a number.
double JsonDouble(const nlohmann::json& object, std::string_view key, double def = 0);
// JsonString reads a string; `def` when absent or not a string.
std::string JsonString(const nlohmann::json& object, std::string_view key, std::string def = "");

}  // namespace understudy

#endif  // UNDERSTUDY_COMMON_JSON_UTIL_H_
