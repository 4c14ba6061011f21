// SSE streams: Anthropic Messages events ⇄ OpenAI chat.completion.chunk
// events. Each upstream event is translated as soon as it is complete; the
// output is written by hand around the upstream's own JSON string tokens
// (already escaped), because this is the throughput-bound path.
#include <algorithm>
#include <memory>
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "common/strings.h"
#include "translate/internal.h"
#include "translate/json_scan.h"
#include "translate/sse_parser.h"
#include "translate/translate.h"

namespace understudy::translate {
namespace {

using internal::AppendInt;
using internal::AppendJsonString;
using internal::AppendRawString;
using internal::IntegerOf;
using internal::IsAbsentOrNull;
using internal::IsString;
using internal::JsonKind;
using internal::JsonNode;
using internal::JsonScan;
using internal::SseEvent;
using internal::StringIs;

// ReadTokenCount sets *field when `n` holds an integer, clamped as every
// token count is (translate/internal.h), so the sums below cannot overflow.
void ReadTokenCount(const JsonNode* n, int64_t* field) {
  if (std::optional<int64_t> v = IntegerOf(n)) *field = internal::ClampTokenCount(*v);
}

absl::Status Broken(std::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("upstream stream: ", Av(what)));
}

// The type of an event's JSON, decoded only in the rare escaped case.
std::string_view TypeOf(const JsonScan& scan, const JsonNode* object, std::string* storage) {
  const JsonNode* type = scan.Get(object, "type");
  if (!IsString(type)) return {};
  if (!type->escaped) return type->text;
  *storage = internal::DecodeString(*type);
  return *storage;
}

absl::Status ParseEvent(JsonScan& scan, std::string_view data) {
  absl::Status status = scan.Parse(data);
  if (!status.ok()) return Broken(absl::StrCat("event data: ", status.message()));
  if (scan.root().kind != JsonKind::kObject) return Broken("event data is not a JSON object");
  return absl::OkStatus();
}

class EventTranslator {
 public:
  virtual ~EventTranslator() = default;
  virtual absl::Status OnEvent(const SseEvent& event, std::string* out) = 0;
  virtual absl::Status Finish(std::string* out) = 0;
};

// ---------------------------------------------------------------------------
// Anthropic events → OpenAI chunks.
class AnthropicToOpenAI final : public EventTranslator {
 public:
  explicit AnthropicToOpenAI(const StreamOptions& options) : options_(options) {}

  absl::Status OnEvent(const SseEvent& event, std::string* out) override {
    RETURN_IF_ERROR(ParseEvent(scan_, event.data));
    const JsonNode* root = &scan_.root();
    std::string storage;
    const std::string_view type = TypeOf(scan_, root, &storage);
    if (type == "content_block_delta") return OnBlockDelta(root, out);
    if (type == "ping") return absl::OkStatus();
    if (type == "error") return OnError(root, out);
    if (phase_ == Phase::kEnded || phase_ == Phase::kFailed) {
      return Broken(absl::StrCat(Av(type), " after the end of the message"));
    }
    if (type == "message_start") return OnMessageStart(root, out);
    if (type.empty()) return Broken("an event without a type");
    if (phase_ != Phase::kInMessage &&
        (type == "content_block_start" || type == "content_block_stop" || type == "message_delta" ||
         type == "message_stop")) {
      return Broken(absl::StrCat(Av(type), " before message_start"));
    }
    if (type == "content_block_start") return OnBlockStart(root, out);
    if (type == "content_block_stop") return OnBlockStop(root);
    if (type == "message_delta") return OnMessageDelta(root);
    if (type == "message_stop") return OnMessageStop(out);
    // Anthropic may add event types (its versioning policy says so); an
    // unknown one carries nothing a Chat Completions client could read.
    return absl::OkStatus();
  }

  absl::Status Finish(std::string* out) override {
    if (phase_ == Phase::kEnded || phase_ == Phase::kFailed) return absl::OkStatus();
    return absl::DataLossError("upstream stream ended before message_stop");
  }

 private:
  enum class Phase { kBeforeStart, kInMessage, kEnded, kFailed };
  enum class Block { kNone, kText, kToolUse, kHidden };

  absl::Status OnMessageStart(const JsonNode* root, std::string* out) {
    if (phase_ != Phase::kBeforeStart) return Broken("a second message_start");
    const JsonNode* message = scan_.Get(root, "message");
    const JsonNode* id = scan_.Get(message, "id");
    const JsonNode* model = scan_.Get(message, "model");
    if (!IsString(id)) return Broken("message_start without message.id");
    if (scan_.First(scan_.Get(message, "content")) != nullptr) {
      return Broken("message_start with content");
    }
    ReadUsage(scan_.Get(message, "usage"));
    head_ = "data: {\"id\":";
    AppendRawString(&head_, *id);
    head_ += ",\"object\":\"chat.completion.chunk\",\"created\":";
    AppendInt(&head_, options_.created_unix_seconds);
    head_ += ",\"model\":";
    if (!options_.client_model.empty() || !IsString(model)) {
      AppendJsonString(&head_, options_.client_model);
    } else {
      AppendRawString(&head_, *model);
    }
    head_ += ',';
    prefix_ = head_ + "\"choices\":[{\"index\":0,\"delta\":";
    usage_null_ = options_.include_usage ? ",\"usage\":null}\n\n" : "}\n\n";
    suffix_ = ",\"logprobs\":null,\"finish_reason\":null}]" + usage_null_;
    phase_ = Phase::kInMessage;
    *out += prefix_;
    *out += "{\"role\":\"assistant\",\"content\":\"\"}";
    *out += suffix_;
    return absl::OkStatus();
  }

  absl::Status OnBlockStart(const JsonNode* root, std::string* out) {
    if (block_ != Block::kNone) return Broken("content_block_start inside an open block");
    const std::optional<int64_t> index = IntegerOf(scan_.Get(root, "index"));
    if (index != blocks_started_) {
      return Broken(absl::StrCat("content_block_start index ", index.value_or(-1), ", expected ",
                                 blocks_started_));
    }
    const JsonNode* block = scan_.Get(root, "content_block");
    std::string storage;
    const std::string_view type = TypeOf(scan_, block, &storage);
    if (type == "text") {
      block_ = Block::kText;
      const JsonNode* text = scan_.Get(block, "text");
      if (IsString(text) && !text->text.empty()) AppendContent(*text, out);
    } else if (type == "tool_use") {
      const JsonNode* id = scan_.Get(block, "id");
      const JsonNode* name = scan_.Get(block, "name");
      if (!IsString(id) || !IsString(name)) return Broken("tool_use block without id or name");
      block_ = Block::kToolUse;
      tool_index_ = tool_calls_++;
      *out += prefix_;
      *out += "{\"tool_calls\":[{\"index\":";
      AppendInt(out, tool_index_);
      *out += ",\"id\":";
      AppendRawString(out, *id);
      *out += ",\"type\":\"function\",\"function\":{\"name\":";
      AppendRawString(out, *name);
      *out += ",\"arguments\":\"\"}}]}";
      *out += suffix_;
      // Streams start tool_use with input {} and send the JSON as deltas;
      // an input given up front is sent as the first fragment.
      const JsonNode* input = scan_.Get(block, "input");
      if (input != nullptr && input->kind == JsonKind::kObject && input->child != 0) {
        std::string arguments;
        AppendJsonString(&arguments, input->text);
        AppendArguments(std::string_view(arguments).substr(1, arguments.size() - 2), out);
      }
    } else if (type == "thinking" || type == "redacted_thinking") {
      block_ = Block::kHidden;  // reasoning stays hidden, as an OpenAI model's does
    } else if (type.empty()) {
      return Broken("content_block_start without content_block.type");
    } else {
      return internal::Refuse(
          "content_block.type",
          absl::StrCat(Av(type), " blocks have no Chat Completions equivalent"));
    }
    ++blocks_started_;
    return absl::OkStatus();
  }

  absl::Status OnBlockDelta(const JsonNode* root, std::string* out) {
    if (phase_ != Phase::kInMessage || block_ == Block::kNone) {
      return Broken("content_block_delta outside a content block");
    }
    if (IntegerOf(scan_.Get(root, "index")) != blocks_started_ - 1) {
      return Broken("content_block_delta for a block that is not open");
    }
    const JsonNode* delta = scan_.Get(root, "delta");
    std::string storage;
    const std::string_view type = TypeOf(scan_, delta, &storage);
    if (type == "text_delta" && block_ == Block::kText) {
      const JsonNode* text = scan_.Get(delta, "text");
      if (!IsString(text)) return Broken("text_delta without text");
      if (!text->text.empty()) AppendContent(*text, out);
      return absl::OkStatus();
    }
    if (type == "input_json_delta" && block_ == Block::kToolUse) {
      const JsonNode* partial = scan_.Get(delta, "partial_json");
      if (!IsString(partial)) return Broken("input_json_delta without partial_json");
      if (!partial->text.empty()) AppendArguments(partial->text, out);
      return absl::OkStatus();
    }
    if (block_ == Block::kHidden && (type == "thinking_delta" || type == "signature_delta")) {
      return absl::OkStatus();
    }
    // Citations annotate text the text deltas already carried.
    if (block_ == Block::kText && type == "citations_delta") return absl::OkStatus();
    return Broken(
        absl::StrCat("content_block_delta of type '", Av(type), "' does not fit the open block"));
  }

  absl::Status OnBlockStop(const JsonNode* root) {
    if (block_ == Block::kNone) return Broken("content_block_stop without an open block");
    if (IntegerOf(scan_.Get(root, "index")) != blocks_started_ - 1) {
      return Broken("content_block_stop for a block that is not open");
    }
    block_ = Block::kNone;
    return absl::OkStatus();
  }

  // message_delta may come more than once; the last stop_reason and the
  // (cumulative) usage count, and the finish chunk goes out at message_stop.
  absl::Status OnMessageDelta(const JsonNode* root) {
    if (block_ != Block::kNone) return Broken("message_delta inside an open block");
    const JsonNode* stop = scan_.Get(scan_.Get(root, "delta"), "stop_reason");
    if (IsString(stop)) stop_reason_ = internal::DecodeString(*stop);
    ReadUsage(scan_.Get(root, "usage"));
    return absl::OkStatus();
  }

  absl::Status OnMessageStop(std::string* out) {
    if (block_ != Block::kNone) return Broken("message_stop inside an open block");
    if (!stop_reason_) return Broken("message_stop without a stop_reason");
    const std::optional<std::string_view> finish = internal::OpenAIFinishReason(*stop_reason_);
    if (!finish) {
      return internal::Refuse("stop_reason",
                              absl::StrCat(*stop_reason_, " has no OpenAI finish_reason"));
    }
    *out += prefix_;
    *out += "{},\"logprobs\":null,\"finish_reason\":\"";
    out->append(finish->data(), finish->size());
    *out += "\"}]";
    *out += usage_null_;
    if (options_.include_usage) {
      const int64_t prompt = input_tokens_ + cache_creation_ + cache_read_;
      *out += head_;
      *out += "\"choices\":[],\"usage\":{\"prompt_tokens\":";
      AppendInt(out, prompt);
      *out += ",\"completion_tokens\":";
      AppendInt(out, output_tokens_);
      *out += ",\"total_tokens\":";
      AppendInt(out, prompt + output_tokens_);
      if (cache_read_ > 0) {
        *out += ",\"prompt_tokens_details\":{\"cached_tokens\":";
        AppendInt(out, cache_read_);
        *out += '}';
      }
      *out += "}}\n\n";
    }
    *out += "data: [DONE]\n\n";
    phase_ = Phase::kEnded;
    return absl::OkStatus();
  }

  // A mid-stream error (e.g. overloaded) is passed on in OpenAI's shape; the
  // stream ends there, so no [DONE] follows.
  absl::Status OnError(const JsonNode* root, std::string* out) {
    if (phase_ == Phase::kEnded || phase_ == Phase::kFailed) {
      return Broken("error after the end of the message");
    }
    const JsonNode* error = scan_.Get(root, "error");
    const JsonNode* type = scan_.Get(error, "type");
    const JsonNode* message = scan_.Get(error, "message");
    const internal::ErrorShape shape = internal::OpenAIErrorShape(
        internal::ErrorKindFromAnthropic(IsString(type) ? internal::DecodeString(*type) : "", 0),
        0);
    *out += "data: ";
    *out += internal::OpenAIErrorBody(
        shape, IsString(message) ? internal::DecodeString(*message) : "upstream error");
    *out += "\n\n";
    phase_ = Phase::kFailed;
    return absl::OkStatus();
  }

  void ReadUsage(const JsonNode* usage) {
    if (usage == nullptr || usage->kind != JsonKind::kObject) return;
    ReadTokenCount(scan_.Get(usage, "input_tokens"), &input_tokens_);
    ReadTokenCount(scan_.Get(usage, "output_tokens"), &output_tokens_);
    ReadTokenCount(scan_.Get(usage, "cache_creation_input_tokens"), &cache_creation_);
    ReadTokenCount(scan_.Get(usage, "cache_read_input_tokens"), &cache_read_);
  }

  void AppendContent(const JsonNode& text, std::string* out) {
    *out += prefix_;
    *out += "{\"content\":";
    AppendRawString(out, text);
    *out += '}';
    *out += suffix_;
  }

  // `escaped` is the contents of a JSON string, escapes included.
  void AppendArguments(std::string_view escaped, std::string* out) {
    *out += prefix_;
    *out += "{\"tool_calls\":[{\"index\":";
    AppendInt(out, tool_index_);
    *out += ",\"function\":{\"arguments\":\"";
    *out += escaped;
    *out += "\"}}]}";
    *out += suffix_;
  }

  const StreamOptions options_;
  JsonScan scan_;
  Phase phase_ = Phase::kBeforeStart;
  Block block_ = Block::kNone;
  int64_t blocks_started_ = 0;
  int64_t tool_calls_ = 0;
  int64_t tool_index_ = -1;
  std::optional<std::string> stop_reason_;
  int64_t input_tokens_ = 0, output_tokens_ = 0, cache_creation_ = 0, cache_read_ = 0;
  std::string head_;        // `data: {"id":…,"object":…,"created":…,"model":…,`
  std::string prefix_;      // head_ + `"choices":[{"index":0,"delta":`
  std::string suffix_;      // after the delta of a chunk without finish_reason
  std::string usage_null_;  // `,"usage":null}` + blank line, or `}` + blank line
};

// ---------------------------------------------------------------------------
// OpenAI chunks → Anthropic events.
class OpenAIToAnthropic final : public EventTranslator {
 public:
  explicit OpenAIToAnthropic(const StreamOptions& options) : options_(options) {}

  absl::Status OnEvent(const SseEvent& event, std::string* out) override {
    if (phase_ == Phase::kDone) return Broken("an event after [DONE]");
    if (phase_ == Phase::kFailed) return Broken("an event after an error");
    if (event.data == "[DONE]") return OnDone(out);
    if (phase_ == Phase::kEnded) return Broken("a chunk after the finish and usage");
    RETURN_IF_ERROR(ParseEvent(scan_, event.data));
    const JsonNode* root = &scan_.root();
    const JsonNode* error = scan_.Get(root, "error");
    if (!IsAbsentOrNull(error)) return OnError(error, out);
    if (phase_ == Phase::kBeforeFirst) RETURN_IF_ERROR(Start(root, out));

    const JsonNode* usage = scan_.Get(root, "usage");
    if (usage != nullptr && usage->kind == JsonKind::kObject) {
      usage_seen_ = true;
      ReadTokenCount(scan_.Get(usage, "prompt_tokens"), &prompt_tokens_);
      ReadTokenCount(scan_.Get(usage, "completion_tokens"), &completion_tokens_);
      ReadTokenCount(scan_.Get(scan_.Get(usage, "prompt_tokens_details"), "cached_tokens"),
                     &cached_tokens_);
    }
    const JsonNode* choices = scan_.Get(root, "choices");
    if (!IsAbsentOrNull(choices) && choices->kind != JsonKind::kArray) {
      return Broken("choices is not an array");
    }
    for (const JsonNode* c = scan_.First(choices); c != nullptr; c = scan_.Next(c)) {
      RETURN_IF_ERROR(OnChoice(c, out));
    }
    if (stop_reason_ && usage_seen_) End(out);
    return absl::OkStatus();
  }

  absl::Status Finish(std::string* out) override {
    if (phase_ == Phase::kDone || phase_ == Phase::kEnded || phase_ == Phase::kFailed) {
      return absl::OkStatus();
    }
    // A server that closes after the finish chunk without [DONE] has still
    // said everything.
    if (phase_ == Phase::kStreaming && stop_reason_) {
      End(out);
      return absl::OkStatus();
    }
    return absl::DataLossError("upstream stream ended before its finish_reason");
  }

 private:
  enum class Phase { kBeforeFirst, kStreaming, kEnded, kDone, kFailed };
  enum class Block { kNone, kText, kTool };

  absl::Status Start(const JsonNode* root, std::string* out) {
    const JsonNode* id = scan_.Get(root, "id");
    const JsonNode* model = scan_.Get(root, "model");
    *out += "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":";
    if (IsString(id)) {
      AppendRawString(out, *id);
    } else {
      *out += "\"\"";
    }
    *out += ",\"type\":\"message\",\"role\":\"assistant\",\"model\":";
    if (!options_.client_model.empty() || !IsString(model)) {
      AppendJsonString(out, options_.client_model);
    } else {
      AppendRawString(out, *model);
    }
    *out +=
        ",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,"
        "\"usage\":{\"input_tokens\":0,\"output_tokens\":0}}}\n\n";
    phase_ = Phase::kStreaming;
    return absl::OkStatus();
  }

  absl::Status OnChoice(const JsonNode* choice, std::string* out) {
    const std::optional<int64_t> index = IntegerOf(scan_.Get(choice, "index"));
    if (index.value_or(0) != 0) {
      return internal::Refuse("choices[].index",
                              "a stream with several choices (n > 1) has no Anthropic equivalent");
    }
    const JsonNode* delta = scan_.Get(choice, "delta");
    const JsonNode* content = scan_.Get(delta, "content");
    const JsonNode* refusal = scan_.Get(delta, "refusal");
    const JsonNode* tool_calls = scan_.Get(delta, "tool_calls");
    const bool has_text = (IsString(content) && !content->text.empty()) ||
                          (IsString(refusal) && !refusal->text.empty());
    const bool has_tools =
        tool_calls != nullptr && tool_calls->kind == JsonKind::kArray && tool_calls->child != 0;
    if (stop_reason_ && (has_text || has_tools)) return Broken("content after finish_reason");
    if (IsString(content) && !content->text.empty()) AppendText(*content, out);
    if (IsString(refusal) && !refusal->text.empty()) {
      refusal_seen_ = true;
      AppendText(*refusal, out);
    }
    if (has_tools) {
      for (const JsonNode* call = scan_.First(tool_calls); call != nullptr;
           call = scan_.Next(call)) {
        RETURN_IF_ERROR(OnToolCall(call, out));
      }
    }
    const JsonNode* finish = scan_.Get(choice, "finish_reason");
    if (IsString(finish)) {
      const std::string reason = internal::DecodeString(*finish);
      const std::optional<std::string_view> stop = internal::AnthropicStopReason(reason);
      if (!stop) {
        return internal::Refuse("finish_reason",
                                absl::StrCat(reason, " has no Anthropic stop_reason"));
      }
      CloseBlock(out);
      // A structured-output refusal ends with "stop"; Anthropic says refusal.
      stop_reason_ = refusal_seen_ && *stop == "end_turn" ? "refusal" : std::string(*stop);
    }
    return absl::OkStatus();
  }

  absl::Status OnToolCall(const JsonNode* call, std::string* out) {
    const std::optional<int64_t> index = IntegerOf(scan_.Get(call, "index"));
    if (!index || *index < 0) return Broken("tool_calls[] without an index");
    const JsonNode* function = scan_.Get(call, "function");
    if (block_ != Block::kTool || *index != tool_index_) {
      // Anthropic content blocks are sequential: a tool call whose block was
      // closed cannot get more arguments.
      if (*index <= max_tool_index_) {
        return Broken(absl::StrCat("tool call ", *index, " continued after another block began"));
      }
      const JsonNode* id = scan_.Get(call, "id");
      const JsonNode* name = scan_.Get(function, "name");
      if (!IsString(id) || !IsString(name)) {
        return Broken(absl::StrCat("tool call ", *index, " starts without id or function.name"));
      }
      CloseBlock(out);
      block_ = Block::kTool;
      tool_index_ = max_tool_index_ = *index;
      *out += "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":";
      AppendInt(out, next_index_);
      *out += ",\"content_block\":{\"type\":\"tool_use\",\"id\":";
      AppendRawString(out, *id);
      *out += ",\"name\":";
      AppendRawString(out, *name);
      *out += ",\"input\":{}}}\n\n";
    }
    const JsonNode* arguments = scan_.Get(function, "arguments");
    if (IsString(arguments) && !arguments->text.empty()) {
      *out += "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":";
      AppendInt(out, next_index_);
      *out += ",\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":";
      AppendRawString(out, *arguments);
      *out += "}}\n\n";
    }
    return absl::OkStatus();
  }

  void AppendText(const JsonNode& text, std::string* out) {
    if (block_ != Block::kText) {
      CloseBlock(out);
      block_ = Block::kText;
      *out += "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":";
      AppendInt(out, next_index_);
      *out += ",\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n";
    }
    *out += "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":";
    AppendInt(out, next_index_);
    *out += ",\"delta\":{\"type\":\"text_delta\",\"text\":";
    AppendRawString(out, text);
    *out += "}}\n\n";
  }

  void CloseBlock(std::string* out) {
    if (block_ == Block::kNone) return;
    *out += "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":";
    AppendInt(out, next_index_);
    *out += "}\n\n";
    block_ = Block::kNone;
    ++next_index_;
  }

  absl::Status OnDone(std::string* out) {
    if (phase_ == Phase::kBeforeFirst) return Broken("[DONE] before any chunk");
    if (phase_ == Phase::kStreaming) {
      if (!stop_reason_) return Broken("[DONE] before a finish_reason");
      End(out);
    }
    phase_ = Phase::kDone;
    return absl::OkStatus();
  }

  void End(std::string* out) {
    CloseBlock(out);
    *out += "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"";
    *out += *stop_reason_;
    *out += "\",\"stop_sequence\":null},\"usage\":{\"input_tokens\":";
    // Anthropic's input_tokens leaves out cache reads; OpenAI's counts them.
    AppendInt(out, std::max<int64_t>(0, prompt_tokens_ - cached_tokens_));
    *out += ",\"output_tokens\":";
    AppendInt(out, completion_tokens_);
    if (cached_tokens_ > 0) {
      *out += ",\"cache_read_input_tokens\":";
      AppendInt(out, cached_tokens_);
    }
    *out += "}}\n\nevent: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
    phase_ = Phase::kEnded;
  }

  absl::Status OnError(const JsonNode* error, std::string* out) {
    std::string message = "upstream error";
    std::string type, code;
    if (IsString(error)) {
      message = internal::DecodeString(*error);
    } else {
      const JsonNode* m = scan_.Get(error, "message");
      if (IsString(m)) message = internal::DecodeString(*m);
      const JsonNode* t = scan_.Get(error, "type");
      if (IsString(t)) type = internal::DecodeString(*t);
      const JsonNode* c = scan_.Get(error, "code");
      if (IsString(c)) code = internal::DecodeString(*c);
    }
    const internal::ErrorShape shape =
        internal::AnthropicErrorShape(internal::ErrorKindFromOpenAI(0, type, code), 0);
    *out += "event: error\ndata: ";
    *out += internal::AnthropicErrorBody(shape, message);
    *out += "\n\n";
    phase_ = Phase::kFailed;
    return absl::OkStatus();
  }

  const StreamOptions options_;
  JsonScan scan_;
  Phase phase_ = Phase::kBeforeFirst;
  Block block_ = Block::kNone;
  int64_t next_index_ = 0;       // the Anthropic index of the open (or next) block
  int64_t tool_index_ = -1;      // the OpenAI index of the open tool call
  int64_t max_tool_index_ = -1;  // the highest OpenAI tool index started
  bool refusal_seen_ = false;
  bool usage_seen_ = false;
  std::optional<std::string> stop_reason_;
  int64_t prompt_tokens_ = 0, completion_tokens_ = 0, cached_tokens_ = 0;
};

}  // namespace

class StreamTranslator::Impl {
 public:
  Impl(Provider from, Provider to, const StreamOptions& options)
      : parser_(options.max_event_bytes) {
    if (from == to) return;  // the identity: bytes pass through
    if (from == Provider::kAnthropicMessages) {
      events_ = std::make_unique<AnthropicToOpenAI>(options);
    } else {
      events_ = std::make_unique<OpenAIToAnthropic>(options);
    }
  }

  absl::Status Feed(std::string_view chunk, std::string* out) {
    if (!status_.ok()) return status_;
    if (finished_) return status_ = absl::FailedPreconditionError("Feed after Finish");
    if (events_ == nullptr) {
      out->append(chunk.data(), chunk.size());
      return absl::OkStatus();
    }
    status_ = parser_.Feed(chunk, [&](const SseEvent& e) { return events_->OnEvent(e, out); });
    return status_;
  }

  absl::Status Finish(std::string* out) {
    if (!status_.ok()) return status_;
    if (finished_) return status_ = absl::FailedPreconditionError("Finish called twice");
    finished_ = true;
    if (events_ == nullptr) return absl::OkStatus();
    status_ = parser_.Finish([&](const SseEvent& e) { return events_->OnEvent(e, out); });
    if (status_.ok()) status_ = events_->Finish(out);
    return status_;
  }

 private:
  internal::SseParser parser_;
  std::unique_ptr<EventTranslator> events_;
  absl::Status status_;
  bool finished_ = false;
};

StreamTranslator::StreamTranslator(Provider from, Provider to, const StreamOptions& options)
    : impl_(std::make_unique<Impl>(from, to, options)) {}

StreamTranslator::~StreamTranslator() = default;

absl::Status StreamTranslator::Feed(std::string_view chunk, std::string* out) {
  return impl_->Feed(chunk, out);
}

absl::Status StreamTranslator::Finish(std::string* out) { return impl_->Finish(out); }

}  // namespace understudy::translate
