// sidecar/engine.h
// The exchange pipeline: what happens to an exchange after its ext_proc
// stream has ended, off the production path.
//
//   ExtProcService ─Submit─▶ bounded queue (full → drop + count, never block)
//   worker: classify outcome ─▶ Controller::RecordOutcome (health windows)
//           join pending feedback
//           ShadowPort::MaybeMirror ─(candidate answers later)─▶ queue
//           Store::Write (exchange)            observer (metrics, traces)
//   worker, mirror result: parse + compare::Compare ─▶ RecordComparison,
//           NoiseModel, Store::Write (copy + comparison), observer
//   ticker: Controller::Tick ─▶ decision (persisted by the controller's
//           TransitionLog before it takes effect), health snapshot stored
//
// Example (given const EngineOptions& options, rollout::Controller& controller,
//   storage::Store& store, ShadowPort* mirror, EngineObserver* observer,
//   v1::Exchange exchange):
//   Engine engine(options, controller, store, RealClock::Default(), mirror, observer);
//   engine.StartTicker(absl::Seconds(1));
//   bool queued = engine.Submit(std::move(exchange));  // from the ext_proc service
//   engine.Stop();   // after the ext_proc server has drained
//
// Thread safety: Submit, SubmitFeedback and Tick may be called from any
// thread. Submit never blocks.
#ifndef UNDERSTUDY_SIDECAR_ENGINE_H_
#define UNDERSTUDY_SIDECAR_ENGINE_H_

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "compare/compare.h"
#include "rollout/rollout.h"
#include "shadow/answer.h"
#include "sidecar/feedback.h"
#include "sidecar/pipeline.h"
#include "storage/store.h"
#include "understudy/v1/compare.pb.h"
#include "understudy/v1/exchange.pb.h"
#include "understudy/v1/rollout.pb.h"

namespace understudy::sidecar {

// What the engine learned about one exchange (live or a mirrored copy).
// ExchangeFacts are an answer's facts (shadow/answer.h) with the rollout
// stage it was served in.
struct ExchangeFacts : shadow::AnswerFacts {
  int32_t stage_index = 0;
  int32_t weight_basis_points = 0;
};

// Why a copy of a live request was sent.
enum class MirrorKind {
  kShadow,   // live production request → candidate
  kNoise,    // live production request → production again (noise calibration)
  kReverse,  // live candidate request → production (agreement during canary)
};

struct MirrorResult {
  MirrorKind kind = MirrorKind::kShadow;
  understudy::v1::Exchange exchange;  // the copy: source SHADOW or NOISE, arm = target
  rollout::OutcomeClass outcome = rollout::OutcomeClass::kOk;
};

// ShadowPort sends copies of a live exchange as the shadow policy decides
// and calls `done` once per copy sent (on any thread, quickly). It must not
// block. The shadow client implements it; tests use fakes.
class ShadowPort {
 public:
  virtual ~ShadowPort() = default;
  virtual void MaybeMirror(const understudy::v1::Exchange& live,
                           std::function<void(MirrorResult)> done) = 0;
  // RecordShadowCost adds the cost of a copy sent to the candidate (budget).
  virtual void RecordShadowCost(double cost) {}
};

// EngineObserver hears everything the engine learns: metrics and tracing
// implement it. Calls come from pipeline workers and the ticker; they must
// be quick and must not block.
class EngineObserver {
 public:
  virtual ~EngineObserver() = default;
  virtual void OnLiveExchange(const understudy::v1::Exchange& live, const ExchangeFacts& facts) {}
  virtual void OnMirrorExchange(const MirrorResult& copy, const ExchangeFacts& facts) {}
  virtual void OnComparison(const understudy::v1::Comparison& comparison) {}
  virtual void OnNoise(const understudy::v1::Comparison& production_vs_production,
                       const compare::NoiseModel& noise) {}
  // Every decision that changed the state (judge or operator).
  virtual void OnDecision(const understudy::v1::Decision& decision) {}
  // After every judge tick, with the gates it evaluated.
  virtual void OnTick(const understudy::v1::RolloutState& state,
                      const understudy::v1::HealthSnapshot& health,
                      const understudy::v1::Decision& last_tick) {}
  virtual void OnFeedback(const understudy::v1::Feedback& feedback) {}
};

struct EngineOptions {
  size_t queue_capacity = 4096;
  int workers = 1;
  compare::CompareOptions compare;
  // Health snapshots are stored at most this often (from Tick).
  absl::Duration snapshot_interval = absl::Seconds(10);
  // Feedback that arrives before its exchange waits this long at most (by
  // count) to be joined; request id → arm is remembered for this many ids.
  size_t pending_feedback_capacity = 10000;
  size_t arm_memory = 200000;
  // Feedback through Envoy (SubmitFeedbackJson with a client): at most this
  // many POSTs per client per minute (feedback.max_per_client_per_minute);
  // 0 = no limit.
  int64_t feedback_max_per_client_per_minute = 60;
  // Signed feedback tokens (feedback.signing_key_env): feedback through
  // Envoy must carry a token this signer issued for its request id. Null:
  // none needed.
  std::shared_ptr<const FeedbackSigner> feedback_signer;
  // The routing sticky header (routing.sticky_header, lower-case): the
  // judge's unit is the bucket of its value on each exchange ("" → the
  // request id, as routing does).
  std::string sticky_header;
  // Bodies are decoded by their Content-Encoding within these limits
  // (capture.decode_max_bytes, capture.decode_max_ratio).
  encoding::DecodeLimits decode_limits;
  // Fleet mode (coordination/fleet.h): before each judge tick, begin_tick
  // says whether this replica judges now (the leader, with every replica's
  // evidence merged); when it does not, the tick is a hold and nothing is
  // stored. After a judged tick, end_tick saves the evidence to the fleet,
  // instead of the local store. Unset: the sidecar judges alone.
  std::function<bool()> begin_tick;
  std::function<void(const understudy::v1::HealthSnapshot&)> end_tick;
};

// EngineStats are counters for metrics and tests.
struct EngineStats {
  int64_t exchanges = 0;
  int64_t exchanges_dropped = 0;     // queue full
  int64_t exchanges_abandoned = 0;   // no response: the client left first (not judged)
  int64_t exchanges_unsupported = 0; // answers not judged on content (live and mirrored)
  int64_t mirror_results = 0;
  int64_t mirror_results_dropped = 0;
  int64_t comparisons = 0;
  int64_t noise_comparisons = 0;
  int64_t feedback_joined = 0;
  int64_t feedback_pending = 0;
  int64_t feedback_rejected = 0;      // invalid (bad JSON, score, request id)
  int64_t feedback_duplicates = 0;    // a second score for a request id
  int64_t feedback_rate_limited = 0;  // over the per-client limit
  int64_t feedback_bad_token = 0;     // no valid feedback token (feedback_signer)
  int64_t store_failures = 0;
  int64_t ticks = 0;
  int64_t tick_failures = 0;
};

// ClassifyExchange is shadow::ClassifyExchange for a prepared live or
// mirrored exchange, priced with options.prices.
ExchangeFacts ClassifyExchange(const understudy::v1::Exchange& exchange,
                               const compare::CompareOptions& options,
                               shadow::ParsedAnswer* answer);

class Engine final : public ExchangeSink {
 public:
  // `controller`, `store`, `clock` must outlive the engine; `shadow` and
  // `observer` may be null.
  Engine(EngineOptions options, rollout::Controller& controller, storage::Store& store,
         const Clock& clock, ShadowPort* shadow, EngineObserver* observer);
  ~Engine() override;
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Submit takes a completed live exchange; false when the queue is full.
  bool Submit(understudy::v1::Exchange&& exchange) override;

  // SubmitFeedback validates a score, stores it and joins it to its
  // exchange's arm (now, or when the exchange arrives; the join rewrites the
  // same record, so a request id has one feedback record). One score per
  // request id, and the first one wins: the judge may already have counted
  // it, so a later score could not change what was decided on it, and
  // letting it replace the first would let anyone re-vote. A second score
  // for a request id is AlreadyExists, whether the first came before a
  // restart (it is in the store) or concurrently. InvalidArgument for a bad
  // score or request id; Unavailable when the store write fails (nothing is
  // counted then, and the same score may be sent again).
  [[nodiscard]] absl::Status SubmitFeedback(understudy::v1::Feedback feedback);
  // SubmitFeedbackJson parses `body` (sidecar/feedback.h) and submits it.
  [[nodiscard]] absl::Status SubmitFeedbackJson(std::string_view body,
                                                understudy::v1::FeedbackSource source);
  // Same, for feedback POSTed through Envoy by `client` (the sticky header's
  // value, "" when absent: those clients share one budget) with the
  // request's feedback `token`. Over
  // options.feedback_max_per_client_per_minute it is ResourceExhausted
  // before anything else is looked at; with options.feedback_signer, a
  // token that is missing, expired or not the body's request id's is
  // PermissionDenied before anything is stored.
  [[nodiscard]] absl::Status SubmitFeedbackJson(std::string_view body,
                                                understudy::v1::FeedbackSource source,
                                                std::string_view client, std::string_view token);

  // Tick runs the judge once, stores a health snapshot when due and the
  // judge's evidence always, and tells the observer. The ticker calls it
  // every interval.
  absl::StatusOr<understudy::v1::Decision> Tick();
  void StartTicker(absl::Duration interval);

  // OnManualDecision tells the observer about an operator's command and
  // stores the judge's evidence.
  void OnManualDecision(const understudy::v1::Decision& decision);

  // WaitIdle blocks until every queued item (incl. mirror results already
  // queued) has been handled. Tests use it.
  void WaitIdle();
  // Stop stops the ticker and drains the queue; idempotent.
  void Stop();

  EngineStats Stats() const;
  const compare::NoiseModel& noise() const;

 private:
  void SaveEvidence();

  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace understudy::sidecar

#endif  // UNDERSTUDY_SIDECAR_ENGINE_H_
