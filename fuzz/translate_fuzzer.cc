// Fuzzes the OpenAI ⇄ Anthropic translators (translate/translate.h):
// requests, whole answers, errors and SSE streams fed in chunks.
//
// Input: byte 0 picks the operation and direction, byte 1 the chunk size
// (streams) or the HTTP status (errors); the rest is the body.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "translate/translate.h"

namespace tr = understudy::translate;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const bool to_anthropic = data[0] & 1;
  const tr::Provider from = to_anthropic ? tr::Provider::kOpenAIChat : tr::Provider::kAnthropicMessages;
  const tr::Provider to = to_anthropic ? tr::Provider::kAnthropicMessages : tr::Provider::kOpenAIChat;
  std::string_view body(reinterpret_cast<const char*>(data) + 2, size - 2);
  switch ((data[0] >> 1) % 4) {
    case 0: {
      tr::RequestOptions options;
      options.target_model = "target";
      options.default_max_tokens = (data[1] & 1) ? 0 : 4096;
      (void)tr::TranslateRequest(body, from, to, options);
      break;
    }
    case 1: {
      tr::AnswerOptions options;
      options.client_model = (data[1] & 1) ? "client" : "";
      options.created_unix_seconds = 1700000000;
      (void)tr::TranslateAnswer(body, from, to, options);
      break;
    }
    case 2:
      (void)tr::TranslateError(400 + data[1] % 200, body, from, to);
      break;
    case 3: {
      tr::StreamOptions options;
      options.include_usage = data[1] & 0x80;
      options.max_event_bytes = 4096;
      tr::StreamTranslator t(from, to, options);
      const size_t chunk = 1 + (data[1] & 0x7f);
      std::string out;
      for (size_t i = 0; i < body.size(); i += chunk) {
        if (!t.Feed(body.substr(i, chunk), &out).ok()) break;
      }
      (void)t.Finish(&out);
      break;
    }
  }
  return 0;
}
