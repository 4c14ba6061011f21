#include "sidecar/drift_observer.h"

#include <cstdio>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/strings.h"
#include "shadow/answer.h"

namespace understudy::sidecar {

namespace v1 = understudy::v1;

namespace {

// Events kept for spans that never come (tracing sampled the span out, or
// the exchange was a mirrored copy) are dropped past this many.
constexpr size_t kMaxPendingSpanEvents = 1024;

bool IsModelCall(const v1::Exchange& e) {
  const compare::ApiKind api = shadow::ExchangeApi(e);
  return api != compare::ApiKind::kUnknown && api != compare::ApiKind::kOpenAiEmbeddings;
}

}  // namespace

DriftObserver::DriftObserver(const drift::DriftConfig& config, storage::Store& store,
                             rollout::Controller& controller, DriftObserverOptions options)
    : config_(config),
      store_(store),
      controller_(controller),
      options_(std::move(options)),
      clock_(options_.clock != nullptr ? *options_.clock : RealClock::Default()),
      watch_(config) {}

absl::Status DriftObserver::Restore() {
  absl::StatusOr<std::vector<v1::Decision>> log =
      store_.ListDecisions(absl::InfinitePast(), storage::kNoLimit);
  if (!log.ok()) return log.status();
  // Oldest first: a later baseline replaces an earlier one and clears the
  // events before it; events after it are replayed on top.
  for (const v1::Decision& d : *log) {
    if (d.action() == v1::ACTION_DRIFT_BASELINE && d.has_drift_baseline()) {
      watch_.RestoreBaseline(d.drift_baseline());
    } else if (d.action() == v1::ACTION_DRIFT && d.has_drift_event()) {
      watch_.RestoreEvent(d.drift_event());
    }
  }
  return absl::OkStatus();
}

void DriftObserver::OnLiveExchange(const v1::Exchange& live, const ExchangeFacts& facts) {
  Observe(live, facts, /*live=*/true);
}

void DriftObserver::OnMirrorExchange(const MirrorResult& copy, const ExchangeFacts& facts) {
  // Noise copies ask production again: what it serves is production's.
  Observe(copy.exchange, facts, /*live=*/false);
}

void DriftObserver::Observe(const v1::Exchange& e, const ExchangeFacts& f, bool live) {
  if (!IsModelCall(e)) return;
  drift::Observation o;
  o.arm = e.arm();
  o.request_id = e.request_id();
  o.time = clock_.Now();
  std::string sticky;
  if (!options_.sticky_header.empty()) {
    for (const v1::Header& h : e.request().headers()) {
      if (h.key() == options_.sticky_header) sticky = h.value();
    }
  }
  o.cluster = controller_.BucketOf(sticky.empty() ? e.request_id() : sticky);
  if (!f.response_model.empty()) o.versions.emplace_back("model", f.response_model);
  if (!f.system_fingerprint.empty()) {
    o.versions.emplace_back("system_fingerprint", f.system_fingerprint);
  }
  for (const std::string& name : config_.version_headers) {
    for (const v1::Header& h : e.response().headers()) {
      if (absl::AsciiStrToLower(h.key()) == name && !h.value().empty()) {
        o.versions.emplace_back(absl::StrCat("header:", name), h.value());
        break;
      }
    }
  }
  const bool judged = e.status_code() > 0 && e.unsupported().empty();
  o.answered = judged && f.outcome != rollout::OutcomeClass::kThrottled &&
               f.outcome != rollout::OutcomeClass::kClientError;
  o.ok = o.answered && f.outcome == rollout::OutcomeClass::kOk;
  o.invalid_output = f.outcome == rollout::OutcomeClass::kInvalidBody || f.invalid_json;
  o.refusal = f.refusal;
  o.finish_length = f.finish_reason == "length";
  if (f.answer_chars.has_value()) o.answer_chars = static_cast<double>(*f.answer_chars);
  if (f.latency.has_value()) o.latency_ms = absl::ToDoubleMilliseconds(*f.latency);
  if (f.ttft.has_value()) o.ttft_ms = absl::ToDoubleMilliseconds(*f.ttft);
  o.cost = f.cost;
  drift::WatchResult r = watch_.Observe(o);
  {
    absl::MutexLock lock(&mu_);
    ++stats_.observed;
  }
  if (!r.events.empty() || !r.baselines.empty()) Act(r, live ? e.request_id() : "");
}

void DriftObserver::Act(const drift::WatchResult& result, const std::string& span_request_id) {
  for (const v1::DriftBaseline& b : result.baselines) {
    v1::Decision d;
    d.set_time_unix_micros(absl::ToUnixMicros(clock_.Now()));
    d.set_action(v1::ACTION_DRIFT_BASELINE);
    d.set_actor("drift");
    d.set_reason(absl::StrCat("baseline of ", Av(rollout::ArmName(b.arm())), " frozen: ", b.cause()));
    *d.mutable_from() = controller_.State();
    *d.mutable_to() = d.from();
    *d.mutable_drift_baseline() = b;
    absl::Status s = store_.AppendDecision(d);
    absl::MutexLock lock(&mu_);
    ++stats_.baselines;
    if (!s.ok()) ++stats_.store_failures;
  }
  for (v1::DriftEvent e : result.events) {
    const bool version = e.kind() == v1::DRIFT_NEW_VERSION || e.kind() == v1::DRIFT_VERSION_MIX;
    const v1::RolloutState state = controller_.State();
    if (version && config_.pause_rollout_on_version_change &&
        (state.phase() == v1::PHASE_SHADOW || state.phase() == v1::PHASE_CANARY)) {
      absl::StatusOr<v1::Decision> paused =
          controller_.Pause("drift", absl::StrCat("drift: ", e.detail()));
      if (paused.ok()) {
        e.set_paused_rollout(true);
        if (options_.on_pause) options_.on_pause(*paused);
        absl::MutexLock lock(&mu_);
        ++stats_.pauses;
      }
    }
    v1::Decision d;
    d.set_time_unix_micros(absl::ToUnixMicros(clock_.Now()));
    d.set_action(v1::ACTION_DRIFT);
    d.set_actor("drift");
    d.set_reason(absl::StrCat(Av(rollout::ArmName(e.arm())), " ", Av(drift::KindName(e.kind())), ": ",
                              e.detail(), e.paused_rollout() ? "; rollout paused" : ""));
    *d.mutable_from() = controller_.State();
    *d.mutable_to() = d.from();
    if (!e.request_id().empty()) d.add_trigger_request_ids(e.request_id());
    *d.mutable_drift_event() = e;
    absl::Status s = store_.AppendDecision(d);
    if (options_.metrics != nullptr) options_.metrics->ObserveDriftEvent(e);
    std::fprintf(stderr, "understudy: drift: %s\n", d.reason().c_str());
    telemetry::ExchangeInfo::Event span_event;
    span_event.name = "understudy.drift";
    span_event.attributes = {
        {"understudy.drift.arm", std::string(rollout::ArmName(e.arm()))},
        {"understudy.drift.kind", std::string(drift::KindName(e.kind()))},
        {"understudy.drift.dimension", e.dimension()},
        {"understudy.drift.detail", e.detail()}};
    if (!e.value().empty()) span_event.attributes.emplace_back("understudy.drift.value", e.value());
    absl::MutexLock lock(&mu_);
    ++stats_.events;
    if (!s.ok()) ++stats_.store_failures;
    if (options_.keep_span_events && !span_request_id.empty() &&
        span_events_.size() < kMaxPendingSpanEvents) {
      span_events_[span_request_id].push_back(std::move(span_event));
    }
  }
}

std::vector<telemetry::ExchangeInfo::Event> DriftObserver::TakeSpanEvents(
    std::string_view request_id) {
  absl::MutexLock lock(&mu_);
  if (span_events_.empty()) return {};
  auto it = span_events_.find(std::string(request_id));
  if (it == span_events_.end()) return {};
  std::vector<telemetry::ExchangeInfo::Event> out = std::move(it->second);
  span_events_.erase(it);
  return out;
}

DriftObserverStats DriftObserver::Stats() const {
  absl::MutexLock lock(&mu_);
  return stats_;
}

}  // namespace understudy::sidecar
