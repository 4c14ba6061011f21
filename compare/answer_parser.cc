// Parsing of OpenAI Chat Completions, OpenAI Responses and Anthropic
// Messages responses, JSON and SSE, into ModelAnswer, and of request bodies
// into RequestInfo. simdjson's DOM parser does the JSON; the SSE framing
// (lines, events) is done here so that chunk boundaries never matter: only
// complete lines are ever interpreted.
#include <simdjson.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "common/strings.h"
#include "compare/compare.h"
#include "compare/simdjson_util.h"

namespace understudy::compare {

namespace {

using internal::AsArray;
using internal::GetElem;
using internal::GetInt;
using internal::GetStr;
using simdjson::dom::array;
using simdjson::dom::element;
using simdjson::dom::object;

// The families of answer shapes; a known ApiKind admits one of them.
enum class Family { kNone, kChat, kAnthropic, kResponses };

Family FamilyOf(ApiKind kind) {
  switch (kind) {
    case ApiKind::kOpenAiChat:
      return Family::kChat;
    case ApiKind::kAnthropicMessages:
      return Family::kAnthropic;
    case ApiKind::kOpenAiResponses:
      return Family::kResponses;
    case ApiKind::kOpenAiEmbeddings:
    case ApiKind::kUnknown:
      break;
  }
  return Family::kNone;
}

std::string NormaliseFinish(std::string_view raw) {
  if (raw == "end_turn" || raw == "stop_sequence" || raw == "stop") return "stop";
  if (raw == "max_tokens" || raw == "length") return "length";
  if (raw == "tool_use" || raw == "tool_calls" || raw == "function_call") return "tool_calls";
  if (raw == "refusal" || raw == "content_filter") return "content_filter";
  return std::string(raw);
}

void ReadError(const element& err, ModelAnswer* a) { a->error = internal::ReadAnswerError(err); }

void ReadOpenAIUsage(const element& usage, ModelAnswer* a) {
  a->usage.input_tokens = GetInt(usage, "prompt_tokens");
  a->usage.output_tokens = GetInt(usage, "completion_tokens");
  element details;
  if (GetElem(usage, "prompt_tokens_details", &details)) {
    a->usage.cached_tokens = GetInt(details, "cached_tokens");
  }
  if (GetElem(usage, "completion_tokens_details", &details)) {
    a->usage.reasoning_tokens = GetInt(details, "reasoning_tokens");
  }
}

void ReadResponsesUsage(const element& usage, ModelAnswer* a) {
  a->usage.input_tokens = GetInt(usage, "input_tokens");
  a->usage.output_tokens = GetInt(usage, "output_tokens");
  element details;
  a->usage.cached_tokens =
      GetElem(usage, "input_tokens_details", &details) ? GetInt(details, "cached_tokens") : 0;
  a->usage.reasoning_tokens =
      GetElem(usage, "output_tokens_details", &details) ? GetInt(details, "reasoning_tokens") : 0;
}

// ResponsesFinish derives the normalised finish reason of a Responses
// answer from its status (ModelAnswer::finish_reason).
std::string ResponsesFinish(std::string_view status, std::string_view incomplete_reason,
                            bool refused, bool called_functions) {
  if (status == "completed") {
    if (refused) return "content_filter";
    if (called_functions) return "tool_calls";
    return "stop";
  }
  if (status == "incomplete") {
    if (incomplete_reason == "max_output_tokens") return "length";
    if (incomplete_reason == "content_filter") return "content_filter";
    return incomplete_reason.empty() ? "incomplete" : std::string(incomplete_reason);
  }
  if (status.empty() || status == "failed" || status == "queued" || status == "in_progress") {
    return "";
  }
  return std::string(status);  // e.g. "cancelled"
}

std::string_view IncompleteReason(const element& response) {
  element details;
  return GetElem(response, "incomplete_details", &details) ? GetStr(details, "reason")
                                                           : std::string_view();
}

// The error of a failed response object: its "error" ({code, message}), or
// a bare "response_failed".
AnswerError ResponsesFailure(const element& response) {
  element err;
  if (GetElem(response, "error", &err)) return internal::ReadAnswerError(err);
  return AnswerError{"response_failed", ""};
}

// ReadResponsesFunctionCall reads a function_call output item.
ToolCall ReadResponsesFunctionCall(const element& item) {
  ToolCall tc;
  tc.id = std::string(GetStr(item, "call_id"));
  if (tc.id.empty()) tc.id = std::string(GetStr(item, "id"));
  tc.name = std::string(GetStr(item, "name"));
  tc.arguments_json = std::string(GetStr(item, "arguments"));
  return tc;
}

// ReadResponsesMessage appends the output_text and refusal parts of a
// message item to the text; sets *refused on a refusal part.
void ReadResponsesMessage(const element& item, ModelAnswer* a, bool* refused) {
  element content;
  if (!GetElem(item, "content", &content)) return;
  if (content.is_string()) {  // lenient: some gateways flatten the parts
    a->text.append(content.get_string().value_unsafe());
    return;
  }
  for (element part : AsArray(content)) {
    std::string_view type = GetStr(part, "type");
    if (type == "output_text") {
      a->text.append(GetStr(part, "text"));
    } else if (type == "refusal") {
      a->text.append(GetStr(part, "refusal"));
      *refused = true;
    }
  }
}

// ReadResponsesOutput reads a Responses "output" array: message items and
// function calls; reasoning and built-in tool items are not the answer.
void ReadResponsesOutput(const element& output, ModelAnswer* a, bool* refused) {
  for (element item : AsArray(output)) {
    std::string_view type = GetStr(item, "type");
    if (type == "message") {
      ReadResponsesMessage(item, a, refused);
    } else if (type == "function_call") {
      a->tool_calls.push_back(ReadResponsesFunctionCall(item));
    }
  }
}

// IsResponsesObject: a Responses API response object.
bool IsResponsesObject(const element& root) {
  element output;
  return GetStr(root, "object") == "response" ||
         (GetElem(root, "output", &output) && output.is_array() &&
          !GetElem(root, "choices", &output));
}

absl::Status ParseResponsesJson(const element& root, ModelAnswer* a) {
  a->format = WireFormat::kOpenAIResponsesJson;
  a->model = std::string(GetStr(root, "model"));
  element v;
  if (GetElem(root, "usage", &v)) ReadResponsesUsage(v, a);
  bool refused = false;
  if (GetElem(root, "output", &v)) {
    if (!v.is_array()) {
      return absl::InvalidArgumentError("OpenAI response \"output\" is not an array");
    }
    ReadResponsesOutput(v, a, &refused);
  }
  const std::string_view status = GetStr(root, "status");
  if (status == "failed" || GetElem(root, "error", &v)) a->error = ResponsesFailure(root);
  a->finish_reason =
      ResponsesFinish(status, IncompleteReason(root), refused, !a->tool_calls.empty());
  return absl::OkStatus();
}

// Anthropic sends input usage in message_start and cumulative output usage
// in message_delta; only overwrite fields that are present.
void ReadAnthropicUsage(const element& usage, ModelAnswer* a) {
  element v;
  if (GetElem(usage, "input_tokens", &v)) a->usage.input_tokens = GetInt(usage, "input_tokens");
  if (GetElem(usage, "output_tokens", &v)) a->usage.output_tokens = GetInt(usage, "output_tokens");
  if (GetElem(usage, "cache_read_input_tokens", &v)) {
    a->usage.cached_tokens = GetInt(usage, "cache_read_input_tokens");
  }
}

absl::Status ParseOpenAIJson(const element& root, ModelAnswer* a) {
  a->format = WireFormat::kOpenAIJson;
  a->model = std::string(GetStr(root, "model"));
  a->system_fingerprint = std::string(GetStr(root, "system_fingerprint"));
  element usage;
  if (GetElem(root, "usage", &usage)) ReadOpenAIUsage(usage, a);
  array choices;
  if (root["choices"].get_array().get(choices) != simdjson::SUCCESS) {
    return absl::InvalidArgumentError("OpenAI response has no \"choices\" array");
  }
  // Multiple choices (n > 1): the first one (index 0) is the answer.
  element choice;
  bool found = false;
  for (element c : choices) {
    if (GetInt(c, "index") == 0) {
      choice = c;
      found = true;
      break;
    }
  }
  if (!found) return absl::OkStatus();  // no choices: an empty answer
  a->finish_reason = NormaliseFinish(GetStr(choice, "finish_reason"));
  element message;
  if (!GetElem(choice, "message", &message)) return absl::OkStatus();
  element content;
  if (GetElem(message, "content", &content)) {
    if (content.is_string()) {
      a->text = std::string(content.get_string().value_unsafe());
    } else if (content.is_array()) {
      for (element part : AsArray(content)) {
        a->text.append(GetStr(part, "text"));
      }
    }
  }
  std::string_view refusal = GetStr(message, "refusal");
  if (a->text.empty() && !refusal.empty()) a->text = std::string(refusal);
  array calls;
  if (message["tool_calls"].get_array().get(calls) == simdjson::SUCCESS) {
    for (element call : calls) {
      ToolCall tc;
      tc.id = std::string(GetStr(call, "id"));
      element fn;
      if (GetElem(call, "function", &fn)) {
        tc.name = std::string(GetStr(fn, "name"));
        tc.arguments_json = std::string(GetStr(fn, "arguments"));
      }
      a->tool_calls.push_back(std::move(tc));
    }
  }
  return absl::OkStatus();
}

absl::Status ParseAnthropicJson(const element& root, ModelAnswer* a) {
  a->format = WireFormat::kAnthropicJson;
  a->model = std::string(GetStr(root, "model"));
  element usage;
  if (GetElem(root, "usage", &usage)) ReadAnthropicUsage(usage, a);
  a->finish_reason = NormaliseFinish(GetStr(root, "stop_reason"));
  array content;
  if (root["content"].get_array().get(content) != simdjson::SUCCESS) {
    return absl::InvalidArgumentError("Anthropic message has no \"content\" array");
  }
  for (element block : content) {
    std::string_view type = GetStr(block, "type");
    if (type == "text") {
      a->text.append(GetStr(block, "text"));
    } else if (type == "tool_use") {
      ToolCall tc;
      tc.id = std::string(GetStr(block, "id"));
      tc.name = std::string(GetStr(block, "name"));
      element input;
      tc.arguments_json = GetElem(block, "input", &input) ? simdjson::minify(input) : "{}";
      a->tool_calls.push_back(std::move(tc));
    }
  }
  return absl::OkStatus();
}

bool LooksLikeSse(std::string_view body) {
  for (std::string_view prefix : {"data:", "event:", "id:", "retry:", ":"}) {
    if (body.substr(0, prefix.size()) == prefix) return true;
  }
  return false;
}

}  // namespace

ModelAnswer ModelAnswer::FromError(std::string type, std::string message) {
  ModelAnswer a;
  a.error = AnswerError{std::move(type), std::move(message)};
  return a;
}

bool ModelAnswer::operator==(const ModelAnswer& o) const {
  return text == o.text && tool_calls == o.tool_calls && finish_reason == o.finish_reason &&
         usage == o.usage && model == o.model && system_fingerprint == o.system_fingerprint &&
         error == o.error && stream_ok == o.stream_ok && format == o.format;
}

struct AnswerParser::Impl {
  enum class Mode { kDetecting, kJson, kSse, kGarbage };

  int http_status = 0;
  ApiKind kind = ApiKind::kUnknown;
  Family want = Family::kNone;  // FamilyOf(kind): kNone accepts any
  Mode mode = Mode::kDetecting;
  bool finished = false;
  std::string buf;      // JSON: whole body; SSE: unconsumed tail (a partial line)
  size_t total_bytes = 0;

  // SSE event state.
  std::string event_name;
  std::string event_data;
  bool has_data = false;
  int events = 0;           // events recognised as OpenAI or Anthropic
  int bad_events = 0;       // malformed or unrecognised data
  bool done = false;        // [DONE], message_stop or a Responses terminal event seen
  bool is_anthropic = false, is_openai = false, is_responses = false;
  ModelAnswer answer;
  // OpenAI: delta tool_calls[].index → position in answer.tool_calls.
  std::vector<std::pair<int64_t, size_t>> openai_tool_index;
  // Anthropic: content block index → position in answer.tool_calls (or -1).
  std::vector<std::pair<int64_t, int64_t>> anthropic_blocks;
  std::vector<bool> anthropic_args_started;
  // Responses: function_call output_index → position in answer.tool_calls.
  std::vector<std::pair<int64_t, size_t>> responses_calls;
  // Responses: output indices whose text or refusal came as deltas.
  std::vector<int64_t> responses_text_items;
  bool responses_output_seen = false;  // any output item or delta event
  bool responses_refused = false;
  std::string responses_status;  // "completed" / "incomplete" / "failed" at the end
  std::string responses_incomplete_reason;
  simdjson::dom::parser parser;

  void Feed(std::string_view chunk);
  void ConsumeLines(bool at_end);
  void Line(std::string_view line);
  void Dispatch();
  Family Classify(const element& root, std::string_view type) const;
  void OpenAIEvent(const element& root);
  void AnthropicEvent(const element& root, std::string_view type);
  void ResponsesEvent(const element& root, std::string_view type);
  ToolCall* ResponsesCall(int64_t output_index);
  absl::StatusOr<ModelAnswer> Finish();
  absl::StatusOr<ModelAnswer> FinishJson();
};

void AnswerParser::Impl::Feed(std::string_view chunk) {
  if (finished || chunk.empty()) return;
  total_bytes += chunk.size();
  buf.append(chunk.data(), chunk.size());
  if (mode == Mode::kDetecting) {
    size_t i = 0;
    while (i < buf.size() && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\r' ||
                              buf[i] == '\n')) {
      ++i;
    }
    // A UTF-8 byte-order mark may precede either format.
    constexpr std::string_view kBom = "\xEF\xBB\xBF";
    const std::string_view head(buf.data() + i, std::min(buf.size() - i, kBom.size()));
    if (head.size() < kBom.size() && kBom.substr(0, head.size()) == head) return;  // wait
    if (head == kBom) i += kBom.size();
    if (i >= buf.size()) return;
    char c = buf[i];
    if (c == '{' || c == '[') {
      mode = Mode::kJson;
      buf.erase(0, i);  // JSON allows the whitespace, not the mark
    } else {
      // Wait for enough bytes to tell "data:" from garbage.
      std::string_view rest(buf.data() + i, buf.size() - i);
      if (rest.size() < 6 && rest.find_first_of("\r\n") == std::string_view::npos) {
        for (std::string_view p : {"data:", "event:", "id:", "retry:", ":"}) {
          if (p.substr(0, rest.size()) == rest) return;
        }
      }
      mode = LooksLikeSse(rest) ? Mode::kSse : Mode::kGarbage;
      buf.erase(0, i);
    }
  }
  if (mode == Mode::kSse) ConsumeLines(false);
  if (mode == Mode::kGarbage) buf.clear();
}

void AnswerParser::Impl::ConsumeLines(bool at_end) {
  size_t start = 0;
  const size_t n = buf.size();
  while (start < n) {
    size_t i = start;
    while (i < n && buf[i] != '\n' && buf[i] != '\r') ++i;
    if (i == n) break;  // incomplete line
    size_t next = i + 1;
    if (buf[i] == '\r') {
      if (i + 1 == n && !at_end) break;  // may be the first half of "\r\n"
      if (i + 1 < n && buf[i + 1] == '\n') next = i + 2;
    }
    Line(std::string_view(buf.data() + start, i - start));
    start = next;
  }
  buf.erase(0, start);
  if (at_end && !buf.empty()) {
    Line(buf);
    buf.clear();
  }
}

void AnswerParser::Impl::Line(std::string_view line) {
  if (line.empty()) {
    Dispatch();
    return;
  }
  if (line[0] == ':') return;  // comment / keep-alive
  size_t colon = line.find(':');
  std::string_view field = line.substr(0, colon);
  std::string_view value;
  if (colon != std::string_view::npos) {
    value = line.substr(colon + 1);
    if (!value.empty() && value[0] == ' ') value.remove_prefix(1);
  }
  if (field == "data") {
    if (has_data) event_data.push_back('\n');
    event_data.append(value.data(), value.size());
    has_data = true;
  } else if (field == "event") {
    event_name = std::string(value);
  }
  // "id" and "retry" do not matter for an answer.
}

void AnswerParser::Impl::Dispatch() {
  if (!has_data) {
    event_name.clear();
    return;
  }
  std::string_view data = event_data;
  if (data == "[DONE]") {
    if (want == Family::kAnthropic) {
      ++bad_events;
    } else if (want == Family::kResponses || (want == Family::kNone && is_responses)) {
      // Some gateways end a Responses stream with [DONE] as well: harmless.
    } else {
      done = true;
      is_openai = true;
    }
  } else {
    element root;
    if (parser.parse(event_data.data(), event_data.size(), true).get(root) != simdjson::SUCCESS ||
        !root.is_object()) {
      ++bad_events;
    } else {
      std::string_view type = GetStr(root, "type");
      // Responses events repeat their type as the SSE event name.
      if (type.empty() && event_name.rfind("response.", 0) == 0) type = event_name;
      switch (Classify(root, type)) {
        case Family::kChat:
          is_openai = true;
          ++events;
          OpenAIEvent(root);
          break;
        case Family::kAnthropic:
          is_anthropic = true;
          ++events;
          AnthropicEvent(root, type);
          break;
        case Family::kResponses:
          is_responses = true;
          ++events;
          ResponsesEvent(root, type);
          break;
        case Family::kNone:
          ++bad_events;
          break;
      }
    }
  }
  event_data.clear();
  event_name.clear();
  has_data = false;
}

// Classify tells which API an SSE event belongs to (kNone: none, or not the
// one wanted).
Family AnswerParser::Impl::Classify(const element& root, std::string_view type) const {
  element tmp;
  Family family = Family::kNone;
  if (type.rfind("response.", 0) == 0) {
    family = Family::kResponses;
  } else if (type == "error") {
    // Anthropic: {"type":"error","error":{...}}; Responses: {"type":"error",
    // "code":...,"message":...}. The stream so far, or the kind, decides.
    if (want != Family::kNone) {
      family = want;
    } else if (is_responses) {
      family = Family::kResponses;
    } else if (is_anthropic || GetElem(root, "error", &tmp)) {
      family = Family::kAnthropic;
    } else {
      family = Family::kResponses;
    }
  } else if (!type.empty() && type != "chat.completion.chunk" &&
             (type.substr(0, 8) == "message_" || type.substr(0, 14) == "content_block_" ||
              type == "ping")) {
    family = Family::kAnthropic;
  } else if (GetElem(root, "choices", &tmp) || GetElem(root, "error", &tmp) ||
             GetStr(root, "object") == "chat.completion.chunk" || GetElem(root, "usage", &tmp)) {
    family = Family::kChat;
  }
  if (want != Family::kNone && family != want) return Family::kNone;
  return family;
}

void AnswerParser::Impl::OpenAIEvent(const element& root) {
  ModelAnswer& a = answer;
  element err;
  if (GetElem(root, "error", &err)) {
    ReadError(err, &a);
    return;
  }
  if (a.model.empty()) a.model = std::string(GetStr(root, "model"));
  std::string_view fp = GetStr(root, "system_fingerprint");
  if (!fp.empty()) a.system_fingerprint = std::string(fp);
  element usage;
  if (GetElem(root, "usage", &usage)) ReadOpenAIUsage(usage, &a);
  array choices;
  if (root["choices"].get_array().get(choices) != simdjson::SUCCESS) return;
  for (element choice : choices) {
    if (GetInt(choice, "index") != 0) continue;  // first choice only
    std::string_view finish = GetStr(choice, "finish_reason");
    if (!finish.empty()) a.finish_reason = NormaliseFinish(finish);
    element delta;
    if (!GetElem(choice, "delta", &delta)) continue;
    a.text.append(GetStr(delta, "content"));
    std::string_view refusal = GetStr(delta, "refusal");
    a.text.append(refusal);
    array calls;
    if (delta["tool_calls"].get_array().get(calls) != simdjson::SUCCESS) continue;
    for (element call : calls) {
      int64_t idx = GetInt(call, "index");
      size_t pos = a.tool_calls.size();
      bool known = false;
      for (const auto& [k, p] : openai_tool_index) {
        if (k == idx) {
          pos = p;
          known = true;
        }
      }
      if (!known) {
        openai_tool_index.emplace_back(idx, pos);
        a.tool_calls.emplace_back();
      }
      ToolCall& tc = a.tool_calls[pos];
      std::string_view id = GetStr(call, "id");
      if (!id.empty()) tc.id = std::string(id);
      element fn;
      if (GetElem(call, "function", &fn)) {
        std::string_view name = GetStr(fn, "name");
        if (!name.empty()) tc.name.append(name);
        tc.arguments_json.append(GetStr(fn, "arguments"));
      }
    }
  }
}

void AnswerParser::Impl::AnthropicEvent(const element& root, std::string_view type) {
  ModelAnswer& a = answer;
  if (type == "message_start") {
    element msg;
    if (!GetElem(root, "message", &msg)) return;
    a.model = std::string(GetStr(msg, "model"));
    element usage;
    if (GetElem(msg, "usage", &usage)) ReadAnthropicUsage(usage, &a);
  } else if (type == "content_block_start") {
    int64_t idx = GetInt(root, "index");
    element block;
    if (!GetElem(root, "content_block", &block)) return;
    std::string_view btype = GetStr(block, "type");
    int64_t pos = -1;
    if (btype == "tool_use") {
      ToolCall tc;
      tc.id = std::string(GetStr(block, "id"));
      tc.name = std::string(GetStr(block, "name"));
      element input;
      // The start event carries input {} and the real input follows as
      // input_json_delta; keep the start input only if no delta comes.
      tc.arguments_json = GetElem(block, "input", &input) ? simdjson::minify(input) : "";
      pos = static_cast<int64_t>(a.tool_calls.size());
      a.tool_calls.push_back(std::move(tc));
      anthropic_args_started.resize(a.tool_calls.size(), false);
    } else if (btype == "text") {
      a.text.append(GetStr(block, "text"));
    }
    anthropic_blocks.emplace_back(idx, pos);
  } else if (type == "content_block_delta") {
    int64_t idx = GetInt(root, "index");
    element delta;
    if (!GetElem(root, "delta", &delta)) return;
    std::string_view dtype = GetStr(delta, "type");
    if (dtype == "text_delta") {
      a.text.append(GetStr(delta, "text"));
    } else if (dtype == "input_json_delta") {
      int64_t pos = -1;
      for (const auto& [k, p] : anthropic_blocks) {
        if (k == idx) pos = p;
      }
      if (pos < 0) {
        ++bad_events;
        return;
      }
      ToolCall& tc = a.tool_calls[static_cast<size_t>(pos)];
      if (!anthropic_args_started[static_cast<size_t>(pos)]) {
        tc.arguments_json.clear();
        anthropic_args_started[static_cast<size_t>(pos)] = true;
      }
      tc.arguments_json.append(GetStr(delta, "partial_json"));
    }
  } else if (type == "message_delta") {
    element delta;
    if (GetElem(root, "delta", &delta)) {
      std::string_view stop = GetStr(delta, "stop_reason");
      if (!stop.empty()) a.finish_reason = NormaliseFinish(stop);
    }
    element usage;
    if (GetElem(root, "usage", &usage)) ReadAnthropicUsage(usage, &a);
  } else if (type == "message_stop") {
    done = true;
  } else if (type == "error") {
    element err;
    if (GetElem(root, "error", &err)) {
      ReadError(err, &a);
    } else {
      a.error = AnswerError{"error", ""};
    }
  }
}

ToolCall* AnswerParser::Impl::ResponsesCall(int64_t output_index) {
  for (const auto& [index, pos] : responses_calls) {
    if (index == output_index) return &answer.tool_calls[pos];
  }
  return nullptr;
}

void AnswerParser::Impl::ResponsesEvent(const element& root, std::string_view type) {
  ModelAnswer& a = answer;
  element response, item;
  const int64_t output_index = GetInt(root, "output_index");
  if (type == "response.created" || type == "response.in_progress" || type == "response.queued") {
    if (GetElem(root, "response", &response)) {
      std::string_view model = GetStr(response, "model");
      if (!model.empty()) a.model = std::string(model);
    }
  } else if (type == "response.output_item.added") {
    responses_output_seen = true;
    if (GetElem(root, "item", &item) && GetStr(item, "type") == "function_call" &&
        ResponsesCall(output_index) == nullptr) {
      responses_calls.emplace_back(output_index, a.tool_calls.size());
      a.tool_calls.push_back(ReadResponsesFunctionCall(item));
    }
  } else if (type == "response.output_text.delta" || type == "response.refusal.delta") {
    responses_output_seen = true;
    a.text.append(GetStr(root, "delta"));
    if (type == "response.refusal.delta") responses_refused = true;
    if (std::find(responses_text_items.begin(), responses_text_items.end(), output_index) ==
        responses_text_items.end()) {
      responses_text_items.push_back(output_index);
    }
  } else if (type == "response.function_call_arguments.delta" ||
             type == "response.function_call_arguments.done") {
    responses_output_seen = true;
    ToolCall* tc = ResponsesCall(output_index);
    if (tc == nullptr) {
      ++bad_events;  // arguments of a call that was never announced
      return;
    }
    if (type == "response.function_call_arguments.delta") {
      tc->arguments_json.append(GetStr(root, "delta"));
    } else {
      element args;
      if (GetElem(root, "arguments", &args) && args.is_string()) {
        tc->arguments_json = std::string(args.get_string().value_unsafe());
      }
    }
  } else if (type == "response.output_item.done") {
    responses_output_seen = true;
    if (!GetElem(root, "item", &item)) return;
    std::string_view item_type = GetStr(item, "type");
    if (item_type == "function_call") {
      // The finished item is authoritative for the call.
      ToolCall done_call = ReadResponsesFunctionCall(item);
      ToolCall* tc = ResponsesCall(output_index);
      if (tc == nullptr) {
        responses_calls.emplace_back(output_index, a.tool_calls.size());
        a.tool_calls.push_back(std::move(done_call));
        return;
      }
      if (!done_call.id.empty()) tc->id = std::move(done_call.id);
      if (!done_call.name.empty()) tc->name = std::move(done_call.name);
      element args;
      if (GetElem(item, "arguments", &args)) {
        tc->arguments_json = std::move(done_call.arguments_json);
      }
    } else if (item_type == "message" &&
               std::find(responses_text_items.begin(), responses_text_items.end(),
                         output_index) == responses_text_items.end()) {
      // A message whose text came without deltas.
      ReadResponsesMessage(item, &a, &responses_refused);
    }
  } else if (type == "response.completed" || type == "response.incomplete" ||
             type == "response.failed") {
    done = true;
    responses_status = std::string(type.substr(9));
    const bool has_response = GetElem(root, "response", &response);
    if (type == "response.failed") {
      // The error is in the response object; some servers put it on the event.
      element err;
      a.error = (has_response && GetElem(response, "error", &err)) || GetElem(root, "error", &err)
                    ? internal::ReadAnswerError(err)
                    : AnswerError{"response_failed", ""};
    }
    if (!has_response) return;
    std::string_view model = GetStr(response, "model");
    if (!model.empty()) a.model = std::string(model);
    element v;
    if (GetElem(response, "usage", &v)) ReadResponsesUsage(v, &a);
    responses_incomplete_reason = std::string(IncompleteReason(response));
    // A stream that sent no output events carries its output here only.
    if (!responses_output_seen && GetElem(response, "output", &v)) {
      ReadResponsesOutput(v, &a, &responses_refused);
    }
  } else if (type == "error") {
    element err;
    if (GetElem(root, "error", &err)) {
      ReadError(err, &a);
    } else {
      AnswerError e;
      e.type = std::string(GetStr(root, "code"));
      if (e.type.empty()) e.type = "error";
      e.message = std::string(GetStr(root, "message"));
      a.error = std::move(e);
    }
  }
  // Other events (content parts, text done, reasoning, annotations,
  // built-in tool progress) add nothing to the answer.
}

absl::StatusOr<ModelAnswer> AnswerParser::Impl::FinishJson() {
  element root;
  auto fail = [&](std::string msg) -> absl::StatusOr<ModelAnswer> {
    if (http_status >= 400) {
      return ModelAnswer::FromError(absl::StrCat("http_", http_status),
                                    buf.substr(0, std::min<size_t>(buf.size(), 512)));
    }
    return absl::InvalidArgumentError(std::move(msg));
  };
  simdjson::error_code ec = parser.parse(buf.data(), buf.size(), true).get(root);
  if (ec != simdjson::SUCCESS) {
    return fail(absl::StrCat("response body is not valid JSON: ", simdjson::error_message(ec)));
  }
  if (!root.is_object()) return fail("response body is not a JSON object");
  ModelAnswer a;
  element err, tmp;
  std::string_view type = GetStr(root, "type");
  // A failed response object carries "error" too: it is read as a response.
  const bool responses =
      (want == Family::kNone || want == Family::kResponses) && IsResponsesObject(root);
  if (!responses && GetElem(root, "error", &err)) {
    switch (want) {
      case Family::kChat:
        a.format = WireFormat::kOpenAIJson;
        break;
      case Family::kAnthropic:
        a.format = WireFormat::kAnthropicJson;
        break;
      case Family::kResponses:
        a.format = WireFormat::kOpenAIResponsesJson;
        break;
      case Family::kNone:
        a.format = type == "error" ? WireFormat::kAnthropicJson : WireFormat::kOpenAIJson;
        break;
    }
    ReadError(err, &a);
    return a;
  }
  const bool any = want == Family::kNone;
  if (responses) {
    RETURN_IF_ERROR(ParseResponsesJson(root, &a));
  } else if ((any || want == Family::kChat) && GetElem(root, "choices", &tmp)) {
    RETURN_IF_ERROR(ParseOpenAIJson(root, &a));
  } else if ((any || want == Family::kAnthropic) &&
             (type == "message" || GetElem(root, "content", &tmp))) {
    RETURN_IF_ERROR(ParseAnthropicJson(root, &a));
  } else {
    switch (want) {
      case Family::kChat:
        return fail("response body is not an OpenAI chat completion (no \"choices\")");
      case Family::kAnthropic:
        return fail("response body is not an Anthropic message (no \"content\")");
      case Family::kResponses:
        return fail("response body is not an OpenAI response (no \"output\")");
      case Family::kNone:
        break;
    }
    return fail(
        "response body is neither an OpenAI chat completion, an OpenAI response nor an "
        "Anthropic message");
  }
  if (http_status >= 400 && !a.error) {
    a.error = AnswerError{absl::StrCat("http_", http_status), ""};
  }
  return a;
}

absl::StatusOr<ModelAnswer> AnswerParser::Impl::Finish() {
  if (finished) return absl::FailedPreconditionError("AnswerParser::Finish called twice");
  finished = true;
  if (kind == ApiKind::kOpenAiEmbeddings) {
    return absl::InvalidArgumentError(
        "an embeddings answer is not a chat answer: parse it with ParseEmbeddingAnswer");
  }
  switch (mode) {
    case Mode::kDetecting:
      if (http_status >= 400) {
        return ModelAnswer::FromError(absl::StrCat("http_", http_status), "empty body");
      }
      if (!buf.empty()) {
        // A short body that never resolved to a format.
        if (LooksLikeSse(buf)) {
          mode = Mode::kSse;
          break;
        }
        return absl::InvalidArgumentError("response body is neither JSON nor SSE");
      }
      return absl::InvalidArgumentError("response body is empty");
    case Mode::kJson:
      return FinishJson();
    case Mode::kGarbage:
      if (http_status >= 400) {
        return ModelAnswer::FromError(absl::StrCat("http_", http_status), "unparseable body");
      }
      return absl::InvalidArgumentError("response body is neither JSON nor SSE");
    case Mode::kSse:
      break;
  }
  ConsumeLines(true);
  Dispatch();  // a final event without its blank line
  if (events == 0 && !(is_openai && done)) {
    if (http_status >= 400) {
      return ModelAnswer::FromError(absl::StrCat("http_", http_status), "unparseable stream");
    }
    return absl::InvalidArgumentError(absl::StrCat(
        "SSE stream has no ", want == Family::kNone ? "OpenAI or Anthropic" : Av(ApiKindName(kind)),
        " events (", bad_events, " unrecognised)"));
  }
  ModelAnswer a = std::move(answer);
  a.format = is_anthropic   ? WireFormat::kAnthropicSse
             : is_responses ? WireFormat::kOpenAIResponsesSse
                            : WireFormat::kOpenAISse;
  for (ToolCall& tc : a.tool_calls) {
    if (a.format == WireFormat::kAnthropicSse && tc.arguments_json.empty()) {
      tc.arguments_json = "{}";
    }
  }
  if (is_responses) {
    std::string finish = ResponsesFinish(responses_status, responses_incomplete_reason,
                                         responses_refused, !a.tool_calls.empty());
    if (!finish.empty()) a.finish_reason = std::move(finish);
  }
  const int families = int{is_anthropic} + int{is_openai} + int{is_responses};
  a.stream_ok = done && bad_events == 0 && !a.error && families == 1;
  if (http_status >= 400 && !a.error) {
    a.error = AnswerError{absl::StrCat("http_", http_status), ""};
  }
  return a;
}

AnswerParser::AnswerParser(int http_status) : AnswerParser(ApiKind::kUnknown, http_status) {}
AnswerParser::AnswerParser(ApiKind kind, int http_status) : impl_(std::make_unique<Impl>()) {
  impl_->http_status = http_status;
  impl_->kind = kind;
  impl_->want = FamilyOf(kind);
}
AnswerParser::~AnswerParser() = default;
AnswerParser::AnswerParser(AnswerParser&&) noexcept = default;
AnswerParser& AnswerParser::operator=(AnswerParser&&) noexcept = default;

void AnswerParser::Feed(std::string_view chunk) { impl_->Feed(chunk); }

absl::StatusOr<ModelAnswer> AnswerParser::Finish() { return impl_->Finish(); }

absl::StatusOr<ModelAnswer> ParseAnswer(std::string_view body, int http_status) {
  return ParseAnswerFor(ApiKind::kUnknown, body, http_status);
}

absl::StatusOr<ModelAnswer> ParseAnswerFor(ApiKind kind, std::string_view body,
                                           int http_status) {
  AnswerParser p(kind, http_status);
  p.Feed(body);
  return p.Finish();
}

absl::StatusOr<RequestInfo> ParseRequest(std::string_view body) {
  simdjson::dom::parser parser;
  element root;
  simdjson::error_code ec = parser.parse(body.data(), body.size(), true).get(root);
  if (ec != simdjson::SUCCESS) {
    return absl::InvalidArgumentError(
        absl::StrCat("request body is not valid JSON: ", simdjson::error_message(ec)));
  }
  if (!root.is_object()) return absl::InvalidArgumentError("request body is not a JSON object");
  RequestInfo info;
  element v;
  if (GetElem(root, "model", &v)) {
    if (!v.is_string()) return absl::InvalidArgumentError("request \"model\" is not a string");
    info.model = std::string(v.get_string().value_unsafe());
  }
  if (GetElem(root, "stream", &v)) {
    if (!v.is_bool()) return absl::InvalidArgumentError("request \"stream\" is not a boolean");
    info.stream = v.get_bool().value_unsafe();
  }
  auto json_format = [](const element& format) {
    std::string_view type = GetStr(format, "type");
    return type == "json_object" || type == "json_schema";
  };
  if (GetElem(root, "response_format", &v)) {  // Chat
    if (!v.is_object()) {
      return absl::InvalidArgumentError("request \"response_format\" is not an object");
    }
    info.json_expected = json_format(v);
  }
  if (GetElem(root, "text", &v)) {  // Responses: {"format": {"type": ...}, "verbosity": ...}
    if (!v.is_object()) return absl::InvalidArgumentError("request \"text\" is not an object");
    element format;
    if (GetElem(v, "format", &format)) {
      if (!format.is_object()) {
        return absl::InvalidArgumentError("request \"text.format\" is not an object");
      }
      info.json_expected = info.json_expected || json_format(format);
    }
  }
  if (GetElem(root, "input", &v) && !v.is_string() && !v.is_array()) {  // Responses, embeddings
    return absl::InvalidArgumentError("request \"input\" is neither a string nor an array");
  }
  for (const char* key : {"tools", "functions"}) {
    if (!GetElem(root, key, &v)) continue;
    if (!v.is_array()) {
      return absl::InvalidArgumentError(absl::StrCat("request \"", key, "\" is not an array"));
    }
    size_t i = 0;
    for (element tool : AsArray(v)) {
      if (!tool.is_object()) {
        return absl::InvalidArgumentError(
            absl::StrCat("request \"", key, "[", i, "]\" is not an object"));
      }
      element fn;
      std::string_view name;
      if (GetElem(tool, "function", &fn)) name = GetStr(fn, "name");  // Chat
      if (name.empty()) name = GetStr(tool, "name");  // Responses, Anthropic, legacy functions
      if (name.empty()) name = GetStr(tool, "type");  // built-in tools
      info.tool_names.emplace_back(name);
      ++i;
    }
  }
  return info;
}

}  // namespace understudy::compare
