// Request parsing and schema validation for every API the fake model
// speaks. Error messages follow the providers' wording where it is public;
// OpenAI names the offending parameter in "param".
#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "examples/fake-model/api.h"
#include "examples/fake-model/text_ops.h"

namespace understudy::fake_model::api {
namespace {

constexpr size_t kMaxEmbeddingInputs = 2048;
constexpr int kMaxEmbeddingDims = 8192;

bool Fail(RequestError* error, std::string message, std::string param = "", std::string code = "") {
  error->status = 400;
  error->message = std::move(message);
  error->param = std::move(param);
  error->code = std::move(code);
  return false;
}

// Parse reads the body as a JSON object.
bool ParseObject(std::string_view body, Json* j, RequestError* error, bool anthropic) {
  *j = Json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j->is_discarded()) {
    return Fail(error, anthropic ? "There was an issue with the format of "
                                   "your request: the body is not valid JSON."
                                 : "We could not parse the JSON body of your "
                                   "request. (The body must be valid JSON.)");
  }
  if (!j->is_object()) {
    return Fail(error, anthropic ? "Input should be a valid dictionary"
                                 : "The request body must be a JSON object.");
  }
  return true;
}

// Text of a content value: a string, or the "text" of the parts of an
// array (any part type that carries text).
std::string ContentText(const Json& content) {
  if (content.is_string()) return content.get<std::string>();
  std::string out;
  if (content.is_array()) {
    for (const Json& part : content) {
      if (part.is_object() && part.contains("text") && part["text"].is_string()) {
        if (!out.empty()) out += "\n";
        out += part["text"].get<std::string>();
      }
    }
  }
  return out;
}

bool OptionalBool(const Json& j, const char* key, bool* out, RequestError* error,
                  const std::string& what) {
  if (!j.contains(key) || j[key].is_null()) return true;
  if (!j[key].is_boolean()) return Fail(error, absl::StrCat(what, " must be a boolean."), key);
  *out = j[key].get<bool>();
  return true;
}

bool OptionalNumber(const Json& j, const char* key, double lo, double hi, RequestError* error,
                    bool anthropic) {
  if (!j.contains(key) || j[key].is_null()) return true;
  const Json& v = j[key];
  if (!v.is_number() || v.get<double>() < lo || v.get<double>() > hi) {
    return Fail(error,
                anthropic ? absl::StrCat(key, ": Input should be a number in [", lo, ", ", hi, "]")
                          : absl::StrCat("Invalid '", key,
                                         "': expected a "
                                         "number between ",
                                         lo, " and ", hi, ", got ", v.dump(), "."),
                key);
  }
  return true;
}

// The model field: a non-empty string, required unless the schema is
// lenient.
bool ReadModel(const Json& j, const ParseOptions& options, std::string* model, RequestError* error,
               Api api) {
  if (!j.contains("model") || j["model"].is_null()) {
    if (!options.validate_schema) return true;
    switch (api) {
      case Api::kAnthropic:
        return Fail(error, "model: Field required", "model");
      case Api::kChat:
        return Fail(error, "you must provide a model parameter", "model");
      default:
        return Fail(error, "Missing required parameter: 'model'.", "model",
                    "missing_required_parameter");
    }
  }
  if (!j["model"].is_string() || j["model"].get<std::string>().empty()) {
    return Fail(error,
                api == Api::kAnthropic ? "model: Input should be a valid string"
                                       : absl::StrCat("Invalid type for 'model': expected a "
                                                      "non-empty string, but got ",
                                                      j["model"].dump(), "."),
                "model", api == Api::kAnthropic ? "" : "invalid_type");
  }
  *model = j["model"].get<std::string>();
  return true;
}

}  // namespace

uint64_t Fnv1a(std::string_view data, uint64_t seed) {
  uint64_t h = seed;
  for (unsigned char c : data) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

// ---------------------------------------------------------------- chat ---

bool ParseChat(std::string_view body, const ParseOptions& options, GenRequest* out,
               RequestError* error) {
  Json j;
  if (!ParseObject(body, &j, error, false)) return false;
  GenRequest r;
  r.api = Api::kChat;
  if (!ReadModel(j, options, &r.model, error, Api::kChat)) return false;
  if (!j.contains("messages")) return Fail(error, "'messages' is a required property.", "messages");
  const Json& messages = j["messages"];
  if (!messages.is_array() || messages.empty())
    return Fail(error, "'messages' must be a non-empty array.", "messages");
  static const std::set<std::string> kRoles = {"system",    "developer", "user",
                                               "assistant", "tool",      "function"};
  std::string prompt_text;
  for (size_t i = 0; i < messages.size(); ++i) {
    const Json& m = messages[i];
    const std::string where = absl::StrCat("messages[", i, "]");
    if (!m.is_object()) return Fail(error, absl::StrCat(where, ": must be an object."), where);
    if (!m.contains("role") || !m["role"].is_string() ||
        !kRoles.count(m["role"].get<std::string>())) {
      return Fail(error,
                  absl::StrCat(where,
                               ".role: must be one of system, developer, "
                               "user, assistant, tool."),
                  absl::StrCat(where, ".role"));
    }
    const std::string role = m["role"].get<std::string>();
    Json content = m.contains("content") ? m["content"] : Json();
    if (!content.is_null() && !content.is_string() && !content.is_array()) {
      return Fail(error,
                  absl::StrCat(where,
                               ".content: must be a string or an array of "
                               "parts."),
                  absl::StrCat(where, ".content"));
    }
    if (options.validate_schema && content.is_null() && role != "assistant") {
      return Fail(error,
                  absl::StrCat("Invalid value for '", where,
                               ".content': expected a string or an array, got "
                               "null."),
                  absl::StrCat(where, ".content"));
    }
    std::string text = ContentText(content);
    if (m.contains("tool_calls")) text += m["tool_calls"].dump();
    r.prompt_tokens += CountTokens(text) + 4;
    prompt_text += role + "\x1f" + text + "\x1e";
    if (role == "user") r.last_user = ContentText(content);
    r.last_is_tool_result = role == "tool" || role == "function";
  }
  r.prompt_tokens += 3;
  if (!OptionalBool(j, "stream", &r.stream, error, "'stream'")) return false;
  if (j.contains("stream_options") && j["stream_options"].is_object()) {
    const Json& so = j["stream_options"];
    if (so.contains("include_usage")) {
      if (!so["include_usage"].is_boolean())
        return Fail(error, "'stream_options.include_usage' must be a boolean.",
                    "stream_options.include_usage");
      r.include_usage = so["include_usage"].get<bool>();
    }
  }
  if (j.contains("response_format") && !j["response_format"].is_null()) {
    const Json& rf = j["response_format"];
    if (!rf.is_object() || !rf.contains("type") || !rf["type"].is_string()) {
      return Fail(error, "'response_format' must be an object with a string 'type'.",
                  "response_format");
    }
    const std::string type = rf["type"].get<std::string>();
    if (type != "text" && type != "json_object" && type != "json_schema") {
      return Fail(error,
                  "'response_format.type' must be one of text, json_object, "
                  "json_schema.",
                  "response_format.type");
    }
    r.json_mode = type != "text";
  }
  for (const char* key : {"max_tokens", "max_completion_tokens"}) {
    if (j.contains(key) && !j[key].is_null()) {
      if (!j[key].is_number_integer() || j[key].get<int64_t>() < 1) {
        return Fail(error, absl::StrCat("'", key, "' must be a positive integer."), key);
      }
      r.max_tokens = j[key].get<int64_t>();
    }
  }
  if (!OptionalNumber(j, "temperature", 0, 2, error, false)) return false;
  if (!OptionalNumber(j, "top_p", 0, 1, error, false)) return false;
  if (j.contains("stop") && !j["stop"].is_null()) {
    const Json& stop = j["stop"];
    if (stop.is_string()) {
      r.stop.push_back(stop.get<std::string>());
    } else if (stop.is_array() && stop.size() <= 4) {
      for (const Json& s : stop) {
        if (!s.is_string())
          return Fail(error, "'stop' must be a string or an array of strings.", "stop");
        r.stop.push_back(s.get<std::string>());
      }
    } else {
      return Fail(error, "'stop' must be a string or an array of at most 4 strings.", "stop");
    }
  }
  bool tool_choice_none = false;
  if (j.contains("tool_choice") && !j["tool_choice"].is_null()) {
    const Json& tc = j["tool_choice"];
    if (tc.is_string() && (tc == "none" || tc == "auto" || tc == "required")) {
      tool_choice_none = tc.get<std::string>() == "none";
    } else if (tc.is_object() && tc.contains("function") && tc["function"].is_object() &&
               tc["function"].contains("name") && tc["function"]["name"].is_string()) {
      r.forced_tool = tc["function"]["name"].get<std::string>();
    } else {
      return Fail(error,
                  "'tool_choice' must be \"none\", \"auto\", \"required\" or "
                  "a function object.",
                  "tool_choice");
    }
  }
  if (j.contains("tools") && !j["tools"].is_null()) {
    const Json& tools = j["tools"];
    if (!tools.is_array()) return Fail(error, "'tools' must be an array.", "tools");
    for (size_t i = 0; i < tools.size(); ++i) {
      const Json& t = tools[i];
      if (!t.is_object() || !t.contains("function") || !t["function"].is_object() ||
          !t["function"].contains("name") || !t["function"]["name"].is_string()) {
        return Fail(error, absl::StrCat("tools[", i, "].function.name: is required."),
                    absl::StrCat("tools[", i, "].function.name"));
      }
      if (!tool_choice_none) r.tool_names.insert(t["function"]["name"].get<std::string>());
    }
    r.prompt_tokens += CountTokens(tools.dump());
  }
  r.prompt_hash = Fnv1a(prompt_text);
  *out = std::move(r);
  return true;
}

// ----------------------------------------------------------- anthropic ---

bool ParseAnthropic(std::string_view body, const ParseOptions& options, GenRequest* out,
                    RequestError* error) {
  Json j;
  if (!ParseObject(body, &j, error, true)) return false;
  GenRequest r;
  r.api = Api::kAnthropic;
  if (!ReadModel(j, options, &r.model, error, Api::kAnthropic)) return false;
  if (!j.contains("max_tokens") || j["max_tokens"].is_null()) {
    if (options.validate_schema) return Fail(error, "max_tokens: Field required", "max_tokens");
  } else if (!j["max_tokens"].is_number_integer()) {
    return Fail(error, "max_tokens: Input should be a valid integer", "max_tokens");
  } else if (j["max_tokens"].get<int64_t>() < 1) {
    return Fail(error, "max_tokens: Input should be greater than or equal to 1", "max_tokens");
  } else {
    r.max_tokens = j["max_tokens"].get<int64_t>();
  }
  if (!j.contains("messages")) return Fail(error, "messages: Field required", "messages");
  const Json& messages = j["messages"];
  if (!messages.is_array())
    return Fail(error, "messages: Input should be a valid list", "messages");
  if (messages.empty())
    return Fail(error, "messages: at least one message is required", "messages");
  std::string prompt_text;
  if (j.contains("system") && !j["system"].is_null()) {
    const Json& system = j["system"];
    if (!system.is_string() && !system.is_array())
      return Fail(error,
                  "system: Input should be a valid string or a list of text "
                  "blocks",
                  "system");
    std::string text = ContentText(system);
    r.prompt_tokens += CountTokens(text) + 4;
    prompt_text += "system\x1f" + text + "\x1e";
  }
  for (size_t i = 0; i < messages.size(); ++i) {
    const Json& m = messages[i];
    const std::string where = absl::StrCat("messages.", i);
    if (!m.is_object())
      return Fail(error, absl::StrCat(where,
                                      ": Input should be a valid "
                                      "dictionary"));
    if (!m.contains("role") || !m["role"].is_string())
      return Fail(error, absl::StrCat(where, ".role: Field required"));
    const std::string role = m["role"].get<std::string>();
    if (options.validate_schema && role != "user" && role != "assistant") {
      if (role == "system") {
        return Fail(error,
                    "messages: Unexpected role \"system\". The Messages API "
                    "accepts a top-level `system` parameter, not \"system\" "
                    "as an input message role.");
      }
      return Fail(error, absl::StrCat(where,
                                      ".role: Input should be 'user' or "
                                      "'assistant'"));
    }
    if (!m.contains("content") || (!m["content"].is_string() && !m["content"].is_array())) {
      return Fail(error, absl::StrCat(where,
                                      ".content: Input should be a valid string or "
                                      "a list of content blocks"));
    }
    const Json& content = m["content"];
    std::string text;
    bool tool_result = false;
    if (content.is_string()) {
      text = content.get<std::string>();
    } else {
      for (size_t b = 0; b < content.size(); ++b) {
        const Json& block = content[b];
        if (!block.is_object() || !block.contains("type") || !block["type"].is_string()) {
          return Fail(error, absl::StrCat(where, ".content.", b, ".type: Field required"));
        }
        const std::string type = block["type"].get<std::string>();
        if (type == "text") {
          if (!block.contains("text") || !block["text"].is_string()) {
            return Fail(error, absl::StrCat(where, ".content.", b, ".text: Field required"));
          }
          if (!text.empty()) text += "\n";
          text += block["text"].get<std::string>();
        } else if (type == "tool_result") {
          if (options.validate_schema &&
              (!block.contains("tool_use_id") || !block["tool_use_id"].is_string())) {
            return Fail(error, absl::StrCat(where, ".content.", b, ".tool_use_id: Field required"));
          }
          tool_result = true;
          if (block.contains("content")) {
            prompt_text += ContentText(block["content"]);
            r.prompt_tokens += CountTokens(ContentText(block["content"]));
          }
        } else if (type == "tool_use") {
          if (block.contains("input")) {
            prompt_text += block["input"].dump();
            r.prompt_tokens += CountTokens(block["input"].dump());
          }
        }
      }
    }
    r.prompt_tokens += CountTokens(text) + 4;
    prompt_text += role + "\x1f" + text + "\x1e";
    if (role == "user" && !text.empty()) r.last_user = text;
    r.last_is_tool_result = role == "user" && tool_result;
  }
  r.prompt_tokens += 3;
  if (!OptionalBool(j, "stream", &r.stream, error, "stream:")) return false;
  if (!OptionalNumber(j, "temperature", 0, 1, error, true)) return false;
  if (!OptionalNumber(j, "top_p", 0, 1, error, true)) return false;
  if (j.contains("stop_sequences") && !j["stop_sequences"].is_null()) {
    const Json& stop = j["stop_sequences"];
    if (!stop.is_array()) return Fail(error, "stop_sequences: Input should be a valid list");
    for (const Json& s : stop) {
      if (!s.is_string() || s.get<std::string>().empty())
        return Fail(error,
                    "stop_sequences: each stop sequence must be a non-empty "
                    "string");
      r.stop.push_back(s.get<std::string>());
    }
  }
  bool tools_disabled = false;
  if (j.contains("tool_choice") && !j["tool_choice"].is_null()) {
    const Json& tc = j["tool_choice"];
    const std::string type = tc.is_object() && tc.contains("type") && tc["type"].is_string()
                                 ? tc["type"].get<std::string>()
                                 : "";
    if (type == "none") {
      tools_disabled = true;
    } else if (type == "tool") {
      if (!tc.contains("name") || !tc["name"].is_string())
        return Fail(error, "tool_choice.tool.name: Field required");
      r.forced_tool = tc["name"].get<std::string>();
    } else if (type != "auto" && type != "any") {
      return Fail(error,
                  "tool_choice: Input tag does not match any of the expected "
                  "tags: 'auto', 'any', 'tool', 'none'");
    }
  }
  if (j.contains("tools") && !j["tools"].is_null()) {
    const Json& tools = j["tools"];
    if (!tools.is_array()) return Fail(error, "tools: Input should be a valid list");
    for (size_t i = 0; i < tools.size(); ++i) {
      const Json& t = tools[i];
      if (!t.is_object() || !t.contains("name") || !t["name"].is_string() ||
          t["name"].get<std::string>().empty()) {
        return Fail(error, absl::StrCat("tools.", i, ".name: Field required"));
      }
      // Client tools ("custom", or no type) declare an input schema;
      // server tools (web_search_..., bash_...) do not.
      const bool custom = !t.contains("type") || t["type"] == "custom";
      if (custom && options.validate_schema &&
          (!t.contains("input_schema") || !t["input_schema"].is_object())) {
        return Fail(error, absl::StrCat("tools.", i,
                                        ".custom.input_schema: Field "
                                        "required"));
      }
      if (!tools_disabled) r.tool_names.insert(t["name"].get<std::string>());
    }
    r.prompt_tokens += CountTokens(tools.dump());
  }
  r.prompt_hash = Fnv1a(prompt_text);
  *out = std::move(r);
  return true;
}

// ----------------------------------------------------------- responses ---

bool ParseResponses(std::string_view body, const ParseOptions& options, GenRequest* out,
                    RequestError* error) {
  Json j;
  if (!ParseObject(body, &j, error, false)) return false;
  GenRequest r;
  r.api = Api::kResponses;
  if (!ReadModel(j, options, &r.model, error, Api::kResponses)) return false;
  std::string prompt_text;
  if (j.contains("instructions") && !j["instructions"].is_null()) {
    if (!j["instructions"].is_string())
      return Fail(error, "Invalid type for 'instructions': expected a string.", "instructions",
                  "invalid_type");
    const std::string text = j["instructions"].get<std::string>();
    r.prompt_tokens += CountTokens(text) + 4;
    prompt_text += "instructions\x1f" + text + "\x1e";
    r.echo["instructions"] = text;
  }
  if (!j.contains("input") || j["input"].is_null()) {
    if (options.validate_schema)
      return Fail(error, "Missing required parameter: 'input'.", "input",
                  "missing_required_parameter");
  } else if (j["input"].is_string()) {
    const std::string text = j["input"].get<std::string>();
    r.last_user = text;
    r.prompt_tokens += CountTokens(text) + 4;
    prompt_text += "user\x1f" + text + "\x1e";
  } else if (j["input"].is_array()) {
    static const std::set<std::string> kRoles = {"user", "assistant", "system", "developer"};
    const Json& input = j["input"];
    if (input.empty() && options.validate_schema)
      return Fail(error,
                  "Invalid 'input': empty array. Expected an array "
                  "with at least one item.",
                  "input", "empty_array");
    for (size_t i = 0; i < input.size(); ++i) {
      const Json& item = input[i];
      const std::string where = absl::StrCat("input[", i, "]");
      if (!item.is_object())
        return Fail(error, absl::StrCat("Invalid '", where, "': expected an object."), where,
                    "invalid_type");
      const std::string type = item.contains("type") && item["type"].is_string()
                                   ? item["type"].get<std::string>()
                                   : "message";
      if (type == "message") {
        if (!item.contains("role") || !item["role"].is_string() ||
            (options.validate_schema && !kRoles.count(item["role"].get<std::string>()))) {
          return Fail(error,
                      absl::StrCat("Invalid value for '", where,
                                   ".role': expected one of 'user', "
                                   "'assistant', 'system', 'developer'."),
                      absl::StrCat(where, ".role"), "invalid_value");
        }
        if (!item.contains("content") ||
            (!item["content"].is_string() && !item["content"].is_array())) {
          return Fail(error, absl::StrCat("Missing required parameter: '", where, ".content'."),
                      absl::StrCat(where, ".content"), "missing_required_parameter");
        }
        const std::string role = item["role"].get<std::string>();
        const std::string text = ContentText(item["content"]);
        r.prompt_tokens += CountTokens(text) + 4;
        prompt_text += role + "\x1f" + text + "\x1e";
        if (role == "user") r.last_user = text;
        r.last_is_tool_result = false;
      } else if (type == "function_call_output") {
        if (options.validate_schema &&
            (!item.contains("call_id") || !item["call_id"].is_string())) {
          return Fail(error, absl::StrCat("Missing required parameter: '", where, ".call_id'."),
                      absl::StrCat(where, ".call_id"), "missing_required_parameter");
        }
        const std::string output =
            item.contains("output")
                ? (item["output"].is_string() ? item["output"].get<std::string>()
                                              : item["output"].dump())
                : "";
        r.prompt_tokens += CountTokens(output) + 4;
        prompt_text += "tool\x1f" + output + "\x1e";
        r.last_is_tool_result = true;
      } else {
        // function_call, reasoning, item_reference, ...: context only.
        const std::string text = item.dump();
        r.prompt_tokens += CountTokens(text);
        prompt_text += text;
        r.last_is_tool_result = false;
      }
    }
  } else {
    return Fail(error,
                "Invalid type for 'input': expected a string or an array of "
                "input items.",
                "input", "invalid_type");
  }
  r.prompt_tokens += 3;
  if (!OptionalBool(j, "stream", &r.stream, error, "'stream'")) return false;
  if (!OptionalNumber(j, "temperature", 0, 2, error, false)) return false;
  if (!OptionalNumber(j, "top_p", 0, 1, error, false)) return false;
  for (const char* key : {"temperature", "top_p"}) {
    if (j.contains(key) && j[key].is_number()) r.echo[key] = j[key];
  }
  if (j.contains("metadata") && j["metadata"].is_object()) r.echo["metadata"] = j["metadata"];
  if (j.contains("max_output_tokens") && !j["max_output_tokens"].is_null()) {
    const Json& v = j["max_output_tokens"];
    if (!v.is_number_integer() || v.get<int64_t>() < 16) {
      return Fail(error,
                  absl::StrCat("Invalid 'max_output_tokens': integer below "
                               "minimum value. Expected a value >= 16, but "
                               "got ",
                               v.dump(), " instead."),
                  "max_output_tokens", "integer_below_min_value");
    }
    r.max_tokens = v.get<int64_t>();
    r.echo["max_output_tokens"] = r.max_tokens;
  }
  if (j.contains("text") && j["text"].is_object() && j["text"].contains("format") &&
      j["text"]["format"].is_object()) {
    const Json& format = j["text"]["format"];
    const std::string type = format.contains("type") && format["type"].is_string()
                                 ? format["type"].get<std::string>()
                                 : "";
    if (type != "text" && type != "json_object" && type != "json_schema") {
      return Fail(error,
                  "Invalid value for 'text.format.type': expected one of "
                  "'text', 'json_object', 'json_schema'.",
                  "text.format.type", "invalid_value");
    }
    r.json_mode = type != "text";
    r.echo["text"] = j["text"];
  }
  bool tool_choice_none = false;
  if (j.contains("tool_choice") && !j["tool_choice"].is_null()) {
    const Json& tc = j["tool_choice"];
    if (tc.is_string() && (tc == "none" || tc == "auto" || tc == "required")) {
      tool_choice_none = tc == "none";
    } else if (tc.is_object() && tc.contains("type") && tc["type"] == "function" &&
               tc.contains("name") && tc["name"].is_string()) {
      r.forced_tool = tc["name"].get<std::string>();
    } else if (!tc.is_object()) {
      return Fail(error,
                  "Invalid value for 'tool_choice': expected 'none', 'auto', "
                  "'required' or an object.",
                  "tool_choice", "invalid_value");
    }
    r.echo["tool_choice"] = tc;
  }
  if (j.contains("tools") && !j["tools"].is_null()) {
    const Json& tools = j["tools"];
    if (!tools.is_array())
      return Fail(error, "Invalid type for 'tools': expected an array.", "tools", "invalid_type");
    for (size_t i = 0; i < tools.size(); ++i) {
      const Json& t = tools[i];
      const std::string where = absl::StrCat("tools[", i, "]");
      if (!t.is_object() || !t.contains("type") || !t["type"].is_string()) {
        return Fail(error, absl::StrCat("Missing required parameter: '", where, ".type'."),
                    absl::StrCat(where, ".type"), "missing_required_parameter");
      }
      if (t["type"] != "function") continue;  // built-in tools: accepted
      if (!t.contains("name") || !t["name"].is_string()) {
        return Fail(error, absl::StrCat("Missing required parameter: '", where, ".name'."),
                    absl::StrCat(where, ".name"), "missing_required_parameter");
      }
      if (!tool_choice_none) r.tool_names.insert(t["name"].get<std::string>());
    }
    r.prompt_tokens += CountTokens(tools.dump());
    r.echo["tools"] = tools;
  }
  r.prompt_hash = Fnv1a(prompt_text, 0x5bd1e9955bd1e995ULL);
  *out = std::move(r);
  return true;
}

// ---------------------------------------------------------- embeddings ---

bool ParseEmbeddings(std::string_view body, const ParseOptions& options, EmbeddingRequest* out,
                     RequestError* error) {
  Json j;
  if (!ParseObject(body, &j, error, false)) return false;
  EmbeddingRequest r;
  if (!ReadModel(j, options, &r.model, error, Api::kEmbeddings)) return false;
  if (!j.contains("input") || j["input"].is_null())
    return Fail(error, "Missing required parameter: 'input'.", "input",
                "missing_required_parameter");
  const Json& input = j["input"];
  auto invalid = [error] {
    return Fail(error,
                "'$.input' is invalid. Please check the API reference: "
                "https://platform.openai.com/docs/api-reference.",
                "input", "invalid_value");
  };
  auto tokens_text = [](const Json& ids, std::string* text) {
    for (const Json& id : ids) {
      if (!id.is_number_integer() || id.get<int64_t>() < 0) return false;
      if (!text->empty()) *text += " ";
      *text += std::to_string(id.get<int64_t>());
    }
    return !ids.empty();
  };
  if (input.is_string()) {
    if (input.get<std::string>().empty()) return invalid();
    r.texts.push_back(input.get<std::string>());
    r.prompt_tokens = CountTokens(r.texts.back());
  } else if (input.is_array() && !input.empty() && input.size() <= kMaxEmbeddingInputs) {
    if (input[0].is_number_integer()) {  // one token array
      std::string text;
      if (!tokens_text(input, &text)) return invalid();
      r.texts.push_back(text);
      r.prompt_tokens = static_cast<int>(input.size());
    } else {
      for (const Json& item : input) {
        if (item.is_string() && !item.get<std::string>().empty()) {
          r.texts.push_back(item.get<std::string>());
          r.prompt_tokens += CountTokens(r.texts.back());
        } else if (item.is_array()) {
          std::string text;
          if (!tokens_text(item, &text)) return invalid();
          r.texts.push_back(text);
          r.prompt_tokens += static_cast<int>(item.size());
        } else {
          return invalid();
        }
      }
    }
  } else {
    return invalid();
  }
  if (j.contains("encoding_format") && !j["encoding_format"].is_null()) {
    const Json& f = j["encoding_format"];
    if (f != "float" && f != "base64") {
      return Fail(error,
                  absl::StrCat("Invalid value for 'encoding_format': expected "
                               "'float' or 'base64', got ",
                               f.dump(), "."),
                  "encoding_format", "invalid_value");
    }
    r.base64 = f == "base64";
  }
  if (j.contains("dimensions") && !j["dimensions"].is_null()) {
    const Json& d = j["dimensions"];
    if (!d.is_number_integer() || d.get<int64_t>() < 1 || d.get<int64_t>() > kMaxEmbeddingDims) {
      return Fail(error,
                  absl::StrCat("Invalid value for 'dimensions': expected an "
                               "integer in [1, ",
                               kMaxEmbeddingDims, "], got ", d.dump(), "."),
                  "dimensions", "invalid_value");
    }
    r.dimensions = static_cast<int>(d.get<int64_t>());
  }
  *out = std::move(r);
  return true;
}

}  // namespace understudy::fake_model::api
