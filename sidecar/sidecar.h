// sidecar/sidecar.h
// The whole process, assembled: storage, the rollout controller and its
// router, the exchange engine, the shadow client, the ext_proc server, the
// admin API, metrics and traces. `understudy serve` is a thin wrapper around
// it, and end-to-end tests start one in-process.
//
// Example (given const std::string& path):
//   ASSIGN_OR_RETURN(SidecarConfig config, LoadSidecarConfig(path));
//   ASSIGN_OR_RETURN(std::unique_ptr<Sidecar> sidecar, Sidecar::Start(config, {}));
//   int extproc = sidecar->extproc_port(), admin = sidecar->admin_port();
//   sidecar->Shutdown(absl::Seconds(10));
//
// Start order: storage (and the saved rollout state) first, so the first
// routed request already sees the restored weight; the ext_proc server
// last. Shutdown runs the other way: stop taking streams, let in-flight
// ones finish, stop mirroring, drain the pipeline, close storage.
#ifndef UNDERSTUDY_SIDECAR_SIDECAR_H_
#define UNDERSTUDY_SIDECAR_SIDECAR_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "rollout/rollout.h"
#include "sidecar/config.h"
#include "sidecar/engine.h"
#include "sidecar/stats.h"
#include "storage/store.h"

namespace understudy::sidecar {

struct SidecarOptions {
  // Start afresh at the first stage even if a rollout state is stored (the
  // stored decision log is kept). Needed when the stage plan changed.
  bool reset_rollout = false;
  // Print one line per exchange to stderr.
  bool log_exchanges = false;
  Clock* clock = nullptr;  // null → the real clock
};

class Sidecar {
 public:
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Sidecar>> Start(SidecarConfig config,
                                                                      SidecarOptions options);
  ~Sidecar();
  Sidecar(const Sidecar&) = delete;
  Sidecar& operator=(const Sidecar&) = delete;

  int extproc_port() const;
  int admin_port() const;  // 0 when the admin API is off
  std::string StartupSummary() const;

  Engine& engine();
  rollout::Controller& controller();
  storage::Store& store();
  const ExtProcStats& extproc_stats() const;

  // Shutdown drains within `drain` and stops everything; idempotent.
  void Shutdown(absl::Duration drain);

 private:
  Sidecar();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace understudy::sidecar

#endif  // UNDERSTUDY_SIDECAR_SIDECAR_H_
