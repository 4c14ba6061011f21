// tests/support/etcd_process.h
// A real etcd (Debian's etcd-server) for fleet tests: one member on
// loopback ports picked free, data in a temporary directory that is
// removed with it. Stop and Start again keep the data (an etcd restart).
//
// Example:
//   absl::StatusOr<std::unique_ptr<EtcdProcess>> etcd = EtcdProcess::Start();
//   ASSERT_OK(etcd);
//   std::string endpoint = (*etcd)->endpoint();   // "127.0.0.1:40123"
//   (*etcd)->Stop();                              // SIGTERM, reaped
//   ASSERT_OK((*etcd)->Restart());               // same ports, same data
#ifndef UNDERSTUDY_TESTS_SUPPORT_ETCD_PROCESS_H_
#define UNDERSTUDY_TESTS_SUPPORT_ETCD_PROCESS_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "tests/support/subprocess.h"

namespace understudy::testing {

class EtcdProcess {
 public:
  // Start finds the etcd binary (PATH, then /usr/bin/etcd), starts it and
  // waits until it serves clients. FailedPrecondition when etcd is not
  // installed (scripts/install-deps.sh installs etcd-server).
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<EtcdProcess>> Start();
  ~EtcdProcess();  // kills it and removes the data directory

  std::string endpoint() const;  // host:port of the client URL
  // Stop ends it with SIGTERM (SIGKILL with kill=true) and reaps it.
  void Stop(bool kill = false);
  // Restart starts it again on the same ports and data directory.
  [[nodiscard]] absl::Status Restart();
  std::string Errors() const;

 private:
  EtcdProcess() = default;
  absl::Status Launch();
  std::string binary_, dir_;
  int client_port_ = 0, peer_port_ = 0;
  std::unique_ptr<Subprocess> process_;
};

// FreeLoopbackPort returns a TCP port on 127.0.0.1 that was free a moment
// ago (bound to port 0, then closed).
int FreeLoopbackPort();

}  // namespace understudy::testing

#endif  // UNDERSTUDY_TESTS_SUPPORT_ETCD_PROCESS_H_
