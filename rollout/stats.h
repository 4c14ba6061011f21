// rollout/stats.h (internal to rollout/)
// The sequential tests behind the judge. All are valid under continuous
// monitoring: looking after every request does not inflate the error rate.
#ifndef UNDERSTUDY_ROLLOUT_STATS_H_
#define UNDERSTUDY_ROLLOUT_STATS_H_

#include <cstdint>

namespace understudy::rollout {

// RatioSprtIncrement is the log-likelihood ratio contributed by one batch of
// exchanges to the SPRT of H1: p_c = r1·p_p against H0: p_c = p_p, given the
// errors seen in the batch. Conditioning on the batch's error count makes
// production's unknown rate cancel out: each error is the candidate's with
// probability θ(r) = r·s / (r·s + 1 − s), s = n_c / (n_c + n_p) (Poisson
// approximation, exact as rates → 0). Under H0 the running product of
// exp(increments) is a nonnegative martingale, so P(ever ≥ 1/α) ≤ α.
double RatioSprtIncrement(int64_t cand_requests, int64_t cand_errors, int64_t prod_requests,
                          int64_t prod_errors, double r1);

// BernoulliSprtLlr is k·log(p1/p0) + (n−k)·log((1−p1)/(1−p0)).
double BernoulliSprtLlr(int64_t k, int64_t n, double p0, double p1);

// NormalMixtureTest is the mixture SPRT (mSPRT) for an estimate x with
// variance v of a mean μ, against H0: μ = mu0, with a N(mu0, τ²) mixing
// distribution (Robbins; Johari et al. 2017). Reject when log_lr ≥ log(1/α).
// [lower, upper] is the matching always-valid (1−α) confidence sequence.
struct MixtureResult {
  double log_lr = 0;
  double lower = 0;
  double upper = 0;
};
MixtureResult NormalMixtureTest(double x, double v, double mu0, double tau, double alpha);

// One-sided normal-mixture test (the "always-valid" test behind every gate,
// docs/statistics.md §2). For an estimate x of an effect δ whose variance
// is v, against H0: δ ≤ 0, mix the likelihood ratio over δ ~ half-normal
// with scale τ on δ > 0 (Robbins 1970; Howard, Ramdas, McAuliffe & Sekhon
// 2021, "Time-uniform, nonparametric, nonasymptotic confidence
// sequences", one-sided normal mixture):
//   L(x) = 2/sqrt(1+r) · exp(x²·r / (2v(1+r))) · Φ(x·sqrt(r/(v(1+r)))),  r = τ²/v.
// For a Gaussian process with independent increments in information time
// 1/v, L is a nonnegative martingale under δ = 0, so P(ever L ≥ 1/level) ≤
// level (Ville). OneSidedMixtureLogLr is log L; OneSidedMixtureRadius is
// the h ≥ 0 with log L(h) = log(1/level): x − h is an always-valid lower
// confidence bound on δ (and x + h, by symmetry, an upper one).
double OneSidedMixtureLogLr(double x, double v, double tau);
double OneSidedMixtureRadius(double v, double tau, double level);

// NormalQuantile is Φ⁻¹(p) for p in (0, 1); NormalCdf is Φ.
double NormalQuantile(double p);
double NormalCdf(double z);

// Clopper–Pearson one-sided bounds for k successes in n trials at
// confidence `conf` (e.g. 0.99). Upper(·, 0) = 1, Lower(0, ·) = 0.
double ClopperPearsonUpper(int64_t k, int64_t n, double conf);
double ClopperPearsonLower(int64_t k, int64_t n, double conf);
// The same lower bound for real-valued (effective) counts: k successes of
// n, 0 ≤ k ≤ n (a Kish effective sample: counts divided by a design effect).
double ClopperPearsonLowerReal(double k, double n, double conf);

// BernoulliKl is KL(Bernoulli(p1) || Bernoulli(p0)).
double BernoulliKl(double p1, double p0);

// WaldExpectedSamples is Wald's approximation of the expected sample size
// under H1 of the SPRT of p0 against p1 with error rates α, β: the
// SPRT-optimal reference (no sequential test with those error rates needs
// fewer samples on average).
double WaldExpectedSamples(double p0, double p1, double alpha, double beta);

}  // namespace understudy::rollout

#endif  // UNDERSTUDY_ROLLOUT_STATS_H_
