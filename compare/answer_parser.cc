// Parsing of OpenAI Chat Completions and Anthropic Messages responses, JSON
// and SSE, into ModelAnswer. simdjson's DOM parser does the JSON; the SSE
// framing (lines, events) is done here so that chunk boundaries never
// matter: only complete lines are ever interpreted.
#include <simdjson.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "compare/compare.h"
#include "common/status_macros.h"

namespace understudy::compare {

namespace {

// Range-for over e.get_array().value_unsafe() would bind to a temporary
// that dies before the loop body; copy the (cheap) view out first.
simdjson::dom::array AsArray(const simdjson::dom::element& e) {
  simdjson::dom::array a;
  if (e.get_array().get(a) != simdjson::SUCCESS) return simdjson::dom::array();
  return a;
}
using simdjson::dom::array;
using simdjson::dom::element;
using simdjson::dom::object;

std::string_view GetStr(const element& e, const char* key) {
  std::string_view v;
  if (e.is_object() && e[key].get_string().get(v) == simdjson::SUCCESS) return v;
  return {};
}

int64_t GetInt(const element& e, const char* key) {
  if (!e.is_object()) return 0;
  element v;
  if (e[key].get(v) != simdjson::SUCCESS) return 0;
  int64_t i;
  if (v.get_int64().get(i) == simdjson::SUCCESS) return i;
  uint64_t u;
  if (v.get_uint64().get(u) == simdjson::SUCCESS) return static_cast<int64_t>(u);
  double d;
  if (v.get_double().get(d) == simdjson::SUCCESS) return static_cast<int64_t>(d);
  return 0;
}

bool GetElem(const element& e, const char* key, element* out) {
  return e.is_object() && e[key].get(*out) == simdjson::SUCCESS && !out->is_null();
}

std::string NormaliseFinish(std::string_view raw) {
  if (raw == "end_turn" || raw == "stop_sequence" || raw == "stop") return "stop";
  if (raw == "max_tokens" || raw == "length") return "length";
  if (raw == "tool_use" || raw == "tool_calls" || raw == "function_call") return "tool_calls";
  if (raw == "refusal" || raw == "content_filter") return "content_filter";
  return std::string(raw);
}

void ReadError(const element& err, ModelAnswer* a) {
  AnswerError e;
  if (err.is_string()) {
    e.type = "error";
    e.message = std::string(err.get_string().value_unsafe());
  } else {
    e.type = std::string(GetStr(err, "type"));
    if (e.type.empty()) e.type = std::string(GetStr(err, "code"));
    if (e.type.empty()) e.type = "error";
    e.message = std::string(GetStr(err, "message"));
  }
  a->error = std::move(e);
}

void ReadOpenAIUsage(const element& usage, ModelAnswer* a) {
  a->usage.input_tokens = GetInt(usage, "prompt_tokens");
  a->usage.output_tokens = GetInt(usage, "completion_tokens");
  element details;
  if (GetElem(usage, "prompt_tokens_details", &details)) {
    a->usage.cached_tokens = GetInt(details, "cached_tokens");
  }
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
  bool done = false;        // [DONE] or message_stop seen
  bool is_anthropic = false, is_openai = false;
  ModelAnswer answer;
  // OpenAI: delta tool_calls[].index → position in answer.tool_calls.
  std::vector<std::pair<int64_t, size_t>> openai_tool_index;
  // Anthropic: content block index → position in answer.tool_calls (or -1).
  std::vector<std::pair<int64_t, int64_t>> anthropic_blocks;
  std::vector<bool> anthropic_args_started;
  simdjson::dom::parser parser;

  void Feed(std::string_view chunk);
  void ConsumeLines(bool at_end);
  void Line(std::string_view line);
  void Dispatch();
  void OpenAIEvent(const element& root);
  void AnthropicEvent(const element& root, std::string_view type);
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
    if (buf.compare(i, 3, "\xEF\xBB\xBF") == 0) i += 3;
    if (i >= buf.size()) return;
    char c = buf[i];
    if (c == '{' || c == '[') {
      mode = Mode::kJson;
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
    done = true;
    is_openai = true;
  } else {
    element root;
    if (parser.parse(event_data.data(), event_data.size(), true).get(root) != simdjson::SUCCESS ||
        !root.is_object()) {
      ++bad_events;
    } else {
      std::string_view type = GetStr(root, "type");
      element tmp;
      if (!type.empty() && type != "chat.completion.chunk" &&
          (type.substr(0, 8) == "message_" || type.substr(0, 14) == "content_block_" ||
           type == "ping" || type == "error")) {
        is_anthropic = true;
        ++events;
        AnthropicEvent(root, type);
      } else if (GetElem(root, "choices", &tmp) || GetElem(root, "error", &tmp) ||
                 GetStr(root, "object") == "chat.completion.chunk" ||
                 GetElem(root, "usage", &tmp)) {
        is_openai = true;
        ++events;
        OpenAIEvent(root);
      } else {
        ++bad_events;
      }
    }
  }
  event_data.clear();
  event_name.clear();
  has_data = false;
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
  element err;
  std::string_view type = GetStr(root, "type");
  if (GetElem(root, "error", &err)) {
    a.format = type == "error" ? WireFormat::kAnthropicJson : WireFormat::kOpenAIJson;
    ReadError(err, &a);
    return a;
  }
  element tmp;
  if (GetElem(root, "choices", &tmp)) {
    RETURN_IF_ERROR(ParseOpenAIJson(root, &a));
  } else if (type == "message" || GetElem(root, "content", &tmp)) {
    RETURN_IF_ERROR(ParseAnthropicJson(root, &a));
  } else {
    return fail("response body is neither an OpenAI chat completion nor an Anthropic message");
  }
  if (http_status >= 400 && !a.error) {
    a.error = AnswerError{absl::StrCat("http_", http_status), ""};
  }
  return a;
}

absl::StatusOr<ModelAnswer> AnswerParser::Impl::Finish() {
  if (finished) return absl::FailedPreconditionError("AnswerParser::Finish called twice");
  finished = true;
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
    return absl::InvalidArgumentError(
        absl::StrCat("SSE stream has no OpenAI or Anthropic events (", bad_events,
                     " unrecognised)"));
  }
  ModelAnswer a = std::move(answer);
  a.format = is_anthropic ? WireFormat::kAnthropicSse : WireFormat::kOpenAISse;
  for (ToolCall& tc : a.tool_calls) {
    if (a.format == WireFormat::kAnthropicSse && tc.arguments_json.empty()) {
      tc.arguments_json = "{}";
    }
  }
  a.stream_ok = done && bad_events == 0 && !a.error && !(is_anthropic && is_openai);
  if (http_status >= 400 && !a.error) {
    a.error = AnswerError{absl::StrCat("http_", http_status), ""};
  }
  return a;
}

AnswerParser::AnswerParser(int http_status) : impl_(std::make_unique<Impl>()) {
  impl_->http_status = http_status;
}
AnswerParser::~AnswerParser() = default;
AnswerParser::AnswerParser(AnswerParser&&) noexcept = default;
AnswerParser& AnswerParser::operator=(AnswerParser&&) noexcept = default;

void AnswerParser::Feed(std::string_view chunk) { impl_->Feed(chunk); }

absl::StatusOr<ModelAnswer> AnswerParser::Finish() { return impl_->Finish(); }

absl::StatusOr<ModelAnswer> ParseAnswer(std::string_view body, int http_status) {
  AnswerParser p(http_status);
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
  if (GetElem(root, "response_format", &v)) {
    if (!v.is_object()) {
      return absl::InvalidArgumentError("request \"response_format\" is not an object");
    }
    std::string_view type = GetStr(v, "type");
    info.json_expected = type == "json_object" || type == "json_schema";
  }
  return info;
}

}  // namespace understudy::compare
