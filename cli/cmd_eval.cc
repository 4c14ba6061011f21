// `understudy eval --config FILE --dataset golden.jsonl [--concurrency N]
// [-o json] [--store]`: sends each dataset request to production and to the
// candidate (shaped by upstreams.candidate.request), compares the answers with
// compare/, scores each answer against the optional reference, and prints a
// per-arm table or one JSON object.
//
// Dataset lines (JSON Lines; blank lines and lines starting with '#' are
// skipped):
//   {"id":"q1","request":{...chat body...},"reference":"optional text",
//    "path":"/v1/chat/completions"}
#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
#include <cmath>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "common/strings.h"
#include "cli/commands.h"
#include "rollout/rollout.h"
#include "shadow/shadow.h"
#include "storage/store.h"

namespace understudy::cli {

namespace {

using shadow::Cost;
using shadow::ParseShadowConfig;
using shadow::ShadowConfig;
using shadow::UpstreamClient;
using shadow::UpstreamRequest;
using shadow::UpstreamResult;

struct EvalArgs {
  std::string config_file;
  std::string dataset_file;
  std::string output = "text";
  int concurrency = 0;
  bool store = false;
};

struct Item {
  int line = 0;
  std::string id;
  std::string path = "/v1/chat/completions";
  std::string body;
  std::optional<std::string> reference;
};

constexpr int kArms = 2;
constexpr std::array<v1::Arm, kArms> kArmOrder = {v1::ARM_PRODUCTION, v1::ARM_CANDIDATE};
// ArmKey names arm `a` (an index into kArmOrder) in the JSON and CSV output.
std::string ArmKey(int a) { return std::string(rollout::ArmName(kArmOrder[a])); }

absl::StatusOr<std::vector<Item>> ParseDataset(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::InvalidArgumentError(absl::StrCat(path, ": cannot read the dataset"));
  std::vector<Item> items;
  std::set<std::string> ids;
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    absl::string_view text = absl::StripAsciiWhitespace(line);
    if (text.empty() || text[0] == '#') continue;
    auto fail = [&](std::string_view message) {
      return absl::InvalidArgumentError(absl::StrCat(path, ":", n, ": ", Av(message)));
    };
    nlohmann::json j = nlohmann::json::parse(text.begin(), text.end(), nullptr, false);
    if (j.is_discarded()) return fail("not valid JSON");
    if (!j.is_object()) return fail("must be a JSON object with a \"request\"");
    Item item;
    item.line = n;
    if (!j.contains("request")) return fail("missing \"request\" (the chat request body)");
    if (!j["request"].is_object()) return fail("\"request\" must be a JSON object");
    item.body = j["request"].dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    if (j.contains("id") && !j["id"].is_null()) {
      if (j["id"].is_string()) {
        item.id = j["id"].get<std::string>();
      } else if (j["id"].is_number_integer()) {
        item.id = std::to_string(j["id"].get<int64_t>());
      } else {
        return fail("\"id\" must be a string or an integer");
      }
      if (item.id.empty()) return fail("\"id\" must not be empty");
      if (item.id.find('\0') != std::string::npos) return fail("\"id\" must not contain NUL");
    } else {
      item.id = absl::StrCat("line-", n);
    }
    if (!ids.insert(item.id).second) return fail(absl::StrCat("duplicate id \"", item.id, "\""));
    if (j.contains("reference") && !j["reference"].is_null()) {
      if (!j["reference"].is_string()) return fail("\"reference\" must be a string");
      item.reference = j["reference"].get<std::string>();
    }
    if (j.contains("path") && !j["path"].is_null()) {
      if (!j["path"].is_string()) return fail("\"path\" must be a string");
      item.path = j["path"].get<std::string>();
      if (item.path.empty() || item.path[0] != '/' ||
          item.path.find_first_of(" \r\n") != std::string::npos) {
        return fail("\"path\" must start with / and contain no spaces");
      }
    }
    items.push_back(std::move(item));
  }
  if (in.bad()) return absl::InvalidArgumentError(absl::StrCat(path, ": read error"));
  if (items.empty()) return absl::InvalidArgumentError(absl::StrCat(path, ": no requests"));
  return items;
}

// AnswerFor is what compare/ sees for one arm: the parsed answer, or an
// error answer naming what went wrong.
compare::ModelAnswer AnswerFor(const UpstreamResult& r) {
  if (r.outcome == rollout::OutcomeClass::kOk && r.answer.has_value()) return *r.answer;
  if (r.answer.has_value() && (r.answer->error.has_value() || !r.answer->stream_ok)) {
    return *r.answer;
  }
  std::string message = r.exchange.error();
  if (message.empty()) message = absl::StrCat("HTTP ", r.exchange.status_code());
  return compare::ModelAnswer::FromError(std::string(rollout::OutcomeClassName(r.outcome)), message);
}

std::optional<double> Quantile(std::vector<double> v, double q) {
  if (v.empty()) return std::nullopt;
  std::sort(v.begin(), v.end());
  size_t rank = static_cast<size_t>(std::ceil(q * static_cast<double>(v.size())));
  rank = std::clamp<size_t>(rank, 1, v.size());
  return v[rank - 1];
}

struct ArmSummary {
  std::string url;
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

struct EvalReport {
  std::string dataset;
  int64_t items = 0;
  std::array<ArmSummary, kArms> arms;
  std::map<std::string, int64_t> verdicts;
  int64_t compared = 0;  // both sides answered
  int64_t agreeing = 0;  // of compared, equivalent or minor_diff
  nlohmann::json results = nlohmann::json::array();
  bool stored = false;
};

nlohmann::json OptNumber(std::optional<double> v) {
  return v.has_value() ? nlohmann::json(*v) : nlohmann::json(nullptr);
}

double Ratio(int64_t a, int64_t b) { return b == 0 ? 0.0 : static_cast<double>(a) / b; }

std::optional<double> CostPer(const ArmSummary& s, int64_t n) {
  if (!s.cost_known || s.cost_missing || n == 0) return std::nullopt;
  return s.cost / static_cast<double>(n);
}

nlohmann::json ToJson(const EvalReport& r) {
  nlohmann::json out;
  out["dataset"] = r.dataset;
  out["items"] = r.items;
  for (int a = 0; a < kArms; ++a) {
    const ArmSummary& s = r.arms[a];
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
  out["results"] = r.results;
  out["stored"] = r.stored;
  return out;
}

std::string Ms(std::optional<double> v) {
  return v.has_value() ? absl::StrFormat("%.1f", *v) : "-";
}

std::string Money(std::optional<double> v) {
  return v.has_value() ? absl::StrFormat("%.6f", *v) : "-";
}

void PrintTable(const EvalReport& r, std::ostream& os) {
  const ArmSummary& p = r.arms[0];
  const ArmSummary& c = r.arms[1];
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
  auto ref = [](const ArmSummary& s) -> std::string {
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
  if (r.stored) os << "stored exchanges and comparisons\n";
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
  absl::StatusOr<std::vector<Item>> dataset = ParseDataset(args.dataset_file);
  if (!dataset.ok()) return fail(kExitUsage, dataset.status().message());
  const std::vector<Item>& items = *dataset;

  // --concurrency is per upstream; both arms share the client.
  const int per_arm = args.concurrency > 0 ? args.concurrency : config.max_concurrency;
  config.max_concurrency = 2 * per_arm;
  config.max_queue = static_cast<int>(std::min<size_t>(2 * items.size() + 1, 1 << 30));
  absl::StatusOr<std::unique_ptr<UpstreamClient>> client = UpstreamClient::Start(config);
  if (!client.ok()) return fail(kExitFailure, client.status().message());

  absl::Mutex mu;
  std::vector<std::array<UpstreamResult, kArms>> results(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    v1::Exchange live;
    live.set_request_id(items[i].id);
    live.set_method("POST");
    live.set_path(items[i].path);
    live.set_source(v1::SOURCE_EVAL);
    live.mutable_request()->set_body(items[i].body);
    v1::Header* h = live.mutable_request()->add_headers();
    h->set_key("content-type");
    h->set_value("application/json");
    for (int a = 0; a < kArms; ++a) {
      UpstreamRequest request = BuildUpstreamRequest(config, live, kArmOrder[a], v1::SOURCE_EVAL);
      UpstreamResult* slot = &results[i][a];
      const bool queued = (*client)->TrySend(std::move(request), [slot, &mu](UpstreamResult r) {
        absl::MutexLock lock(&mu);
        *slot = std::move(r);
      });
      if (!queued) {
        absl::MutexLock lock(&mu);
        slot->outcome = rollout::OutcomeClass::kTransport;
        slot->exchange.set_error("not sent: client queue full");
      }
    }
  }
  (*client)->WaitIdle(absl::InfiniteDuration());
  client->reset();

  EvalReport report;
  report.dataset = args.dataset_file;
  report.items = static_cast<int64_t>(items.size());
  report.arms[0].url = config.production.url;
  report.arms[1].url = config.candidate.url;
  std::vector<v1::Comparison> comparisons;
  comparisons.reserve(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    const Item& item = items[i];
    compare::CompareContext ctx;
    ctx.request_id = item.id;
    ctx.live_arm = v1::ARM_PRODUCTION;
    absl::StatusOr<compare::RequestInfo> info = compare::ParseRequest(item.body);
    if (info.ok()) ctx.request = *info;
    std::array<compare::ModelAnswer, kArms> answers;
    nlohmann::json row = {{"id", item.id}};
    for (int a = 0; a < kArms; ++a) {
      UpstreamResult& r = results[i][a];
      ArmSummary& s = report.arms[a];
      ++s.requests;
      ++s.outcomes[std::string(rollout::OutcomeClassName(r.outcome))];
      const bool ok = r.outcome == rollout::OutcomeClass::kOk;
      row[ArmKey(a)] = std::string(rollout::OutcomeClassName(r.outcome));
      answers[a] = AnswerFor(r);
      const int64_t latency = r.exchange.end_offset_micros();
      const int64_t ttft = r.exchange.first_body_byte_offset_micros();
      if (a == 0) {
        ctx.production_latency_micros = std::max<int64_t>(latency, 0);
        ctx.production_ttft_micros = std::max<int64_t>(ttft, 0);
      } else {
        ctx.candidate_latency_micros = std::max<int64_t>(latency, 0);
        ctx.candidate_ttft_micros = std::max<int64_t>(ttft, 0);
      }
      if (ok) {
        ++s.successes;
        if (latency >= 0) s.latency_ms.push_back(latency / 1000.0);
        if (ttft >= 0) s.ttft_ms.push_back(ttft / 1000.0);
      }
      if (r.answer.has_value()) {
        const compare::Usage& u = r.answer->usage;
        if (ok) {
          s.tokens_in += u.input_tokens;
          s.tokens_out += u.output_tokens;
          ++s.with_usage;
        }
        if (u.input_tokens > 0 || u.output_tokens > 0) {
          std::string model = r.answer->model;
          if (model.empty()) {
            absl::StatusOr<compare::RequestInfo> sent =
                compare::ParseRequest(r.exchange.request().body());
            if (sent.ok()) model = sent->model;
          }
          std::optional<double> cost = Cost(model, u, options->prices);
          if (cost.has_value()) {
            s.cost += *cost;
            s.cost_known = true;
          } else {
            s.cost_missing = true;
          }
        }
      }
      if (item.reference.has_value()) {
        ++s.reference_items;
        if (ok && r.answer.has_value()) {
          compare::ModelAnswer reference = *r.answer;
          reference.text = *item.reference;
          reference.tool_calls.clear();
          compare::ModelAnswer answer = *r.answer;
          answer.tool_calls.clear();
          const v1::Verdict v = compare::Compare(reference, answer, *options, ctx).verdict();
          const bool agree = v == v1::VERDICT_EQUIVALENT || v == v1::VERDICT_MINOR_DIFF;
          if (agree) ++s.reference_agree;
          row[ArmKey(a) + "_reference"] = std::string(compare::VerdictName(v));
        }
      }
    }
    v1::Comparison c = compare::Compare(answers[0], answers[1], *options, ctx);
    const v1::Verdict v = c.verdict();
    ++report.verdicts[std::string(compare::VerdictName(v))];
    if (v != v1::VERDICT_CANDIDATE_ERROR && v != v1::VERDICT_PRODUCTION_ERROR &&
        v != v1::VERDICT_BOTH_ERROR) {
      ++report.compared;
      if (v == v1::VERDICT_EQUIVALENT || v == v1::VERDICT_MINOR_DIFF) ++report.agreeing;
    }
    row["verdict"] = std::string(compare::VerdictName(v));
    report.results.push_back(std::move(row));
    comparisons.push_back(std::move(c));
  }

  if (storage_config.has_value()) {
    absl::StatusOr<std::unique_ptr<storage::Store>> store =
        storage::OpenRocksStore(*storage_config, RealClock::Default());
    if (!store.ok()) return fail(kExitFailure, store.status().message());
    constexpr size_t kBatch = 64;
    storage::RecordBatch batch;
    for (size_t i = 0; i < items.size(); ++i) {
      for (int a = 0; a < kArms; ++a) {
        v1::Exchange ex = results[i][a].exchange;
        ex.set_request_id(items[i].id);
        ex.set_arm(kArmOrder[a]);
        ex.set_source(v1::SOURCE_EVAL);
        batch.Add(std::move(ex));
      }
      batch.Add(std::move(comparisons[i]));
      if (batch.size() >= kBatch || i + 1 == items.size()) {
        if (absl::Status s = (*store)->Write(std::move(batch)); !s.ok()) {
          return fail(kExitFailure, s.message());
        }
        batch = storage::RecordBatch();
      }
    }
    report.stored = true;
  }

  if (args.output == "json") {
    std::cout << ToJson(report).dump(2, ' ', false, nlohmann::json::error_handler_t::replace)
              << "\n";
  } else {
    PrintTable(report, std::cout);
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
