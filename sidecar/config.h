// sidecar/config.h
// The sidecar's YAML config, parsed once into typed structs. Every error
// names its key path ("extproc.max_concurrent_streams: must be in 1..1000000").
//
// Example:
//   ASSIGN_OR_RETURN(SidecarConfig config, LoadSidecarConfig("understudy.yaml"));
#ifndef UNDERSTUDY_SIDECAR_CONFIG_H_
#define UNDERSTUDY_SIDECAR_CONFIG_H_

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/config_node.h"
#include "coordination/fleet.h"
#include "compare/compare.h"
#include "drift/drift.h"
#include "drift/revisit.h"
#include "rollout/rollout.h"
#include "sidecar/admin/admin.h"
#include "sidecar/ext_proc_service.h"
#include "shadow/eval.h"
#include "shadow/shadow.h"
#include "sidecar/stream_session.h"
#include "sidecar/traffic_scope.h"
#include "telemetry/tracer.h"
#include "storage/store.h"

namespace understudy::sidecar {

// The candidate's share of traffic is not configured here: the rollout
// plan (`rollout.stages`) and the operator's commands set it.
struct RoutingConfig {
  std::string sticky_header;      // empty → x-request-id
  std::string salt;               // reshuffles users between rollouts
  // A candidate attempt that fails before the client saw a byte is answered
  // by production (Envoy's retry, restored by the sidecar; docs/extproc.md
  // "Fallback to production"); false: the client gets the candidate's error.
  bool fallback = true;
};

struct CaptureConfig {
  int64_t max_body_bytes = 1 << 20;
  int64_t queue_capacity = 4096;
  int workers = 1;
  // Coded bodies (gzip, br, zstd, deflate) are decoded, off the production
  // path, within these limits (decode_max_bytes, decode_max_ratio); the
  // shadow client decodes with the same.
  encoding::DecodeLimits decode_limits;
};

struct FeedbackConfig {
  // Requests to this path (POST, JSON {"request_id","score"}) are answered
  // by the sidecar with 204 and never reach a model. Empty disables it.
  std::string path = "/understudy/feedback";
  int64_t max_body_bytes = 16 << 10;
  // At most this many feedback POSTs per client (the routing.sticky_header
  // value) per minute on `path`; more get 429. 0 = no limit.
  int64_t max_per_client_per_minute = 60;
  // Signed feedback tokens (sidecar/feedback.h): with a key, every answer
  // carries x-understudy-feedback-token and feedback on `path` must bring
  // it back (403 otherwise). The admin API's POST /v1/feedback, behind the
  // admin token, needs none. Never log the key.
  std::string signing_key;
  std::string signing_key_source;  // "env NAME" or "file PATH"
  // A second key whose tokens are accepted, never signed with: for rotating
  // the key across a fleet (docs/operations.md, "Rotating the key").
  std::string verify_key;
  std::string verify_key_source;
  absl::Duration token_ttl = absl::Hours(24);
};

struct SidecarConfig {
  ExtProcServerOptions extproc;
  absl::Duration drain_timeout = absl::Seconds(10);
  admin::AdminConfig admin;
  RoutingConfig routing;
  CaptureConfig capture;
  FeedbackConfig feedback;
  compare::CompareOptions compare;
  rollout::RolloutConfig rollout;
  storage::StorageConfig storage;
  shadow::ShadowConfig shadow;        // `upstreams:` and `shadow:`
  std::shared_ptr<const TrafficScope> scope;  // `routes:` (sidecar/traffic_scope.h)
  // What the config means that the user may not expect (e.g. the default
  // plan's shadow stage skipped because shadowing is off); serve and
  // check-config print them.
  std::vector<std::string> warnings;
  telemetry::TelemetryConfig telemetry;
  drift::DriftConfig drift;           // `drift:` (docs/drift.md)
  shadow::EvalConfig eval;            // `eval:` the scheduled golden-set eval (docs/drift.md)
  drift::RevisitConfig revisit;       // `revisit:` trigger thresholds (docs/drift.md)
  // `coordination:` (docs/fleet.md): one rollout across many sidecars;
  // nullopt → this sidecar runs its rollout alone.
  std::optional<coordination::FleetOptions> fleet;
  SessionOptions session;         // derived from routing + capture + extproc + feedback
};

// ParseSidecarConfig validates the whole document. A plan with a shadow
// stage (percent 0) while shadowing is off is refused when the user wrote
// the plan (the error names rollout.stages[i]); the default plan drops its
// shadow stage and says so in `warnings`.
[[nodiscard]] absl::StatusOr<SidecarConfig> ParseSidecarConfig(const ConfigNode& root);
// LoadSidecarConfig reads and parses a file; errors name the file.
[[nodiscard]] absl::StatusOr<SidecarConfig> LoadSidecarConfig(const std::string& path);

}  // namespace understudy::sidecar

#endif  // UNDERSTUDY_SIDECAR_CONFIG_H_
