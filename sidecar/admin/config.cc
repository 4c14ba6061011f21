// ParseAdminConfig: the `admin:` section, and host:port parsing.

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "common/strings.h"
#include "sidecar/admin/admin.h"

namespace understudy::admin {

absl::Status ParseHostPort(std::string_view listen, std::string* host, int* port) {
  auto bad = [&](std::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat(
        "must be host:port (e.g. 127.0.0.1:9901), got \"", Av(listen), "\": ", Av(why)));
  };
  size_t colon = listen.rfind(':');
  if (colon == std::string_view::npos) return bad("no port");
  std::string_view h = listen.substr(0, colon);
  std::string_view p = listen.substr(colon + 1);
  if (!h.empty() && h.front() == '[') {
    if (h.size() < 3 || h.back() != ']') return bad("unbalanced [ ] around an IPv6 address");
    h = h.substr(1, h.size() - 2);
  } else if (h.find(':') != std::string_view::npos) {
    return bad("write IPv6 addresses as [addr]:port");
  }
  if (h.empty()) return bad("empty host");
  int value = 0;
  if (p.empty() || p.find_first_not_of("0123456789") != std::string_view::npos || p.size() > 5 ||
      !absl::SimpleAtoi(Av(p), &value) || value > 65535) {
    return bad("port must be a number in 0..65535");
  }
  *host = std::string(h);
  *port = value;
  return absl::OkStatus();
}

namespace {

// A token goes into an HTTP header: visible ASCII only.
bool IsValidToken(std::string_view token) {
  for (char c : token) {
    if (c < 0x21 || c > 0x7e) return false;
  }
  return !token.empty();
}

// ReadToken reads the token named by `env_key` or `file_key`
// (ConfigNode::GetSecret), which goes into a header: visible ASCII only.
absl::StatusOr<ConfigNode::Secret> ReadToken(const ConfigNode& section, const char* env_key,
                                             const char* file_key) {
  ASSIGN_OR_RETURN(ConfigNode::Secret out, section.GetSecret(env_key, file_key));
  if (!out.value.empty() && !IsValidToken(out.value)) {
    return section.Error(section.Child(env_key).IsDefined() ? env_key : file_key,
                         absl::StrCat("the token from ", out.source,
                                      " must be printable ASCII without spaces"));
  }
  return out;
}

}  // namespace

absl::StatusOr<AdminConfig> ParseAdminConfig(const ConfigNode& section) {
  AdminConfig config;
  if (!section.IsDefined()) return config;
  if (!section.IsMap()) {
    return absl::InvalidArgumentError(
        absl::StrCat(section.Path().empty() ? "admin" : section.Path(), ": must be a map"));
  }
  RETURN_IF_ERROR(section.CheckKeys({"listen", "token_env", "token_file", "read_token_env",
                                     "read_token_file", "metrics_public", "max_body_bytes"}));

  ASSIGN_OR_RETURN(config.listen, section.GetString("listen", config.listen));
  std::string host;
  int port = 0;
  if (absl::Status s = ParseHostPort(config.listen, &host, &port); !s.ok()) {
    return section.Error("listen", Sv(s.message()));
  }

  ASSIGN_OR_RETURN(config.max_body_bytes,
                   section.GetInt("max_body_bytes", config.max_body_bytes, 1024, 64 << 20));
  ASSIGN_OR_RETURN(config.metrics_public, section.GetBool("metrics_public", false));

  ASSIGN_OR_RETURN(ConfigNode::Secret admin, ReadToken(section, "token_env", "token_file"));
  config.token = std::move(admin.value);
  config.token_source = std::move(admin.source);
  ASSIGN_OR_RETURN(ConfigNode::Secret read,
                   ReadToken(section, "read_token_env", "read_token_file"));
  if (!read.value.empty()) {
    const char* key = section.Child("read_token_env").IsDefined() ? "read_token_env"
                                                                  : "read_token_file";
    if (config.token.empty()) {
      return section.Error(key, "a read-only token needs an admin token (token_env or token_file)");
    }
    if (read.value == config.token) {
      return section.Error(key, "the read-only token must differ from the admin token");
    }
  }
  config.read_token = std::move(read.value);
  config.read_token_source = std::move(read.source);
  return config;
}

}  // namespace understudy::admin
