// Answers, streams and errors in each provider's wire format.
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "examples/fake-model/api.h"
#include "examples/fake-model/text_ops.h"

namespace understudy::fake_model::api {
namespace {

std::string Base62(uint64_t seed, int n) {
  static const char kDigits[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  Rng rng(seed);
  std::string out;
  for (int i = 0; i < n; ++i) out += kDigits[rng.Next() % 62];
  return out;
}

// One named SSE event: "event: NAME\ndata: JSON\n\n".
std::string Sse(const std::string& name, const Json& data) {
  return absl::StrCat("event: ", name, "\ndata: ", data.dump(), "\n\n");
}

const char* ChatFinish(Finish f) {
  switch (f) {
    case Finish::kLength:
      return "length";
    case Finish::kToolCall:
      return "tool_calls";
    case Finish::kStop:
    case Finish::kStopSequence:
      break;
  }
  return "stop";
}

const char* AnthropicStop(Finish f) {
  switch (f) {
    case Finish::kLength:
      return "max_tokens";
    case Finish::kToolCall:
      return "tool_use";
    case Finish::kStopSequence:
      return "stop_sequence";
    case Finish::kStop:
      break;
  }
  return "end_turn";
}

// Pieces of an answer for stream deltas (at least one).
std::vector<std::string> Pieces(const Plan& p) {
  std::vector<std::string> pieces =
      p.tool_call ? SplitEvery(p.tool_arguments, 8) : SplitForStream(p.content);
  if (pieces.empty()) pieces.emplace_back();
  return pieces;
}

std::string ChatCallId(const Plan& p) { return absl::StrFormat("call_%016x", p.call_bits); }

// ---------------------------------------------------------------- chat ---

Json ChatUsage(const GenRequest& r, const Plan& p, const AnswerContext& c) {
  return Json{{"prompt_tokens", r.prompt_tokens},
              {"completion_tokens", p.completion_tokens},
              {"total_tokens", r.prompt_tokens + p.completion_tokens},
              {"prompt_tokens_details", {{"cached_tokens", c.cached_tokens}, {"audio_tokens", 0}}},
              {"completion_tokens_details", {{"reasoning_tokens", 0}, {"audio_tokens", 0}}}};
}

// ----------------------------------------------------------- anthropic ---

std::string ToolUseId(const Plan& p) { return "toolu_01" + Base62(p.call_bits, 22); }

Json AnthropicUsage(const GenRequest& r, int output_tokens) {
  return Json{{"input_tokens", r.prompt_tokens},
              {"cache_creation_input_tokens", 0},
              {"cache_read_input_tokens", 0},
              {"output_tokens", output_tokens}};
}

Json ToolInput(const Plan& p) {
  Json input = Json::parse(p.tool_arguments, nullptr, false);
  // A truncated call has no complete input; Anthropic sends what parsed.
  if (!input.is_object()) input = Json::object();
  return input;
}

Json StopSequence(const Plan& p) {
  return p.finish == Finish::kStopSequence ? Json(p.stop_sequence) : Json();
}

// ----------------------------------------------------------- responses ---

std::string ItemId(const Plan& p) {
  return p.tool_call ? absl::StrFormat("fc_%016x%016x", p.id_bits2, p.call_bits)
                     : absl::StrFormat("msg_%016x%016x", p.id_bits2, p.call_bits);
}

bool Incomplete(const Plan& p) { return p.finish == Finish::kLength; }

Json OutputItem(const Plan& p, bool done) {
  if (p.tool_call) {
    return Json{{"type", "function_call"},
                {"id", ItemId(p)},
                {"call_id", "call_" + Base62(p.call_bits, 24)},
                {"name", p.tool_name},
                {"arguments", done ? p.tool_arguments : ""},
                {"status", !done           ? "in_progress"
                           : Incomplete(p) ? "incomplete"
                                           : "completed"}};
  }
  Json content = Json::array();
  if (done) {
    content.push_back(
        {{"type", "output_text"}, {"text", p.content}, {"annotations", Json::array()}});
  }
  return Json{{"type", "message"},
              {"id", ItemId(p)},
              {"status", !done           ? "in_progress"
                         : Incomplete(p) ? "incomplete"
                                         : "completed"},
              {"role", "assistant"},
              {"content", content}};
}

Json ResponseObject(const GenRequest& r, const Plan& p, const AnswerContext& c, bool done) {
  auto echo = [&r](const char* key, Json otherwise) {
    return r.echo.contains(key) ? r.echo[key] : otherwise;
  };
  Json usage;
  if (done) {
    usage = {{"input_tokens", r.prompt_tokens},
             {"input_tokens_details", {{"cached_tokens", c.cached_tokens}}},
             {"output_tokens", p.completion_tokens},
             {"output_tokens_details", {{"reasoning_tokens", 0}}},
             {"total_tokens", r.prompt_tokens + p.completion_tokens}};
  }
  Json incomplete_details;
  if (done && Incomplete(p)) incomplete_details = {{"reason", "max_output_tokens"}};
  return Json{{"id", RequestId(Api::kResponses, p)},
              {"object", "response"},
              {"created_at", c.created},
              {"status", !done           ? "in_progress"
                         : Incomplete(p) ? "incomplete"
                                         : "completed"},
              {"error", nullptr},
              {"incomplete_details", incomplete_details},
              {"instructions", echo("instructions", nullptr)},
              {"max_output_tokens", echo("max_output_tokens", nullptr)},
              {"model", c.model},
              {"output", done ? Json::array({OutputItem(p, true)}) : Json::array()},
              {"parallel_tool_calls", true},
              {"previous_response_id", nullptr},
              {"temperature", echo("temperature", 1.0)},
              {"text", echo("text", Json{{"format", {{"type", "text"}}}})},
              {"tool_choice", echo("tool_choice", "auto")},
              {"tools", echo("tools", Json::array())},
              {"top_p", echo("top_p", 1.0)},
              {"usage", usage},
              {"metadata", echo("metadata", Json::object())}};
}

}  // namespace

std::string RequestId(Api api, const Plan& p) {
  switch (api) {
    case Api::kChat:
      return absl::StrFormat("chatcmpl-%016x%08x", p.id_bits, p.id_bits2 & 0xffffffffULL);
    case Api::kAnthropic:
      return "msg_01" + Base62(p.id_bits ^ p.id_bits2, 22);
    case Api::kResponses:
      return absl::StrFormat("resp_%016x%016x%016x", p.id_bits, p.id_bits2, p.call_bits);
    case Api::kEmbeddings:
      break;
  }
  return absl::StrFormat("req_%016x%016x", p.id_bits, p.id_bits2);
}

std::string RenderChat(const GenRequest& r, const Plan& p, const AnswerContext& c) {
  Json message = {{"role", "assistant"}};
  if (p.tool_call) {
    message["content"] = nullptr;
    message["tool_calls"] =
        Json::array({{{"id", ChatCallId(p)},
                      {"type", "function"},
                      {"function", {{"name", p.tool_name}, {"arguments", p.tool_arguments}}}}});
  } else {
    message["content"] = p.content;
  }
  message["refusal"] = nullptr;
  Json body = {{"id", RequestId(Api::kChat, p)},
               {"object", "chat.completion"},
               {"created", c.created},
               {"model", c.model},
               {"choices", Json::array({{{"index", 0},
                                         {"message", message},
                                         {"logprobs", nullptr},
                                         {"finish_reason", ChatFinish(p.finish)}}})},
               {"usage", ChatUsage(r, p, c)},
               {"system_fingerprint", c.fingerprint}};
  return body.dump();
}

// Role chunk, deltas, final chunk with finish_reason, optional usage chunk,
// [DONE]. OpenAI's chat stream has no "event:" lines.
Stream RenderChatStream(const GenRequest& r, const Plan& p, const AnswerContext& c) {
  const std::string id = RequestId(Api::kChat, p);
  auto chunk = [&](const Json& delta, const Json& finish) {
    Json j = {{"id", id},
              {"object", "chat.completion.chunk"},
              {"created", c.created},
              {"model", c.model},
              {"system_fingerprint", c.fingerprint},
              {"choices", Json::array({{{"index", 0},
                                        {"delta", delta},
                                        {"logprobs", nullptr},
                                        {"finish_reason", finish}}})}};
    if (r.include_usage) j["usage"] = nullptr;
    return "data: " + j.dump() + "\n\n";
  };
  Stream s;
  s.burst = 2;  // the role chunk and the first delta
  if (p.tool_call) {
    s.events.push_back(chunk(
        {{"role", "assistant"},
         {"content", nullptr},
         {"tool_calls", Json::array({{{"index", 0},
                                      {"id", ChatCallId(p)},
                                      {"type", "function"},
                                      {"function", {{"name", p.tool_name}, {"arguments", ""}}}}})}},
        nullptr));
    for (const std::string& piece : SplitEvery(p.tool_arguments, 8)) {
      s.events.push_back(chunk(
          {{"tool_calls", Json::array({{{"index", 0}, {"function", {{"arguments", piece}}}}})}},
          nullptr));
    }
  } else {
    s.events.push_back(
        chunk({{"role", "assistant"}, {"content", ""}, {"refusal", nullptr}}, nullptr));
    for (const std::string& piece : SplitForStream(p.content)) {
      s.events.push_back(chunk({{"content", piece}}, nullptr));
    }
  }
  std::string tail = chunk(Json::object(), ChatFinish(p.finish));
  if (r.include_usage) {
    Json u = {{"id", id},
              {"object", "chat.completion.chunk"},
              {"created", c.created},
              {"model", c.model},
              {"system_fingerprint", c.fingerprint},
              {"choices", Json::array()},
              {"usage", ChatUsage(r, p, c)}};
    tail += "data: " + u.dump() + "\n\n";
  }
  tail += "data: [DONE]\n\n";
  s.events.push_back(std::move(tail));
  return s;
}

std::string RenderAnthropic(const GenRequest& r, const Plan& p, const AnswerContext& c) {
  Json content = Json::array();
  if (p.tool_call) {
    content.push_back({{"type", "tool_use"},
                       {"id", ToolUseId(p)},
                       {"name", p.tool_name},
                       {"input", ToolInput(p)}});
  } else {
    content.push_back({{"type", "text"}, {"text", p.content}});
  }
  Json body = {{"id", RequestId(Api::kAnthropic, p)},
               {"type", "message"},
               {"role", "assistant"},
               {"model", c.model},
               {"content", content},
               {"stop_reason", AnthropicStop(p.finish)},
               {"stop_sequence", StopSequence(p)},
               {"usage", AnthropicUsage(r, p.completion_tokens)}};
  return body.dump();
}

// message_start, content_block_start, ping, content_block_delta..., then
// content_block_stop, message_delta and message_stop together.
Stream RenderAnthropicStream(const GenRequest& r, const Plan& p, const AnswerContext& c) {
  Stream s;
  s.events.push_back(Sse("message_start", {{"type", "message_start"},
                                           {"message",
                                            {{"id", RequestId(Api::kAnthropic, p)},
                                             {"type", "message"},
                                             {"role", "assistant"},
                                             {"model", c.model},
                                             {"content", Json::array()},
                                             {"stop_reason", nullptr},
                                             {"stop_sequence", nullptr},
                                             {"usage", AnthropicUsage(r, 1)}}}}));
  Json block = p.tool_call ? Json{{"type", "tool_use"},
                                  {"id", ToolUseId(p)},
                                  {"name", p.tool_name},
                                  {"input", Json::object()}}
                           : Json{{"type", "text"}, {"text", ""}};
  s.events.push_back(
      Sse("content_block_start",
          {{"type", "content_block_start"}, {"index", 0}, {"content_block", block}}));
  s.events.push_back(Sse("ping", {{"type", "ping"}}));
  s.burst = 4;  // through the first delta
  for (const std::string& piece : Pieces(p)) {
    Json delta = p.tool_call ? Json{{"type", "input_json_delta"}, {"partial_json", piece}}
                             : Json{{"type", "text_delta"}, {"text", piece}};
    s.events.push_back(Sse("content_block_delta",
                           {{"type", "content_block_delta"}, {"index", 0}, {"delta", delta}}));
  }
  std::string tail = Sse("content_block_stop", {{"type", "content_block_stop"}, {"index", 0}});
  tail += Sse(
      "message_delta",
      {{"type", "message_delta"},
       {"delta", {{"stop_reason", AnthropicStop(p.finish)}, {"stop_sequence", StopSequence(p)}}},
       {"usage", {{"output_tokens", p.completion_tokens}}}});
  tail += Sse("message_stop", {{"type", "message_stop"}});
  s.events.push_back(std::move(tail));
  return s;
}

std::string RenderResponses(const GenRequest& r, const Plan& p, const AnswerContext& c) {
  return ResponseObject(r, p, c, /*done=*/true).dump();
}

// response.created, response.in_progress, response.output_item.added,
// (response.content_part.added,) deltas, then the .done events and
// response.completed (or response.incomplete) together. Every event carries
// its type and a sequence_number counting from 0.
Stream RenderResponsesStream(const GenRequest& r, const Plan& p, const AnswerContext& c) {
  Stream s;
  int seq = 0;
  auto event = [&seq](const std::string& type, Json fields) {
    Json e = {{"type", type}, {"sequence_number", seq++}};
    for (auto it = fields.begin(); it != fields.end(); ++it) e[it.key()] = it.value();
    return Sse(type, e);
  };
  const std::string item_id = ItemId(p);
  s.events.push_back(event("response.created", {{"response", ResponseObject(r, p, c, false)}}));
  s.events.push_back(event("response.in_progress", {{"response", ResponseObject(r, p, c, false)}}));
  s.events.push_back(
      event("response.output_item.added", {{"output_index", 0}, {"item", OutputItem(p, false)}}));
  const Json empty_part = {{"type", "output_text"}, {"text", ""}, {"annotations", Json::array()}};
  if (!p.tool_call) {
    s.events.push_back(event(
        "response.content_part.added",
        {{"item_id", item_id}, {"output_index", 0}, {"content_index", 0}, {"part", empty_part}}));
  }
  s.burst = s.events.size() + 1;  // through the first delta
  for (const std::string& piece : Pieces(p)) {
    if (p.tool_call) {
      s.events.push_back(event("response.function_call_arguments.delta",
                               {{"item_id", item_id}, {"output_index", 0}, {"delta", piece}}));
    } else {
      s.events.push_back(event("response.output_text.delta", {{"item_id", item_id},
                                                              {"output_index", 0},
                                                              {"content_index", 0},
                                                              {"delta", piece},
                                                              {"logprobs", Json::array()}}));
    }
  }
  std::string tail;
  if (p.tool_call) {
    tail += event("response.function_call_arguments.done", {{"item_id", item_id},
                                                            {"output_index", 0},
                                                            {"name", p.tool_name},
                                                            {"arguments", p.tool_arguments}});
  } else {
    tail += event("response.output_text.done", {{"item_id", item_id},
                                                {"output_index", 0},
                                                {"content_index", 0},
                                                {"text", p.content},
                                                {"logprobs", Json::array()}});
    Json part = empty_part;
    part["text"] = p.content;
    tail +=
        event("response.content_part.done",
              {{"item_id", item_id}, {"output_index", 0}, {"content_index", 0}, {"part", part}});
  }
  tail += event("response.output_item.done", {{"output_index", 0}, {"item", OutputItem(p, true)}});
  tail += event(Incomplete(p) ? "response.incomplete" : "response.completed",
                {{"response", ResponseObject(r, p, c, true)}});
  s.events.push_back(std::move(tail));
  return s;
}

// ---------------------------------------------------------- embeddings ---

std::vector<float> Embed(std::string_view model, std::string_view text, int dims) {
  if (dims < 1) dims = 1;
  std::vector<double> sum(dims, 0.0);
  const uint64_t model_seed = Fnv1a(model);
  auto add = [&sum, dims](uint64_t seed, double weight) {
    Rng rng(seed);
    // Uniform components: integer arithmetic only, the same on every
    // platform.
    for (int i = 0; i < dims; ++i) sum[i] += weight * (2.0 * rng.Uniform() - 1.0);
  };
  const std::string normalized = Normalize(text);
  for (absl::string_view word : absl::StrSplit(normalized, ' ', absl::SkipEmpty())) {
    add(Fnv1a(std::string_view(word.data(), word.size()), model_seed), 1.0);
  }
  add(Fnv1a(text, model_seed ^ 0x9E3779B97F4A7C15ULL), 0.5);
  double norm = 0;
  for (double v : sum) norm += v * v;
  norm = std::sqrt(norm);
  std::vector<float> out(dims);
  for (int i = 0; i < dims; ++i)
    out[i] = static_cast<float>(norm > 0 ? sum[i] / norm : (i == 0 ? 1 : 0));
  return out;
}

std::string RenderEmbeddings(const EmbeddingRequest& r, const std::string& model, int dims) {
  // Built by hand: each float is printed with 9 significant digits (exact
  // for a float32, so the float and base64 forms agree bit for bit).
  std::string out = R"({"object":"list","data":[)";
  for (size_t i = 0; i < r.texts.size(); ++i) {
    std::vector<float> v = Embed(model, r.texts[i], dims);
    if (i > 0) out += ",";
    absl::StrAppend(&out, R"({"object":"embedding","index":)", i, R"(,"embedding":)");
    if (r.base64) {
      std::string bytes;
      bytes.reserve(v.size() * 4);
      for (float f : v) {
        uint32_t bits;
        std::memcpy(&bits, &f, sizeof(bits));
        for (int b = 0; b < 4; ++b) bytes.push_back(static_cast<char>((bits >> (8 * b)) & 0xff));
      }
      absl::StrAppend(&out, "\"", absl::Base64Escape(bytes), "\"");
    } else {
      out += "[";
      for (size_t k = 0; k < v.size(); ++k) {
        if (k > 0) out += ",";
        out += absl::StrFormat("%.9g", v[k]);
      }
      out += "]";
    }
    out += "}";
  }
  absl::StrAppend(&out, R"(],"model":)", Json(model).dump(), R"(,"usage":{"prompt_tokens":)",
                  r.prompt_tokens, R"(,"total_tokens":)", r.prompt_tokens, "}}");
  return out;
}

// -------------------------------------------------------------- errors ---

std::string OpenAiError(const std::string& message, const std::string& type,
                        const std::string& param, const Json& code) {
  Json j;
  j["error"] = {{"message", message},
                {"type", type},
                {"param", param.empty() ? Json() : Json(param)},
                {"code", code}};
  return j.dump();
}

std::string AnthropicError(const std::string& type, const std::string& message) {
  return Json{{"type", "error"}, {"error", {{"type", type}, {"message", message}}}}.dump();
}

std::string AnthropicErrorType(int status) {
  switch (status) {
    case 400:
      return "invalid_request_error";
    case 401:
      return "authentication_error";
    case 403:
      return "permission_error";
    case 404:
      return "not_found_error";
    case 413:
      return "request_too_large";
    case 429:
      return "rate_limit_error";
    case 529:
      return "overloaded_error";
    default:
      break;
  }
  return status < 500 ? "invalid_request_error" : "api_error";
}

}  // namespace understudy::fake_model::api
