// Prices and costs of answers (per-model prices per 1M tokens from config).
#include <algorithm>

#include "compare/compare.h"

namespace understudy::compare {

const ModelPrice* PriceFor(const std::map<std::string, ModelPrice>& prices,
                           std::string_view model) {
  if (model.empty() || prices.empty()) return nullptr;
  auto it = prices.find(std::string(model));
  if (it != prices.end()) return &it->second;
  const ModelPrice* best = nullptr;
  size_t best_len = 0;
  for (const auto& [name, price] : prices) {
    if (!name.empty() && name.size() > best_len && model.substr(0, name.size()) == name) {
      best = &price;
      best_len = name.size();
    }
  }
  return best;
}

double UsageCost(const ModelPrice& p, const Usage& u) {
  const double cached_price =
      p.cached_input_per_million >= 0 ? p.cached_input_per_million : p.input_per_million;
  const int64_t input = std::max<int64_t>(u.input_tokens, 0);
  const int64_t cached = std::clamp<int64_t>(u.cached_tokens, 0, input);
  return (static_cast<double>(input - cached) * p.input_per_million +
          static_cast<double>(cached) * cached_price +
          static_cast<double>(std::max<int64_t>(u.output_tokens, 0)) * p.output_per_million) /
         1e6;
}

std::optional<double> AnswerCost(const ModelAnswer& answer, std::string_view request_model,
                                 const CompareOptions& options) {
  const ModelPrice* price = PriceFor(options.prices, answer.model);
  if (price == nullptr) price = PriceFor(options.prices, request_model);
  if (price == nullptr) return std::nullopt;
  return UsageCost(*price, answer.usage);
}

}  // namespace understudy::compare
