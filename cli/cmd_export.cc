// `understudy export`: dump stored records as JSON lines (protobuf JSON
// mapping), from a stopped sidecar's data directory or, read-only, from a
// running one (a RocksDB secondary instance: no lock is taken).
//
//   understudy export --data-dir /var/lib/understudy --since 24h
//       --kind comparisons --format jsonl > comparisons.jsonl
#include <CLI/CLI.hpp>

#include <fstream>
#include <iostream>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "cli/commands.h"
#include "storage/store.h"

namespace understudy::cli {
namespace {

// ParseSince accepts "all", absl durations ("90m", "1h30m", "45s") and
// days ("7d").
bool ParseSince(const std::string& text, absl::Duration* out) {
  if (text == "all") {
    *out = absl::InfiniteDuration();
    return true;
  }
  if (text.size() > 1 && text.back() == 'd') {
    int64_t days = 0;
    if (!absl::SimpleAtoi(text.substr(0, text.size() - 1), &days) || days < 0) return false;
    *out = absl::Hours(24 * days);
    return true;
  }
  return absl::ParseDuration(text, out) && *out >= absl::ZeroDuration();
}

}  // namespace

void RegisterExportCommand(CLI::App& app, int* exit_code) {
  struct Options {
    std::string data_dir = "./understudy-data";
    std::string since = "24h";
    std::string kind;
    std::string format = "jsonl";
    std::string output;
  };
  auto opts = std::make_shared<Options>();
  CLI::App* cmd = app.add_subcommand(
      "export",
      "Export stored records as JSON lines (works on a running sidecar's directory, read-only)");
  cmd->add_option("--data-dir", opts->data_dir, "Storage directory (storage.path in the config)")
      ->capture_default_str();
  cmd->add_option("--since", opts->since, "How far back: 30m, 24h, 7d or all")->capture_default_str();
  cmd->add_option("--kind", opts->kind, "comparisons|exchanges|decisions|feedback|health")
      ->required()
      ->check(CLI::IsMember({"comparisons", "exchanges", "decisions", "feedback", "health"}));
  cmd->add_option("--format", opts->format, "Output format (jsonl)")
      ->check(CLI::IsMember({"jsonl"}))
      ->capture_default_str();
  cmd->add_option("--output,-O", opts->output, "Write to this file instead of stdout");
  cmd->callback([opts, exit_code] {
    absl::Duration since;
    if (!ParseSince(opts->since, &since)) {
      std::cerr << "understudy export: --since: want a duration such as 30m, 24h, 7d or all; got \""
                << opts->since << "\"\n";
      *exit_code = kExitUsage;
      return;
    }
    absl::StatusOr<storage::RecordKind> kind = storage::ParseRecordKind(opts->kind);
    if (!kind.ok()) {
      std::cerr << "understudy export: --kind: " << kind.status().message() << "\n";
      *exit_code = kExitUsage;
      return;
    }
    absl::StatusOr<std::unique_ptr<storage::Store>> store =
        storage::OpenRocksStoreReadOnly(opts->data_dir);
    if (!store.ok()) {
      std::cerr << "understudy export: " << store.status().message() << "\n";
      *exit_code = kExitFailure;
      return;
    }
    std::ofstream file;
    std::ostream* out = &std::cout;
    if (!opts->output.empty()) {
      file.open(opts->output, std::ios::out | std::ios::trunc);
      if (!file) {
        std::cerr << "understudy export: cannot write " << opts->output << "\n";
        *exit_code = kExitFailure;
        return;
      }
      out = &file;
    }
    const absl::Time from =
        since == absl::InfiniteDuration() ? absl::InfinitePast() : absl::Now() - since;
    absl::StatusOr<int64_t> n = storage::ExportJsonl(**store, *kind, from, *out);
    if (!n.ok()) {
      std::cerr << "understudy export: " << n.status().message() << "\n";
      *exit_code = kExitFailure;
      return;
    }
    std::cerr << "understudy export: " << *n << " " << opts->kind << " records\n";
    *exit_code = kExitOk;
  });
}

}  // namespace understudy::cli
