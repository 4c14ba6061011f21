// Tests for translate/json_scan.h: it accepts exactly what a full JSON
// parser accepts, finds members and keeps string tokens as written, and its
// string writer produces JSON that decodes back to the input.
#include "translate/json_scan.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <random>
#include <string>

#include "tests/common/test_util.h"

namespace understudy::translate::internal {
namespace {

using ::testing::HasSubstr;
using ::understudy::testing::StatusIs;

class JsonScanTest : public ::testing::Test {
 protected:
  JsonScan scan_;
};

// Valid and invalid documents: the scanner agrees with nlohmann on each.
TEST_F(JsonScanTest, AcceptsExactlyWhatAFullParserAccepts) {
  const char* kCases[] = {
      "{}", "[]", "0", "-0", "1.5e-3", "\"x\"", "true", "false", "null", " {\"a\" : [1, 2 ,3]} ",
      "{\"a\":{\"b\":{\"c\":[{},[],\"\\u00e9\\n\\\"\"]}}}", "\"\\ud83d\\ude00\"",
      // invalid
      "", " ", "{", "}", "[1,]", "{\"a\":1,}", "{\"a\" 1}", "{a:1}", "01", "1.", ".5", "-", "1e",
      "+1", "\"abc", "\"a\\x\"", "\"\\u12\"", "\"tab\there\"", "tru", "nul", "{} {}", "[1] x",
      "{\"a\":1}}", "'a'", "[\"a\\\"]"};
  for (const char* text : kCases) {
    const bool nlohmann_ok = nlohmann::json::accept(text);
    EXPECT_EQ(scan_.Parse(text).ok(), nlohmann_ok) << text;
  }
}

// A malformed event names the byte where it broke.
TEST_F(JsonScanTest, ErrorNamesTheOffset) {
  EXPECT_THAT(scan_.Parse("{\"a\":tru}"),
              StatusIs(absl::StatusCode::kInvalidArgument, "invalid JSON at byte 5"));
}

// Nesting is bounded so a hostile event cannot exhaust the stack.
TEST_F(JsonScanTest, RefusesNestingDeeperThanTheLimit) {
  const std::string ok =
      std::string(JsonScan::kMaxDepth, '[') + std::string(JsonScan::kMaxDepth, ']');
  const std::string deep = "[" + ok + "]";
  EXPECT_OK(scan_.Parse(ok));
  EXPECT_THAT(scan_.Parse(deep), StatusIs(absl::StatusCode::kInvalidArgument, "nested too deeply"));
}

// Members are found by name, strings keep their escapes, containers their text.
TEST_F(JsonScanTest, FindsMembersAndKeepsTokensAsWritten) {
  ASSERT_OK(scan_.Parse(
      R"({"type":"content_block_delta","index":3,"delta":{"type":"text_delta","text":"a\"b\n"},)"
      R"("list":[1,{"k":true}],"n":null})"));
  const JsonNode* root = &scan_.root();
  EXPECT_TRUE(StringIs(scan_.Get(root, "type"), "content_block_delta"));
  EXPECT_EQ(IntegerOf(scan_.Get(root, "index")), 3);
  const JsonNode* text = scan_.Get(scan_.Get(root, "delta"), "text");
  ASSERT_NE(text, nullptr);
  EXPECT_EQ(text->text, R"(a\"b\n)");
  EXPECT_TRUE(text->escaped);
  EXPECT_EQ(DecodeString(*text), "a\"b\n");
  const JsonNode* list = scan_.Get(root, "list");
  EXPECT_EQ(list->text, R"([1,{"k":true}])");
  const JsonNode* first = scan_.First(list);
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(first->text, "1");
  const JsonNode* second = scan_.Next(first);
  ASSERT_NE(second, nullptr);
  EXPECT_EQ(second->kind, JsonKind::kObject);
  EXPECT_EQ(scan_.Next(second), nullptr);
  EXPECT_TRUE(IsAbsentOrNull(scan_.Get(root, "n")));
  EXPECT_EQ(scan_.Get(root, "missing"), nullptr);
  EXPECT_EQ(scan_.Get(text, "x"), nullptr);  // not an object
}

// A member name written with escapes still matches.
TEST_F(JsonScanTest, MatchesEscapedMemberNames) {
  ASSERT_OK(scan_.Parse(R"({"\u0074ype":"ping"})"));
  EXPECT_TRUE(StringIs(scan_.Get(&scan_.root(), "type"), "ping"));
}

// Surrogate pairs decode to one code point; a lone surrogate to U+FFFD.
TEST_F(JsonScanTest, DecodesSurrogates) {
  ASSERT_OK(scan_.Parse(R"(["\ud83d\ude00","\ud83d!","\u00e9"])"));
  const JsonNode* a = scan_.First(&scan_.root());
  EXPECT_EQ(DecodeString(*a), "\xF0\x9F\x98\x80");
  EXPECT_EQ(DecodeString(*scan_.Next(a)), "\xEF\xBF\xBD!");
  EXPECT_EQ(DecodeString(*scan_.Next(scan_.Next(a))), "\xC3\xA9");
}

// Integers are read from integral numbers only.
TEST_F(JsonScanTest, ReadsIntegers) {
  ASSERT_OK(scan_.Parse(R"([12,-7,12.0,1e3,1.5,"3",9223372036854775807])"));
  std::vector<std::optional<int64_t>> got;
  for (const JsonNode* n = scan_.First(&scan_.root()); n != nullptr; n = scan_.Next(n)) {
    got.push_back(IntegerOf(n));
  }
  EXPECT_EQ(got, (std::vector<std::optional<int64_t>>{12, -7, 12, 1000, std::nullopt, std::nullopt,
                                                      INT64_MAX}));
}

// Any byte string written by AppendJsonString parses back to itself.
TEST_F(JsonScanTest, WrittenStringsDecodeToTheirInput) {
  std::mt19937 rng(7);
  for (int round = 0; round < 500; ++round) {
    std::string s;
    const int n = static_cast<int>(rng() % 40);
    for (int i = 0; i < n; ++i) {
      // ASCII including every control character, quote and backslash.
      s.push_back(static_cast<char>(rng() % 128));
    }
    std::string out;
    AppendJsonString(&out, s);
    ASSERT_OK(scan_.Parse(out)) << out;
    EXPECT_EQ(DecodeString(scan_.root()), s);
    EXPECT_EQ(nlohmann::json::parse(out).get<std::string>(), s);
  }
}

// A failed parse leaves a null root instead of stale nodes.
TEST_F(JsonScanTest, FailedParseLeavesANullRoot) {
  ASSERT_OK(scan_.Parse(R"({"a":1})"));
  EXPECT_THAT(scan_.Parse("{\"a\":"),
              StatusIs(absl::StatusCode::kInvalidArgument, "unexpected end of input"));
  EXPECT_EQ(scan_.root().kind, JsonKind::kNull);
  EXPECT_EQ(scan_.Get(&scan_.root(), "a"), nullptr);
}

}  // namespace
}  // namespace understudy::translate::internal
