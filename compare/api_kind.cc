// ApiKind: names and the path → API mapping.
#include <string>

#include "absl/strings/ascii.h"
#include "common/strings.h"
#include "compare/compare.h"

namespace understudy::compare {

namespace {

constexpr ApiKind kAllKinds[] = {ApiKind::kUnknown, ApiKind::kOpenAiChat, ApiKind::kOpenAiResponses,
                                 ApiKind::kAnthropicMessages, ApiKind::kOpenAiEmbeddings};

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

}  // namespace

std::string_view ApiKindName(ApiKind kind) {
  switch (kind) {
    case ApiKind::kOpenAiChat:
      return "openai_chat";
    case ApiKind::kOpenAiResponses:
      return "openai_responses";
    case ApiKind::kAnthropicMessages:
      return "anthropic_messages";
    case ApiKind::kOpenAiEmbeddings:
      return "openai_embeddings";
    case ApiKind::kUnknown:
      break;
  }
  return "unknown";
}

std::optional<ApiKind> ParseApiKindName(std::string_view name) {
  const std::string lower = absl::AsciiStrToLower(Av(name));
  for (ApiKind kind : kAllKinds) {
    if (lower == ApiKindName(kind)) return kind;
  }
  return std::nullopt;
}

ApiKind ApiKindFromPath(std::string_view path) {
  path = path.substr(0, path.find_first_of("?#"));
  if (!path.empty() && path.back() == '/') path.remove_suffix(1);
  // Each suffix starts at a '/', so "/v1/my_responses" is not "/responses".
  if (EndsWith(path, "/chat/completions")) return ApiKind::kOpenAiChat;
  if (EndsWith(path, "/responses")) return ApiKind::kOpenAiResponses;
  // Anthropic's own version segment: OpenAI's Assistants API also has
  // .../threads/{id}/messages, which is not a Messages API call.
  if (EndsWith(path, "/v1/messages")) return ApiKind::kAnthropicMessages;
  if (EndsWith(path, "/embeddings")) return ApiKind::kOpenAiEmbeddings;
  return ApiKind::kUnknown;
}

}  // namespace understudy::compare
