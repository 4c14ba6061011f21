// translate/translate.h
// Translates between OpenAI Chat Completions and Anthropic Messages, so a
// client speaking one API can be served by a model behind the other:
// requests, whole JSON answers, error answers and SSE streams, both ways.
// A request that cannot be carried over faithfully (a feature the target
// lacks) is refused with the field named, never half-translated; the full
// list of what is mapped, dropped and refused is in docs/translation.md.
// A pure library: no I/O and no clock (the `created` time comes in).
//
// Example (given std::string_view client_body, const std::vector<std::string>& upstream_chunks):
//   RequestOptions request_options;
//   request_options.target_model = "claude-sonnet-4-5";
//   ASSIGN_OR_RETURN(TranslatedRequest request,
//                    TranslateRequest(client_body, Provider::kOpenAIChat,
//                                     Provider::kAnthropicMessages, request_options));
//   // send request.body to request.path with request.headers, then:
//   StreamOptions stream_options;
//   stream_options.client_model = request.client_model;
//   stream_options.include_usage = request.include_usage;
//   StreamTranslator to_client(Provider::kAnthropicMessages, Provider::kOpenAIChat,
//                              stream_options);
//   std::string client_bytes;
//   for (const std::string& chunk : upstream_chunks) {
//     RETURN_IF_ERROR(to_client.Feed(chunk, &client_bytes));  // forward client_bytes now
//   }
//   RETURN_IF_ERROR(to_client.Finish(&client_bytes));
//
// Example (given int upstream_status, std::string_view upstream_body):
//   if (upstream_status >= 400) {
//     ASSIGN_OR_RETURN(TranslatedError error,
//                      TranslateError(upstream_status, upstream_body,
//                                     Provider::kAnthropicMessages, Provider::kOpenAIChat));
//     // answer the client with error.status and error.body
//   } else {
//     ASSIGN_OR_RETURN(std::string body,
//                      TranslateAnswer(upstream_body, Provider::kAnthropicMessages,
//                                      Provider::kOpenAIChat, AnswerOptions{}));
//   }
//
// Errors, the same for every function: InvalidArgument for input that is not
// what its provider sends (malformed JSON, a missing or mistyped field, an
// SSE event out of order); FailedPrecondition for valid input that the
// target cannot express (the message starts with the field's path, e.g.
// "n: 3 choices; Anthropic answers with one"); ResourceExhausted when a
// stream event exceeds StreamOptions::max_event_bytes; DataLoss when a
// stream ends before its last event.
//
// Translating a provider to itself is the identity (requests only get the
// target model).
//
// Thread safety: the free functions are thread-safe; a StreamTranslator is
// used by one thread at a time.
#ifndef UNDERSTUDY_TRANSLATE_TRANSLATE_H_
#define UNDERSTUDY_TRANSLATE_TRANSLATE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace understudy::translate {

enum class Provider { kOpenAIChat, kAnthropicMessages };

// ProviderName: "openai_chat" or "anthropic_messages".
std::string_view ProviderName(Provider provider);
// RequestPath: "/v1/chat/completions" or "/v1/messages".
std::string_view RequestPath(Provider provider);

struct RequestOptions {
  // Replaces the request's `model` when not empty.
  std::string target_model;
  // Anthropic requires max_tokens; used when an OpenAI client set neither
  // max_tokens nor max_completion_tokens. 0 refuses such requests instead.
  int64_t default_max_tokens = 4096;
  // The `anthropic-version` header sent to an Anthropic target.
  std::string anthropic_version = "2023-06-01";
};

struct TranslatedRequest {
  std::string body;  // JSON for the target
  std::string path;  // RequestPath(to)
  // Headers the target needs besides credentials (content-type, and
  // anthropic-version for Anthropic), lower-case names. Credentials are the
  // caller's: each upstream gets its own.
  std::vector<std::pair<std::string, std::string>> headers;
  bool stream = false;  // the request asks for an SSE answer
  // What the client asked for, for StreamOptions/AnswerOptions: the model
  // name to report back, and (OpenAI clients) stream_options.include_usage.
  std::string client_model;
  bool include_usage = false;
};

// TranslateRequest translates a client's request body from one API to the
// other. See the errors above; a refusal names the first field that cannot
// be carried over.
[[nodiscard]] absl::StatusOr<TranslatedRequest> TranslateRequest(std::string_view body_json,
                                                                 Provider from, Provider to,
                                                                 const RequestOptions& options);

struct AnswerOptions {
  // The model name to report; empty keeps the upstream's.
  std::string client_model;
  // `created` (Unix seconds) of an OpenAI answer, from the caller's clock.
  int64_t created_unix_seconds = 0;
};

// TranslateAnswer translates a whole (non-streaming, HTTP 2xx) JSON answer
// from the upstream's API (`from`) to the client's (`to`).
[[nodiscard]] absl::StatusOr<std::string> TranslateAnswer(std::string_view body_json, Provider from,
                                                          Provider to,
                                                          const AnswerOptions& options);

struct TranslatedError {
  int status = 0;
  std::string body;
};

// TranslateError rewrites an upstream error answer (HTTP 4xx/5xx) into the
// client's error schema and status: OpenAI {"error":{message,type,param,
// code}} ⇄ Anthropic {"type":"error","error":{type,message}}, e.g.
// Anthropic 529 overloaded_error → 503 for an OpenAI client, OpenAI 503 →
// 529 overloaded_error for an Anthropic client. A body that is not the
// upstream's error JSON is kept as the message. InvalidArgument when status
// is not in 400..599.
[[nodiscard]] absl::StatusOr<TranslatedError> TranslateError(int status, std::string_view body,
                                                             Provider from, Provider to);

struct StreamOptions {
  // The model name to report; empty keeps the upstream's.
  std::string client_model;
  // OpenAI clients: send the usage chunk before [DONE] (the client's
  // stream_options.include_usage). Anthropic clients always get usage.
  bool include_usage = false;
  // `created` (Unix seconds) of OpenAI chunks, from the caller's clock.
  int64_t created_unix_seconds = 0;
  // The largest single SSE event (its unfinished line plus its data) held
  // while waiting for the rest of it.
  size_t max_event_bytes = 1 << 20;
};

// StreamTranslator turns the upstream's SSE bytes (`from`) into the client's
// SSE events (`to`) as they arrive: each upstream event is translated as
// soon as its blank line is in, so time to first token is kept, and only an
// unfinished event is held. After an error every later call returns it;
// what was translated before it is already in *out.
class StreamTranslator {
 public:
  StreamTranslator(Provider from, Provider to, const StreamOptions& options);
  ~StreamTranslator();
  StreamTranslator(const StreamTranslator&) = delete;
  StreamTranslator& operator=(const StreamTranslator&) = delete;

  // Feed takes the next chunk (split anywhere) and appends the client's
  // events completed by it to *out.
  [[nodiscard]] absl::Status Feed(std::string_view chunk, std::string* out);
  // Finish says the upstream stream ended; appends any last events.
  // DataLoss when it ended before its final event (Anthropic message_stop,
  // OpenAI finish_reason/[DONE]) and no error event came.
  [[nodiscard]] absl::Status Finish(std::string* out);

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace understudy::translate

#endif  // UNDERSTUDY_TRANSLATE_TRANSLATE_H_
