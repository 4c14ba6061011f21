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
// Example:
//   ASSIGN_OR_RETURN(EnvoyExample ex, LoadEnvoyConfig("examples/envoy/envoy.yaml"));
//   EnvoyDriver driver(channel, ex.chain, {{ex.default_cluster, &prod},
//                                          {ex.arm_cluster, &cand}},
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
  // value and cluster.
  std::string arm_header;
  std::string arm_value;
  std::string arm_cluster;
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
