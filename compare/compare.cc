// Compare: runs every comparator on a production/candidate pair and derives
// the verdict.
#include "compare/compare.h"

#include <re2/re2.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/strings.h"
#include "compare/json_diff.h"
#include "compare/refusal.h"
#include "compare/text_diff.h"

namespace understudy::compare {

namespace {

using understudy::v1::Comparison;
using understudy::v1::Finding;

constexpr size_t kMaxSpanChars = 160;
constexpr size_t kMaxSpans = 3;
// The LCS of two answers takes at most this many 64-bit word steps (about
// 20 ms); past it the answers are aligned in chunks (text_diff.h).
constexpr size_t kMaxLcsWork = size_t{1} << 24;

std::string Clip(std::string_view s, size_t max = kMaxSpanChars) {
  if (s.size() <= max) return std::string(s);
  // Do not cut inside a UTF-8 sequence.
  size_t cut = max;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
  return absl::StrCat(Av(s.substr(0, cut)), "...");
}

double Ratio(double a, double b) {
  if (a <= 0 && b <= 0) return 1.0;
  return std::min(a, b) / std::max(a, b);
}

// Refusals open the answer; matching only its first kRefusalWindow bytes
// keeps long answers cheap (RE2 is linear but not free).
constexpr size_t kRefusalWindow = 1024;

bool Refused(const std::string& text, const std::vector<std::unique_ptr<re2::RE2>>& patterns,
             const RefusalSet* set) {
  const std::string_view window(text.data(), std::min(text.size(), kRefusalWindow));
  return set != nullptr ? set->Matches(window) : MatchesAnyPattern(window, patterns);
}

// How much a finding weighs in the verdict.
enum class Severity { kMinor, kMajor };
Severity MajorIf(bool major) { return major ? Severity::kMajor : Severity::kMinor; }

// FindingRef fills a finding by named setters, each optional. It refers to
// the Builder's storage: use it within the statement that made it.
class FindingRef {
 public:
  explicit FindingRef(Finding& f) : f_(f) {}
  FindingRef& Path(std::string v) {  // JSON path or token position
    f_.set_path(std::move(v));
    return *this;
  }
  FindingRef& Production(std::string v) {  // production's side, clipped
    f_.set_production(std::move(v));
    return *this;
  }
  FindingRef& Candidate(std::string v) {  // the candidate's side, clipped
    f_.set_candidate(std::move(v));
    return *this;
  }
  FindingRef& Message(std::string v) {  // for humans
    f_.set_message(std::move(v));
    return *this;
  }

 private:
  Finding& f_;
};

class Builder {
 public:
  Builder(const CompareOptions& options, const CompareContext& ctx, Comparison* out)
      : options_(options), ctx_(ctx), out_(out) {}

  // Score adds a comparator score; a difference within production's own
  // noise is marked noise_explained.
  understudy::v1::ComparatorScore* Score(const std::string& name, double score,
                                         std::string explanation, bool applicable = true) {
    auto* s = out_->add_scores();
    s->set_name(name);
    s->set_score(std::clamp(std::isnan(score) ? 0.0 : score, 0.0, 1.0));
    s->set_explanation(std::move(explanation));
    s->set_applicable(applicable);
    s->set_noise_explained(applicable && s->score() < 1.0 && Explained(name, 1.0 - s->score()));
    return s;
  }

  // AddFinding starts a finding of `kind` by `comparator` (whose noise may
  // explain it) and returns it for the caller to fill by name:
  //   b.AddFinding("json", "json_changed", Severity::kMajor).Path("$.a").Message("...");
  FindingRef AddFinding(std::string_view comparator, std::string_view kind, Severity severity) {
    Finding& f = findings_.emplace_back();
    f.set_kind(std::string(kind));
    f.set_major(severity == Severity::kMajor);
    comparators_.emplace_back(comparator);
    return FindingRef(f);
  }

  // Flush resolves noise_explained (scores may be added after their
  // findings), notes whether any finding the noise does not explain is
  // major, or minor (other than a text span), and moves the capped, ordered
  // findings into the output.
  void Flush() {
    for (size_t i = 0; i < findings_.size(); ++i) {
      Finding& f = findings_[i];
      f.set_noise_explained(ExplainedComparator(comparators_[i]));
      if (f.noise_explained()) continue;
      if (f.major()) {
        unexplained_major_ = true;
      } else if (f.kind() != "text_span") {
        unexplained_minor_ = true;
      }
    }
    // Major findings first, then by insertion order (stable): deterministic.
    std::stable_sort(findings_.begin(), findings_.end(),
                     [](const Finding& a, const Finding& b) { return a.major() > b.major(); });
    for (size_t i = 0; i < findings_.size() && i < static_cast<size_t>(options_.max_findings);
         ++i) {
      *out_->add_findings() = std::move(findings_[i]);
    }
    findings_.clear();
  }

  bool unexplained_major() const { return unexplained_major_; }
  bool unexplained_minor() const { return unexplained_minor_; }

 private:
  bool Explained(const std::string& name, double diff) const {
    if (ctx_.noise == nullptr) return false;
    std::optional<double> level = ctx_.noise->NoiseLevel(name, out_->request_kind());
    if (!level) return false;
    return diff <= *level * (1 + options_.noise_relative_margin) + options_.noise_absolute_margin;
  }
  bool ExplainedComparator(const std::string& name) const {
    for (const auto& s : out_->scores()) {
      if (s.name() == name) return s.noise_explained();
    }
    return false;
  }

  const CompareOptions& options_;
  const CompareContext& ctx_;
  Comparison* out_;
  std::vector<Finding> findings_;
  std::vector<std::string> comparators_;
  bool unexplained_major_ = false, unexplained_minor_ = false;
};

std::string ErrorText(const ModelAnswer& a) {
  if (a.error) return absl::StrCat(a.error->type, ": ", a.error->message);
  return "stream truncated or malformed";
}

// StartComparison fills what every comparison carries besides its scores:
// ids, time, arm, models (production's falls back to the request's) and
// latencies.
void StartComparison(const std::string& production_model, const std::string& candidate_model,
                     const CompareContext& ctx, Comparison* out) {
  out->set_request_id(ctx.request_id);
  out->set_time_unix_micros(ctx.time_unix_micros);
  out->set_live_arm(ctx.live_arm);
  out->set_production_model(!production_model.empty() ? production_model : ctx.request.model);
  out->set_candidate_model(candidate_model);
  out->set_production_latency_micros(ctx.production_latency_micros);
  out->set_candidate_latency_micros(ctx.candidate_latency_micros);
  out->set_production_ttft_micros(ctx.production_ttft_micros);
  out->set_candidate_ttft_micros(ctx.candidate_ttft_micros);
}

// ScoreCostAndLatency prices both answers and scores cost, latency and time
// to first token, which apply whatever the verdict.
void ScoreCostAndLatency(const Usage& production, const Usage& candidate,
                         const CompareOptions& options, const CompareContext& ctx, Builder& b,
                         Comparison* out) {
  const ModelPrice* pp = PriceFor(options.prices, out->production_model());
  const ModelPrice* cp = PriceFor(options.prices, out->candidate_model());
  if (pp != nullptr) out->set_production_cost(UsageCost(*pp, production));
  if (cp != nullptr) out->set_candidate_cost(UsageCost(*cp, candidate));
  auto add_delta = [&](const char* name, double prod, double cand, bool applicable,
                       const char* unit, double scale) {
    b.Score(name, Ratio(prod, cand),
            applicable ? absl::StrFormat("production %.6g%s, candidate %.6g%s (%+.1f%%)",
                                         prod / scale, unit, cand / scale, unit,
                                         prod > 0 ? 100.0 * (cand - prod) / prod : 0.0)
                       : "unknown",
            applicable);
  };
  add_delta("cost", out->production_cost(), out->candidate_cost(), pp != nullptr && cp != nullptr,
            "", 1);
  add_delta("latency", static_cast<double>(ctx.production_latency_micros),
            static_cast<double>(ctx.candidate_latency_micros),
            ctx.production_latency_micros > 0 && ctx.candidate_latency_micros > 0, " ms", 1000);
  add_delta("ttft", static_cast<double>(ctx.production_ttft_micros),
            static_cast<double>(ctx.candidate_ttft_micros),
            ctx.production_ttft_micros > 0 && ctx.candidate_ttft_micros > 0, " ms", 1000);
}

// ErrorVerdict adds an error finding for each failed side (its error text
// given, or null when it did not fail) and, when either failed, flushes and
// sets the error verdict; returns whether it did.
bool ErrorVerdict(const std::optional<std::string>& production_error,
                  const std::optional<std::string>& candidate_error, Builder& b,
                  Comparison* out) {
  if (!production_error && !candidate_error) return false;
  if (production_error) {
    b.AddFinding("error", "error", Severity::kMajor)
        .Path("production")
        .Production(*production_error)
        .Message(absl::StrCat("production failed: ", *production_error));
  }
  if (candidate_error) {
    b.AddFinding("error", "error", Severity::kMajor)
        .Path("candidate")
        .Candidate(*candidate_error)
        .Message(absl::StrCat("candidate failed: ", *candidate_error));
  }
  b.Flush();
  out->set_verdict(production_error && candidate_error ? understudy::v1::VERDICT_BOTH_ERROR
                   : candidate_error ? understudy::v1::VERDICT_CANDIDATE_ERROR
                                     : understudy::v1::VERDICT_PRODUCTION_ERROR);
  return true;
}

std::optional<std::string> FailureOf(const ModelAnswer& a) {
  if (a.error.has_value() || !a.stream_ok) return ErrorText(a);
  return std::nullopt;
}

std::optional<std::string> FailureOf(const EmbeddingAnswer& a) {
  if (a.error.has_value()) return absl::StrCat(a.error->type, ": ", a.error->message);
  return std::nullopt;
}

// Cosine is the cosine similarity of two equally long vectors, summed in
// double: 1 for two zero vectors, 0 for one.
double Cosine(const std::vector<float>& a, const std::vector<float>& b) {
  double dot = 0, na = 0, nb = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    const double x = a[i], y = b[i];
    dot += x * y;
    na += x * x;
    nb += y * y;
  }
  if (na == 0 && nb == 0) return 1;
  if (na == 0 || nb == 0) return 0;
  return std::clamp(dot / std::sqrt(na * nb), -1.0, 1.0);
}

std::string SpanText(std::string_view text, const std::vector<internal::Token>& tokens,
                     uint32_t begin, uint32_t end) {
  if (begin >= end) return "";
  size_t from = tokens[begin].begin;
  size_t to = tokens[end - 1].begin + tokens[end - 1].size;
  return Clip(text.substr(from, to - from));
}

// CompareText scores the text. With `structured` (both answers are valid
// JSON, diffed by CompareJson) it adds no salient or span findings, which
// would repeat the JSON paths.
void CompareText(const ModelAnswer& p, const ModelAnswer& c, const CompareOptions& o,
                 bool structured, Builder& b, double* similarity, bool* exact) {
  *exact = internal::NormalisedEqual(p.text, c.text, o.case_sensitive);
  b.Score("exact", *exact ? 1 : 0,
          *exact ? "normalised texts are equal" : "normalised texts differ");

  // Tokens hashed to dense ids once; production first so that candidate ids
  // outside production's alphabet match nothing in the LCS.
  internal::Interner interner(o.case_sensitive);
  std::vector<internal::Token> tp = internal::Tokenize(p.text, interner);
  const uint32_t alphabet = interner.size();
  std::vector<internal::Token> tc = internal::Tokenize(c.text, interner);
  std::vector<uint32_t> ip(tp.size()), ic(tc.size());
  for (size_t i = 0; i < tp.size(); ++i) ip[i] = tp[i].id;
  for (size_t i = 0; i < tc.size(); ++i) ic[i] = tc[i].id;
  // Huge answers are aligned in chunks so that one comparison stays within
  // kMaxLcsWork (tens of milliseconds).
  std::vector<internal::MatchRun> runs;
  size_t chunks = 1;
  const int lcs =
      internal::LcsLengthBounded(ip, ic, alphabet, kMaxLcsWork, *exact ? nullptr : &runs, &chunks);
  const double f1 = internal::LcsF1(lcs, ip.size(), ic.size());
  b.Score("lcs_f1", f1,
          absl::StrFormat("LCS %d of %d/%d tokens%s, ROUGE-L F1 %.3f", lcs, ip.size(), ic.size(),
                          chunks > 1 ? absl::StrCat(" (", chunks, " aligned chunks)") : "", f1));
  // chrF ignores whitespace, so the raw texts (case-folded inside) give
  // the chrF of the normalised ones. The LCS's runs of equal tokens tell
  // it which stretches the texts share (it checks them), so only the
  // n-grams around the differences need counting.
  double chrf = 1.0;
  if (!*exact) {
    std::vector<internal::EqualRange> equal;
    equal.reserve(runs.size());
    for (const internal::MatchRun& r : runs) {
      const internal::Token& a0 = tp[r.a_begin];
      const internal::Token& a1 = tp[r.a_begin + r.length - 1];
      const internal::Token& b0 = tc[r.b_begin];
      const internal::Token& b1 = tc[r.b_begin + r.length - 1];
      if (a1.begin + a1.size - a0.begin < static_cast<uint32_t>(o.chrf_order))
        continue;  // too short to help
      equal.push_back({a0.begin, a1.begin + a1.size, b0.begin, b1.begin + b1.size});
    }
    chrf = internal::Chrf(p.text, c.text, o.chrf_order, o.chrf_beta, o.case_sensitive, equal);
  }
  b.Score("chrf", chrf,
          absl::StrFormat("chrF%g (orders 1..%d) %.3f", o.chrf_beta, o.chrf_order, chrf));
  *similarity = (f1 + chrf) / 2;
  auto* sim = b.Score("similarity", *similarity,
                      absl::StrFormat("mean of lcs_f1 and chrf: %.3f", *similarity));
  (void)sim;

  const double ratio = Ratio(static_cast<double>(tp.size()), static_cast<double>(tc.size()));
  b.Score("length_ratio", ratio,
          absl::StrFormat("%d vs %d tokens (ratio %.2f)", tp.size(), tc.size(), ratio),
          !tp.empty() || !tc.empty());
  if (ratio < o.min_length_ratio && !structured) {
    b.AddFinding("length_ratio", "length", Severity::kMinor)
        .Production(absl::StrCat(tp.size(), " tokens"))
        .Candidate(absl::StrCat(tc.size(), " tokens"))
        .Message(absl::StrFormat("candidate is %.0f%% of production's length",
                                 tp.empty() ? 0.0 : 100.0 * tc.size() / tp.size()));
  }

  // Salient tokens: numbers, names, identifiers, URLs, negations.
  auto sp = internal::ExtractSalient(p.text, tp, o.case_sensitive);
  auto sc = internal::ExtractSalient(c.text, tc, o.case_sensitive);
  internal::SalientDiff sd = internal::DiffSalient(sp, sc, o.numeric_tolerance);
  const size_t differing = sd.only_a.size() + sd.only_b.size();
  const double salient_score =
      sd.total == 0 ? 1.0 : 1.0 - static_cast<double>(differing) / static_cast<double>(sd.total);
  b.Score("salient", salient_score,
          absl::StrFormat("%d of %d salient tokens differ", differing, sd.total), sd.total > 0);
  if (structured) return;
  // Pair removals with additions of the same kind: "Paris" → "Lyon".
  // Salient findings are all major and of one comparator, so past
  // max_findings of them none could be shown (Flush keeps the first
  // max_findings majors) nor change the verdict: they are not built.
  const size_t cap = static_cast<size_t>(o.max_findings);
  size_t added = 0;
  std::vector<bool> used(sd.only_b.size(), false);
  for (const internal::Salient& a : sd.only_a) {
    if (added++ == cap) break;
    const internal::Salient* match = nullptr;
    for (size_t j = 0; j < sd.only_b.size(); ++j) {
      if (!used[j] && sd.only_b[j].kind == a.kind) {
        used[j] = true;
        match = &sd.only_b[j];
        break;
      }
    }
    const char* kind = internal::SalientKindName(a.kind);
    if (match != nullptr) {
      b.AddFinding("salient", "salient_token", Severity::kMajor)
          .Path(absl::StrCat("char ", a.begin))
          .Production(a.display)
          .Candidate(match->display)
          .Message(absl::StrCat(kind, " changed: \"", a.display, "\" -> \"", match->display, "\""));
    } else {
      b.AddFinding("salient", "salient_token", Severity::kMajor)
          .Path(absl::StrCat("char ", a.begin))
          .Production(a.display)
          .Message(absl::StrCat(kind, " \"", a.display, "\" missing in candidate"));
    }
  }
  for (size_t j = 0; j < sd.only_b.size() && added < cap; ++j) {
    if (used[j]) continue;
    ++added;
    const internal::Salient& s = sd.only_b[j];
    b.AddFinding("salient", "salient_token", Severity::kMajor)
        .Path(absl::StrCat("char ", s.begin))
        .Candidate(s.display)
        .Message(absl::StrCat(internal::SalientKindName(s.kind), " \"", s.display,
                              "\" only in candidate"));
  }

  // Differing spans, largest first.
  if (!*exact) {
    for (const internal::Span& s : internal::DifferingSpans(tp, tc, kMaxSpans)) {
      b.AddFinding("similarity", "text_span", Severity::kMinor)
          .Path(absl::StrCat("tokens ", s.a_begin, "..", s.a_end, " / ", s.b_begin, "..", s.b_end))
          .Production(SpanText(p.text, tp, s.a_begin, s.a_end))
          .Candidate(SpanText(c.text, tc, s.b_begin, s.b_end))
          .Message("text differs");
    }
  }
}

// CompareJson diffs the answers' JSON; returns true when both are valid JSON.
bool CompareJson(const ModelAnswer& p, const ModelAnswer& c, const CompareOptions& o,
                 const CompareContext& ctx, Builder& b) {
  std::optional<std::string_view> jp = internal::ExtractJson(p.text);
  std::optional<std::string_view> jc = internal::ExtractJson(c.text);
  const bool expected = ctx.request.json_expected;
  if (!expected && !jp && !jc) {
    b.Score("json", 1, "neither answer is JSON", false);
    return false;
  }
  internal::JsonDiffOptions jo;
  jo.numeric_tolerance = o.numeric_tolerance;
  jo.case_sensitive = o.case_sensitive;
  jo.ignore_paths = o.json_ignore_paths;
  jo.max_entries = static_cast<size_t>(o.max_findings);
  internal::JsonDiffResult r = internal::DiffJson(jp.value_or(""), jc.value_or(""), jo);
  if (!r.production_valid || !r.candidate_valid) {
    if (!r.production_valid && !r.candidate_valid) {
      b.Score("json", expected ? 1 : 1, "neither answer is valid JSON", expected);
      if (expected) {
        b.AddFinding("json", "json_invalid", Severity::kMinor)
            .Path("$")
            .Production(Clip(p.text))
            .Candidate(Clip(c.text))
            .Message("JSON was requested but neither answer is valid JSON");
      }
      return false;
    }
    const bool cand_bad = !r.candidate_valid;
    const std::string err = cand_bad ? r.candidate_error : r.production_error;
    b.Score(
        "json", 0,
        absl::StrCat(cand_bad ? "candidate" : "production", " answer is not valid JSON: ", err));
    b.AddFinding("json", expected ? "json_invalid" : "json_missing", MajorIf(cand_bad || !expected))
        .Path("$")
        .Production(Clip(p.text))
        .Candidate(Clip(c.text))
        .Message(absl::StrCat(cand_bad ? "candidate" : "production",
                              expected ? " answer is not valid JSON although JSON was requested ("
                                       : " answer is not JSON while the other is (",
                              err, ")"));
    return false;
  }
  b.Score("json", r.Score(), absl::StrFormat("%d of %d JSON leaves differ", r.differing, r.leaves));
  for (const internal::JsonDiffEntry& e : r.entries) {
    std::string msg;
    if (e.kind == "json_added") {
      msg = absl::StrCat(e.path, " only in candidate: ", e.candidate);
    } else if (e.kind == "json_removed") {
      msg = absl::StrCat(e.path, " missing in candidate (production: ", e.production, ")");
    } else if (e.kind == "json_type_changed") {
      msg = absl::StrCat(e.path, " changed type: ", e.production, " -> ", e.candidate);
    } else {
      msg = absl::StrCat(e.path, " changed: ", e.production, " -> ", e.candidate);
    }
    b.AddFinding("json", e.kind, Severity::kMajor)
        .Path(e.path)
        .Production(e.production)
        .Candidate(e.candidate)
        .Message(std::move(msg));
  }
  return true;
}

void CompareToolCalls(const ModelAnswer& p, const ModelAnswer& c, const CompareOptions& o,
                      Builder& b) {
  if (p.tool_calls.empty() && c.tool_calls.empty()) {
    b.Score("tool_calls", 1, "no tool calls", false);
    return;
  }
  internal::JsonDiffOptions jo;
  jo.numeric_tolerance = o.numeric_tolerance;
  jo.case_sensitive = true;
  jo.ignore_paths = o.json_ignore_paths;
  jo.max_entries = static_cast<size_t>(o.max_findings);
  std::vector<bool> used(c.tool_calls.size(), false);
  size_t matched = 0;
  double arg_score_sum = 0;
  for (size_t i = 0; i < p.tool_calls.size(); ++i) {
    const ToolCall& pt = p.tool_calls[i];
    size_t j = 0;
    while (j < c.tool_calls.size() && (used[j] || c.tool_calls[j].name != pt.name)) ++j;
    const std::string where = absl::StrCat("tool_calls[", i, "](", pt.name, ")");
    if (j == c.tool_calls.size()) {
      b.AddFinding("tool_calls", "tool_call_missing", Severity::kMajor)
          .Path(where)
          .Production(Clip(pt.arguments_json))
          .Message(absl::StrCat("candidate does not call ", pt.name));
      continue;
    }
    used[j] = true;
    ++matched;
    const ToolCall& ct = c.tool_calls[j];
    if (pt.arguments_json == ct.arguments_json) {
      arg_score_sum += 1;
      continue;
    }
    internal::JsonDiffResult r = internal::DiffJson(pt.arguments_json, ct.arguments_json, jo);
    if (!r.production_valid || !r.candidate_valid) {
      b.AddFinding("tool_calls", "tool_args_invalid", MajorIf(!r.candidate_valid))
          .Path(where)
          .Production(Clip(pt.arguments_json))
          .Candidate(Clip(ct.arguments_json))
          .Message(absl::StrCat(pt.name, " arguments are not valid JSON in ",
                                r.candidate_valid ? "production" : "candidate"));
      continue;
    }
    arg_score_sum += r.Score();
    for (const internal::JsonDiffEntry& e : r.entries) {
      std::string path = absl::StrCat(where, e.path.substr(1));
      b.AddFinding("tool_calls", e.kind, Severity::kMajor)
          .Path(path)
          .Production(e.production)
          .Candidate(e.candidate)
          .Message(absl::StrCat(pt.name, " argument ", e.path, ": ",
                                e.production.empty() ? "(absent)" : e.production, " -> ",
                                e.candidate.empty() ? "(absent)" : e.candidate));
    }
  }
  for (size_t j = 0; j < c.tool_calls.size(); ++j) {
    if (used[j]) continue;
    b.AddFinding("tool_calls", "tool_call_extra", Severity::kMajor)
        .Path(absl::StrCat("candidate.tool_calls[", j, "]"))
        .Candidate(Clip(c.tool_calls[j].arguments_json))
        .Message(absl::StrCat("candidate also calls ", c.tool_calls[j].name));
  }
  const double total = static_cast<double>(p.tool_calls.size() + c.tool_calls.size());
  const double score = total == 0 ? 1.0
                                  : (2.0 * static_cast<double>(matched) / total) *
                                        (matched == 0 ? 0.0 : arg_score_sum / matched);
  b.Score("tool_calls", score,
          absl::StrFormat("%d of %d/%d calls matched by name; mean argument score %.3f", matched,
                          p.tool_calls.size(), c.tool_calls.size(),
                          matched == 0 ? 0.0 : arg_score_sum / matched));
}

}  // namespace

std::string_view VerdictName(understudy::v1::Verdict verdict) {
  switch (verdict) {
    case understudy::v1::VERDICT_EQUIVALENT:
      return "equivalent";
    case understudy::v1::VERDICT_MINOR_DIFF:
      return "minor_diff";
    case understudy::v1::VERDICT_MAJOR_DIFF:
      return "major_diff";
    case understudy::v1::VERDICT_CANDIDATE_ERROR:
      return "candidate_error";
    case understudy::v1::VERDICT_PRODUCTION_ERROR:
      return "production_error";
    case understudy::v1::VERDICT_BOTH_ERROR:
      return "both_error";
    default:
      return "unspecified";
  }
}

std::optional<understudy::v1::Verdict> ParseVerdictName(std::string_view name) {
  std::string lower = absl::AsciiStrToLower(Av(name));
  std::string_view n = lower;
  if (n.substr(0, 8) == "verdict_") n.remove_prefix(8);
  for (understudy::v1::Verdict v :
       {understudy::v1::VERDICT_EQUIVALENT, understudy::v1::VERDICT_MINOR_DIFF,
        understudy::v1::VERDICT_MAJOR_DIFF, understudy::v1::VERDICT_CANDIDATE_ERROR,
        understudy::v1::VERDICT_PRODUCTION_ERROR, understudy::v1::VERDICT_BOTH_ERROR}) {
    if (n == VerdictName(v)) return v;
  }
  return std::nullopt;
}

Comparison Compare(const ModelAnswer& production, const ModelAnswer& candidate,
                   const CompareOptions& options, const CompareContext& ctx) {
  Comparison out;
  StartComparison(production.model, candidate.model, ctx, &out);
  const bool json_kind =
      ctx.request.json_expected || internal::ExtractJson(production.text).has_value();
  out.set_request_kind(json_kind ? "json" : "text");
  Builder b(options, ctx, &out);

  // Cost, latency and time to first token apply whatever the verdict.
  ScoreCostAndLatency(production.usage, candidate.usage, options, ctx, b, &out);
  if (ErrorVerdict(FailureOf(production), FailureOf(candidate), b, &out)) return out;

  // Refusal on one side only.
  std::shared_ptr<const std::vector<std::unique_ptr<re2::RE2>>> refusals =
      options.compiled_refusals;
  std::shared_ptr<const RefusalSet> refusal_set = options.compiled_refusal_set;
  if (!refusals && !options.refusal_patterns.empty()) {
    CompareOptions copy;
    copy.refusal_patterns = options.refusal_patterns;
    if (CompileRefusalPatterns(&copy).ok()) {
      refusals = copy.compiled_refusals;
      refusal_set = copy.compiled_refusal_set;
    }
  }
  // A set built from other patterns (compiled_refusals replaced by hand)
  // is not used.
  if (refusal_set != nullptr && refusal_set->patterns() != refusals.get()) refusal_set = nullptr;
  const bool prod_refused = refusals && Refused(production.text, *refusals, refusal_set.get());
  const bool cand_refused = refusals && Refused(candidate.text, *refusals, refusal_set.get());
  b.Score("refusal", prod_refused == cand_refused ? 1 : 0,
          prod_refused && cand_refused ? "both refused"
          : prod_refused               ? "only production refused"
          : cand_refused               ? "only candidate refused"
                                       : "neither refused",
          refusals != nullptr);
  if (prod_refused != cand_refused) {
    b.AddFinding("refusal", "refusal", Severity::kMajor)
        .Production(Clip(production.text))
        .Candidate(Clip(candidate.text))
        .Message(cand_refused ? "candidate refused; production answered"
                              : "production refused; candidate answered");
  }

  // Finish reason.
  const bool finish_same = production.finish_reason == candidate.finish_reason;
  b.Score("finish_reason", finish_same ? 1 : 0,
          absl::StrCat("production \"", production.finish_reason, "\", candidate \"",
                       candidate.finish_reason, "\""),
          !production.finish_reason.empty() || !candidate.finish_reason.empty());
  if (!finish_same) {
    const bool major = !production.finish_reason.empty() && !candidate.finish_reason.empty();
    b.AddFinding("finish_reason", "finish_reason", MajorIf(major))
        .Production(production.finish_reason)
        .Candidate(candidate.finish_reason)
        .Message(absl::StrCat("finish reason differs: ", production.finish_reason, " -> ",
                              candidate.finish_reason));
  }

  CompareToolCalls(production, candidate, options, b);
  const bool structured = CompareJson(production, candidate, options, ctx, b);
  double similarity = 1;
  bool exact = true;
  CompareText(production, candidate, options, structured, b, &similarity, &exact);
  b.Flush();

  // Verdict.
  const bool identical =
      exact && finish_same && production.tool_calls.size() == candidate.tool_calls.size() &&
      std::equal(production.tool_calls.begin(), production.tool_calls.end(),
                 candidate.tool_calls.begin(), [](const ToolCall& x, const ToolCall& y) {
                   return x.name == y.name && x.arguments_json == y.arguments_json;
                 });
  // For two JSON answers the JSON diff, not the text, measures similarity.
  const std::string sim_name = structured ? "json" : "similarity";
  bool sim_explained = false;
  for (const auto& s : out.scores()) {
    if (s.name() == sim_name) {
      sim_explained = s.noise_explained();
      if (structured) similarity = s.score();
    }
  }
  const bool major = b.unexplained_major(), minor = b.unexplained_minor();
  understudy::v1::Verdict verdict;
  if (identical) {
    verdict = understudy::v1::VERDICT_EQUIVALENT;
  } else if (major || (similarity < options.major_similarity && !sim_explained)) {
    verdict = understudy::v1::VERDICT_MAJOR_DIFF;
  } else if ((similarity >= options.equivalent_similarity || sim_explained) && !minor) {
    verdict = understudy::v1::VERDICT_EQUIVALENT;
  } else {
    verdict = understudy::v1::VERDICT_MINOR_DIFF;
  }
  out.set_verdict(verdict);
  return out;
}

Comparison CompareEmbeddings(const EmbeddingAnswer& production, const EmbeddingAnswer& candidate,
                             const CompareOptions& options, const CompareContext& ctx) {
  Comparison out;
  StartComparison(production.model, candidate.model, ctx, &out);
  out.set_request_kind("embedding");
  Builder b(options, ctx, &out);
  ScoreCostAndLatency(production.usage, candidate.usage, options, ctx, b, &out);
  if (ErrorVerdict(FailureOf(production), FailureOf(candidate), b, &out)) return out;

  // Dimension: as many vectors, pairwise of equal size.
  const size_t np = production.vectors.size(), nc = candidate.vectors.size();
  size_t first_mismatch = std::min(np, nc), mismatches = 0;
  for (size_t i = 0; i < np && i < nc; ++i) {
    if (production.vectors[i].size() == candidate.vectors[i].size()) continue;
    if (mismatches++ == 0) first_mismatch = i;
  }
  const bool dims_ok = np == nc && mismatches == 0;
  if (np != nc) {
    b.AddFinding("dimension", "embedding_count", Severity::kMajor)
        .Path("data")
        .Production(absl::StrCat(np, " vectors"))
        .Candidate(absl::StrCat(nc, " vectors"))
        .Message(absl::StrCat("candidate returned ", nc, " embeddings, production ", np));
  }
  if (mismatches > 0) {
    const size_t dp = production.vectors[first_mismatch].size();
    const size_t dc = candidate.vectors[first_mismatch].size();
    b.AddFinding("dimension", "embedding_dimension", Severity::kMajor)
        .Path(absl::StrCat("data[", first_mismatch, "]"))
        .Production(absl::StrCat(dp, " dimensions"))
        .Candidate(absl::StrCat(dc, " dimensions"))
        .Message(absl::StrCat("candidate embeddings have ", dc, " dimensions, production ", dp,
                              " (", mismatches, " of ", std::min(np, nc), " inputs differ)"));
  }
  b.Score("dimension", dims_ok ? 1 : 0,
          dims_ok ? absl::StrCat(np, " vectors of equal dimension")
                  : absl::StrCat("production ", np, " vectors, candidate ", nc, "; ", mismatches,
                                 " pairs of different dimension"));

  // Cosine similarity of each pair; the verdict follows the mean.
  double mean = 1;
  if (!dims_ok) {
    b.Score("cosine", 0, "not comparable: dimensions differ", false);
  } else {
    std::vector<std::pair<double, size_t>> cosines;  // (cosine, input)
    cosines.reserve(np);
    double sum = 0;
    for (size_t i = 0; i < np; ++i) {
      cosines.emplace_back(Cosine(production.vectors[i], candidate.vectors[i]), i);
      sum += cosines.back().first;
    }
    if (np > 0) mean = sum / static_cast<double>(np);
    std::stable_sort(cosines.begin(), cosines.end());  // worst first; ties by input
    b.Score("cosine", mean,
            np == 0 ? std::string("no inputs")
                    : absl::StrFormat("mean cosine %.4f over %d inputs, min %.4f (input %d)",
                                      mean, np, cosines.front().first, cosines.front().second),
            np > 0);
    for (const auto& [cosine, input] : cosines) {
      if (cosine >= options.embedding_min_cosine) break;
      b.AddFinding("cosine", "embedding_cosine", Severity::kMinor)
          .Path(absl::StrCat("data[", input, "]"))
          .Production(absl::StrFormat("%d dimensions", production.vectors[input].size()))
          .Candidate(absl::StrFormat("cosine %.4f", cosine))
          .Message(absl::StrFormat("input %d: cosine %.4f is below %.4f", input, cosine,
                                   options.embedding_min_cosine));
    }
  }
  b.Flush();

  bool cosine_explained = false;
  for (const auto& s : out.scores()) {
    if (s.name() == "cosine") cosine_explained = s.noise_explained();
  }
  understudy::v1::Verdict verdict;
  if (!dims_ok || b.unexplained_major() ||
      (mean < options.embedding_major_cosine && !cosine_explained)) {
    verdict = understudy::v1::VERDICT_MAJOR_DIFF;
  } else if (mean >= options.embedding_min_cosine || cosine_explained) {
    verdict = understudy::v1::VERDICT_EQUIVALENT;
  } else {
    verdict = understudy::v1::VERDICT_MINOR_DIFF;
  }
  out.set_verdict(verdict);
  return out;
}

}  // namespace understudy::compare
