#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "common/strings.h"
#include "compare/compare.h"

namespace understudy::compare {

namespace {

std::string Key(std::string_view kind, std::string_view comparator) {
  return absl::StrCat(Av(kind), "/", Av(comparator));
}

}  // namespace

NoiseModel::NoiseModel(double quantile, int64_t min_samples)
    : quantile_(std::clamp(quantile, 0.0, 1.0)), min_samples_(std::max<int64_t>(1, min_samples)) {}

void NoiseModel::Observe(const understudy::v1::Comparison& c) {
  for (const understudy::v1::ComparatorScore& s : c.scores()) {
    if (!s.applicable()) continue;
    double d = std::clamp(1.0 - s.score(), 0.0, 1.0);
    if (std::isnan(d)) continue;
    // Bin 0 holds exact agreement; bins 1..kBins hold (0, 1] in steps.
    int bin = d <= 0 ? 0 : std::clamp(static_cast<int>(std::ceil(d * kBins)), 1, kBins);
    Histogram& overall = hist_[Key("", s.name())];
    ++overall.count;
    ++overall.bins[bin];
    if (!c.request_kind().empty()) {
      Histogram& h = hist_[Key(c.request_kind(), s.name())];
      ++h.count;
      ++h.bins[bin];
    }
  }
}

std::optional<double> NoiseModel::Quantile(const Histogram& h) const {
  if (h.count < min_samples_) return std::nullopt;
  // The smallest bin edge with at least quantile * count samples at or below.
  const double need = quantile_ * static_cast<double>(h.count);
  int64_t seen = 0;
  for (int b = 0; b <= kBins; ++b) {
    seen += h.bins[b];
    if (static_cast<double>(seen) >= need) return static_cast<double>(b) / kBins;
  }
  return 1.0;
}

std::optional<double> NoiseModel::NoiseLevel(std::string_view comparator,
                                             std::string_view request_kind) const {
  if (!request_kind.empty()) {
    auto it = hist_.find(Key(request_kind, comparator));
    if (it != hist_.end()) {
      std::optional<double> q = Quantile(it->second);
      if (q) return q;
    }
  }
  auto it = hist_.find(Key("", comparator));
  if (it == hist_.end()) return std::nullopt;
  return Quantile(it->second);
}

int64_t NoiseModel::Samples(std::string_view comparator, std::string_view request_kind) const {
  auto it = hist_.find(Key(request_kind, comparator));
  return it == hist_.end() ? 0 : it->second.count;
}

}  // namespace understudy::compare
