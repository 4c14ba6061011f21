// Tests for TranslateError (translate/error.cc): each error type and status
// both ways, bodies that are not error JSON, and the status check.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "tests/common/test_util.h"
#include "tests/translate/translate_test_util.h"
#include "translate/translate.h"

namespace understudy::translate {
namespace {

using json = nlohmann::json;
using testing::Json;
using ::understudy::testing::StatusIs;

struct AnthropicCase {
  int status;
  const char* type;
  int openai_status;
  const char* openai_type;
  const char* openai_code;  // nullptr → JSON null
};

class ErrorTest : public ::testing::Test {};

// Every Anthropic error type reaches an OpenAI client with OpenAI's status,
// type and code, and the message kept.
TEST_F(ErrorTest, AnthropicErrorsToOpenAI) {
  const AnthropicCase kCases[] = {
      {400, "invalid_request_error", 400, "invalid_request_error", nullptr},
      {401, "authentication_error", 401, "invalid_request_error", "invalid_api_key"},
      {402, "billing_error", 429, "insufficient_quota", "insufficient_quota"},
      {403, "permission_error", 403, "permission_error", nullptr},
      {404, "not_found_error", 404, "invalid_request_error", nullptr},
      {413, "request_too_large", 413, "invalid_request_error", nullptr},
      {429, "rate_limit_error", 429, "requests", "rate_limit_exceeded"},
      {500, "api_error", 500, "server_error", nullptr},
      {529, "overloaded_error", 503, "server_error", nullptr},
      {504, "timeout_error", 504, "server_error", nullptr},
      {409, "some_future_error", 409, "invalid_request_error", nullptr},
  };
  for (const AnthropicCase& c : kCases) {
    SCOPED_TRACE(c.type);
    json body = {{"type", "error"},
                 {"error", {{"type", c.type}, {"message", "details here"}}},
                 {"request_id", "req_1"}};
    absl::StatusOr<TranslatedError> out =
        TranslateError(c.status, body.dump(), Provider::kAnthropicMessages, Provider::kOpenAIChat);
    ASSERT_OK(out);
    EXPECT_EQ(out->status, c.openai_status);
    json e = Json(out->body);
    EXPECT_EQ(e["error"]["message"], "details here");
    EXPECT_EQ(e["error"]["type"], c.openai_type);
    EXPECT_TRUE(e["error"]["param"].is_null());
    EXPECT_EQ(e["error"]["code"], c.openai_code ? json(c.openai_code) : json());
  }
}

struct OpenAICase {
  int status;
  const char* type;
  const char* code;
  int anthropic_status;
  const char* anthropic_type;
};

// OpenAI errors reach an Anthropic client by status (quota by its code),
// with 503 becoming Anthropic's 529 overloaded.
TEST_F(ErrorTest, OpenAIErrorsToAnthropic) {
  const OpenAICase kCases[] = {
      {400, "invalid_request_error", nullptr, 400, "invalid_request_error"},
      {422, "invalid_request_error", nullptr, 422, "invalid_request_error"},
      {401, "invalid_request_error", "invalid_api_key", 401, "authentication_error"},
      {403, "invalid_request_error", "unsupported_country_region_territory", 403,
       "permission_error"},
      {404, "invalid_request_error", "model_not_found", 404, "not_found_error"},
      {413, "invalid_request_error", nullptr, 413, "request_too_large"},
      {429, "requests", "rate_limit_exceeded", 429, "rate_limit_error"},
      {429, "insufficient_quota", "insufficient_quota", 402, "billing_error"},
      {500, "server_error", nullptr, 500, "api_error"},
      {502, "server_error", nullptr, 502, "api_error"},
      {503, "server_error", nullptr, 529, "overloaded_error"},
      {504, "server_error", nullptr, 504, "timeout_error"},
  };
  for (const OpenAICase& c : kCases) {
    SCOPED_TRACE(c.status);
    json body = {{"error",
                  {{"message", "details here"},
                   {"type", c.type},
                   {"param", nullptr},
                   {"code", c.code ? json(c.code) : json()}}}};
    absl::StatusOr<TranslatedError> out =
        TranslateError(c.status, body.dump(), Provider::kOpenAIChat, Provider::kAnthropicMessages);
    ASSERT_OK(out);
    EXPECT_EQ(out->status, c.anthropic_status);
    EXPECT_EQ(Json(out->body),
              (json{{"type", "error"},
                    {"error", {{"type", c.anthropic_type}, {"message", "details here"}}}}));
  }
}

// A proxy's HTML page or an empty body still yields a well-formed error.
TEST_F(ErrorTest, NonJsonBodiesBecomeTheMessage) {
  absl::StatusOr<TranslatedError> html = TranslateError(
      502, "  <html>Bad Gateway</html>\n", Provider::kAnthropicMessages, Provider::kOpenAIChat);
  ASSERT_OK(html);
  EXPECT_EQ(html->status, 502);
  EXPECT_EQ(Json(html->body)["error"]["message"], "<html>Bad Gateway</html>");
  EXPECT_EQ(Json(html->body)["error"]["type"], "server_error");

  absl::StatusOr<TranslatedError> empty =
      TranslateError(529, "", Provider::kAnthropicMessages, Provider::kOpenAIChat);
  ASSERT_OK(empty);
  EXPECT_EQ(empty->status, 503);
  EXPECT_EQ(Json(empty->body)["error"]["message"], "upstream answered HTTP 529");

  absl::StatusOr<TranslatedError> long_text = TranslateError(
      500, std::string(5000, 'x'), Provider::kOpenAIChat, Provider::kAnthropicMessages);
  ASSERT_OK(long_text);
  EXPECT_EQ(Json(long_text->body)["error"]["message"].get<std::string>().size(), 1024u);
}

// Some OpenAI-compatible servers send {"error": "text"}.
TEST_F(ErrorTest, ReadsAStringErrorField) {
  absl::StatusOr<TranslatedError> out = TranslateError(
      400, R"({"error":"model is required"})", Provider::kOpenAIChat, Provider::kAnthropicMessages);
  ASSERT_OK(out);
  EXPECT_EQ(Json(out->body)["error"]["message"], "model is required");
}

// Only error statuses are translated; a provider to itself is the identity.
TEST_F(ErrorTest, ChecksStatusAndPassesSameProviderThrough) {
  EXPECT_THAT(TranslateError(200, "{}", Provider::kOpenAIChat, Provider::kAnthropicMessages),
              StatusIs(absl::StatusCode::kInvalidArgument, "status: 200"));
  absl::StatusOr<TranslatedError> same =
      TranslateError(529, "raw", Provider::kAnthropicMessages, Provider::kAnthropicMessages);
  ASSERT_OK(same);
  EXPECT_EQ(same->status, 529);
  EXPECT_EQ(same->body, "raw");
}

}  // namespace
}  // namespace understudy::translate
