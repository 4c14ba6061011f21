// sidecar/commands.h
// The `understudy` binary's subcommands. Each Register*Command adds one
// subcommand to `app`; when it runs, its callback stores the process exit
// code in *exit_code: 0 success, 2 bad usage or bad config, 1 other failure.
// Machine-readable output is selected with `-o json`.
#ifndef UNDERSTUDY_SIDECAR_COMMANDS_H_
#define UNDERSTUDY_SIDECAR_COMMANDS_H_

namespace CLI {
class App;
}  // namespace CLI

namespace understudy::sidecar {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;

void RegisterServeCommand(CLI::App& app, int* exit_code);        // cmd_serve.cc
void RegisterCheckConfigCommand(CLI::App& app, int* exit_code);  // cmd_serve.cc
void RegisterReplayCommand(CLI::App& app, int* exit_code);       // cmd_replay.cc
void RegisterCompareCommand(CLI::App& app, int* exit_code);      // cmd_compare.cc
void RegisterSimulateCommand(CLI::App& app, int* exit_code);     // cmd_simulate.cc
void RegisterExportCommand(CLI::App& app, int* exit_code);       // cmd_export.cc

}  // namespace understudy::sidecar

#endif  // UNDERSTUDY_SIDECAR_COMMANDS_H_
