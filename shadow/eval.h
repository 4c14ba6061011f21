// shadow/eval.h
// The golden-set eval engine: loads a dataset (JSON Lines), sends each item
// to the asked arms through an UpstreamClient (shaped like shadow calls),
// compares production with candidate with compare/, scores each answer
// against the item's optional reference, and summarises per arm. Used by
// `understudy eval` (cli/cmd_eval.cc) and by `serve`'s scheduled eval
// (the `eval:` section, docs/drift.md), which stores SummarizeEvalRun's
// record and compares it with a baseline run (the re-ask check).
//
// Dataset lines (blank lines and lines starting with '#' are skipped):
//   {"id":"q1","request":{...chat body...},"reference":"optional text",
//    "path":"/v1/chat/completions"}
//
// Example (given const ShadowConfig& shadow_config,
//   const compare::CompareOptions& compare_options):
//   ASSIGN_OR_RETURN(std::vector<EvalItem> items, LoadEvalDataset("golden.jsonl"));
//   EvalRunOptions run;
//   run.dataset = "golden.jsonl";
//   ASSIGN_OR_RETURN(EvalReport report, RunEval(shadow_config, compare_options, items, run));
//   understudy::v1::EvalRun record = SummarizeEvalRun(report, nullptr, compare_options);
//
// Thread safety: every function may be called concurrently; RunEval blocks
// its caller until every answer is in (or `cancel` is set).
#ifndef UNDERSTUDY_SHADOW_EVAL_H_
#define UNDERSTUDY_SHADOW_EVAL_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/config_node.h"
#include "compare/compare.h"
#include "shadow/shadow.h"
#include "understudy/v1/compare.pb.h"
#include "understudy/v1/eval.pb.h"
#include "understudy/v1/exchange.pb.h"

namespace understudy::shadow {

// The arms in the order of every per-arm array below.
inline constexpr int kEvalArms = 2;
inline constexpr std::array<understudy::v1::Arm, kEvalArms> kEvalArmOrder = {
    understudy::v1::ARM_PRODUCTION, understudy::v1::ARM_CANDIDATE};

// ----------------------------------------------------------------- config --

// EvalConfig is `serve`'s `eval:` section: the scheduled golden-set eval.
struct EvalConfig {
  bool enabled = false;
  std::string dataset;                          // JSON Lines file (loaded at start)
  absl::Duration interval = absl::Hours(6);     // between run starts
  std::vector<understudy::v1::Arm> arms = {understudy::v1::ARM_PRODUCTION,
                                           understudy::v1::ARM_CANDIDATE};
  int concurrency = 4;                          // requests in flight per arm
};

// ParseEvalConfig reads the `eval:` section (absent: disabled):
//   eval:
//     dataset: /etc/understudy/golden.jsonl   # required
//     interval: 6h                            # at least 1s
//     arms: [production, candidate]           # one or both
//     concurrency: 4                          # 1..256, per arm
//     enabled: true                           # implied by the section
// The dataset is loaded here, so a missing or malformed file is a config
// error. InvalidArgument naming the key path ("eval.arms[1]: must be
// production or candidate").
[[nodiscard]] absl::StatusOr<EvalConfig> ParseEvalConfig(const ConfigNode& node);

// ---------------------------------------------------------------- dataset --

struct EvalItem {
  int line = 0;
  std::string id;
  std::string path = "/v1/chat/completions";
  std::string body;
  std::optional<std::string> reference;
};

// LoadEvalDataset reads and validates a dataset. InvalidArgument naming the
// file and line ("golden.jsonl:3: \"request\" must be a JSON object"), for
// an unreadable file, or for a file without requests.
[[nodiscard]] absl::StatusOr<std::vector<EvalItem>> LoadEvalDataset(const std::string& path);

// ----------------------------------------------------------------- running --

struct EvalRunOptions {
  std::string dataset;  // shown in the report
  // Arms to ask; both → answers are also compared with each other.
  std::vector<understudy::v1::Arm> arms = {understudy::v1::ARM_PRODUCTION,
                                           understudy::v1::ARM_CANDIDATE};
  int concurrency = 0;  // per arm; 0 = the shadow config's max_concurrency
  // Set from another thread to stop early: calls in flight are aborted
  // (kTransport) and RunEval returns Cancelled.
  const std::atomic<bool>* cancel = nullptr;
};

struct EvalArmStats {
  std::string url;
  bool asked = false;
  int64_t requests = 0;
  int64_t successes = 0;
  std::map<std::string, int64_t> outcomes;
  std::vector<double> latency_ms;
  std::vector<double> ttft_ms;
  int64_t tokens_in = 0;
  int64_t tokens_out = 0;
  int64_t with_usage = 0;
  double cost = 0;
  bool cost_known = false;    // at least one answer had a price
  bool cost_missing = false;  // some answer had usage but no price
  int64_t reference_items = 0;
  int64_t reference_agree = 0;
};

struct EvalItemResult {
  const EvalItem* item = nullptr;  // points into RunEval's `items`
  // Per arm (kEvalArmOrder); nullopt for an arm not asked.
  std::array<std::optional<UpstreamResult>, kEvalArms> results;
  std::array<compare::ModelAnswer, kEvalArms> answers;  // what compare/ saw
  std::array<std::string, kEvalArms> reference_verdict;  // "" = no reference scored
  std::optional<understudy::v1::Comparison> comparison;  // both arms asked
};

struct EvalReport {
  std::string dataset;
  int64_t items = 0;
  absl::Time started;
  absl::Time ended;
  std::array<EvalArmStats, kEvalArms> arms;
  std::map<std::string, int64_t> verdicts;
  int64_t compared = 0;  // both sides answered
  int64_t agreeing = 0;  // of compared, equivalent or minor_diff
  std::vector<EvalItemResult> results;
};

// RunEval sends every item to every asked arm, waits for the answers and
// scores them. The client is started and stopped inside. InvalidArgument for
// an empty arm list or an asked arm without a URL; Cancelled when `cancel`
// was set; Internal when the client cannot start. A failing upstream is not
// an error: its calls are counted by outcome.
[[nodiscard]] absl::StatusOr<EvalReport> RunEval(const ShadowConfig& config,
                                                 const compare::CompareOptions& options,
                                                 const std::vector<EvalItem>& items,
                                                 const EvalRunOptions& run,
                                                 const Clock& clock = RealClock::Default());

// ---------------------------------------------------------------- summary --

// EvalQuantile is the q-quantile (nearest rank) of `v`; nullopt when empty.
std::optional<double> EvalQuantile(std::vector<double> v, double q);
// EvalCostPer is the mean cost over `n` calls; nullopt unless every priced
// answer had a price.
std::optional<double> EvalCostPer(const EvalArmStats& s, int64_t n);

// SummarizeEvalRun turns a report into the stored record: per arm metrics
// (requests, error_rate, latency_p50_ms, latency_p95_ms,
// reference_agreement, cost_per_request), production vs candidate
// agreement_rate, each item's answers (text, sha256, length) and, when a
// `baseline` run is given, the re-ask check per arm: each answer against
// the baseline's answer to the same item id — compared with compare/ when
// the baseline kept the text (privacy body_mode full), else by sha256
// (same text or not; no similarity) — giving reask_agreement (the share
// equivalent or minor_diff) and reask_similarity (mean text similarity
// where texts were compared). Only successful answers on both sides are
// compared. The run is `failed` when an asked arm answered nothing.
// Regressions are not filled in (drift::FindEvalRegressions).
understudy::v1::EvalRun SummarizeEvalRun(const EvalReport& report,
                                         const understudy::v1::EvalRun* baseline,
                                         const compare::CompareOptions& options);

// FailedEvalRun is the record of a run that could not run at all.
understudy::v1::EvalRun FailedEvalRun(std::string_view dataset, absl::Time started,
                                      absl::Time ended, std::string_view error);

}  // namespace understudy::shadow

#endif  // UNDERSTUDY_SHADOW_EVAL_H_
