// shadow/shaping.h
// Per-arm request shaping: what a request must look like when it goes to
// one upstream, whether the router sent it there (the live canary arm,
// sidecar/stream_session.h) or the shadow client mirrors it (mirror.cc).
// Both use these functions and the same config, `upstreams.<arm>`:
//
//   upstreams:
//     candidate:
//       url: https://api.openai.com
//       api_key_env: CANDIDATE_KEY          # the arm's own credential
//       request:
//         set_json: {model: gpt-5-mini, reasoning.effort: low, user: null}
//         set_headers: {x-team: search}
//         remove_headers: [openai-organization]
//         path: /v1/chat/completions        # replaces the path, keeps the query
//
// An upstream that speaks another provider's API (`api: anthropic` or
// `api: openai`; absent: the client's own) gets each request translated
// first (translate/translate.h: OpenAI Chat Completions ⇄ Anthropic
// Messages), then shaped; a request with no faithful translation (e.g. the
// Responses API to Anthropic, or a feature the target lacks) is refused
// with the reason, and stays on production.
//
// `set_json` keys are dotted paths into the JSON body (objects are created
// as needed; a null value removes the field). Credentials: an upstream with
// its own key gets every client credential header removed (authorization,
// x-api-key, api-key and both upstreams' auth_header) and its own set, so a
// client's key never reaches another provider. An upstream without a key
// gets the client's headers unchanged (same provider, the client's key).
//
// Example (given const UpstreamConfig& candidate, std::string_view body):
//   if (NeedsShaping(candidate)) {
//     HeaderEdits edits = ShapeHeaders(candidate, "/v1/chat/completions?x=1");
//     // edits.remove, edits.set (lower-case names), edits.path ("" = keep)
//     absl::StatusOr<std::string> shaped = ShapeJsonBody(body, candidate.request);
//   }
//
// Thread safety: free functions on const data; thread-safe.
#ifndef UNDERSTUDY_SHADOW_SHAPING_H_
#define UNDERSTUDY_SHADOW_SHAPING_H_

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "compare/compare.h"
#include "translate/translate.h"

namespace understudy::shadow {

struct UpstreamConfig;

// The request section of one upstream.
struct RequestShaping {
  // Dotted JSON path → serialized JSON value; a JSON null removes the field.
  std::vector<std::pair<std::string, std::string>> set_json;
  std::vector<std::pair<std::string, std::string>> set_headers;  // lower-case names
  std::vector<std::string> remove_headers;                       // lower-case
  std::string path;  // replaces the request path ("" keeps the client's)

  bool ChangesBody() const { return !set_json.empty(); }
  bool empty() const {
    return set_json.empty() && set_headers.empty() && remove_headers.empty() && path.empty();
  }
};

// Header changes for one request to one upstream.
struct HeaderEdits {
  std::vector<std::string> remove;                         // lower-case names
  std::vector<std::pair<std::string, std::string>> set;    // lower-case names
  std::string path;  // the new :path with the client's query, "" = unchanged
  bool empty() const { return remove.empty() && set.empty() && path.empty(); }
};

// NeedsShaping: whether requests to `u` change at all (a key of its own or
// a non-empty request section).
bool NeedsShaping(const UpstreamConfig& u);

// IsClientCredentialHeader: a header that carries a client's credential to
// a provider (authorization, x-api-key, api-key). `name` is lower-case.
bool IsClientCredentialHeader(std::string_view name);

// ShapeHeaders returns the header edits for a request with `client_path`
// (with its query) going to `u`: with `credentials`, the credential swap
// above (`other_auth_header` is the other upstream's credential header,
// also removed when `u` has a key; the key is in the result: never log
// it), then the request section's removals, sets and path.
HeaderEdits ShapeHeaders(const UpstreamConfig& u, std::string_view client_path,
                         std::string_view other_auth_header = {}, bool credentials = true);

// The provider API an upstream speaks (`upstreams.<arm>.api`).
enum class UpstreamApi {
  kClient,     // the client's own: never translated (the default)
  kOpenAI,     // OpenAI Chat Completions
  kAnthropic,  // Anthropic Messages
};

// A request's translation: from the client's API to the upstream's.
struct Translation {
  translate::Provider from;
  translate::Provider to;
};

// TranslationFor: nullopt when `u` speaks the client's API (or the client's
// API is unknown: forwarded as is); FailedPrecondition, with the reason,
// when there is no translation (the Responses API or embeddings to an
// Anthropic upstream, an Anthropic client to an OpenAI upstream's
// Responses...).
[[nodiscard]] absl::StatusOr<std::optional<Translation>> TranslationFor(compare::ApiKind client,
                                                                       const UpstreamConfig& u);

// A whole request body made ready for one upstream.
struct ShapedRequest {
  std::string body;
  std::string path;  // the translated request's path ("" = untranslated); a
                     // configured request.path (ShapeHeaders) takes precedence
  std::vector<std::pair<std::string, std::string>> headers;  // e.g. anthropic-version
  // From the client's request, to translate the answer back.
  std::string client_model;
  bool stream = false;
  bool include_usage = false;
};

// ShapeRequest translates `body` when `t` is set (errors: translate's, e.g.
// FailedPrecondition naming the field the target lacks), then applies the
// request section (set_json; `path` overrides the translated path).
[[nodiscard]] absl::StatusOr<ShapedRequest> ShapeRequest(std::string_view body,
                                                         const UpstreamConfig& u,
                                                         const std::optional<Translation>& t);

// ShapeJsonBody applies `s.set_json` to a JSON object body. InvalidArgument
// when the body is not a JSON object or a path runs through a value that is
// not an object. Keys keep their order; new ones are appended.
[[nodiscard]] absl::StatusOr<std::string> ShapeJsonBody(std::string_view body,
                                                        const RequestShaping& s);

}  // namespace understudy::shadow

#endif  // UNDERSTUDY_SHADOW_SHAPING_H_
