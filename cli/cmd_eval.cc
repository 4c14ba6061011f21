// `understudy eval --config FILE --dataset golden.jsonl [--concurrency N]
// [-o json] [--store]`: a thin wrapper over the eval engine (shadow/eval.h,
// which `serve` also runs on a schedule): runs the dataset against
// production and candidate and prints a per-arm table or one JSON object;
// --store writes the exchanges and comparisons.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/strings.h"
#include "cli/commands.h"
#include "rollout/rollout.h"
#include "shadow/eval.h"
#include "shadow/shadow.h"
#include "storage/store.h"

namespace understudy::cli {

namespace {

using shadow::ParseShadowConfig;
using shadow::ShadowConfig;

struct EvalArgs {
  std::string config_file;
  std::string dataset_file;
  std::string output = "text";
  int concurrency = 0;
  bool store = false;
};

constexpr int kArms = shadow::kEvalArms;
// ArmKey names arm `a` (an index into kEvalArmOrder) in the JSON output.
std::string ArmKey(int a) { return std::string(rollout::ArmName(shadow::kEvalArmOrder[a])); }

nlohmann::json OptNumber(std::optional<double> v) {
  return v.has_value() ? nlohmann::json(*v) : nlohmann::json(nullptr);
}

double Ratio(int64_t a, int64_t b) { return b == 0 ? 0.0 : static_cast<double>(a) / b; }

using shadow::EvalArmStats;
using shadow::EvalReport;
auto Quantile = shadow::EvalQuantile;
auto CostPer = shadow::EvalCostPer;

// ResultRow is one item's line in the JSON "results".
nlohmann::json ResultRow(const shadow::EvalItemResult& res) {
  nlohmann::json row = {{"id", res.item->id}};
  for (int a = 0; a < kArms; ++a) {
    if (!res.results[a].has_value()) continue;
    row[ArmKey(a)] = std::string(rollout::OutcomeClassName(res.results[a]->outcome));
    if (!res.reference_verdict[a].empty()) {
      row[ArmKey(a) + "_reference"] = res.reference_verdict[a];
    }
  }
  if (res.comparison.has_value()) {
    row["verdict"] = std::string(compare::VerdictName(res.comparison->verdict()));
  }
  return row;
}

nlohmann::json ToJson(const EvalReport& r, bool stored) {
  nlohmann::json out;
  out["dataset"] = r.dataset;
  out["items"] = r.items;
  for (int a = 0; a < kArms; ++a) {
    const EvalArmStats& s = r.arms[a];
    nlohmann::json arm;
    arm["url"] = s.url;
    arm["requests"] = s.requests;
    arm["successes"] = s.successes;
    arm["errors"] = s.requests - s.successes;
    arm["error_rate"] = Ratio(s.requests - s.successes, s.requests);
    arm["outcomes"] = s.outcomes;
    arm["latency_ms"] = {{"p50", OptNumber(Quantile(s.latency_ms, 0.5))},
                         {"p95", OptNumber(Quantile(s.latency_ms, 0.95))}};
    arm["ttft_ms"] = {{"p50", OptNumber(Quantile(s.ttft_ms, 0.5))},
                      {"p95", OptNumber(Quantile(s.ttft_ms, 0.95))}};
    arm["tokens_in_per_request"] = Ratio(s.tokens_in, s.with_usage);
    arm["tokens_out_per_request"] = Ratio(s.tokens_out, s.with_usage);
    arm["cost_per_request"] = OptNumber(CostPer(s, s.requests));
    arm["cost_per_success"] = OptNumber(CostPer(s, s.successes));
    arm["reference"] = {
        {"items", s.reference_items},
        {"agree", s.reference_agree},
        {"rate", s.reference_items == 0
                     ? nlohmann::json(nullptr)
                     : nlohmann::json(Ratio(s.reference_agree, s.reference_items))}};
    out["arms"][ArmKey(a)] = std::move(arm);
  }
  out["comparison"] = {
      {"compared", r.compared},
      {"agreeing", r.agreeing},
      {"agreement_rate",
       r.compared == 0 ? nlohmann::json(nullptr) : nlohmann::json(Ratio(r.agreeing, r.compared))},
      {"verdicts", r.verdicts}};
  nlohmann::json results = nlohmann::json::array();
  for (const shadow::EvalItemResult& res : r.results) results.push_back(ResultRow(res));
  out["results"] = std::move(results);
  out["stored"] = stored;
  return out;
}

std::string Ms(std::optional<double> v) {
  return v.has_value() ? absl::StrFormat("%.1f", *v) : "-";
}

std::string Money(std::optional<double> v) {
  return v.has_value() ? absl::StrFormat("%.6f", *v) : "-";
}

void PrintTable(const EvalReport& r, bool stored, std::ostream& os) {
  const EvalArmStats& p = r.arms[0];
  const EvalArmStats& c = r.arms[1];
  os << "eval: " << r.items << " requests from " << r.dataset << "\n\n";
  auto row = [&os](std::string_view name, const std::string& a, const std::string& b) {
    os << absl::StrFormat("%-24s %16s %16s\n", Av(name), a, b);
  };
  row("", ArmKey(0), ArmKey(1));
  row("requests", absl::StrCat(p.requests), absl::StrCat(c.requests));
  row("errors", absl::StrCat(p.requests - p.successes), absl::StrCat(c.requests - c.successes));
  row("error rate", absl::StrFormat("%.1f%%", 100 * Ratio(p.requests - p.successes, p.requests)),
      absl::StrFormat("%.1f%%", 100 * Ratio(c.requests - c.successes, c.requests)));
  row("latency p50 (ms)", Ms(Quantile(p.latency_ms, 0.5)), Ms(Quantile(c.latency_ms, 0.5)));
  row("latency p95 (ms)", Ms(Quantile(p.latency_ms, 0.95)), Ms(Quantile(c.latency_ms, 0.95)));
  row("ttft p50 (ms)", Ms(Quantile(p.ttft_ms, 0.5)), Ms(Quantile(c.ttft_ms, 0.5)));
  row("ttft p95 (ms)", Ms(Quantile(p.ttft_ms, 0.95)), Ms(Quantile(c.ttft_ms, 0.95)));
  row("tokens in / request", absl::StrFormat("%.1f", Ratio(p.tokens_in, p.with_usage)),
      absl::StrFormat("%.1f", Ratio(c.tokens_in, c.with_usage)));
  row("tokens out / request", absl::StrFormat("%.1f", Ratio(p.tokens_out, p.with_usage)),
      absl::StrFormat("%.1f", Ratio(c.tokens_out, c.with_usage)));
  row("cost / request", Money(CostPer(p, p.requests)), Money(CostPer(c, c.requests)));
  row("cost / success", Money(CostPer(p, p.successes)), Money(CostPer(c, c.successes)));
  auto ref = [](const EvalArmStats& s) -> std::string {
    if (s.reference_items == 0) return "-";
    return absl::StrFormat("%d/%d %.1f%%", s.reference_agree, s.reference_items,
                           100 * Ratio(s.reference_agree, s.reference_items));
  };
  row("reference agreement", ref(p), ref(c));
  os << "\nproduction vs candidate: ";
  if (r.compared == 0) {
    os << "no comparison (no request answered on both sides)\n";
  } else {
    os << absl::StrFormat("agreement %.1f%% (%d of %d compared)\n",
                          100 * Ratio(r.agreeing, r.compared), r.agreeing, r.compared);
  }
  os << "verdicts:";
  for (const auto& [name, count] : r.verdicts) os << " " << name << "=" << count;
  os << "\n";
  for (const auto& [name, count] : p.outcomes) {
    if (name != "ok") os << "production " << name << ": " << count << "\n";
  }
  for (const auto& [name, count] : c.outcomes) {
    if (name != "ok") os << "candidate " << name << ": " << count << "\n";
  }
  if (stored) os << "stored exchanges and comparisons\n";
}

int Run(const EvalArgs& args) {
  auto fail = [](int code, absl::string_view message) {
    std::cerr << "understudy eval: " << message << "\n";
    return code;
  };
  absl::StatusOr<ConfigNode> root = ConfigNode::ParseFile(args.config_file);
  if (!root.ok()) return fail(kExitUsage, root.status().message());
  absl::StatusOr<ShadowConfig> parsed = ParseShadowConfig(*root);
  if (!parsed.ok()) return fail(kExitUsage, parsed.status().message());
  ShadowConfig config = *std::move(parsed);
  if (config.production.url.empty()) {
    return fail(kExitUsage, "upstreams.production.url: required for eval");
  }
  if (config.candidate.url.empty()) {
    return fail(kExitUsage, "upstreams.candidate.url: required for eval");
  }
  absl::StatusOr<compare::CompareOptions> options =
      compare::ParseCompareOptions(root->Child("compare"));
  if (!options.ok()) return fail(kExitUsage, options.status().message());
  std::optional<storage::StorageConfig> storage_config;
  if (args.store) {
    absl::StatusOr<storage::StorageConfig> sc = storage::ParseStorageConfig(root->Child("storage"));
    if (!sc.ok()) return fail(kExitUsage, sc.status().message());
    storage_config = *std::move(sc);
  }
  if (args.concurrency < 0) return fail(kExitUsage, "--concurrency: must be at least 1");
  absl::StatusOr<std::vector<shadow::EvalItem>> dataset = shadow::LoadEvalDataset(args.dataset_file);
  if (!dataset.ok()) return fail(kExitUsage, dataset.status().message());
  const std::vector<shadow::EvalItem>& items = *dataset;

  shadow::EvalRunOptions run;
  run.dataset = args.dataset_file;
  run.concurrency = args.concurrency;
  absl::StatusOr<EvalReport> evaluated = shadow::RunEval(config, *options, items, run);
  if (!evaluated.ok()) {
    return fail(kExitFailure, evaluated.status().message());
  }
  EvalReport& report = *evaluated;
  bool stored = false;

  if (storage_config.has_value()) {
    absl::StatusOr<std::unique_ptr<storage::Store>> store =
        storage::OpenRocksStore(*storage_config, RealClock::Default());
    if (!store.ok()) return fail(kExitFailure, store.status().message());
    constexpr size_t kBatch = 64;
    storage::RecordBatch batch;
    for (size_t i = 0; i < items.size(); ++i) {
      shadow::EvalItemResult& res = report.results[i];
      for (int a = 0; a < kArms; ++a) {
        if (!res.results[a].has_value()) continue;
        v1::Exchange ex = res.results[a]->exchange;
        ex.set_request_id(items[i].id);
        ex.set_arm(shadow::kEvalArmOrder[a]);
        ex.set_source(v1::SOURCE_EVAL);
        batch.Add(std::move(ex));
      }
      if (res.comparison.has_value()) batch.Add(std::move(*res.comparison));
      if (batch.size() >= kBatch || i + 1 == items.size()) {
        if (absl::Status s = (*store)->Write(std::move(batch)); !s.ok()) {
          return fail(kExitFailure, s.message());
        }
        batch = storage::RecordBatch();
      }
    }
    stored = true;
  }

  if (args.output == "json") {
    std::cout << ToJson(report, stored).dump(2, ' ', false, nlohmann::json::error_handler_t::replace)
              << "\n";
  } else {
    PrintTable(report, stored, std::cout);
  }
  std::cout.flush();
  return kExitOk;
}

}  // namespace

void RegisterEvalCommand(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<EvalArgs>();
  CLI::App* cmd = app.add_subcommand(
      "eval", "Send a golden dataset to production and candidate and compare the answers");
  cmd->add_option("--config", args->config_file,
                  "YAML config (upstreams, shadow, compare, storage)")
      ->required();
  cmd->add_option("--dataset", args->dataset_file,
                  "JSON Lines: {\"id\",\"request\",\"reference\",\"path\"} per line")
      ->required();
  cmd->add_option("--concurrency", args->concurrency,
                  "requests in flight per upstream (default shadow.max_concurrency)");
  cmd->add_option("-o,--output", args->output, "output format")
      ->check(CLI::IsMember({"text", "json"}));
  cmd->add_flag("--store", args->store,
                "write exchanges (source eval) and comparisons to the configured storage");
  cmd->callback([args, exit_code] { *exit_code = Run(*args); });
}

}  // namespace understudy::cli
