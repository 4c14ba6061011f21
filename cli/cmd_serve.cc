// `understudy serve` and `understudy check-config`.
#include <CLI/CLI.hpp>
#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "absl/strings/str_format.h"
#include "cli/commands.h"
#include "common/json_util.h"
#include "sidecar/config.h"
#include "sidecar/ext_proc_service.h"
#include "sidecar/sidecar.h"

namespace understudy::cli {

namespace {

using sidecar::EngineStats;
using sidecar::ExtProcStats;
using sidecar::LoadSidecarConfig;
using sidecar::Sidecar;
using sidecar::SidecarConfig;
using sidecar::SidecarOptions;

struct ServeArgs {
  std::string config;
  std::string listen;
  std::string admin;
  std::string data;
  bool log_exchanges = false;
  bool reset_rollout = false;
};

int RunServe(const ServeArgs& args) {
  absl::StatusOr<SidecarConfig> config = LoadSidecarConfig(args.config);
  if (!config.ok()) {
    std::cerr << "understudy serve: " << config.status().message() << "\n";
    return kExitUsage;
  }
  for (const std::string& w : config->warnings) std::cerr << "understudy serve: warning: " << w << "\n";
  if (!args.listen.empty()) config->extproc.listen = args.listen;
  if (!args.admin.empty()) config->admin.listen = args.admin;
  if (!args.data.empty()) config->storage.path = args.data;

  // Block the shutdown signals before any thread starts, so only sigwait
  // below sees them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  const absl::Duration drain = config->drain_timeout;
  // The admin API's address as configured (the port may be 0: picked below).
  std::string admin_host = "127.0.0.1";
  int configured_port = 0;
  (void)admin::ParseHostPort(config->admin.listen, &admin_host, &configured_port);
  if (admin_host.find(':') != std::string::npos) admin_host = "[" + admin_host + "]";
  SidecarOptions options;
  options.log_exchanges = args.log_exchanges;
  options.reset_rollout = args.reset_rollout;
  absl::StatusOr<std::unique_ptr<Sidecar>> sidecar = Sidecar::Start(*std::move(config), options);
  if (!sidecar.ok()) {
    std::cerr << "understudy serve: " << sidecar.status().message() << "\n";
    return kExitFailure;
  }
  std::printf("understudy: ext_proc listening on port %d\n", (*sidecar)->extproc_port());
  if ((*sidecar)->admin_port() != 0) {
    std::printf("understudy: admin listening on %s:%d\n", admin_host.c_str(),
                (*sidecar)->admin_port());
  }
  std::printf("understudy: %s\n", (*sidecar)->StartupSummary().c_str());
  std::fflush(stdout);

  int signal_number = 0;
  sigwait(&signals, &signal_number);
  std::fprintf(stderr, "understudy: signal %d, draining (up to %s)\n", signal_number,
               absl::FormatDuration(drain).c_str());
  (*sidecar)->Shutdown(drain);
  const ExtProcStats& stats = (*sidecar)->extproc_stats();
  const EngineStats engine = (*sidecar)->engine().Stats();
  std::fprintf(stderr,
               "understudy: stopped; streams=%llu messages=%llu exchanges=%llu dropped=%llu "
               "spurious=%llu malformed=%llu comparisons=%lld\n",
               (unsigned long long)stats.streams_started.Get(),
               (unsigned long long)stats.messages_received.Get(),
               (unsigned long long)stats.exchanges_submitted.Get(),
               (unsigned long long)stats.exchanges_dropped.Get(),
               (unsigned long long)stats.spurious_messages.Get(),
               (unsigned long long)stats.malformed_messages.Get(),
               (long long)engine.comparisons);
  return kExitOk;
}

}  // namespace

void RegisterServeCommand(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<ServeArgs>();
  CLI::App* cmd = app.add_subcommand("serve", "Run the sidecar (ext_proc gRPC server)");
  cmd->add_option("--config", args->config, "YAML config file")->required();
  cmd->add_option("--listen", args->listen,
                  "Override extproc.listen (host:port; port 0 picks a free port)");
  cmd->add_option("--admin", args->admin, "Override admin.listen (host:port)");
  cmd->add_option("--data", args->data, "Override storage.path (the RocksDB directory)");
  cmd->add_flag("--log-exchanges", args->log_exchanges, "Print one line per exchange to stderr");
  cmd->add_flag("--reset-rollout", args->reset_rollout,
                "Begin the stage plan again even if a rollout is stored (the log is kept)");
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
      nlohmann::json out = {{"ok", config.ok()},
                            {"error", config.ok() ? "" : std::string(config.status().message())},
                            {"warnings", config.ok() ? config->warnings : std::vector<std::string>{}}};
      std::printf("%s\n", DumpJson(out).c_str());
    } else if (config.ok()) {
      for (const std::string& w : config->warnings) std::fprintf(stderr, "warning: %s\n", w.c_str());
      std::printf("%s: ok\n", file->c_str());
    } else {
      std::fprintf(stderr, "%s\n", std::string(config.status().message()).c_str());
    }
    *exit_code = config.ok() ? kExitOk : kExitUsage;
  });
}

}  // namespace understudy::cli
