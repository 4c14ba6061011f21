#include "common/json_util.h"

#include <algorithm>
#include <array>
#include <cstdlib>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "common/status_macros.h"
#include "common/strings.h"

namespace understudy {

std::string DumpJson(const nlohmann::json& j, int indent) {
  return j.dump(indent, ' ', /*ensure_ascii=*/false, nlohmann::json::error_handler_t::replace);
}


int64_t JsonInt64(const nlohmann::json& object, std::string_view key, int64_t def) {
  if (!object.is_object()) return def;
  auto it = object.find(std::string(key));
  if (it == object.end()) return def;
  if (it->is_number_integer()) return it->get<int64_t>();
  if (it->is_number()) {
    // Out of int64's range (or not finite) the cast would be undefined.
    const double d = it->get<double>();
    if (!(d >= -9.2e18 && d <= 9.2e18)) return def;
    return static_cast<int64_t>(d);
  }
  if (it->is_string()) {
    int64_t v = 0;
    if (absl::SimpleAtoi(it->get_ref<const std::string&>(), &v)) return v;
  }
  return def;
}

double JsonDouble(const nlohmann::json& object, std::string_view key, double def) {
  if (!object.is_object()) return def;
  auto it = object.find(std::string(key));
  if (it == object.end()) return def;
  if (it->is_number()) return it->get<double>();
  // The JSON mapping writes NaN and infinities as strings.
  if (it->is_string()) {
    double v = 0;
    if (absl::SimpleAtod(it->get_ref<const std::string&>(), &v)) return v;
  }
  return def;
}

std::string JsonString(const nlohmann::json& object, std::string_view key, std::string def) {
  if (!object.is_object()) return def;
  auto it = object.find(std::string(key));
  if (it == object.end() || !it->is_string()) return def;
  return it->get<std::string>();
}

absl::StatusOr<nlohmann::json> ParseJsonObject(std::string_view body) {
  if (absl::StripAsciiWhitespace(absl::string_view(body.data(), body.size())).empty()) return nlohmann::json::object();
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(body.begin(), body.end());
  } catch (const nlohmann::json::exception& e) {
    // Not only parse_error: a number too large for a double is out_of_range
    // (406), and an uncaught one ended the process (found by
    // fuzz/feedback_fuzzer with {"score":1e999}).
    // what() is "[json.exception.parse_error.101] parse error at line 1, ...".
    std::string what = e.what();
    size_t close = what.find("] ");
    if (close != std::string::npos) what = what.substr(close + 2);
    return absl::InvalidArgumentError(absl::StrCat("body: invalid JSON: ", what));
  }
  if (!j.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat("body: must be a JSON object, got ", j.type_name()));
  }
  return j;
}

absl::Status CheckJsonFields(const nlohmann::json& body, std::initializer_list<std::string_view> allowed) {
  for (const auto& [key, value] : body.items()) {
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat(key, ": unknown field (allowed: ",
                       absl::StrJoin(allowed.begin(), allowed.end(), ", ",
                                     [](std::string* out, std::string_view s) { out->append(s); }),
                       ")"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> JsonOptionalString(const nlohmann::json& body, const char* key,
                                               std::string def) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return def;
  if (!it->is_string()) {
    return absl::InvalidArgumentError(
        absl::StrCat(key, ": must be a string, got ", it->type_name()));
  }
  return it->get<std::string>();
}

absl::StatusOr<std::string> JsonRequiredString(const nlohmann::json& body, const char* key) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) {
    return absl::InvalidArgumentError(absl::StrCat(key, ": required"));
  }
  ASSIGN_OR_RETURN(std::string value, JsonOptionalString(body, key, ""));
  if (absl::StripAsciiWhitespace(value).empty()) {
    return absl::InvalidArgumentError(absl::StrCat(key, ": must not be empty"));
  }
  return value;
}


}  // namespace understudy
