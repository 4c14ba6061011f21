// Tests for ParseStorageConfig: YAML in, typed struct or a precise error out.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "storage/store.h"
#include "tests/common/test_util.h"

namespace understudy::storage {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::understudy::testing::StatusIs;

absl::StatusOr<StorageConfig> Parse(const std::string& yaml) {
  absl::StatusOr<ConfigNode> root = ConfigNode::Parse(yaml, "test.yaml");
  if (!root.ok()) return root.status();
  return ParseStorageConfig(root->Child("storage"));
}

class StorageConfigTest : public ::testing::Test {};

// No storage section at all: defaults, redacted bodies with default patterns.
TEST_F(StorageConfigTest, MissingSectionGivesSafeDefaults) {
  absl::StatusOr<StorageConfig> c = Parse("other: 1\n");
  ASSERT_OK(c);
  EXPECT_EQ(c->path, "./understudy-data");
  EXPECT_FALSE(c->sync_bulk);
  EXPECT_EQ(c->privacy.body_mode, BodyMode::kRedacted);
  EXPECT_FALSE(c->privacy.redact_patterns.empty());
  EXPECT_EQ(c->retention.decisions_hours, 0);
}

// Every key set: all of them land in the struct.
TEST_F(StorageConfigTest, ParsesEveryKey) {
  absl::StatusOr<StorageConfig> c = Parse(R"(
storage:
  path: /var/lib/understudy
  sync_bulk: true
  max_size_mb: 2
  retention_interval: 30s
  retention_hours: {exchanges: 1, comparisons: 2, feedback: 3, health: 4, decisions: 5}
  privacy:
    body_mode: hash_only
    redact_json_paths: ["messages[*].content", "$.user"]
    redact_patterns: ["tok-[0-9]+"]
    secret_headers: [X-Internal-Token]
)");
  ASSERT_OK(c);
  EXPECT_EQ(c->path, "/var/lib/understudy");
  EXPECT_TRUE(c->sync_bulk);
  EXPECT_EQ(c->max_size_bytes, 2 * 1024 * 1024);
  EXPECT_EQ(c->retention_interval, absl::Seconds(30));
  EXPECT_EQ(c->retention.exchanges_hours, 1);
  EXPECT_EQ(c->retention.comparisons_hours, 2);
  EXPECT_EQ(c->retention.feedback_hours, 3);
  EXPECT_EQ(c->retention.health_hours, 4);
  EXPECT_EQ(c->retention.decisions_hours, 5);
  EXPECT_EQ(c->privacy.body_mode, BodyMode::kHashOnly);
  EXPECT_THAT(c->privacy.redact_json_paths, ElementsAre("messages[*].content", "$.user"));
  EXPECT_THAT(c->privacy.redact_patterns, ElementsAre("tok-[0-9]+"));
  EXPECT_THAT(c->privacy.secret_headers, ElementsAre("x-internal-token"));
}

// A typo'd body mode is rejected with the key path.
TEST_F(StorageConfigTest, RejectsUnknownBodyModeNamingThePath) {
  EXPECT_THAT(Parse("storage:\n  privacy:\n    body_mode: redact\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, "storage.privacy.body_mode"));
}

// A regex RE2 cannot compile names its list index.
TEST_F(StorageConfigTest, RejectsBadRegexNamingItsIndex) {
  EXPECT_THAT(Parse("storage:\n  privacy:\n    redact_patterns: [\"ok\", \"(unclosed\"]\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, "storage.privacy.redact_patterns[1]"));
}

// A malformed JSON path names its list index.
TEST_F(StorageConfigTest, RejectsBadJsonPath) {
  EXPECT_THAT(Parse("storage:\n  privacy:\n    redact_json_paths: [\"a..b\"]\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, "storage.privacy.redact_json_paths[0]"));
}

// Negative retention and unknown keys are errors.
TEST_F(StorageConfigTest, RejectsNegativeRetentionAndUnknownKeys) {
  EXPECT_THAT(Parse("storage:\n  retention_hours:\n    exchanges: -1\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, "storage.retention_hours.exchanges"));
  EXPECT_THAT(Parse("storage:\n  pth: /tmp\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, "storage.pth"));
  EXPECT_THAT(Parse("storage:\n  path: \"\"\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, "storage.path"));
}

// Record kind names round-trip; unknown names are rejected.
TEST_F(StorageConfigTest, RecordKindNamesRoundTrip) {
  for (auto k : {RecordKind::kExchanges, RecordKind::kComparisons, RecordKind::kFeedback,
                 RecordKind::kDecisions, RecordKind::kHealth}) {
    absl::StatusOr<RecordKind> parsed = ParseRecordKind(RecordKindName(k));
    ASSERT_OK(parsed);
    EXPECT_EQ(*parsed, k);
  }
  EXPECT_THAT(ParseRecordKind("exchange"), StatusIs(absl::StatusCode::kInvalidArgument, "exchange"));
}

}  // namespace
}  // namespace understudy::storage
