// tests/shadow/shadow_config_test.cc: ParseShadowConfig (upstreams + shadow).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "shadow/shadow.h"
#include "tests/common/test_util.h"

namespace understudy::shadow {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::understudy::testing::StatusIs;

// A key-shaped value built at run time (the tree holds none).
std::string FakeKey(std::string_view tag) {
  return absl::StrCat("test-", std::string(tag), "-", std::string(24, 'x'), getpid());
}

absl::StatusOr<ShadowConfig> ParseYaml(const std::string& yaml) {
  absl::StatusOr<ConfigNode> root = ConfigNode::Parse(yaml, "test.yaml");
  if (!root.ok()) return root.status();
  return ParseShadowConfig(*root);
}

class ShadowConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    env_name_ = absl::StrCat("UNDERSTUDY_SHADOW_TEST_KEY_", getpid());
    key_ = FakeKey("env");
    setenv(env_name_.c_str(), key_.c_str(), 1);
  }
  void TearDown() override {
    unsetenv(env_name_.c_str());
    if (!key_file_.empty()) std::remove(key_file_.c_str());
  }
  std::string WriteKeyFile(const std::string& content) {
    key_file_ = absl::StrCat(::testing::TempDir(), "/shadow_key_", getpid());
    std::ofstream(key_file_) << content;
    return key_file_;
  }

  std::string env_name_;
  std::string key_;
  std::string key_file_;
};

// No shadow: section means nothing is mirrored and no upstream is needed.
TEST_F(ShadowConfigTest, AbsentSectionDisablesMirroring) {
  absl::StatusOr<ShadowConfig> c = ParseYaml("extproc: {listen: 127.0.0.1:1}\n");
  ASSERT_OK(c);
  EXPECT_FALSE(c->enabled);
  EXPECT_TRUE(c->production.url.empty());
}

// enabled: false keeps upstreams (eval uses them) and turns mirroring off.
TEST_F(ShadowConfigTest, EnabledFalseStillParsesUpstreams) {
  absl::StatusOr<ShadowConfig> c = ParseYaml(
      "upstreams:\n"
      "  production: {url: 'http://127.0.0.1:8001/'}\n"
      "shadow: {enabled: false}\n");
  ASSERT_OK(c);
  EXPECT_FALSE(c->enabled);
  EXPECT_EQ(c->production.url, "http://127.0.0.1:8001");  // trailing '/' removed
}

// Every field of the contract's example parses into the struct.
TEST_F(ShadowConfigTest, ParsesFullSection) {
  const std::string file = WriteKeyFile(FakeKey("file") + "\n");
  absl::StatusOr<ShadowConfig> c = ParseYaml(absl::StrCat(
      "upstreams:\n"
      "  production: {url: http://127.0.0.1:8001, api_key_env: ",
      env_name_,
      "}\n"
      "  candidate: {url: https://cand.example, api_key_file: ",
      file,
      ", auth_header: X-Api-Key, auth_scheme: ''}\n"
      "shadow:\n"
      "  enabled: true\n"
      "  sample_rate: 0.5\n"
      "  noise_rate: 0.1\n"
      "  reverse_rate: 0.2\n"
      "  skip: {paths: ['^/v1/embeddings'], methods: [get], headers: [X-Understudy-No-Shadow]}\n"
      "  request:\n"
      "    set_json: {model: gpt-5-mini, temperature: 0, stream_options: {include_usage: true}}\n"
      "    set_headers: {X-A: b}\n"
      "    remove_headers: [X-B]\n"
      "  timeout: 250ms\n"
      "  max_concurrency: 4\n"
      "  max_queue: 8\n"
      "  budget_per_hour: 10.5\n"));
  ASSERT_OK(c);
  EXPECT_TRUE(c->enabled);
  EXPECT_EQ(c->production.api_key, key_);
  EXPECT_EQ(c->production.auth_header, "authorization");
  EXPECT_EQ(c->production.auth_scheme, "Bearer");
  EXPECT_EQ(c->candidate.api_key, FakeKey("file"));  // trailing newline trimmed
  EXPECT_EQ(c->candidate.auth_header, "x-api-key");
  EXPECT_EQ(c->candidate.auth_scheme, "");
  EXPECT_DOUBLE_EQ(c->sample_rate, 0.5);
  EXPECT_DOUBLE_EQ(c->noise_rate, 0.1);
  EXPECT_DOUBLE_EQ(c->reverse_rate, 0.2);
  EXPECT_THAT(c->skip.paths, ::testing::ElementsAre("^/v1/embeddings"));
  EXPECT_THAT(c->skip.methods, ::testing::ElementsAre("GET"));
  EXPECT_THAT(c->skip.headers, ::testing::ElementsAre("x-understudy-no-shadow"));
  ASSERT_EQ(c->candidate.request.set_json.size(), 3u);
  EXPECT_EQ(c->candidate.request.set_json[0],
            std::make_pair(std::string("model"), std::string("\"gpt-5-mini\"")));
  EXPECT_EQ(c->candidate.request.set_json[1].second, "0");
  EXPECT_EQ(c->candidate.request.set_json[2].second, "{\"include_usage\":true}");
  EXPECT_THAT(c->candidate.request.set_headers,
              ::testing::ElementsAre(std::make_pair(std::string("x-a"), std::string("b"))));
  EXPECT_THAT(c->candidate.request.remove_headers, ::testing::ElementsAre("x-b"));
  EXPECT_EQ(c->timeout, absl::Milliseconds(250));
  EXPECT_EQ(c->max_concurrency, 4);
  EXPECT_EQ(c->max_queue, 8);
  EXPECT_DOUBLE_EQ(c->budget_per_hour, 10.5);
}

// Bad values are rejected with the key path in the message.
TEST_F(ShadowConfigTest, ErrorsNameTheKeyPath) {
  const std::string ok_upstreams =
      "upstreams: {production: {url: 'http://a'}, candidate: {url: 'http://b'}}\n";
  struct Case {
    std::string yaml;
    std::string path;
  };
  const Case cases[] = {
      {ok_upstreams + "shadow: {sample_rate: 2}\n", "shadow.sample_rate"},
      {ok_upstreams + "shadow: {noise_rate: -0.1}\n", "shadow.noise_rate"},
      {ok_upstreams + "shadow: {timeout: soon}\n", "shadow.timeout"},
      {ok_upstreams + "shadow: {max_concurrency: 0}\n", "shadow.max_concurrency"},
      {ok_upstreams + "shadow: {samplerate: 1}\n", "shadow.samplerate"},
      {ok_upstreams + "shadow: {skip: {paths: ['ok', '(unclosed']}}\n", "shadow.skip.paths[1]"},
      {ok_upstreams + "shadow: {request: {set_json: [model]}}\n", "shadow.request.set_json"},
      {ok_upstreams + "shadow: {request: {set_headers: {'bad header': x}}}\n",
       "shadow.request.set_headers.bad header"},
      {"upstreams: {candidate: {url: 'http://b', request: {path: 'v1/x'}}}\n",
       "upstreams.candidate.request.path"},
      {"upstreams: {candidate: {url: 'http://b', request: {set_json: {'a..b': 1}}}}\n",
       "upstreams.candidate.request.set_json.a..b"},
      {"upstreams: {candidate: {url: 'http://b', request: {path: /v1/x}}}\n"
       "shadow: {request: {path: /v1/y}}\n",
       "shadow.request"},
      {"shadow: {enabled: true}\nupstreams: {production: {url: 'http://a'}}\n",
       "upstreams.candidate.url"},
      {"upstreams: {production: {url: 'ftp://a'}}\n", "upstreams.production.url"},
      {"upstreams: {production: {uri: 'http://a'}}\n", "upstreams.production.uri"},
      {"upstreams: {staging: {url: 'http://a'}}\n", "upstreams.staging"},
      {"upstreams: {production: {url: 'http://a', api_key_env: UNDERSTUDY_NO_SUCH_VAR_X}}\n",
       "upstreams.production.api_key_env"},
      {"upstreams: {candidate: {url: 'http://a', api_key_file: /nonexistent/understudy/key}}\n",
       "upstreams.candidate.api_key_file"},
      {"shadow: [1, 2]\n", "shadow"},
      // Found by fuzz/config_fuzzer: a value that is not UTF-8 cannot become JSON.
      {"upstreams: {candidate: {url: 'http://b', request: {set_json: {model: \"a\xff\"}}}}\n",
       "upstreams.candidate.request.set_json.model"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<ShadowConfig> parsed = ParseYaml(c.yaml);
    EXPECT_THAT(parsed, StatusIs(absl::StatusCode::kInvalidArgument, c.path + ":"))
        << "yaml: " << c.yaml;
  }
}

// A missing env var is reported by name; an unreadable key file by path.
TEST_F(ShadowConfigTest, CredentialErrorsSayWhereTheKeyWasExpected) {
  absl::StatusOr<ShadowConfig> c = ParseYaml(
      "upstreams: {production: {url: 'http://a', api_key_env: UNDERSTUDY_NO_SUCH_VAR_X}}\n");
  EXPECT_THAT(c, StatusIs(absl::StatusCode::kInvalidArgument,
                          "api_key_env: $UNDERSTUDY_NO_SUCH_VAR_X is unset or empty"));
  c = ParseYaml(absl::StrCat("upstreams: {production: {url: 'http://a', api_key_env: ", env_name_,
                             ", api_key_file: /x}}\n"));
  EXPECT_THAT(c, StatusIs(absl::StatusCode::kInvalidArgument, "not both"));
}

// Error messages never contain a key's value.
TEST_F(ShadowConfigTest, ErrorsNeverContainTheKey) {
  const std::string file = WriteKeyFile(key_ + "\n" + key_ + "\n");  // a line break inside
  absl::StatusOr<ShadowConfig> c = ParseYaml(
      absl::StrCat("upstreams: {production: {url: 'http://a', api_key_file: ", file, "}}\n"));
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(std::string(c.status().message()), HasSubstr("upstreams.production.api_key_file"));
  EXPECT_THAT(std::string(c.status().message()), Not(HasSubstr(key_)));
}

}  // namespace
}  // namespace understudy::shadow
