// The `understudy` binary: one subcommand per job (see cli/commands.h).
#include <CLI/CLI.hpp>

#include <cstdio>

#include "cli/commands.h"

int main(int argc, char** argv) {
  using namespace understudy::cli;
  CLI::App app{"understudy: shadow, compare and roll out a candidate LLM behind Envoy"};
  app.require_subcommand(1);
  int exit_code = kExitOk;
  RegisterServeCommand(app, &exit_code);
  RegisterCheckConfigCommand(app, &exit_code);
  RegisterReplayCommand(app, &exit_code);
  RegisterCompareCommand(app, &exit_code);
  RegisterSimulateCommand(app, &exit_code);
  RegisterExportCommand(app, &exit_code);
  RegisterEvalCommand(app, &exit_code);
  RegisterAdminClientCommands(app, &exit_code);
  app.add_subcommand("version", "Print the version")->callback([] {
    std::printf("understudy 0.1.0\n");
  });
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return kExitUsage;
  }
  return exit_code;
}
