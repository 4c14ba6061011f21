#include "tests/support/etcd_process.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>

#include "absl/strings/str_cat.h"

namespace understudy::testing {

int FreeLoopbackPort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  close(fd);
  return port;
}

absl::StatusOr<std::unique_ptr<EtcdProcess>> EtcdProcess::Start() {
  std::unique_ptr<EtcdProcess> e(new EtcdProcess());
  for (const char* candidate : {"/usr/bin/etcd", "/usr/local/bin/etcd"}) {
    if (access(candidate, X_OK) == 0) e->binary_ = candidate;
  }
  if (e->binary_.empty()) {
    return absl::FailedPreconditionError(
        "etcd is not installed (apt-get install etcd-server; scripts/install-deps.sh does)");
  }
  e->dir_ = MakeTempDir("understudy-etcd");
  e->client_port_ = FreeLoopbackPort();
  e->peer_port_ = FreeLoopbackPort();
  if (absl::Status s = e->Launch(); !s.ok()) return s;
  return e;
}

absl::Status EtcdProcess::Launch() {
  const std::string client = absl::StrCat("http://127.0.0.1:", client_port_);
  const std::string peer = absl::StrCat("http://127.0.0.1:", peer_port_);
  absl::StatusOr<std::unique_ptr<Subprocess>> p = Subprocess::Start(
      {binary_, "--name", "understudy-test", "--data-dir", dir_ + "/data",
       "--listen-client-urls", client, "--advertise-client-urls", client,
       "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
       "--initial-cluster", absl::StrCat("understudy-test=", peer),
       "--initial-cluster-state", "new", "--logger", "zap", "--log-outputs", "stderr"});
  if (!p.ok()) return p.status();
  process_ = *std::move(p);
  if (!process_->WaitForOutput("serving client traffic", absl::Seconds(30))) {
    return absl::UnavailableError(absl::StrCat("etcd did not start: ", process_->Errors()));
  }
  return absl::OkStatus();
}

EtcdProcess::~EtcdProcess() {
  Stop(/*kill=*/true);
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

std::string EtcdProcess::endpoint() const { return absl::StrCat("127.0.0.1:", client_port_); }

void EtcdProcess::Stop(bool kill) {
  if (process_ == nullptr) return;
  process_->Kill(kill ? SIGKILL : SIGTERM);
  (void)process_->Wait(absl::Seconds(20));
}

absl::Status EtcdProcess::Restart() {
  Stop();
  return Launch();
}

std::string EtcdProcess::Errors() const { return process_ ? process_->Errors() : ""; }

}  // namespace understudy::testing
