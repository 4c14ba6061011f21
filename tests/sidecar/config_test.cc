// Sidecar config: typed values from YAML, and errors that name the key path.
#include "sidecar/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

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

}  // namespace
}  // namespace understudy::sidecar
