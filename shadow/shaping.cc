#include "shadow/shaping.h"

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/status_macros.h"
#include "common/strings.h"
#include "shadow/shadow.h"

namespace understudy::shadow {

bool NeedsShaping(const UpstreamConfig& u) {
  return !u.api_key.empty() || !u.request.empty() || u.api != UpstreamApi::kClient;
}

absl::StatusOr<std::optional<Translation>> TranslationFor(compare::ApiKind client,
                                                         const UpstreamConfig& u) {
  using translate::Provider;
  if (u.api == UpstreamApi::kClient || client == compare::ApiKind::kUnknown) return std::nullopt;
  const bool anthropic_upstream = u.api == UpstreamApi::kAnthropic;
  switch (client) {
    case compare::ApiKind::kOpenAiChat:
      if (!anthropic_upstream) return std::nullopt;
      return Translation{Provider::kOpenAIChat, Provider::kAnthropicMessages};
    case compare::ApiKind::kAnthropicMessages:
      if (anthropic_upstream) return std::nullopt;
      return Translation{Provider::kAnthropicMessages, Provider::kOpenAIChat};
    case compare::ApiKind::kOpenAiResponses:
    case compare::ApiKind::kOpenAiEmbeddings:
      if (!anthropic_upstream) return std::nullopt;
      return absl::FailedPreconditionError(absl::StrCat(
          "api: ", Av(compare::ApiKindName(client)), " has no Anthropic Messages counterpart"));
    case compare::ApiKind::kUnknown:
      break;
  }
  return std::nullopt;
}

absl::StatusOr<ShapedRequest> ShapeRequest(std::string_view body, const UpstreamConfig& u,
                                           const std::optional<Translation>& t) {
  ShapedRequest out;
  std::string translated;
  if (t.has_value()) {
    ASSIGN_OR_RETURN(translate::TranslatedRequest r,
                     translate::TranslateRequest(body, t->from, t->to, {}));
    translated = std::move(r.body);
    body = translated;
    out.path = std::move(r.path);
    out.headers = std::move(r.headers);
    out.client_model = std::move(r.client_model);
    out.stream = r.stream;
    out.include_usage = r.include_usage;
  }
  if (u.request.ChangesBody()) {
    ASSIGN_OR_RETURN(out.body, ShapeJsonBody(body, u.request));
  } else {
    out.body = std::string(body);
  }
  return out;
}

bool IsClientCredentialHeader(std::string_view name) {
  return name == "authorization" || name == "x-api-key" || name == "api-key";
}

HeaderEdits ShapeHeaders(const UpstreamConfig& u, std::string_view client_path,
                         std::string_view other_auth_header, bool credentials) {
  HeaderEdits e;
  if (credentials && !u.api_key.empty()) {
    for (std::string_view name : {"authorization", "x-api-key", "api-key"}) {
      e.remove.emplace_back(name);
    }
    for (std::string_view name : {std::string_view(u.auth_header), other_auth_header}) {
      if (!name.empty() && !IsClientCredentialHeader(name)) e.remove.emplace_back(name);
    }
    e.set.emplace_back(u.auth_header, u.auth_scheme.empty()
                                          ? u.api_key
                                          : absl::StrCat(u.auth_scheme, " ", u.api_key));
  }
  for (const std::string& name : u.request.remove_headers) e.remove.push_back(name);
  for (const auto& kv : u.request.set_headers) e.set.push_back(kv);
  if (!u.request.path.empty()) {
    const size_t q = client_path.find('?');
    e.path = q == std::string_view::npos ? u.request.path
                                         : absl::StrCat(u.request.path, Av(client_path.substr(q)));
  }
  return e;
}

absl::StatusOr<std::string> ShapeJsonBody(std::string_view body, const RequestShaping& s) {
  nlohmann::ordered_json doc =
      nlohmann::ordered_json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) {
    return absl::InvalidArgumentError("request body is not a JSON object");
  }
  for (const auto& [path, value_json] : s.set_json) {
    nlohmann::ordered_json v = nlohmann::ordered_json::parse(value_json, nullptr, false);
    if (v.is_discarded()) {
      return absl::InvalidArgumentError(absl::StrCat("set_json.", path, ": value is not JSON"));
    }
    std::vector<absl::string_view> parts = absl::StrSplit(path, '.');
    nlohmann::ordered_json* at = &doc;
    bool missing = false;
    for (size_t i = 0; i + 1 < parts.size(); ++i) {
      const std::string key(parts[i]);
      auto it = at->find(key);
      if (it == at->end()) {
        if (v.is_null()) {  // removing under a missing object: nothing to do
          missing = true;
          break;
        }
        (*at)[key] = nlohmann::ordered_json::object();
        it = at->find(key);
      } else if (!it->is_object()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "set_json.", path, ": \"", key, "\" in the request body is not an object"));
      }
      at = &*it;
    }
    if (missing) continue;
    const std::string last(parts.back());
    if (v.is_null()) {
      at->erase(last);
    } else {
      (*at)[last] = std::move(v);
    }
  }
  return doc.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

}  // namespace understudy::shadow
