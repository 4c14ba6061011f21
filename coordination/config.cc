#include "coordination/config.h"

#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace understudy::coordination {

namespace {

// The etcd password from a variable or a file (never from the config
// itself, which is often in a ConfigMap). A named source that is unset,
// unreadable or empty is an error.
absl::StatusOr<std::string> Password(const ConfigNode& auth) {
  ASSIGN_OR_RETURN(ConfigNode::Secret password, auth.GetSecret("password_env", "password_file"));
  return std::move(password.value);
}

}  // namespace

absl::StatusOr<std::optional<FleetOptions>> ParseCoordinationConfig(const ConfigNode& node) {
  if (!node.IsDefined()) return std::optional<FleetOptions>();
  RETURN_IF_ERROR(node.CheckKeys({"etcd", "member"}));
  FleetOptions o;
  ASSIGN_OR_RETURN(o.member, node.GetString("member", ""));
  const ConfigNode etcd = node.Child("etcd");
  if (!etcd.IsDefined()) return node.Error("etcd", "required (the etcd that coordinates the fleet)");
  RETURN_IF_ERROR(etcd.CheckKeys(
      {"endpoints", "prefix", "lease_ttl", "request_timeout", "tls", "auth"}));
  ASSIGN_OR_RETURN(o.etcd.endpoints, etcd.GetStringList("endpoints"));
  if (o.etcd.endpoints.empty()) {
    return etcd.Error("endpoints", "at least one host:port is required");
  }
  ASSIGN_OR_RETURN(o.prefix, etcd.GetString("prefix", o.prefix));
  if (o.prefix.empty() || o.prefix[0] != '/') {
    return etcd.Error("prefix", absl::StrCat("must start with '/', got \"", o.prefix, "\""));
  }
  ASSIGN_OR_RETURN(o.lease_ttl, etcd.GetDuration("lease_ttl", o.lease_ttl));
  if (o.lease_ttl < absl::Seconds(1) || o.lease_ttl > absl::Minutes(10)) {
    return etcd.Error("lease_ttl", "must be in 1s..10m");
  }
  ASSIGN_OR_RETURN(o.etcd.request_timeout,
                   etcd.GetDuration("request_timeout", o.etcd.request_timeout));
  if (o.etcd.request_timeout <= absl::ZeroDuration() ||
      o.etcd.request_timeout > o.lease_ttl) {
    return etcd.Error("request_timeout", "must be positive and at most lease_ttl");
  }
  const ConfigNode tls = etcd.Child("tls");
  RETURN_IF_ERROR(tls.CheckKeys({"ca_file", "cert_file", "key_file"}));
  ASSIGN_OR_RETURN(o.etcd.ca_file, tls.GetString("ca_file", ""));
  ASSIGN_OR_RETURN(o.etcd.cert_file, tls.GetString("cert_file", ""));
  ASSIGN_OR_RETURN(o.etcd.key_file, tls.GetString("key_file", ""));
  o.etcd.tls = tls.IsDefined();
  if (o.etcd.cert_file.empty() != o.etcd.key_file.empty()) {
    return tls.Error(o.etcd.cert_file.empty() ? "cert_file" : "key_file",
                     "cert_file and key_file go together");
  }
  const ConfigNode auth = etcd.Child("auth");
  RETURN_IF_ERROR(auth.CheckKeys({"username", "password_env", "password_file"}));
  ASSIGN_OR_RETURN(o.etcd.username, auth.GetString("username", ""));
  ASSIGN_OR_RETURN(o.etcd.password, Password(auth));
  if (auth.IsDefined() && o.etcd.username.empty()) {
    return auth.Error("username", "required with auth");
  }
  // The client checks the rest (endpoint syntax, TLS files): its errors
  // name the key below `etcd`.
  absl::StatusOr<std::unique_ptr<EtcdClient>> probe = EtcdClient::Create(o.etcd);
  if (!probe.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(etcd.Path(), ".", probe.status().message()));
  }
  return std::optional<FleetOptions>(std::move(o));
}

}  // namespace understudy::coordination
