// examples/fake-model/api.h (internal to the fake model)
// The provider APIs the fake model speaks: request parsing and schema
// validation (OpenAI Chat Completions, OpenAI Responses, OpenAI Embeddings,
// Anthropic Messages), and rendering of answers, streams and errors in each
// provider's wire format. Pure functions: the server (fake_model.cc) decides
// what to answer (a Plan) and these turn it into bytes.
#ifndef UNDERSTUDY_EXAMPLES_FAKE_MODEL_API_H_
#define UNDERSTUDY_EXAMPLES_FAKE_MODEL_API_H_

#include <cstdint>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "absl/time/time.h"

namespace understudy::fake_model::api {

using Json = nlohmann::ordered_json;

enum class Api { kChat, kResponses, kEmbeddings, kAnthropic };

// A request the server refuses before planning an answer.
struct RequestError {
  int status = 400;
  std::string message;
  std::string param;  // OpenAI "param"; empty renders null
  std::string code;   // OpenAI "code"; empty renders null
};

struct ParseOptions {
  // Off: the fields the provider requires (model, Anthropic max_tokens,
  // Responses input) may be missing and message roles are not checked.
  bool validate_schema = true;
};

// A generation request (chat, responses, anthropic), after validation.
struct GenRequest {
  Api api = Api::kChat;
  std::string model;  // empty only when absent under a lenient schema
  bool stream = false;
  bool include_usage = false;  // chat: stream_options.include_usage
  bool json_mode = false;
  std::set<std::string> tool_names;  // offered tools (none when disabled)
  std::string forced_tool;
  bool last_is_tool_result = false;
  std::string last_user;  // text of the last user turn (corpus lookup)
  int prompt_tokens = 0;
  int64_t max_tokens = -1;
  std::vector<std::string> stop;
  uint64_t prompt_hash = 0;
  // Responses: request fields the response object echoes (instructions,
  // max_output_tokens, tools, tool_choice, temperature, top_p, metadata).
  Json echo = Json::object();
};

struct EmbeddingRequest {
  std::string model;
  std::vector<std::string> texts;
  int prompt_tokens = 0;
  bool base64 = false;
  int dimensions = 0;  // 0: the server's default
};

// Each returns false and fills *error for a request the provider refuses.
bool ParseChat(std::string_view body, const ParseOptions& options, GenRequest* out,
               RequestError* error);
bool ParseAnthropic(std::string_view body, const ParseOptions& options, GenRequest* out,
                    RequestError* error);
bool ParseResponses(std::string_view body, const ParseOptions& options, GenRequest* out,
                    RequestError* error);
bool ParseEmbeddings(std::string_view body, const ParseOptions& options, EmbeddingRequest* out,
                     RequestError* error);

// Why an answer ended.
enum class Finish { kStop, kLength, kToolCall, kStopSequence };

// Everything decided about one request before any byte is sent.
struct Plan {
  bool hang = false;
  int status = 200;  // 200, 429 or 500 (rendered 529 by Anthropic)
  uint64_t id_bits = 0, id_bits2 = 0, call_bits = 0;
  std::string content;  // text answer (empty for a tool call)
  bool tool_call = false;
  std::string tool_name, tool_arguments;
  Finish finish = Finish::kStop;
  std::string stop_sequence;  // the one that matched, for kStopSequence
  int completion_tokens = 0;
  absl::Duration total, ttft;
  std::vector<std::string> events;  // injected behaviours (x-fake-model-events)
};

// What every answer carries besides the plan.
struct AnswerContext {
  std::string model;
  int64_t created = 0;
  std::string fingerprint;
  int cached_tokens = 0;
};

// An SSE answer: the events (each complete, "...\n\n") and how many of them
// go out together at the time to first token; the rest are spaced over the
// remaining time, the last one holding everything after the final delta.
struct Stream {
  std::vector<std::string> events;
  size_t burst = 1;
};

// The ids of an answer, in each provider's format.
std::string RequestId(Api api, const Plan& plan);

std::string RenderChat(const GenRequest& r, const Plan& p, const AnswerContext& c);
Stream RenderChatStream(const GenRequest& r, const Plan& p, const AnswerContext& c);
std::string RenderAnthropic(const GenRequest& r, const Plan& p, const AnswerContext& c);
Stream RenderAnthropicStream(const GenRequest& r, const Plan& p, const AnswerContext& c);
std::string RenderResponses(const GenRequest& r, const Plan& p, const AnswerContext& c);
Stream RenderResponsesStream(const GenRequest& r, const Plan& p, const AnswerContext& c);

// Embed returns a unit vector of `dims` floats, a pure function of (model,
// text): the sum of one pseudo-random direction per normalized word plus
// one for the whole text, so texts sharing words are close. The first d
// components of a longer vector, renormalized, are the d-dim vector (like
// OpenAI's `dimensions`).
std::vector<float> Embed(std::string_view model, std::string_view text, int dims);
std::string RenderEmbeddings(const EmbeddingRequest& r, const std::string& model, int dims);

// Error bodies.
//   OpenAI:    {"error":{"message","type","param","code"}}
//   Anthropic: {"type":"error","error":{"type","message"}}
std::string OpenAiError(const std::string& message, const std::string& type,
                        const std::string& param, const Json& code);
std::string AnthropicError(const std::string& type, const std::string& message);
// AnthropicErrorType maps an HTTP status to Anthropic's error type.
std::string AnthropicErrorType(int status);

// Fnv1a is a platform-independent 64-bit hash.
uint64_t Fnv1a(std::string_view data, uint64_t seed = 0xcbf29ce484222325ULL);

}  // namespace understudy::fake_model::api

#endif  // UNDERSTUDY_EXAMPLES_FAKE_MODEL_API_H_
