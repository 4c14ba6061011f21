// sidecar/traffic_scope.h
// Which requests are model calls. Only in-scope requests are routed to the
// candidate, mirrored, compared and judged; everything else (an embeddings
// call when it is not listed, `GET /v1/models`, a file upload, a health
// check) stays on production untouched and is counted by reason, never as
// an error.
//
// Config (`routes:`; absent → the well-known paths of every supported API):
//   routes:
//     - path: /v1/chat/completions          # `*` matches within one segment,
//       api: openai_chat                    # `**` across segments
//     - path: /openai/deployments/*/chat/completions
//       api: openai_chat
//       method: POST                        # the default
//     - path: /v1/embeddings
//       api: openai_embeddings
// Paths are matched without their query string. The first matching route
// wins.
//
// Example (given const ConfigNode& root):
//   ASSIGN_OR_RETURN(TrafficScope scope, ParseTrafficScope(root.Child("routes")));
//   ScopeMatch m = scope.Match("POST", "/v1/chat/completions?x=1");
//   bool judged = m.in_scope();   // m.api == compare::ApiKind::kOpenAiChat
//
// Thread safety: immutable after parsing; Match may be called concurrently.
#ifndef UNDERSTUDY_SIDECAR_TRAFFIC_SCOPE_H_
#define UNDERSTUDY_SIDECAR_TRAFFIC_SCOPE_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/config_node.h"
#include "compare/compare.h"

namespace understudy::sidecar {

// Why a request is not a model call.
enum class OutOfScope {
  kNone,    // in scope
  kPath,    // no route matches its path
  kMethod,  // a route matches its path, not its method
};

// OutOfScopeName is the metric label: "path" or "method" ("" for kNone).
std::string_view OutOfScopeName(OutOfScope reason);

struct ScopeMatch {
  OutOfScope reason = OutOfScope::kPath;
  compare::ApiKind api = compare::ApiKind::kUnknown;
  bool in_scope() const { return reason == OutOfScope::kNone; }
};

struct ScopeRoute {
  std::string method = "POST";  // upper-case
  std::string path;             // pattern, see above
  compare::ApiKind api = compare::ApiKind::kUnknown;
};

class TrafficScope {
 public:
  // The default scope: the well-known paths of each supported API.
  TrafficScope();
  explicit TrafficScope(std::vector<ScopeRoute> routes) : routes_(std::move(routes)) {}

  // Match classifies a request by its method and :path.
  ScopeMatch Match(std::string_view method, std::string_view path) const;

  const std::vector<ScopeRoute>& routes() const { return routes_; }

 private:
  std::vector<ScopeRoute> routes_;
};

// DefaultScopeRoutes lists the built-in routes: OpenAI chat, Responses and
// embeddings under /v1 and Azure OpenAI's /openai/deployments/*/…, and
// Anthropic Messages.
std::vector<ScopeRoute> DefaultScopeRoutes();

// ParseTrafficScope reads the `routes:` sequence; undefined → the default.
// Errors name the key path ("routes[1].api: unknown API \"chat\" (use
// openai_chat, openai_responses, anthropic_messages, openai_embeddings)").
[[nodiscard]] absl::StatusOr<TrafficScope> ParseTrafficScope(const ConfigNode& node);

// PathMatches matches a pattern against a path (no query string).
bool PathMatches(std::string_view pattern, std::string_view path);

}  // namespace understudy::sidecar

#endif  // UNDERSTUDY_SIDECAR_TRAFFIC_SCOPE_H_
