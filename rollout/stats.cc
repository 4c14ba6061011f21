#include "rollout/stats.h"

#include <algorithm>
#include <cmath>

#include <boost/math/special_functions/beta.hpp>
#include <boost/math/special_functions/erf.hpp>

namespace understudy::rollout {

double RatioSprtIncrement(int64_t cand_requests, int64_t cand_errors, int64_t prod_requests,
                          int64_t prod_errors, double r1) {
  if (cand_requests <= 0 || prod_requests <= 0) return 0;
  if (cand_errors + prod_errors <= 0) return 0;
  double s = static_cast<double>(cand_requests) / (cand_requests + prod_requests);
  double theta0 = s;
  double theta1 = r1 * s / (r1 * s + 1 - s);
  return cand_errors * std::log(theta1 / theta0) +
         prod_errors * std::log((1 - theta1) / (1 - theta0));
}

double BernoulliSprtLlr(int64_t k, int64_t n, double p0, double p1) {
  if (n <= 0) return 0;
  return k * std::log(p1 / p0) + (n - k) * std::log((1 - p1) / (1 - p0));
}

MixtureResult NormalMixtureTest(double x, double v, double mu0, double tau, double alpha) {
  MixtureResult r;
  v = std::max(v, 1e-12);
  double t2 = tau * tau;
  double d = x - mu0;
  r.log_lr = 0.5 * std::log(v / (v + t2)) + t2 * d * d / (2 * v * (v + t2));
  double radius =
      std::sqrt(2 * v * (v + t2) / t2 * (std::log(1 / alpha) + 0.5 * std::log((v + t2) / v)));
  r.lower = x - radius;
  r.upper = x + radius;
  return r;
}

namespace {
// log Φ(z), accurate in the far left tail too.
double LogNormalCdf(double z) {
  if (z > -30) return std::log(0.5 * std::erfc(-z / std::sqrt(2.0)));
  // Mills ratio: Φ(z) ≈ φ(z)/|z| for z → −∞.
  return -0.5 * z * z - std::log(-z) - 0.5 * std::log(2 * M_PI);
}
}  // namespace

double NormalCdf(double z) { return 0.5 * std::erfc(-z / std::sqrt(2.0)); }

double NormalQuantile(double p) {
  p = std::clamp(p, 1e-300, 1 - 1e-16);
  return -std::sqrt(2.0) * boost::math::erfc_inv(2 * p);
}

double OneSidedMixtureLogLr(double x, double v, double tau) {
  v = std::max(v, 1e-300);
  double r = std::max(tau * tau / v, 1e-12);
  double k = std::sqrt(r / (v * (1 + r)));
  return std::log(2.0) - 0.5 * std::log1p(r) + x * x * r / (2 * v * (1 + r)) +
         LogNormalCdf(x * k);
}

double OneSidedMixtureRadius(double v, double tau, double level) {
  v = std::max(v, 1e-300);
  level = std::clamp(level, 1e-300, 0.5);
  const double target = std::log(1 / level);
  double r = std::max(tau * tau / v, 1e-12);
  double k = std::sqrt(r / (v * (1 + r)));
  double c = 2 * v * (1 + r) / r;  // x² r/(2v(1+r)) = x²/c
  auto f = [&](double h) { return OneSidedMixtureLogLr(h, v, tau) - target; };
  // f is increasing on h ≥ 0; log Φ(hk) ∈ [−log 2, 0] there, which brackets the root.
  double base = target + 0.5 * std::log1p(r) - std::log(2.0);
  double lo = std::sqrt(c * std::max(0.0, base));
  double hi = std::sqrt(c * (base + std::log(2.0)));
  if (f(lo) >= 0) return lo;
  double h = hi;
  for (int i = 0; i < 60; ++i) {
    double fh = f(h);
    if (std::abs(fh) < 1e-10) break;
    if (fh > 0) hi = h; else lo = h;
    // Newton step, falling back to bisection outside the bracket.
    double z = h * k;
    double mills = std::exp(-0.5 * z * z - LogNormalCdf(z)) / std::sqrt(2 * M_PI);
    double d = 2 * h / c + k * mills;
    double next = d > 0 ? h - fh / d : 0.5 * (lo + hi);
    h = (next > lo && next < hi) ? next : 0.5 * (lo + hi);
    if (hi - lo < 1e-12 * std::max(1.0, hi)) break;
  }
  return h;
}

double ClopperPearsonUpper(int64_t k, int64_t n, double conf) {
  if (n <= 0 || k >= n) return 1;
  // Arguments are in Boost's domain here; the catch keeps exceptions out of
  // the module even so.
  try {
    return boost::math::ibeta_inv(static_cast<double>(k + 1), static_cast<double>(n - k), conf);
  } catch (...) {
    return 1;
  }
}

double ClopperPearsonLower(int64_t k, int64_t n, double conf) {
  if (n <= 0 || k <= 0) return 0;
  try {
    return boost::math::ibeta_inv(static_cast<double>(k), static_cast<double>(n - k + 1),
                                  1 - conf);
  } catch (...) {
    return 0;
  }
}

double ClopperPearsonLowerReal(double k, double n, double conf) {
  if (!(n > 0) || !(k > 0)) return 0;
  k = std::min(k, n);
  try {
    return boost::math::ibeta_inv(k, n - k + 1, 1 - conf);
  } catch (...) {
    return 0;
  }
}

double BernoulliKl(double p1, double p0) {
  return p1 * std::log(p1 / p0) + (1 - p1) * std::log((1 - p1) / (1 - p0));
}

double WaldExpectedSamples(double p0, double p1, double alpha, double beta) {
  double log_a = std::log((1 - beta) / alpha);
  double log_b = std::log(beta / (1 - alpha));
  return ((1 - beta) * log_a + beta * log_b) / BernoulliKl(p1, p0);
}

}  // namespace understudy::rollout
