// Whole JSON answers: Anthropic message ⇄ OpenAI chat.completion.
#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "common/strings.h"
#include "translate/internal.h"
#include "translate/translate.h"

namespace understudy::translate {
namespace {

using json = nlohmann::json;
using internal::Malformed;
using internal::Refuse;
using internal::TokenCountField;

absl::StatusOr<std::string> AnthropicToOpenAI(const json& in, const AnswerOptions& options) {
  const std::string type = internal::StringField(in, "type");
  if (type == "error") {
    return Malformed("type", "an error answer; translate it with TranslateError");
  }
  if (type != "message") return Malformed("type", "must be 'message'");
  auto content = in.find("content");
  if (content == in.end() || !content->is_array()) {
    return Malformed("content", "required, an array");
  }
  std::string text;
  bool has_text = false;
  json calls = json::array();
  for (size_t i = 0; i < content->size(); ++i) {
    const json& block = (*content)[i];
    const std::string field = absl::StrCat("content[", i, "]");
    const std::string block_type = internal::StringField(block, "type");
    if (block_type == "text") {
      // Anthropic splits text into several blocks around citations; the
      // client's one content string is their concatenation.
      text += internal::StringField(block, "text");
      has_text = true;
    } else if (block_type == "tool_use") {
      auto input = block.find("input");
      if (input == block.end() || !input->is_object()) {
        return Malformed(field + ".input", "required, an object");
      }
      calls.push_back({{"id", internal::StringField(block, "id")},
                       {"type", "function"},
                       {"function",
                        {{"name", internal::StringField(block, "name")},
                         {"arguments", internal::Dump(*input)}}}});
    } else if (block_type == "thinking" || block_type == "redacted_thinking") {
      continue;  // reasoning stays hidden, as an OpenAI model's does
    } else {
      return Refuse(field + ".type",
                    absl::StrCat(block_type, " blocks have no Chat Completions equivalent"));
    }
  }
  json finish = nullptr;
  auto stop = in.find("stop_reason");
  if (stop != in.end() && !stop->is_null()) {
    if (!stop->is_string()) return Malformed("stop_reason", "must be a string");
    std::optional<std::string_view> mapped =
        internal::OpenAIFinishReason(stop->get_ref<const std::string&>());
    if (!mapped) {
      return Refuse("stop_reason",
                    absl::StrCat(stop->get<std::string>(), " has no OpenAI finish_reason"));
    }
    finish = std::string(*mapped);
  }
  json message = {{"role", "assistant"}, {"refusal", nullptr}};
  message["content"] = has_text || calls.empty() ? json(text) : json();
  if (!calls.empty()) message["tool_calls"] = std::move(calls);

  const json usage_in = in.contains("usage") ? in["usage"] : json::object();
  const int64_t cache_read = TokenCountField(usage_in, "cache_read_input_tokens");
  // OpenAI's prompt_tokens counts cached tokens too; Anthropic's
  // input_tokens does not.
  const int64_t prompt = TokenCountField(usage_in, "input_tokens") +
                         TokenCountField(usage_in, "cache_creation_input_tokens") + cache_read;
  const int64_t completion = TokenCountField(usage_in, "output_tokens");
  json usage = {{"prompt_tokens", prompt},
                {"completion_tokens", completion},
                {"total_tokens", prompt + completion}};
  if (cache_read > 0) usage["prompt_tokens_details"] = {{"cached_tokens", cache_read}};

  const std::string model = internal::StringField(in, "model");
  json out = {{"id", internal::StringField(in, "id")},
              {"object", "chat.completion"},
              {"created", options.created_unix_seconds},
              {"model", options.client_model.empty() ? model : options.client_model},
              {"choices", json::array({{{"index", 0},
                                        {"message", std::move(message)},
                                        {"logprobs", nullptr},
                                        {"finish_reason", std::move(finish)}}})},
              {"usage", std::move(usage)}};
  return internal::Dump(out);
}

absl::StatusOr<std::string> OpenAIToAnthropic(const json& in, const AnswerOptions& options) {
  if (in.contains("error")) {
    return Malformed("error", "an error answer; translate it with TranslateError");
  }
  const std::string object = internal::StringField(in, "object");
  if (!object.empty() && object != "chat.completion") {
    return Malformed("object", absl::StrCat("'", object, "' is not a chat.completion"));
  }
  auto choices = in.find("choices");
  if (choices == in.end() || !choices->is_array() || choices->empty()) {
    return Malformed("choices", "required, a non-empty array");
  }
  if (choices->size() > 1) {
    return Refuse("choices", absl::StrCat(choices->size(), " choices; Anthropic answers with one"));
  }
  const json& choice = (*choices)[0];
  auto message = choice.find("message");
  if (message == choice.end() || !message->is_object()) {
    return Malformed("choices[0].message", "required, an object");
  }
  json content = json::array();
  auto text = message->find("content");
  if (text != message->end() && text->is_string()) {
    if (!text->get_ref<const std::string&>().empty()) {
      content.push_back({{"type", "text"}, {"text", *text}});
    }
  } else if (text != message->end() && text->is_array()) {
    for (const json& part : *text) {
      const std::string part_text = internal::StringField(part, "text");
      if (!part_text.empty()) content.push_back({{"type", "text"}, {"text", part_text}});
    }
  } else if (text != message->end() && !text->is_null()) {
    return Malformed("choices[0].message.content", "must be a string, an array or null");
  }
  const std::string refusal = internal::StringField(*message, "refusal");
  if (!refusal.empty()) content.push_back({{"type", "text"}, {"text", refusal}});
  auto calls = message->find("tool_calls");
  if (calls != message->end() && calls->is_array()) {
    for (size_t i = 0; i < calls->size(); ++i) {
      const json& call = (*calls)[i];
      const std::string field = absl::StrCat("choices[0].message.tool_calls[", i, "]");
      auto fn = call.find("function");
      if (fn == call.end() || !fn->is_object()) return Malformed(field + ".function", "required");
      const std::string arguments = internal::StringField(*fn, "arguments");
      json input = json::object();
      if (arguments.find_first_not_of(" \t\r\n") != std::string::npos) {
        input = json::parse(arguments, nullptr, /*allow_exceptions=*/false);
        if (!input.is_object()) {
          return Refuse(field + ".function.arguments",
                        "not a JSON object; an Anthropic tool_use input must be one");
        }
      }
      content.push_back({{"type", "tool_use"},
                         {"id", internal::StringField(call, "id")},
                         {"name", internal::StringField(*fn, "name")},
                         {"input", std::move(input)}});
    }
  }
  json stop = nullptr;
  auto finish = choice.find("finish_reason");
  if (finish != choice.end() && !finish->is_null()) {
    if (!finish->is_string()) return Malformed("choices[0].finish_reason", "must be a string");
    std::optional<std::string_view> mapped =
        internal::AnthropicStopReason(finish->get_ref<const std::string&>());
    if (!mapped) {
      return Refuse("choices[0].finish_reason",
                    absl::StrCat(finish->get<std::string>(), " has no Anthropic stop_reason"));
    }
    // A structured-output refusal ends with "stop"; Anthropic says refusal.
    stop = !refusal.empty() && *mapped == "end_turn" ? "refusal" : std::string(*mapped);
  }
  const json usage_in = in.contains("usage") ? in["usage"] : json::object();
  const json details = usage_in.contains("prompt_tokens_details")
                           ? usage_in["prompt_tokens_details"]
                           : json::object();
  const int64_t cached = TokenCountField(details, "cached_tokens");
  const int64_t input = TokenCountField(usage_in, "prompt_tokens") - cached;
  json usage = {{"input_tokens", std::max<int64_t>(0, input)},
                {"output_tokens", TokenCountField(usage_in, "completion_tokens")}};
  if (cached > 0) usage["cache_read_input_tokens"] = cached;
  const std::string model = internal::StringField(in, "model");
  json out = {{"id", internal::StringField(in, "id")},
              {"type", "message"},
              {"role", "assistant"},
              {"model", options.client_model.empty() ? model : options.client_model},
              {"content", std::move(content)},
              {"stop_reason", std::move(stop)},
              {"stop_sequence", nullptr},
              {"usage", std::move(usage)}};
  return internal::Dump(out);
}

}  // namespace

absl::StatusOr<std::string> TranslateAnswer(std::string_view body_json, Provider from, Provider to,
                                            const AnswerOptions& options) {
  if (from == to) return std::string(body_json);
  try {
    ASSIGN_OR_RETURN(json in, internal::ParseJsonObject(body_json, "answer body"));
    if (from == Provider::kAnthropicMessages) return AnthropicToOpenAI(in, options);
    return OpenAIToAnthropic(in, options);
  } catch (const nlohmann::json::exception& e) {
    // Accesses above check types first; this only keeps a missed case from
    // throwing past the module boundary.
    return absl::InvalidArgumentError(absl::StrCat("answer body: ", e.what()));
  }
}

}  // namespace understudy::translate
