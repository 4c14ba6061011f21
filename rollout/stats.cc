#include "rollout/stats.h"

#include <algorithm>
#include <cmath>

#include <boost/math/special_functions/beta.hpp>

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

double BernoulliKl(double p1, double p0) {
  return p1 * std::log(p1 / p0) + (1 - p1) * std::log((1 - p1) / (1 - p0));
}

double WaldExpectedSamples(double p0, double p1, double alpha, double beta) {
  double log_a = std::log((1 - beta) / alpha);
  double log_b = std::log(beta / (1 - alpha));
  return ((1 - beta) * log_a + beta * log_b) / BernoulliKl(p1, p0);
}

}  // namespace understudy::rollout
