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

absl::StatusOr<EnvoyCluster> ParseCluster(const ConfigNode& c) {
  EnvoyCluster out;
  ASSIGN_OR_RETURN(out.name, RequiredString(c, "name"));
  ASSIGN_OR_RETURN(out.type, c.GetString("type", "STATIC"));
  static const std::set<std::string> kTypes = {"STATIC", "STRICT_DNS", "LOGICAL_DNS", "EDS",
                                               "ORIGINAL_DST"};
  if (kTypes.count(out.type) == 0) return c.Error("type", "unknown cluster type " + out.type);
  const ConfigNode http_options =
      c.Child("typed_extension_protocol_options").Child(kHttpOptionsKey);
  out.http2 = http_options.Child("explicit_http_config").Child("http2_protocol_options").IsMap();
  if (http_options.IsDefined()) {
    ASSIGN_OR_RETURN(std::string type, http_options.GetString("@type", ""));
    if (type != absl::StrCat("type.googleapis.com/", kHttpOptionsKey)) {
      return http_options.Error("@type", "must be type.googleapis.com/" +
                                             std::string(kHttpOptionsKey));
    }
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
  }

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

struct Routes {
  std::string arm_header, arm_value, arm_cluster, default_cluster;
  std::map<std::string, std::string> echoed;
  std::string feedback_path;
  int feedback_status = 0;
};

absl::Status ParseRoutes(const ConfigNode& rc, Routes* out) {
  ASSIGN_OR_RETURN(std::vector<ConfigNode> vhosts, rc.Child("virtual_hosts").Elements());
  if (vhosts.empty()) return rc.Error("virtual_hosts", "must not be empty");
  for (const ConfigNode& vh : vhosts) {
    ASSIGN_OR_RETURN(std::string name, RequiredString(vh, "name"));
    ASSIGN_OR_RETURN(std::vector<std::string> domains, vh.GetStringList("domains"));
    if (domains.empty()) return vh.Error("domains", "must not be empty");
    ASSIGN_OR_RETURN(std::vector<ConfigNode> routes, vh.Child("routes").Elements());
    bool catch_all_seen = false;
    for (const ConfigNode& r : routes) {
      RETURN_IF_ERROR(r.CheckKeys({"name", "match", "route", "direct_response", "redirect",
                                   "response_headers_to_add", "request_headers_to_add",
                                   "request_headers_to_remove", "response_headers_to_remove",
                                   "typed_per_filter_config", "metadata", "decorator"}));
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
      if (r.Has("route")) {
        ASSIGN_OR_RETURN(cluster, RequiredString(r.Child("route"), "cluster"));
        ASSIGN_OR_RETURN(absl::Duration timeout,
                         DurationField(r.Child("route"), "timeout", absl::Seconds(15)));
        (void)timeout;
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
        continue;
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
