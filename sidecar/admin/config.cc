// ParseAdminConfig: the `admin:` section, and host:port parsing.
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
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

}  // namespace

absl::StatusOr<AdminConfig> ParseAdminConfig(const ConfigNode& section) {
  AdminConfig config;
  if (!section.IsDefined()) return config;
  if (!section.IsMap()) {
    return absl::InvalidArgumentError(
        absl::StrCat(section.Path().empty() ? "admin" : section.Path(), ": must be a map"));
  }
  RETURN_IF_ERROR(section.CheckKeys({"listen", "token_env", "token_file", "max_body_bytes"}));

  ASSIGN_OR_RETURN(config.listen, section.GetString("listen", config.listen));
  std::string host;
  int port = 0;
  if (absl::Status s = ParseHostPort(config.listen, &host, &port); !s.ok()) {
    return section.Error("listen", Sv(s.message()));
  }

  ASSIGN_OR_RETURN(config.max_body_bytes,
                   section.GetInt("max_body_bytes", config.max_body_bytes, 1024, 64 << 20));

  ASSIGN_OR_RETURN(std::string token_env, section.GetString("token_env", ""));
  ASSIGN_OR_RETURN(std::string token_file, section.GetString("token_file", ""));
  if (!token_env.empty() && !token_file.empty()) {
    return section.Error("token_file", "set token_env or token_file, not both");
  }
  if (!token_env.empty()) {
    const char* value = std::getenv(token_env.c_str());
    std::string token = value == nullptr ? "" : std::string(absl::StripAsciiWhitespace(value));
    if (!token.empty()) {
      if (!IsValidToken(token)) {
        return section.Error("token_env", absl::StrCat("the token in $", token_env,
                                                       " must be printable ASCII without spaces"));
      }
      config.token = std::move(token);
      config.token_source = absl::StrCat("env ", token_env);
    }
  } else if (!token_file.empty()) {
    std::ifstream in(token_file, std::ios::binary);
    if (!in) {
      int err = errno;
      return section.Error("token_file", absl::StrCat("cannot read ", token_file, ": ",
                                                      err != 0 ? std::strerror(err) : "error"));
    }
    std::ostringstream ss;
    ss << in.rdbuf();
    if (in.bad()) {
      return section.Error("token_file", absl::StrCat("cannot read ", token_file));
    }
    std::string token(absl::StripAsciiWhitespace(ss.str()));
    if (token.empty()) {
      return section.Error("token_file", absl::StrCat(token_file, " is empty"));
    }
    if (!IsValidToken(token)) {
      return section.Error("token_file", absl::StrCat("the token in ", token_file,
                                                      " must be printable ASCII without spaces"));
    }
    config.token = std::move(token);
    config.token_source = absl::StrCat("file ", token_file);
  }
  return config;
}

}  // namespace understudy::admin
