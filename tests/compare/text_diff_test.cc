// Tests for compare/text_diff.cc: LCS, chrF, salient tokens, spans.
#include "compare/text_diff.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <random>

namespace understudy::compare::internal {
namespace {

class TextDiffTest : public ::testing::Test {
 protected:
  std::vector<uint32_t> Ids(const std::vector<Token>& t) {
    std::vector<uint32_t> out;
    for (const Token& x : t) out.push_back(x.id);
    return out;
  }
};

// The bit-parallel LCS must agree with the DP on random sequences of all sizes.
TEST_F(TextDiffTest, BitParallelLcsMatchesDynamicProgramme) {
  std::mt19937 rng(42);
  for (int trial = 0; trial < 300; ++trial) {
    size_t m = rng() % 200, n = rng() % 200;
    uint32_t alphabet = 1 + rng() % 12;
    std::vector<uint32_t> a(m), b(n);
    for (auto& x : a) x = rng() % alphabet;
    // b uses a wider alphabet: ids >= alphabet occur only in b.
    for (auto& x : b) x = rng() % (alphabet + 3);
    ASSERT_EQ(LcsLengthBitParallel(a, b, alphabet + 3), LcsLengthDp(a, b)) << trial;
    // Ids outside a's alphabet may be passed with the tight bound as well.
    ASSERT_EQ(LcsLengthBitParallel(a, b, alphabet), LcsLengthDp(a, b)) << trial;
  }
}

// The runs recovered by the traceback form a common subsequence of the
// LCS's length: in order, disjoint, maximal, each pair of tokens equal.
TEST_F(TextDiffTest, LcsRunsAreALongestCommonSubsequence) {
  std::mt19937 rng(43);
  for (int trial = 0; trial < 300; ++trial) {
    const size_t m = rng() % 300, n = rng() % 300;
    const uint32_t alphabet = 1 + rng() % 12;
    std::vector<uint32_t> a(m), b(n);
    for (auto& x : a) x = rng() % alphabet;
    if (trial % 2 == 0) {
      b = a;  // similar sequences: a few edits
      for (int k = 0; k < 10 && !b.empty(); ++k) b[rng() % b.size()] = rng() % (alphabet + 3);
    } else {
      for (auto& x : b) x = rng() % (alphabet + 3);
    }
    std::vector<MatchRun> runs;
    const int lcs = LcsLengthBitParallel(a, b, alphabet, &runs);
    ASSERT_EQ(lcs, LcsLengthDp(a, b)) << trial;
    int total = 0;
    uint32_t next_a = 0, next_b = 0;
    for (size_t r = 0; r < runs.size(); ++r) {
      const MatchRun& run = runs[r];
      ASSERT_GT(run.length, 0u);
      ASSERT_GE(run.a_begin, next_a) << trial;
      ASSERT_GE(run.b_begin, next_b) << trial;
      // Maximal: a run does not continue straight into the next one.
      if (r > 0) {
        ASSERT_FALSE(run.a_begin == next_a && run.b_begin == next_b) << trial;
      }
      for (uint32_t k = 0; k < run.length; ++k) {
        ASSERT_EQ(a[run.a_begin + k], b[run.b_begin + k]) << trial;
      }
      next_a = run.a_begin + run.length;
      next_b = run.b_begin + run.length;
      total += static_cast<int>(run.length);
    }
    ASSERT_LE(next_a, m);
    ASSERT_LE(next_b, b.size());
    ASSERT_EQ(total, lcs) << trial;
  }
  // Equal sequences are one run.
  std::vector<uint32_t> same = {0, 1, 2, 0, 1, 2, 3};
  std::vector<MatchRun> runs;
  EXPECT_EQ(LcsLengthBitParallel(same, same, 4, &runs), 7);
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].length, 7u);
}

// Past kMaxHistoryWords of kept column vectors the alignment is not
// recovered (no runs), and the length is still right.
TEST_F(TextDiffTest, LcsRunsAreSkippedForHugeInputs) {
  const size_t m = 640, n = kMaxHistoryWords / 10 + 1;  // 10 words per column
  std::vector<uint32_t> a(m), b(n);
  for (size_t i = 0; i < m; ++i) a[i] = static_cast<uint32_t>(i % 5);
  for (size_t j = 0; j < n; ++j) b[j] = static_cast<uint32_t>(j % 5);
  std::vector<MatchRun> runs = {{1, 2, 3}};
  EXPECT_EQ(LcsLengthBitParallel(a, b, 5, &runs), static_cast<int>(m));
  EXPECT_TRUE(runs.empty());
  // Just under the limit they are recovered.
  b.resize(kMaxHistoryWords / 10);
  EXPECT_EQ(LcsLengthBitParallel(a, b, 5, &runs), static_cast<int>(m));
  EXPECT_FALSE(runs.empty());
}

// Within the budget the bounded LCS is exact; past it the chunks' joined
// runs are a common subsequence, at most the LCS, and chunks that differ
// only inside themselves lose nothing.
TEST_F(TextDiffTest, BoundedLcsChunksHugeInputs) {
  std::mt19937 rng(44);
  for (int trial = 0; trial < 60; ++trial) {
    const size_t m = 1 + rng() % 600, n = 1 + rng() % 600;
    std::vector<uint32_t> a(m), b(n);
    for (auto& x : a) x = rng() % 6;
    for (auto& x : b) x = rng() % 8;
    const int dp = LcsLengthDp(a, b);
    size_t chunks = 0;
    std::vector<MatchRun> runs;
    ASSERT_EQ(LcsLengthBounded(a, b, 6, size_t{1} << 30, &runs, &chunks), dp);
    ASSERT_EQ(chunks, 1u);
    const size_t budget = std::max(m, n) + rng() % 3000;
    const int bounded = LcsLengthBounded(a, b, 6, budget, &runs, &chunks);
    ASSERT_LE(bounded, dp) << trial;
    ASSERT_GE(chunks, 1u);
    ASSERT_LE(chunks * (((m + chunks - 1) / chunks + 63) / 64) * ((n + chunks - 1) / chunks),
              budget)
        << trial;
    if (chunks == 1) {
      ASSERT_EQ(bounded, dp);
    }
    int total = 0;
    uint32_t next_a = 0, next_b = 0;
    for (const MatchRun& r : runs) {
      ASSERT_GE(r.a_begin, next_a);
      ASSERT_GE(r.b_begin, next_b);
      for (uint32_t k = 0; k < r.length; ++k) ASSERT_EQ(a[r.a_begin + k], b[r.b_begin + k]);
      next_a = r.a_begin + r.length;
      next_b = r.b_begin + r.length;
      total += static_cast<int>(r.length);
    }
    ASSERT_EQ(total, bounded) << trial;
  }
  // Equal halves stay equal: 100k tokens with one change, in chunks.
  std::vector<uint32_t> a(100000), b;
  for (size_t i = 0; i < a.size(); ++i) a[i] = static_cast<uint32_t>(i % 1000);
  b = a;
  b[70000] = 1000;
  size_t chunks = 0;
  EXPECT_EQ(LcsLengthBounded(a, b, 1001, size_t{1} << 24, nullptr, &chunks), 99999);
  EXPECT_GT(chunks, 1u);
  EXPECT_LE(chunks * ((100000 / chunks + 64) / 64) * (100000 / chunks + 1), size_t{1} << 24);
}

// Word boundaries at exactly 64 and 128 tokens carry correctly.
TEST_F(TextDiffTest, BitParallelLcsHandlesWordBoundaries) {
  for (size_t m : {63u, 64u, 65u, 127u, 128u, 129u}) {
    std::vector<uint32_t> a(m), b(m);
    for (size_t i = 0; i < m; ++i) a[i] = b[i] = static_cast<uint32_t>(i % 7);
    EXPECT_EQ(LcsLengthBitParallel(a, b, 7), static_cast<int>(m));
    b.erase(b.begin() + m / 2);
    EXPECT_EQ(LcsLengthBitParallel(a, b, 7), static_cast<int>(m - 1));
  }
}

// Tokens are case-folded for ids, numbers keep their decimal point.
TEST_F(TextDiffTest, TokenizerFoldsCaseAndKeepsNumbersWhole) {
  Interner in(false);
  std::string text = "Pay 1,250.50 EUR, don't wait!";
  auto t = Tokenize(text, in);
  std::vector<std::string> words;
  for (const Token& x : t) words.push_back(text.substr(x.begin, x.size));
  EXPECT_THAT(words, ::testing::ElementsAre("Pay", "1,250.50", "EUR", ",", "don't", "wait", "!"));
  Interner in2(false);
  EXPECT_EQ(in2.Intern("Paris"), in2.Intern("PARIS"));
  EXPECT_NE(in2.Intern("Paris"), in2.Intern("Lyon"));
}

// chrF is 1 for equal texts, 0 for disjoint ones, and in between otherwise.
TEST_F(TextDiffTest, ChrfRanksCloseTextsAboveDistantOnes) {
  EXPECT_DOUBLE_EQ(Chrf("hello world", "hello world", 6, 2), 1.0);
  EXPECT_DOUBLE_EQ(Chrf("aaaa", "zzzz", 6, 2), 0.0);
  double close = Chrf("the cat sat on the mat", "the cat sat on a mat", 6, 2);
  double far = Chrf("the cat sat on the mat", "quantum physics lecture", 6, 2);
  EXPECT_GT(close, 0.6);
  EXPECT_LT(far, 0.3);
  EXPECT_DOUBLE_EQ(Chrf("abc def", "def abc", 6, 1), Chrf("def abc", "abc def", 6, 1));
}

// "Paris" → "Lyon" and "36" → "37" are salient; reordering is not.
TEST_F(TextDiffTest, SalientDiffCatchesNamesAndNumbersButNotReordering) {
  auto a = ExtractSalient("The meeting is in Paris at 36 Rue Cler on March 3.", false);
  auto b = ExtractSalient("The meeting is in Lyon at 37 Rue Cler on March 3.", false);
  SalientDiff d = DiffSalient(a, b, 1e-9);
  ASSERT_EQ(d.only_a.size(), 2u);
  EXPECT_EQ(d.only_a[0].display, "Paris");
  EXPECT_EQ(d.only_a[1].display, "36");
  ASSERT_EQ(d.only_b.size(), 2u);
  auto c = ExtractSalient("On March 3, the meeting at 36 Rue Cler is in Paris.", false);
  EXPECT_TRUE(DiffSalient(a, c, 1e-9).only_a.empty());
  EXPECT_TRUE(DiffSalient(a, c, 1e-9).only_b.empty());
}

// Negations, URLs, identifiers and tolerant numbers.
TEST_F(TextDiffTest, SalientFindsNegationsUrlsIdentifiersAndToleratesNumbers) {
  auto a = ExtractSalient("You should not call `parse_config` before https://ex.com/a.", false);
  auto b = ExtractSalient("You should call `parse_config` before https://ex.com/b.", false);
  SalientDiff d = DiffSalient(a, b, 1e-9);
  std::vector<SalientKind> kinds;
  for (const Salient& s : d.only_a) kinds.push_back(s.kind);
  EXPECT_THAT(kinds, ::testing::ElementsAre(SalientKind::kNegation, SalientKind::kUrl));
  auto x = ExtractSalient("pi is 3.14159", false);
  auto y = ExtractSalient("pi is 3.1416", false);
  EXPECT_FALSE(DiffSalient(x, y, 1e-9).only_a.empty());
  EXPECT_TRUE(DiffSalient(x, y, 1e-4).only_a.empty());
  auto z = ExtractSalient("It costs 36.0 dollars", false);
  auto w = ExtractSalient("It costs 36 dollars", false);
  EXPECT_TRUE(DiffSalient(z, w, 0).only_a.empty());
}

// The differing span around a single changed word is found.
TEST_F(TextDiffTest, DifferingSpansLocateTheChange) {
  Interner in(false);
  std::string a = "alpha beta gamma delta epsilon zeta";
  std::string b = "alpha beta GAMMA2 delta epsilon zeta";
  auto ta = Tokenize(a, in);
  auto tb = Tokenize(b, in);
  auto spans = DifferingSpans(ta, tb, 3);
  ASSERT_EQ(spans.size(), 1u);
  EXPECT_EQ(spans[0].a_begin, 2u);
  EXPECT_EQ(spans[0].a_end, 3u);
  EXPECT_EQ(spans[0].b_begin, 2u);
  EXPECT_EQ(spans[0].b_end, 3u);
  EXPECT_TRUE(DifferingSpans(ta, ta, 3).empty());
}

// Normalisation collapses whitespace and folds case on request.
TEST_F(TextDiffTest, NormaliseCollapsesWhitespace) {
  EXPECT_EQ(NormaliseText("  Hello \n\n  World  \t", false), "hello world");
  EXPECT_EQ(NormaliseText("Hello  World", true), "Hello World");
  EXPECT_DOUBLE_EQ(LcsF1(0, 0, 0), 1.0);
  EXPECT_DOUBLE_EQ(LcsF1(3, 4, 4), 0.75);
}

}  // namespace
}  // namespace understudy::compare::internal
