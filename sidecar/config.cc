#include "sidecar/config.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "sidecar/feedback.h"
#include "coordination/config.h"

namespace understudy::sidecar {

namespace {

namespace v1 = understudy::v1;
using ProcessingMode = envoy::extensions::filters::http::ext_proc::v3::ProcessingMode;

absl::StatusOr<BodySendMode> ParseBodyMode(const ConfigNode& node, std::string_view key,
                                           BodySendMode def) {
  ASSIGN_OR_RETURN(std::string s, node.GetString(key, ""));
  s = absl::AsciiStrToLower(s);
  if (s.empty()) return def;
  if (s == "none") return ProcessingMode::NONE;
  if (s == "streamed") return ProcessingMode::STREAMED;
  if (s == "buffered") return ProcessingMode::BUFFERED;
  if (s == "buffered_partial") return ProcessingMode::BUFFERED_PARTIAL;
  if (s == "full_duplex_streamed") return ProcessingMode::FULL_DUPLEX_STREAMED;
  return node.Error(key, absl::StrCat("must be one of none, streamed, buffered, "
                                      "buffered_partial, full_duplex_streamed; got \"", s, "\""));
}

absl::Status ParseExtProc(const ConfigNode& n, SidecarConfig* c) {
  RETURN_IF_ERROR(n.CheckKeys({"listen", "unix_socket", "max_receive_message_bytes",
                               "max_concurrent_streams", "drain_timeout", "request_body_mode",
                               "response_body_mode"}));
  ASSIGN_OR_RETURN(c->extproc.listen, n.GetString("listen", c->extproc.listen));
  ASSIGN_OR_RETURN(c->extproc.unix_socket, n.GetString("unix_socket", ""));
  if (c->extproc.listen.empty() && c->extproc.unix_socket.empty()) {
    return n.Error("listen", "must be set unless unix_socket is");
  }
  ASSIGN_OR_RETURN(c->extproc.max_receive_message_bytes,
                   n.GetInt("max_receive_message_bytes", 64 << 20, 4 << 10, 1 << 30));
  ASSIGN_OR_RETURN(c->extproc.max_concurrent_streams,
                   n.GetInt("max_concurrent_streams", 100000, 1, 10000000));
  ASSIGN_OR_RETURN(c->drain_timeout, n.GetDuration("drain_timeout", absl::Seconds(10)));
  ASSIGN_OR_RETURN(c->session.request_body_mode,
                   ParseBodyMode(n, "request_body_mode", ProcessingMode::STREAMED));
  ASSIGN_OR_RETURN(c->session.response_body_mode,
                   ParseBodyMode(n, "response_body_mode", ProcessingMode::STREAMED));
  return absl::OkStatus();
}

absl::Status ParseRouting(const ConfigNode& n, SidecarConfig* c) {
  if (n.Child("weight_percent").IsDefined()) {
    return n.Error("weight_percent",
                   "the candidate's weight comes from rollout.stages (or `understudy "
                   "set-weight`), not from routing");
  }
  RETURN_IF_ERROR(n.CheckKeys({"sticky_header", "salt", "fallback"}));
  ASSIGN_OR_RETURN(std::string sticky, n.GetString("sticky_header", ""));
  c->routing.sticky_header = absl::AsciiStrToLower(sticky);
  ASSIGN_OR_RETURN(c->routing.salt, n.GetString("salt", ""));
  ASSIGN_OR_RETURN(c->routing.fallback, n.GetBool("fallback", true));
  c->session.fallback_enabled = c->routing.fallback;
  return absl::OkStatus();
}

absl::Status ParseCapture(const ConfigNode& n, SidecarConfig* c) {
  RETURN_IF_ERROR(n.CheckKeys({"max_body_bytes", "queue_capacity", "workers", "secret_headers",
                               "decode_max_bytes", "decode_max_ratio"}));
  ASSIGN_OR_RETURN(c->capture.max_body_bytes,
                   n.GetInt("max_body_bytes", 1 << 20, 0, int64_t{1} << 30));
  ASSIGN_OR_RETURN(c->capture.queue_capacity, n.GetInt("queue_capacity", 4096, 1, 1 << 22));
  ASSIGN_OR_RETURN(int64_t workers, n.GetInt("workers", 1, 1, 64));
  c->capture.workers = static_cast<int>(workers);
  ASSIGN_OR_RETURN(c->capture.decode_limits.max_output_bytes,
                   n.GetInt("decode_max_bytes", 16 << 20, 1 << 10, int64_t{1} << 30));
  ASSIGN_OR_RETURN(c->capture.decode_limits.max_ratio,
                   n.GetDouble("decode_max_ratio", 100, 2, 1e6));
  ASSIGN_OR_RETURN(std::vector<std::string> secrets, n.GetStringList("secret_headers"));
  for (std::string& s : secrets) s = absl::AsciiStrToLower(s);
  c->session.secret_headers = std::move(secrets);
  return absl::OkStatus();
}

// A shadow stage (0%) is judged on shadow comparisons only; with shadowing
// off it would hold forever. A plan the user wrote is refused; the default
// plan drops its shadow stage, with a warning (docs/operations.md).
absl::Status CheckShadowStage(const ConfigNode& root, SidecarConfig* c) {
  const bool shadowing = c->shadow.enabled && c->shadow.sample_rate > 0;
  if (shadowing) return absl::OkStatus();
  const std::string why = !root.Has("shadow") ? "there is no `shadow:` section"
                          : !c->shadow.enabled ? "shadow.enabled is false"
                                               : "shadow.sample_rate is 0";
  std::vector<rollout::StageConfig>& stages = c->rollout.stages;
  for (size_t i = 0; i < stages.size(); ++i) {
    if (stages[i].percent != 0) continue;
    if (root.Child("rollout").Has("stages")) {
      return absl::InvalidArgumentError(absl::StrCat(
          "rollout.stages[", i, "]: a shadow stage (percent 0) needs shadow comparisons, but ",
          why, "; configure upstreams.production.url, upstreams.candidate.url and `shadow:`, or "
          "start the plan at a live stage"));
    }
    stages.erase(stages.begin() + static_cast<std::ptrdiff_t>(i));
    c->warnings.push_back(absl::StrCat(
        "rollout: the default plan's shadow stage is skipped because ", why,
        "; the rollout starts at ", stages.empty() ? 100 : stages.front().percent,
        "% live traffic without shadow comparisons (configure `shadow:` to keep it)"));
    break;
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<SidecarConfig> ParseSidecarConfig(const ConfigNode& root) {
  SidecarConfig c;
  RETURN_IF_ERROR(root.CheckKeys({"extproc", "admin", "routing", "routes", "capture", "feedback",
                                  "compare", "rollout", "storage", "upstreams", "shadow",
                                  "telemetry", "drift", "coordination", "eval", "revisit"}));
  RETURN_IF_ERROR(ParseExtProc(root.Child("extproc"), &c));
  ASSIGN_OR_RETURN(c.admin, admin::ParseAdminConfig(root.Child("admin")));
  RETURN_IF_ERROR(ParseRouting(root.Child("routing"), &c));
  RETURN_IF_ERROR(ParseCapture(root.Child("capture"), &c));
  const ConfigNode feedback = root.Child("feedback");
  RETURN_IF_ERROR(feedback.CheckKeys({"path", "max_body_bytes", "max_per_client_per_minute",
                                      "signing_key_env", "signing_key_file", "verify_key_env",
                                      "verify_key_file", "token_ttl"}));
  ASSIGN_OR_RETURN(c.feedback.path, feedback.GetString("path", c.feedback.path));
  if (!c.feedback.path.empty() && c.feedback.path[0] != '/') {
    return feedback.Error("path", "must start with '/' (or be empty to disable)");
  }
  ASSIGN_OR_RETURN(c.feedback.max_body_bytes,
                   feedback.GetInt("max_body_bytes", c.feedback.max_body_bytes, 16, 1 << 20));
  ASSIGN_OR_RETURN(c.feedback.max_per_client_per_minute,
                   feedback.GetInt("max_per_client_per_minute",
                                   c.feedback.max_per_client_per_minute, 0, 1000000));
  // The config key a feedback key was given under: `<name>_env` or `<name>_file`.
  auto key_source = [&feedback](const std::string& name) {
    return feedback.Child(name + "_env").IsDefined() ? name + "_env" : name + "_file";
  };
  // A key from `<name>_env` or `<name>_file`, at least kMinKeyBytes long.
  auto read_key = [&](const std::string& name) -> absl::StatusOr<ConfigNode::Secret> {
    ASSIGN_OR_RETURN(ConfigNode::Secret key, feedback.GetSecret(name + "_env", name + "_file"));
    if (!key.value.empty() && key.value.size() < FeedbackSigner::kMinKeyBytes) {
      return feedback.Error(key_source(name),
                            absl::StrCat("the key from ", key.source, " is shorter than ",
                                         FeedbackSigner::kMinKeyBytes,
                                         " bytes (e.g. `openssl rand -hex 32`)"));
    }
    return key;
  };
  ASSIGN_OR_RETURN(ConfigNode::Secret key, read_key("signing_key"));
  ASSIGN_OR_RETURN(ConfigNode::Secret verify_key, read_key("verify_key"));
  if (!verify_key.value.empty() && key.value.empty()) {
    return feedback.Error(key_source("verify_key"),
                          "a key that only checks tokens needs a signing key beside it "
                          "(feedback.signing_key_env or feedback.signing_key_file)");
  }
  c.feedback.signing_key = std::move(key.value);
  c.feedback.signing_key_source = std::move(key.source);
  c.feedback.verify_key = std::move(verify_key.value);
  c.feedback.verify_key_source = std::move(verify_key.source);
  ASSIGN_OR_RETURN(c.feedback.token_ttl, feedback.GetDuration("token_ttl", c.feedback.token_ttl));
  if (c.feedback.token_ttl < absl::Seconds(1) || c.feedback.token_ttl > absl::Hours(24 * 90)) {
    return feedback.Error("token_ttl", "must be between 1s and 90 days");
  }
  if (!c.feedback.signing_key.empty() && c.feedback.path.empty()) {
    return feedback.Error("signing_key_env", "signs tokens for the feedback path, which is off "
                                             "(feedback.path is empty)");
  }
  ASSIGN_OR_RETURN(c.compare, compare::ParseCompareOptions(root.Child("compare")));
  ASSIGN_OR_RETURN(c.rollout, rollout::ParseRolloutConfig(root.Child("rollout")));
  ASSIGN_OR_RETURN(c.storage, storage::ParseStorageConfig(root.Child("storage")));
  ASSIGN_OR_RETURN(c.shadow, shadow::ParseShadowConfig(root));
  ASSIGN_OR_RETURN(c.telemetry, telemetry::ParseTelemetryConfig(root.Child("telemetry")));
  ASSIGN_OR_RETURN(c.drift, drift::ParseDriftConfig(root.Child("drift")));
  ASSIGN_OR_RETURN(c.revisit, drift::ParseRevisitConfig(root.Child("revisit")));
  ASSIGN_OR_RETURN(c.eval, shadow::ParseEvalConfig(root.Child("eval")));
  for (v1::Arm arm : c.eval.enabled ? c.eval.arms : std::vector<v1::Arm>{}) {
    const bool production = arm == v1::ARM_PRODUCTION;
    if ((production ? c.shadow.production : c.shadow.candidate).url.empty()) {
      return root.Child("eval").Error(
          "arms", absl::StrCat("asks ", production ? "production" : "candidate",
                               ", which needs upstreams.", production ? "production" : "candidate",
                               ".url"));
    }
  }
  ASSIGN_OR_RETURN(c.fleet, coordination::ParseCoordinationConfig(root.Child("coordination")));
  ASSIGN_OR_RETURN(TrafficScope scope, ParseTrafficScope(root.Child("routes")));
  c.scope = std::make_shared<const TrafficScope>(std::move(scope));
  c.session.scope = c.scope;
  c.shadow.decode_limits = c.capture.decode_limits;
  RETURN_IF_ERROR(CheckShadowStage(root, &c));
  c.session.sticky_header = c.routing.sticky_header;
  c.session.feedback_path = c.feedback.path;
  c.session.feedback_max_body_bytes = c.feedback.max_body_bytes;
  c.session.max_body_bytes = c.capture.max_body_bytes;
  // The live arms are shaped like the shadow calls, from the same
  // upstreams.<arm> sections (shadow/shaping.h); their credential headers
  // are never captured.
  for (const auto& [u, slot] :
       {std::pair{&c.shadow.production, &c.session.production_upstream},
        std::pair{&c.shadow.candidate, &c.session.candidate_upstream}}) {
    if (shadow::NeedsShaping(*u)) *slot = std::make_shared<const shadow::UpstreamConfig>(*u);
    if (!IsSecretHeader(u->auth_header, c.session.secret_headers)) {
      c.session.secret_headers.push_back(u->auth_header);
    }
  }
  return c;
}

absl::StatusOr<SidecarConfig> LoadSidecarConfig(const std::string& path) {
  ASSIGN_OR_RETURN(ConfigNode root, ConfigNode::ParseFile(path));
  return ParseSidecarConfig(root);
}

}  // namespace understudy::sidecar
