// The scheduled eval and the revisit triggers' inputs (sidecar/revisit.h).
#include "sidecar/revisit.h"

#include <algorithm>
#include <cstdio>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status_macros.h"
#include "rollout/rollout.h"

namespace understudy::sidecar {

namespace v1 = understudy::v1;

namespace {

// The decision log is read for drift events at most this often.
constexpr absl::Duration kDriftRefresh = absl::Seconds(2);

std::string TimeText(absl::Time t) {
  return absl::FormatTime("%Y-%m-%d %H:%M:%S UTC", t, absl::UTCTimeZone());
}

// A decision that moved the rollout (not a drift record, not a hold).
bool IsRolloutDecision(const v1::Decision& d) {
  return d.action() != v1::ACTION_DRIFT && d.action() != v1::ACTION_DRIFT_BASELINE &&
         d.action() != v1::ACTION_HOLD && d.action() != v1::ACTION_UNSPECIFIED;
}

}  // namespace

std::string PriceFingerprint(const std::map<std::string, compare::ModelPrice>& prices) {
  // std::map iterates in key order: the text, and so the hash, is stable.
  std::string text;
  for (const auto& [model, p] : prices) {
    absl::StrAppendFormat(&text, "%s\t%.17g\t%.17g\t%.17g\n", model, p.input_per_million,
                          p.output_per_million, p.cached_input_per_million);
  }
  return storage::Sha256Hex(text).substr(0, 16);
}

absl::Time NextEvalRun(std::optional<absl::Time> last_start, absl::Duration interval,
                       absl::Time now) {
  if (!last_start.has_value()) return now;
  const absl::Time next = *last_start + interval;
  return next < now ? now : next;
}

const v1::EvalRun* PickBaselineRun(const std::vector<v1::EvalRun>& runs, absl::Time decision) {
  const v1::EvalRun* before = nullptr;
  const v1::EvalRun* first = nullptr;
  for (const v1::EvalRun& r : runs) {
    if (r.failed()) continue;
    if (first == nullptr) first = &r;
    if (absl::FromUnixMicros(r.start_unix_micros()) < decision) before = &r;
  }
  return before != nullptr ? before : first;
}

// ------------------------------------------------------------ scheduler --

EvalScheduler::EvalScheduler(Options options, storage::Store& store, Clock& clock)
    : options_(std::move(options)), store_(store), clock_(clock) {}

EvalScheduler::~EvalScheduler() { Stop(); }

void EvalScheduler::Start() {
  thread_ = std::thread([this] { Loop(); });
}

void EvalScheduler::Stop() {
  cancel_.store(true);
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

absl::StatusOr<v1::EvalRun> EvalScheduler::RunOnce() {
  const absl::Time started = clock_.Now();
  v1::EvalRun run;
  absl::StatusOr<std::vector<shadow::EvalItem>> items =
      shadow::LoadEvalDataset(options_.eval.dataset);
  if (!items.ok()) {
    run = shadow::FailedEvalRun(options_.eval.dataset, started, clock_.Now(),
                                std::string(items.status().message()));
  } else {
    ASSIGN_OR_RETURN(std::vector<v1::EvalRun> runs,
                     store_.ListEvalRuns(absl::InfinitePast(), storage::kNoLimit));
    const absl::Time decision =
        options_.baseline_before ? options_.baseline_before() : absl::InfinitePast();
    const v1::EvalRun* baseline = PickBaselineRun(runs, decision);
    shadow::EvalRunOptions ro;
    ro.dataset = options_.eval.dataset;
    ro.arms = options_.eval.arms;
    ro.concurrency = options_.eval.concurrency;
    ro.cancel = &cancel_;
    absl::StatusOr<shadow::EvalReport> report =
        shadow::RunEval(options_.shadow, options_.compare, *items, ro, clock_);
    if (absl::IsCancelled(report.status())) return report.status();
    if (!report.ok()) {
      run = shadow::FailedEvalRun(options_.eval.dataset, started, clock_.Now(),
                                  std::string(report.status().message()));
    } else {
      run = shadow::SummarizeEvalRun(*report, baseline, options_.compare);
      if (baseline != nullptr) {
        for (v1::EvalRegression& r :
             drift::FindEvalRegressions(*baseline, run, options_.thresholds)) {
          *run.add_regressions() = std::move(r);
        }
      }
    }
  }
  RETURN_IF_ERROR(store_.PutEvalRun(run));
  std::fprintf(stderr, "eval run %s: %s%s, %lld items, %d regression(s) against %s\n",
               TimeText(absl::FromUnixMicros(run.start_unix_micros())).c_str(),
               run.failed() ? "FAILED: " : "ok", run.failed() ? run.error().c_str() : "",
               static_cast<long long>(run.items()), run.regressions_size(),
               run.baseline_start_unix_micros() > 0
                   ? TimeText(absl::FromUnixMicros(run.baseline_start_unix_micros())).c_str()
                   : "no baseline (the first run)");
  if (options_.on_run) options_.on_run(run);
  return run;
}

void EvalScheduler::Loop() {
  std::optional<absl::Time> last;
  absl::StatusOr<std::vector<v1::EvalRun>> latest = store_.ListEvalRuns(absl::InfinitePast(), 1);
  if (latest.ok() && !latest->empty()) {
    last = absl::FromUnixMicros(latest->back().start_unix_micros());
  }
  absl::MutexLock lock(&mu_);
  while (!stop_) {
    const absl::Time now = clock_.Now();
    const absl::Time next = NextEvalRun(last, options_.eval.interval, now);
    if (next > now) {
      mu_.AwaitWithTimeout(absl::Condition(&stop_), next - now);
      continue;
    }
    mu_.Unlock();
    // Whatever happens, the schedule moves on: a run that could not be
    // stored is retried at the next interval, not in a tight loop.
    last = now;
    absl::StatusOr<v1::EvalRun> run = RunOnce();
    if (run.ok()) {
      last = absl::FromUnixMicros(run->start_unix_micros());
    } else if (!absl::IsCancelled(run.status())) {
      std::fprintf(stderr, "eval run: not stored: %s\n",
                   std::string(run.status().message()).c_str());
    }
    mu_.Lock();
  }
}

// --------------------------------------------------------------- revisit --

RevisitWatch::RevisitWatch(Options options, storage::Store& store, Clock& clock)
    : options_(std::move(options)), store_(store), clock_(clock), started_(clock.Now()) {}

absl::StatusOr<std::string> RevisitWatch::Start() {
  absl::StatusOr<v1::RevisitState> saved = store_.LoadRevisitState();
  std::string note;
  v1::RevisitState state;
  if (saved.ok()) {
    state = *saved;
    if (!state.price_fingerprint().empty() &&
        state.price_fingerprint() != options_.price_fingerprint) {
      note = absl::StrCat(
          "compare.prices changed since ",
          state.decision_unix_micros() > 0 ? "the rollout decision of " : "the first start at ",
          TimeText(absl::FromUnixMicros(state.decision_unix_micros() > 0
                                            ? state.decision_unix_micros()
                                            : state.saved_unix_micros())),
          ": revisit trigger price_change fired (re-run the cost comparison)");
    }
  } else if (absl::IsNotFound(saved.status())) {
    state.set_price_fingerprint(options_.price_fingerprint);
    state.set_saved_unix_micros(absl::ToUnixMicros(clock_.Now()));
    // A store from before the revisit state: the latest rollout decision
    // in the log is still the baseline run's reference point.
    ASSIGN_OR_RETURN(std::vector<v1::Decision> log,
                     store_.ListDecisions(absl::InfinitePast(), storage::kNoLimit));
    for (auto it = log.rbegin(); it != log.rend(); ++it) {
      if (IsRolloutDecision(*it)) {
        state.set_decision_unix_micros(it->time_unix_micros());
        break;
      }
    }
    RETURN_IF_ERROR(store_.SaveRevisitState(state));
  } else {
    return saved.status();
  }
  ASSIGN_OR_RETURN(std::vector<v1::EvalRun> runs, store_.ListEvalRuns(absl::InfinitePast(), 1));
  absl::MutexLock lock(&mu_);
  saved_ = std::move(state);
  if (!runs.empty()) latest_eval_ = std::move(runs.back());
  return note;
}

double RevisitWatch::RateLocked(absl::Time now) {
  const absl::Duration width = options_.rate_window / kBuckets;
  const int64_t bucket = (now - absl::UnixEpoch()) / width;
  if (bucket > current_bucket_) {
    for (int64_t b = std::max(current_bucket_ + 1, bucket - kBuckets + 1); b <= bucket; ++b) {
      counts_[static_cast<size_t>(b % kBuckets)] = 0;
    }
    current_bucket_ = bucket;
  }
  const absl::Duration covered = std::min(options_.rate_window, now - started_);
  if (covered < options_.min_rate_window || covered <= absl::ZeroDuration()) return 0;
  int64_t sum = 0;
  for (int64_t c : counts_) sum += c;
  return static_cast<double>(sum) / absl::ToDoubleHours(covered);
}

void RevisitWatch::OnLiveExchange(const v1::Exchange&, const ExchangeFacts&) {
  absl::MutexLock lock(&mu_);
  RateLocked(clock_.Now());  // moves the ring to this bucket
  ++counts_[static_cast<size_t>(current_bucket_ % kBuckets)];
}

void RevisitWatch::OnDecision(const v1::Decision& d) {
  if (!IsRolloutDecision(d)) return;
  v1::RevisitState state;
  {
    absl::MutexLock lock(&mu_);
    const absl::Time now = clock_.Now();
    state.set_price_fingerprint(options_.price_fingerprint);
    state.set_saved_unix_micros(absl::ToUnixMicros(now));
    state.set_decision_unix_micros(d.time_unix_micros() > 0 ? d.time_unix_micros()
                                                            : absl::ToUnixMicros(now));
    state.set_requests_per_hour(RateLocked(now));
    saved_ = state;
  }
  if (absl::Status s = store_.SaveRevisitState(state); !s.ok()) {
    std::fprintf(stderr, "revisit: cannot save the decision's prices and traffic: %s\n",
                 std::string(s.message()).c_str());
  }
}

void RevisitWatch::OnEvalRun(const v1::EvalRun& run) {
  absl::MutexLock lock(&mu_);
  latest_eval_ = run;
}

absl::Time RevisitWatch::LastDecisionTime() {
  absl::MutexLock lock(&mu_);
  return saved_.decision_unix_micros() > 0 ? absl::FromUnixMicros(saved_.decision_unix_micros())
                                           : absl::InfinitePast();
}

double RevisitWatch::RequestsPerHour() {
  absl::MutexLock lock(&mu_);
  return RateLocked(clock_.Now());
}

std::vector<v1::RevisitTrigger> RevisitWatch::Fired() {
  const absl::Time now = clock_.Now();
  bool refresh = false;
  {
    absl::MutexLock lock(&mu_);
    refresh = now - drift_read_ >= kDriftRefresh;
  }
  if (refresh) {
    absl::StatusOr<std::vector<v1::Decision>> log =
        store_.ListDecisions(now - options_.lookback, storage::kNoLimit);
    if (log.ok()) {
      std::vector<v1::Decision> events;
      for (v1::Decision& d : *log) {
        if (d.action() == v1::ACTION_DRIFT) events.push_back(std::move(d));
      }
      absl::MutexLock lock(&mu_);
      drift_events_ = std::move(events);
      drift_read_ = now;
    }
  }
  drift::RevisitInputs in;
  std::optional<v1::RevisitState> fill;  // the decision's rate, once it is known
  {
    absl::MutexLock lock(&mu_);
    in.now = now;
    in.config = options_.config;
    in.drift_events = drift_events_;
    in.deprecation_date = options_.deprecation_date;
    in.deprecation_notice = options_.deprecation_notice;
    in.price_fingerprint = options_.price_fingerprint;
    in.saved_price_fingerprint = saved_.price_fingerprint();
    const int64_t at = saved_.decision_unix_micros() > 0 ? saved_.decision_unix_micros()
                                                         : saved_.saved_unix_micros();
    if (at > 0) in.saved_at = absl::FromUnixMicros(at);
    in.requests_per_hour = RateLocked(now);
    if (saved_.decision_unix_micros() > 0 && saved_.requests_per_hour() <= 0 &&
        in.requests_per_hour > 0) {
      saved_.set_requests_per_hour(in.requests_per_hour);
      fill = saved_;
    }
    in.saved_requests_per_hour = saved_.requests_per_hour();
    in.latest_eval = latest_eval_;
  }
  if (fill.has_value()) store_.SaveRevisitState(*fill).IgnoreError();  // retried next time
  return drift::EvaluateRevisit(in);
}

}  // namespace understudy::sidecar
