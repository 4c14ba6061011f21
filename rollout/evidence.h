// rollout/evidence.h (internal to rollout/)
// The judge's evidence: what it has seen of each arm, per routing bucket,
// and the cluster-level contrasts its gates test (docs/statistics.md §2).
//
// The unit of analysis is the unit of randomisation. The router sends a
// whole routing bucket (rollout/router.h) to one arm, so the requests of a
// user are not independent draws: they are one cluster. Every window here
// therefore keeps, next to its per-arm totals, one cell of aggregates per
// (arm, bucket): requests and errors, timed requests and how many were
// slower than the latency thresholds in force, feedback and cost sums,
// shadow comparisons and major differences. Fixed memory: 10,000 cells per
// arm.
//
// A gate's contrast (e.g. the candidate's error rate over production's) is
// a ratio of sums over buckets. Its variance is the cluster-robust
// ("sandwich") variance over buckets of the contrast's influence function,
// the delta method for ratios (Liang & Zeger 1986; Cameron & Miller 2015,
// "A practitioner's guide to cluster-robust inference"; Deng, Lu & Litz
// 2017, "Trustworthy analysis of online A/B tests", for ratio metrics).
//
// Each user's own history is a covariate: a bucket's excess rate on
// production in earlier strata (against each stratum's production mean)
// predicts its rate now (an always-failing user fails on either arm), and
// adjusting for it (CUPED on the bucket, Deng, Xu, Kohavi & Walker 2013)
// removes that part of the variance. History precedes assignment and has
// mean 0 in every stratum, so the contrast stays unbiased.
//
// Stages are strata. When a stage ends (a promotion, a fresh bake clock)
// its windows are folded into the contrast as one stratum, weighted by the
// Mantel–Haenszel weight w = n_c·n_p/(n_c + n_p) of its sample sizes, and
// the next stage starts empty. Both arms of a stratum cover the same time
// window at the same weight, so a shared outage, a diurnal swing or a new
// mix of users at a stage boundary moves both sides of the same stratum and
// not the contrast. Because the same user can appear in several strata
// (routing is monotone: a candidate user at 1% stays one at 5%), each
// bucket's influence is summed over strata before it is squared.
//
// Thread-compatible: the controller guards an Evidence with its data lock.
#ifndef UNDERSTUDY_ROLLOUT_EVIDENCE_H_
#define UNDERSTUDY_ROLLOUT_EVIDENCE_H_

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "rollout/health.h"
#include "rollout/rollout.h"
#include "understudy/v1/rollout.pb.h"

namespace understudy::rollout {

// Which traffic the candidate is judged on.
enum class CandidateTraffic {
  kLive,    // a canary stage: live requests the router sent to the candidate
  kShadow,  // the shadow stage: shadow calls (the candidate serves no users)
};

// The windows of the evidence.
enum class EvidenceArm { kProduction = 0, kCandidate = 1, kShadow = 2 };
inline constexpr int kEvidenceArms = 3;

// Aggregates of one arm in one bucket (Int = int32_t), or of the whole arm
// (Int = int64_t). The *_above counts are against the thresholds in force
// when each request was recorded: [0] above T (production's quantile),
// [1] above tolerated_ratio × T, [2] above max_ratio × T.
template <typename Int>
struct CellT {
  Int n = 0, e = 0;
  Int lat_n = 0;
  std::array<Int, 3> lat_above{};
  Int ttft_n = 0;
  std::array<Int, 3> ttft_above{};
  Int fb_n = 0;
  Int cost_n = 0;
  Int cmp_n = 0, major = 0;
  double fb_sum = 0;
  double cost_sum = 0;
};
using BucketCell = CellT<int32_t>;
using CellTotals = CellT<int64_t>;

// The contrasts the gates test. Each is oriented so that larger is worse.
enum ContrastId {
  kContrastError = 0,     // log(candidate error rate / production's)
  kContrastLatencyFail,   // P(cand > tolerated_ratio·T) − P(prod > T)
  kContrastLatencyPass,   // P(cand > max_ratio·T) − P(prod > T)
  kContrastTtftFail,
  kContrastTtftPass,
  kContrastSatisfaction,  // production's mean score − the candidate's
  kContrastCost,          // log(candidate mean cost / production's)
  kContrastAgreement,     // share of shadow comparisons that are major diffs
  kNumContrasts,
};
const char* ContrastName(ContrastId k);

// A side of a contrast in one cell: observations x and their sum y.
struct XY {
  double x = 0, y = 0;
};

// The current stage as one stratum of a contrast.
struct Stratum {
  XY c, p;                // side totals (candidate, production)
  double mc = 0, mp = 0;  // side means
  double w = 0;           // Mantel–Haenszel weight n_c·n_p/(n_c + n_p)
  double vc = 0, vp = 0;  // per-observation variances
};

// The current stratum of one contrast, bucket by bucket (row i is bucket
// active[i]): each side's influence w·(e_b)/X with e_b the bucket's
// residual after the regression adjustment, and which sides had data.
struct StratumPass {
  Stratum s;
  double mc = 0, mp = 0;            // adjusted side means
  double gamma_c = 0, gamma_p = 0;  // adjustment slopes
  double raw_c2 = 0, raw_p2 = 0;    // Σ unadjusted residual² per side
  std::vector<double> u, r;
  std::vector<uint8_t> seen;
  std::vector<double> xc, qc, xp, qp;  // scratch
};

// ContrastResult is one contrast over every stratum of the current test.
struct ContrastResult {
  double estimate = 0;         // on the contrast's scale, larger is worse
  double v_cr = 0;             // cluster-robust variance (CR1)
  double v_iid = 0;            // the variance if requests were independent
  double cand_mean = 0;        // Mantel–Haenszel-weighted arm means (natural units)
  double prod_mean = 0;
  double cand_samples = 0;     // observations (requests, timings, scores, ...)
  double prod_samples = 0;
  int64_t cand_clusters = 0;   // buckets with data on each side
  int64_t prod_clusters = 0;
  // The candidate side's CUPED slope in the current stratum (0: none).
  double adjustment_slope = 0;
  // The variance the tests use: the cluster-robust one, never below the
  // independent-requests one (a design effect below 1 is taken as noise).
  double Variance() const;
  // v_cr / v_iid, or 0 when v_iid is 0.
  double DesignEffect() const;
};

// The strata folded into one contrast.
struct ContrastFold {
  double w = 0;        // Σ w_s
  double a = 0;        // Σ w_s · candidate mean
  double b = 0;        // Σ w_s · production mean
  double va = 0;       // Σ w_s² · per-observation variance / n (candidate)
  double vb = 0;
  double xc = 0;       // candidate observations
  double xp = 0;
  double max_log_lr = 0;  // running maximum of the gate's log-LR (p-value)
  // Per bucket (allocated on the first fold): Σ_s w_s·e/X of each side
  // (e: the bucket's adjusted residual), and bit 0 (candidate) / bit 1
  // (production) = had data.
  std::vector<double> u, r;
  std::vector<uint8_t> seen;
  // Per bucket: its production-side observations in the folded strata and
  // its excess over each stratum's production mean (Σ y − m_p·x), the
  // history behind the regression adjustment; and the observations' total.
  std::vector<double> hx, hr;
  double hx_total = 0;
  bool empty() const { return u.empty(); }
};

class Evidence {
 public:
  // `config` must outlive the evidence.
  explicit Evidence(const RolloutConfig& config);

  // Recording. `bucket` must be in [0, kBucketCount).
  void AddOutcome(understudy::v1::Arm arm, const Outcome& o, int32_t bucket, absl::Time now);
  void AddComparison(const ShadowComparison& c, int32_t bucket, absl::Time now);
  void AddFeedback(understudy::v1::Arm arm, double score, int32_t bucket, absl::Time now);

  const ArmWindow& window(EvidenceArm a) const { return windows_[static_cast<int>(a)]; }
  Counters RecentSum(EvidenceArm a, absl::Time now) const;
  // The recent window's slots (slot index, counters), oldest first.
  std::vector<std::pair<int64_t, Counters>> RecentSlots(EvidenceArm a, absl::Time now) const {
    return recent_[static_cast<int>(a)].InWindow(now);
  }

  // Contrast computes contrast `k` over the folded strata and the current
  // stage, whose candidate side is judged on `traffic`.
  ContrastResult Contrast(ContrastId k, CandidateTraffic traffic) const;
  // Contrasts computes every contrast whose bit (1 << k) is in `mask` in
  // one pass over the buckets, into out[k].
  void Contrasts(CandidateTraffic traffic, uint32_t mask,
                 std::array<ContrastResult, kNumContrasts>& out) const;
  ContrastFold& fold(ContrastId k) { return folds_[k]; }
  const ContrastFold& fold(ContrastId k) const { return folds_[k]; }

  // The latency and TTFT thresholds T (ms) that requests are counted
  // against from now on (0 = none yet: timings are not counted).
  void SetThresholds(double latency_ms, double ttft_ms);
  double latency_threshold() const { return lat_threshold_; }
  // The error contrast's raw design effect in the stage folded last (the
  // recent window still holds its requests; 0 before any).
  double previous_stage_design_effect() const { return previous_raw_design_effect_; }
  double ttft_threshold() const { return ttft_threshold_; }

  // FoldStratum ends the current stratum: its per-bucket data (candidate
  // judged on `traffic`) become one stratum of every contrast and start
  // empty; the stage windows go on. The controller folds a stratum every
  // judge.stratum, so both arms are compared within short time windows.
  void FoldStratum(CandidateTraffic traffic);
  // FoldStage ends the current stage: FoldStratum, then the stage windows
  // restart empty. Recent windows and thresholds go on.
  void FoldStage(CandidateTraffic traffic);
  // How clustered the stage's raw error counts are: the log rate ratio's
  // cluster-robust variance over its binomial one (no history adjustment),
  // and the buckets with requests on each side. The critical gate deflates
  // its raw recent counts by it.
  struct StageClustering {
    double design_effect = 0;
    int64_t cand_clusters = 0;
    int64_t prod_clusters = 0;
  };
  StageClustering StageErrorClustering(CandidateTraffic traffic) const;
  // Restart drops the stage windows and every stratum (a new attempt).
  // Recent windows and thresholds go on.
  void Restart();

  // Save writes the windows, strata, thresholds and recent windows (not
  // the identity fields: the controller sets those). Load replaces this
  // evidence with a saved one (InvalidArgument if malformed; nothing
  // changes then).
  void Save(understudy::v1::JudgeEvidence* out) const;
  [[nodiscard]] absl::Status Load(const understudy::v1::JudgeEvidence& in);
  // Merge adds a delta (another Evidence's Save that never folded: what
  // one replica recorded since its last delta, docs/fleet.md) to this
  // evidence: windows, the current stratum's cells, stage error cells and
  // recent slots (by slot index). InvalidArgument if malformed or if it
  // carries folded strata; nothing changes then.
  [[nodiscard]] absl::Status Merge(const understudy::v1::JudgeEvidence& delta);

 private:
  struct ArmBuckets {
    std::vector<BucketCell> cells;  // kBucketCount once used
    CellTotals totals;
    BucketCell& At(int32_t b);
    const BucketCell* Find(int32_t b) const {
      return cells.empty() ? nullptr : &cells[static_cast<size_t>(b)];
    }
  };
  template <typename F>
  void Update(EvidenceArm arm, int32_t bucket, F f);
  void Activate(int32_t bucket);
  void CountTimings(const Outcome& o, BucketCell& cell, CellTotals& totals);
  void AddStageError(int arm, int32_t bucket, bool error);
  struct StageErrCell {
    int32_t n = 0, e = 0;
  };
  EvidenceArm CandidateArm(ContrastId k, CandidateTraffic t) const;
  // Stratify computes the current stratum of contrast `k`.
  void Stratify(ContrastId k, CandidateTraffic t, StratumPass& out) const;

  const RolloutConfig& config_;
  std::array<ArmWindow, kEvidenceArms> windows_;
  std::array<ArmBuckets, kEvidenceArms> buckets_;
  std::array<SlidingCounters, kEvidenceArms> recent_;
  std::array<ContrastFold, kNumContrasts> folds_;
  // Buckets with data in the current stage or any stratum.
  std::vector<int32_t> active_;
  std::vector<uint8_t> is_active_;
  double lat_threshold_ = 0, ttft_threshold_ = 0;
  double previous_raw_design_effect_ = 0;
  // Per arm and bucket: requests and errors since the stage started.
  std::array<std::vector<StageErrCell>, kEvidenceArms> stage_err_;
  mutable StratumPass scratch_;
};

}  // namespace understudy::rollout

#endif  // UNDERSTUDY_ROLLOUT_EVIDENCE_H_
