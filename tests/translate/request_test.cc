// Tests for TranslateRequest (translate/request.cc): each mapped field both
// ways, asserted field by field; refusals name their field; malformed
// bodies are InvalidArgument; round trips keep messages and tools.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "tests/common/test_util.h"
#include "tests/translate/translate_test_util.h"
#include "translate/translate.h"

namespace understudy::translate {
namespace {

using json = nlohmann::json;
using ::testing::Contains;
using ::testing::HasSubstr;
using testing::Json;
using ::testing::Pair;
using ::testing::StartsWith;
using ::understudy::testing::StatusIs;

class RequestTest : public ::testing::Test {
 protected:
  // ToAnthropic / ToOpenAI translate and parse the body, failing the test on error.
  json ToAnthropic(const json& openai) {
    absl::StatusOr<TranslatedRequest> r = TranslateRequest(openai.dump(), Provider::kOpenAIChat,
                                                           Provider::kAnthropicMessages, options_);
    EXPECT_OK(r);
    if (!r.ok()) return json();
    last_ = *r;
    return Json(r->body);
  }
  json ToOpenAI(const json& anthropic) {
    absl::StatusOr<TranslatedRequest> r = TranslateRequest(
        anthropic.dump(), Provider::kAnthropicMessages, Provider::kOpenAIChat, options_);
    EXPECT_OK(r);
    if (!r.ok()) return json();
    last_ = *r;
    return Json(r->body);
  }
  absl::Status RefusalToAnthropic(const json& openai) {
    return TranslateRequest(openai.dump(), Provider::kOpenAIChat, Provider::kAnthropicMessages,
                            options_)
        .status();
  }
  absl::Status RefusalToOpenAI(const json& anthropic) {
    return TranslateRequest(anthropic.dump(), Provider::kAnthropicMessages, Provider::kOpenAIChat,
                            options_)
        .status();
  }

  RequestOptions options_;
  TranslatedRequest last_;
};

// --- OpenAI → Anthropic -----------------------------------------------------

// A plain chat: model replaced, max_tokens defaulted, sampling and stop kept,
// the Anthropic path and headers set.
TEST_F(RequestTest, PlainChatToAnthropic) {
  options_.target_model = "claude-sonnet-4-5";
  options_.default_max_tokens = 1000;
  json out = ToAnthropic(Json(R"({"model":"gpt-4o","temperature":0.2,"top_p":0.9,"stop":"END",
    "messages":[{"role":"user","content":"Hi"}]})"));
  EXPECT_EQ(out["model"], "claude-sonnet-4-5");
  EXPECT_EQ(out["max_tokens"], 1000);
  EXPECT_EQ(out["temperature"], 0.2);
  EXPECT_EQ(out["top_p"], 0.9);
  EXPECT_EQ(out["stop_sequences"], json::array({"END"}));
  EXPECT_EQ(out["messages"], Json(R"([{"role":"user","content":"Hi"}])"));
  EXPECT_FALSE(out.contains("system"));
  EXPECT_FALSE(out.contains("stream"));
  EXPECT_EQ(last_.path, "/v1/messages");
  EXPECT_THAT(last_.headers, Contains(Pair("anthropic-version", "2023-06-01")));
  EXPECT_THAT(last_.headers, Contains(Pair("content-type", "application/json")));
  EXPECT_EQ(last_.client_model, "gpt-4o");
  EXPECT_FALSE(last_.stream);
}

// The client's model is kept when no target model is configured;
// max_completion_tokens wins over max_tokens; a stop array is kept.
TEST_F(RequestTest, KeepsModelAndPrefersMaxCompletionTokens) {
  json out = ToAnthropic(Json(R"({"model":"claude-x","max_tokens":10,"max_completion_tokens":20,
    "stop":["a","b"],"messages":[{"role":"user","content":"Hi"}]})"));
  EXPECT_EQ(out["model"], "claude-x");
  EXPECT_EQ(out["max_tokens"], 20);
  EXPECT_EQ(out["stop_sequences"], json::array({"a", "b"}));
}

// Streaming: the flag is passed on and include_usage is reported to the caller.
TEST_F(RequestTest, StreamingToAnthropicReportsIncludeUsage) {
  json out = ToAnthropic(Json(R"({"model":"m","stream":true,
    "stream_options":{"include_usage":true},"messages":[{"role":"user","content":"Hi"}]})"));
  EXPECT_EQ(out["stream"], true);
  EXPECT_FALSE(out.contains("stream_options"));
  EXPECT_TRUE(last_.stream);
  EXPECT_TRUE(last_.include_usage);
}

// System and developer messages at the start become the top-level system:
// one as a string, several as text blocks.
TEST_F(RequestTest, SystemMessagesBecomeTheSystemPrompt) {
  json one = ToAnthropic(Json(R"({"model":"m","messages":[
    {"role":"system","content":"Be brief."},{"role":"user","content":"Hi"}]})"));
  EXPECT_EQ(one["system"], "Be brief.");
  EXPECT_EQ(one["messages"].size(), 1u);

  json two = ToAnthropic(Json(R"({"model":"m","messages":[
    {"role":"system","content":"Be brief."},
    {"role":"developer","content":[{"type":"text","text":"Use French."}]},
    {"role":"user","content":"Hi"}]})"));
  EXPECT_EQ(two["system"], Json(R"([{"type":"text","text":"Be brief."},
                                    {"type":"text","text":"Use French."}])"));
}

// Text and image parts: a base64 data URL and an https URL.
TEST_F(RequestTest, MultiPartContentToAnthropic) {
  json out = ToAnthropic(Json(R"({"model":"m","messages":[{"role":"user","content":[
    {"type":"text","text":"What is this?"},
    {"type":"image_url","image_url":{"url":"data:image/PNG;base64,iVBORw0K","detail":"high"}},
    {"type":"image_url","image_url":{"url":"https://example.com/cat.jpg"}}]}]})"));
  EXPECT_EQ(out["messages"][0]["content"], Json(R"([
    {"type":"text","text":"What is this?"},
    {"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBORw0K"}},
    {"type":"image","source":{"type":"url","url":"https://example.com/cat.jpg"}}])"));
}

// Tools, assistant tool calls and tool results: the tool results of one turn
// are merged into one user message, and a following user message joins it.
TEST_F(RequestTest, ToolsCallsAndResultsToAnthropic) {
  json out = ToAnthropic(Json(R"({"model":"m",
    "tools":[{"type":"function","function":{"name":"get_weather","description":"Weather",
      "parameters":{"type":"object","properties":{"city":{"type":"string"}}}}},
      {"type":"function","function":{"name":"now"}}],
    "messages":[
      {"role":"user","content":"Weather in Paris and Rome?"},
      {"role":"assistant","content":"Checking.","tool_calls":[
        {"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}},
        {"id":"call_2","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Rome\"}"}}]},
      {"role":"tool","tool_call_id":"call_1","content":"18C"},
      {"role":"tool","tool_call_id":"call_2","content":[{"type":"text","text":"21C"}]},
      {"role":"user","content":"Thanks"}]})"));
  EXPECT_EQ(out["tools"], Json(R"([
    {"name":"get_weather","description":"Weather",
     "input_schema":{"type":"object","properties":{"city":{"type":"string"}}}},
    {"name":"now","input_schema":{"type":"object","properties":{}}}])"));
  EXPECT_EQ(out["messages"], Json(R"([
    {"role":"user","content":"Weather in Paris and Rome?"},
    {"role":"assistant","content":[
      {"type":"text","text":"Checking."},
      {"type":"tool_use","id":"call_1","name":"get_weather","input":{"city":"Paris"}},
      {"type":"tool_use","id":"call_2","name":"get_weather","input":{"city":"Rome"}}]},
    {"role":"user","content":[
      {"type":"tool_result","tool_use_id":"call_1","content":"18C"},
      {"type":"tool_result","tool_use_id":"call_2","content":[{"type":"text","text":"21C"}]},
      {"type":"text","text":"Thanks"}]}])"));
}

// Consecutive user messages are merged (Anthropic wants alternating roles).
TEST_F(RequestTest, MergesConsecutiveSameRoleMessages) {
  json out = ToAnthropic(Json(R"({"model":"m","messages":[
    {"role":"user","content":"a"},{"role":"user","content":[{"type":"text","text":"b"}]},
    {"role":"assistant","content":"c"},{"role":"assistant","content":"d"}]})"));
  EXPECT_EQ(out["messages"], Json(R"([
    {"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]},
    {"role":"assistant","content":[{"type":"text","text":"c"},{"type":"text","text":"d"}]}])"));
}

struct ToolChoiceCase {
  const char* openai_choice;  // JSON
  bool parallel;
  const char* anthropic_choice;  // JSON, or null
};

// tool_choice auto/none/required/specific ⇄ auto/none/any/tool, and
// parallel_tool_calls:false ⇄ disable_parallel_tool_use.
TEST_F(RequestTest, ToolChoiceBothWays) {
  const ToolChoiceCase kCases[] = {
      {R"("auto")", true, R"({"type":"auto"})"},
      {R"("none")", true, R"({"type":"none"})"},
      {R"("required")", true, R"({"type":"any"})"},
      {R"({"type":"function","function":{"name":"now"}})", true, R"({"type":"tool","name":"now"})"},
      {R"("auto")", false, R"({"type":"auto","disable_parallel_tool_use":true})"},
      {R"("required")", false, R"({"type":"any","disable_parallel_tool_use":true})"},
  };
  for (const ToolChoiceCase& c : kCases) {
    SCOPED_TRACE(c.openai_choice);
    json openai = Json(R"({"model":"m","messages":[{"role":"user","content":"x"}],
      "tools":[{"type":"function","function":{"name":"now"}}]})");
    openai["tool_choice"] = Json(c.openai_choice);
    if (!c.parallel) openai["parallel_tool_calls"] = false;
    json anthropic = ToAnthropic(openai);
    EXPECT_EQ(anthropic["tool_choice"], Json(c.anthropic_choice));
    // And back.
    json back = ToOpenAI(anthropic);
    EXPECT_EQ(back["tool_choice"], Json(c.openai_choice));
    EXPECT_EQ(back.contains("parallel_tool_calls"), !c.parallel);
  }
}

// parallel_tool_calls:false without a tool_choice still reaches Anthropic.
TEST_F(RequestTest, ParallelToolCallsFalseWithoutToolChoice) {
  json out = ToAnthropic(Json(R"({"model":"m","parallel_tool_calls":false,
    "messages":[{"role":"user","content":"x"}],
    "tools":[{"type":"function","function":{"name":"now"}}]})"));
  EXPECT_EQ(out["tool_choice"], Json(R"({"type":"auto","disable_parallel_tool_use":true})"));
}

// user (or safety_identifier) becomes metadata.user_id; defaults are accepted.
TEST_F(RequestTest, UserAndDefaultValuedFieldsToAnthropic) {
  json out = ToAnthropic(Json(R"({"model":"m","user":"u-42","n":1,"logprobs":false,
    "frequency_penalty":0,"presence_penalty":0,"response_format":{"type":"text"},"store":true,
    "seed":7,"messages":[{"role":"user","content":"x"}]})"));
  EXPECT_EQ(out["metadata"], Json(R"({"user_id":"u-42"})"));
  EXPECT_FALSE(out.contains("seed"));
  EXPECT_FALSE(out.contains("store"));
  EXPECT_FALSE(out.contains("n"));
}

struct RefusalCase {
  const char* body;
  const char* field;  // the message must start with it
};

// Requests the target cannot honour are refused with the field named.
TEST_F(RequestTest, RefusesUntranslatableOpenAIRequests) {
  const RefusalCase kCases[] = {
      {R"({"n":2})", "n: "},
      {R"({"logprobs":true})", "logprobs: "},
      {R"({"top_logprobs":3})", "top_logprobs: "},
      {R"({"frequency_penalty":0.5})", "frequency_penalty: "},
      {R"({"logit_bias":{"50256":-100}})", "logit_bias: "},
      {R"({"response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{}}}})",
       "response_format: json_schema"},
      {R"({"response_format":{"type":"json_object"}})", "response_format: json_object"},
      {R"({"temperature":1.5})", "temperature: 1.5 is above"},
      {R"({"reasoning_effort":"high"})", "reasoning_effort: "},
      {R"({"modalities":["text","audio"]})", "modalities: "},
      {R"({"audio":{"voice":"alloy","format":"wav"}})", "audio: "},
      {R"({"functions":[{"name":"f"}]})", "functions: "},
      {R"({"some_new_field":1})", "some_new_field: unknown field"},
      {R"({"tools":[{"type":"function","function":{"name":"f","strict":true}}]})",
       "tools[0].function.strict: "},
      {R"({"tools":[{"type":"custom","custom":{"name":"f"}}]})", "tools[0].type: "},
      {R"({"messages":[{"role":"user","content":[{"type":"input_audio",
          "input_audio":{"data":"AAA","format":"wav"}}]}]})",
       "messages[0].content[0].type: input_audio"},
      {R"({"messages":[{"role":"user","content":[{"type":"file","file":{"file_id":"f"}}]}]})",
       "messages[0].content[0].type: file"},
      {R"({"messages":[{"role":"user","content":[{"type":"image_url",
          "image_url":{"url":"data:image/bmp;base64,Qk0="}}]}]})",
       "messages[0].content[0].image_url.url: media type 'image/bmp'"},
      {R"({"messages":[{"role":"user","content":[{"type":"image_url",
          "image_url":{"url":"ftp://host/x.png"}}]}]})",
       "messages[0].content[0].image_url.url: "},
      {R"({"messages":[{"role":"user","content":"a"},{"role":"system","content":"b"}]})",
       "messages[1].role: a system message after"},
      {R"({"messages":[{"role":"user","name":"alice","content":"a"}]})", "messages[0].name: "},
      {R"({"messages":[{"role":"user","content":"a"},{"role":"assistant","tool_calls":[
          {"id":"c","type":"function","function":{"name":"f","arguments":"{\"a\":"}}]}]})",
       "messages[1].tool_calls[0].function.arguments: not a JSON object"},
      {R"({"messages":[{"role":"function","content":"x"}]})", "messages[0].role: deprecated"},
  };
  for (const RefusalCase& c : kCases) {
    SCOPED_TRACE(c.body);
    json body = Json(c.body);
    if (!body.contains("model")) body["model"] = "m";
    if (!body.contains("messages")) body["messages"] = Json(R"([{"role":"user","content":"x"}])");
    absl::Status s = RefusalToAnthropic(body);
    EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
    EXPECT_THAT(std::string(s.message()), StartsWith(c.field));
  }
}

// Without max_tokens and without a configured default, Anthropic cannot be asked.
TEST_F(RequestTest, RefusesMissingMaxTokensWithoutDefault) {
  options_.default_max_tokens = 0;
  EXPECT_THAT(
      RefusalToAnthropic(Json(R"({"model":"m","messages":[{"role":"user","content":"x"}]})")),
      StatusIs(absl::StatusCode::kFailedPrecondition, "max_tokens: required"));
}

// --- Anthropic → OpenAI -----------------------------------------------------

// A plain request: system prompt, max_tokens, stop, metadata, streaming with
// usage asked for, the OpenAI path and no Anthropic header.
TEST_F(RequestTest, PlainChatToOpenAI) {
  options_.target_model = "gpt-4o";
  json out = ToOpenAI(Json(R"({"model":"claude-sonnet-4-5","max_tokens":512,"system":"Be brief.",
    "temperature":0.5,"top_p":0.8,"stop_sequences":["END"],"metadata":{"user_id":"u-1"},
    "stream":true,"service_tier":"auto","thinking":{"type":"disabled"},
    "messages":[{"role":"user","content":"Hi"}]})"));
  EXPECT_EQ(out["model"], "gpt-4o");
  EXPECT_EQ(out["max_completion_tokens"], 512);
  EXPECT_FALSE(out.contains("max_tokens"));
  EXPECT_EQ(out["messages"], Json(R"([{"role":"system","content":"Be brief."},
                                      {"role":"user","content":"Hi"}])"));
  EXPECT_EQ(out["temperature"], 0.5);
  EXPECT_EQ(out["top_p"], 0.8);
  EXPECT_EQ(out["stop"], json::array({"END"}));
  EXPECT_EQ(out["user"], "u-1");
  EXPECT_EQ(out["stream"], true);
  EXPECT_EQ(out["stream_options"], Json(R"({"include_usage":true})"));
  EXPECT_EQ(last_.path, "/v1/chat/completions");
  for (const auto& h : last_.headers) EXPECT_NE(h.first, "anthropic-version");
  EXPECT_EQ(last_.client_model, "claude-sonnet-4-5");
  EXPECT_TRUE(last_.stream);
}

// System blocks, text and images (base64 and URL) become OpenAI parts.
TEST_F(RequestTest, MultiPartContentToOpenAI) {
  json out = ToOpenAI(Json(R"({"model":"m","max_tokens":5,
    "system":[{"type":"text","text":"A","cache_control":{"type":"ephemeral"}},{"type":"text","text":"B"}],
    "messages":[{"role":"user","content":[{"type":"text","text":"What?"},
      {"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBOR"}},
      {"type":"image","source":{"type":"url","url":"https://example.com/a.png"}}]}]})"));
  EXPECT_EQ(out["messages"], Json(R"([
    {"role":"system","content":[{"type":"text","text":"A"},{"type":"text","text":"B"}]},
    {"role":"user","content":[{"type":"text","text":"What?"},
      {"type":"image_url","image_url":{"url":"data:image/png;base64,iVBOR"}},
      {"type":"image_url","image_url":{"url":"https://example.com/a.png"}}]}])"));
}

// tool_use blocks become tool_calls with the input as a JSON string; a user
// turn's tool_result blocks become tool messages ahead of its text; earlier
// thinking blocks are dropped.
TEST_F(RequestTest, ToolsCallsAndResultsToOpenAI) {
  json out = ToOpenAI(Json(R"({"model":"m","max_tokens":5,
    "tools":[{"name":"get_weather","description":"Weather",
              "input_schema":{"type":"object","properties":{"city":{"type":"string"}}}}],
    "messages":[
      {"role":"user","content":"Weather?"},
      {"role":"assistant","content":[
        {"type":"thinking","thinking":"hmm","signature":"sig"},
        {"type":"text","text":"Checking."},
        {"type":"tool_use","id":"toolu_1","name":"get_weather","input":{"city":"Paris"}}]},
      {"role":"user","content":[
        {"type":"tool_result","tool_use_id":"toolu_1","content":"18C"},
        {"type":"text","text":"Thanks"}]}]})"));
  EXPECT_EQ(out["tools"], Json(R"([{"type":"function","function":{"name":"get_weather",
    "description":"Weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}])"));
  const json& m = out["messages"];
  ASSERT_EQ(m.size(), 4u);
  EXPECT_EQ(m[0], Json(R"({"role":"user","content":"Weather?"})"));
  EXPECT_EQ(m[1]["role"], "assistant");
  EXPECT_EQ(m[1]["content"], "Checking.");
  ASSERT_EQ(m[1]["tool_calls"].size(), 1u);
  EXPECT_EQ(m[1]["tool_calls"][0]["id"], "toolu_1");
  EXPECT_EQ(m[1]["tool_calls"][0]["type"], "function");
  EXPECT_EQ(m[1]["tool_calls"][0]["function"]["name"], "get_weather");
  EXPECT_EQ(Json(m[1]["tool_calls"][0]["function"]["arguments"].get<std::string>()),
            Json(R"({"city":"Paris"})"));
  EXPECT_EQ(m[2], Json(R"({"role":"tool","tool_call_id":"toolu_1","content":"18C"})"));
  EXPECT_EQ(m[3], Json(R"({"role":"user","content":[{"type":"text","text":"Thanks"}]})"));
}

// An assistant turn of tool calls only has null content.
TEST_F(RequestTest, ToolOnlyAssistantTurnHasNullContent) {
  json out = ToOpenAI(Json(R"({"model":"m","max_tokens":5,"messages":[
    {"role":"user","content":"x"},
    {"role":"assistant","content":[{"type":"tool_use","id":"t","name":"f","input":{}}]}]})"));
  EXPECT_TRUE(out["messages"][1]["content"].is_null());
  EXPECT_EQ(out["messages"][1]["tool_calls"][0]["function"]["arguments"], "{}");
}

// Anthropic features OpenAI lacks are refused with the field named.
TEST_F(RequestTest, RefusesUntranslatableAnthropicRequests) {
  const RefusalCase kCases[] = {
      {R"({"top_k":40})", "top_k: "},
      {R"({"thinking":{"type":"enabled","budget_tokens":2000}})", "thinking: "},
      {R"({"container":"c"})", "container: unknown field"},
      {R"({"mcp_servers":[]})", "mcp_servers: "},
      {R"({"stop_sequences":["a","b","c","d","e"]})", "stop_sequences: 5 sequences"},
      {R"({"tools":[{"type":"web_search_20250305","name":"web_search"}]})", "tools[0].type: "},
      {R"({"messages":[{"role":"user","content":[{"type":"document",
          "source":{"type":"base64","media_type":"application/pdf","data":"JVBE"}}]}]})",
       "messages[0].content[0].type: document"},
      {R"({"messages":[{"role":"user","content":"x"},{"role":"assistant","content":[
          {"type":"tool_use","id":"t","name":"f","input":{}}]},{"role":"user","content":[
          {"type":"tool_result","tool_use_id":"t","is_error":true,"content":"boom"}]}]})",
       "messages[2].content[0].is_error: "},
      {R"({"messages":[{"role":"user","content":"x"},{"role":"assistant","content":[
          {"type":"tool_use","id":"t","name":"f","input":{}}]},{"role":"user","content":[
          {"type":"tool_result","tool_use_id":"t","content":[{"type":"image",
          "source":{"type":"url","url":"https://x/y.png"}}]}]}]})",
       "messages[2].content[0].content[0].type: image"},
      {R"({"messages":[{"role":"user","content":[{"type":"image",
          "source":{"type":"file","file_id":"f"}}]}]})",
       "messages[0].content[0].source.type: file"},
      {R"({"metadata":{"user_id":"u","other":1}})", "metadata.other: "},
  };
  for (const RefusalCase& c : kCases) {
    SCOPED_TRACE(c.body);
    json body = Json(c.body);
    body["model"] = "m";
    body["max_tokens"] = 5;
    if (!body.contains("messages")) body["messages"] = Json(R"([{"role":"user","content":"x"}])");
    absl::Status s = RefusalToOpenAI(body);
    EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
    EXPECT_THAT(std::string(s.message()), StartsWith(c.field));
  }
}

// --- Malformed input, identity, round trips ----------------------------------

// Bodies that are not the client's API are InvalidArgument, not refusals.
TEST_F(RequestTest, MalformedBodiesAreInvalidArgument) {
  for (Provider from : {Provider::kOpenAIChat, Provider::kAnthropicMessages}) {
    const Provider to =
        from == Provider::kOpenAIChat ? Provider::kAnthropicMessages : Provider::kOpenAIChat;
    EXPECT_THAT(TranslateRequest("{\"model\":", from, to, options_),
                StatusIs(absl::StatusCode::kInvalidArgument, "request body: invalid JSON"));
    EXPECT_THAT(TranslateRequest("[1]", from, to, options_),
                StatusIs(absl::StatusCode::kInvalidArgument, "must be a JSON object"));
    EXPECT_THAT(TranslateRequest(R"({"model":"m"})", from, to, options_),
                StatusIs(absl::StatusCode::kInvalidArgument, "messages: required"));
    EXPECT_THAT(TranslateRequest(R"({"model":"m","max_tokens":5,"messages":[{"content":"x"}]})",
                                 from, to, options_),
                StatusIs(absl::StatusCode::kInvalidArgument, "messages[0].role: required"));
    EXPECT_THAT(TranslateRequest(R"({"model":"m","max_tokens":5,"stream":"yes",
                                     "messages":[{"role":"user","content":"x"}]})",
                                 from, to, options_),
                StatusIs(absl::StatusCode::kInvalidArgument, "stream: must be a boolean"));
  }
}

// A provider to itself only gets the target model.
TEST_F(RequestTest, SameProviderOnlyReplacesTheModel) {
  options_.target_model = "gpt-4.1";
  absl::StatusOr<TranslatedRequest> r = TranslateRequest(
      R"({"model":"gpt-4o","n":3,"stream":true,"stream_options":{"include_usage":true},"messages":[]})",
      Provider::kOpenAIChat, Provider::kOpenAIChat, options_);
  ASSERT_OK(r);
  EXPECT_EQ(Json(r->body), Json(R"({"model":"gpt-4.1","n":3,"stream":true,
    "stream_options":{"include_usage":true},"messages":[]})"));
  EXPECT_EQ(r->client_model, "gpt-4o");
  EXPECT_TRUE(r->stream);
  EXPECT_TRUE(r->include_usage);
}

// Parses tool call arguments so that "{\"a\": 1}" and "{\"a\":1}" compare equal.
json NormalizeOpenAIMessages(json messages) {
  for (json& m : messages) {
    if (!m.contains("tool_calls")) continue;
    for (json& call : m["tool_calls"]) {
      call["function"]["arguments"] = Json(call["function"]["arguments"].get<std::string>());
    }
  }
  return messages;
}

// OpenAI → Anthropic → OpenAI keeps the conversation and the tools.
TEST_F(RequestTest, RoundTripFromOpenAIKeepsMessagesAndTools) {
  const json original = Json(R"({"model":"gpt-4o","max_completion_tokens":300,"temperature":0.7,
    "stop":["END"],"tool_choice":"required",
    "tools":[{"type":"function","function":{"name":"get_weather","description":"Weather",
      "parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}}],
    "messages":[
      {"role":"system","content":"Be brief."},
      {"role":"user","content":[{"type":"text","text":"Weather here?"},
        {"type":"image_url","image_url":{"url":"data:image/jpeg;base64,/9j/4AAQ"}}]},
      {"role":"assistant","content":null,"tool_calls":[
        {"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\": \"Paris\"}"}}]},
      {"role":"tool","tool_call_id":"call_1","content":"18C"},
      {"role":"assistant","content":"It is 18C."},
      {"role":"user","content":"Thanks!"}]})");
  json back = ToOpenAI(ToAnthropic(original));
  EXPECT_EQ(back["model"], "gpt-4o");
  EXPECT_EQ(back["max_completion_tokens"], 300);
  EXPECT_EQ(back["temperature"], 0.7);
  EXPECT_EQ(back["stop"], original["stop"]);
  EXPECT_EQ(back["tools"], original["tools"]);
  EXPECT_EQ(back["tool_choice"], original["tool_choice"]);
  EXPECT_EQ(NormalizeOpenAIMessages(back["messages"]),
            NormalizeOpenAIMessages(original["messages"]));
}

// Anthropic → OpenAI → Anthropic keeps the conversation and the tools.
TEST_F(RequestTest, RoundTripFromAnthropicKeepsMessagesAndTools) {
  const json original = Json(R"({"model":"claude-x","max_tokens":300,"system":"Be brief.",
    "tool_choice":{"type":"tool","name":"get_weather"},
    "tools":[{"name":"get_weather","description":"Weather",
      "input_schema":{"type":"object","properties":{"city":{"type":"string"}}}}],
    "messages":[
      {"role":"user","content":[{"type":"text","text":"Weather?"},
        {"type":"image","source":{"type":"url","url":"https://example.com/a.png"}}]},
      {"role":"assistant","content":[{"type":"text","text":"Checking."},
        {"type":"tool_use","id":"toolu_1","name":"get_weather","input":{"city":"Paris"}}]},
      {"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":"18C"}]},
      {"role":"assistant","content":"It is 18C."}]})");
  json back = ToAnthropic(ToOpenAI(original));
  EXPECT_EQ(back["model"], "claude-x");
  EXPECT_EQ(back["max_tokens"], 300);
  EXPECT_EQ(back["system"], "Be brief.");
  EXPECT_EQ(back["tools"], original["tools"]);
  EXPECT_EQ(back["tool_choice"], original["tool_choice"]);
  EXPECT_EQ(back["messages"], original["messages"]);
}

}  // namespace
}  // namespace understudy::translate
