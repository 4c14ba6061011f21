// The golden-set eval engine (shadow/eval.h): dataset, run, score, summary.
// nlohmann::json throws; every call that may throw is in this file and
// caught (or uses the non-throwing parse).
#include "shadow/eval.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "common/status_macros.h"
#include "common/strings.h"
#include "storage/store.h"

namespace understudy::shadow {

namespace v1 = understudy::v1;

namespace {

constexpr absl::Duration kCancelPoll = absl::Milliseconds(100);

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

bool Agrees(v1::Verdict v) { return v == v1::VERDICT_EQUIVALENT || v == v1::VERDICT_MINOR_DIFF; }

double Ratio(int64_t a, int64_t b) { return b == 0 ? 0.0 : static_cast<double>(a) / b; }

// TextSimilarity is compare/'s text similarity of a comparison: the mean of
// its applicable lcs_f1 and chrf scores (any applicable score otherwise).
std::optional<double> TextSimilarity(const v1::Comparison& c) {
  double sum = 0, any_sum = 0;
  int n = 0, any_n = 0;
  for (const v1::ComparatorScore& s : c.scores()) {
    if (!s.applicable()) continue;
    any_sum += s.score();
    ++any_n;
    if (s.name() == "lcs_f1" || s.name() == "chrf") {
      sum += s.score();
      ++n;
    }
  }
  if (n > 0) return sum / n;
  if (any_n > 0) return any_sum / any_n;
  return std::nullopt;
}

int ArmIndex(v1::Arm arm) { return arm == v1::ARM_CANDIDATE ? 1 : 0; }

}  // namespace

// ---------------------------------------------------------------- config --

absl::StatusOr<EvalConfig> ParseEvalConfig(const ConfigNode& node) {
  EvalConfig c;
  if (!node.IsDefined()) return c;
  if (!node.IsMap()) return absl::InvalidArgumentError(node.Path() + ": must be a map");
  RETURN_IF_ERROR(node.CheckKeys({"enabled", "dataset", "interval", "arms", "concurrency"}));
  ASSIGN_OR_RETURN(c.enabled, node.GetBool("enabled", true));
  ASSIGN_OR_RETURN(c.dataset, node.GetString("dataset", ""));
  if (c.enabled && c.dataset.empty()) {
    return node.Error("dataset", "is required (a JSON Lines golden set)");
  }
  ASSIGN_OR_RETURN(c.interval, node.GetDuration("interval", c.interval));
  if (c.interval < absl::Seconds(1)) return node.Error("interval", "must be at least 1s");
  ASSIGN_OR_RETURN(int64_t concurrency, node.GetInt("concurrency", c.concurrency, 1, 256));
  c.concurrency = static_cast<int>(concurrency);
  if (node.Has("arms")) {
    ASSIGN_OR_RETURN(std::vector<ConfigNode> arms, node.Child("arms").Elements());
    if (arms.empty()) return node.Error("arms", "must name production, candidate or both");
    c.arms.clear();
    for (const ConfigNode& a : arms) {
      ASSIGN_OR_RETURN(std::string name, a.AsString());
      name = absl::AsciiStrToLower(name);
      v1::Arm arm = name == "production"  ? v1::ARM_PRODUCTION
                    : name == "candidate" ? v1::ARM_CANDIDATE
                                          : v1::ARM_UNSPECIFIED;
      if (arm == v1::ARM_UNSPECIFIED) {
        return absl::InvalidArgumentError(
            absl::StrCat(a.Path(), ": must be production or candidate, got \"", name, "\""));
      }
      if (std::find(c.arms.begin(), c.arms.end(), arm) != c.arms.end()) {
        return absl::InvalidArgumentError(absl::StrCat(a.Path(), ": ", name, " is listed twice"));
      }
      c.arms.push_back(arm);
    }
    std::sort(c.arms.begin(), c.arms.end(),
              [](v1::Arm a, v1::Arm b) { return ArmIndex(a) < ArmIndex(b); });
  }
  if (c.enabled) {
    absl::StatusOr<std::vector<EvalItem>> items = LoadEvalDataset(c.dataset);
    if (!items.ok()) {
      return node.Error("dataset", std::string(items.status().message()));
    }
  }
  return c;
}

// --------------------------------------------------------------- dataset --

absl::StatusOr<std::vector<EvalItem>> LoadEvalDataset(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::InvalidArgumentError(absl::StrCat(path, ": cannot read the dataset"));
  std::vector<EvalItem> items;
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
    EvalItem item;
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

// --------------------------------------------------------------- running --

std::optional<double> EvalQuantile(std::vector<double> v, double q) {
  if (v.empty()) return std::nullopt;
  std::sort(v.begin(), v.end());
  size_t rank = static_cast<size_t>(std::ceil(q * static_cast<double>(v.size())));
  rank = std::clamp<size_t>(rank, 1, v.size());
  return v[rank - 1];
}

std::optional<double> EvalCostPer(const EvalArmStats& s, int64_t n) {
  if (!s.cost_known || s.cost_missing || n == 0) return std::nullopt;
  return s.cost / static_cast<double>(n);
}

absl::StatusOr<EvalReport> RunEval(const ShadowConfig& shadow_config,
                                   const compare::CompareOptions& options,
                                   const std::vector<EvalItem>& items, const EvalRunOptions& run,
                                   const Clock& clock) {
  std::array<bool, kEvalArms> asked = {false, false};
  for (v1::Arm arm : run.arms) {
    if (arm != v1::ARM_PRODUCTION && arm != v1::ARM_CANDIDATE) {
      return absl::InvalidArgumentError("eval: an arm must be production or candidate");
    }
    asked[ArmIndex(arm)] = true;
  }
  if (!asked[0] && !asked[1]) return absl::InvalidArgumentError("eval: no arm to ask");
  if (asked[0] && shadow_config.production.url.empty()) {
    return absl::InvalidArgumentError("upstreams.production.url: required for eval");
  }
  if (asked[1] && shadow_config.candidate.url.empty()) {
    return absl::InvalidArgumentError("upstreams.candidate.url: required for eval");
  }
  ShadowConfig config = shadow_config;
  // The concurrency is per upstream; the arms share the client.
  const int per_arm = run.concurrency > 0 ? run.concurrency : config.max_concurrency;
  config.max_concurrency = kEvalArms * per_arm;
  config.max_queue = static_cast<int>(std::min<size_t>(kEvalArms * items.size() + 1, 1 << 30));

  EvalReport report;
  report.dataset = run.dataset;
  report.items = static_cast<int64_t>(items.size());
  report.started = clock.Now();
  report.arms[0].url = config.production.url;
  report.arms[1].url = config.candidate.url;
  report.results.resize(items.size());
  {
    ASSIGN_OR_RETURN(std::unique_ptr<UpstreamClient> client, UpstreamClient::Start(config, clock));
    absl::Mutex mu;
    for (size_t i = 0; i < items.size(); ++i) {
      report.results[i].item = &items[i];
      v1::Exchange live;
      live.set_request_id(items[i].id);
      live.set_method("POST");
      live.set_path(items[i].path);
      live.set_source(v1::SOURCE_EVAL);
      live.mutable_request()->set_body(items[i].body);
      v1::Header* h = live.mutable_request()->add_headers();
      h->set_key("content-type");
      h->set_value("application/json");
      for (int a = 0; a < kEvalArms; ++a) {
        if (!asked[a]) continue;
        UpstreamRequest request =
            BuildUpstreamRequest(config, live, kEvalArmOrder[a], v1::SOURCE_EVAL);
        std::optional<UpstreamResult>* slot = &report.results[i].results[a];
        const bool queued = client->TrySend(std::move(request), [slot, &mu](UpstreamResult r) {
          absl::MutexLock lock(&mu);
          *slot = std::move(r);
        });
        if (!queued) {
          absl::MutexLock lock(&mu);
          UpstreamResult r;
          r.outcome = rollout::OutcomeClass::kTransport;
          r.exchange.set_error("not sent: client queue full");
          *slot = std::move(r);
        }
      }
    }
    while (!client->WaitIdle(kCancelPoll)) {
      if (run.cancel != nullptr && run.cancel->load()) break;
    }
    client.reset();  // aborts what is left (cancelled) and runs its callbacks
    if (run.cancel != nullptr && run.cancel->load()) {
      return absl::CancelledError("eval: cancelled (shutting down)");
    }
  }
  report.ended = clock.Now();

  for (EvalItemResult& res : report.results) {
    const EvalItem& item = *res.item;
    compare::CompareContext ctx;
    ctx.request_id = item.id;
    ctx.live_arm = v1::ARM_PRODUCTION;
    absl::StatusOr<compare::RequestInfo> info = compare::ParseRequest(item.body);
    if (info.ok()) ctx.request = *info;
    for (int a = 0; a < kEvalArms; ++a) {
      if (!res.results[a].has_value()) continue;
      const UpstreamResult& r = *res.results[a];
      EvalArmStats& s = report.arms[a];
      s.asked = true;
      ++s.requests;
      ++s.outcomes[std::string(rollout::OutcomeClassName(r.outcome))];
      const bool ok = r.outcome == rollout::OutcomeClass::kOk;
      res.answers[a] = AnswerFor(r);
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
          std::optional<double> cost = Cost(model, u, options.prices);
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
          const v1::Verdict v = compare::Compare(reference, answer, options, ctx).verdict();
          if (Agrees(v)) ++s.reference_agree;
          res.reference_verdict[a] = std::string(compare::VerdictName(v));
        }
      }
    }
    if (!res.results[0].has_value() || !res.results[1].has_value()) continue;
    v1::Comparison c = compare::Compare(res.answers[0], res.answers[1], options, ctx);
    const v1::Verdict v = c.verdict();
    ++report.verdicts[std::string(compare::VerdictName(v))];
    if (v != v1::VERDICT_CANDIDATE_ERROR && v != v1::VERDICT_PRODUCTION_ERROR &&
        v != v1::VERDICT_BOTH_ERROR) {
      ++report.compared;
      if (Agrees(v)) ++report.agreeing;
    }
    res.comparison = std::move(c);
  }
  return report;
}

// --------------------------------------------------------------- summary --

v1::EvalRun FailedEvalRun(std::string_view dataset, absl::Time started, absl::Time ended,
                          std::string_view error) {
  v1::EvalRun run;
  run.set_start_unix_micros(absl::ToUnixMicros(started));
  run.set_end_unix_micros(absl::ToUnixMicros(ended));
  run.set_dataset(std::string(dataset));
  run.set_failed(true);
  run.set_error(std::string(error));
  return run;
}

v1::EvalRun SummarizeEvalRun(const EvalReport& report, const v1::EvalRun* baseline,
                             const compare::CompareOptions& options) {
  v1::EvalRun run;
  run.set_start_unix_micros(absl::ToUnixMicros(report.started));
  run.set_end_unix_micros(absl::ToUnixMicros(report.ended));
  run.set_dataset(report.dataset);
  run.set_items(report.items);
  if (baseline != nullptr) run.set_baseline_start_unix_micros(baseline->start_unix_micros());

  // The baseline's answers by item id, per arm.
  std::array<std::map<std::string, const v1::EvalAnswer*>, kEvalArms> before;
  if (baseline != nullptr) {
    for (const v1::EvalItemResult& it : baseline->results()) {
      if (it.has_production()) before[0][it.id()] = &it.production();
      if (it.has_candidate()) before[1][it.id()] = &it.candidate();
    }
  }
  std::array<int64_t, kEvalArms> reask_n = {0, 0}, reask_agree = {0, 0}, sim_n = {0, 0};
  std::array<double, kEvalArms> sim_sum = {0, 0};
  std::string first_error;
  for (const EvalItemResult& res : report.results) {
    v1::EvalItemResult* out = run.add_results();
    out->set_id(res.item->id);
    if (res.comparison.has_value()) {
      out->set_verdict(std::string(compare::VerdictName(res.comparison->verdict())));
    }
    for (int a = 0; a < kEvalArms; ++a) {
      if (!res.results[a].has_value()) continue;
      const UpstreamResult& r = *res.results[a];
      const bool ok = r.outcome == rollout::OutcomeClass::kOk;
      v1::EvalAnswer* ans = a == 0 ? out->mutable_production() : out->mutable_candidate();
      ans->set_outcome(std::string(rollout::OutcomeClassName(r.outcome)));
      const std::string& text = res.answers[a].text;
      if (ok) {
        ans->set_text(text);
        ans->set_text_sha256(storage::Sha256Hex(text));
        ans->set_text_length(static_cast<int64_t>(text.size()));
        if (r.exchange.end_offset_micros() >= 0) {
          ans->set_latency_ms(r.exchange.end_offset_micros() / 1000.0);
        }
      } else if (first_error.empty()) {
        first_error = absl::StrCat(Av(rollout::ArmName(kEvalArmOrder[a])), " ", res.item->id,
                                   ": ", Av(rollout::OutcomeClassName(r.outcome)),
                                   r.exchange.error().empty() ? "" : " (",
                                   r.exchange.error(), r.exchange.error().empty() ? "" : ")");
      }
      ans->set_reference_verdict(res.reference_verdict[a]);
      ans->set_reask_similarity(-1);
      auto b = before[a].find(res.item->id);
      if (!ok || b == before[a].end() || b->second->outcome() != "ok") continue;
      const v1::EvalAnswer& then = *b->second;
      bool agree = false;
      if (!then.text().empty() || then.text_length() == 0) {
        compare::ModelAnswer old_answer = res.answers[a];
        old_answer.text = then.text();
        old_answer.tool_calls.clear();
        compare::ModelAnswer new_answer = res.answers[a];
        new_answer.tool_calls.clear();
        compare::CompareContext ctx;
        ctx.request_id = res.item->id;
        const v1::Comparison c = compare::Compare(old_answer, new_answer, options, ctx);
        agree = Agrees(c.verdict());
        if (std::optional<double> sim = TextSimilarity(c)) {
          ans->set_reask_similarity(*sim);
          sim_sum[a] += *sim;
          ++sim_n[a];
        }
      } else {
        // The baseline kept only a hash (privacy body_mode other than full).
        agree = then.text_sha256() == ans->text_sha256();
      }
      ans->set_reask(agree ? "agree" : "differ");
      ++reask_n[a];
      if (agree) ++reask_agree[a];
    }
  }

  for (int a = 0; a < kEvalArms; ++a) {
    const EvalArmStats& s = report.arms[a];
    if (!s.asked) continue;
    v1::EvalArmSummary* arm = run.add_arms();
    arm->set_arm(kEvalArmOrder[a]);
    arm->set_url(s.url);
    auto& m = *arm->mutable_metrics();
    m["requests"] = static_cast<double>(s.requests);
    m["error_rate"] = Ratio(s.requests - s.successes, s.requests);
    if (auto p50 = EvalQuantile(s.latency_ms, 0.5)) m["latency_p50_ms"] = *p50;
    if (auto p95 = EvalQuantile(s.latency_ms, 0.95)) m["latency_p95_ms"] = *p95;
    if (s.reference_items > 0) m["reference_agreement"] = Ratio(s.reference_agree, s.reference_items);
    if (auto cost = EvalCostPer(s, s.requests)) m["cost_per_request"] = *cost;
    if (reask_n[a] > 0) m["reask_agreement"] = Ratio(reask_agree[a], reask_n[a]);
    if (sim_n[a] > 0) m["reask_similarity"] = sim_sum[a] / static_cast<double>(sim_n[a]);
    if (s.requests > 0 && s.successes == 0 && !run.failed()) {
      run.set_failed(true);
      run.set_error(absl::StrCat("every ", Av(rollout::ArmName(kEvalArmOrder[a])),
                                 " call failed; first: ", first_error));
    }
  }
  if (report.compared > 0) (*run.mutable_metrics())["agreement_rate"] = Ratio(report.agreeing, report.compared);
  return run;
}

}  // namespace understudy::shadow
