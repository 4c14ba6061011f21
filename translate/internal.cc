#include "translate/internal.h"

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "absl/strings/str_cat.h"
#include "common/strings.h"
#include "translate/translate.h"

namespace understudy::translate {

std::string_view ProviderName(Provider provider) {
  return provider == Provider::kOpenAIChat ? "openai_chat" : "anthropic_messages";
}

std::string_view RequestPath(Provider provider) {
  return provider == Provider::kOpenAIChat ? "/v1/chat/completions" : "/v1/messages";
}

namespace internal {

std::optional<std::string_view> OpenAIFinishReason(std::string_view stop_reason) {
  if (stop_reason == "end_turn" || stop_reason == "stop_sequence") return "stop";
  if (stop_reason == "max_tokens" || stop_reason == "model_context_window_exceeded") {
    return "length";
  }
  if (stop_reason == "tool_use") return "tool_calls";
  if (stop_reason == "refusal") return "content_filter";
  return std::nullopt;
}

std::optional<std::string_view> AnthropicStopReason(std::string_view finish_reason) {
  if (finish_reason == "stop") return "end_turn";
  if (finish_reason == "length") return "max_tokens";
  if (finish_reason == "tool_calls" || finish_reason == "function_call") return "tool_use";
  if (finish_reason == "content_filter") return "refusal";
  return std::nullopt;
}

namespace {

ErrorKind ErrorKindFromStatus(int status) {
  switch (status) {
    case 401:
      return ErrorKind::kAuthentication;
    case 402:
      return ErrorKind::kBilling;
    case 403:
      return ErrorKind::kPermission;
    case 404:
      return ErrorKind::kNotFound;
    case 413:
      return ErrorKind::kTooLarge;
    case 429:
      return ErrorKind::kRateLimit;
    case 503:
    case 529:
      return ErrorKind::kOverloaded;
    case 504:
      return ErrorKind::kTimeout;
    default:
      return status >= 500 ? ErrorKind::kApi : ErrorKind::kInvalidRequest;
  }
}

}  // namespace

ErrorKind ErrorKindFromAnthropic(std::string_view type, int status) {
  if (type == "invalid_request_error") return ErrorKind::kInvalidRequest;
  if (type == "authentication_error") return ErrorKind::kAuthentication;
  if (type == "billing_error") return ErrorKind::kBilling;
  if (type == "permission_error") return ErrorKind::kPermission;
  if (type == "not_found_error") return ErrorKind::kNotFound;
  if (type == "request_too_large") return ErrorKind::kTooLarge;
  if (type == "rate_limit_error") return ErrorKind::kRateLimit;
  if (type == "api_error") return ErrorKind::kApi;
  if (type == "overloaded_error") return ErrorKind::kOverloaded;
  if (type == "timeout_error") return ErrorKind::kTimeout;
  if (status == 0) return ErrorKind::kApi;  // a mid-stream error of an unknown type
  return ErrorKindFromStatus(status);
}

ErrorKind ErrorKindFromOpenAI(int status, std::string_view type, std::string_view code) {
  if (type == "insufficient_quota" || code == "insufficient_quota") return ErrorKind::kBilling;
  if (status == 0) {  // a mid-stream error: only its type says anything
    if (type == "invalid_request_error") return ErrorKind::kInvalidRequest;
    if (type == "requests" || type == "tokens" || code == "rate_limit_exceeded") {
      return ErrorKind::kRateLimit;
    }
    return ErrorKind::kApi;
  }
  return ErrorKindFromStatus(status);
}

ErrorShape OpenAIErrorShape(ErrorKind kind, int upstream_status) {
  const bool client_error = upstream_status >= 400 && upstream_status < 500;
  const bool server_error = upstream_status >= 500 && upstream_status < 600 &&
                            upstream_status != 529;  // 529 is not an HTTP status OpenAI uses
  switch (kind) {
    case ErrorKind::kInvalidRequest:
      return {client_error ? upstream_status : 400, "invalid_request_error", ""};
    case ErrorKind::kAuthentication:
      return {401, "invalid_request_error", "invalid_api_key"};
    case ErrorKind::kBilling:
      return {429, "insufficient_quota", "insufficient_quota"};
    case ErrorKind::kPermission:
      return {403, "permission_error", ""};
    case ErrorKind::kNotFound:
      return {404, "invalid_request_error", ""};
    case ErrorKind::kTooLarge:
      return {413, "invalid_request_error", ""};
    case ErrorKind::kRateLimit:
      return {429, "requests", "rate_limit_exceeded"};
    case ErrorKind::kApi:
      return {server_error ? upstream_status : 500, "server_error", ""};
    case ErrorKind::kOverloaded:
      return {503, "server_error", ""};
    case ErrorKind::kTimeout:
      return {504, "server_error", ""};
  }
  return {500, "server_error", ""};
}

ErrorShape AnthropicErrorShape(ErrorKind kind, int upstream_status) {
  const bool client_error = upstream_status >= 400 && upstream_status < 500;
  const bool server_error = upstream_status >= 500 && upstream_status < 600;
  switch (kind) {
    case ErrorKind::kInvalidRequest:
      return {client_error ? upstream_status : 400, "invalid_request_error", ""};
    case ErrorKind::kAuthentication:
      return {401, "authentication_error", ""};
    case ErrorKind::kBilling:
      return {402, "billing_error", ""};
    case ErrorKind::kPermission:
      return {403, "permission_error", ""};
    case ErrorKind::kNotFound:
      return {404, "not_found_error", ""};
    case ErrorKind::kTooLarge:
      return {413, "request_too_large", ""};
    case ErrorKind::kRateLimit:
      return {429, "rate_limit_error", ""};
    case ErrorKind::kApi:
      return {server_error ? upstream_status : 500, "api_error", ""};
    case ErrorKind::kOverloaded:
      return {529, "overloaded_error", ""};
    case ErrorKind::kTimeout:
      return {504, "timeout_error", ""};
  }
  return {500, "api_error", ""};
}

absl::StatusOr<nlohmann::json> ParseJsonObject(std::string_view body, std::string_view what) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(body.begin(), body.end());
  } catch (const nlohmann::json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(Av(what), ": invalid JSON: ", e.what()));
  }
  if (!j.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(Av(what), ": must be a JSON object, got ", j.type_name()));
  }
  return j;
}

std::string Dump(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string StringField(const nlohmann::json& j, const char* key) {
  if (!j.is_object()) return "";
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

int64_t ClampTokenCount(int64_t n) { return std::clamp<int64_t>(n, 0, kMaxTokenCount); }

int64_t TokenCountField(const nlohmann::json& j, const char* key) {
  if (!j.is_object()) return 0;
  auto it = j.find(key);
  if (it == j.end() || !it->is_number()) return 0;
  if (it->is_number_unsigned()) {
    return static_cast<int64_t>(std::min<uint64_t>(it->get<uint64_t>(), kMaxTokenCount));
  }
  if (it->is_number_integer()) return ClampTokenCount(it->get<int64_t>());
  // A float: compared as a double first, since converting one outside
  // int64's range is undefined.
  const double d = it->get<double>();
  if (!std::isfinite(d) || d != std::floor(d) || d <= 0) return 0;
  return d >= static_cast<double>(kMaxTokenCount) ? kMaxTokenCount : static_cast<int64_t>(d);
}

bool BoolField(const nlohmann::json& j, const char* key, bool def) {
  if (!j.is_object()) return def;
  auto it = j.find(key);
  return it != j.end() && it->is_boolean() ? it->get<bool>() : def;
}

absl::Status Refuse(std::string_view field, std::string_view why) {
  return absl::FailedPreconditionError(absl::StrCat(Av(field), ": ", Av(why)));
}

absl::Status Malformed(std::string_view field, std::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat(Av(field), ": ", Av(why)));
}

}  // namespace internal
}  // namespace understudy::translate
