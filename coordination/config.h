// coordination/config.h
// The `coordination:` section of the sidecar's config (docs/fleet.md):
//
//   coordination:
//     member: ""                 # this replica's name; default host-pid-random
//     etcd:
//       endpoints: ["etcd-0.etcd:2379", "etcd-1.etcd:2379"]
//       prefix: /understudy/checkout-bot/   # one prefix per rollout
//       lease_ttl: 10s           # a silent replica is gone after this
//       request_timeout: 3s
//       tls: {ca_file: ..., cert_file: ..., key_file: ...}
//       auth: {username: understudy, password_env: ETCD_PASSWORD}  # or password_file
//
// Without the section the sidecar runs alone, exactly as before.
#ifndef UNDERSTUDY_COORDINATION_CONFIG_H_
#define UNDERSTUDY_COORDINATION_CONFIG_H_

#include <optional>

#include "absl/status/statusor.h"
#include "common/config_node.h"
#include "coordination/fleet.h"

namespace understudy::coordination {

// ParseCoordinationConfig reads the section (`node` is `coordination`);
// undefined → nullopt. Errors name the key path
// ("coordination.etcd.endpoints: at least one host:port is required").
[[nodiscard]] absl::StatusOr<std::optional<FleetOptions>> ParseCoordinationConfig(
    const ConfigNode& node);

}  // namespace understudy::coordination

#endif  // UNDERSTUDY_COORDINATION_CONFIG_H_
