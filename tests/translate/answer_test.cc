// Tests for TranslateAnswer (translate/answer.cc): content, tool calls,
// finish reasons and usage both ways, field by field; answers the client's
// API cannot carry are refused.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "tests/common/test_util.h"
#include "tests/translate/translate_test_util.h"
#include "translate/translate.h"

namespace understudy::translate {
namespace {

using json = nlohmann::json;
using testing::Json;
using ::understudy::testing::StatusIs;

constexpr char kAnthropicText[] = R"({
  "id":"msg_01","type":"message","role":"assistant","model":"claude-sonnet-4-5",
  "content":[{"type":"text","text":"Paris is the capital"},{"type":"text","text":" of France."}],
  "stop_reason":"end_turn","stop_sequence":null,
  "usage":{"input_tokens":20,"output_tokens":8,"cache_creation_input_tokens":5,
           "cache_read_input_tokens":100}})";

constexpr char kAnthropicTool[] = R"({
  "id":"msg_02","type":"message","role":"assistant","model":"claude-sonnet-4-5",
  "content":[{"type":"thinking","thinking":"...","signature":"s"},
             {"type":"tool_use","id":"toolu_1","name":"get_weather","input":{"city":"Zürich"}},
             {"type":"tool_use","id":"toolu_2","name":"now","input":{}}],
  "stop_reason":"tool_use","stop_sequence":null,"usage":{"input_tokens":50,"output_tokens":30}})";

constexpr char kOpenAIText[] = R"({
  "id":"chatcmpl-1","object":"chat.completion","created":1733000000,"model":"gpt-4o",
  "choices":[{"index":0,"message":{"role":"assistant","content":"Paris.","refusal":null},
              "logprobs":null,"finish_reason":"length"}],
  "usage":{"prompt_tokens":125,"completion_tokens":8,"total_tokens":133,
           "prompt_tokens_details":{"cached_tokens":100}}})";

constexpr char kOpenAITool[] = R"({
  "id":"chatcmpl-2","object":"chat.completion","created":1,"model":"gpt-4o",
  "choices":[{"index":0,"finish_reason":"tool_calls","message":{"role":"assistant",
    "content":"Let me check.","tool_calls":[
      {"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}},
      {"id":"call_2","type":"function","function":{"name":"now","arguments":""}}]}}],
  "usage":{"prompt_tokens":80,"completion_tokens":20,"total_tokens":100}})";

class AnswerTest : public ::testing::Test {
 protected:
  json ToOpenAI(std::string_view anthropic) {
    absl::StatusOr<std::string> out =
        TranslateAnswer(anthropic, Provider::kAnthropicMessages, Provider::kOpenAIChat, options_);
    EXPECT_OK(out);
    return out.ok() ? Json(*out) : json();
  }
  json ToAnthropic(std::string_view openai) {
    absl::StatusOr<std::string> out =
        TranslateAnswer(openai, Provider::kOpenAIChat, Provider::kAnthropicMessages, options_);
    EXPECT_OK(out);
    return out.ok() ? Json(*out) : json();
  }

  AnswerOptions options_;
};

// Text blocks join into one content string; usage counts cache tokens as
// prompt tokens; the client's model and the given time are reported.
TEST_F(AnswerTest, AnthropicTextToOpenAI) {
  options_.client_model = "gpt-4o";
  options_.created_unix_seconds = 1733000000;
  json out = ToOpenAI(kAnthropicText);
  EXPECT_EQ(out["id"], "msg_01");
  EXPECT_EQ(out["object"], "chat.completion");
  EXPECT_EQ(out["created"], 1733000000);
  EXPECT_EQ(out["model"], "gpt-4o");
  ASSERT_EQ(out["choices"].size(), 1u);
  const json& choice = out["choices"][0];
  EXPECT_EQ(choice["index"], 0);
  EXPECT_EQ(choice["finish_reason"], "stop");
  EXPECT_EQ(choice["message"]["role"], "assistant");
  EXPECT_EQ(choice["message"]["content"], "Paris is the capital of France.");
  EXPECT_FALSE(choice["message"].contains("tool_calls"));
  EXPECT_EQ(out["usage"], Json(R"({"prompt_tokens":125,"completion_tokens":8,"total_tokens":133,
                                   "prompt_tokens_details":{"cached_tokens":100}})"));
}

// tool_use blocks become tool_calls (input as a JSON string); content is
// null; thinking is not shown.
TEST_F(AnswerTest, AnthropicToolUseToOpenAI) {
  json out = ToOpenAI(kAnthropicTool);
  EXPECT_EQ(out["model"], "claude-sonnet-4-5");
  const json& message = out["choices"][0]["message"];
  EXPECT_TRUE(message["content"].is_null());
  ASSERT_EQ(message["tool_calls"].size(), 2u);
  EXPECT_EQ(message["tool_calls"][0]["id"], "toolu_1");
  EXPECT_EQ(message["tool_calls"][0]["type"], "function");
  EXPECT_EQ(message["tool_calls"][0]["function"]["name"], "get_weather");
  EXPECT_EQ(Json(message["tool_calls"][0]["function"]["arguments"].get<std::string>()),
            Json(R"({"city":"Zürich"})"));
  EXPECT_EQ(message["tool_calls"][1]["function"]["arguments"], "{}");
  EXPECT_EQ(out["choices"][0]["finish_reason"], "tool_calls");
  EXPECT_EQ(out["usage"]["total_tokens"], 80);
}

// Text and tool calls together: content is the text, plus the calls.
TEST_F(AnswerTest, OpenAIToolCallsWithTextToAnthropic) {
  json out = ToAnthropic(kOpenAITool);
  EXPECT_EQ(out["content"], Json(R"([
    {"type":"text","text":"Let me check."},
    {"type":"tool_use","id":"call_1","name":"get_weather","input":{"city":"Paris"}},
    {"type":"tool_use","id":"call_2","name":"now","input":{}}])"));
  EXPECT_EQ(out["stop_reason"], "tool_use");
  EXPECT_EQ(out["usage"], Json(R"({"input_tokens":80,"output_tokens":20})"));
}

// An OpenAI answer: Anthropic shape; cached tokens leave input_tokens.
TEST_F(AnswerTest, OpenAITextToAnthropic) {
  options_.client_model = "claude-sonnet-4-5";
  json out = ToAnthropic(kOpenAIText);
  EXPECT_EQ(out["id"], "chatcmpl-1");
  EXPECT_EQ(out["type"], "message");
  EXPECT_EQ(out["role"], "assistant");
  EXPECT_EQ(out["model"], "claude-sonnet-4-5");
  EXPECT_EQ(out["content"], Json(R"([{"type":"text","text":"Paris."}])"));
  EXPECT_EQ(out["stop_reason"], "max_tokens");
  EXPECT_TRUE(out["stop_sequence"].is_null());
  EXPECT_EQ(out["usage"], Json(R"({"input_tokens":25,"output_tokens":8,
                                   "cache_read_input_tokens":100})"));
}

// Usage from an upstream is whatever it sends: huge, negative, fractional or
// float counts are clamped into [0, 2^50] or read as 0, never cast out of
// range or summed past int64 (translate_fuzzer found a 5e121 float).
TEST_F(AnswerTest, OutlandishTokenCountsAreClampedNotOverflowed) {
  constexpr int64_t kMax = int64_t{1} << 50;
  json openai = Json(kOpenAIText);
  openai["usage"] = Json(R"({"prompt_tokens":5.33333e121,"completion_tokens":-7,
                             "prompt_tokens_details":{"cached_tokens":18446744073709551615}})");
  json out = ToAnthropic(openai.dump());
  EXPECT_EQ(out["usage"], Json(absl::StrCat(R"({"input_tokens":0,"output_tokens":0,)",
                                            R"("cache_read_input_tokens":)", kMax, "}")));
  openai["usage"] = Json(R"({"prompt_tokens":1e300,"completion_tokens":12.5,
                             "prompt_tokens_details":{"cached_tokens":3.0}})");
  out = ToAnthropic(openai.dump());
  EXPECT_EQ(out["usage"], Json(absl::StrCat(R"({"input_tokens":)", kMax - 3,
                                            R"(,"output_tokens":0,"cache_read_input_tokens":3})")));

  json anthropic = Json(kAnthropicText);
  anthropic["usage"] = Json(R"({"input_tokens":9223372036854775807,
                                "cache_creation_input_tokens":9223372036854775807,
                                "cache_read_input_tokens":9223372036854775807,
                                "output_tokens":9223372036854775807})");
  out = ToOpenAI(anthropic.dump());
  EXPECT_EQ(out["usage"]["prompt_tokens"], 3 * kMax);
  EXPECT_EQ(out["usage"]["completion_tokens"], kMax);
  EXPECT_EQ(out["usage"]["total_tokens"], 4 * kMax);
}

// Every stop_reason with an OpenAI equivalent maps; pause_turn is refused.
TEST_F(AnswerTest, StopReasonsToFinishReasons) {
  const std::pair<const char*, const char*> kCases[] = {
      {"end_turn", "stop"},       {"stop_sequence", "stop"},
      {"max_tokens", "length"},   {"model_context_window_exceeded", "length"},
      {"tool_use", "tool_calls"}, {"refusal", "content_filter"}};
  for (const auto& [stop, finish] : kCases) {
    json in = Json(kAnthropicText);
    in["stop_reason"] = stop;
    EXPECT_EQ(ToOpenAI(in.dump())["choices"][0]["finish_reason"], finish) << stop;
  }
  json in = Json(kAnthropicText);
  in["stop_reason"] = "pause_turn";
  EXPECT_THAT(TranslateAnswer(in.dump(), Provider::kAnthropicMessages, Provider::kOpenAIChat, {}),
              StatusIs(absl::StatusCode::kFailedPrecondition, "stop_reason: pause_turn"));
}

// Every finish_reason maps back; a refusal is text with stop_reason refusal.
TEST_F(AnswerTest, FinishReasonsToStopReasons) {
  const std::pair<const char*, const char*> kCases[] = {{"stop", "end_turn"},
                                                        {"length", "max_tokens"},
                                                        {"tool_calls", "tool_use"},
                                                        {"content_filter", "refusal"}};
  for (const auto& [finish, stop] : kCases) {
    json in = Json(kOpenAIText);
    in["choices"][0]["finish_reason"] = finish;
    EXPECT_EQ(ToAnthropic(in.dump())["stop_reason"], stop) << finish;
  }
  json refusal = Json(kOpenAIText);
  refusal["choices"][0]["message"] = Json(R"({"role":"assistant","content":null,
                                              "refusal":"I can't help with that."})");
  refusal["choices"][0]["finish_reason"] = "stop";
  json out = ToAnthropic(refusal.dump());
  EXPECT_EQ(out["stop_reason"], "refusal");
  EXPECT_EQ(out["content"], Json(R"([{"type":"text","text":"I can't help with that."}])"));
}

// Answers the client's API cannot hold are refused; non-answers are invalid.
TEST_F(AnswerTest, RefusesOrRejectsWhatCannotBeCarried) {
  json two = Json(kOpenAIText);
  two["choices"].push_back(two["choices"][0]);
  EXPECT_THAT(TranslateAnswer(two.dump(), Provider::kOpenAIChat, Provider::kAnthropicMessages, {}),
              StatusIs(absl::StatusCode::kFailedPrecondition, "choices: 2 choices"));

  json bad_args = Json(kOpenAITool);
  bad_args["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"] = "{\"city\":";
  EXPECT_THAT(
      TranslateAnswer(bad_args.dump(), Provider::kOpenAIChat, Provider::kAnthropicMessages, {}),
      StatusIs(absl::StatusCode::kFailedPrecondition,
               "choices[0].message.tool_calls[0].function.arguments: not a JSON object"));

  json server_tool = Json(kAnthropicText);
  server_tool["content"].push_back(Json(R"({"type":"server_tool_use","id":"s","name":"web_search",
                                            "input":{}})"));
  EXPECT_THAT(
      TranslateAnswer(server_tool.dump(), Provider::kAnthropicMessages, Provider::kOpenAIChat, {}),
      StatusIs(absl::StatusCode::kFailedPrecondition, "content[2].type: server_tool_use"));

  EXPECT_THAT(TranslateAnswer(R"({"type":"error","error":{"type":"api_error","message":"x"}})",
                              Provider::kAnthropicMessages, Provider::kOpenAIChat, {}),
              StatusIs(absl::StatusCode::kInvalidArgument, "TranslateError"));
  EXPECT_THAT(TranslateAnswer("not json", Provider::kOpenAIChat, Provider::kAnthropicMessages, {}),
              StatusIs(absl::StatusCode::kInvalidArgument, "answer body: invalid JSON"));
  EXPECT_THAT(TranslateAnswer(R"({"object":"chat.completion","choices":[]})", Provider::kOpenAIChat,
                              Provider::kAnthropicMessages, {}),
              StatusIs(absl::StatusCode::kInvalidArgument, "choices: required"));
}

// Anthropic → OpenAI → Anthropic keeps content, stop reason and usage.
TEST_F(AnswerTest, RoundTripKeepsContentStopAndUsage) {
  json original = Json(R"({"id":"msg_3","type":"message","role":"assistant","model":"claude-x",
    "content":[{"type":"text","text":"Checking."},
               {"type":"tool_use","id":"toolu_9","name":"f","input":{"a":[1,2]}}],
    "stop_reason":"tool_use","stop_sequence":null,
    "usage":{"input_tokens":10,"output_tokens":4,"cache_read_input_tokens":3}})");
  json back = ToAnthropic(ToOpenAI(original.dump()).dump());
  EXPECT_EQ(back, original);
}

// A provider to itself is the identity.
TEST_F(AnswerTest, SameProviderIsTheIdentity) {
  EXPECT_EQ(*TranslateAnswer(kOpenAIText, Provider::kOpenAIChat, Provider::kOpenAIChat, {}),
            kOpenAIText);
}

}  // namespace
}  // namespace understudy::translate
