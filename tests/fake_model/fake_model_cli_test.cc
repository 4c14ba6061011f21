// The `fake-model` executable's flags: what is strict by default, the key
// sources, the API mode, compression and embedding length.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "tests/common/test_util.h"
#include "tests/support/subprocess.h"

namespace understudy::fake_model {
namespace {

using Json = nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;

Json Chat(const std::string& model) {
  return Json{{"model", model},
              {"messages",
               Json::array({{{"role", "user"}, {"content", "What is the capital of France?"}}})}};
}

// A running fake-model process and a client to it.
class Fake {
 public:
  explicit Fake(std::vector<std::string> flags, std::map<std::string, std::string> env = {}) {
    std::vector<std::string> argv = {FAKE_MODEL_BIN, "--port", "0"};
    argv.insert(argv.end(), flags.begin(), flags.end());
    absl::StatusOr<std::unique_ptr<testing::Subprocess>> p = testing::Subprocess::Start(argv, env);
    EXPECT_OK(p);
    if (!p.ok()) return;
    process_ = *std::move(p);
    absl::StatusOr<int> port = process_->WaitForPort("listening on 127.0.0.1:", absl::Seconds(15));
    EXPECT_OK(port);
    if (!port.ok()) return;
    client_ = std::make_unique<httplib::Client>("127.0.0.1", *port);
    client_->set_read_timeout(30, 0);
  }
  ~Fake() {
    if (process_ != nullptr) {
      process_->Kill(SIGTERM);
      EXPECT_EQ(process_->Wait(absl::Seconds(10)), 0);
    }
  }
  bool ok() const { return client_ != nullptr; }
  int Post(const std::string& path, const Json& body, const httplib::Headers& headers = {}) {
    httplib::Result res = client_->Post(path.c_str(), headers, body.dump(), "application/json");
    last_body_ = res ? res->body : "";
    last_headers_ = res ? res->headers : httplib::Headers{};
    return res ? res->status : -1;
  }
  int Chat(const std::string& model, const httplib::Headers& headers = {}) {
    return Post("/v1/chat/completions", fake_model::Chat(model), headers);
  }
  const std::string& body() const { return last_body_; }
  std::string header(const std::string& name) const {
    auto it = last_headers_.find(name);
    return it == last_headers_.end() ? "" : it->second;
  }
  testing::Subprocess& process() { return *process_; }

 private:
  std::unique_ptr<testing::Subprocess> process_;
  std::unique_ptr<httplib::Client> client_;
  std::string last_body_;
  httplib::Headers last_headers_;
};

// No --model: today's behaviour, any model name is served.
TEST(FakeModelCliTest, WithoutModelAnyNameIsServed) {
  Fake fake({"--seed", "1"});
  ASSERT_TRUE(fake.ok());
  EXPECT_EQ(fake.Chat("gpt-4o"), 200);
  EXPECT_EQ(fake.Chat("anything"), 200);
}

// --model makes the check strict; --accept-model adds aliases;
// --any-model turns the check off.
TEST(FakeModelCliTest, NamingTheModelMakesTheCheckStrict) {
  {
    Fake fake({"--model", "cand-1"});
    ASSERT_TRUE(fake.ok());
    EXPECT_EQ(fake.Chat("cand-1"), 200);
    EXPECT_EQ(fake.Chat("gpt-4o"), 404);
    EXPECT_EQ(Json::parse(fake.body())["error"]["code"], "model_not_found");
  }
  {
    Fake fake({"--model", "cand-1", "--accept-model", "gpt-4o,gpt-4o-mini", "--accept-model",
               "cand-1-2025"});
    ASSERT_TRUE(fake.ok());
    for (const char* m : {"cand-1", "gpt-4o", "gpt-4o-mini", "cand-1-2025"})
      EXPECT_EQ(fake.Chat(m), 200) << m;
    EXPECT_EQ(Json::parse(fake.body())["model"], "cand-1");
    EXPECT_EQ(fake.Chat("gpt-5"), 404);
  }
  {
    Fake fake({"--model", "cand-1", "--any-model"});
    ASSERT_TRUE(fake.ok());
    EXPECT_EQ(fake.Chat("gpt-4o"), 200);
  }
}

// --api-key-env reads the key from the environment; it is never printed.
TEST(FakeModelCliTest, ApiKeyFromTheEnvironmentIsRequiredAndNotLogged) {
  const std::string key = "sk-cli-test-5f0e2d9c";
  Fake fake({"--model", "gpt-4o", "--api-key-env", "FAKE_MODEL_TEST_KEY"},
            {{"FAKE_MODEL_TEST_KEY", key}});
  ASSERT_TRUE(fake.ok());
  EXPECT_EQ(fake.Chat("gpt-4o"), 401);
  EXPECT_EQ(fake.Chat("gpt-4o", {{"Authorization", "Bearer nope"}}), 401);
  EXPECT_EQ(fake.Chat("gpt-4o", {{"Authorization", "Bearer " + key}}), 200);
  fake.process().Kill(SIGTERM);
  EXPECT_EQ(fake.process().Wait(absl::Seconds(10)), 0);
  EXPECT_THAT(fake.process().Output(), Not(HasSubstr(key)));
  EXPECT_THAT(fake.process().Errors(), Not(HasSubstr(key)));
}

// Bad key flags exit 2 and name the variable, not a value.
TEST(FakeModelCliTest, BadKeyFlagsExit2) {
  absl::StatusOr<testing::CommandResult> r = testing::RunCommand(
      {FAKE_MODEL_BIN, "--port", "0", "--api-key-env", "FAKE_MODEL_UNSET_VAR_X"},
      absl::Seconds(20));
  ASSERT_OK(r);
  EXPECT_EQ(r->exit_code, 2);
  EXPECT_THAT(r->err, HasSubstr("FAKE_MODEL_UNSET_VAR_X"));
  r = testing::RunCommand({FAKE_MODEL_BIN, "--port", "0", "--api-key", "a", "--api-key-env", "B"},
                          absl::Seconds(20));
  ASSERT_OK(r);
  EXPECT_EQ(r->exit_code, 2);
  r = testing::RunCommand({FAKE_MODEL_BIN, "--port", "0", "--api", "gemini"}, absl::Seconds(20));
  ASSERT_OK(r);
  EXPECT_EQ(r->exit_code, 2);
}

// --api anthropic with a key file: /v1/messages needs x-api-key and
// anthropic-version; the OpenAI paths are gone.
TEST(FakeModelCliTest, AnthropicModeWithKeyFile) {
  const std::string dir = ::testing::TempDir();
  const std::string key_file = dir + "/fake_model_cli_key";
  {
    std::ofstream out(key_file);
    out << "sk-ant-cli-test\n";
  }
  Fake fake({"--api", "anthropic", "--model", "claude-sonnet-4-5", "--api-key-file", key_file});
  ASSERT_TRUE(fake.ok());
  const Json request = {{"model", "claude-sonnet-4-5"},
                        {"max_tokens", 100},
                        {"messages", Json::array({{{"role", "user"}, {"content", "Hi"}}})}};
  EXPECT_EQ(fake.Post("/v1/messages", request, {{"anthropic-version", "2023-06-01"}}), 401);
  EXPECT_EQ(fake.Post("/v1/messages", request, {{"x-api-key", "sk-ant-cli-test"}}), 400);
  EXPECT_EQ(fake.Post("/v1/messages", request,
                      {{"x-api-key", "sk-ant-cli-test"}, {"anthropic-version", "2023-06-01"}}),
            200);
  EXPECT_EQ(Json::parse(fake.body())["type"], "message");
  EXPECT_EQ(fake.Chat("claude-sonnet-4-5"), 404);
  EXPECT_EQ(Json::parse(fake.body())["type"], "error");
}

// --compress and --embedding-dim.
TEST(FakeModelCliTest, CompressAndEmbeddingDim) {
  Fake fake({"--model", "emb", "--compress", "--embedding-dim", "8"});
  ASSERT_TRUE(fake.ok());
  EXPECT_EQ(fake.Post("/v1/embeddings", Json{{"model", "emb"}, {"input", "hi"}},
                      {{"Accept-Encoding", "identity"}}),
            200);
  EXPECT_EQ(Json::parse(fake.body())["data"][0]["embedding"].size(), 8u);
  EXPECT_EQ(fake.Chat("emb", {{"Accept-Encoding", "gzip"}}), 200);
  EXPECT_EQ(fake.header("Content-Encoding"), "gzip");
}

}  // namespace
}  // namespace understudy::fake_model
