// Sidecar config: typed values from YAML, and errors that name the key path.
#include "sidecar/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "tests/common/test_util.h"

namespace understudy::sidecar {
namespace {

using ::understudy::testing::StatusIs;

absl::StatusOr<SidecarConfig> Parse(const std::string& yaml) {
  auto root = ConfigNode::Parse(yaml, "test.yaml");
  if (!root.ok()) return root.status();
  return ParseSidecarConfig(*root);
}

// A full document lands in the typed structs.
TEST(SidecarConfigTest, ParsesAFullDocument) {
  auto c = Parse(R"(
extproc:
  listen: 127.0.0.1:0
  unix_socket: /tmp/us.sock
  max_receive_message_bytes: 8388608
  max_concurrent_streams: 5000
  drain_timeout: 3s
  response_body_mode: full_duplex_streamed
routing: {sticky_header: X-User-Id}
feedback: {path: /fb}
rollout: {stages: [0, 10, 100]}
upstreams: {production: {url: "http://127.0.0.1:1"}, candidate: {url: "http://127.0.0.1:2"}}
shadow: {sample_rate: 0.5}
storage: {path: /tmp/x}
capture: {max_body_bytes: 4096, queue_capacity: 10, secret_headers: [X-Tenant-Key]}
)");
  ASSERT_OK(c);
  EXPECT_EQ(c->extproc.listen, "127.0.0.1:0");
  EXPECT_EQ(c->extproc.unix_socket, "/tmp/us.sock");
  EXPECT_EQ(c->extproc.max_receive_message_bytes, 8388608);
  EXPECT_EQ(c->drain_timeout, absl::Seconds(3));
  EXPECT_EQ(c->session.feedback_path, "/fb");
  EXPECT_EQ(rollout::PlanFingerprint(c->rollout), "0,10,100");
  EXPECT_EQ(c->storage.path, "/tmp/x");
  EXPECT_EQ(c->session.sticky_header, "x-user-id");
  EXPECT_EQ(c->session.max_body_bytes, 4096);
  EXPECT_THAT(c->session.secret_headers, ::testing::ElementsAre("x-tenant-key"));
  EXPECT_EQ(c->session.response_body_mode,
            envoy::extensions::filters::http::ext_proc::v3::ProcessingMode::FULL_DUPLEX_STREAMED);
}

// An empty file is a valid config with defaults.
TEST(SidecarConfigTest, EmptyDocumentGivesDefaults) {
  auto c = Parse("");
  ASSERT_OK(c);
  EXPECT_EQ(c->extproc.listen, "0.0.0.0:50051");
  EXPECT_EQ(c->admin.listen, "127.0.0.1:9901");
  EXPECT_EQ(c->session.feedback_path, "/understudy/feedback");
  EXPECT_EQ(c->feedback.max_per_client_per_minute, 60);
  EXPECT_EQ(c->admin.token, "");  // no token source: no auth
}

// The per-client feedback bound is read and checked; 0 turns it off.
TEST(SidecarConfigTest, FeedbackPerClientLimit) {
  auto c = Parse("feedback: {max_per_client_per_minute: 5}");
  ASSERT_OK(c);
  EXPECT_EQ(c->feedback.max_per_client_per_minute, 5);
  c = Parse("feedback: {max_per_client_per_minute: 0}");
  ASSERT_OK(c);
  EXPECT_EQ(c->feedback.max_per_client_per_minute, 0);
  EXPECT_THAT(Parse("feedback: {max_per_client_per_minute: -1}"),
              StatusIs(absl::StatusCode::kInvalidArgument, "feedback.max_per_client_per_minute"));
}

// ExpectFeedbackKeyErrors checks the errors of feedback.<name>_env|_file:
// a key shorter than 32 bytes (named, never shown), an unset variable and
// an unreadable file. `beside` is YAML put before the key in `feedback:`.
void ExpectFeedbackKeyErrors(const std::string& name, const std::string& beside) {
  SCOPED_TRACE(name);
  const std::string var = "UNDERSTUDY_TEST_FEEDBACK_" + name + "_" + std::to_string(::getpid());
  const std::string env_yaml = "feedback: {" + beside + name + "_env: " + var + "}";
  ::setenv(var.c_str(), "short-secret-key", 1);
  absl::StatusOr<SidecarConfig> short_key = Parse(env_yaml);
  EXPECT_THAT(short_key, StatusIs(absl::StatusCode::kInvalidArgument,
                                  "feedback." + name + "_env: the key from env " + var +
                                      " is shorter than 32 bytes"));
  EXPECT_THAT(std::string(short_key.status().message()),
              ::testing::Not(::testing::HasSubstr("short-secret")));
  ::unsetenv(var.c_str());
  EXPECT_THAT(Parse(env_yaml), StatusIs(absl::StatusCode::kInvalidArgument,
                                        "feedback." + name + "_env: $" + var +
                                            " is unset or empty"));
  EXPECT_THAT(Parse("feedback: {" + beside + name + "_file: /nonexistent/feedback-key}"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "feedback." + name + "_file: cannot read"));
}

// The feedback signing key comes from a variable or a file, must be long
// enough, and its errors name the key and never show it.
TEST(SidecarConfigTest, FeedbackSigningKey) {
  const std::string var = "UNDERSTUDY_TEST_FEEDBACK_KEY_" + std::to_string(::getpid());
  ::setenv(var.c_str(), "0123456789abcdef0123456789abcdef", 1);
  auto c = Parse("feedback: {signing_key_env: " + var + ", token_ttl: 2h}");
  ASSERT_OK(c);
  EXPECT_EQ(c->feedback.signing_key, "0123456789abcdef0123456789abcdef");
  EXPECT_EQ(c->feedback.token_ttl, absl::Hours(2));
  EXPECT_EQ(Parse("{}")->feedback.signing_key, "");
  EXPECT_EQ(Parse("{}")->feedback.token_ttl, absl::Hours(24));
  ExpectFeedbackKeyErrors("signing_key", "");
  EXPECT_THAT(Parse("feedback: {token_ttl: 0s}"),
              StatusIs(absl::StatusCode::kInvalidArgument, "feedback.token_ttl"));
  EXPECT_THAT(Parse("feedback: {path: '', signing_key_env: " + var + "}"),
              StatusIs(absl::StatusCode::kInvalidArgument, "feedback.path is empty"));
  ::unsetenv(var.c_str());
}

// The verify key (for rotation) is read and checked like the signing key,
// and means nothing without one.
TEST(SidecarConfigTest, FeedbackVerifyKey) {
  const std::string sign = "UNDERSTUDY_TEST_FEEDBACK_SIGN_" + std::to_string(::getpid());
  const std::string verify = "UNDERSTUDY_TEST_FEEDBACK_VERIFY_" + std::to_string(::getpid());
  ::setenv(sign.c_str(), "0123456789abcdef0123456789abcdef", 1);
  ::setenv(verify.c_str(), "fedcba9876543210fedcba9876543210", 1);
  auto c = Parse("feedback: {signing_key_env: " + sign + ", verify_key_env: " + verify + "}");
  ASSERT_OK(c);
  EXPECT_EQ(c->feedback.signing_key, "0123456789abcdef0123456789abcdef");
  EXPECT_EQ(c->feedback.verify_key, "fedcba9876543210fedcba9876543210");
  EXPECT_EQ(c->feedback.verify_key_source, "env " + verify);
  EXPECT_EQ(Parse("feedback: {signing_key_env: " + sign + "}")->feedback.verify_key, "");
  EXPECT_THAT(Parse("feedback: {verify_key_env: " + verify + "}"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "feedback.verify_key_env: a key that only checks tokens"));
  EXPECT_THAT(Parse("feedback: {verify_key_file: /nonexistent/verify-key}"),
              StatusIs(absl::StatusCode::kInvalidArgument, "feedback.verify_key_file: cannot read"))
      << "an unreadable key is reported before the missing signing key";
  ExpectFeedbackKeyErrors("verify_key", "signing_key_env: " + sign + ", ");
  ::unsetenv(verify.c_str());
  ::unsetenv(sign.c_str());
}

// A token source that yields no token stops the whole config (serve and
// check-config), naming the key: auth is never switched off by a typo.
TEST(SidecarConfigTest, ConfiguredButEmptyTokenSourceIsAnError) {
  const std::string unset = "UNDERSTUDY_TEST_UNSET_" + std::to_string(::getpid());
  ::unsetenv(unset.c_str());
  EXPECT_THAT(Parse("admin: {token_env: " + unset + "}"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "admin.token_env: $" + unset + " is unset or empty"));
  EXPECT_THAT(Parse("admin: {token_file: /nonexistent/understudy/token}"),
              StatusIs(absl::StatusCode::kInvalidArgument, "admin.token_file: cannot read"));
}

// Each bad value is reported with its key path.
TEST(SidecarConfigTest, ErrorsNameTheKeyPath) {
  EXPECT_THAT(Parse("routing: {weight_percent: 14}"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "routing.weight_percent: the candidate's weight comes from rollout.stages"));
  EXPECT_THAT(Parse("rollout: {stages: [0, 120]}"),
              StatusIs(absl::StatusCode::kInvalidArgument, "rollout.stages[1]"));
  EXPECT_THAT(Parse("feedback: {path: fb}"),
              StatusIs(absl::StatusCode::kInvalidArgument, "feedback.path: must start with '/'"));
  EXPECT_THAT(Parse("storage: {privacy: {body_mode: loud}}"),
              StatusIs(absl::StatusCode::kInvalidArgument, "storage.privacy.body_mode"));
  EXPECT_THAT(Parse("bogus: 1"), StatusIs(absl::StatusCode::kInvalidArgument, "bogus: unknown key"));
  EXPECT_THAT(Parse("extproc: {max_concurrent_streams: 0}"),
              StatusIs(absl::StatusCode::kInvalidArgument, "extproc.max_concurrent_streams"));
  EXPECT_THAT(Parse("extproc: {request_body_mode: chunky}"),
              StatusIs(absl::StatusCode::kInvalidArgument, "extproc.request_body_mode: must be one of"));
  EXPECT_THAT(Parse("capture: {max_body_byte: 1}"),
              StatusIs(absl::StatusCode::kInvalidArgument, "capture.max_body_byte: unknown key"));
  EXPECT_THAT(Parse("extproc: {listen: \"\"}"),
              StatusIs(absl::StatusCode::kInvalidArgument, "extproc.listen: must be set"));
}

// A plan the user wrote with a shadow stage while shadowing is off would
// hold forever: refused, naming the stage and the reason.
TEST(SidecarConfigTest, ShadowStageWithoutShadowingIsAnError) {
  EXPECT_THAT(Parse("rollout: {stages: [0, 10, 100]}\n"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "rollout.stages[0]: a shadow stage (percent 0) needs shadow comparisons, "
                       "but there is no `shadow:` section"));
  EXPECT_THAT(Parse(R"(
upstreams: {production: {url: "http://p"}, candidate: {url: "http://c"}}
shadow: {sample_rate: 0}
rollout: {stages: [{percent: 0}, 100]}
)"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "rollout.stages[0]: a shadow stage (percent 0) needs shadow comparisons, "
                       "but shadow.sample_rate is 0"));
  EXPECT_OK(Parse("rollout: {stages: [1, 100]}\n"));
}

// The default plan without shadowing skips its shadow stage and says so.
TEST(SidecarConfigTest, DefaultPlanWithoutShadowingStartsLiveWithAWarning) {
  auto c = Parse("");
  ASSERT_OK(c);
  ASSERT_FALSE(c->rollout.stages.empty());
  EXPECT_EQ(c->rollout.stages.front().percent, 1);
  ASSERT_EQ(c->warnings.size(), 1u);
  EXPECT_THAT(c->warnings[0], ::testing::HasSubstr("shadow stage is skipped"));

  auto with_shadow = Parse(R"(
upstreams: {production: {url: "http://p"}, candidate: {url: "http://c"}}
shadow: {}
)");
  ASSERT_OK(with_shadow);
  EXPECT_EQ(with_shadow->rollout.stages.front().percent, 0);
  EXPECT_TRUE(with_shadow->warnings.empty());
}

// routes: and the decoding limits are read; the scope reaches the sessions.
TEST(SidecarConfigTest, ReadsRoutesAndDecodingLimits) {
  auto c = Parse(R"(
routes:
  - {path: /llm/chat, api: openai_chat}
capture: {decode_max_bytes: 2048, decode_max_ratio: 20}
)");
  ASSERT_OK(c);
  ASSERT_NE(c->session.scope, nullptr);
  EXPECT_TRUE(c->session.scope->Match("POST", "/llm/chat").in_scope());
  EXPECT_FALSE(c->session.scope->Match("POST", "/v1/chat/completions").in_scope());
  EXPECT_EQ(c->capture.decode_limits.max_output_bytes, 2048);
  EXPECT_EQ(c->shadow.decode_limits.max_ratio, 20);
  EXPECT_THAT(Parse("routes: [{path: /x, api: nope}]\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, "routes[0].api"));
  EXPECT_THAT(Parse("capture: {decode_max_ratio: 1}\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, "capture.decode_max_ratio"));
}

}  // namespace
}  // namespace understudy::sidecar

namespace understudy::sidecar {
namespace {

// The scheduled eval (`eval:`) and the revisit thresholds (`revisit:`):
// read when valid, and every bad input named by its key path.
TEST(SidecarConfigTest, EvalAndRevisitSectionsAreValidated) {
  const std::string dataset = ::testing::TempDir() + "config_test_golden.jsonl";
  {
    std::ofstream out(dataset);
    out << R"({"id":"q1","request":{"model":"m","messages":[]}})" << "\n";
  }
  const std::string upstreams =
      "upstreams: {production: {url: 'http://127.0.0.1:1'}}\n";
  auto c = Parse(upstreams + "eval: {dataset: " + dataset +
                 ", interval: 2h, arms: [production], concurrency: 3}\n"
                 "revisit: {volume_growth: 4}\n");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_TRUE(c->eval.enabled);
  EXPECT_EQ(c->eval.interval, absl::Hours(2));
  EXPECT_EQ(c->eval.arms, std::vector<understudy::v1::Arm>{understudy::v1::ARM_PRODUCTION});
  EXPECT_EQ(c->eval.concurrency, 3);
  EXPECT_EQ(c->revisit.volume_growth, 4.0);
  EXPECT_FALSE(Parse("other: 1\n").value_or(SidecarConfig()).eval.enabled);

  const struct {
    std::string yaml;
    std::string message;
  } bad[] = {
      {"eval: {interval: 1h}\n", "eval.dataset: is required"},
      {"eval: {dataset: /nonexistent/golden.jsonl}\n", "eval.dataset: /nonexistent/golden.jsonl"},
      {"eval: {dataset: " + dataset + ", interval: 0s}\n", "eval.interval: must be at least 1s"},
      {"eval: {dataset: " + dataset + ", arms: [staging]}\n", "eval.arms[0]: must be production"},
      {"eval: {dataset: " + dataset + ", arms: [production, production]}\n", "listed twice"},
      {"eval: {dataset: " + dataset + ", arms: [candidate]}\n",
       "eval.arms: asks candidate, which needs upstreams.candidate.url"},
      {"eval: {dataset: " + dataset + ", schedule: 1h}\n", "schedule"},
      {"revisit: {volume_growth: 1}\n", "revisit.volume_growth"},
  };
  for (const auto& b : bad) {
    auto r = Parse(upstreams + b.yaml);
    ASSERT_FALSE(r.ok()) << b.yaml;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << b.yaml;
    EXPECT_NE(std::string(r.status().message()).find(b.message), std::string::npos)
        << r.status().message() << " / want " << b.message;
  }
}

}  // namespace
}  // namespace understudy::sidecar
