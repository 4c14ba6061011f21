#include "sidecar/admin/json_util.h"

#include <google/protobuf/util/json_util.h>

#include <array>
#include <cstdlib>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/strings.h"

namespace understudy::admin {

absl::StatusOr<nlohmann::json> ProtoToJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = false;
  options.always_print_primitive_fields = true;
  options.preserve_proto_field_names = true;
  std::string text;
  auto status = google::protobuf::util::MessageToJsonString(message, &text, options);
  if (!status.ok()) {
    return absl::InternalError(
        absl::StrCat("cannot render ", message.GetTypeName(), " as JSON: ", status.ToString()));
  }
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    return absl::InternalError(
        absl::StrCat("protobuf produced unparseable JSON for ", message.GetTypeName()));
  }
  return j;
}

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
