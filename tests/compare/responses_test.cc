// Tests for the OpenAI Responses API in compare/: answers (JSON and SSE,
// every chunking), ApiKind, parsing for a known kind, request parsing, and
// Compare of two Responses answers.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "compare/compare.h"
#include "tests/common/test_util.h"
#include "tests/compare/fixtures.h"

namespace understudy::compare {
namespace {

namespace fx = fixtures;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::understudy::testing::StatusIs;

// The Responses fixtures, each with whether its stream is well formed.
struct Fixture {
  const char* name;
  std::string_view body;
};
const std::vector<Fixture>& ResponsesFixtures() {
  static const std::vector<Fixture> kAll = {
      {"json", fx::kResponsesJson},
      {"tool_json", fx::kResponsesToolJson},
      {"refusal_json", fx::kResponsesRefusalJson},
      {"incomplete_json", fx::kResponsesIncompleteJson},
      {"failed_json", fx::kResponsesFailedJson},
      {"sse", fx::kResponsesSse},
      {"tool_sse", fx::kResponsesToolSse},
      {"refusal_sse", fx::kResponsesRefusalSse},
      {"incomplete_sse", fx::kResponsesIncompleteSse},
      {"failed_sse", fx::kResponsesFailedSse},
      {"error_event_sse", fx::kResponsesErrorEventSse},
      {"truncated_sse", fx::kResponsesTruncatedSse},
  };
  return kAll;
}

constexpr char kParisText[] =
    "Paris is the capital of France. It has about 2.1 million inhabitants \xE2\x80\x94 "
    "\xC2\xABla Ville Lumi\xC3\xA8re\xC2\xBB \xF0\x9F\x97\xBC";

class ResponsesTest : public ::testing::Test {
 protected:
  static ModelAnswer Parse(std::string_view body, int status = 0) {
    absl::StatusOr<ModelAnswer> a = ParseAnswer(body, status);
    EXPECT_OK(a);
    return a.ok() ? *a : ModelAnswer{};
  }
  static absl::StatusOr<ModelAnswer> ParseChunks(const std::vector<std::string_view>& chunks,
                                                 ApiKind kind = ApiKind::kUnknown) {
    AnswerParser p(kind);
    for (std::string_view c : chunks) p.Feed(c);
    return p.Finish();
  }
};

// ---- JSON answers ----

// A completed response: text of both output_text parts, the reasoning item
// left out, usage with cached and reasoning tokens.
TEST_F(ResponsesTest, ReadsJsonTextAndUsageAndSkipsReasoning) {
  ModelAnswer a = Parse(fx::kResponsesJson);
  EXPECT_EQ(a.format, WireFormat::kOpenAIResponsesJson);
  EXPECT_EQ(a.text, kParisText);
  EXPECT_EQ(a.finish_reason, "stop");
  EXPECT_EQ(a.model, "gpt-4.1-2025-04-14");
  EXPECT_EQ(a.usage.input_tokens, 36);
  EXPECT_EQ(a.usage.output_tokens, 87);
  EXPECT_EQ(a.usage.cached_tokens, 12);
  EXPECT_EQ(a.usage.reasoning_tokens, 64);
  EXPECT_TRUE(a.tool_calls.empty());
  EXPECT_FALSE(a.error.has_value());
  EXPECT_TRUE(a.stream_ok);
}

// function_call items become tool calls with call_id as their id.
TEST_F(ResponsesTest, ReadsJsonFunctionCallsAsToolCalls) {
  ModelAnswer a = Parse(fx::kResponsesToolJson);
  ASSERT_EQ(a.tool_calls.size(), 2u);
  EXPECT_EQ(a.tool_calls[0], (ToolCall{"call_w1", "get_weather", "{\"city\":\"Z\xC3\xBCrich\"}"}));
  EXPECT_EQ(a.tool_calls[1], (ToolCall{"call_t1", "get_time", "{\"tz\":\"Europe/Zurich\"}"}));
  EXPECT_EQ(a.finish_reason, "tool_calls");
  EXPECT_EQ(a.text, "");
}

// A refusal part is the answer's text and makes the finish content_filter.
TEST_F(ResponsesTest, ReadsJsonRefusalAsContentFilter) {
  ModelAnswer a = Parse(fx::kResponsesRefusalJson);
  EXPECT_EQ(a.text, "I'm sorry, I can't help with that.");
  EXPECT_EQ(a.finish_reason, "content_filter");
}

// Incomplete answers map their reason: max_output_tokens → length,
// content_filter → content_filter, anything else as sent.
TEST_F(ResponsesTest, MapsIncompleteReasonsToFinishReasons) {
  ModelAnswer a = Parse(fx::kResponsesIncompleteJson);
  EXPECT_EQ(a.finish_reason, "length");
  EXPECT_EQ(a.text, "Once upon a");
  EXPECT_FALSE(a.error.has_value());
  auto with_reason = [](std::string reason) {
    std::string body = fx::kResponsesIncompleteJson;
    body.replace(body.find("max_output_tokens"), 17, reason);
    return Parse(body).finish_reason;
  };
  EXPECT_EQ(with_reason("content_filter"), "content_filter");
  EXPECT_EQ(with_reason("max_tool_calls"), "max_tool_calls");
}

// A failed response carries its error code and message, and no finish reason.
TEST_F(ResponsesTest, ReadsFailedJsonResponseAsError) {
  ModelAnswer a = Parse(fx::kResponsesFailedJson);
  EXPECT_EQ(a.format, WireFormat::kOpenAIResponsesJson);
  ASSERT_TRUE(a.error.has_value());
  EXPECT_EQ(a.error->type, "server_error");
  EXPECT_EQ(a.error->message, "The model failed to generate a response.");
  EXPECT_EQ(a.finish_reason, "");
}

// An {"error": ...} body parsed as a Responses answer has the Responses format.
TEST_F(ResponsesTest, ErrorBodyTakesTheFormatOfTheKindGiven) {
  constexpr char kError[] =
      R"({"error": {"message": "Rate limit reached", "type": "requests",)"
      R"( "code": "rate_limit_exceeded"}})";
  absl::StatusOr<ModelAnswer> a = ParseAnswerFor(ApiKind::kOpenAiResponses, kError, 429);
  ASSERT_OK(a);
  EXPECT_EQ(a->format, WireFormat::kOpenAIResponsesJson);
  ASSERT_TRUE(a->error.has_value());
  EXPECT_EQ(a->error->type, "requests");
  EXPECT_EQ(Parse(kError, 429).format, WireFormat::kOpenAIJson);  // detected: Chat
}

// ---- SSE answers ----

// The text stream gives the same answer as the JSON body, but for its format.
TEST_F(ResponsesTest, ReadsSseTextEqualToTheJsonAnswer) {
  ModelAnswer sse = Parse(fx::kResponsesSse);
  EXPECT_EQ(sse.format, WireFormat::kOpenAIResponsesSse);
  EXPECT_EQ(sse.text, kParisText);
  EXPECT_EQ(sse.finish_reason, "stop");
  EXPECT_TRUE(sse.stream_ok);
  ModelAnswer json = Parse(fx::kResponsesJson);
  json.format = WireFormat::kOpenAIResponsesSse;
  EXPECT_TRUE(sse == json);
}

// Function-call arguments streamed as deltas assemble to the JSON answer's.
TEST_F(ResponsesTest, AssemblesStreamedFunctionCallArguments) {
  ModelAnswer sse = Parse(fx::kResponsesToolSse);
  EXPECT_TRUE(sse.stream_ok);
  EXPECT_EQ(sse.finish_reason, "tool_calls");
  ModelAnswer json = Parse(fx::kResponsesToolJson);
  EXPECT_EQ(sse.tool_calls, json.tool_calls);
  EXPECT_EQ(sse.usage, json.usage);
}

// Refusal deltas are the text, and the finish is content_filter.
TEST_F(ResponsesTest, ReadsStreamedRefusal) {
  ModelAnswer a = Parse(fx::kResponsesRefusalSse);
  EXPECT_EQ(a.text, "I'm sorry, I can't help with that.");
  EXPECT_EQ(a.finish_reason, "content_filter");
  EXPECT_TRUE(a.stream_ok);
}

// response.incomplete is a terminal event: the stream is whole, the finish length.
TEST_F(ResponsesTest, ReadsStreamEndingIncomplete) {
  ModelAnswer a = Parse(fx::kResponsesIncompleteSse);
  EXPECT_EQ(a.text, "Once upon a");
  EXPECT_EQ(a.finish_reason, "length");
  EXPECT_EQ(a.usage.output_tokens, 16);
  EXPECT_TRUE(a.stream_ok);
}

// response.failed carries the error; an errored stream is not ok.
TEST_F(ResponsesTest, ReadsStreamEndingFailed) {
  ModelAnswer a = Parse(fx::kResponsesFailedSse);
  ASSERT_TRUE(a.error.has_value());
  EXPECT_EQ(a.error->type, "server_error");
  EXPECT_EQ(a.model, "gpt-4.1-2025-04-14");
  EXPECT_FALSE(a.stream_ok);
}

// A response.failed event without a response object still fails the answer,
// with the event's own error when it has one.
TEST_F(ResponsesTest, ReadsFailedEventWithoutResponseObject) {
  ModelAnswer bare = Parse("data: {\"type\":\"response.failed\"}\n\n");
  ASSERT_TRUE(bare.error.has_value());
  EXPECT_EQ(bare.error->type, "response_failed");
  EXPECT_FALSE(bare.stream_ok);
  ModelAnswer own = Parse(
      "data: {\"type\":\"response.failed\",\"error\":{\"code\":\"server_error\","
      "\"message\":\"boom\"}}\n\n");
  ASSERT_TRUE(own.error.has_value());
  EXPECT_EQ(own.error->type, "server_error");
  EXPECT_EQ(own.error->message, "boom");
}

// An `error` event (code and message at the top) ends the answer in error.
TEST_F(ResponsesTest, ReadsErrorEvent) {
  ModelAnswer a = Parse(fx::kResponsesErrorEventSse);
  EXPECT_EQ(a.format, WireFormat::kOpenAIResponsesSse);
  ASSERT_TRUE(a.error.has_value());
  EXPECT_EQ(a.error->type, "rate_limit_exceeded");
  EXPECT_EQ(a.error->message, "Rate limit reached for gpt-4.1");
  EXPECT_EQ(a.text, "Hel");
  EXPECT_FALSE(a.stream_ok);
}

// A stream without a terminal event keeps its text and is marked broken.
TEST_F(ResponsesTest, MarksStreamWithoutTerminalEventBroken) {
  ModelAnswer a = Parse(fx::kResponsesTruncatedSse);
  EXPECT_EQ(a.format, WireFormat::kOpenAIResponsesSse);
  EXPECT_EQ(a.text, "Once upon a");
  EXPECT_EQ(a.finish_reason, "");
  EXPECT_FALSE(a.error.has_value());
  EXPECT_FALSE(a.stream_ok);
}

// A malformed event, or arguments for a call never announced, break the stream.
TEST_F(ResponsesTest, MarksStreamWithMalformedEventBroken) {
  std::string broken = fx::kResponsesSse;
  broken.insert(broken.find("event: response.output_text.done"),
                "event: response.output_text.delta\ndata: {\"type\":\"response.output_te\n\n");
  ModelAnswer a = Parse(broken);
  EXPECT_EQ(a.text, kParisText);
  EXPECT_FALSE(a.stream_ok);

  std::string orphan = fx::kResponsesToolSse;
  orphan.insert(orphan.find("event: response.completed"),
                "data: {\"type\":\"response.function_call_arguments.delta\",\"output_index\":9,"
                "\"delta\":\"{}\"}\n\n");
  ModelAnswer b = Parse(orphan);
  EXPECT_EQ(b.tool_calls.size(), 2u);
  EXPECT_FALSE(b.stream_ok);
}

// A stream that sends no output events takes its output from the terminal
// event (here spread over several data: lines, which SSE joins with '\n').
TEST_F(ResponsesTest, TakesOutputFromTerminalEventWhenNoDeltasCame) {
  std::string body = "data: {\"type\":\"response.completed\",\"response\":\n";
  std::string_view json = fx::kResponsesToolJson;
  for (size_t start = 0; start < json.size();) {
    const size_t end = std::min(json.find('\n', start), json.size());
    body.append("data: ").append(json.substr(start, end - start)).append("\n");
    start = end + 1;
  }
  body += "data: }\n\n";
  ModelAnswer a = Parse(body);
  EXPECT_TRUE(a.stream_ok);
  EXPECT_EQ(a.tool_calls, Parse(fx::kResponsesToolJson).tool_calls);
  EXPECT_EQ(a.finish_reason, "tool_calls");
}

// A message item whose text came only in output_item.done still counts.
TEST_F(ResponsesTest, ReadsMessageTextFromItemDoneWithoutDeltas) {
  std::string body;
  for (
      std::string_view line :
      {R"(data: {"type":"response.output_item.added","output_index":0,"item":{"type":"message","content":[]}})",
       R"(data: {"type":"response.output_item.done","output_index":0,"item":{"type":"message","content":[{"type":"output_text","text":"Hi there"}]}})",
       R"(data: {"type":"response.completed","response":{"status":"completed","output":[]}})"}) {
    body.append(line).append("\n\n");
  }
  ModelAnswer a = Parse(body);
  EXPECT_EQ(a.text, "Hi there");
  EXPECT_TRUE(a.stream_ok);
}

// Some gateways add `data: [DONE]` after the terminal event: still a whole stream.
TEST_F(ResponsesTest, IgnoresDoneSentinelAfterTerminalEvent) {
  std::string body = absl::StrCat(fx::kResponsesIncompleteSse, "data: [DONE]\n\n");
  ModelAnswer a = Parse(body);
  EXPECT_EQ(a.format, WireFormat::kOpenAIResponsesSse);
  EXPECT_TRUE(a.stream_ok);
  absl::StatusOr<ModelAnswer> known = ParseAnswerFor(ApiKind::kOpenAiResponses, body);
  ASSERT_OK(known);
  EXPECT_TRUE(known->stream_ok);
}

// Chat chunks inside a Responses stream make it a mixed, broken stream.
TEST_F(ResponsesTest, MarksStreamMixingApisBroken) {
  std::string body = absl::StrCat(
      "data: {\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":"
      "{\"content\":\"x\"}}]}\n\n",
      fx::kResponsesIncompleteSse);
  EXPECT_FALSE(Parse(body).stream_ok);
  // With the kind known the chunk is an unexpected event.
  absl::StatusOr<ModelAnswer> known = ParseAnswerFor(ApiKind::kOpenAiResponses, body);
  ASSERT_OK(known);
  EXPECT_EQ(known->text, "Once upon a");
  EXPECT_FALSE(known->stream_ok);
}

// ---- chunking ----

// Splitting any Responses body at any byte, or at two, changes nothing.
TEST_F(ResponsesTest, EveryTwoWayAndSeveralThreeWayChunkingsEqualWholeBody) {
  for (const Fixture& f : ResponsesFixtures()) {
    SCOPED_TRACE(f.name);
    const std::string_view body = f.body;
    absl::StatusOr<ModelAnswer> whole = ParseAnswer(body);
    ASSERT_OK(whole);
    for (size_t i = 0; i <= body.size(); ++i) {
      absl::StatusOr<ModelAnswer> split = ParseChunks({body.substr(0, i), body.substr(i)});
      ASSERT_OK(split);
      ASSERT_TRUE(*split == *whole) << "split at " << i;
    }
    // About 60 x 60 three-way splits per body.
    const size_t step_i = std::max<size_t>(7, body.size() / 60);
    const size_t step_j = std::max<size_t>(13, body.size() / 60 + 1);
    for (size_t i = 0; i <= body.size(); i += step_i) {
      for (size_t j = i; j <= body.size(); j += step_j) {
        absl::StatusOr<ModelAnswer> split =
            ParseChunks({body.substr(0, i), body.substr(i, j - i), body.substr(j)});
        ASSERT_OK(split);
        ASSERT_TRUE(*split == *whole) << "split at " << i << "," << j;
      }
    }
    std::vector<std::string_view> bytes;
    for (size_t i = 0; i < body.size(); ++i) bytes.push_back(body.substr(i, 1));
    absl::StatusOr<ModelAnswer> one_by_one = ParseChunks(bytes, ApiKind::kOpenAiResponses);
    ASSERT_OK(one_by_one);
    EXPECT_TRUE(*one_by_one == *whole);
  }
}

// Every prefix of a Responses stream parses or fails cleanly; a prefix that
// stops before the terminal event is marked broken.
TEST_F(ResponsesTest, EveryPrefixOfEveryStreamIsHandled) {
  for (std::string_view body :
       {std::string_view(fx::kResponsesSse), std::string_view(fx::kResponsesToolSse),
        std::string_view(fx::kResponsesRefusalSse)}) {
    const size_t terminal = body.find("event: response.completed");
    ASSERT_NE(terminal, std::string_view::npos);
    for (size_t i = 0; i < body.size(); ++i) {
      absl::StatusOr<ModelAnswer> a = ParseAnswer(body.substr(0, i));
      if (a.ok() && i < terminal) {
        EXPECT_FALSE(a->stream_ok) << body.substr(0, i);
      }
    }
  }
}

// ---- ApiKind ----

// Names round-trip, case-insensitively; other names are not kinds.
TEST_F(ResponsesTest, ApiKindNamesRoundTrip) {
  for (ApiKind kind : {ApiKind::kUnknown, ApiKind::kOpenAiChat, ApiKind::kOpenAiResponses,
                       ApiKind::kAnthropicMessages, ApiKind::kOpenAiEmbeddings}) {
    EXPECT_EQ(ParseApiKindName(ApiKindName(kind)), kind) << ApiKindName(kind);
  }
  EXPECT_EQ(ApiKindName(ApiKind::kOpenAiResponses), "openai_responses");
  EXPECT_EQ(ApiKindName(ApiKind::kOpenAiEmbeddings), "openai_embeddings");
  EXPECT_EQ(ParseApiKindName("Anthropic_Messages"), ApiKind::kAnthropicMessages);
  EXPECT_EQ(ParseApiKindName("responses"), std::nullopt);
  EXPECT_EQ(ParseApiKindName(""), std::nullopt);
}

// Paths map to their API, with prefixes, query strings and a trailing '/';
// sub-resources and other endpoints are unknown.
TEST_F(ResponsesTest, ApiKindFromPathReadsTheEndpoint) {
  EXPECT_EQ(ApiKindFromPath("/v1/chat/completions"), ApiKind::kOpenAiChat);
  EXPECT_EQ(ApiKindFromPath("/openai/deployments/gpt4o/chat/completions?api-version=2024-10-21"),
            ApiKind::kOpenAiChat);
  EXPECT_EQ(ApiKindFromPath("/v1/responses"), ApiKind::kOpenAiResponses);
  EXPECT_EQ(ApiKindFromPath("/v1/responses/"), ApiKind::kOpenAiResponses);
  EXPECT_EQ(ApiKindFromPath("/openai/v1/responses?api-version=preview"), ApiKind::kOpenAiResponses);
  EXPECT_EQ(ApiKindFromPath("/v1/messages"), ApiKind::kAnthropicMessages);
  EXPECT_EQ(ApiKindFromPath("/anthropic/v1/messages?beta=true"), ApiKind::kAnthropicMessages);
  EXPECT_EQ(ApiKindFromPath("/v1/embeddings"), ApiKind::kOpenAiEmbeddings);
  EXPECT_EQ(ApiKindFromPath("/openai/deployments/emb/embeddings?api-version=1"),
            ApiKind::kOpenAiEmbeddings);
  for (std::string_view other :
       {"", "/", "/v1/models", "/v1/responses/resp_123", "/v1/responses/resp_1/input_items",
        "/v1/messages/count_tokens", "/v1/threads/thread_1/messages", "/v1/my_responses",
        "/v1/completions"}) {
    EXPECT_EQ(ApiKindFromPath(other), ApiKind::kUnknown) << other;
  }
}

// ---- known kind ----

// Each fixture parsed for its own kind equals the detected answer.
TEST_F(ResponsesTest, KnownKindGivesTheDetectedAnswer) {
  for (const Fixture& f : ResponsesFixtures()) {
    absl::StatusOr<ModelAnswer> detected = ParseAnswer(f.body);
    absl::StatusOr<ModelAnswer> known = ParseAnswerFor(ApiKind::kOpenAiResponses, f.body);
    ASSERT_OK(known);
    EXPECT_TRUE(*known == *detected) << f.name;
  }
  for (const char* chat : {fx::kOpenAIJson, fx::kOpenAISse, fx::kOpenAIToolSse}) {
    absl::StatusOr<ModelAnswer> known = ParseAnswerFor(ApiKind::kOpenAiChat, chat);
    ASSERT_OK(known);
    EXPECT_TRUE(*known == *ParseAnswer(chat));
  }
  for (const char* anthropic : {fx::kAnthropicJson, fx::kAnthropicSse, fx::kAnthropicErrorSse}) {
    absl::StatusOr<ModelAnswer> known = ParseAnswerFor(ApiKind::kAnthropicMessages, anthropic);
    ASSERT_OK(known);
    EXPECT_TRUE(*known == *ParseAnswer(anthropic));
  }
}

// A body of another API than the one named is InvalidArgument, saying which.
TEST_F(ResponsesTest, KnownKindRejectsAnotherApisBody) {
  EXPECT_THAT(ParseAnswerFor(ApiKind::kOpenAiResponses, fx::kOpenAIJson),
              StatusIs(absl::StatusCode::kInvalidArgument, "not an OpenAI response"));
  EXPECT_THAT(ParseAnswerFor(ApiKind::kOpenAiChat, fx::kResponsesJson),
              StatusIs(absl::StatusCode::kInvalidArgument, "not an OpenAI chat completion"));
  EXPECT_THAT(ParseAnswerFor(ApiKind::kAnthropicMessages, fx::kResponsesJson),
              StatusIs(absl::StatusCode::kInvalidArgument, "not an Anthropic message"));
  EXPECT_THAT(ParseAnswerFor(ApiKind::kAnthropicMessages, fx::kResponsesSse),
              StatusIs(absl::StatusCode::kInvalidArgument, "no anthropic_messages events"));
  EXPECT_THAT(ParseAnswerFor(ApiKind::kOpenAiResponses, fx::kAnthropicSse),
              StatusIs(absl::StatusCode::kInvalidArgument, "no openai_responses events"));
  EXPECT_THAT(ParseAnswerFor(ApiKind::kOpenAiEmbeddings, fx::kResponsesJson),
              StatusIs(absl::StatusCode::kInvalidArgument, "ParseEmbeddingAnswer"));
  // Unknown keeps detecting.
  EXPECT_OK(ParseAnswerFor(ApiKind::kUnknown, fx::kResponsesJson));
}

// Malformed Responses bodies are InvalidArgument with a reason.
TEST_F(ResponsesTest, RejectsMalformedResponsesBodies) {
  EXPECT_THAT(ParseAnswer(R"({"object": "response", "output": {"type": "message"}})"),
              StatusIs(absl::StatusCode::kInvalidArgument, "\"output\" is not an array"));
  EXPECT_THAT(ParseAnswer("{\"object\": \"response\", \"output\": ["),
              StatusIs(absl::StatusCode::kInvalidArgument, "not valid JSON"));
  EXPECT_THAT(ParseAnswerFor(ApiKind::kOpenAiResponses, "event: response.created\ndata: {oops\n\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, "no openai_responses events"));
}

// ---- requests ----

// A Responses request: model, stream, JSON via text.format, tool names.
TEST_F(ResponsesTest, ParsesResponsesRequest) {
  absl::StatusOr<RequestInfo> r = ParseRequest(fx::kResponsesRequest);
  ASSERT_OK(r);
  EXPECT_EQ(r->model, "gpt-4.1");
  EXPECT_TRUE(r->stream);
  EXPECT_TRUE(r->json_expected);
  EXPECT_THAT(r->tool_names, ElementsAre("get_weather", "web_search_preview"));
  absl::StatusOr<RequestInfo> plain =
      ParseRequest(R"({"model": "o4-mini", "input": "Hi", "text": {"format": {"type": "text"}}})");
  ASSERT_OK(plain);
  EXPECT_FALSE(plain->json_expected);
  EXPECT_FALSE(plain->stream);
  absl::StatusOr<RequestInfo> json_object =
      ParseRequest(R"({"input": "Hi", "text": {"format": {"type": "json_object"}}})");
  ASSERT_OK(json_object);
  EXPECT_TRUE(json_object->json_expected);
}

// Tool names from Chat (function.name), Anthropic and legacy functions.
TEST_F(ResponsesTest, ParsesToolNamesOfEveryApi) {
  absl::StatusOr<RequestInfo> chat = ParseRequest(
      R"({"messages": [], "tools": [{"type": "function", "function": {"name": "lookup"}}]})");
  ASSERT_OK(chat);
  EXPECT_THAT(chat->tool_names, ElementsAre("lookup"));
  absl::StatusOr<RequestInfo> anthropic =
      ParseRequest(R"({"messages": [], "tools": [{"name": "get_stock", "input_schema": {}}]})");
  ASSERT_OK(anthropic);
  EXPECT_THAT(anthropic->tool_names, ElementsAre("get_stock"));
  absl::StatusOr<RequestInfo> legacy = ParseRequest(R"({"functions": [{"name": "f"}]})");
  ASSERT_OK(legacy);
  EXPECT_THAT(legacy->tool_names, ElementsAre("f"));
}

// Wrongly typed Responses fields are InvalidArgument naming the field.
TEST_F(ResponsesTest, RejectsRequestFieldsOfTheWrongType) {
  EXPECT_THAT(ParseRequest(R"({"input": 3})"),
              StatusIs(absl::StatusCode::kInvalidArgument, "\"input\""));
  EXPECT_THAT(ParseRequest(R"({"text": "json"})"),
              StatusIs(absl::StatusCode::kInvalidArgument, "\"text\""));
  EXPECT_THAT(ParseRequest(R"({"text": {"format": "json_object"}})"),
              StatusIs(absl::StatusCode::kInvalidArgument, "\"text.format\""));
  EXPECT_THAT(ParseRequest(R"({"tools": {"name": "x"}})"),
              StatusIs(absl::StatusCode::kInvalidArgument, "\"tools\""));
  EXPECT_THAT(ParseRequest(R"({"tools": [{"name": "x"}, 1]})"),
              StatusIs(absl::StatusCode::kInvalidArgument, "\"tools[1]\""));
}

// ---- Compare ----

class ResponsesCompareTest : public ResponsesTest {
 protected:
  void SetUp() override { ASSERT_OK(CompileRefusalPatterns(&options_)); }
  CompareOptions options_;
  CompareContext ctx_;
};

// A JSON answer and the same answer streamed compare as equivalent, priced
// from Responses usage (cached input at its own price).
TEST_F(ResponsesCompareTest, SameAnswerJsonAndStreamedIsEquivalentAndPriced) {
  options_.prices["gpt-4.1"] = ModelPrice{2.0, 8.0, 0.5};
  absl::StatusOr<RequestInfo> request =
      ParseRequest(R"({"model": "gpt-4.1", "input": "Tell me about Paris.", "stream": true})");
  ASSERT_OK(request);
  ctx_.request = *request;
  v1::Comparison c = Compare(Parse(fx::kResponsesJson), Parse(fx::kResponsesSse), options_, ctx_);
  EXPECT_EQ(c.verdict(), v1::VERDICT_EQUIVALENT) << c.DebugString();
  EXPECT_EQ(c.production_model(), "gpt-4.1-2025-04-14");
  // (36 - 12) * 2 + 12 * 0.5 + 87 * 8 per million.
  EXPECT_DOUBLE_EQ(c.production_cost(), (24 * 2.0 + 12 * 0.5 + 87 * 8.0) / 1e6);
  EXPECT_DOUBLE_EQ(c.candidate_cost(), c.production_cost());
}

// Streamed and JSON function calls match; changed arguments are a major diff.
TEST_F(ResponsesCompareTest, ChangedFunctionCallArgumentsAreMajor) {
  ModelAnswer production = Parse(fx::kResponsesToolJson);
  EXPECT_EQ(Compare(production, Parse(fx::kResponsesToolSse), options_, ctx_).verdict(),
            v1::VERDICT_EQUIVALENT);
  std::string changed = fx::kResponsesToolSse;
  for (size_t at = changed.find("Zurich"); at != std::string::npos; at = changed.find("Zurich")) {
    changed.replace(at, 6, "Berlin");
  }
  v1::Comparison c = Compare(production, Parse(changed), options_, ctx_);
  EXPECT_EQ(c.verdict(), v1::VERDICT_MAJOR_DIFF) << c.DebugString();
  bool found = false;
  for (const auto& f : c.findings()) found |= f.kind() == "json_changed" && f.major();
  EXPECT_TRUE(found) << c.DebugString();
}

// A candidate cut short by max_output_tokens differs majorly in its finish.
TEST_F(ResponsesCompareTest, IncompleteCandidateIsMajor) {
  v1::Comparison c =
      Compare(Parse(fx::kResponsesJson), Parse(fx::kResponsesIncompleteSse), options_, ctx_);
  EXPECT_EQ(c.verdict(), v1::VERDICT_MAJOR_DIFF);
  bool finish = false;
  for (const auto& f : c.findings()) finish |= f.kind() == "finish_reason";
  EXPECT_TRUE(finish);
}

// A candidate that refuses where production answered is a refusal finding.
TEST_F(ResponsesCompareTest, RefusingCandidateIsMajor) {
  v1::Comparison c =
      Compare(Parse(fx::kResponsesJson), Parse(fx::kResponsesRefusalSse), options_, ctx_);
  EXPECT_EQ(c.verdict(), v1::VERDICT_MAJOR_DIFF);
  bool refusal = false;
  for (const auto& f : c.findings()) refusal |= f.kind() == "refusal";
  EXPECT_TRUE(refusal) << c.DebugString();
}

// Failed and broken Responses answers are error verdicts.
TEST_F(ResponsesCompareTest, FailedOrTruncatedAnswersAreErrors) {
  ModelAnswer good = Parse(fx::kResponsesJson);
  EXPECT_EQ(Compare(good, Parse(fx::kResponsesFailedSse), options_, ctx_).verdict(),
            v1::VERDICT_CANDIDATE_ERROR);
  EXPECT_EQ(Compare(Parse(fx::kResponsesTruncatedSse), good, options_, ctx_).verdict(),
            v1::VERDICT_PRODUCTION_ERROR);
  EXPECT_EQ(
      Compare(Parse(fx::kResponsesErrorEventSse), Parse(fx::kResponsesFailedJson), options_, ctx_)
          .verdict(),
      v1::VERDICT_BOTH_ERROR);
}

// JSON requested through text.format makes JSON answers compare structurally.
TEST_F(ResponsesCompareTest, JsonRequestedThroughTextFormatIsDiffedAsJson) {
  absl::StatusOr<RequestInfo> request = ParseRequest(fx::kResponsesRequest);
  ASSERT_OK(request);
  ctx_.request = *request;
  auto answer = [](std::string_view json_text) {
    std::string escaped;
    for (char ch : json_text) {
      if (ch == '"') escaped += '\\';
      escaped += ch;
    }
    return Parse(absl::StrCat(
        R"({"object":"response","status":"completed","model":"gpt-4.1","output":[{"type":"message","content":[{"type":"output_text","text":")",
        escaped, R"("}]}]})"));
  };
  v1::Comparison same = Compare(answer(R"({"city":"Zurich","temp":21})"),
                                answer(R"({"temp":21,"city":"Zurich"})"), options_, ctx_);
  EXPECT_EQ(same.request_kind(), "json");
  EXPECT_EQ(same.verdict(), v1::VERDICT_EQUIVALENT) << same.DebugString();
  v1::Comparison changed = Compare(answer(R"({"city":"Zurich","temp":21})"),
                                   answer(R"({"city":"Zurich","temp":25})"), options_, ctx_);
  EXPECT_EQ(changed.verdict(), v1::VERDICT_MAJOR_DIFF);
  v1::Comparison not_json =
      Compare(answer(R"({"city":"Zurich"})"), answer("It is 21 degrees."), options_, ctx_);
  EXPECT_EQ(not_json.verdict(), v1::VERDICT_MAJOR_DIFF);
}

}  // namespace
}  // namespace understudy::compare
