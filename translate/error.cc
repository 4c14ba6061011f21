// Error answers: the upstream's error schema and status → the client's.
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/strings.h"
#include "translate/internal.h"
#include "translate/translate.h"

namespace understudy::translate {
namespace internal {

std::string OpenAIErrorBody(const ErrorShape& shape, std::string_view message) {
  nlohmann::json error = {{"message", std::string(message)},
                          {"type", std::string(shape.type)},
                          {"param", nullptr},
                          {"code", nullptr}};
  if (!shape.code.empty()) error["code"] = std::string(shape.code);
  return Dump({{"error", std::move(error)}});
}

std::string AnthropicErrorBody(const ErrorShape& shape, std::string_view message) {
  return Dump({{"type", "error"},
               {"error", {{"type", std::string(shape.type)}, {"message", std::string(message)}}}});
}

}  // namespace internal

namespace {

constexpr size_t kMaxRawMessage = 1024;

// What an upstream error body says, whichever shape it has.
struct UpstreamError {
  std::string message;
  std::string type;
  std::string code;
};

UpstreamError ReadError(int status, std::string_view body) {
  UpstreamError e;
  const nlohmann::json j = nlohmann::json::parse(body.begin(), body.end(), nullptr,
                                                 /*allow_exceptions=*/false);
  if (j.is_object()) {
    auto error = j.find("error");
    if (error != j.end() && error->is_object()) {
      // OpenAI {"error":{...}} and Anthropic {"type":"error","error":{...}}.
      e.message = internal::StringField(*error, "message");
      e.type = internal::StringField(*error, "type");
      auto code = error->find("code");
      if (code != error->end() && code->is_string()) e.code = code->get<std::string>();
      if (code != error->end() && code->is_number_integer()) e.code = code->dump();
    } else if (error != j.end() && error->is_string()) {
      e.message = error->get<std::string>();  // some OpenAI-compatible servers
    } else {
      e.message = internal::StringField(j, "message");
    }
  }
  if (e.message.empty()) {
    // Not the upstream's error JSON (a proxy's HTML page, plain text): keep
    // its start as the message, so the client still sees what happened.
    std::string_view raw = Sv(absl::StripAsciiWhitespace(Av(body)));
    if (raw.size() > kMaxRawMessage) raw = raw.substr(0, kMaxRawMessage);
    e.message = raw.empty() ? absl::StrCat("upstream answered HTTP ", status) : std::string(raw);
  }
  return e;
}

}  // namespace

absl::StatusOr<TranslatedError> TranslateError(int status, std::string_view body, Provider from,
                                               Provider to) {
  if (status < 400 || status > 599) {
    return absl::InvalidArgumentError(
        absl::StrCat("status: ", status, " is not an error status (400..599)"));
  }
  if (from == to) return TranslatedError{status, std::string(body)};
  const UpstreamError e = ReadError(status, body);
  TranslatedError out;
  if (to == Provider::kOpenAIChat) {
    const internal::ErrorShape shape =
        internal::OpenAIErrorShape(internal::ErrorKindFromAnthropic(e.type, status), status);
    out.status = shape.status;
    out.body = internal::OpenAIErrorBody(shape, e.message);
  } else {
    const internal::ErrorShape shape = internal::AnthropicErrorShape(
        internal::ErrorKindFromOpenAI(status, e.type, e.code), status);
    out.status = shape.status;
    out.body = internal::AnthropicErrorBody(shape, e.message);
  }
  return out;
}

}  // namespace understudy::translate
