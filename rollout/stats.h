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

// Clopper–Pearson one-sided bounds for k successes in n trials at
// confidence `conf` (e.g. 0.99). Upper(·, 0) = 1, Lower(0, ·) = 0.
double ClopperPearsonUpper(int64_t k, int64_t n, double conf);
double ClopperPearsonLower(int64_t k, int64_t n, double conf);

// BernoulliKl is KL(Bernoulli(p1) || Bernoulli(p0)).
double BernoulliKl(double p1, double p0);

// WaldExpectedSamples is Wald's approximation of the expected sample size
// under H1 of the SPRT of p0 against p1 with error rates α, β: the
// SPRT-optimal reference (no sequential test with those error rates needs
// fewer samples on average).
double WaldExpectedSamples(double p0, double p1, double alpha, double beta);

}  // namespace understudy::rollout

#endif  // UNDERSTUDY_ROLLOUT_STATS_H_
