// Tests for sidecar/traffic_scope.h: which requests are model calls.
#include "sidecar/traffic_scope.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/common/test_util.h"

namespace understudy::sidecar {
namespace {

using compare::ApiKind;
using ::understudy::testing::StatusIs;

absl::StatusOr<TrafficScope> Parse(const std::string& yaml) {
  absl::StatusOr<ConfigNode> root = ConfigNode::Parse(yaml, "test.yaml");
  if (!root.ok()) return root.status();
  return ParseTrafficScope(root->Child("routes"));
}

// Without a routes section the well-known paths of every API are in scope,
// with their API; anything else is out, by path or by method.
TEST(TrafficScopeTest, DefaultScopeKnowsEveryApisWellKnownPaths) {
  TrafficScope scope;
  EXPECT_EQ(scope.Match("POST", "/v1/chat/completions").api, ApiKind::kOpenAiChat);
  EXPECT_EQ(scope.Match("POST", "/v1/responses?stream=true").api, ApiKind::kOpenAiResponses);
  EXPECT_EQ(scope.Match("POST", "/v1/messages").api, ApiKind::kAnthropicMessages);
  EXPECT_EQ(scope.Match("POST", "/v1/embeddings").api, ApiKind::kOpenAiEmbeddings);
  EXPECT_EQ(scope.Match("POST", "/openai/deployments/gpt4o-prod/chat/completions").api,
            ApiKind::kOpenAiChat);
  EXPECT_TRUE(scope.Match("POST", "/v1/chat/completions").in_scope());

  EXPECT_EQ(scope.Match("GET", "/v1/models").reason, OutOfScope::kPath);
  EXPECT_EQ(scope.Match("GET", "/healthz").reason, OutOfScope::kPath);
  EXPECT_EQ(scope.Match("POST", "/v1/files").reason, OutOfScope::kPath);
  EXPECT_EQ(scope.Match("GET", "/v1/chat/completions").reason, OutOfScope::kMethod);
  EXPECT_EQ(scope.Match("POST", "/v1/chat/completions/extra").reason, OutOfScope::kPath);
  EXPECT_EQ(OutOfScopeName(OutOfScope::kMethod), "method");
}

// `*` stays within one path segment, `**` crosses segments.
TEST(TrafficScopeTest, StarsMatchWithinOrAcrossSegments) {
  EXPECT_TRUE(PathMatches("/openai/deployments/*/chat/completions",
                          "/openai/deployments/d1/chat/completions"));
  EXPECT_FALSE(PathMatches("/openai/deployments/*/chat/completions",
                           "/openai/deployments/a/b/chat/completions"));
  EXPECT_TRUE(PathMatches("/proxy/**/chat/completions", "/proxy/a/b/c/chat/completions"));
  EXPECT_TRUE(PathMatches("/v1/*", "/v1/"));
  EXPECT_FALSE(PathMatches("/v1/chat", "/v1/chat/"));
  EXPECT_TRUE(PathMatches("/exact", "/exact"));
}

// A configured list replaces the defaults; the first matching route wins.
TEST(TrafficScopeTest, ConfiguredRoutesReplaceTheDefaults) {
  absl::StatusOr<TrafficScope> scope = Parse(R"(
routes:
  - path: /llm/**
    api: anthropic_messages
  - path: /v1/chat/completions
    api: openai_chat
    method: put
)");
  ASSERT_OK(scope);
  EXPECT_EQ(scope->Match("POST", "/llm/a/b").api, ApiKind::kAnthropicMessages);
  EXPECT_TRUE(scope->Match("PUT", "/v1/chat/completions").in_scope());
  EXPECT_EQ(scope->Match("POST", "/v1/chat/completions").reason, OutOfScope::kMethod);
  EXPECT_EQ(scope->Match("POST", "/v1/embeddings").reason, OutOfScope::kPath);
}

// Bad routes are refused with the key path and what is allowed.
TEST(TrafficScopeTest, BadRoutesNameTheKeyPath) {
  EXPECT_THAT(Parse("routes:\n  - path: /v1/x\n    api: chat\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, "routes[0].api: unknown API \"chat\""));
  EXPECT_THAT(Parse("routes:\n  - path: v1/x\n    api: openai_chat\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, "routes[0].path: must start with '/'"));
  EXPECT_THAT(Parse("routes:\n  - path: /v1/x?a=1\n    api: openai_chat\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, "routes[0].path"));
  EXPECT_THAT(Parse("routes:\n  - path: /v1/x\n    api: openai_chat\n    verb: GET\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, "routes[0].verb"));
  EXPECT_THAT(Parse("routes: []\n"), StatusIs(absl::StatusCode::kInvalidArgument, "routes"));
  EXPECT_THAT(Parse("routes: /v1\n"), StatusIs(absl::StatusCode::kInvalidArgument, "routes"));
}

}  // namespace
}  // namespace understudy::sidecar
