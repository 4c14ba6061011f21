// Requests: OpenAI Chat Completions ⇄ Anthropic Messages. Every top-level
// field of the source is either mapped, dropped because it cannot change the
// answer (storage, billing and caching hints), or refused; an unknown field
// is refused too, because a field we do not know may change the answer.
#include <algorithm>
#include <cctype>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
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

std::string Item(std::string_view base, size_t i) { return absl::StrCat(Av(base), "[", i, "]"); }
std::string Dot(std::string_view base, std::string_view key) {
  return absl::StrCat(Av(base), ".", Av(key));
}

bool Has(const json& object, const char* key) {
  auto it = object.find(key);
  return it != object.end() && !it->is_null();
}

json TextBlock(std::string text) { return json{{"type", "text"}, {"text", std::move(text)}}; }

absl::StatusOr<std::string> RequiredString(const json& object, const char* key,
                                           std::string_view field) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return Malformed(Dot(field, key), "required");
  if (!it->is_string()) return Malformed(Dot(field, key), "must be a string");
  return it->get<std::string>();
}

absl::StatusOr<std::string> OptionalString(const json& object, const char* key,
                                           std::string_view field) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return std::string();
  if (!it->is_string()) return Malformed(Dot(field, key), "must be a string");
  return it->get<std::string>();
}

// CheckKeys refuses the first key of `object` that is set (not null) and
// not in `known`; `target` names the API in the message.
absl::Status CheckKeys(const json& object, std::string_view field,
                       std::initializer_list<std::string_view> known, std::string_view target) {
  for (auto it = object.begin(); it != object.end(); ++it) {
    if (it->is_null()) continue;
    if (std::find(known.begin(), known.end(), it.key()) != known.end()) continue;
    return Refuse(Dot(field, it.key()), absl::StrCat("not translated to ", Av(target)));
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------
// OpenAI Chat Completions → Anthropic Messages.

// OpenAI text content (a string or text parts) as strings; other parts are
// refused (system and tool messages carry only text in Anthropic).
absl::StatusOr<std::vector<std::string>> OpenAITexts(const json& content, std::string_view field) {
  std::vector<std::string> texts;
  if (content.is_null()) return texts;
  if (content.is_string()) {
    texts.push_back(content.get<std::string>());
    return texts;
  }
  if (!content.is_array()) return Malformed(field, "must be a string or an array of parts");
  for (size_t i = 0; i < content.size(); ++i) {
    const json& part = content[i];
    const std::string where = Item(field, i);
    if (!part.is_object()) return Malformed(where, "must be an object");
    ASSIGN_OR_RETURN(std::string type, RequiredString(part, "type", where));
    if (type != "text") {
      return Refuse(Dot(where, "type"), absl::StrCat(type, " parts are not accepted here"));
    }
    ASSIGN_OR_RETURN(std::string text, RequiredString(part, "text", where));
    texts.push_back(std::move(text));
  }
  return texts;
}

absl::StatusOr<json> AnthropicImage(const std::string& url, std::string_view field) {
  if (absl::StartsWith(url, "data:")) {
    const size_t comma = url.find(',');
    if (comma == std::string::npos) return Malformed(field, "a data URL without ','");
    const std::string meta = url.substr(5, comma - 5);  // "image/png;base64"
    if (!absl::EndsWithIgnoreCase(meta, ";base64")) {
      return Refuse(field, "only base64 data URLs can be sent to Anthropic");
    }
    std::string media = absl::AsciiStrToLower(meta.substr(0, meta.find(';')));
    if (media == "image/jpg") media = "image/jpeg";
    if (media != "image/jpeg" && media != "image/png" && media != "image/gif" &&
        media != "image/webp") {
      return Refuse(field, absl::StrCat("media type '", media,
                                        "' is not one Anthropic accepts (jpeg, png, gif, webp)"));
    }
    return json{
        {"type", "image"},
        {"source", {{"type", "base64"}, {"media_type", media}, {"data", url.substr(comma + 1)}}}};
  }
  if (absl::StartsWith(url, "https://") || absl::StartsWith(url, "http://")) {
    return json{{"type", "image"}, {"source", {{"type", "url"}, {"url", url}}}};
  }
  return Refuse(field, "only data: and http(s) image URLs can be sent to Anthropic");
}

// User content: a string stays a string; parts become blocks.
absl::StatusOr<json> AnthropicUserContent(const json& content, std::string_view field) {
  if (content.is_string()) return content;
  if (!content.is_array()) return Malformed(field, "must be a string or an array of parts");
  json blocks = json::array();
  for (size_t i = 0; i < content.size(); ++i) {
    const json& part = content[i];
    const std::string where = Item(field, i);
    if (!part.is_object()) return Malformed(where, "must be an object");
    ASSIGN_OR_RETURN(std::string type, RequiredString(part, "type", where));
    if (type == "text") {
      ASSIGN_OR_RETURN(std::string text, RequiredString(part, "text", where));
      blocks.push_back(TextBlock(std::move(text)));
    } else if (type == "image_url") {
      const std::string image_field = Dot(where, "image_url");
      auto it = part.find("image_url");
      if (it == part.end() || !it->is_object()) return Malformed(image_field, "must be an object");
      // `detail` is OpenAI's resolution and cost knob; Anthropic sizes images
      // itself, so it is dropped (docs/translation.md).
      ASSIGN_OR_RETURN(std::string url, RequiredString(*it, "url", image_field));
      ASSIGN_OR_RETURN(json block, AnthropicImage(url, Dot(image_field, "url")));
      blocks.push_back(std::move(block));
    } else {
      return Refuse(Dot(where, "type"),
                    absl::StrCat(type, " content has no Anthropic Messages equivalent"));
    }
  }
  return blocks;
}

struct Turn {
  std::string role;
  json content;  // a string, or an array of blocks
};

// AddTurn appends a message, merging it into the previous one when the role
// is the same: Anthropic wants user and assistant to alternate.
void AddTurn(std::vector<Turn>* turns, std::string role, json content) {
  if (turns->empty() || turns->back().role != role) {
    turns->push_back(Turn{std::move(role), std::move(content)});
    return;
  }
  auto as_blocks = [](json c) {
    if (!c.is_string()) return c;
    json blocks = json::array();
    // An empty text block is an error in Anthropic; an empty string adds nothing.
    if (!c.get_ref<const std::string&>().empty()) blocks.push_back(TextBlock(c.get<std::string>()));
    return blocks;
  };
  json& previous = turns->back().content;
  previous = as_blocks(std::move(previous));
  for (json& block : as_blocks(std::move(content))) previous.push_back(std::move(block));
}

absl::StatusOr<json> ToolUseBlock(const json& call, std::string_view field) {
  if (!call.is_object()) return Malformed(field, "must be an object");
  ASSIGN_OR_RETURN(std::string type, OptionalString(call, "type", field));
  if (!type.empty() && type != "function") {
    return Refuse(Dot(field, "type"),
                  absl::StrCat(type, " tool calls have no Anthropic equivalent"));
  }
  ASSIGN_OR_RETURN(std::string id, RequiredString(call, "id", field));
  const std::string function_field = Dot(field, "function");
  auto fn = call.find("function");
  if (fn == call.end() || !fn->is_object()) return Malformed(function_field, "must be an object");
  ASSIGN_OR_RETURN(std::string name, RequiredString(*fn, "name", function_field));
  ASSIGN_OR_RETURN(std::string arguments, OptionalString(*fn, "arguments", function_field));
  json input = json::object();
  if (arguments.find_first_not_of(" \t\r\n") != std::string::npos) {
    input = json::parse(arguments, nullptr, /*allow_exceptions=*/false);
    if (!input.is_object()) {
      return Refuse(Dot(function_field, "arguments"),
                    "not a JSON object; an Anthropic tool_use input must be one");
    }
  }
  return json{{"type", "tool_use"}, {"id", id}, {"name", name}, {"input", std::move(input)}};
}

absl::StatusOr<json> AnthropicAssistantContent(const json& m, std::string_view field) {
  RETURN_IF_ERROR(CheckKeys(m, field, {"role", "content", "tool_calls", "refusal"}, "Anthropic"));
  json blocks = json::array();
  const json& content = m.contains("content") ? m["content"] : json();
  bool plain_string = content.is_string();
  if (content.is_array()) {
    for (size_t i = 0; i < content.size(); ++i) {
      const json& part = content[i];
      const std::string where = Item(Dot(field, "content"), i);
      if (!part.is_object()) return Malformed(where, "must be an object");
      ASSIGN_OR_RETURN(std::string type, RequiredString(part, "type", where));
      if (type != "text" && type != "refusal") {
        return Refuse(Dot(where, "type"),
                      absl::StrCat(type, " parts have no Anthropic equivalent"));
      }
      ASSIGN_OR_RETURN(std::string text, RequiredString(part, type.c_str(), where));
      if (!text.empty()) blocks.push_back(TextBlock(std::move(text)));
    }
  } else if (content.is_string()) {
    if (!content.get_ref<const std::string&>().empty()) {
      blocks.push_back(TextBlock(content.get<std::string>()));
    }
  } else if (!content.is_null()) {
    return Malformed(Dot(field, "content"), "must be a string, an array or null");
  }
  ASSIGN_OR_RETURN(std::string refusal, OptionalString(m, "refusal", field));
  if (!refusal.empty()) {
    plain_string = false;
    blocks.push_back(TextBlock(std::move(refusal)));
  }
  if (Has(m, "tool_calls")) {
    const json& calls = m["tool_calls"];
    if (!calls.is_array()) return Malformed(Dot(field, "tool_calls"), "must be an array");
    for (size_t i = 0; i < calls.size(); ++i) {
      ASSIGN_OR_RETURN(json block, ToolUseBlock(calls[i], Item(Dot(field, "tool_calls"), i)));
      blocks.push_back(std::move(block));
      plain_string = false;
    }
  }
  if (plain_string) return content;  // keep a plain string as one
  if (blocks.empty()) return json("");
  return blocks;
}

absl::StatusOr<json> AnthropicToolChoice(const json& choice, bool parallel_allowed) {
  json out;
  if (choice.is_string()) {
    const std::string& s = choice.get_ref<const std::string&>();
    if (s == "auto") {
      out = {{"type", "auto"}};
    } else if (s == "none") {
      out = {{"type", "none"}};
    } else if (s == "required") {
      out = {{"type", "any"}};
    } else {
      return Malformed("tool_choice", absl::StrCat("unknown value '", s, "'"));
    }
  } else if (choice.is_object()) {
    ASSIGN_OR_RETURN(std::string type, RequiredString(choice, "type", "tool_choice"));
    if (type != "function") {
      return Refuse("tool_choice.type", absl::StrCat(type, " has no Anthropic equivalent"));
    }
    auto fn = choice.find("function");
    if (fn == choice.end() || !fn->is_object()) {
      return Malformed("tool_choice.function", "must be an object");
    }
    ASSIGN_OR_RETURN(std::string name, RequiredString(*fn, "name", "tool_choice.function"));
    out = {{"type", "tool"}, {"name", name}};
  } else {
    return Malformed("tool_choice", "must be a string or an object");
  }
  if (!parallel_allowed && out["type"] != "none") out["disable_parallel_tool_use"] = true;
  return out;
}

absl::StatusOr<json> AnthropicTools(const json& tools) {
  if (!tools.is_array()) return Malformed("tools", "must be an array");
  json out = json::array();
  for (size_t i = 0; i < tools.size(); ++i) {
    const std::string field = Item("tools", i);
    const json& tool = tools[i];
    if (!tool.is_object()) return Malformed(field, "must be an object");
    ASSIGN_OR_RETURN(std::string type, RequiredString(tool, "type", field));
    if (type != "function") {
      return Refuse(Dot(field, "type"), absl::StrCat(type, " tools have no Anthropic equivalent"));
    }
    const std::string fn_field = Dot(field, "function");
    auto fn = tool.find("function");
    if (fn == tool.end() || !fn->is_object()) return Malformed(fn_field, "must be an object");
    RETURN_IF_ERROR(
        CheckKeys(*fn, fn_field, {"name", "description", "parameters", "strict"}, "Anthropic"));
    auto strict = fn->find("strict");
    if (strict != fn->end() && strict->is_boolean() && strict->get<bool>()) {
      return Refuse(Dot(fn_field, "strict"),
                    "strict schema adherence is not guaranteed by Anthropic tool use");
    }
    ASSIGN_OR_RETURN(std::string name, RequiredString(*fn, "name", fn_field));
    json t = {{"name", name}};
    ASSIGN_OR_RETURN(std::string description, OptionalString(*fn, "description", fn_field));
    if (!description.empty()) t["description"] = description;
    if (Has(*fn, "parameters")) {
      if (!(*fn)["parameters"].is_object()) {
        return Malformed(Dot(fn_field, "parameters"), "must be an object");
      }
      t["input_schema"] = (*fn)["parameters"];
    } else {
      t["input_schema"] = {{"type", "object"}, {"properties", json::object()}};
    }
    out.push_back(std::move(t));
  }
  return out;
}

// Fields that cannot change the answer: OpenAI-side storage and its
// metadata, billing tier, cache routing, predicted outputs (a latency aid),
// and seed (best-effort reproducibility; Anthropic has none).
constexpr std::string_view kOpenAIDropped[] = {"store", "metadata",         "service_tier",
                                               "seed",  "prompt_cache_key", "prediction"};

absl::Status CheckOpenAIUnmappable(const json& in) {
  for (auto it = in.begin(); it != in.end(); ++it) {
    const std::string& key = it.key();
    const json& v = it.value();
    if (v.is_null()) continue;
    static constexpr std::string_view kMapped[] = {"model",          "messages",
                                                   "max_tokens",     "max_completion_tokens",
                                                   "temperature",    "top_p",
                                                   "stop",           "stream",
                                                   "stream_options", "tools",
                                                   "tool_choice",    "parallel_tool_calls",
                                                   "user",           "safety_identifier"};
    if (std::find(std::begin(kMapped), std::end(kMapped), key) != std::end(kMapped)) continue;
    if (std::find(std::begin(kOpenAIDropped), std::end(kOpenAIDropped), key) !=
        std::end(kOpenAIDropped)) {
      continue;
    }
    if (key == "n") {
      if (v.is_number_integer() && v.get<int64_t>() == 1) continue;
      return Refuse("n", absl::StrCat(v.dump(), " choices; Anthropic answers with one"));
    }
    if (key == "logprobs") {
      if (v.is_boolean() && !v.get<bool>()) continue;
      return Refuse("logprobs", "Anthropic returns no log probabilities");
    }
    if (key == "top_logprobs") {
      if (v.is_number() && v.get<double>() == 0) continue;
      return Refuse("top_logprobs", "Anthropic returns no log probabilities");
    }
    if (key == "frequency_penalty" || key == "presence_penalty") {
      if (v.is_number() && v.get<double>() == 0) continue;
      return Refuse(key, "Anthropic has no repetition penalties");
    }
    if (key == "logit_bias") {
      if (v.is_object() && v.empty()) continue;
      return Refuse("logit_bias", "Anthropic has no token biasing");
    }
    if (key == "response_format") {
      const std::string type = internal::StringField(v, "type");
      if (type == "text") continue;
      return Refuse("response_format",
                    absl::StrCat(type, " output has no Anthropic Messages equivalent"));
    }
    if (key == "modalities") {
      if (v == json::array({"text"})) continue;
      return Refuse("modalities", "Anthropic answers with text only");
    }
    if (key == "reasoning_effort") {
      return Refuse("reasoning_effort", "reasoning effort has no faithful Anthropic equivalent");
    }
    if (key == "functions" || key == "function_call") {
      return Refuse(key, "deprecated function calling is not translated; send tools");
    }
    if (key == "audio") return Refuse("audio", "Anthropic does not answer with audio");
    if (key == "web_search_options") {
      return Refuse("web_search_options", "built-in web search is not translated");
    }
    if (key == "verbosity") return Refuse("verbosity", "Anthropic has no verbosity control");
    return Refuse(key, "unknown field; not translated to Anthropic");
  }
  return absl::OkStatus();
}

absl::StatusOr<json> OpenAIToAnthropic(const json& in, const RequestOptions& options,
                                       TranslatedRequest* meta) {
  RETURN_IF_ERROR(CheckOpenAIUnmappable(in));
  json out = json::object();

  ASSIGN_OR_RETURN(meta->client_model, OptionalString(in, "model", ""));
  if (!options.target_model.empty()) {
    out["model"] = options.target_model;
  } else if (!meta->client_model.empty()) {
    out["model"] = meta->client_model;
  } else {
    return Malformed("model", "required");
  }

  if (!in.contains("messages") || !in["messages"].is_array()) {
    return Malformed("messages", "required, an array");
  }
  const json& messages = in["messages"];
  std::vector<std::string> system;
  std::vector<Turn> turns;
  for (size_t i = 0; i < messages.size(); ++i) {
    const std::string field = Item("messages", i);
    const json& m = messages[i];
    if (!m.is_object()) return Malformed(field, "must be an object");
    ASSIGN_OR_RETURN(std::string role, RequiredString(m, "role", field));
    if (Has(m, "name")) {
      return Refuse(Dot(field, "name"), "Anthropic messages carry no participant name");
    }
    const json& content = m.contains("content") ? m["content"] : json();
    if (role == "system" || role == "developer") {
      RETURN_IF_ERROR(CheckKeys(m, field, {"role", "content", "name"}, "Anthropic"));
      if (!turns.empty()) {
        return Refuse(Dot(field, "role"),
                      "a system message after the conversation started has no Anthropic "
                      "equivalent (Anthropic has one top-level system prompt)");
      }
      ASSIGN_OR_RETURN(std::vector<std::string> texts, OpenAITexts(content, Dot(field, "content")));
      for (std::string& t : texts) system.push_back(std::move(t));
    } else if (role == "user") {
      RETURN_IF_ERROR(CheckKeys(m, field, {"role", "content", "name"}, "Anthropic"));
      ASSIGN_OR_RETURN(json c, AnthropicUserContent(content, Dot(field, "content")));
      AddTurn(&turns, "user", std::move(c));
    } else if (role == "assistant") {
      ASSIGN_OR_RETURN(json c, AnthropicAssistantContent(m, field));
      AddTurn(&turns, "assistant", std::move(c));
    } else if (role == "tool") {
      RETURN_IF_ERROR(CheckKeys(m, field, {"role", "content", "tool_call_id"}, "Anthropic"));
      ASSIGN_OR_RETURN(std::string id, RequiredString(m, "tool_call_id", field));
      json result = {{"type", "tool_result"}, {"tool_use_id", id}};
      if (content.is_string()) {
        result["content"] = content;
      } else {
        ASSIGN_OR_RETURN(std::vector<std::string> texts,
                         OpenAITexts(content, Dot(field, "content")));
        json blocks = json::array();
        for (std::string& t : texts) blocks.push_back(TextBlock(std::move(t)));
        result["content"] = std::move(blocks);
      }
      AddTurn(&turns, "user", json::array({std::move(result)}));
    } else if (role == "function") {
      return Refuse(Dot(field, "role"), "deprecated function messages are not translated");
    } else {
      return Malformed(Dot(field, "role"), absl::StrCat("unknown role '", role, "'"));
    }
  }
  if (system.size() == 1) {
    out["system"] = system[0];
  } else if (system.size() > 1) {
    json blocks = json::array();
    for (std::string& s : system) blocks.push_back(TextBlock(std::move(s)));
    out["system"] = std::move(blocks);
  }
  json anthropic_messages = json::array();
  for (Turn& t : turns) {
    anthropic_messages.push_back({{"role", t.role}, {"content", std::move(t.content)}});
  }
  out["messages"] = std::move(anthropic_messages);

  // max_completion_tokens supersedes the deprecated max_tokens.
  const char* max_key = Has(in, "max_completion_tokens") ? "max_completion_tokens"
                        : Has(in, "max_tokens")          ? "max_tokens"
                                                         : nullptr;
  if (max_key != nullptr) {
    const json& v = in[max_key];
    if (!v.is_number_integer() || v.get<int64_t>() <= 0) {
      return Malformed(max_key, "must be a positive integer");
    }
    out["max_tokens"] = v;
  } else if (options.default_max_tokens > 0) {
    out["max_tokens"] = options.default_max_tokens;
  } else {
    return Refuse("max_tokens", "required by Anthropic and no default is configured");
  }

  if (Has(in, "temperature")) {
    const json& v = in["temperature"];
    if (!v.is_number()) return Malformed("temperature", "must be a number");
    if (v.get<double>() > 1) {
      return Refuse("temperature", absl::StrCat(v.dump(), " is above Anthropic's maximum of 1"));
    }
    out["temperature"] = v;
  }
  if (Has(in, "top_p")) {
    if (!in["top_p"].is_number()) return Malformed("top_p", "must be a number");
    out["top_p"] = in["top_p"];
  }
  if (Has(in, "stop")) {
    const json& stop = in["stop"];
    if (stop.is_string()) {
      out["stop_sequences"] = json::array({stop});
    } else if (stop.is_array() &&
               std::all_of(stop.begin(), stop.end(), [](const json& s) { return s.is_string(); })) {
      if (!stop.empty()) out["stop_sequences"] = stop;
    } else {
      return Malformed("stop", "must be a string or an array of strings");
    }
  }
  if (Has(in, "stream")) {
    if (!in["stream"].is_boolean()) return Malformed("stream", "must be a boolean");
    meta->stream = in["stream"].get<bool>();
    if (meta->stream) out["stream"] = true;
  }
  if (Has(in, "stream_options")) {
    const json& so = in["stream_options"];
    if (!so.is_object()) return Malformed("stream_options", "must be an object");
    RETURN_IF_ERROR(
        CheckKeys(so, "stream_options", {"include_usage", "include_obfuscation"}, "Anthropic"));
    meta->include_usage = internal::BoolField(so, "include_usage", false);
  }

  bool parallel = true;
  if (Has(in, "parallel_tool_calls")) {
    if (!in["parallel_tool_calls"].is_boolean()) {
      return Malformed("parallel_tool_calls", "must be a boolean");
    }
    parallel = in["parallel_tool_calls"].get<bool>();
  }
  const bool has_tools = Has(in, "tools") && !in["tools"].empty();
  if (has_tools) {
    ASSIGN_OR_RETURN(out["tools"], AnthropicTools(in["tools"]));
  }
  if (Has(in, "tool_choice")) {
    ASSIGN_OR_RETURN(out["tool_choice"], AnthropicToolChoice(in["tool_choice"], parallel));
  } else if (!parallel && has_tools) {
    out["tool_choice"] = {{"type", "auto"}, {"disable_parallel_tool_use", true}};
  }

  // Anthropic's metadata.user_id is an opaque end-user id, as OpenAI's
  // safety_identifier and the older `user` are.
  ASSIGN_OR_RETURN(std::string user, OptionalString(in, "safety_identifier", ""));
  if (user.empty()) {
    ASSIGN_OR_RETURN(user, OptionalString(in, "user", ""));
  }
  if (!user.empty()) out["metadata"] = {{"user_id", user}};
  return out;
}

// ---------------------------------------------------------------------------
// Anthropic Messages → OpenAI Chat Completions.

// Text blocks (system prompt, tool result) as OpenAI content: one block is a
// string, more are text parts.
absl::StatusOr<json> OpenAITextContent(const json& content, std::string_view field,
                                       std::string_view what) {
  if (content.is_string()) return content;
  if (content.is_null()) return json("");
  if (!content.is_array()) return Malformed(field, "must be a string or an array of blocks");
  json parts = json::array();
  for (size_t i = 0; i < content.size(); ++i) {
    const std::string where = Item(field, i);
    const json& block = content[i];
    if (!block.is_object()) return Malformed(where, "must be an object");
    ASSIGN_OR_RETURN(std::string type, RequiredString(block, "type", where));
    if (type != "text") {
      return Refuse(Dot(where, "type"),
                    absl::StrCat(type, " blocks in ", Av(what), " have no OpenAI equivalent"));
    }
    RETURN_IF_ERROR(
        CheckKeys(block, where, {"type", "text", "cache_control", "citations"}, "OpenAI"));
    ASSIGN_OR_RETURN(std::string text, RequiredString(block, "text", where));
    parts.push_back({{"type", "text"}, {"text", std::move(text)}});
  }
  if (parts.size() == 1) return parts[0]["text"];
  return parts;
}

absl::StatusOr<json> OpenAIImagePart(const json& block, std::string_view field) {
  const std::string source_field = Dot(field, "source");
  auto source = block.find("source");
  if (source == block.end() || !source->is_object()) {
    return Malformed(source_field, "must be an object");
  }
  ASSIGN_OR_RETURN(std::string type, RequiredString(*source, "type", source_field));
  std::string url;
  if (type == "base64") {
    ASSIGN_OR_RETURN(std::string media, RequiredString(*source, "media_type", source_field));
    ASSIGN_OR_RETURN(std::string data, RequiredString(*source, "data", source_field));
    url = absl::StrCat("data:", media, ";base64,", data);
  } else if (type == "url") {
    ASSIGN_OR_RETURN(url, RequiredString(*source, "url", source_field));
  } else {
    return Refuse(Dot(source_field, "type"),
                  absl::StrCat(type, " image sources have no OpenAI equivalent"));
  }
  return json{{"type", "image_url"}, {"image_url", {{"url", std::move(url)}}}};
}

// One Anthropic user message: its tool results become `tool` messages (first,
// as OpenAI wants them right after the assistant's tool calls), the rest one
// user message.
absl::Status AddOpenAIUserMessages(const json& content, std::string_view field, json* out) {
  if (content.is_string()) {
    out->push_back({{"role", "user"}, {"content", content}});
    return absl::OkStatus();
  }
  if (!content.is_array()) return Malformed(field, "must be a string or an array of blocks");
  json parts = json::array();
  for (size_t i = 0; i < content.size(); ++i) {
    const std::string where = Item(field, i);
    const json& block = content[i];
    if (!block.is_object()) return Malformed(where, "must be an object");
    ASSIGN_OR_RETURN(std::string type, RequiredString(block, "type", where));
    if (type == "text") {
      RETURN_IF_ERROR(
          CheckKeys(block, where, {"type", "text", "cache_control", "citations"}, "OpenAI"));
      ASSIGN_OR_RETURN(std::string text, RequiredString(block, "text", where));
      parts.push_back({{"type", "text"}, {"text", std::move(text)}});
    } else if (type == "image") {
      RETURN_IF_ERROR(CheckKeys(block, where, {"type", "source", "cache_control"}, "OpenAI"));
      ASSIGN_OR_RETURN(json part, OpenAIImagePart(block, where));
      parts.push_back(std::move(part));
    } else if (type == "tool_result") {
      RETURN_IF_ERROR(CheckKeys(
          block, where, {"type", "tool_use_id", "content", "is_error", "cache_control"}, "OpenAI"));
      auto is_error = block.find("is_error");
      if (is_error != block.end() && is_error->is_boolean() && is_error->get<bool>()) {
        return Refuse(Dot(where, "is_error"), "OpenAI tool messages cannot be marked as errors");
      }
      ASSIGN_OR_RETURN(std::string id, RequiredString(block, "tool_use_id", where));
      ASSIGN_OR_RETURN(json text,
                       OpenAITextContent(block.contains("content") ? block["content"] : json(),
                                         Dot(where, "content"), "a tool result"));
      out->push_back({{"role", "tool"}, {"tool_call_id", id}, {"content", std::move(text)}});
    } else {
      return Refuse(Dot(where, "type"),
                    absl::StrCat(type, " blocks have no Chat Completions equivalent"));
    }
  }
  if (!parts.empty()) out->push_back({{"role", "user"}, {"content", std::move(parts)}});
  return absl::OkStatus();
}

absl::StatusOr<json> OpenAIAssistantMessage(const json& content, std::string_view field) {
  if (content.is_string()) return json{{"role", "assistant"}, {"content", content}};
  if (!content.is_array()) return Malformed(field, "must be a string or an array of blocks");
  json texts = json::array();
  json calls = json::array();
  for (size_t i = 0; i < content.size(); ++i) {
    const std::string where = Item(field, i);
    const json& block = content[i];
    if (!block.is_object()) return Malformed(where, "must be an object");
    ASSIGN_OR_RETURN(std::string type, RequiredString(block, "type", where));
    if (type == "text") {
      RETURN_IF_ERROR(
          CheckKeys(block, where, {"type", "text", "cache_control", "citations"}, "OpenAI"));
      ASSIGN_OR_RETURN(std::string text, RequiredString(block, "text", where));
      texts.push_back({{"type", "text"}, {"text", std::move(text)}});
    } else if (type == "tool_use") {
      RETURN_IF_ERROR(
          CheckKeys(block, where, {"type", "id", "name", "input", "cache_control"}, "OpenAI"));
      ASSIGN_OR_RETURN(std::string id, RequiredString(block, "id", where));
      ASSIGN_OR_RETURN(std::string name, RequiredString(block, "name", where));
      const json input = block.contains("input") ? block["input"] : json::object();
      if (!input.is_object()) return Malformed(Dot(where, "input"), "must be an object");
      calls.push_back({{"id", id},
                       {"type", "function"},
                       {"function", {{"name", name}, {"arguments", internal::Dump(input)}}}});
    } else if (type == "thinking" || type == "redacted_thinking") {
      // Without extended thinking enabled (and it is refused) Anthropic
      // strips earlier turns' thinking from the context, so dropping it
      // changes nothing.
      continue;
    } else {
      return Refuse(Dot(where, "type"),
                    absl::StrCat(type, " blocks have no Chat Completions equivalent"));
    }
  }
  json m = {{"role", "assistant"}};
  if (texts.size() == 1) {
    m["content"] = texts[0]["text"];
  } else if (texts.size() > 1) {
    m["content"] = std::move(texts);
  } else {
    m["content"] = calls.empty() ? json("") : json();
  }
  if (!calls.empty()) m["tool_calls"] = std::move(calls);
  return m;
}

absl::StatusOr<json> AnthropicToOpenAI(const json& in, const RequestOptions& options,
                                       TranslatedRequest* meta) {
  for (auto it = in.begin(); it != in.end(); ++it) {
    const std::string& key = it.key();
    const json& v = it.value();
    if (v.is_null()) continue;
    static constexpr std::string_view kMapped[] = {
        "model",  "messages",    "max_tokens", "system", "metadata",   "stop_sequences",
        "stream", "temperature", "top_p",      "tools",  "tool_choice"};
    if (std::find(std::begin(kMapped), std::end(kMapped), key) != std::end(kMapped)) continue;
    if (key == "service_tier") continue;  // capacity tier: cannot change the answer
    if (key == "thinking") {
      if (internal::StringField(v, "type") == "disabled") continue;
      return Refuse("thinking", "extended thinking has no Chat Completions equivalent");
    }
    if (key == "top_k") return Refuse("top_k", "OpenAI has no top-k sampling");
    return Refuse(key, "unknown field; not translated to OpenAI");
  }
  json out = json::object();
  ASSIGN_OR_RETURN(meta->client_model, OptionalString(in, "model", ""));
  if (!options.target_model.empty()) {
    out["model"] = options.target_model;
  } else if (!meta->client_model.empty()) {
    out["model"] = meta->client_model;
  } else {
    return Malformed("model", "required");
  }

  json messages = json::array();
  if (Has(in, "system")) {
    ASSIGN_OR_RETURN(json system, OpenAITextContent(in["system"], "system", "the system prompt"));
    messages.push_back({{"role", "system"}, {"content", std::move(system)}});
  }
  if (!in.contains("messages") || !in["messages"].is_array()) {
    return Malformed("messages", "required, an array");
  }
  const json& source = in["messages"];
  for (size_t i = 0; i < source.size(); ++i) {
    const std::string field = Item("messages", i);
    const json& m = source[i];
    if (!m.is_object()) return Malformed(field, "must be an object");
    RETURN_IF_ERROR(CheckKeys(m, field, {"role", "content"}, "OpenAI"));
    ASSIGN_OR_RETURN(std::string role, RequiredString(m, "role", field));
    const json& content = m.contains("content") ? m["content"] : json();
    if (role == "user") {
      RETURN_IF_ERROR(AddOpenAIUserMessages(content, Dot(field, "content"), &messages));
    } else if (role == "assistant") {
      ASSIGN_OR_RETURN(json a, OpenAIAssistantMessage(content, Dot(field, "content")));
      messages.push_back(std::move(a));
    } else {
      return Malformed(Dot(field, "role"), absl::StrCat("unknown role '", role, "'"));
    }
  }
  out["messages"] = std::move(messages);

  if (Has(in, "max_tokens")) {
    const json& v = in["max_tokens"];
    if (!v.is_number_integer() || v.get<int64_t>() <= 0) {
      return Malformed("max_tokens", "must be a positive integer");
    }
    out["max_completion_tokens"] = v;
  }
  for (const char* key : {"temperature", "top_p"}) {
    if (!Has(in, key)) continue;
    if (!in[key].is_number()) return Malformed(key, "must be a number");
    out[key] = in[key];
  }
  if (Has(in, "stop_sequences")) {
    const json& stop = in["stop_sequences"];
    if (!stop.is_array() ||
        !std::all_of(stop.begin(), stop.end(), [](const json& s) { return s.is_string(); })) {
      return Malformed("stop_sequences", "must be an array of strings");
    }
    if (stop.size() > 4) {
      return Refuse("stop_sequences",
                    absl::StrCat(stop.size(), " sequences; OpenAI accepts at most 4"));
    }
    if (!stop.empty()) out["stop"] = stop;
  }
  if (Has(in, "stream")) {
    if (!in["stream"].is_boolean()) return Malformed("stream", "must be a boolean");
    meta->stream = in["stream"].get<bool>();
    if (meta->stream) {
      out["stream"] = true;
      // Anthropic clients always get usage; OpenAI sends it only when asked.
      out["stream_options"] = {{"include_usage", true}};
    }
  }
  if (Has(in, "metadata")) {
    const json& md = in["metadata"];
    if (!md.is_object()) return Malformed("metadata", "must be an object");
    RETURN_IF_ERROR(CheckKeys(md, "metadata", {"user_id"}, "OpenAI"));
    ASSIGN_OR_RETURN(std::string user, OptionalString(md, "user_id", "metadata"));
    if (!user.empty()) out["user"] = user;
  }

  const bool has_tools = Has(in, "tools") && !in["tools"].empty();
  if (has_tools) {
    const json& tools = in["tools"];
    if (!tools.is_array()) return Malformed("tools", "must be an array");
    json out_tools = json::array();
    for (size_t i = 0; i < tools.size(); ++i) {
      const std::string field = Item("tools", i);
      const json& tool = tools[i];
      if (!tool.is_object()) return Malformed(field, "must be an object");
      ASSIGN_OR_RETURN(std::string type, OptionalString(tool, "type", field));
      if (!type.empty() && type != "custom") {
        return Refuse(Dot(field, "type"),
                      absl::StrCat(type, " (a built-in tool) has no Chat Completions equivalent"));
      }
      RETURN_IF_ERROR(CheckKeys(
          tool, field, {"type", "name", "description", "input_schema", "cache_control"}, "OpenAI"));
      ASSIGN_OR_RETURN(std::string name, RequiredString(tool, "name", field));
      json fn = {{"name", name}};
      ASSIGN_OR_RETURN(std::string description, OptionalString(tool, "description", field));
      if (!description.empty()) fn["description"] = description;
      if (!tool.contains("input_schema") || !tool["input_schema"].is_object()) {
        return Malformed(Dot(field, "input_schema"), "required, an object");
      }
      fn["parameters"] = tool["input_schema"];
      out_tools.push_back({{"type", "function"}, {"function", std::move(fn)}});
    }
    out["tools"] = std::move(out_tools);
  }
  if (Has(in, "tool_choice")) {
    const json& choice = in["tool_choice"];
    if (!choice.is_object()) return Malformed("tool_choice", "must be an object");
    RETURN_IF_ERROR(
        CheckKeys(choice, "tool_choice", {"type", "name", "disable_parallel_tool_use"}, "OpenAI"));
    ASSIGN_OR_RETURN(std::string type, RequiredString(choice, "type", "tool_choice"));
    if (type == "auto") {
      out["tool_choice"] = "auto";
    } else if (type == "any") {
      out["tool_choice"] = "required";
    } else if (type == "none") {
      out["tool_choice"] = "none";
    } else if (type == "tool") {
      ASSIGN_OR_RETURN(std::string name, RequiredString(choice, "name", "tool_choice"));
      out["tool_choice"] = {{"type", "function"}, {"function", {{"name", name}}}};
    } else {
      return Malformed("tool_choice.type", absl::StrCat("unknown value '", type, "'"));
    }
    if (internal::BoolField(choice, "disable_parallel_tool_use", false) && has_tools) {
      out["parallel_tool_calls"] = false;
    }
  }
  return out;
}

absl::StatusOr<TranslatedRequest> TranslateRequestOrThrow(std::string_view body_json, Provider from,
                                                          Provider to,
                                                          const RequestOptions& options) {
  ASSIGN_OR_RETURN(json in, internal::ParseJsonObject(body_json, "request body"));
  TranslatedRequest result;
  result.path = std::string(RequestPath(to));
  result.headers.emplace_back("content-type", "application/json");
  if (to == Provider::kAnthropicMessages) {
    result.headers.emplace_back("anthropic-version", options.anthropic_version);
  }
  json out;
  if (from == to) {
    out = std::move(in);
    ASSIGN_OR_RETURN(result.client_model, OptionalString(out, "model", ""));
    if (!options.target_model.empty()) out["model"] = options.target_model;
    result.stream = internal::BoolField(out, "stream", false);
    if (from == Provider::kOpenAIChat && out.contains("stream_options")) {
      result.include_usage = internal::BoolField(out["stream_options"], "include_usage", false);
    }
  } else if (from == Provider::kOpenAIChat) {
    ASSIGN_OR_RETURN(out, OpenAIToAnthropic(in, options, &result));
  } else {
    ASSIGN_OR_RETURN(out, AnthropicToOpenAI(in, options, &result));
  }
  result.body = internal::Dump(out);
  return result;
}

}  // namespace

absl::StatusOr<TranslatedRequest> TranslateRequest(std::string_view body_json, Provider from,
                                                   Provider to, const RequestOptions& options) {
  // Every access above checks types first; this catch only keeps a missed
  // case from throwing past the module boundary.
  try {
    return TranslateRequestOrThrow(body_json, from, to, options);
  } catch (const nlohmann::json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("request body: ", e.what()));
  }
}

}  // namespace understudy::translate
