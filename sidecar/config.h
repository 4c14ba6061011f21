// sidecar/config.h
// The sidecar's YAML config, parsed once into typed structs. Every error
// names its key path ("extproc.max_concurrent_streams: must be in 1..1000000").
//
// Example:
//   ASSIGN_OR_RETURN(SidecarConfig config, LoadSidecarConfig("understudy.yaml"));
#ifndef UNDERSTUDY_SIDECAR_CONFIG_H_
#define UNDERSTUDY_SIDECAR_CONFIG_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/config_node.h"
#include "sidecar/ext_proc_service.h"
#include "sidecar/stream_session.h"

namespace understudy::sidecar {

struct RoutingConfig {
  std::string sticky_header;      // empty → x-request-id
  std::string salt;               // reshuffles users between rollouts
  int32_t weight_basis_points = 0;
};

struct CaptureConfig {
  int64_t max_body_bytes = 1 << 20;
  int64_t queue_capacity = 4096;
  int workers = 1;
};

struct SidecarConfig {
  ExtProcServerOptions extproc;
  absl::Duration drain_timeout = absl::Seconds(10);
  std::string admin_listen = "127.0.0.1:9901";
  RoutingConfig routing;
  CaptureConfig capture;
  SessionOptions session;         // derived from routing + capture + extproc
};

// ParseSidecarConfig validates the whole document.
[[nodiscard]] absl::StatusOr<SidecarConfig> ParseSidecarConfig(const ConfigNode& root);
// LoadSidecarConfig reads and parses a file; errors name the file.
[[nodiscard]] absl::StatusOr<SidecarConfig> LoadSidecarConfig(const std::string& path);

}  // namespace understudy::sidecar

#endif  // UNDERSTUDY_SIDECAR_CONFIG_H_
