// Tests for compare/json_diff.cc.
#include "compare/json_diff.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace understudy::compare::internal {
namespace {

class JsonDiffTest : public ::testing::Test {
 protected:
  JsonDiffOptions options_;
};

// Key order does not matter; a changed nested value does.
TEST_F(JsonDiffTest, IgnoresKeyOrderButCatchesChangedValue) {
  auto same = DiffJson(R"({"a":1,"b":{"c":[1,2],"d":"x"}})", R"({"b":{"d":"x","c":[1,2]},"a":1})",
                       options_);
  ASSERT_TRUE(same.production_valid && same.candidate_valid);
  EXPECT_TRUE(same.entries.empty());
  EXPECT_DOUBLE_EQ(same.Score(), 1.0);
  auto changed = DiffJson(R"({"a":1,"b":{"c":[1,2],"d":"x"}})",
                          R"({"b":{"d":"y","c":[1,2]},"a":1})", options_);
  ASSERT_EQ(changed.entries.size(), 1u);
  EXPECT_EQ(changed.entries[0].kind, "json_changed");
  EXPECT_EQ(changed.entries[0].path, "$.b.d");
  EXPECT_EQ(changed.entries[0].production, "\"x\"");
  EXPECT_EQ(changed.entries[0].candidate, "\"y\"");
  EXPECT_DOUBLE_EQ(changed.Score(), 0.75);
}

// Added, removed and type-changed paths, and array elements by index.
TEST_F(JsonDiffTest, ReportsAddedRemovedAndTypeChanged) {
  auto r = DiffJson(R"({"keep":1,"gone":true,"n":"5","list":[1,2,3]})",
                    R"({"keep":1,"new":null,"n":5,"list":[1,2]})", options_);
  std::vector<std::string> got;
  for (const auto& e : r.entries) got.push_back(e.kind + " " + e.path);
  EXPECT_THAT(got, ::testing::ElementsAre("json_removed $.gone", "json_removed $.list[2]",
                                          "json_type_changed $.n", "json_added $.new"));
}

// Numbers within tolerance are equal; ignore paths skip whole subtrees.
TEST_F(JsonDiffTest, AppliesNumericToleranceAndIgnorePaths) {
  options_.numeric_tolerance = 1e-3;
  EXPECT_TRUE(DiffJson(R"({"x":1.0001,"y":10})", R"({"x":1.0,"y":10.0})", options_).entries.empty());
  EXPECT_FALSE(DiffJson(R"({"x":1.1})", R"({"x":1.0})", options_).entries.empty());
  options_.ignore_paths = {"$.id", "$.items[*].ts"};
  auto r = DiffJson(R"({"id":"a","items":[{"ts":1,"v":1},{"ts":2,"v":2}]})",
                    R"({"id":"b","items":[{"ts":9,"v":1},{"ts":8,"v":3}]})", options_);
  ASSERT_EQ(r.entries.size(), 1u);
  EXPECT_EQ(r.entries[0].path, "$.items[1].v");
}

// JSON is found whole or inside a ``` fence; prose is not JSON.
TEST_F(JsonDiffTest, ExtractsJsonFromWholeTextOrFence) {
  EXPECT_EQ(ExtractJson("  {\"a\":1}\n").value_or(""), "{\"a\":1}");
  EXPECT_EQ(ExtractJson("Here you go:\n```json\n[1, 2]\n```\nDone.").value_or(""), "[1, 2]");
  EXPECT_FALSE(ExtractJson("No JSON here, just {braces} inline.").has_value());
  EXPECT_FALSE(ExtractJson("```python\nprint(1)\n```").has_value());
}

// Invalid JSON is reported, not crashed on.
TEST_F(JsonDiffTest, ReportsInvalidDocuments) {
  auto r = DiffJson(R"({"a":1})", R"({"a":)", options_);
  EXPECT_TRUE(r.production_valid);
  EXPECT_FALSE(r.candidate_valid);
  EXPECT_FALSE(r.candidate_error.empty());
}

// Glob: '*' stays within one path segment.
TEST_F(JsonDiffTest, GlobStarStaysInsideOneSegment) {
  EXPECT_TRUE(GlobMatch("$.items[*].ts", "$.items[12].ts"));
  EXPECT_TRUE(GlobMatch("$.meta.*", "$.meta.request_id"));
  EXPECT_FALSE(GlobMatch("$.meta.*", "$.meta.a.b"));
  EXPECT_FALSE(GlobMatch("$.id", "$.idx"));
}

}  // namespace
}  // namespace understudy::compare::internal
