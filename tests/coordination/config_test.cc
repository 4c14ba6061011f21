// The `coordination:` section: defaults, and errors that name the key.
#include "coordination/config.h"

#include <gtest/gtest.h>

#include <cstdlib>

#include "tests/common/test_util.h"

namespace understudy::coordination {
namespace {

using ::understudy::testing::StatusIs;

absl::StatusOr<std::optional<FleetOptions>> Parse(const std::string& yaml) {
  absl::StatusOr<ConfigNode> root = ConfigNode::Parse(yaml, "test.yaml");
  if (!root.ok()) return root.status();
  return ParseCoordinationConfig(root->Child("coordination"));
}

TEST(CoordinationConfigTest, AbsentMeansAlone) {
  absl::StatusOr<std::optional<FleetOptions>> o = Parse("rollout: {}\n");
  ASSERT_OK(o);
  EXPECT_FALSE(o->has_value());
}

TEST(CoordinationConfigTest, ReadsEveryKey) {
  setenv("UNDERSTUDY_TEST_ETCD_PASSWORD", "s3cret", 1);
  absl::StatusOr<std::optional<FleetOptions>> o = Parse(R"(coordination:
  member: pod-7
  etcd:
    endpoints: ["10.0.0.1:2379", "http://10.0.0.2:2379"]
    prefix: /understudy/bot/
    lease_ttl: 15s
    request_timeout: 2s
    auth: {username: understudy, password_env: UNDERSTUDY_TEST_ETCD_PASSWORD}
)");
  ASSERT_OK(o);
  ASSERT_TRUE(o->has_value());
  const FleetOptions& f = **o;
  EXPECT_EQ(f.member, "pod-7");
  EXPECT_EQ(f.etcd.endpoints.size(), 2u);
  EXPECT_EQ(f.prefix, "/understudy/bot/");
  EXPECT_EQ(f.lease_ttl, absl::Seconds(15));
  EXPECT_EQ(f.etcd.request_timeout, absl::Seconds(2));
  EXPECT_EQ(f.etcd.username, "understudy");
  EXPECT_EQ(f.etcd.password, "s3cret");
}

TEST(CoordinationConfigTest, ErrorsNameTheKeyPath) {
  EXPECT_THAT(Parse("coordination: {}\n").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "coordination.etcd: required"));
  EXPECT_THAT(Parse("coordination: {etcd: {endpoints: []}}\n").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "coordination.etcd.endpoints"));
  EXPECT_THAT(Parse("coordination: {etcd: {endpoints: [a:1], prefix: nope}}\n").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "coordination.etcd.prefix"));
  EXPECT_THAT(Parse("coordination: {etcd: {endpoints: [a:1], lease_ttl: 100ms}}\n").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "coordination.etcd.lease_ttl"));
  EXPECT_THAT(Parse("coordination: {etcd: {endpoints: [a:1], leese_ttl: 5s}}\n").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "leese_ttl"));
  EXPECT_THAT(Parse("coordination: {etcd: {endpoints: [a:1], tls: {cert_file: /x}}}\n").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "coordination.etcd.tls.key_file"));
  EXPECT_THAT(
      Parse("coordination: {etcd: {endpoints: [a:1], auth: {username: u, password_env: "
            "UNDERSTUDY_UNSET_VARIABLE_XYZ}}}\n")
          .status(),
      StatusIs(absl::StatusCode::kInvalidArgument, "coordination.etcd.auth.password_env"));
  EXPECT_THAT(Parse("coordination: {etcd: {endpoints: [\"no-port\"]}}\n").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "coordination.etcd.endpoints[0]"));
}

}  // namespace
}  // namespace understudy::coordination
