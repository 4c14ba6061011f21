// ParseAdminConfig: the `admin:` section, from YAML text.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "sidecar/admin/admin.h"
#include "tests/common/test_util.h"

namespace understudy::admin {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::understudy::testing::StatusIs;

class AdminConfigTest : public ::testing::Test {
 protected:
  ~AdminConfigTest() override {
    for (const std::string& p : files_) std::filesystem::remove(p);
    ::unsetenv(env_name_.c_str());
  }

  absl::StatusOr<AdminConfig> Parse(const std::string& yaml) {
    absl::StatusOr<ConfigNode> root = ConfigNode::Parse(yaml, "test.yaml");
    if (!root.ok()) return root.status();
    return ParseAdminConfig(root->Child("admin"));
  }

  std::string WriteFile(const std::string& contents) {
    std::string path = ::testing::TempDir() + "/admin_config_test_" + std::to_string(::getpid()) +
                       "_" + std::to_string(files_.size());
    std::ofstream(path) << contents;
    files_.push_back(path);
    return path;
  }

  // A token built at run time (nothing key-shaped in the tree).
  std::string Token() const { return "tok" + std::to_string(::getpid()) + "abc"; }

  std::vector<std::string> files_;
  std::string env_name_ = "UNDERSTUDY_ADMIN_TEST_TOKEN_" + std::to_string(::getpid());
};

// No admin section: the defaults, no auth.
TEST_F(AdminConfigTest, DefaultsWhenAbsent) {
  absl::StatusOr<AdminConfig> c = Parse("rollout: {}\n");
  ASSERT_OK(c);
  EXPECT_EQ(c->listen, "127.0.0.1:9901");
  EXPECT_EQ(c->token, "");
  EXPECT_EQ(c->max_body_bytes, 65536);
}

// Every key, with the token read from a file and trimmed.
TEST_F(AdminConfigTest, ParsesAllKeysWithTokenFile) {
  std::string path = WriteFile("\n  " + Token() + " \n");
  absl::StatusOr<AdminConfig> c =
      Parse("admin:\n  listen: 0.0.0.0:0\n  token_file: " + path + "\n  max_body_bytes: 2048\n");
  ASSERT_OK(c);
  EXPECT_EQ(c->listen, "0.0.0.0:0");
  EXPECT_EQ(c->token, Token());
  EXPECT_EQ(c->token_source, "file " + path);
  EXPECT_EQ(c->max_body_bytes, 2048);
}

// token_env reads the named variable.
TEST_F(AdminConfigTest, TokenFromEnvironment) {
  ::setenv(env_name_.c_str(), Token().c_str(), 1);
  absl::StatusOr<AdminConfig> c = Parse("admin:\n  token_env: " + env_name_ + "\n");
  ASSERT_OK(c);
  EXPECT_EQ(c->token, Token());
  EXPECT_EQ(c->token_source, "env " + env_name_);
  EXPECT_EQ(c->read_token, "");
  EXPECT_FALSE(c->metrics_public);
}

// A token_env naming an unset or empty variable is a startup error naming
// the key, not a silent "no auth" (a typo must not switch auth off).
TEST_F(AdminConfigTest, UnsetOrEmptyTokenVariableIsAnError) {
  const std::string yaml = "admin:\n  token_env: " + env_name_ + "\n";
  EXPECT_THAT(Parse(yaml), StatusIs(absl::StatusCode::kInvalidArgument,
                                    "admin.token_env: $" + env_name_ + " is unset or empty"));
  ::setenv(env_name_.c_str(), "  \n", 1);
  EXPECT_THAT(Parse(yaml), StatusIs(absl::StatusCode::kInvalidArgument,
                                    "admin.token_env: $" + env_name_ + " is unset or empty"));
}

// A read-only token, from a file or a variable, beside the admin token.
TEST_F(AdminConfigTest, ReadOnlyTokenFromFileOrEnvironment) {
  const std::string admin = WriteFile(Token());
  const std::string read = WriteFile("read-" + Token() + "\n");
  absl::StatusOr<AdminConfig> c = Parse("admin:\n  token_file: " + admin +
                                        "\n  read_token_file: " + read +
                                        "\n  metrics_public: true\n");
  ASSERT_OK(c);
  EXPECT_EQ(c->token, Token());
  EXPECT_EQ(c->read_token, "read-" + Token());
  EXPECT_EQ(c->read_token_source, "file " + read);
  EXPECT_TRUE(c->metrics_public);

  ::setenv(env_name_.c_str(), ("env-read-" + Token()).c_str(), 1);
  c = Parse("admin:\n  token_file: " + admin + "\n  read_token_env: " + env_name_ + "\n");
  ASSERT_OK(c);
  EXPECT_EQ(c->read_token, "env-read-" + Token());
  EXPECT_EQ(c->read_token_source, "env " + env_name_);
}

// The read-only token's sources are held to the same rules, and it only
// makes sense beside a different admin token.
TEST_F(AdminConfigTest, BadReadOnlyTokenConfigsNameTheKey) {
  const std::string admin = WriteFile(Token());
  EXPECT_THAT(Parse("admin:\n  token_file: " + admin + "\n  read_token_env: " + env_name_ + "\n"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "admin.read_token_env: $" + env_name_ + " is unset or empty"));
  EXPECT_THAT(Parse("admin:\n  token_file: " + admin +
                    "\n  read_token_file: /nonexistent/read-token\n"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "admin.read_token_file: cannot read /nonexistent/read-token"));
  EXPECT_THAT(Parse("admin:\n  token_file: " + admin + "\n  read_token_file: " + WriteFile("\n") +
                    "\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, "admin.read_token_file: "));
  const std::string read = WriteFile("read-" + Token());
  EXPECT_THAT(Parse("admin:\n  read_token_file: " + read + "\n"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "admin.read_token_file: a read-only token needs an admin token"));
  EXPECT_THAT(Parse("admin:\n  token_file: " + admin +
                    "\n  read_token_file: " + WriteFile(Token()) + "\n"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "admin.read_token_file: the read-only token must differ"));
  ::setenv(env_name_.c_str(), Token().c_str(), 1);
  EXPECT_THAT(Parse("admin:\n  token_file: " + admin + "\n  read_token_env: " + env_name_ +
                    "\n  read_token_file: " + read + "\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, "not both"));
  EXPECT_THAT(Parse("admin:\n  metrics_public: sometimes\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, "admin.metrics_public"));
}

// An unreadable token file is an error naming the key and the path.
TEST_F(AdminConfigTest, UnreadableTokenFile) {
  EXPECT_THAT(Parse("admin:\n  token_file: /nonexistent/understudy-token\n"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "admin.token_file: cannot read /nonexistent/understudy-token"));
}

// An empty token file is a mistake, not "no auth".
TEST_F(AdminConfigTest, EmptyTokenFile) {
  std::string path = WriteFile(" \n");
  EXPECT_THAT(
      Parse("admin:\n  token_file: " + path + "\n"),
      StatusIs(absl::StatusCode::kInvalidArgument, "admin.token_file: " + path + " is empty"));
}

// A token that cannot go in a header is refused, without echoing it.
TEST_F(AdminConfigTest, TokenWithSpacesIsRefusedWithoutEchoingIt) {
  std::string token = Token() + " " + Token();
  std::string path = WriteFile(token);
  absl::StatusOr<AdminConfig> c = Parse("admin:\n  token_file: " + path + "\n");
  EXPECT_THAT(c, StatusIs(absl::StatusCode::kInvalidArgument, "printable ASCII"));
  EXPECT_THAT(std::string(c.status().message()), Not(HasSubstr(Token())));
}

TEST_F(AdminConfigTest, BothTokenSourcesIsAnError) {
  std::string path = WriteFile(Token());
  EXPECT_THAT(Parse("admin:\n  token_env: X\n  token_file: " + path + "\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, "admin.token_file: set token_env or "
                                                           "token_file, not both"));
}

// Malformed listen addresses name admin.listen.
TEST_F(AdminConfigTest, BadListen) {
  for (const char* listen :
       {"9901", "127.0.0.1:", "127.0.0.1:70000", ":9901", "::1:9901", "127.0.0.1:http"}) {
    EXPECT_THAT(Parse(std::string("admin:\n  listen: \"") + listen + "\"\n"),
                StatusIs(absl::StatusCode::kInvalidArgument, "admin.listen: must be host:port"))
        << listen;
  }
  absl::StatusOr<AdminConfig> c = Parse("admin:\n  listen: \"[::1]:9901\"\n");
  ASSERT_OK(c);
}

TEST_F(AdminConfigTest, UnknownKeyAndBadTypes) {
  EXPECT_THAT(Parse("admin:\n  listn: 1.2.3.4:5\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, "admin.listn"));
  EXPECT_THAT(Parse("admin:\n  max_body_bytes: lots\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, "admin.max_body_bytes"));
  EXPECT_THAT(Parse("admin:\n  max_body_bytes: 10\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, "admin.max_body_bytes"));
  EXPECT_THAT(Parse("admin: [1, 2]\n"), StatusIs(absl::StatusCode::kInvalidArgument, "admin"));
}

TEST(ParseHostPortTest, SplitsHostAndPort) {
  std::string host;
  int port = -1;
  ASSERT_OK(ParseHostPort("localhost:0", &host, &port));
  EXPECT_EQ(host, "localhost");
  EXPECT_EQ(port, 0);
  ASSERT_OK(ParseHostPort("[::1]:9901", &host, &port));
  EXPECT_EQ(host, "::1");
  EXPECT_EQ(port, 9901);
}

}  // namespace
}  // namespace understudy::admin
