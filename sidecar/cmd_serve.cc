// `understudy serve` and `understudy check-config`.
#include <CLI/CLI.hpp>
#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <iostream>
#include <memory>

#include "absl/strings/str_format.h"
#include "sidecar/commands.h"
#include "sidecar/config.h"
#include "sidecar/ext_proc_service.h"
#include "sidecar/pipeline.h"

namespace understudy::sidecar {

namespace {

struct ServeArgs {
  std::string config;
  std::string listen;
  bool log_exchanges = false;
};

// QueueSink adapts the bounded queue to the ExchangeSink interface.
class QueueSink final : public ExchangeSink {
 public:
  explicit QueueSink(BoundedQueue<understudy::v1::Exchange>& queue) : queue_(queue) {}
  bool Submit(understudy::v1::Exchange&& exchange) override {
    return queue_.TrySubmit(std::move(exchange));
  }

 private:
  BoundedQueue<understudy::v1::Exchange>& queue_;
};

int RunServe(const ServeArgs& args) {
  absl::StatusOr<SidecarConfig> config = LoadSidecarConfig(args.config);
  if (!config.ok()) {
    std::cerr << "understudy serve: " << config.status().message() << "\n";
    return kExitUsage;
  }
  if (!args.listen.empty()) config->extproc.listen = args.listen;

  // Block the shutdown signals before any thread starts, so only sigwait
  // below sees them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  ExtProcStats stats;
  rollout::Router router(config->routing.salt, config->routing.weight_basis_points);
  BoundedQueue<understudy::v1::Exchange> queue(
      static_cast<size_t>(config->capture.queue_capacity), config->capture.workers,
      [log = args.log_exchanges](understudy::v1::Exchange e) {
        if (!log) return;
        std::fprintf(stderr, "exchange %s arm=%s status=%d path=%s latency_ms=%.1f%s\n",
                     e.request_id().c_str(), ArmName(e.arm()).c_str(), e.status_code(),
                     e.path().c_str(), e.end_offset_micros() / 1000.0,
                     e.incomplete() ? " incomplete" : "");
      });
  QueueSink sink(queue);
  ExtProcService service(config->session, router, sink, RealClock::Default(), stats);
  absl::StatusOr<std::unique_ptr<ExtProcServer>> server =
      ExtProcServer::Start(config->extproc, service);
  if (!server.ok()) {
    std::cerr << "understudy serve: " << server.status().message() << "\n";
    return kExitFailure;
  }
  std::printf("understudy: ext_proc listening on port %d%s (weight %.2f%%)\n", (*server)->port(),
              config->extproc.unix_socket.empty()
                  ? ""
                  : (" and unix:" + config->extproc.unix_socket).c_str(),
              router.WeightBasisPoints() / 100.0);
  std::fflush(stdout);

  int signal_number = 0;
  sigwait(&signals, &signal_number);
  std::fprintf(stderr, "understudy: signal %d, draining (up to %s)\n", signal_number,
               absl::FormatDuration(config->drain_timeout).c_str());
  (*server)->Drain(config->drain_timeout);
  queue.Close();
  std::fprintf(stderr,
               "understudy: stopped; streams=%llu messages=%llu exchanges=%llu dropped=%llu "
               "spurious=%llu malformed=%llu\n",
               (unsigned long long)stats.streams_started.Get(),
               (unsigned long long)stats.messages_received.Get(),
               (unsigned long long)stats.exchanges_submitted.Get(),
               (unsigned long long)stats.exchanges_dropped.Get(),
               (unsigned long long)stats.spurious_messages.Get(),
               (unsigned long long)stats.malformed_messages.Get());
  return kExitOk;
}

}  // namespace

void RegisterServeCommand(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<ServeArgs>();
  CLI::App* cmd = app.add_subcommand("serve", "Run the sidecar (ext_proc gRPC server)");
  cmd->add_option("--config", args->config, "YAML config file")->required();
  cmd->add_option("--listen", args->listen,
                  "Override extproc.listen (host:port; port 0 picks a free port)");
  cmd->add_flag("--log-exchanges", args->log_exchanges, "Print one line per exchange to stderr");
  cmd->callback([args, exit_code] { *exit_code = RunServe(*args); });
}

void RegisterCheckConfigCommand(CLI::App& app, int* exit_code) {
  auto file = std::make_shared<std::string>();
  auto output = std::make_shared<std::string>("text");
  CLI::App* cmd = app.add_subcommand("check-config", "Validate a config file and exit");
  cmd->add_option("FILE", *file, "YAML config file")->required();
  cmd->add_option("-o,--output", *output, "Output format: text or json")
      ->check(CLI::IsMember({"text", "json"}));
  cmd->callback([file, output, exit_code] {
    absl::StatusOr<SidecarConfig> config = LoadSidecarConfig(*file);
    if (*output == "json") {
      std::string message = config.ok() ? "" : std::string(config.status().message());
      std::string escaped;
      for (char c : message) {
        if (c == '"' || c == '\\') escaped += '\\';
        escaped += c;
      }
      std::printf("{\"ok\":%s,\"error\":\"%s\"}\n", config.ok() ? "true" : "false",
                  escaped.c_str());
    } else if (config.ok()) {
      std::printf("%s: ok\n", file->c_str());
    } else {
      std::fprintf(stderr, "%s\n", std::string(config.status().message()).c_str());
    }
    *exit_code = config.ok() ? kExitOk : kExitUsage;
  });
}

}  // namespace understudy::sidecar
