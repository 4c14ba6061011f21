// translate/internal.h (internal to translate/)
// What the request, answer, error and stream translators share: the
// finish-reason and error-type tables, and nlohmann helpers that never throw
// past the caller.
#ifndef UNDERSTUDY_TRANSLATE_INTERNAL_H_
#define UNDERSTUDY_TRANSLATE_INTERNAL_H_

#include <nlohmann/json.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace understudy::translate::internal {

// OpenAIFinishReason maps an Anthropic stop_reason to a finish_reason:
// end_turn, stop_sequence → stop; max_tokens, model_context_window_exceeded
// → length; tool_use → tool_calls; refusal → content_filter. nullopt for
// one with no OpenAI equivalent (pause_turn) or unknown.
std::optional<std::string_view> OpenAIFinishReason(std::string_view stop_reason);
// AnthropicStopReason maps a finish_reason to a stop_reason: stop →
// end_turn, length → max_tokens, tool_calls and function_call → tool_use,
// content_filter → refusal. nullopt for an unknown one.
std::optional<std::string_view> AnthropicStopReason(std::string_view finish_reason);

// The provider-neutral kind of an error answer.
enum class ErrorKind {
  kInvalidRequest,
  kAuthentication,
  kBilling,
  kPermission,
  kNotFound,
  kTooLarge,
  kRateLimit,
  kApi,
  kOverloaded,
  kTimeout,
};

// ErrorKindFromAnthropic reads an Anthropic error type; an unknown or empty
// type falls back to the HTTP status.
ErrorKind ErrorKindFromAnthropic(std::string_view type, int status);
// ErrorKindFromOpenAI reads an OpenAI error by its HTTP status, except that
// an insufficient_quota type or code is a billing error.
ErrorKind ErrorKindFromOpenAI(int status, std::string_view type, std::string_view code);

struct ErrorShape {
  int status;
  std::string_view type;
  std::string_view code;  // OpenAI only; empty → null
};
// OpenAIErrorShape / AnthropicErrorShape: the status, type (and code) for a
// kind. `upstream_status` is kept for the kinds that cover a range
// (another 4xx as an invalid request, another 5xx as a server error) and
// for status 0 (a mid-stream error) the kind's usual status is given.
ErrorShape OpenAIErrorShape(ErrorKind kind, int upstream_status);
ErrorShape AnthropicErrorShape(ErrorKind kind, int upstream_status);

// OpenAIErrorBody: {"error":{"message","type","param":null,"code"}}.
std::string OpenAIErrorBody(const ErrorShape& shape, std::string_view message);
// AnthropicErrorBody: {"type":"error","error":{"type","message"}}.
std::string AnthropicErrorBody(const ErrorShape& shape, std::string_view message);

// ParseJsonObject parses a body; InvalidArgument "<what>: invalid JSON: ..." when
// it is not JSON, "<what>: must be a JSON object" when it is not an object.
absl::StatusOr<nlohmann::json> ParseJsonObject(std::string_view body, std::string_view what);
// Dump serialises without throwing (invalid UTF-8 is replaced by U+FFFD).
std::string Dump(const nlohmann::json& j);

// StringField returns the string at `key` of an object, "" when `j` is not
// an object or the member is absent or not a string.
std::string StringField(const nlohmann::json& j, const char* key);

// Token counts from an upstream's `usage` are clamped to [0,
// kMaxTokenCount], so the sums and differences the translators make of them
// cannot overflow, whatever number an upstream sends.
inline constexpr int64_t kMaxTokenCount = int64_t{1} << 50;
int64_t ClampTokenCount(int64_t n);
// TokenCountField reads a token count at `key` of an object: an integer,
// or an integral float in range; 0 when absent, not a number, fractional or
// not finite; clamped as above.
int64_t TokenCountField(const nlohmann::json& j, const char* key);
// BoolField returns the boolean at `key`, `def` when absent or not a boolean.
bool BoolField(const nlohmann::json& j, const char* key, bool def);

// Refuse builds the FailedPrecondition of an untranslatable field:
// "<field>: <why>".
absl::Status Refuse(std::string_view field, std::string_view why);
// Malformed builds the InvalidArgument of a field that breaks its own API:
// "<field>: <why>".
absl::Status Malformed(std::string_view field, std::string_view why);

}  // namespace understudy::translate::internal

#endif  // UNDERSTUDY_TRANSLATE_INTERNAL_H_
