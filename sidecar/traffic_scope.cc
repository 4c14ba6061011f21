#include "sidecar/traffic_scope.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace understudy::sidecar {

std::string_view OutOfScopeName(OutOfScope reason) {
  switch (reason) {
    case OutOfScope::kNone:
      return "";
    case OutOfScope::kPath:
      return "path";
    case OutOfScope::kMethod:
      return "method";
  }
  return "";
}

std::vector<ScopeRoute> DefaultScopeRoutes() {
  using compare::ApiKind;
  return {
      {"POST", "/v1/chat/completions", ApiKind::kOpenAiChat},
      {"POST", "/v1/responses", ApiKind::kOpenAiResponses},
      {"POST", "/v1/messages", ApiKind::kAnthropicMessages},
      {"POST", "/v1/embeddings", ApiKind::kOpenAiEmbeddings},
      {"POST", "/openai/deployments/*/chat/completions", ApiKind::kOpenAiChat},
      {"POST", "/openai/deployments/*/embeddings", ApiKind::kOpenAiEmbeddings},
      {"POST", "/openai/v1/responses", ApiKind::kOpenAiResponses},
  };
}

TrafficScope::TrafficScope() : routes_(DefaultScopeRoutes()) {}

// PathMatches walks pattern and path together; `**` may swallow anything,
// `*` anything but '/'. Backtracking is bounded by the pattern's stars,
// and patterns come from config, so the cost is small and fixed.
bool PathMatches(std::string_view pattern, std::string_view path) {
  size_t p = 0, s = 0;
  while (p < pattern.size()) {
    if (pattern[p] == '*') {
      const bool any = p + 1 < pattern.size() && pattern[p + 1] == '*';
      const std::string_view rest = pattern.substr(p + (any ? 2 : 1));
      for (size_t k = s; k <= path.size(); ++k) {
        if (PathMatches(rest, path.substr(k))) return true;
        if (k < path.size() && !any && path[k] == '/') break;
      }
      return false;
    }
    if (s >= path.size() || pattern[p] != path[s]) return false;
    ++p;
    ++s;
  }
  return s == path.size();
}

ScopeMatch TrafficScope::Match(std::string_view method, std::string_view path) const {
  const size_t query = path.find_first_of("?#");
  if (query != std::string_view::npos) path = path.substr(0, query);
  ScopeMatch m;
  for (const ScopeRoute& r : routes_) {
    if (!PathMatches(r.path, path)) continue;
    if (r.method != method) {
      m.reason = OutOfScope::kMethod;
      continue;
    }
    m.reason = OutOfScope::kNone;
    m.api = r.api;
    return m;
  }
  return m;
}

absl::StatusOr<TrafficScope> ParseTrafficScope(const ConfigNode& node) {
  if (!node.IsDefined()) return TrafficScope();
  if (!node.IsSequence()) {
    return absl::InvalidArgumentError(
        absl::StrCat(node.Path(), ": must be a list of {path, api, method}"));
  }
  ASSIGN_OR_RETURN(std::vector<ConfigNode> items, node.Elements());
  if (items.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        node.Path(), ": must list at least one route (leave it out for the default routes)"));
  }
  std::vector<ScopeRoute> routes;
  for (const ConfigNode& item : items) {
    RETURN_IF_ERROR(item.CheckKeys({"path", "api", "method"}));
    ScopeRoute r;
    ASSIGN_OR_RETURN(r.path, item.GetString("path", ""));
    if (r.path.empty() || r.path[0] != '/') return item.Error("path", "must start with '/'");
    if (r.path.find_first_of("?#") != std::string::npos) {
      return item.Error("path", "must not contain a query string (paths match without it)");
    }
    ASSIGN_OR_RETURN(std::string method, item.GetString("method", "POST"));
    r.method = absl::AsciiStrToUpper(method);
    if (r.method.empty()) return item.Error("method", "must not be empty");
    ASSIGN_OR_RETURN(std::string api, item.GetString("api", ""));
    std::optional<compare::ApiKind> kind = compare::ParseApiKindName(api);
    if (!kind.has_value() || *kind == compare::ApiKind::kUnknown) {
      return item.Error("api", absl::StrCat("unknown API \"", api,
                                            "\" (use openai_chat, openai_responses, "
                                            "anthropic_messages, openai_embeddings)"));
    }
    r.api = *kind;
    routes.push_back(std::move(r));
  }
  return TrafficScope(std::move(routes));
}

}  // namespace understudy::sidecar
