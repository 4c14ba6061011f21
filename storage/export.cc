// ExportJsonl: one protobuf-JSON object per line.
#include <google/protobuf/util/json_util.h>

#include "absl/strings/str_cat.h"
#include "storage/store.h"

namespace understudy::storage {

absl::StatusOr<int64_t> ExportJsonl(Store& store, RecordKind kind, absl::Time since,
                                    std::ostream& out) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = false;
  options.preserve_proto_field_names = false;  // lowerCamelCase, the JSON mapping's default
  int64_t count = 0;
  absl::Status error;
  std::string line;
  absl::Status visit = store.Visit(kind, since, [&](const google::protobuf::Message& m) {
    line.clear();
    auto s = google::protobuf::util::MessageToJsonString(m, &line, options);
    if (!s.ok()) {
      error = absl::DataLossError(absl::StrCat("storage: cannot print record as JSON: ", s.ToString()));
      return false;
    }
    out << line << '\n';
    if (!out) {
      error = absl::UnavailableError("storage: export output failed (disk full or closed pipe?)");
      return false;
    }
    ++count;
    return true;
  });
  if (!visit.ok()) return visit;
  if (!error.ok()) return error;
  out.flush();
  return count;
}

}  // namespace understudy::storage
