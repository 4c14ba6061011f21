// compare_bench: bit-parallel LCS vs the plain O(n·m) DP on ~1k-token
// answers, full Compare pairs/s, and each stage of Compare's text path on
// its own (BM_Stage/<n>, labelled), all measured in the same run. Prints
// the LCS speed-up, full Compare pairs/s with its ratio to the DP baseline
// (robust to machine load), and a per-stage breakdown at the end.
//
//   build/bench/compare/compare_bench
//   build/bench/compare/compare_bench --benchmark_filter="CompareFull|LcsDp"
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <re2/re2.h>

#include "compare/compare.h"
#include "compare/json_diff.h"
#include "compare/refusal.h"
#include "compare/text_diff.h"

namespace understudy::compare {
namespace {

// A ~1k-token pair of realistic-ish prose: the candidate rewrites ~15% of the
// production's words, drops and inserts a few, and changes some numbers.
struct Pair {
  std::string production, candidate;
};

Pair MakePair(int words, uint32_t seed) {
  static const char* kVocab[] = {
      "the",     "model",   "answer",  "request",  "latency", "Paris",   "France", "capital",
      "river",   "Seine",   "city",    "people",   "million", "about",   "which",  "is",
      "are",     "was",     "in",      "on",       "for",     "with",    "and",    "or",
      "not",     "service", "deploy",  "rollout",  "shadow",  "compare", "token",  "output",
      "input",   "cost",    "price",   "customer", "support", "ticket",  "refund", "order",
      "policy",  "days",    "within",  "return",   "item",    "account", "email",  "password",
      "reset",   "link",    "click",   "button",   "settings", "page",   "open",   "close",
      "a",       "an",      "this",    "that",     "it",      "we",      "you",    "they"};
  constexpr int kVocabSize = sizeof(kVocab) / sizeof(kVocab[0]);
  std::mt19937 rng(seed);
  std::vector<std::string> a;
  for (int i = 0; i < words; ++i) {
    int r = static_cast<int>(rng() % 100);
    if (r < 4) {
      a.push_back(std::to_string(rng() % 1000));
    } else if (r < 10) {
      a.push_back(".");
    } else if (r < 14) {
      a.push_back(",");
    } else {
      a.push_back(kVocab[rng() % kVocabSize]);
    }
  }
  std::vector<std::string> b;
  for (const std::string& w : a) {
    int r = static_cast<int>(rng() % 100);
    if (r < 10) {
      b.push_back(kVocab[rng() % kVocabSize]);  // substitution
    } else if (r < 13) {
      continue;  // deletion
    } else if (r < 16) {
      b.push_back(w);
      b.push_back(kVocab[rng() % kVocabSize]);  // insertion
    } else {
      b.push_back(w);
    }
  }
  Pair p;
  for (const std::string& w : a) (p.production += w) += ' ';
  for (const std::string& w : b) (p.candidate += w) += ' ';
  return p;
}

struct IdPair {
  std::vector<uint32_t> a, b;
  uint32_t alphabet;
};

IdPair Ids(const Pair& p) {
  internal::Interner in(false);
  IdPair out;
  for (const auto& t : internal::Tokenize(p.production, in)) out.a.push_back(t.id);
  out.alphabet = in.size();
  for (const auto& t : internal::Tokenize(p.candidate, in)) out.b.push_back(t.id);
  return out;
}

const std::vector<IdPair>& IdPairs() {
  static const auto* pairs = [] {
    auto* v = new std::vector<IdPair>;
    for (uint32_t s = 0; s < 16; ++s) v->push_back(Ids(MakePair(1000, s)));
    return v;
  }();
  return *pairs;
}

std::map<std::string, double>& Rates() {
  static auto* m = new std::map<std::string, double>;
  return *m;
}

// LCS-F1 from token ids with the bit-parallel LCS (match table included).
void BM_LcsBitParallel(benchmark::State& state) {
  const auto& pairs = IdPairs();
  size_t i = 0;
  for (auto _ : state) {
    const IdPair& p = pairs[i++ % pairs.size()];
    int lcs = internal::LcsLengthBitParallel(p.a, p.b, p.alphabet);
    benchmark::DoNotOptimize(internal::LcsF1(lcs, p.a.size(), p.b.size()));
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["pairs/s"] = benchmark::Counter(static_cast<double>(state.iterations()),
                                                 benchmark::Counter::kIsRate);
}
BENCHMARK(BM_LcsBitParallel);

// The O(n·m) dynamic-programming baseline on the same pairs.
void BM_LcsDp(benchmark::State& state) {
  const auto& pairs = IdPairs();
  size_t i = 0;
  for (auto _ : state) {
    const IdPair& p = pairs[i++ % pairs.size()];
    int lcs = internal::LcsLengthDp(p.a, p.b);
    benchmark::DoNotOptimize(internal::LcsF1(lcs, p.a.size(), p.b.size()));
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["pairs/s"] = benchmark::Counter(static_cast<double>(state.iterations()),
                                                 benchmark::Counter::kIsRate);
}
BENCHMARK(BM_LcsDp);

// Full Compare (all comparators, verdict, findings) on ~1k-token text pairs:
// BM_CompareFull/0 on the edited pairs; BM_CompareFull/1 on unrelated
// answers (same vocabulary, no shared wording), which share no long runs,
// so chrF must count nearly every n-gram: the worst case.
void BM_CompareFull(benchmark::State& state) {
  const bool unrelated = state.range(0) == 1;
  state.SetLabel(unrelated ? "unrelated" : "edited");
  std::vector<std::pair<ModelAnswer, ModelAnswer>> answers;
  for (uint32_t s = 0; s < 16; ++s) {
    Pair p = MakePair(1000, 100 + s);
    if (unrelated) p.candidate = MakePair(1000, 1000 + s).candidate;
    ModelAnswer a, b;
    a.text = p.production;
    b.text = p.candidate;
    a.finish_reason = b.finish_reason = "stop";
    a.model = "gpt-4o";
    b.model = "gpt-4o-mini";
    a.usage = {800, 1000, 0};
    b.usage = {800, 1050, 0};
    answers.emplace_back(std::move(a), std::move(b));
  }
  CompareOptions options;
  options.prices["gpt-4o"] = {2.5, 10, -1};
  options.prices["gpt-4o-mini"] = {0.15, 0.6, -1};
  if (!CompileRefusalPatterns(&options).ok()) state.SkipWithError("bad patterns");
  CompareContext ctx;
  ctx.production_latency_micros = 900000;
  ctx.candidate_latency_micros = 700000;
  size_t i = 0;
  for (auto _ : state) {
    const auto& [a, b] = answers[i++ % answers.size()];
    benchmark::DoNotOptimize(Compare(a, b, options, ctx));
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["pairs/s"] = benchmark::Counter(static_cast<double>(state.iterations()),
                                                 benchmark::Counter::kIsRate);
}
BENCHMARK(BM_CompareFull)->Arg(0)->Arg(1);

// ------------------------------------------------ per-comparator breakdown --
// Each stage of Compare's text path alone, on the same pairs as
// BM_CompareFull, so their shares of a full comparison can be read off.

struct Prepared {
  std::string production, candidate;
  std::vector<internal::Token> tp, tc;
  std::vector<uint32_t> ip, ic;
  uint32_t alphabet = 0;
  std::vector<internal::EqualRange> equal;  // from the LCS's runs, as Compare makes them
};

const std::vector<Prepared>& PreparedPairs() {
  static const auto* pairs = [] {
    auto* v = new std::vector<Prepared>;
    for (uint32_t s = 0; s < 16; ++s) {
      Pair p = MakePair(1000, 100 + s);
      Prepared x;
      x.production = p.production;
      x.candidate = p.candidate;
      internal::Interner in(false);
      x.tp = internal::Tokenize(x.production, in);
      x.alphabet = in.size();
      x.tc = internal::Tokenize(x.candidate, in);
      for (const auto& t : x.tp) x.ip.push_back(t.id);
      for (const auto& t : x.tc) x.ic.push_back(t.id);
      std::vector<internal::MatchRun> runs;
      internal::LcsLengthBitParallel(x.ip, x.ic, x.alphabet, &runs);
      for (const auto& r : runs) {
        const auto &a0 = x.tp[r.a_begin], &a1 = x.tp[r.a_begin + r.length - 1];
        const auto &b0 = x.tc[r.b_begin], &b1 = x.tc[r.b_begin + r.length - 1];
        x.equal.push_back({a0.begin, a1.begin + a1.size, b0.begin, b1.begin + b1.size});
      }
      v->push_back(std::move(x));
    }
    return v;
  }();
  return *pairs;
}

// lcs_f1 and chrf are the stages as Compare runs them (the LCS recovers
// its runs of equal tokens, and chrF skips the n-grams inside them);
// lcs_length and chrf_plain are each on its own, without that.
enum Stage {
  kExact, kTokenize, kLcs, kChrf, kSalient, kSpans, kRefusal, kJsonSniff, kLcsLength,
  kChrfPlain, kStages
};
const char* const kStageNames[kStages] = {"exact",   "tokenize", "lcs_f1",  "chrf",
                                          "salient", "spans",    "refusal", "json_sniff",
                                          "lcs_length", "chrf_plain"};
constexpr Stage kFirstExtraStage = kLcsLength;  // not part of a full Compare

// BM_Stage/<n>: stage n alone (labelled with its name), per pair.
void BM_Stage(benchmark::State& state) {
  const auto stage = static_cast<Stage>(state.range(0));
  state.SetLabel(kStageNames[stage]);
  const auto& pairs = PreparedPairs();
  CompareOptions options;
  if (!CompileRefusalPatterns(&options).ok()) state.SkipWithError("bad patterns");
  size_t i = 0;
  for (auto _ : state) {
    const Prepared& p = pairs[i++ % pairs.size()];
    switch (stage) {
      case kExact:
        benchmark::DoNotOptimize(internal::NormalisedEqual(p.production, p.candidate, false));
        break;
      case kTokenize: {
        internal::Interner in(false);
        benchmark::DoNotOptimize(internal::Tokenize(p.production, in));
        benchmark::DoNotOptimize(internal::Tokenize(p.candidate, in));
        break;
      }
      case kLcs: {
        std::vector<internal::MatchRun> runs;
        int lcs = internal::LcsLengthBitParallel(p.ip, p.ic, p.alphabet, &runs);
        benchmark::DoNotOptimize(internal::LcsF1(lcs, p.ip.size(), p.ic.size()));
        break;
      }
      case kLcsLength: {
        int lcs = internal::LcsLengthBitParallel(p.ip, p.ic, p.alphabet);
        benchmark::DoNotOptimize(internal::LcsF1(lcs, p.ip.size(), p.ic.size()));
        break;
      }
      case kChrf:
        benchmark::DoNotOptimize(internal::Chrf(p.production, p.candidate, 6, 2, false, p.equal));
        break;
      case kChrfPlain:
        benchmark::DoNotOptimize(internal::Chrf(p.production, p.candidate, 6, 2, false));
        break;
      case kSalient: {
        auto sp = internal::ExtractSalient(p.production, p.tp, false);
        auto sc = internal::ExtractSalient(p.candidate, p.tc, false);
        benchmark::DoNotOptimize(internal::DiffSalient(sp, sc, 1e-9));
        break;
      }
      case kSpans:
        benchmark::DoNotOptimize(internal::DifferingSpans(p.tp, p.tc, 3));
        break;
      case kRefusal: {  // as Compare does it: one RE2::Set scan per text
        bool refused = false;
        for (const std::string* t : {&p.production, &p.candidate}) {
          refused |= options.compiled_refusal_set->Matches(
              std::string_view(*t).substr(0, std::min<size_t>(t->size(), 1024)));
        }
        benchmark::DoNotOptimize(refused);
        break;
      }
      case kJsonSniff:
        benchmark::DoNotOptimize(internal::ExtractJson(p.production));
        benchmark::DoNotOptimize(internal::ExtractJson(p.candidate));
        break;
      case kStages:
        break;
    }
  }
  state.counters["pairs/s"] = benchmark::Counter(static_cast<double>(state.iterations()),
                                                 benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Stage)->DenseRange(0, kStages - 1);

// Parsing a streamed ~1k-token OpenAI answer fed in 64-byte chunks.
void BM_ParseOpenAISse(benchmark::State& state) {
  Pair p = MakePair(1000, 7);
  std::string body;
  std::string text = p.production;
  for (size_t i = 0; i < text.size(); i += 20) {
    body += "data: {\"object\":\"chat.completion.chunk\",\"model\":\"gpt-4o\",\"choices\":"
            "[{\"index\":0,\"delta\":{\"content\":\"" + text.substr(i, 20) +
            "\"},\"finish_reason\":null}]}\n\n";
  }
  body += "data: [DONE]\n\n";
  for (auto _ : state) {
    AnswerParser parser;
    for (size_t i = 0; i < body.size(); i += 64) parser.Feed(std::string_view(body).substr(i, 64));
    benchmark::DoNotOptimize(parser.Finish());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * body.size()));
}
BENCHMARK(BM_ParseOpenAISse);

class RatioReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& r : runs) {
      auto it = r.counters.find("pairs/s");
      if (it == r.counters.end()) continue;
      Rates()[r.benchmark_name()] = it->second.value;
      if (r.benchmark_name().rfind("BM_Stage", 0) == 0) {
        Rates()["stage:" + r.report_label] = it->second.value;
      }
    }
    ConsoleReporter::ReportRuns(runs);
  }
};

}  // namespace
}  // namespace understudy::compare

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  understudy::compare::RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  auto& rates = understudy::compare::Rates();
  double bp = rates["BM_LcsBitParallel"], dp = rates["BM_LcsDp"];
  double full = rates["BM_CompareFull/0"], unrelated = rates["BM_CompareFull/1"];
  if (bp > 0 && dp > 0) {
    std::printf("\nLCS on ~1k-token pairs: bit-parallel %.0f pairs/s, DP %.0f pairs/s, ratio %.1fx"
                " (goal >= 20k pairs/s and >= 20x)\n", bp, dp, bp / dp);
  }
  if (full > 0 && dp > 0) {
    std::printf("Full Compare: %.0f pairs/s (goal >= 5k), %.1fx the DP LCS alone\n", full,
                full / dp);
  }
  if (unrelated > 0 && dp > 0) {
    std::printf("Full Compare on unrelated answers (worst case): %.0f pairs/s, %.1fx the DP LCS"
                " alone\n", unrelated, unrelated / dp);
  }
  // Breakdown: microseconds per pair of each stage alone, and its share of
  // one full Compare (the rest is scoring, findings and the protobuf).
  bool header = false;
  double stages_us = 0;
  for (int stage = 0; stage < understudy::compare::kStages; ++stage) {
    const char* name = understudy::compare::kStageNames[stage];
    auto it = rates.find(std::string("stage:") + name);
    if (it == rates.end() || it->second <= 0) continue;
    if (!header) {
      std::printf("\nPer-stage cost on the same pairs (us/pair, share of full Compare):\n");
      header = true;
    }
    const double us = 1e6 / it->second;
    const bool extra = stage >= understudy::compare::kFirstExtraStage;
    if (stage == understudy::compare::kFirstExtraStage) {
      std::printf("  not part of Compare, for comparison:\n");
    }
    if (!extra) stages_us += us;
    std::printf("  %-11s %8.1f us", name, us);
    if (full > 0) std::printf("  %5.1f%%", 100.0 * us * full / 1e6);
    std::printf("\n");
  }
  if (header && full > 0) {
    std::printf("  %-11s %8.1f us  %5.1f%%\n", "(other)", 1e6 / full - stages_us,
                100.0 * (1e6 / full - stages_us) * full / 1e6);
  }
  benchmark::Shutdown();
  return 0;
}
