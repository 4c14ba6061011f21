// ParseShadowConfig: the `upstreams:` and `shadow:` sections.
#include <re2/re2.h>

#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/status_macros.h"
#include "shadow/shadow.h"

namespace understudy::shadow {

namespace {

bool IsHeaderToken(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    const bool ok = absl::ascii_isalnum(static_cast<unsigned char>(c)) ||
                    std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
    if (!ok || c == '\0') return false;
  }
  return true;
}

bool HasControlChars(std::string_view s) {
  for (char c : s) {
    if (c == '\r' || c == '\n' || c == '\0') return true;
  }
  return false;
}

// ScalarToJson reads a YAML scalar as JSON: true/false/null, integers and
// finite numbers keep their type, anything else is a string. (A quoted
// "123" in YAML therefore becomes the number 123.)
nlohmann::json ScalarToJson(const std::string& s) {
  if (s == "true") return true;
  if (s == "false") return false;
  if (s == "null" || s == "~") return nullptr;
  int64_t i;
  if (absl::SimpleAtoi(s, &i)) return i;
  double d;
  if (!s.empty() &&
      (absl::ascii_isdigit(static_cast<unsigned char>(s[0])) || s[0] == '-' || s[0] == '.') &&
      absl::SimpleAtod(s, &d) && std::isfinite(d)) {
    return d;
  }
  return s;
}

absl::StatusOr<nlohmann::json> NodeToJson(const ConfigNode& node) {
  if (node.IsMap()) {
    nlohmann::json obj = nlohmann::json::object();
    for (const std::string& k : node.Keys()) {
      ASSIGN_OR_RETURN(obj[k], NodeToJson(node.Child(k)));
    }
    return obj;
  }
  if (node.IsSequence()) {
    nlohmann::json arr = nlohmann::json::array();
    ASSIGN_OR_RETURN(std::vector<ConfigNode> items, node.Elements());
    for (const ConfigNode& item : items) {
      ASSIGN_OR_RETURN(nlohmann::json v, NodeToJson(item));
      arr.push_back(std::move(v));
    }
    return arr;
  }
  if (!node.IsDefined() || !node.IsScalar()) return nlohmann::json(nullptr);
  ASSIGN_OR_RETURN(std::string s, node.AsString());
  return ScalarToJson(s);
}

absl::Status ParseHeaderMap(const ConfigNode& n,
                            std::vector<std::pair<std::string, std::string>>* out);

// ParseRequestShaping reads a `request:` section (shadow/shaping.h).
absl::Status ParseRequestShaping(const ConfigNode& req, RequestShaping* out) {
  if (!req.IsDefined()) return absl::OkStatus();
  RETURN_IF_ERROR(req.CheckKeys({"set_json", "set_headers", "remove_headers", "path"}));
  const ConfigNode set_json = req.Child("set_json");
  if (set_json.IsDefined()) {
    if (!set_json.IsMap()) {
      return absl::InvalidArgumentError(absl::StrCat(
          set_json.Path(), ": must be a map of JSON field (a dotted path): value"));
    }
    for (const std::string& k : set_json.Keys()) {
      for (absl::string_view part : absl::StrSplit(k, '.')) {
        if (part.empty()) return set_json.Error(k, "empty segment in the dotted path");
      }
      ASSIGN_OR_RETURN(nlohmann::json v, NodeToJson(set_json.Child(k)));
      std::string dumped;
      try {
        dumped = v.dump();
      } catch (const nlohmann::json::exception&) {
        return set_json.Error(k, "value is not valid UTF-8");
      }
      out->set_json.emplace_back(k, std::move(dumped));
    }
  }
  RETURN_IF_ERROR(ParseHeaderMap(req.Child("set_headers"), &out->set_headers));
  ASSIGN_OR_RETURN(out->remove_headers, req.GetStringList("remove_headers"));
  for (std::string& h : out->remove_headers) h = absl::AsciiStrToLower(h);
  ASSIGN_OR_RETURN(out->path, req.GetString("path", ""));
  if (!out->path.empty() && (out->path[0] != '/' || HasControlChars(out->path) ||
                             out->path.find_first_of("? ") != std::string::npos)) {
    return req.Error("path", "must be an absolute path such as /v1/chat/completions, no query");
  }
  return absl::OkStatus();
}

absl::Status ParseUpstream(const ConfigNode& n, UpstreamConfig* u) {
  RETURN_IF_ERROR(n.CheckKeys(
      {"url", "api", "api_key_env", "api_key_file", "auth_header", "auth_scheme", "request"}));
  RETURN_IF_ERROR(ParseRequestShaping(n.Child("request"), &u->request));
  ASSIGN_OR_RETURN(std::string api, n.GetString("api", ""));
  if (api == "openai") {
    u->api = UpstreamApi::kOpenAI;
  } else if (api == "anthropic") {
    u->api = UpstreamApi::kAnthropic;
    // Anthropic's credential header, unless configured otherwise.
    if (!n.Has("auth_header")) u->auth_header = "x-api-key";
    if (!n.Has("auth_scheme")) u->auth_scheme = "";
  } else if (!api.empty()) {
    return n.Error("api", absl::StrCat("must be openai or anthropic (absent: the client's own "
                                       "API), got \"", api, "\""));
  }
  ASSIGN_OR_RETURN(std::string url, n.GetString("url", ""));
  if (url.empty()) return n.Error("url", "required, e.g. http://127.0.0.1:8001");
  if (!absl::StartsWith(url, "http://") && !absl::StartsWith(url, "https://")) {
    return n.Error("url", absl::StrCat("must start with http:// or https://, got \"", url, "\""));
  }
  if (HasControlChars(url)) return n.Error("url", "must not contain control characters");
  while (absl::EndsWith(url, "/")) url.pop_back();
  u->url = url;

  ASSIGN_OR_RETURN(std::string header, n.GetString("auth_header", u->auth_header));
  header = absl::AsciiStrToLower(header);
  if (!IsHeaderToken(header)) {
    return n.Error("auth_header", absl::StrCat("not a valid header name: \"", header, "\""));
  }
  u->auth_header = header;
  ASSIGN_OR_RETURN(u->auth_scheme, n.GetString("auth_scheme", u->auth_scheme));
  if (HasControlChars(u->auth_scheme) || u->auth_scheme.find(' ') != std::string::npos) {
    return n.Error("auth_scheme", "must be one word such as Bearer, or \"\" for the bare key");
  }

  // The key's value never goes into an error message; only where it came from.
  ASSIGN_OR_RETURN(ConfigNode::Secret key, n.GetSecret("api_key_env", "api_key_file"));
  u->api_key = std::move(key.value);
  return absl::OkStatus();
}

absl::Status ParseHeaderMap(const ConfigNode& n,
                            std::vector<std::pair<std::string, std::string>>* out) {
  if (!n.IsDefined()) return absl::OkStatus();
  if (!n.IsMap()) {
    return absl::InvalidArgumentError(absl::StrCat(n.Path(), ": must be a map of header: value"));
  }
  for (const std::string& k : n.Keys()) {
    const std::string key = absl::AsciiStrToLower(k);
    if (!IsHeaderToken(key)) return n.Error(k, "not a valid header name");
    ASSIGN_OR_RETURN(std::string v, n.GetString(k, ""));
    if (HasControlChars(v)) return n.Error(k, "value must not contain line breaks");
    out->emplace_back(key, v);
  }
  return absl::OkStatus();
}

absl::Status ParseShadow(const ConfigNode& n, ShadowConfig* c) {
  RETURN_IF_ERROR(n.CheckKeys({"enabled", "sample_rate", "noise_rate", "reverse_rate", "skip",
                               "request", "timeout", "max_concurrency", "max_queue",
                               "budget_per_hour", "max_response_bytes"}));
  ASSIGN_OR_RETURN(c->enabled, n.GetBool("enabled", true));
  ASSIGN_OR_RETURN(c->sample_rate, n.GetDouble("sample_rate", 1.0, 0, 1));
  ASSIGN_OR_RETURN(c->noise_rate, n.GetDouble("noise_rate", 0.0, 0, 1));
  ASSIGN_OR_RETURN(c->reverse_rate, n.GetDouble("reverse_rate", 0.0, 0, 1));
  ASSIGN_OR_RETURN(c->timeout, n.GetDuration("timeout", absl::Seconds(30)));
  if (c->timeout < absl::Milliseconds(1)) return n.Error("timeout", "must be at least 1ms");
  ASSIGN_OR_RETURN(int64_t conc, n.GetInt("max_concurrency", 16, 1, 10000));
  c->max_concurrency = static_cast<int>(conc);
  ASSIGN_OR_RETURN(int64_t queue, n.GetInt("max_queue", 256, 0, 1 << 22));
  c->max_queue = static_cast<int>(queue);
  ASSIGN_OR_RETURN(c->budget_per_hour, n.GetDouble("budget_per_hour", 0.0, 0, 1e12));
  ASSIGN_OR_RETURN(c->max_response_bytes,
                   n.GetInt("max_response_bytes", 4 << 20, 1024, int64_t{1} << 30));

  const ConfigNode skip = n.Child("skip");
  RETURN_IF_ERROR(skip.CheckKeys({"paths", "methods", "headers"}));
  const ConfigNode paths = skip.Child("paths");
  ASSIGN_OR_RETURN(std::vector<ConfigNode> path_items, paths.Elements());
  for (const ConfigNode& item : path_items) {
    ASSIGN_OR_RETURN(std::string pattern, item.AsString());
    RE2 re(pattern, RE2::Quiet);
    if (!re.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(item.Path(), ": invalid regex: ", re.error()));
    }
    c->skip.paths.push_back(pattern);
  }
  ASSIGN_OR_RETURN(c->skip.methods, skip.GetStringList("methods"));
  for (std::string& m : c->skip.methods) m = absl::AsciiStrToUpper(m);
  ASSIGN_OR_RETURN(c->skip.headers, skip.GetStringList("headers"));
  for (std::string& h : c->skip.headers) h = absl::AsciiStrToLower(h);

  // Before upstreams.<arm>.request existed, the candidate's shaping lived
  // here (shadow-only); it is still read, for the candidate, on both paths.
  const ConfigNode req = n.Child("request");
  if (req.IsDefined()) {
    if (!c->candidate.request.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          req.Path(), ": set it in upstreams.candidate.request only (both are set)"));
    }
    RETURN_IF_ERROR(ParseRequestShaping(req, &c->candidate.request));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ShadowConfig> ParseShadowConfig(const ConfigNode& root) {
  ShadowConfig c;
  const ConfigNode upstreams = root.Child("upstreams");
  if (root.Has("upstreams")) {
    if (!upstreams.IsMap()) return absl::InvalidArgumentError("upstreams: must be a map");
    RETURN_IF_ERROR(upstreams.CheckKeys({"production", "candidate"}));
    if (upstreams.Has("production")) {
      RETURN_IF_ERROR(ParseUpstream(upstreams.Child("production"), &c.production));
    }
    if (upstreams.Has("candidate")) {
      RETURN_IF_ERROR(ParseUpstream(upstreams.Child("candidate"), &c.candidate));
    }
  }
  const ConfigNode shadow = root.Child("shadow");
  if (root.Has("shadow")) {
    if (!shadow.IsMap()) return absl::InvalidArgumentError("shadow: must be a map");
    RETURN_IF_ERROR(ParseShadow(shadow, &c));
  }
  if (c.enabled) {
    const std::string base = "upstreams";
    if (c.production.url.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(base, ".production.url: required when shadow.enabled is true"));
    }
    if (c.candidate.url.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(base, ".candidate.url: required when shadow.enabled is true"));
    }
  }
  return c;
}

}  // namespace understudy::shadow
