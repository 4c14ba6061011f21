// common/proto_json.h: protobuf messages as nlohmann::json, in the one
// mapping Understudy's JSON outputs share (the admin API and the report):
// proto field names (snake_case), every primitive field printed, enums by
// name, int64 as strings. (`understudy export` writes the protobuf JSON
// default instead, for tools that read JSONL records.)
#ifndef UNDERSTUDY_COMMON_PROTO_JSON_H_
#define UNDERSTUDY_COMMON_PROTO_JSON_H_

#include <nlohmann/json.hpp>

#include "absl/status/statusor.h"
#include "google/protobuf/message.h"

namespace understudy {

// ProtoToJson renders `message`; Internal if protobuf cannot print it.
[[nodiscard]] absl::StatusOr<nlohmann::json> ProtoToJson(const google::protobuf::Message& message);

}  // namespace understudy

#endif  // UNDERSTUDY_COMMON_PROTO_JSON_H_
