// Mirror: which live exchanges are re-sent, and how the request is rebuilt.
#include <re2/re2.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/synchronization/mutex.h"
#include "shadow/headers.h"
#include "shadow/shadow.h"

namespace understudy::shadow {

namespace {

// Spend is kept per minute for the last hour, so the budget slides.
constexpr int kBudgetSlots = 60;

uint64_t Fnv1a(uint64_t h, std::string_view s) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

uint64_t Mix(uint64_t z) {  // splitmix64's finaliser
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace

double SampleDraw(std::string_view salt, std::string_view request_id) {
  uint64_t h = Fnv1a(0xcbf29ce484222325ULL, salt);
  h = Fnv1a(h, std::string_view("\0", 1));
  h = Fnv1a(h, request_id);
  return static_cast<double>(Mix(h) >> 11) * 0x1.0p-53;
}

std::optional<double> Cost(std::string_view model, const compare::Usage& usage,
                           const std::map<std::string, compare::ModelPrice>& prices) {
  const compare::ModelPrice* price = compare::PriceFor(prices, model);
  if (price == nullptr) return std::nullopt;
  return compare::UsageCost(*price, usage);
}

namespace {

// TranslationOf: the translation a live exchange's request needs for `u`;
// FailedPrecondition when there is none (Decide skips those).
absl::StatusOr<std::optional<Translation>> TranslationOf(const v1::Exchange& live,
                                                         const UpstreamConfig& u) {
  return TranslationFor(
      compare::ParseApiKindName(live.api()).value_or(compare::ApiKind::kUnknown), u);
}

// Translatable: whether the live request can be sent to `u` in its API.
bool Translatable(const v1::Exchange& live, const UpstreamConfig& u) {
  absl::StatusOr<std::optional<Translation>> t = TranslationOf(live, u);
  if (!t.ok()) return false;
  return !t->has_value() || ShapeRequest(live.request().body(), u, *t).ok();
}

}  // namespace

UpstreamRequest BuildUpstreamRequest(const ShadowConfig& config, const v1::Exchange& live,
                                     v1::Arm target, v1::ExchangeSource source) {
  UpstreamRequest r;
  r.request_id = live.request_id();
  r.method = live.method().empty() ? "POST" : absl::AsciiStrToUpper(live.method());
  r.path = live.path();
  r.body = live.request().body();
  r.target = target;
  r.source = source;
  r.api = live.api();
  // A request body the sidecar decoded is sent decoded, so its coding is not.
  const bool body_decoded = live.request().body_decode() == v1::BODY_DECODED;
  for (const v1::Header& h : live.request().headers()) {
    std::string key = absl::AsciiStrToLower(h.key());
    if (internal::IsCredentialHeader(key, config) || internal::IsTransportHeader(key) ||
        internal::IsInternalHeader(key) || (body_decoded && key == "content-encoding")) {
      continue;
    }
    r.headers.emplace_back(std::move(key), h.value());
  }
  // The target's shaping, as on the live arm (shadow/shaping.h). The
  // credential itself is added by the client at send time.
  const UpstreamConfig& u = target == v1::ARM_CANDIDATE ? config.candidate : config.production;
  absl::StatusOr<std::optional<Translation>> t = TranslationOf(live, u);
  const std::optional<Translation> translation = t.ok() ? *t : std::nullopt;
  std::string translated_path;
  if (u.request.ChangesBody() || translation.has_value()) {
    // A body that cannot be shaped is sent unchanged (Mirror::Decide skips
    // the requests that cannot be translated).
    absl::StatusOr<ShapedRequest> shaped = ShapeRequest(r.body, u, translation);
    if (shaped.ok()) {
      r.body = std::move(shaped->body);
      translated_path = std::move(shaped->path);
      for (auto& kv : shaped->headers) r.headers.push_back(std::move(kv));
      // The answer comes in the target's API, and is parsed as such.
      if (translation.has_value()) {
        r.api = std::string(compare::ApiKindName(
            translation->to == translate::Provider::kAnthropicMessages
                ? compare::ApiKind::kAnthropicMessages
                : compare::ApiKind::kOpenAiChat));
      }
    }
  }
  HeaderEdits edits = ShapeHeaders(u, r.path, {}, /*credentials=*/false);
  if (edits.path.empty()) edits.path = translated_path;
  auto erase = [&r](std::string_view name) {
    r.headers.erase(std::remove_if(r.headers.begin(), r.headers.end(),
                                   [name](const auto& h) { return h.first == name; }),
                    r.headers.end());
  };
  for (const std::string& name : edits.remove) erase(name);
  for (const auto& [name, value] : edits.set) {
    erase(name);
    r.headers.emplace_back(name, value);
  }
  if (!edits.path.empty()) r.path = edits.path;
  absl::StatusOr<compare::RequestInfo> info = compare::ParseRequest(r.body);
  r.stream = info.ok() && info->stream;
  return r;
}

// ---------------------------------------------------------------- Mirror --

struct Mirror::State {
  explicit State(const Clock& c) : clock(c) {}

  // RecordCost adds spend to the current minute's slot.
  void RecordCost(double cost) {
    if (!(cost > 0)) return;
    const int64_t minute = absl::ToUnixSeconds(clock.Now()) / 60;
    absl::MutexLock lock(&mu);
    Slot& s = slots[static_cast<size_t>(minute % kBudgetSlots)];
    if (s.minute != minute) s = Slot{minute, 0};
    s.cost += cost;
  }

  double SpentLastHour() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    const int64_t minute = absl::ToUnixSeconds(clock.Now()) / 60;
    double total = 0;
    for (const Slot& s : slots) {
      if (s.minute > minute - kBudgetSlots && s.minute <= minute) total += s.cost;
    }
    return total;
  }

  struct Slot {
    int64_t minute = -1;
    double cost = 0;
  };

  const Clock& clock;
  std::vector<std::unique_ptr<RE2>> skip_paths;
  std::map<std::string, compare::ModelPrice> prices;
  mutable absl::Mutex mu;
  std::array<Slot, kBudgetSlots> slots ABSL_GUARDED_BY(mu);
  int64_t decided ABSL_GUARDED_BY(mu) = 0;
  int64_t shadowed ABSL_GUARDED_BY(mu) = 0;
  int64_t noise ABSL_GUARDED_BY(mu) = 0;
  int64_t reverse ABSL_GUARDED_BY(mu) = 0;
  int64_t over_budget ABSL_GUARDED_BY(mu) = 0;
  std::map<std::string, int64_t> skipped ABSL_GUARDED_BY(mu);
};

Mirror::Mirror(const ShadowConfig& config, UpstreamClient& client, const Clock& clock,
               std::map<std::string, compare::ModelPrice> prices)
    : config_(config), client_(client), clock_(clock), state_(std::make_shared<State>(clock)) {
  for (const std::string& p : config_.skip.paths) {
    auto re = std::make_unique<RE2>(p, RE2::Quiet);
    // ParseShadowConfig rejected bad patterns; a hand-built config's bad
    // pattern never matches.
    if (re->ok()) state_->skip_paths.push_back(std::move(re));
  }
  state_->prices = std::move(prices);
}

Mirror::~Mirror() = default;

Mirror::Plan Mirror::Decide(const v1::Exchange& live) {
  Plan plan;
  auto skip = [&](const char* reason) {
    plan = Plan{};
    plan.skip_reason = reason;
  };
  const v1::Arm arm = live.arm();
  const std::string method =
      live.method().empty() ? std::string() : absl::AsciiStrToUpper(live.method());
  if (!config_.enabled) {
    skip("disabled");
  } else if (live.source() != v1::SOURCE_LIVE) {
    skip("not_live");
  } else if (arm != v1::ARM_PRODUCTION && arm != v1::ARM_CANDIDATE) {
    skip("arm");
  } else if (method != "POST" || std::find(config_.skip.methods.begin(), config_.skip.methods.end(),
                                           method) != config_.skip.methods.end()) {
    skip("method");
  } else if (std::any_of(state_->skip_paths.begin(), state_->skip_paths.end(),
                         [&](const auto& re) { return RE2::PartialMatch(live.path(), *re); })) {
    skip("path");
  } else if (std::any_of(live.request().headers().begin(), live.request().headers().end(),
                         [&](const v1::Header& h) {
                           const std::string key = absl::AsciiStrToLower(h.key());
                           return std::find(config_.skip.headers.begin(),
                                            config_.skip.headers.end(),
                                            key) != config_.skip.headers.end();
                         })) {
    skip("header");
  } else if (live.request().body_truncated()) {
    skip("truncated");
  } else if (arm == v1::ARM_PRODUCTION &&
             SampleDraw("shadow", live.request_id()) >= config_.sample_rate) {
    skip("sample");
  } else if (arm == v1::ARM_CANDIDATE &&
             SampleDraw("reverse", live.request_id()) >= config_.reverse_rate) {
    skip("sample");
  } else if (!Translatable(live, arm == v1::ARM_PRODUCTION ? config_.candidate
                                                           : config_.production)) {
    skip("untranslatable");
  } else if (arm == v1::ARM_PRODUCTION) {
    plan.shadow = true;
    plan.noise = SampleDraw("noise", live.request_id()) < config_.noise_rate;
  } else {
    plan.reverse = true;
  }

  absl::MutexLock lock(&state_->mu);
  ++state_->decided;
  if ((plan.shadow || plan.reverse) && config_.budget_per_hour > 0 &&
      state_->SpentLastHour() >= config_.budget_per_hour) {
    plan = Plan{};
    plan.skip_reason = "budget";
    ++state_->over_budget;
  }
  if (!plan.skip_reason.empty()) {
    ++state_->skipped[plan.skip_reason];
  } else {
    state_->shadowed += plan.shadow ? 1 : 0;
    state_->noise += plan.noise ? 1 : 0;
    state_->reverse += plan.reverse ? 1 : 0;
  }
  return plan;
}

UpstreamRequest Mirror::BuildRequest(const v1::Exchange& live, v1::Arm target) const {
  const v1::ExchangeSource source = target == live.arm() ? v1::SOURCE_NOISE : v1::SOURCE_SHADOW;
  return BuildUpstreamRequest(config_, live, target, source);
}

Mirror::Plan Mirror::Dispatch(const v1::Exchange& live, UpstreamClient::Callback done) {
  Plan plan = Decide(live);
  if (!plan.skip_reason.empty()) return plan;
  // The callbacks hold the shared state, not the Mirror, so they may outlive it.
  std::shared_ptr<State> state = state_;
  auto send = [&](v1::Arm target) {
    UpstreamClient::Callback cb = done;
    if (!state->prices.empty()) {
      cb = [state, done](UpstreamResult r) {
        if (r.answer.has_value()) {
          std::optional<double> c = Cost(r.answer->model, r.answer->usage, state->prices);
          if (c.has_value()) state->RecordCost(*c);
        }
        if (done) done(std::move(r));
      };
    }
    client_.TrySend(BuildRequest(live, target), std::move(cb));
  };
  if (plan.shadow) send(v1::ARM_CANDIDATE);
  if (plan.noise) send(v1::ARM_PRODUCTION);
  if (plan.reverse) send(v1::ARM_PRODUCTION);
  return plan;
}

void Mirror::RecordCost(double cost) { state_->RecordCost(cost); }

ShadowStats Mirror::Stats() const {
  ShadowStats s = client_.Stats();
  absl::MutexLock lock(&state_->mu);
  s.decided = state_->decided;
  s.shadowed = state_->shadowed;
  s.noise = state_->noise;
  s.reverse = state_->reverse;
  s.skipped = state_->skipped;
  s.over_budget = state_->over_budget;
  s.budget_used = state_->SpentLastHour();
  return s;
}

}  // namespace understudy::shadow
