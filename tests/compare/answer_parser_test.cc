// Tests for compare/answer_parser.cc: every wire format, every chunking,
// malformed input.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "compare/compare.h"
#include "tests/common/test_util.h"
#include "tests/compare/fixtures.h"

namespace understudy::compare {
namespace {

namespace fx = fixtures;
using ::testing::HasSubstr;
using ::understudy::testing::StatusIs;

class AnswerParserTest : public ::testing::Test {
 protected:
  static ModelAnswer Parse(std::string_view body, int status = 0) {
    absl::StatusOr<ModelAnswer> a = ParseAnswer(body, status);
    EXPECT_OK(a);
    return a.ok() ? *a : ModelAnswer{};
  }
  static absl::StatusOr<ModelAnswer> ParseChunks(const std::vector<std::string_view>& chunks) {
    AnswerParser p;
    for (std::string_view c : chunks) p.Feed(c);
    return p.Finish();
  }
};

// A plain OpenAI completion with n=2: the index-0 choice is the answer.
TEST_F(AnswerParserTest, ReadsOpenAIJsonFirstChoiceAndUsage) {
  ModelAnswer a = Parse(fx::kOpenAIJson);
  EXPECT_EQ(a.format, WireFormat::kOpenAIJson);
  EXPECT_EQ(a.text, "The capital of France is Paris. It has about 2.1 million inhabitants.");
  EXPECT_EQ(a.finish_reason, "stop");
  EXPECT_EQ(a.model, "gpt-4o-2024-08-06");
  EXPECT_EQ(a.system_fingerprint, "fp_6b68a8204b");
  EXPECT_EQ(a.usage.input_tokens, 25);
  EXPECT_EQ(a.usage.output_tokens, 17);
  EXPECT_EQ(a.usage.cached_tokens, 10);
  EXPECT_TRUE(a.stream_ok);
  EXPECT_FALSE(a.error.has_value());
}

// A non-streamed OpenAI tool call keeps id, name and the arguments string.
TEST_F(AnswerParserTest, ReadsOpenAIJsonToolCall) {
  ModelAnswer a = Parse(fx::kOpenAIToolJson);
  ASSERT_EQ(a.tool_calls.size(), 1u);
  EXPECT_EQ(a.tool_calls[0].id, "call_abc");
  EXPECT_EQ(a.tool_calls[0].name, "get_weather");
  EXPECT_EQ(a.tool_calls[0].arguments_json, "{\"city\":\"Z\xC3\xBCrich\",\"unit\":\"celsius\"}");
  EXPECT_EQ(a.finish_reason, "tool_calls");
  EXPECT_EQ(a.text, "");
}

// An OpenAI 429 error body becomes an answer carrying the error.
TEST_F(AnswerParserTest, ReadsOpenAIErrorBody) {
  ModelAnswer a = Parse(fx::kOpenAIError, 429);
  ASSERT_TRUE(a.error.has_value());
  EXPECT_EQ(a.error->type, "requests");
  EXPECT_EQ(a.error->message, "Rate limit reached for gpt-4o");
}

// A streamed answer with non-ASCII text, CRLF lines and usage in the last chunk.
TEST_F(AnswerParserTest, ReadsOpenAISseWithUsageInLastChunk) {
  ModelAnswer a = Parse(fx::kOpenAISse);
  EXPECT_EQ(a.format, WireFormat::kOpenAISse);
  EXPECT_EQ(a.text, "Caf\xC3\xA9 in \xE6\x97\xA5\xE6\x9C\xAC costs 4.50 \xE2\x82\xAC \xF0\x9F\x98\x80");
  EXPECT_EQ(a.finish_reason, "stop");
  EXPECT_EQ(a.usage.input_tokens, 12);
  EXPECT_EQ(a.usage.output_tokens, 9);
  EXPECT_EQ(a.system_fingerprint, "fp_44709d6fcb");
  EXPECT_TRUE(a.stream_ok);
}

// Two parallel tool calls whose arguments are spread over many chunks.
TEST_F(AnswerParserTest, AssemblesStreamedOpenAIToolCallArguments) {
  ModelAnswer a = Parse(fx::kOpenAIToolSse);
  ASSERT_EQ(a.tool_calls.size(), 2u);
  EXPECT_EQ(a.tool_calls[0].id, "call_1");
  EXPECT_EQ(a.tool_calls[0].name, "get_weather");
  EXPECT_EQ(a.tool_calls[0].arguments_json, "{\"city\": \"Paris\"}");
  EXPECT_EQ(a.tool_calls[1].name, "get_time");
  EXPECT_EQ(a.tool_calls[1].arguments_json, "{\"tz\":\"Europe/Paris\"}");
  EXPECT_EQ(a.finish_reason, "tool_calls");
  EXPECT_EQ(a.usage.output_tokens, 31);
  EXPECT_TRUE(a.stream_ok);
}

// A stream cut off mid-event keeps what arrived and is marked broken.
TEST_F(AnswerParserTest, MarksTruncatedStream) {
  ModelAnswer a = Parse(fx::kOpenAITruncatedSse);
  EXPECT_FALSE(a.stream_ok);
  EXPECT_EQ(a.text, "Once upon a");
}

// An error object in the middle of an OpenAI stream.
TEST_F(AnswerParserTest, ReadsOpenAIStreamErrorEvent) {
  ModelAnswer a = Parse(fx::kOpenAIErrorSse);
  ASSERT_TRUE(a.error.has_value());
  EXPECT_EQ(a.error->type, "server_error");
  EXPECT_EQ(a.text, "Hel");
  EXPECT_FALSE(a.stream_ok);
}

// Anthropic JSON: text plus tool_use, whose input is minified in key order sent.
TEST_F(AnswerParserTest, ReadsAnthropicJsonWithToolUse) {
  ModelAnswer a = Parse(fx::kAnthropicJson);
  EXPECT_EQ(a.format, WireFormat::kAnthropicJson);
  EXPECT_EQ(a.text, "I'll look up the weather in Z\xC3\xBCrich.");
  ASSERT_EQ(a.tool_calls.size(), 1u);
  EXPECT_EQ(a.tool_calls[0].id, "toolu_01A09q90qw90lq917835lq9");
  EXPECT_EQ(a.tool_calls[0].arguments_json, "{\"unit\":\"celsius\",\"city\":\"Z\xC3\xBCrich\"}");
  EXPECT_EQ(a.finish_reason, "tool_calls");
  EXPECT_EQ(a.usage.input_tokens, 472);
  EXPECT_EQ(a.usage.output_tokens, 89);
  EXPECT_EQ(a.usage.cached_tokens, 100);
}

// Anthropic's overloaded error body.
TEST_F(AnswerParserTest, ReadsAnthropicErrorBody) {
  ModelAnswer a = Parse(fx::kAnthropicError, 529);
  ASSERT_TRUE(a.error.has_value());
  EXPECT_EQ(a.error->type, "overloaded_error");
  EXPECT_EQ(a.format, WireFormat::kAnthropicJson);
}

// The Anthropic event stream: text deltas, input_json_delta, message_delta usage.
TEST_F(AnswerParserTest, ReadsAnthropicSseWithInputJsonDelta) {
  ModelAnswer a = Parse(fx::kAnthropicSse);
  EXPECT_EQ(a.format, WireFormat::kAnthropicSse);
  EXPECT_EQ(a.text, "Je v\xC3\xA9rifie la m\xC3\xA9t\xC3\xA9o \xC3\xA0 Z\xC3\xBCrich.");
  ASSERT_EQ(a.tool_calls.size(), 1u);
  EXPECT_EQ(a.tool_calls[0].name, "get_weather");
  EXPECT_EQ(a.tool_calls[0].arguments_json,
            "{\"city\": \"Z\xC3\xBCrich\", \"unit\": \"celsius\"}");
  EXPECT_EQ(a.finish_reason, "tool_calls");
  EXPECT_EQ(a.model, "claude-3-5-haiku-20241022");
  EXPECT_EQ(a.usage.input_tokens, 410);
  EXPECT_EQ(a.usage.output_tokens, 89);
  EXPECT_TRUE(a.stream_ok);
}

// An Anthropic stream interrupted by an error event.
TEST_F(AnswerParserTest, ReadsAnthropicErrorEvent) {
  ModelAnswer a = Parse(fx::kAnthropicErrorSse);
  ASSERT_TRUE(a.error.has_value());
  EXPECT_EQ(a.error->type, "overloaded_error");
  EXPECT_EQ(a.text, "Sure");
  EXPECT_FALSE(a.stream_ok);
}

// Splitting any fixture at any byte (inside UTF-8, strings, `data:`) changes nothing.
TEST_F(AnswerParserTest, EveryTwoAndThreeWayChunkingEqualsWholeBody) {
  for (std::string_view body :
       {std::string_view(fx::kOpenAIJson), std::string_view(fx::kOpenAISse),
        std::string_view(fx::kOpenAIToolSse), std::string_view(fx::kOpenAITruncatedSse),
        std::string_view(fx::kOpenAIErrorSse), std::string_view(fx::kAnthropicJson),
        std::string_view(fx::kAnthropicSse), std::string_view(fx::kAnthropicErrorSse)}) {
    absl::StatusOr<ModelAnswer> whole = ParseAnswer(body);
    ASSERT_OK(whole);
    for (size_t i = 0; i <= body.size(); ++i) {
      absl::StatusOr<ModelAnswer> split = ParseChunks({body.substr(0, i), body.substr(i)});
      ASSERT_OK(split);
      ASSERT_TRUE(*split == *whole) << "split at " << i << " of\n" << body;
    }
    for (size_t i = 0; i <= body.size(); i += 5) {
      for (size_t j = i; j <= body.size(); j += 11) {
        absl::StatusOr<ModelAnswer> split =
            ParseChunks({body.substr(0, i), body.substr(i, j - i), body.substr(j)});
        ASSERT_OK(split);
        ASSERT_TRUE(*split == *whole) << "split at " << i << "," << j;
      }
    }
    std::vector<std::string_view> bytes;
    for (size_t i = 0; i < body.size(); ++i) bytes.push_back(body.substr(i, 1));
    absl::StatusOr<ModelAnswer> one_by_one = ParseChunks(bytes);
    ASSERT_OK(one_by_one);
    EXPECT_TRUE(*one_by_one == *whole);
  }
}

// A byte-order mark split across chunks is still skipped (found by
// fuzz/answer_parser_fuzzer: the first byte alone used to read as garbage).
TEST_F(AnswerParserTest, ByteOrderMarkSplitAcrossChunksIsSkipped) {
  const std::string body = absl::StrCat("\t\xEF\xBB\xBF", fx::kOpenAIJson);
  absl::StatusOr<ModelAnswer> whole = ParseAnswer(body);
  ASSERT_OK(whole);
  EXPECT_EQ(whole->format, WireFormat::kOpenAIJson);
  for (size_t i = 1; i <= 4; ++i) {
    std::string_view v(body);
    absl::StatusOr<ModelAnswer> split = ParseChunks({v.substr(0, i), v.substr(i, 1), v.substr(i + 1)});
    ASSERT_OK(split);
    EXPECT_TRUE(*split == *whole) << "split at " << i;
  }
}

// Garbage, empty and half-written bodies give InvalidArgument, not a crash.
TEST_F(AnswerParserTest, RejectsMalformedBodies) {
  EXPECT_THAT(ParseAnswer(""), StatusIs(absl::StatusCode::kInvalidArgument, "empty"));
  EXPECT_THAT(ParseAnswer("Internal Server Error"),
              StatusIs(absl::StatusCode::kInvalidArgument, "neither JSON nor SSE"));
  EXPECT_THAT(ParseAnswer("{\"choices\": [{\"message\": "),
              StatusIs(absl::StatusCode::kInvalidArgument, "not valid JSON"));
  EXPECT_THAT(ParseAnswer("{\"hello\": 1}"),
              StatusIs(absl::StatusCode::kInvalidArgument, "neither an OpenAI"));
  EXPECT_THAT(ParseAnswer("data: {broken\n\ndata: also broken\n\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, "no OpenAI or Anthropic events"));
  EXPECT_THAT(ParseAnswer(std::string("\x00\xff\xfe{", 4)),
              StatusIs(absl::StatusCode::kInvalidArgument, ""));
}

// Every prefix of every fixture parses to an answer or an error, never a crash.
TEST_F(AnswerParserTest, EveryPrefixOfEveryFixtureIsHandled) {
  int ok = 0;
  for (std::string_view body :
       {std::string_view(fx::kOpenAIJson), std::string_view(fx::kOpenAISse),
        std::string_view(fx::kOpenAIToolSse), std::string_view(fx::kAnthropicJson),
        std::string_view(fx::kAnthropicSse)}) {
    for (size_t i = 0; i < body.size(); ++i) {
      absl::StatusOr<ModelAnswer> a = ParseAnswer(body.substr(0, i));
      if (a.ok()) {
        ++ok;
        // An SSE prefix that stops before the terminator is marked broken.
        if ((a->format == WireFormat::kOpenAISse || a->format == WireFormat::kAnthropicSse) &&
            i + 20 < body.size()) {
          EXPECT_FALSE(a->stream_ok) << body.substr(0, i);
        }
      }
    }
  }
  EXPECT_GT(ok, 0);
}

// With an HTTP error status an unparseable body is an error answer.
TEST_F(AnswerParserTest, TurnsUnparseableErrorStatusBodyIntoErrorAnswer) {
  ModelAnswer a = Parse("<html>502 Bad Gateway</html>", 502);
  ASSERT_TRUE(a.error.has_value());
  EXPECT_EQ(a.error->type, "http_502");
}

// The request side: model, stream flag and JSON mode.
TEST_F(AnswerParserTest, ParsesRequestModelStreamAndJsonMode) {
  absl::StatusOr<RequestInfo> r = ParseRequest(fx::kOpenAIJsonModeRequest);
  ASSERT_OK(r);
  EXPECT_EQ(r->model, "gpt-4o");
  EXPECT_TRUE(r->stream);
  EXPECT_TRUE(r->json_expected);
  absl::StatusOr<RequestInfo> a = ParseRequest(fx::kAnthropicRequest);
  ASSERT_OK(a);
  EXPECT_EQ(a->model, "claude-3-5-sonnet-20241022");
  EXPECT_FALSE(a->stream);
  EXPECT_FALSE(a->json_expected);
  EXPECT_THAT(ParseRequest("[1,2]"), StatusIs(absl::StatusCode::kInvalidArgument, "object"));
  EXPECT_THAT(ParseRequest("{\"stream\": \"yes\"}"),
              StatusIs(absl::StatusCode::kInvalidArgument, "stream"));
  EXPECT_THAT(ParseRequest("nope"), StatusIs(absl::StatusCode::kInvalidArgument, "JSON"));
}

// Regression (fuzz/answer_parser_fuzzer): a field that should be an array
// but is not — a Responses stream's response.output, Chat's choices, an
// Anthropic content — reads as empty instead of iterating a document-less
// array (a null dereference that killed the worker).
TEST_F(AnswerParserTest, NonArrayWhereAnArrayBelongsReadsAsEmpty) {
  absl::StatusOr<ModelAnswer> responses = ParseAnswerFor(
      ApiKind::kOpenAiResponses,
      "event: response.completed\ndata: {\"type\":\"response.completed\",\"response\":"
      "{\"id\":\"r1\",\"status\":\"completed\",\"output\":7}}\n\n");
  if (responses.ok()) EXPECT_TRUE(responses->text.empty());
  absl::StatusOr<ModelAnswer> whole = ParseAnswerFor(
      ApiKind::kOpenAiResponses, R"({"object":"response","status":"completed","output":{"a":1}})");
  if (whole.ok()) EXPECT_TRUE(whole->text.empty());
  absl::StatusOr<ModelAnswer> chat = ParseAnswer(R"({"object":"chat.completion","choices":"x"})");
  if (chat.ok()) EXPECT_TRUE(chat->text.empty());
  absl::StatusOr<ModelAnswer> anthropic =
      ParseAnswer(R"({"type":"message","role":"assistant","content":3,"stop_reason":"end_turn"})");
  if (anthropic.ok()) EXPECT_TRUE(anthropic->text.empty());
}

}  // namespace
}  // namespace understudy::compare
