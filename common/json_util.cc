#include "sidecar/admin/json_util.h"

#include <array>
#include <cstdlib>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/strings.h"

namespace understudy::admin {

std::string DumpJson(const nlohmann::json& j, int indent) {
  return j.dump(indent, ' ', /*ensure_ascii=*/false, nlohmann::json::error_handler_t::replace);
}


int64_t JsonInt64(const nlohmann::json& object, std::string_view key, int64_t def) {
  if (!object.is_object()) return def;
  auto it = object.find(std::string(key));
  if (it == object.end()) return def;
  if (it->is_number_integer()) return it->get<int64_t>();
  if (it->is_number()) return static_cast<int64_t>(it->get<double>());
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

}  // namespace understudy::admin
