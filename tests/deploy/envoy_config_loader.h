// tests/deploy/envoy_config_loader.h
// Reads an Envoy v3 bootstrap (the examples/envoy/*.yaml files) and returns
// what the Envoy-faithful driver needs to play traffic exactly as that
// config would: the ext_proc filters in http_filters order as
// envoy_driver::FilterConfig, the header the candidate route matches, the
// clusters of the routes and the feedback path. It checks the parts it reads
// as strictly as Envoy would (unknown ext_proc fields, enum names, proto-JSON
// durations such as "0.2s", HTTP/2 on the ext_proc cluster, router last,
// routes that can never match), and every error names the file and key path:
//   "envoy.yaml: static_resources.listeners[0]...http_filters[0].typed_config
//    .processing_mode.request_body_mode: unknown BodySendMode \"STREAMD\"".
//
// It also reads fallback to production (docs/extproc.md §9): an aggregate
// cluster (cluster_type envoy.clusters.aggregate) on the candidate route,
// its upstream http_filters (ext_proc filters become the chain's
// candidate_upstream_filters; upstream_codec must be last), the route's
// retry_policy (retry_on tokens from Envoy's documented list, num_retries,
// retriable_status_codes, retry_priority previous_priorities) and the
// virtual host's include_request_attempt_count, into chain.candidate_fallback.
//
// Example:
//   ASSIGN_OR_RETURN(EnvoyExample ex, LoadEnvoyConfig("examples/envoy/envoy.yaml"));
//   // With fallback the route names the aggregate; the driver calls its
//   // members, so map the real clusters.
//   EnvoyDriver driver(channel, ex.chain, {{ex.default_cluster, &prod},
//                                          {ex.ArmUpstream(), &cand}},
//                      ex.arm_header, ex.default_cluster);
//
// Thread safety: free functions with no shared state.
#ifndef UNDERSTUDY_TESTS_DEPLOY_ENVOY_CONFIG_LOADER_H_
#define UNDERSTUDY_TESTS_DEPLOY_ENVOY_CONFIG_LOADER_H_

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "tools/envoy_driver/envoy_driver.h"

namespace understudy::deploy {

inline constexpr char kExtProcType[] =
    "type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor";

struct EnvoyCluster {
  std::string name;
  std::string type;                 // STATIC, STRICT_DNS, LOGICAL_DNS, ...
  bool http2 = false;               // explicit_http_config.http2_protocol_options set
  std::string address;              // socket_address.address ("" for a pipe)
  int port = 0;
  std::string pipe_path;            // pipe.path ("" for a socket address)
  // circuit_breakers.thresholds[priority DEFAULT]; 0 when not set (Envoy's
  // defaults then apply: 1024 each).
  int64_t max_connections = 0;
  int64_t max_pending_requests = 0;
  int64_t max_requests = 0;
  int64_t max_retries = 0;          // retries in flight (Envoy's default: 3)
  // cluster_type envoy.clusters.aggregate: its member clusters in priority
  // order (empty for any other cluster; such a cluster has no address).
  std::vector<std::string> aggregate_clusters;
  // typed_extension_protocol_options HttpProtocolOptions.http_filters: the
  // ext_proc upstream filters in order, and every upstream filter's name.
  std::vector<envoy_driver::FilterConfig> upstream_filters;
  std::vector<std::string> upstream_http_filters;
  std::vector<std::string> upstream_grpc_clusters;  // each upstream ext_proc's envoy_grpc cluster
};

struct EnvoyExtProc {
  envoy_driver::FilterConfig filter;  // modes are effective: DEFAULT resolved as Envoy does
  std::string cluster;                // grpc_service.envoy_grpc.cluster_name
  std::string stat_prefix;
};

struct EnvoyExample {
  // The ext_proc filters, in http_filters order, as the driver models them.
  envoy_driver::FilterChain chain;
  std::vector<EnvoyExtProc> ext_procs;   // same order, with the gRPC cluster
  std::vector<std::string> http_filters; // every http filter's name, in order
  // The route that sends a request to the candidate: header name, exact
  // value and cluster (with fallback: the aggregate cluster).
  std::string arm_header;
  std::string arm_value;
  std::string arm_cluster;
  // When arm_cluster is an aggregate: its members, e.g. {"candidate",
  // "production"} (attempt 1 goes to the first, the retry to the second).
  std::vector<std::string> arm_fallback_clusters;
  // ArmUpstream is the real cluster a candidate request reaches first: the
  // aggregate's first member, else arm_cluster.
  const std::string& ArmUpstream() const {
    return arm_fallback_clusters.empty() ? arm_cluster : arm_fallback_clusters.front();
  }
  // The catch-all route's cluster.
  std::string default_cluster;
  // Response headers the model routes add, key → value format
  // (e.g. x-understudy-arm → %REQ(x-understudy-arm)%); present on both.
  std::map<std::string, std::string> echoed_response_headers;
  // A path-matched direct_response route ahead of the model routes ("" if
  // none), and its status.
  std::string feedback_path;
  int feedback_status = 0;
  std::map<std::string, EnvoyCluster> clusters;
  int listener_port = 0;
};

// ParseEnvoyConfig reads YAML text; `source` names it in errors.
[[nodiscard]] absl::StatusOr<EnvoyExample> ParseEnvoyConfig(std::string_view yaml,
                                                            std::string_view source);
// LoadEnvoyConfig reads and parses a file.
[[nodiscard]] absl::StatusOr<EnvoyExample> LoadEnvoyConfig(const std::string& path);

// ParseProtoDuration accepts the proto-JSON form Envoy's YAML loader takes
// ("0.2s", "5s", "1.5s"); anything else ("200ms", "5") is an error.
[[nodiscard]] absl::StatusOr<absl::Duration> ParseProtoDuration(std::string_view text);

}  // namespace understudy::deploy

#endif  // UNDERSTUDY_TESTS_DEPLOY_ENVOY_CONFIG_LOADER_H_
