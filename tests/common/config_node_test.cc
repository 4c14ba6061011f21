#include "common/config_node.h"

#include <stdlib.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include "tests/common/test_util.h"

namespace understudy {
namespace {

using ::testing::HasSubstr;
using ::understudy::testing::StatusIs;

// Nested values are found and typed; absent keys give their defaults.
TEST(ConfigNodeTest, ReadsTypedValuesAndDefaults) {
  auto root = ConfigNode::Parse("server:\n  port: 8080\n  timeout: 250ms\n", "t.yaml");
  ASSERT_OK(root);
  ConfigNode server = root->Child("server");
  EXPECT_EQ(*server.GetInt("port", 1, 1, 65535), 8080);
  EXPECT_EQ(*server.GetInt("missing", 7, 1, 65535), 7);
  EXPECT_EQ(*server.GetDuration("timeout", absl::Seconds(1)), absl::Milliseconds(250));
}

// An out-of-range item in a list names its full key path.
TEST(ConfigNodeTest, ErrorsNameTheKeyPath) {
  auto root = ConfigNode::Parse("rollout:\n  stages:\n  - {percent: 1}\n  - {percent: 5}\n"
                                "  - {percent: 120}\n", "t.yaml");
  ASSERT_OK(root);
  auto stages = root->Child("rollout").Child("stages").Elements();
  ASSERT_OK(stages);
  ASSERT_EQ(stages->size(), 3u);
  EXPECT_THAT((*stages)[2].GetDouble("percent", 0, 0, 100),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "rollout.stages[2].percent: must be in 0..100, got 120"));
}

// Typos in keys are caught rather than silently ignored.
TEST(ConfigNodeTest, UnknownKeysAreRejected) {
  auto root = ConfigNode::Parse("rollot: {}\n", "t.yaml");
  ASSERT_OK(root);
  EXPECT_THAT(root->CheckKeys({"rollout", "server"}),
              StatusIs(absl::StatusCode::kInvalidArgument, "rollot: unknown key"));
}

// Broken YAML reports the file and the line.
TEST(ConfigNodeTest, InvalidYamlNamesFileAndLine) {
  auto root = ConfigNode::Parse("a: [1, 2\nb: 3\n", "bad.yaml");
  EXPECT_THAT(root, StatusIs(absl::StatusCode::kInvalidArgument, "bad.yaml: invalid YAML"));
}

// Wrong types are explained with the value that was found.
TEST(ConfigNodeTest, WrongTypesAreExplained) {
  auto root = ConfigNode::Parse("x: {n: abc, b: maybe, d: soon}\n", "t.yaml");
  ASSERT_OK(root);
  ConfigNode x = root->Child("x");
  EXPECT_THAT(x.GetInt("n", 0, 0, 10).status().message(), HasSubstr("x.n: must be a whole number"));
  EXPECT_THAT(x.GetBool("b", false).status().message(), HasSubstr("x.b: must be true or false"));
  EXPECT_THAT(x.GetDuration("d", absl::ZeroDuration()).status().message(),
              HasSubstr("x.d: must be a duration"));
}

// A secret comes from a variable or a file, trimmed; a key that is set but
// yields nothing is an error naming the key, and no error shows the value.
TEST(ConfigNodeTest, SecretsComeFromAVariableOrAFileAndNeverQuietlyVanish) {
  const std::string var = "UNDERSTUDY_CONFIG_NODE_TEST_SECRET";
  const std::string file = ::testing::TempDir() + "/config_node_secret";
  auto parse = [](const std::string& yaml) {
    absl::StatusOr<ConfigNode> root = ConfigNode::Parse(yaml, "t.yaml");
    EXPECT_TRUE(root.ok()) << root.status();
    return root->Child("s");
  };
  ::setenv(var.c_str(), "  s3cret-value \n", 1);
  absl::StatusOr<ConfigNode::Secret> got = parse("s: {k_env: " + var + "}").GetSecret("k_env", "k_file");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->value, "s3cret-value");
  EXPECT_EQ(got->source, "env " + var);
  {
    std::ofstream out(file);
    out << "\nfrom-a-file\n";
  }
  got = parse("s: {k_file: " + file + "}").GetSecret("k_env", "k_file");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->value, "from-a-file");
  EXPECT_EQ(got->source, "file " + file);
  // Neither key: no secret, no error.
  got = parse("s: {}").GetSecret("k_env", "k_file");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->value, "");

  EXPECT_THAT(parse("s: {k_env: " + var + ", k_file: " + file + "}").GetSecret("k_env", "k_file"),
              StatusIs(absl::StatusCode::kInvalidArgument, "s.k_file: set k_env or k_file, not both"));
  ::unsetenv(var.c_str());
  EXPECT_THAT(parse("s: {k_env: " + var + "}").GetSecret("k_env", "k_file"),
              StatusIs(absl::StatusCode::kInvalidArgument, "s.k_env: $" + var + " is unset or empty"));
  ::setenv(var.c_str(), "   ", 1);
  EXPECT_THAT(parse("s: {k_env: " + var + "}").GetSecret("k_env", "k_file"),
              StatusIs(absl::StatusCode::kInvalidArgument, "s.k_env: $" + var + " is unset or empty"));
  EXPECT_THAT(parse("s: {k_file: /nonexistent/secret}").GetSecret("k_env", "k_file"),
              StatusIs(absl::StatusCode::kInvalidArgument, "s.k_file: cannot read /nonexistent/secret"));
  {
    std::ofstream out(file);
    out << " \n";
  }
  EXPECT_THAT(parse("s: {k_file: " + file + "}").GetSecret("k_env", "k_file"),
              StatusIs(absl::StatusCode::kInvalidArgument, "s.k_file: " + file + " is empty"));
  // A line break inside the value would split a header: refused, unseen.
  ::setenv(var.c_str(), "abc\ndef-hidden", 1);
  absl::StatusOr<ConfigNode::Secret> bad = parse("s: {k_env: " + var + "}").GetSecret("k_env", "k_file");
  EXPECT_THAT(bad, StatusIs(absl::StatusCode::kInvalidArgument, "control character"));
  EXPECT_THAT(std::string(bad.status().message()), ::testing::Not(HasSubstr("hidden")));
  ::unsetenv(var.c_str());
  ::unlink(file.c_str());
}

}  // namespace
}  // namespace understudy
