// Tests for cli/cmd_compare.cc: `understudy compare` on saved bodies.
#include <CLI/CLI.hpp>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "cli/commands.h"
#include "tests/compare/fixtures.h"

namespace understudy::cli {
namespace {

using ::testing::HasSubstr;

class CmdCompareTest : public ::testing::Test {
 protected:
  std::string Write(const std::string& name, std::string_view body) {
    std::string path = ::testing::TempDir() + "/cmd_compare_" + name;
    std::ofstream(path, std::ios::binary) << body;
    return path;
  }
  // Run parses argv like main() does and returns the exit code; stdout is
  // captured in out_.
  int Run(std::vector<std::string> args) {
    CLI::App app("understudy");
    int exit_code = -1;
    RegisterCompareCommand(app, &exit_code);
    args.insert(args.begin(), "understudy");
    std::vector<const char*> argv;
    for (const std::string& a : args) argv.push_back(a.c_str());
    std::ostringstream captured;
    std::streambuf* old = std::cout.rdbuf(captured.rdbuf());
    try {
      app.parse(static_cast<int>(argv.size()), argv.data());
    } catch (const CLI::ParseError& e) {
      exit_code = kExitUsage;
    }
    std::cout.rdbuf(old);
    out_ = captured.str();
    return exit_code;
  }
  std::string out_;
};

// An OpenAI SSE body against an Anthropic JSON body, printed as JSON.
TEST_F(CmdCompareTest, PrintsComparisonAsJson) {
  std::string p = Write("p.sse", compare::fixtures::kOpenAIToolSse);
  std::string s = Write("s.json", compare::fixtures::kAnthropicJson);
  EXPECT_EQ(Run({"compare", p, s, "-o", "json"}), kExitOk);
  EXPECT_THAT(out_, HasSubstr("\"verdict\": \"VERDICT_MAJOR_DIFF\""));
  EXPECT_THAT(out_, HasSubstr("\"candidate_model\": \"claude-3-5-sonnet-20241022\""));
  EXPECT_THAT(out_, HasSubstr("tool_call_missing"));
}

// The same body twice in text form, with a request file.
TEST_F(CmdCompareTest, PrintsEquivalentForSameBody) {
  std::string p = Write("same.sse", compare::fixtures::kAnthropicSse);
  std::string r = Write("req.json", compare::fixtures::kAnthropicRequest);
  EXPECT_EQ(Run({"compare", p, p, "--request", r}), kExitOk);
  EXPECT_THAT(out_, HasSubstr("verdict: equivalent"));
}

// A missing file or missing argument is bad usage (exit 2).
TEST_F(CmdCompareTest, MissingFileIsUsageError) {
  std::string p = Write("exists.json", compare::fixtures::kOpenAIJson);
  EXPECT_EQ(Run({"compare", p, "/nonexistent/shadow.json"}), kExitUsage);
  EXPECT_EQ(Run({"compare", p}), kExitUsage);
  EXPECT_EQ(Run({"compare", p, p, "-o", "yaml"}), kExitUsage);
}

// An unparseable shadow body is reported as a candidate error, not a crash.
TEST_F(CmdCompareTest, GarbageShadowBodyIsCandidateError) {
  std::string p = Write("good.json", compare::fixtures::kOpenAIJson);
  std::string s = Write("garbage.txt", "<html>oops</html>");
  EXPECT_EQ(Run({"compare", p, s}), kExitOk);
  EXPECT_THAT(out_, HasSubstr("verdict: candidate_error"));
}

// A request file that is not JSON is a failure (exit 1).
TEST_F(CmdCompareTest, BadRequestFileFails) {
  std::string p = Write("good2.json", compare::fixtures::kOpenAIJson);
  std::string r = Write("bad_req.json", "not json");
  EXPECT_EQ(Run({"compare", p, p, "--request", r}), kExitFailure);
}

}  // namespace
}  // namespace understudy::cli
