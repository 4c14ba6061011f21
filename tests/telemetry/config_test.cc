// tests/telemetry/config_test.cc: the `telemetry:` section.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "common/config_node.h"
#include "telemetry/tracer.h"
#include "tests/common/test_util.h"

namespace understudy::telemetry {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::understudy::testing::StatusIs;

absl::StatusOr<TelemetryConfig> Parse(const std::string& yaml) {
  absl::StatusOr<ConfigNode> root = ConfigNode::Parse(yaml, "test.yaml");
  if (!root.ok()) return root.status();
  return ParseTelemetryConfig(root->Child("telemetry"));
}

class TelemetryConfigTest : public ::testing::Test {};

// No telemetry section at all: tracing is off.
TEST_F(TelemetryConfigTest, AbsentSectionDisablesTracing) {
  absl::StatusOr<TelemetryConfig> c = Parse("admin: {listen: 127.0.0.1:9901}\n");
  ASSERT_OK(c);
  EXPECT_FALSE(c->enabled);
  EXPECT_EQ(c->service_name, "understudy");
  EXPECT_FALSE(c->service_version.empty());
}

// A section without otlp keeps the service name but stays off.
TEST_F(TelemetryConfigTest, SectionWithoutOtlpIsDisabled) {
  absl::StatusOr<TelemetryConfig> c = Parse("telemetry: {service_name: edge-sidecar}\n");
  ASSERT_OK(c);
  EXPECT_FALSE(c->enabled);
  EXPECT_EQ(c->service_name, "edge-sidecar");
}

// Every key of a full HTTP config lands in the struct.
TEST_F(TelemetryConfigTest, ParsesFullHttpConfig) {
  absl::StatusOr<TelemetryConfig> c = Parse(R"(
telemetry:
  service_name: understudy-eu
  otlp:
    endpoint: http://collector:4318
    protocol: http
    headers: {X-Tenant: team-a, x-scope: llm}
    sample_rate: 0.25
    max_queue: 100
    max_batch: 10
    flush_interval: 500ms
    timeout: 3s
    retry_max_elapsed: 0s
)");
  ASSERT_OK(c);
  EXPECT_TRUE(c->enabled);
  EXPECT_EQ(c->service_name, "understudy-eu");
  EXPECT_EQ(c->otlp.endpoint, "http://collector:4318");
  EXPECT_EQ(c->otlp.protocol, OtlpProtocol::kHttp);
  ASSERT_EQ(c->otlp.headers.size(), 2u);
  EXPECT_EQ(c->otlp.headers[0].first, "x-tenant");  // lower-cased for gRPC metadata
  EXPECT_EQ(c->otlp.headers[0].second, "team-a");
  EXPECT_DOUBLE_EQ(c->otlp.sample_rate, 0.25);
  EXPECT_EQ(c->otlp.max_queue, 100);
  EXPECT_EQ(c->otlp.max_batch, 10);
  EXPECT_EQ(c->otlp.flush_interval, absl::Milliseconds(500));
  EXPECT_EQ(c->otlp.timeout, absl::Seconds(3));
  EXPECT_EQ(c->otlp.retry_max_elapsed, absl::ZeroDuration());
}

// grpc is the default protocol and the defaults match the contract.
TEST_F(TelemetryConfigTest, GrpcIsTheDefault) {
  absl::StatusOr<TelemetryConfig> c = Parse("telemetry: {otlp: {endpoint: '127.0.0.1:4317'}}\n");
  ASSERT_OK(c);
  EXPECT_TRUE(c->enabled);
  EXPECT_EQ(c->otlp.protocol, OtlpProtocol::kGrpc);
  EXPECT_EQ(c->otlp.max_queue, 2048);
  EXPECT_EQ(c->otlp.max_batch, 256);
  EXPECT_EQ(c->otlp.flush_interval, absl::Seconds(2));
  EXPECT_EQ(c->otlp.timeout, absl::Seconds(5));
  EXPECT_EQ(c->otlp.retry_max_elapsed, absl::Seconds(30));
  EXPECT_DOUBLE_EQ(c->otlp.sample_rate, 1.0);
}

// Each bad value is reported with the key path that holds it.
TEST_F(TelemetryConfigTest, ErrorsNameTheKeyPath) {
  struct Case {
    std::string yaml;
    std::string path;
  };
  const Case cases[] = {
      {"telemetry: {otlp: {endpoint: 'h:1', protocol: thrift}}", "telemetry.otlp.protocol: "},
      {"telemetry: {otlp: {protocol: grpc}}", "telemetry.otlp.endpoint: "},
      {"telemetry: {otlp: {endpoint: 'collector:4318', protocol: http}}",
       "telemetry.otlp.endpoint: "},
      {"telemetry: {otlp: {endpoint: 'h:1', sample_rate: 1.5}}", "telemetry.otlp.sample_rate: "},
      {"telemetry: {otlp: {endpoint: 'h:1', max_queue: 0}}", "telemetry.otlp.max_queue: "},
      {"telemetry: {otlp: {endpoint: 'h:1', max_queue: 10, max_batch: 20}}",
       "telemetry.otlp.max_batch: "},
      {"telemetry: {otlp: {endpoint: 'h:1', flush_interval: soon}}",
       "telemetry.otlp.flush_interval: "},
      {"telemetry: {otlp: {endpoint: 'h:1', timeout: 0s}}", "telemetry.otlp.timeout: "},
      {"telemetry: {otlp: {endpoint: 'h:1', retry_max_elapsed: -1s}}",
       "telemetry.otlp.retry_max_elapsed: "},
      {"telemetry: {otlp: {endpoint: 'h:1', headers: [a, b]}}", "telemetry.otlp.headers: "},
      {"telemetry: {otlp: {endpoint: 'h:1', headers: {'bad header': x}}}",
       "telemetry.otlp.headers.bad header: "},
      {"telemetry: {otlp: {endpoint: 'h:1', headers: {grpc-timeout: 1S}}}",
       "telemetry.otlp.headers.grpc-timeout: "},
      {"telemetry: {otlp: {endpoint: 'h:1', endpont: 'h:2'}}", "telemetry.otlp.endpont"},
      {"telemetry: {servce_name: x}", "telemetry.servce_name"},
      {"telemetry: {service_name: '', otlp: {endpoint: 'h:1'}}", "telemetry.service_name: "},
      {"telemetry: {otlp: [1, 2]}", "telemetry.otlp: "},
      {"telemetry: [1]", "telemetry: "},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.yaml);
    EXPECT_THAT(Parse(c.yaml), StatusIs(absl::StatusCode::kInvalidArgument, c.path));
  }
}

// headers_env reads a credential from the environment; a missing variable
// is named, and the value never shows up in errors.
TEST_F(TelemetryConfigTest, HeadersEnvResolvesAndNeverEchoesValues) {
  const std::string secret = std::string("tok") + "-" + std::to_string(12345);
  setenv("UNDERSTUDY_TEST_OTLP_TOKEN", secret.c_str(), 1);
  absl::StatusOr<TelemetryConfig> c = Parse(
      "telemetry: {otlp: {endpoint: 'h:1', headers_env: {Authorization: "
      "UNDERSTUDY_TEST_OTLP_TOKEN}}}");
  ASSERT_OK(c);
  ASSERT_EQ(c->otlp.headers.size(), 1u);
  EXPECT_EQ(c->otlp.headers[0].first, "authorization");
  EXPECT_EQ(c->otlp.headers[0].second, secret);

  unsetenv("UNDERSTUDY_TEST_OTLP_MISSING");
  EXPECT_THAT(Parse("telemetry: {otlp: {endpoint: 'h:1', headers_env: {authorization: "
                    "UNDERSTUDY_TEST_OTLP_MISSING}}}"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "telemetry.otlp.headers_env.authorization: environment variable "
                       "\"UNDERSTUDY_TEST_OTLP_MISSING\""));

  // A value with a line break is refused without being quoted back.
  absl::StatusOr<TelemetryConfig> bad =
      Parse("telemetry: {otlp: {endpoint: 'h:1', headers: {x-key: \"" + secret + "\\nX: y\"}}}");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("telemetry.otlp.headers.x-key"));
  EXPECT_THAT(std::string(bad.status().message()), Not(HasSubstr(secret)));
}

}  // namespace
}  // namespace understudy::telemetry
