// cli/commands.h
// The `understudy` binary's subcommands. Each Register*Command adds one
// subcommand to `app`; when it runs, its callback stores the process exit
// code in *exit_code: 0 success, 2 bad usage or bad config, 1 other failure.
// Machine-readable output is selected with `-o json`.
#ifndef UNDERSTUDY_CLI_COMMANDS_H_
#define UNDERSTUDY_CLI_COMMANDS_H_

#include <iosfwd>

namespace CLI {
class App;
}  // namespace CLI

namespace understudy::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;

void RegisterServeCommand(CLI::App& app, int* exit_code);        // cmd_serve.cc
void RegisterCheckConfigCommand(CLI::App& app, int* exit_code);  // cmd_serve.cc
void RegisterReplayCommand(CLI::App& app, int* exit_code);       // cmd_replay.cc
void RegisterCompareCommand(CLI::App& app, int* exit_code);      // cmd_compare.cc
void RegisterSimulateCommand(CLI::App& app, int* exit_code);     // cmd_simulate.cc
void RegisterExportCommand(CLI::App& app, int* exit_code);       // cmd_export.cc

// RegisterEvalCommand adds `understudy eval --config FILE --dataset
// golden.jsonl [--concurrency N] [-o json] [--store]`: sends every dataset
// request to both upstreams, compares the answers (and each with the
// optional reference) and prints a per-arm table (or one JSON object).
void RegisterEvalCommand(CLI::App& app, int* exit_code);  // cmd_eval.cc

// RegisterAdminClientCommands adds the subcommands that talk to a running
// sidecar's admin API (sidecar/admin/admin.h): status, promote [--to-full],
// pause [--reason], resume, rollback --reason TEXT, set-weight PERCENT,
// diffs [--limit N] [--verdict V] and report [--format md|json|html]. Each
// takes --admin URL (default $UNDERSTUDY_ADMIN or http://127.0.0.1:9901),
// --token-file FILE (default: the token in $UNDERSTUDY_ADMIN_TOKEN, else
// the file $UNDERSTUDY_ADMIN_TOKEN_FILE names), sent on every call,
// -o text|json, and the mutating ones --actor NAME (default $USER, else
// "cli"). Exit codes: 0 ok; 2 bad usage or a 4xx answer (the server's
// message is printed); 1 when the server cannot be reached or answers 5xx
// (the message names the URL). admin_client.cc.
void RegisterAdminClientCommands(CLI::App& app, int* exit_code);
// The same, writing to `out`/`err` instead of stdout/stderr (tests).
// The streams must outlive `app`.
void RegisterAdminClientCommands(CLI::App& app, int* exit_code, std::ostream& out,
                                 std::ostream& err);

}  // namespace understudy::cli

#endif  // UNDERSTUDY_CLI_COMMANDS_H_
