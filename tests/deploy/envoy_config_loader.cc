#include "tests/deploy/envoy_config_loader.h"

#include <fstream>
#include <optional>
#include <set>
#include <sstream>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/config_node.h"
#include "common/status_macros.h"
#include "common/strings.h"

namespace understudy::deploy {
namespace {

using envoy_driver::FilterConfig;
using envoy_driver::ProcessingMode;

constexpr char kHcmType[] =
    "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3."
    "HttpConnectionManager";
constexpr char kRouterType[] = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router";
constexpr char kHeaderMutationType[] =
    "type.googleapis.com/envoy.extensions.filters.http.header_mutation.v3.HeaderMutation";
constexpr char kHttpOptionsKey[] = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions";
constexpr char kAggregateName[] = "envoy.clusters.aggregate";
constexpr char kAggregateType[] =
    "type.googleapis.com/envoy.extensions.clusters.aggregate.v3.ClusterConfig";
constexpr char kUpstreamCodecType[] =
    "type.googleapis.com/envoy.extensions.filters.http.upstream_codec.v3.UpstreamCodec";
constexpr char kPreviousPrioritiesName[] = "envoy.retry_priorities.previous_priorities";
constexpr char kPreviousPrioritiesType[] =
    "type.googleapis.com/envoy.extensions.retry.priority.previous_priorities.v3."
    "PreviousPrioritiesConfig";
// The listener's default per_connection_buffer_limit_bytes, which bounds the
// router's retry buffer when no per_request_buffer_limit_bytes is set.
constexpr int64_t kDefaultBufferLimit = 1 << 20;

// retry_on tokens Envoy documents (router filter, x-envoy-retry-on and
// x-envoy-retry-grpc-on); anything else is rejected by Envoy's config check.
const std::set<std::string>& RetryOnTokens() {
  static const auto* tokens = new std::set<std::string>{
      "5xx", "gateway-error", "reset", "reset-before-request", "connect-failure",
      "envoy-ratelimited", "retriable-4xx", "refused-stream", "retriable-status-codes",
      "retriable-headers", "http3-post-connect-failure",
      // gRPC (x-envoy-retry-grpc-on), also accepted in retry_on.
      "cancelled", "deadline-exceeded", "internal", "resource-exhausted", "unavailable"};
  return *tokens;
}

// Every field of envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor
// (upstream api/.../ext_proc.proto), so a misspelt one is caught as Envoy's
// strict YAML loader would.
const std::vector<std::string>& ExtProcFields() {
  static const auto* fields = new std::vector<std::string>{
      "@type", "grpc_service", "http_service", "failure_mode_allow", "processing_mode",
      "request_attributes", "response_attributes", "message_timeout", "stat_prefix",
      "mutation_rules", "max_message_timeout", "forward_rules", "filter_metadata",
      "allow_mode_override", "disable_immediate_response", "metadata_options",
      "observability_mode", "disable_clear_route_cache", "route_cache_action",
      "deferred_close_timeout", "max_more_chunks", "send_body_without_waiting_for_header_response",
      "allowed_override_modes", "on_processing_response", "processing_request_modifier",
      "status_on_error"};
  return *fields;
}

absl::StatusOr<std::string> RequiredString(const ConfigNode& n, std::string_view key) {
  ASSIGN_OR_RETURN(std::string s, n.GetString(key, ""));
  if (s.empty()) return n.Error(key, "is required");
  return s;
}

absl::StatusOr<ProcessingMode::HeaderSendMode> HeaderMode(const ConfigNode& pm,
                                                          std::string_view key,
                                                          ProcessingMode::HeaderSendMode def) {
  ASSIGN_OR_RETURN(std::string s, pm.GetString(key, "DEFAULT"));
  ProcessingMode::HeaderSendMode mode;
  if (!ProcessingMode::HeaderSendMode_Parse(s, &mode)) {
    return pm.Error(key, absl::StrCat("unknown HeaderSendMode \"", s,
                                      "\" (DEFAULT, SEND or SKIP)"));
  }
  // DEFAULT means SEND for headers and SKIP for trailers (processing_mode.proto).
  return mode == ProcessingMode::DEFAULT ? def : mode;
}

absl::StatusOr<ProcessingMode::BodySendMode> BodyMode(const ConfigNode& pm, std::string_view key) {
  ASSIGN_OR_RETURN(std::string s, pm.GetString(key, "NONE"));
  ProcessingMode::BodySendMode mode;
  if (!ProcessingMode::BodySendMode_Parse(s, &mode) || mode == ProcessingMode::GRPC) {
    return pm.Error(key, absl::StrCat("unknown BodySendMode \"", s,
                                      "\" (NONE, STREAMED, BUFFERED, BUFFERED_PARTIAL or "
                                      "FULL_DUPLEX_STREAMED)"));
  }
  return mode;
}

absl::StatusOr<absl::Duration> DurationField(const ConfigNode& n, std::string_view key,
                                             absl::Duration def) {
  if (!n.Has(key)) return def;
  ASSIGN_OR_RETURN(std::string s, n.GetString(key, ""));
  absl::StatusOr<absl::Duration> d = ParseProtoDuration(s);
  if (!d.ok()) return n.Error(key, Sv(d.status().message()));
  return *d;
}

absl::StatusOr<EnvoyExtProc> ParseExtProc(const std::string& name, const ConfigNode& tc) {
  RETURN_IF_ERROR(tc.CheckKeys(ExtProcFields()));
  EnvoyExtProc out;
  FilterConfig& f = out.filter;
  f.name = name;

  const ConfigNode grpc = tc.Child("grpc_service");
  if (!grpc.IsMap()) return tc.Error("grpc_service", "is required (an envoy_grpc cluster)");
  RETURN_IF_ERROR(grpc.CheckKeys({"envoy_grpc", "google_grpc", "timeout", "initial_metadata",
                                  "retry_policy"}));
  const ConfigNode envoy_grpc = grpc.Child("envoy_grpc");
  if (!envoy_grpc.IsMap()) return grpc.Error("envoy_grpc", "is required");
  RETURN_IF_ERROR(envoy_grpc.CheckKeys({"cluster_name", "authority", "retry_policy",
                                        "max_receive_message_length", "skip_envoy_headers"}));
  ASSIGN_OR_RETURN(out.cluster, RequiredString(envoy_grpc, "cluster_name"));
  ASSIGN_OR_RETURN(std::vector<ConfigNode> metadata, grpc.Child("initial_metadata").Elements());
  for (const ConfigNode& m : metadata) {
    RETURN_IF_ERROR(m.CheckKeys({"key", "value", "raw_value"}));
    ASSIGN_OR_RETURN(std::string key, RequiredString(m, "key"));
    ASSIGN_OR_RETURN(std::string value, m.GetString("value", ""));
    if (f.initial_metadata.count(key) != 0) return m.Error("key", "is repeated");
    f.initial_metadata[key] = value;
  }

  ASSIGN_OR_RETURN(f.failure_mode_allow, tc.GetBool("failure_mode_allow", false));
  ASSIGN_OR_RETURN(f.observability_mode, tc.GetBool("observability_mode", false));
  ASSIGN_OR_RETURN(f.allow_mode_override, tc.GetBool("allow_mode_override", false));
  ASSIGN_OR_RETURN(f.message_timeout,
                   DurationField(tc, "message_timeout", absl::Milliseconds(200)));
  if (f.message_timeout > absl::Hours(1)) {
    return tc.Error("message_timeout", "must be at most 3600s");
  }
  ASSIGN_OR_RETURN(absl::Duration deferred,
                   DurationField(tc, "deferred_close_timeout", absl::Seconds(5)));
  (void)deferred;
  ASSIGN_OR_RETURN(out.stat_prefix, tc.GetString("stat_prefix", ""));

  const ConfigNode pm = tc.Child("processing_mode");
  RETURN_IF_ERROR(pm.CheckKeys({"request_header_mode", "response_header_mode", "request_body_mode",
                                "response_body_mode", "request_trailer_mode",
                                "response_trailer_mode"}));
  ProcessingMode& mode = f.processing_mode;
  ASSIGN_OR_RETURN(auto rqh, HeaderMode(pm, "request_header_mode", ProcessingMode::SEND));
  ASSIGN_OR_RETURN(auto rsh, HeaderMode(pm, "response_header_mode", ProcessingMode::SEND));
  ASSIGN_OR_RETURN(auto rqb, BodyMode(pm, "request_body_mode"));
  ASSIGN_OR_RETURN(auto rsb, BodyMode(pm, "response_body_mode"));
  ASSIGN_OR_RETURN(auto rqt, HeaderMode(pm, "request_trailer_mode", ProcessingMode::SKIP));
  ASSIGN_OR_RETURN(auto rst, HeaderMode(pm, "response_trailer_mode", ProcessingMode::SKIP));
  mode.set_request_header_mode(rqh);
  mode.set_response_header_mode(rsh);
  mode.set_request_body_mode(rqb);
  mode.set_response_body_mode(rsb);
  mode.set_request_trailer_mode(rqt);
  mode.set_response_trailer_mode(rst);
  // Envoy rejects FULL_DUPLEX_STREAMED without trailers SEND.
  if (rqb == ProcessingMode::FULL_DUPLEX_STREAMED && rqt != ProcessingMode::SEND) {
    return pm.Error("request_trailer_mode", "must be SEND with FULL_DUPLEX_STREAMED bodies");
  }
  if (rsb == ProcessingMode::FULL_DUPLEX_STREAMED && rst != ProcessingMode::SEND) {
    return pm.Error("response_trailer_mode", "must be SEND with FULL_DUPLEX_STREAMED bodies");
  }
  // Observability mode only streams bodies: other buffered modes are ignored
  // by Envoy, which would silently drop the bodies the sidecar expects.
  if (f.observability_mode) {
    for (auto [key, m] : {std::pair<const char*, ProcessingMode::BodySendMode>{
                              "request_body_mode", rqb},
                          {"response_body_mode", rsb}}) {
      if (m != ProcessingMode::NONE && m != ProcessingMode::STREAMED) {
        return pm.Error(key, "must be NONE or STREAMED with observability_mode");
      }
    }
  }
  return out;
}

// ParseUpstreamFilters reads HttpProtocolOptions.http_filters: the cluster's
// upstream HTTP filter chain, which must end in upstream_codec. ext_proc
// filters are modelled (request headers/body/trailers, response headers);
// response body or trailer modes are refused, as the driver cannot play them.
absl::Status ParseUpstreamFilters(const ConfigNode& options, EnvoyCluster* out) {
  ASSIGN_OR_RETURN(std::vector<ConfigNode> filters, options.Child("http_filters").Elements());
  if (!options.Has("http_filters")) return absl::OkStatus();
  if (filters.empty()) return options.Error("http_filters", "must not be empty when set");
  for (size_t i = 0; i < filters.size(); ++i) {
    const ConfigNode& f = filters[i];
    RETURN_IF_ERROR(f.CheckKeys({"name", "typed_config", "config_discovery", "is_optional",
                                 "disabled"}));
    ASSIGN_OR_RETURN(std::string name, RequiredString(f, "name"));
    for (const std::string& seen : out->upstream_http_filters) {
      if (seen == name) return f.Error("name", "is repeated");
    }
    out->upstream_http_filters.push_back(name);
    const ConfigNode tc = f.Child("typed_config");
    ASSIGN_OR_RETURN(std::string type, RequiredString(tc, "@type"));
    const bool last = i + 1 == filters.size();
    if (type == kUpstreamCodecType) {
      if (!last) return f.Error("typed_config", "upstream_codec must be the last upstream filter");
      RETURN_IF_ERROR(tc.CheckKeys({"@type"}));
      continue;
    }
    if (last) {
      return f.Error("typed_config", absl::StrCat("the last upstream filter must be "
                                                  "envoy.filters.http.upstream_codec (",
                                                  kUpstreamCodecType, ")"));
    }
    if (type != kExtProcType) continue;
    ASSIGN_OR_RETURN(EnvoyExtProc ext_proc, ParseExtProc(name, tc));
    const ConfigNode pm = tc.Child("processing_mode");
    if (ext_proc.filter.processing_mode.response_body_mode() != ProcessingMode::NONE) {
      return pm.Error("response_body_mode",
                      "must be NONE on an upstream filter (the driver models an attempt's "
                      "response on its headers only)");
    }
    if (ext_proc.filter.processing_mode.response_trailer_mode() == ProcessingMode::SEND) {
      return pm.Error("response_trailer_mode", "must be SKIP on an upstream filter");
    }
    out->upstream_filters.push_back(ext_proc.filter);
    out->upstream_grpc_clusters.push_back(ext_proc.cluster);
  }
  return absl::OkStatus();
}

absl::StatusOr<EnvoyCluster> ParseCluster(const ConfigNode& c) {
  EnvoyCluster out;
  ASSIGN_OR_RETURN(out.name, RequiredString(c, "name"));
  const ConfigNode http_options =
      c.Child("typed_extension_protocol_options").Child(kHttpOptionsKey);
  out.http2 = http_options.Child("explicit_http_config").Child("http2_protocol_options").IsMap();
  if (http_options.IsDefined()) {
    RETURN_IF_ERROR(http_options.CheckKeys(
        {"@type", "common_http_protocol_options", "upstream_http_protocol_options",
         "explicit_http_config", "use_downstream_protocol_config", "auto_config", "http_filters",
         "header_validation_config", "outlier_detection"}));
    ASSIGN_OR_RETURN(std::string type, http_options.GetString("@type", ""));
    if (type != absl::StrCat("type.googleapis.com/", kHttpOptionsKey)) {
      return http_options.Error("@type", "must be type.googleapis.com/" +
                                             std::string(kHttpOptionsKey));
    }
    // upstream_protocol_options is a required oneof.
    int protocols = 0;
    for (const char* k : {"explicit_http_config", "use_downstream_protocol_config", "auto_config"}) {
      if (http_options.Has(k)) ++protocols;
    }
    if (protocols != 1) {
      return http_options.Error("explicit_http_config",
                                "exactly one of explicit_http_config, "
                                "use_downstream_protocol_config or auto_config is required");
    }
    RETURN_IF_ERROR(ParseUpstreamFilters(http_options, &out));
  }

  ASSIGN_OR_RETURN(std::vector<ConfigNode> thresholds,
                   c.Child("circuit_breakers").Child("thresholds").Elements());
  for (const ConfigNode& t : thresholds) {
    ASSIGN_OR_RETURN(std::string priority, t.GetString("priority", "DEFAULT"));
    if (priority != "DEFAULT") continue;
    RETURN_IF_ERROR(t.CheckKeys({"priority", "max_connections", "max_pending_requests",
                                 "max_requests", "max_retries", "retry_budget",
                                 "track_remaining", "max_connection_pools"}));
    constexpr int64_t kMax = 0xffffffffLL;
    ASSIGN_OR_RETURN(out.max_connections, t.GetInt("max_connections", 0, 0, kMax));
    ASSIGN_OR_RETURN(out.max_pending_requests, t.GetInt("max_pending_requests", 0, 0, kMax));
    ASSIGN_OR_RETURN(out.max_requests, t.GetInt("max_requests", 0, 0, kMax));
    ASSIGN_OR_RETURN(out.max_retries, t.GetInt("max_retries", 0, 0, kMax));
  }

  if (c.Has("cluster_type")) {
    // An aggregate cluster has no endpoints of its own: its load balancer
    // picks a member cluster by priority (docs/extproc.md §9).
    RETURN_IF_ERROR(c.CheckKeys({"name", "connect_timeout", "lb_policy", "cluster_type",
                                 "typed_extension_protocol_options", "circuit_breakers"}));
    const ConfigNode ct = c.Child("cluster_type");
    RETURN_IF_ERROR(ct.CheckKeys({"name", "typed_config"}));
    ASSIGN_OR_RETURN(std::string name, RequiredString(ct, "name"));
    if (name != kAggregateName) {
      return ct.Error("name", absl::StrCat("unknown cluster_type \"", name,
                                           "\" (this loader knows ", kAggregateName, ")"));
    }
    const ConfigNode tc = ct.Child("typed_config");
    RETURN_IF_ERROR(tc.CheckKeys({"@type", "clusters"}));
    ASSIGN_OR_RETURN(std::string type, RequiredString(tc, "@type"));
    if (type != kAggregateType) return tc.Error("@type", absl::StrCat("must be ", kAggregateType));
    ASSIGN_OR_RETURN(out.aggregate_clusters, tc.GetStringList("clusters"));
    if (out.aggregate_clusters.empty()) return tc.Error("clusters", "must name at least one cluster");
    for (size_t i = 0; i < out.aggregate_clusters.size(); ++i) {
      for (size_t j = 0; j < i; ++j) {
        if (out.aggregate_clusters[i] == out.aggregate_clusters[j]) {
          return tc.Error("clusters", "names " + out.aggregate_clusters[i] + " twice");
        }
      }
    }
    ASSIGN_OR_RETURN(std::string lb, c.GetString("lb_policy", "ROUND_ROBIN"));
    if (lb != "CLUSTER_PROVIDED") {
      return c.Error("lb_policy", "must be CLUSTER_PROVIDED for an aggregate cluster");
    }
    out.type = kAggregateName;
    return out;
  }
  if (!out.upstream_filters.empty() || !out.upstream_http_filters.empty()) {
    // Envoy builds the upstream chain from the route's cluster; the driver
    // models it only on the candidate's aggregate.
    return http_options.Error("http_filters",
                              "upstream filters are modelled only on the candidate route's "
                              "aggregate cluster");
  }
  ASSIGN_OR_RETURN(out.type, c.GetString("type", "STATIC"));
  static const std::set<std::string> kTypes = {"STATIC", "STRICT_DNS", "LOGICAL_DNS", "EDS",
                                               "ORIGINAL_DST"};
  if (kTypes.count(out.type) == 0) return c.Error("type", "unknown cluster type " + out.type);

  const ConfigNode la = c.Child("load_assignment");
  ASSIGN_OR_RETURN(std::string la_name, RequiredString(la, "cluster_name"));
  if (la_name != out.name) return la.Error("cluster_name", "must equal the cluster's name");
  ASSIGN_OR_RETURN(std::vector<ConfigNode> endpoints, la.Child("endpoints").Elements());
  for (const ConfigNode& e : endpoints) {
    ASSIGN_OR_RETURN(std::vector<ConfigNode> lbs, e.Child("lb_endpoints").Elements());
    for (const ConfigNode& lb : lbs) {
      const ConfigNode addr = lb.Child("endpoint").Child("address");
      RETURN_IF_ERROR(addr.CheckKeys({"socket_address", "pipe", "envoy_internal_address"}));
      if (addr.Has("socket_address")) {
        const ConfigNode sa = addr.Child("socket_address");
        ASSIGN_OR_RETURN(out.address, RequiredString(sa, "address"));
        ASSIGN_OR_RETURN(int64_t port, sa.GetInt("port_value", 0, 1, 65535));
        out.port = static_cast<int>(port);
      } else if (addr.Has("pipe")) {
        ASSIGN_OR_RETURN(out.pipe_path, RequiredString(addr.Child("pipe"), "path"));
      } else {
        return addr.Error("socket_address", "or pipe is required");
      }
      if (out.type == "LOGICAL_DNS" && (lbs.size() > 1 || endpoints.size() > 1)) {
        return la.Error("endpoints", "LOGICAL_DNS takes exactly one endpoint");
      }
    }
  }
  if (out.address.empty() && out.pipe_path.empty()) {
    return la.Error("endpoints", "must hold at least one endpoint address");
  }
  if (!out.pipe_path.empty() && out.type != "STATIC") {
    return c.Error("type", "must be STATIC for a pipe (Unix socket) address");
  }
  return out;
}

struct RetryPolicy {
  bool present = false;
  std::set<std::string> retry_on;
  int num_retries = 1;
  std::vector<int> retriable_status_codes;
  bool previous_priorities = false;
  int64_t update_frequency = 0;
};

struct Routes {
  std::string arm_header, arm_value, arm_cluster, default_cluster;
  std::map<std::string, std::string> echoed;
  std::string feedback_path;
  int feedback_status = 0;
  // The candidate route's retry policy and retry buffer, and the virtual
  // host's include_request_attempt_count.
  RetryPolicy arm_retry;
  std::optional<ConfigNode> arm_route_node;
  int64_t arm_buffer_limit = kDefaultBufferLimit;
  bool include_attempt_count = false;
};

// ParseRetryPolicy reads a route's retry_policy (config.route.v3.RetryPolicy).
absl::StatusOr<RetryPolicy> ParseRetryPolicy(const ConfigNode& rp) {
  RetryPolicy out;
  out.present = true;
  RETURN_IF_ERROR(rp.CheckKeys({"retry_on", "num_retries", "per_try_timeout",
                                "per_try_idle_timeout", "retry_priority", "retry_host_predicate",
                                "retry_options_predicates", "host_selection_retry_max_attempts",
                                "retriable_status_codes", "retry_back_off",
                                "rate_limited_retry_back_off", "retriable_headers",
                                "retriable_request_headers"}));
  ASSIGN_OR_RETURN(std::string retry_on, RequiredString(rp, "retry_on"));
  for (absl::string_view token : absl::StrSplit(retry_on, ',')) {
    std::string t(absl::StripAsciiWhitespace(token));
    if (RetryOnTokens().count(t) == 0) {
      return rp.Error("retry_on", absl::StrCat("unknown retry condition \"", t,
                                               "\" (Envoy's list: 5xx, gateway-error, reset, "
                                               "connect-failure, refused-stream, "
                                               "retriable-status-codes, ...)"));
    }
    out.retry_on.insert(t);
  }
  ASSIGN_OR_RETURN(int64_t n, rp.GetInt("num_retries", 1, 0, 0xffffffffLL));
  out.num_retries = static_cast<int>(std::min<int64_t>(n, 1000));
  ASSIGN_OR_RETURN(std::vector<ConfigNode> codes, rp.Child("retriable_status_codes").Elements());
  for (const ConfigNode& code : codes) {
    ASSIGN_OR_RETURN(std::string text, code.AsString());
    int v = 0;
    if (!absl::SimpleAtoi(text, &v) || v < 100 || v > 599) {
      return rp.Error("retriable_status_codes", "must hold HTTP status codes, got " + text);
    }
    out.retriable_status_codes.push_back(v);
  }
  if (!out.retriable_status_codes.empty() && out.retry_on.count("retriable-status-codes") == 0) {
    return rp.Error("retriable_status_codes",
                    "has no effect unless retry_on includes retriable-status-codes");
  }
  if (rp.Has("retry_priority")) {
    const ConfigNode pri = rp.Child("retry_priority");
    RETURN_IF_ERROR(pri.CheckKeys({"name", "typed_config"}));
    ASSIGN_OR_RETURN(std::string name, RequiredString(pri, "name"));
    if (name != kPreviousPrioritiesName) {
      return pri.Error("name", absl::StrCat("unknown retry priority \"", name, "\" (",
                                            kPreviousPrioritiesName, ")"));
    }
    const ConfigNode tc = pri.Child("typed_config");
    RETURN_IF_ERROR(tc.CheckKeys({"@type", "update_frequency"}));
    ASSIGN_OR_RETURN(std::string type, RequiredString(tc, "@type"));
    if (type != kPreviousPrioritiesType) {
      return tc.Error("@type", absl::StrCat("must be ", kPreviousPrioritiesType));
    }
    // PreviousPrioritiesConfig.update_frequency: int32, must be > 0.
    if (!tc.Has("update_frequency")) return tc.Error("update_frequency", "is required (> 0)");
    ASSIGN_OR_RETURN(out.update_frequency, tc.GetInt("update_frequency", 0, 1, 0x7fffffff));
    out.previous_priorities = true;
  }
  return out;
}

// RouteActionFields: config.route.v3.RouteAction, so a misspelt key in the
// route action is caught as Envoy's strict loader would.
const std::vector<std::string>& RouteActionFields() {
  static const auto* fields = new std::vector<std::string>{
      "cluster", "cluster_header", "weighted_clusters", "cluster_specifier_plugin",
      "inline_cluster_specifier_plugin", "cluster_not_found_response_code", "metadata_match",
      "prefix_rewrite", "path_rewrite_policy", "regex_rewrite", "host_rewrite_literal",
      "auto_host_rewrite", "host_rewrite_header", "host_rewrite_path_regex",
      "append_x_forwarded_host", "timeout", "idle_timeout", "early_data_policy", "retry_policy",
      "retry_policy_typed_config", "request_mirror_policies", "priority", "rate_limits",
      "include_vh_rate_limits", "hash_policy", "cors", "max_grpc_timeout", "grpc_timeout_offset",
      "upgrade_configs", "internal_redirect_policy", "internal_redirect_action",
      "max_internal_redirects", "hedge_policy", "max_stream_duration"};
  return *fields;
}

absl::Status ParseRoutes(const ConfigNode& rc, Routes* out) {
  ASSIGN_OR_RETURN(std::vector<ConfigNode> vhosts, rc.Child("virtual_hosts").Elements());
  if (vhosts.empty()) return rc.Error("virtual_hosts", "must not be empty");
  for (const ConfigNode& vh : vhosts) {
    // The v4 name Envoy's comments promise is not a v3 field.
    if (vh.Has("include_attempt_count_in_request")) {
      return vh.Error("include_attempt_count_in_request",
                      "is not a field of config.route.v3.VirtualHost; the v3 name is "
                      "include_request_attempt_count");
    }
    RETURN_IF_ERROR(vh.CheckKeys(
        {"name", "domains", "routes", "matcher", "require_tls", "virtual_clusters",
         "rate_limits", "request_headers_to_add", "request_headers_to_remove",
         "response_headers_to_add", "response_headers_to_remove", "cors",
         "typed_per_filter_config", "include_request_attempt_count",
         "include_attempt_count_in_response", "retry_policy", "retry_policy_typed_config",
         "hedge_policy", "include_is_timeout_retry_header", "per_request_buffer_limit_bytes",
         "request_mirror_policies", "metadata"}));
    if (vh.Has("retry_policy")) {
      return vh.Error("retry_policy",
                      "a virtual host retry policy would retry production too; set it on the "
                      "candidate route (the driver models retries there only)");
    }
    ASSIGN_OR_RETURN(bool attempt_count, vh.GetBool("include_request_attempt_count", false));
    ASSIGN_OR_RETURN(int64_t vh_buffer_limit,
                     vh.GetInt("per_request_buffer_limit_bytes", kDefaultBufferLimit, 0,
                               0xffffffffLL));
    ASSIGN_OR_RETURN(std::string name, RequiredString(vh, "name"));
    ASSIGN_OR_RETURN(std::vector<std::string> domains, vh.GetStringList("domains"));
    if (domains.empty()) return vh.Error("domains", "must not be empty");
    ASSIGN_OR_RETURN(std::vector<ConfigNode> routes, vh.Child("routes").Elements());
    bool catch_all_seen = false;
    for (const ConfigNode& r : routes) {
      RETURN_IF_ERROR(r.CheckKeys({"name", "match", "route", "direct_response", "redirect",
                                   "response_headers_to_add", "request_headers_to_add",
                                   "request_headers_to_remove", "response_headers_to_remove",
                                   "typed_per_filter_config", "metadata", "decorator",
                                   "filter_action", "non_forwarding_action", "tracing",
                                   "per_request_buffer_limit_bytes", "stat_prefix"}));
      const ConfigNode match = r.Child("match");
      if (!match.IsMap()) return r.Error("match", "is required");
      RETURN_IF_ERROR(match.CheckKeys({"prefix", "path", "safe_regex", "path_separated_prefix",
                                       "headers", "query_parameters", "case_sensitive",
                                       "grpc", "runtime_fraction"}));
      if (catch_all_seen) {
        return r.Error("match", "can never match: an earlier route matches every request");
      }
      ASSIGN_OR_RETURN(std::vector<ConfigNode> headers, match.Child("headers").Elements());
      ASSIGN_OR_RETURN(std::string prefix, match.GetString("prefix", ""));
      ASSIGN_OR_RETURN(std::string path, match.GetString("path", ""));
      std::string cluster;
      RetryPolicy retry;
      if (r.Has("route")) {
        const ConfigNode action = r.Child("route");
        RETURN_IF_ERROR(action.CheckKeys(RouteActionFields()));
        ASSIGN_OR_RETURN(cluster, RequiredString(action, "cluster"));
        ASSIGN_OR_RETURN(absl::Duration timeout,
                         DurationField(action, "timeout", absl::Seconds(15)));
        (void)timeout;
        if (action.Has("retry_policy")) {
          ASSIGN_OR_RETURN(retry, ParseRetryPolicy(action.Child("retry_policy")));
        }
      } else if (!r.Has("direct_response") && !r.Has("redirect")) {
        return r.Error("route", "an action (route, direct_response or redirect) is required");
      }
      ASSIGN_OR_RETURN(std::vector<ConfigNode> adds, r.Child("response_headers_to_add").Elements());
      std::map<std::string, std::string> echoed;
      for (const ConfigNode& a : adds) {
        ASSIGN_OR_RETURN(std::string key, RequiredString(a.Child("header"), "key"));
        ASSIGN_OR_RETURN(echoed[key], a.Child("header").GetString("value", ""));
      }

      if (!path.empty() && r.Has("direct_response")) {
        if (!out->arm_cluster.empty() || !out->default_cluster.empty()) {
          return r.Error("match", "a feedback route must come before the model routes");
        }
        out->feedback_path = path;
        ASSIGN_OR_RETURN(int64_t status,
                         r.Child("direct_response").GetInt("status", 0, 200, 599));
        out->feedback_status = static_cast<int>(status);
        continue;
      }
      if (headers.size() == 1 && !cluster.empty()) {
        const ConfigNode& h = headers[0];
        RETURN_IF_ERROR(h.CheckKeys({"name", "string_match", "exact_match", "invert_match",
                                     "present_match", "treat_missing_header_as_empty"}));
        ASSIGN_OR_RETURN(std::string header, RequiredString(h, "name"));
        ASSIGN_OR_RETURN(std::string value, h.Child("string_match").GetString("exact", ""));
        if (value.empty()) return h.Error("string_match", "must be {exact: VALUE}");
        if (!out->arm_cluster.empty()) return h.Error("name", "a second arm route");
        out->arm_header = header;
        out->arm_value = value;
        out->arm_cluster = cluster;
        out->echoed = echoed;
        out->arm_retry = retry;
        out->arm_route_node = r.Child("route");
        ASSIGN_OR_RETURN(out->arm_buffer_limit,
                         r.GetInt("per_request_buffer_limit_bytes", vh_buffer_limit, 0,
                                  0xffffffffLL));
        out->include_attempt_count = attempt_count;
        continue;
      }
      if (retry.present) {
        return r.Child("route").Error(
            "retry_policy", "only the candidate route may retry (the driver models no other)");
      }
      if (headers.empty() && prefix == "/" && !cluster.empty()) {
        catch_all_seen = true;
        out->default_cluster = cluster;
        // Only headers both model routes echo count.
        std::map<std::string, std::string> both;
        for (const auto& [k, v] : out->echoed) {
          auto it = echoed.find(k);
          if (it != echoed.end() && it->second == v) both[k] = v;
        }
        out->echoed = both;
        continue;
      }
    }
    (void)name;
  }
  if (out->arm_cluster.empty()) {
    return rc.Error("virtual_hosts", "no route sends a header-matched request to a cluster");
  }
  if (out->default_cluster.empty()) {
    return rc.Error("virtual_hosts", "no catch-all route (match prefix \"/\") after the arm route");
  }
  return absl::OkStatus();
}

// ApplyFallback turns the candidate route's aggregate cluster, upstream
// filters and retry policy into the driver's model (docs/extproc.md §9):
// attempt 1 on the aggregate's first member, a retry on the second, which
// needs retry_priority previous_priorities with update_frequency 1 (without
// it the retry would pick the healthy candidate again).
absl::Status ApplyFallback(const Routes& routes, const ConfigNode& route_config,
                           EnvoyExample* ex) {
  const EnvoyCluster& arm = ex->clusters.at(routes.arm_cluster);
  const RetryPolicy& retry = routes.arm_retry;
  if (arm.aggregate_clusters.empty()) {
    if (retry.present) {
      return routes.arm_route_node->Error(
          "retry_policy", "retries on the candidate cluster itself; fall back through an "
                          "aggregate cluster [candidate, production] instead");
    }
    return absl::OkStatus();
  }
  for (const std::string& member : arm.aggregate_clusters) {
    auto it = ex->clusters.find(member);
    if (it == ex->clusters.end()) {
      return route_config.Error("virtual_hosts", "aggregate cluster " + arm.name +
                                                     " names unknown cluster " + member);
    }
    if (!it->second.aggregate_clusters.empty()) {
      return route_config.Error("virtual_hosts", "aggregate cluster " + arm.name +
                                                     " names another aggregate, " + member);
    }
  }
  if (arm.aggregate_clusters.size() != 2) {
    return route_config.Error("virtual_hosts",
                              "aggregate cluster " + arm.name +
                                  " must name exactly two clusters: the candidate, then its "
                                  "fallback");
  }
  for (const std::string& grpc_cluster : arm.upstream_grpc_clusters) {
    auto it = ex->clusters.find(grpc_cluster);
    if (it == ex->clusters.end() || !it->second.http2) {
      return route_config.Error("virtual_hosts",
                                "an upstream ext_proc filter of " + arm.name +
                                    " uses cluster " + grpc_cluster +
                                    ", which must exist and speak HTTP/2");
    }
  }
  envoy_driver::FilterChain::Fallback& fb = ex->chain.candidate_fallback;
  ex->chain.candidate_upstream_filters = arm.upstream_filters;
  ex->arm_fallback_clusters = arm.aggregate_clusters;
  fb.include_attempt_count = routes.include_attempt_count;
  fb.retry_buffer_limit = static_cast<size_t>(routes.arm_buffer_limit);
  if (!retry.present) {
    fb.enabled = false;  // health-based failover only: not modelled per request
    return absl::OkStatus();
  }
  const ConfigNode rp = routes.arm_route_node->Child("retry_policy");
  if (!retry.previous_priorities) {
    return rp.Error("retry_priority",
                    "is required on an aggregate cluster: without "
                    "envoy.retry_priorities.previous_priorities the retry goes to the "
                    "candidate again");
  }
  if (retry.update_frequency != 1) {
    return rp.Child("retry_priority").Child("typed_config")
        .Error("update_frequency", "must be 1, or the first retry stays on the candidate");
  }
  fb.enabled = retry.num_retries > 0;
  fb.num_retries = retry.num_retries;
  fb.to_cluster = arm.aggregate_clusters[1];
  const auto has = [&](const char* token) { return retry.retry_on.count(token) != 0; };
  fb.on_5xx = has("5xx");
  // 5xx includes connect failures and resets (Envoy's router docs).
  fb.on_reset = has("5xx") || has("gateway-error") || has("reset") ||
                has("reset-before-request") || has("connect-failure") || has("refused-stream");
  fb.retriable_status_codes.clear();
  if (has("retriable-status-codes")) fb.retriable_status_codes = retry.retriable_status_codes;
  if (has("gateway-error") && !fb.on_5xx) {
    for (int code : {502, 503, 504}) fb.retriable_status_codes.push_back(code);
  }
  if (has("retriable-4xx")) fb.retriable_status_codes.push_back(409);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<absl::Duration> ParseProtoDuration(std::string_view text) {
  auto bad = [&] {
    return absl::InvalidArgumentError(absl::StrCat(
        "must be a proto-JSON duration in seconds such as 0.2s or 5s, got \"", Av(text), "\""));
  };
  if (text.size() < 2 || text.back() != 's') return bad();
  std::string_view num = text.substr(0, text.size() - 1);
  const size_t dot = num.find('.');
  std::string_view whole = num.substr(0, dot);
  std::string_view frac = dot == std::string_view::npos ? "" : num.substr(dot + 1);
  auto digits = [](std::string_view s) {
    for (char ch : s) {
      if (ch < '0' || ch > '9') return false;
    }
    return true;
  };
  if (whole.empty() || !digits(whole) || !digits(frac) ||
      (dot != std::string_view::npos && (frac.empty() || frac.size() > 9))) {
    return bad();
  }
  int64_t secs = 0;
  if (!absl::SimpleAtoi(Av(whole), &secs)) return bad();
  int64_t nanos = 0;
  if (!frac.empty()) {
    std::string padded(frac);
    padded.resize(9, '0');
    if (!absl::SimpleAtoi(padded, &nanos)) return bad();
  }
  return absl::Seconds(secs) + absl::Nanoseconds(nanos);
}

absl::StatusOr<EnvoyExample> ParseEnvoyConfig(std::string_view yaml, std::string_view source) {
  ASSIGN_OR_RETURN(ConfigNode root, ConfigNode::Parse(yaml, source));
  auto in_source = [&](absl::Status s) {
    return absl::Status(s.code(), absl::StrCat(Av(source), ": ", s.message()));
  };
  EnvoyExample ex;
  absl::Status status = [&]() -> absl::Status {
    RETURN_IF_ERROR(root.CheckKeys({"admin", "static_resources", "node", "layered_runtime",
                                    "overload_manager", "stats_sinks", "dynamic_resources"}));
    const ConfigNode sr = root.Child("static_resources");
    RETURN_IF_ERROR(sr.CheckKeys({"listeners", "clusters", "secrets"}));

    ASSIGN_OR_RETURN(std::vector<ConfigNode> clusters, sr.Child("clusters").Elements());
    for (const ConfigNode& c : clusters) {
      ASSIGN_OR_RETURN(EnvoyCluster cluster, ParseCluster(c));
      if (ex.clusters.count(cluster.name) != 0) return c.Error("name", "is repeated");
      ex.clusters[cluster.name] = cluster;
    }

    // The first HTTP connection manager of the first listener that has one.
    ASSIGN_OR_RETURN(std::vector<ConfigNode> listeners, sr.Child("listeners").Elements());
    std::optional<ConfigNode> hcm;
    for (const ConfigNode& l : listeners) {
      ASSIGN_OR_RETURN(std::vector<ConfigNode> chains, l.Child("filter_chains").Elements());
      for (const ConfigNode& chain : chains) {
        ASSIGN_OR_RETURN(std::vector<ConfigNode> filters, chain.Child("filters").Elements());
        for (const ConfigNode& f : filters) {
          ASSIGN_OR_RETURN(std::string type, f.Child("typed_config").GetString("@type", ""));
          if (type == kHcmType && !hcm) {
            hcm = f.Child("typed_config");
            ASSIGN_OR_RETURN(int64_t port, l.Child("address").Child("socket_address")
                                               .GetInt("port_value", 0, 0, 65535));
            ex.listener_port = static_cast<int>(port);
          }
        }
      }
    }
    if (!hcm) return sr.Error("listeners", "no listener has an HTTP connection manager");
    ASSIGN_OR_RETURN(std::string stat_prefix, RequiredString(*hcm, "stat_prefix"));
    (void)stat_prefix;

    ASSIGN_OR_RETURN(std::vector<ConfigNode> http_filters, hcm->Child("http_filters").Elements());
    for (size_t i = 0; i < http_filters.size(); ++i) {
      const ConfigNode& f = http_filters[i];
      ASSIGN_OR_RETURN(std::string name, RequiredString(f, "name"));
      const ConfigNode tc = f.Child("typed_config");
      ASSIGN_OR_RETURN(std::string type, RequiredString(tc, "@type"));
      for (const std::string& seen : ex.http_filters) {
        if (seen == name) return f.Error("name", "is repeated");
      }
      ex.http_filters.push_back(name);
      if (type == kRouterType && i + 1 != http_filters.size()) {
        return f.Error("typed_config", "the router filter must be the last http filter");
      }
      if (i + 1 == http_filters.size() && type != kRouterType) {
        return f.Error("typed_config", "the last http filter must be the router");
      }
      if (type == kHeaderMutationType) {
        // Header removals ahead of the ext_proc filters (e.g. a client-sent
        // arm header), which Envoy applies whatever the sidecar does.
        if (!ex.chain.filters.empty()) {
          return f.Error("typed_config", "header removals must come before the ext_proc filters");
        }
        RETURN_IF_ERROR(tc.CheckKeys({"@type", "mutations"}));
        const ConfigNode m = tc.Child("mutations");
        RETURN_IF_ERROR(m.CheckKeys({"request_mutations", "response_mutations"}));
        ASSIGN_OR_RETURN(std::vector<ConfigNode> muts, m.Child("request_mutations").Elements());
        for (const ConfigNode& mut : muts) {
          RETURN_IF_ERROR(mut.CheckKeys({"remove", "append"}));
          if (!mut.Has("remove")) continue;
          ASSIGN_OR_RETURN(std::string header, mut.GetString("remove", ""));
          ex.chain.strip_request_headers.push_back(absl::AsciiStrToLower(header));
        }
        continue;
      }
      if (type != kExtProcType) continue;
      ASSIGN_OR_RETURN(EnvoyExtProc ext_proc, ParseExtProc(name, tc));
      auto it = ex.clusters.find(ext_proc.cluster);
      if (it == ex.clusters.end()) {
        return tc.Child("grpc_service").Child("envoy_grpc")
            .Error("cluster_name", "names no cluster in static_resources.clusters");
      }
      if (!it->second.http2) {
        return tc.Child("grpc_service").Child("envoy_grpc")
            .Error("cluster_name", "cluster " + it->first +
                                       " must speak HTTP/2 (explicit_http_config."
                                       "http2_protocol_options) for gRPC");
      }
      ex.chain.filters.push_back(ext_proc.filter);
      ex.ext_procs.push_back(std::move(ext_proc));
    }
    if (ex.chain.filters.empty()) {
      return hcm->Error("http_filters", "has no ext_proc filter (" + std::string(kExtProcType) + ")");
    }

    Routes routes;
    RETURN_IF_ERROR(ParseRoutes(hcm->Child("route_config"), &routes));
    for (const std::string* c : {&routes.arm_cluster, &routes.default_cluster}) {
      if (ex.clusters.count(*c) == 0) {
        return hcm->Child("route_config").Error("virtual_hosts", "routes to unknown cluster " + *c);
      }
    }
    if (!ex.clusters.at(routes.default_cluster).aggregate_clusters.empty()) {
      return hcm->Child("route_config").Error(
          "virtual_hosts", "the catch-all route must name a plain cluster, not an aggregate");
    }
    RETURN_IF_ERROR(ApplyFallback(routes, hcm->Child("route_config"), &ex));
    ex.arm_header = routes.arm_header;
    ex.arm_value = routes.arm_value;
    ex.arm_cluster = routes.arm_cluster;
    ex.default_cluster = routes.default_cluster;
    ex.echoed_response_headers = routes.echoed;
    ex.feedback_path = routes.feedback_path;
    ex.feedback_status = routes.feedback_status;
    return absl::OkStatus();
  }();
  if (!status.ok()) return in_source(status);
  return ex;
}

absl::StatusOr<EnvoyExample> LoadEnvoyConfig(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  std::ostringstream text;
  text << in.rdbuf();
  return ParseEnvoyConfig(text.str(), path);
}

}  // namespace understudy::deploy
