// Tests that pin the fast paths of compare/ (issue #3) to straightforward
// reference implementations written here, so the fast code cannot drift:
// chrF (radix-sorted packed n-grams and the hash fallback), normalised
// equality without allocation, the 8-byte token hash, salient tokens from
// shared tokens, and Compare's self-equivalence and determinism.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "compare/compare.h"
#include "compare/refusal.h"
#include "compare/text_diff.h"
#include "tests/common/test_util.h"

namespace understudy::compare {
namespace {

using internal::Chrf;

// ------------------------------------------------------ reference chrF --

bool RefSpace(unsigned char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

// Characters of a UTF-8 text, one code point per valid sequence (shortest
// form, no surrogates, <= U+10FFFF); any other byte is a character of its
// own, written 0x110000 + byte.
std::vector<uint32_t> RefChars(const std::string& text, bool case_sensitive) {
  std::vector<uint32_t> out;
  size_t i = 0;
  while (i < text.size()) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      ++i;
      if (RefSpace(c)) continue;
      out.push_back(!case_sensitive && c >= 'A' && c <= 'Z' ? c + 32u : c);
      continue;
    }
    int len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 0;
    uint32_t cp = len == 4 ? c & 0x07u : len == 3 ? c & 0x0Fu : c & 0x1Fu;
    bool ok = len > 0 && i + len <= text.size();
    for (int k = 1; ok && k < len; ++k) {
      const unsigned char d = static_cast<unsigned char>(text[i + k]);
      ok = (d & 0xC0) == 0x80;
      cp = (cp << 6) | (d & 0x3Fu);
    }
    const uint32_t min_cp = len == 2 ? 0x80 : len == 3 ? 0x800 : 0x10000;
    ok = ok && cp >= min_cp && cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF);
    if (ok) {
      out.push_back(cp);
      i += len;
    } else {
      out.push_back(0x110000u + c);
      ++i;
    }
  }
  return out;
}

// chrF by the book: count every n-gram of each order in a std::map.
double RefChrf(const std::string& a_text, const std::string& b_text, int order, double beta,
               bool case_sensitive) {
  const std::vector<uint32_t> a = RefChars(a_text, case_sensitive);
  const std::vector<uint32_t> b = RefChars(b_text, case_sensitive);
  if (a.empty() && b.empty()) return 1.0;
  if (a.empty() || b.empty()) return 0.0;
  order = std::clamp(order, 1, 12);
  double p_sum = 0, r_sum = 0;
  int orders = 0;
  for (int n = 1; n <= order; ++n) {
    std::map<std::vector<uint32_t>, int64_t> ca, cb;
    int64_t total_a = 0, total_b = 0;
    for (size_t i = 0; i + n <= a.size(); ++i, ++total_a) {
      ++ca[std::vector<uint32_t>(a.begin() + i, a.begin() + i + n)];
    }
    for (size_t i = 0; i + n <= b.size(); ++i, ++total_b) {
      ++cb[std::vector<uint32_t>(b.begin() + i, b.begin() + i + n)];
    }
    int64_t match = 0;
    for (const auto& [gram, count] : ca) {
      auto it = cb.find(gram);
      if (it != cb.end()) match += std::min(count, it->second);
    }
    if (total_a == 0 && total_b == 0) continue;
    ++orders;
    if (total_b > 0) p_sum += static_cast<double>(match) / static_cast<double>(total_b);
    if (total_a > 0) r_sum += static_cast<double>(match) / static_cast<double>(total_a);
  }
  if (orders == 0) return 1.0;
  const double p = p_sum / orders, r = r_sum / orders;
  if (p == 0 && r == 0) return 0.0;
  const double b2 = beta * beta;
  return (1 + b2) * p * r / (b2 * p + r);
}

std::string Utf8(uint32_t cp) {
  std::string s;
  if (cp < 0x80) {
    s += static_cast<char>(cp);
  } else if (cp < 0x800) {
    s += static_cast<char>(0xC0 | (cp >> 6));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    s += static_cast<char>(0xE0 | (cp >> 12));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    s += static_cast<char>(0xF0 | (cp >> 18));
    s += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return s;
}

// Random text over `alphabet` code points starting at `first`, with spaces.
std::string RandomText(std::mt19937& rng, size_t chars, uint32_t first, uint32_t alphabet) {
  std::string s;
  for (size_t i = 0; i < chars; ++i) {
    if (rng() % 6 == 0) {
      s += ' ';
    } else {
      s += Utf8(first + rng() % alphabet);
    }
  }
  return s;
}

// A small worked example: orders 1 and 2 of "abc" / "abd" match 2/3 and
// 1/2, so P = R = F = 7/12.
TEST(ChrfTest, WorkedExample) {
  EXPECT_DOUBLE_EQ(Chrf("abc", "abd", 2, 1), 7.0 / 12);
  EXPECT_DOUBLE_EQ(RefChrf("abc", "abd", 2, 1, true), 7.0 / 12);
  // Whitespace is removed before n-grams are taken; empty texts.
  EXPECT_DOUBLE_EQ(Chrf("a b c", "abd", 2, 1), 7.0 / 12);
  EXPECT_DOUBLE_EQ(Chrf(" \n", "\t", 6, 2), 1.0);
  EXPECT_DOUBLE_EQ(Chrf("", "x", 6, 2), 0.0);
}

// Hand-picked pairs, including case, short texts, repeats and non-ASCII.
TEST(ChrfTest, MatchesReferenceOnPinnedPairs) {
  const std::vector<std::pair<std::string, std::string>> pairs = {
      {"the cat sat on the mat", "the cat sat on a mat"},
      {"The capital of France is Paris.", "Paris is the capital of France."},
      {"Hello World", "hello world"},
      {"aaaaaaaaaaaa", "aaaa"},
      {"abababababab", "babababa"},
      {"ab", "abcdefghijkl"},
      {"x", "y"},
      {"caf\xC3\xA9 cr\xC3\xA8me", "cafe creme"},                       // é è vs e
      {"\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E", "\xE6\x97\xA5\xE6\x9C\xAC"},  // 日本語 / 日本
      {"rocket \xF0\x9F\x9A\x80!", "rocket \xF0\x9F\x9A\x81!"},       // 4-byte emoji
      {"bad \xFF\xFE bytes \xC3", "bad \xFF bytes \xC3\xA9"},           // invalid UTF-8
      {"\xE0\x80\xAF overlong", "/ overlong"},
      {"Line one.\n\nLine  two:\t1,250.50 EUR", "line one. line two: 1,250.5 eur"},
  };
  for (const auto& [a, b] : pairs) {
    for (bool cs : {true, false}) {
      for (int order : {1, 2, 3, 6, 12}) {
        for (double beta : {1.0, 2.0}) {
          EXPECT_DOUBLE_EQ(Chrf(a, b, order, beta, cs), RefChrf(a, b, order, beta, cs))
              << "\"" << a << "\" vs \"" << b << "\" order " << order << " beta " << beta
              << " cs " << cs;
        }
      }
    }
  }
}

// Random texts over small alphabets (many repeated n-grams), ASCII and
// not, of every length from empty to a few thousand characters.
TEST(ChrfTest, MatchesReferenceOnRandomTexts) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 200; ++trial) {
    const uint32_t first = trial % 3 == 0 ? 'a' : trial % 3 == 1 ? 0xE9 : 0x4E00;
    const uint32_t alphabet = 1 + rng() % 12;
    const size_t len_a = rng() % (trial < 150 ? 40 : 3000);
    std::string a = RandomText(rng, len_a, first, alphabet);
    // b: a mutated copy or an independent text.
    std::string b;
    if (rng() % 2 == 0) {
      b = a;
      for (int k = 0; k < 5 && !b.empty(); ++k) b[rng() % b.size()] = 'a' + rng() % 4;
    } else {
      b = RandomText(rng, rng() % 50, first, alphabet);
    }
    const int order = 1 + static_cast<int>(rng() % 8);
    ASSERT_DOUBLE_EQ(Chrf(a, b, order, 2, false), RefChrf(a, b, order, 2, false))
        << "trial " << trial;
  }
}

// More than 1023 distinct characters (or long orders) cannot be packed in
// 64 bits and take the hash-table path; it must agree as well.
TEST(ChrfTest, LargeAlphabetsAndLongOrdersMatchReference) {
  std::mt19937 rng(11);
  std::string a = RandomText(rng, 3000, 0x4E00, 2500);
  std::string b = a.substr(0, a.size() / 2) + RandomText(rng, 800, 0x4E00, 2500);
  EXPECT_DOUBLE_EQ(Chrf(a, b, 6, 2), RefChrf(a, b, 6, 2, true));
  std::string c = RandomText(rng, 2000, 'a', 26);
  std::string d = c.substr(100) + c.substr(0, 100);
  for (int order : {7, 9, 12}) {
    EXPECT_DOUBLE_EQ(Chrf(c, d, order, 2), RefChrf(c, d, order, 2, true)) << order;
  }
  // Over 32767 n-gram positions in all: counted in 32-bit lanes.
  std::string e = RandomText(rng, 20000, 'a', 4);
  std::string f = e.substr(3000) + RandomText(rng, 3000, 'a', 4);
  for (int order : {3, 6, 12}) {
    EXPECT_DOUBLE_EQ(Chrf(e, f, order, 2), RefChrf(e, f, order, 2, true)) << order;
  }
}

// A text of over a million characters (whose scratch buffers are released
// afterwards) scores 1 against itself, and later calls are unaffected.
TEST(ChrfTest, HugeTextThenSmallOnes) {
  std::mt19937 rng(13);
  const std::string huge = RandomText(rng, 1200000, 'a', 26);
  EXPECT_DOUBLE_EQ(Chrf(huge, huge, 6, 2), 1.0);
  EXPECT_GT(Chrf(huge, huge.substr(1000), 6, 2), 0.99);
  const std::string a = "the cat sat on the mat", b = "the cat sat on a mat";
  EXPECT_DOUBLE_EQ(Chrf(a, b, 6, 2), RefChrf(a, b, 6, 2, true));
}

// Word-level edits of a text over a small vocabulary (so words repeat and
// an alignment has many choices): the kind of pair Compare sees.
std::string EditWords(std::mt19937& rng, const std::string& text,
                      const std::vector<std::string>& vocab) {
  std::string out;
  size_t i = 0;
  while (i < text.size()) {
    size_t j = text.find(' ', i);
    if (j == std::string::npos) j = text.size();
    const std::string word = text.substr(i, j - i);
    const int r = static_cast<int>(rng() % 100);
    if (r < 10) {
      out += vocab[rng() % vocab.size()];
    } else if (r < 14) {
      out += "";  // deleted
    } else if (r < 18) {
      out += word + (rng() % 2 ? "  " : "\n") + vocab[rng() % vocab.size()];
    } else {
      out += word;
    }
    out += rng() % 5 == 0 ? "\t" : " ";
    i = j + 1;
  }
  return out;
}

std::string RandomWords(std::mt19937& rng, size_t words, const std::vector<std::string>& vocab) {
  std::string out;
  for (size_t k = 0; k < words; ++k) (out += vocab[rng() % vocab.size()]) += ' ';
  return out;
}

// Equal ranges as Compare makes them: the byte spans of the LCS's runs of
// equal tokens.
std::vector<internal::EqualRange> RunsAsRanges(const std::string& a, const std::string& b,
                                               bool case_sensitive) {
  internal::Interner in(case_sensitive);
  const auto ta = internal::Tokenize(a, in);
  const uint32_t alphabet = in.size();
  const auto tb = internal::Tokenize(b, in);
  std::vector<uint32_t> ia, ib;
  for (const auto& t : ta) ia.push_back(t.id);
  for (const auto& t : tb) ib.push_back(t.id);
  std::vector<internal::MatchRun> runs;
  internal::LcsLengthBitParallel(ia, ib, alphabet, &runs);
  std::vector<internal::EqualRange> out;
  for (const auto& r : runs) {
    const auto &a0 = ta[r.a_begin], &a1 = ta[r.a_begin + r.length - 1];
    const auto &b0 = tb[r.b_begin], &b1 = tb[r.b_begin + r.length - 1];
    out.push_back({a0.begin, a1.begin + a1.size, b0.begin, b1.begin + b1.size});
  }
  return out;
}

// Equal-range hints only save work: with the LCS's true runs, and with
// hints that are wrong in every way (unequal, overlapping, out of order,
// out of bounds, splitting a UTF-8 sequence), the score is exactly the
// unhinted one, which matches the reference.
TEST(ChrfTest, EqualRangeHintsNeverChangeTheScore) {
  std::mt19937 rng(17);
  const std::vector<std::string> vocab = {"the", "The", "cat", "sat", "on", "mat", ".", ",",
                                          "café", "naïve", "東京", "36", "3.14",
                                          "configuration_value", "x"};
  int hinted = 0;
  for (int trial = 0; trial < 300; ++trial) {
    const std::string a = RandomWords(rng, rng() % (trial < 200 ? 30 : 400), vocab);
    const std::string b = rng() % 8 == 0 ? RandomWords(rng, rng() % 50, vocab)
                                         : EditWords(rng, a, vocab);
    const bool cs = trial % 2 == 0;
    const int order = 1 + static_cast<int>(rng() % 8);
    const double plain = Chrf(a, b, order, 2, cs);
    ASSERT_DOUBLE_EQ(plain, RefChrf(a, b, order, 2, cs)) << trial;
    std::vector<internal::EqualRange> runs = RunsAsRanges(a, b, cs);
    hinted += runs.empty() ? 0 : 1;
    ASSERT_EQ(Chrf(a, b, order, 2, cs, runs), plain) << "true runs, trial " << trial;
    // Garbage: random ranges, each kind of mistake.
    std::vector<internal::EqualRange> bad = runs;
    const auto rnd = [&](size_t n) { return static_cast<uint32_t>(n == 0 ? 0 : rng() % (n + 2)); };
    for (int k = 0; k < 6; ++k) {
      const uint32_t a0 = rnd(a.size()), b0 = rnd(b.size());
      bad.insert(bad.begin() + static_cast<std::ptrdiff_t>(rng() % (bad.size() + 1)),
                 {a0, a0 + rnd(20), b0, b0 + rnd(20)});
    }
    if (!runs.empty()) {
      internal::EqualRange shifted = runs[rng() % runs.size()];
      ++shifted.a_begin;  // may split a character, or make the ranges unequal
      bad.push_back(shifted);
      std::reverse(bad.begin(), bad.end());
    }
    ASSERT_EQ(Chrf(a, b, order, 2, cs, bad), plain) << "bad hints, trial " << trial;
  }
  EXPECT_GT(hinted, 200);  // the runs did take the hinted path
  // A range that is equal but claimed twice (overlapping) is used once.
  const std::string x = "the quick brown fox jumps over the lazy dog";
  const std::string y = "the quick brown fox leaps over the lazy dog";
  const internal::EqualRange r{0, 19, 0, 19};
  EXPECT_EQ(Chrf(x, y, 6, 2, true, {r, r}), Chrf(x, y, 6, 2));
  EXPECT_EQ(Chrf(x, y, 6, 2, true, {r}), Chrf(x, y, 6, 2));
  // Wholly equal texts given as one range: every n-gram is shared.
  EXPECT_EQ(Chrf(x, x, 6, 2, true, {{0, 43, 0, 43}}), 1.0);
}

// The same through the hash fallback (alphabets too large to pack).
TEST(ChrfTest, EqualRangeHintsOnTheHashPath) {
  std::mt19937 rng(19);
  std::vector<std::string> vocab;
  for (int k = 0; k < 400; ++k) vocab.push_back(RandomText(rng, 1 + rng() % 4, 0x4E00, 3000));
  for (int trial = 0; trial < 20; ++trial) {
    const std::string a = RandomWords(rng, 300, vocab);
    const std::string b = EditWords(rng, a, vocab);
    const std::vector<internal::EqualRange> runs = RunsAsRanges(a, b, true);
    ASSERT_FALSE(runs.empty());
    const double plain = Chrf(a, b, 6, 2);
    EXPECT_DOUBLE_EQ(plain, RefChrf(a, b, 6, 2, true));
    EXPECT_EQ(Chrf(a, b, 6, 2, true, runs), plain) << trial;
  }
}

// Compare feeds raw texts with case folding; that equals chrF of the
// normalised texts, as before.
TEST(ChrfTest, FoldingEqualsChrfOfNormalisedText) {
  const std::string a = "  The Quick\tBrown  FOX jumps\n over the lazy dog. ";
  const std::string b = "the quick brown fox jumped over a lazy Dog!";
  EXPECT_DOUBLE_EQ(Chrf(a, b, 6, 2, false),
                   Chrf(internal::NormaliseText(a, false), internal::NormaliseText(b, false), 6, 2));
}

// ----------------------------------------------- normalisation, tokens --

TEST(NormalisedEqualTest, AgreesWithNormaliseText) {
  std::mt19937 rng(3);
  const char kChars[] = {'a', 'A', 'b', 'B', ' ', '\n', '\t', '.', '\xC3', '\xA9'};
  for (int trial = 0; trial < 3000; ++trial) {
    std::string a, b;
    for (size_t k = rng() % 8; k > 0; --k) a += kChars[rng() % sizeof(kChars)];
    for (size_t k = rng() % 8; k > 0; --k) b += kChars[rng() % sizeof(kChars)];
    for (bool cs : {true, false}) {
      ASSERT_EQ(internal::NormalisedEqual(a, b, cs),
                internal::NormaliseText(a, cs) == internal::NormaliseText(b, cs))
          << "\"" << a << "\" vs \"" << b << "\" cs " << cs;
    }
  }
  EXPECT_TRUE(internal::NormalisedEqual("  Hello \n World ", "hello world", false));
  EXPECT_FALSE(internal::NormalisedEqual("Hello World", "hello world", true));
  EXPECT_FALSE(internal::NormalisedEqual("helloworld", "hello world", false));
}

// The tokenizer by the book, a byte at a time: a word is a run of
// letters, digits, '_' and bytes >= 0x80, joined across '.' or ','
// between digits and across an apostrophe before a lower-case letter;
// every other byte that is not whitespace is a token of its own.
struct RefToken {
  size_t begin, size;
  bool word;
  bool operator==(const RefToken& o) const {
    return begin == o.begin && size == o.size && word == o.word;
  }
};
std::vector<RefToken> RefTokenize(const std::string& t) {
  auto is_word = [](unsigned char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           c == '_' || c >= 0x80;
  };
  auto at = [&](size_t k) -> unsigned char {
    return k < t.size() ? static_cast<unsigned char>(t[k]) : 0;
  };
  auto digit = [](unsigned char c) { return c >= '0' && c <= '9'; };
  std::vector<RefToken> out;
  size_t i = 0;
  while (i < t.size()) {
    const unsigned char c = at(i);
    if (RefSpace(c)) {
      ++i;
      continue;
    }
    if (!is_word(c)) {
      out.push_back({i, 1, false});
      ++i;
      continue;
    }
    size_t j = i + 1;
    while (j < t.size()) {
      const unsigned char d = at(j);
      if (is_word(d)) {
        ++j;
      } else if ((d == '.' || d == ',') && digit(at(j - 1)) && digit(at(j + 1))) {
        ++j;
      } else if (d == '\'' && at(j + 1) >= 'a' && at(j + 1) <= 'z') {
        ++j;
      } else {
        break;
      }
    }
    out.push_back({i, j - i, true});
    i = j;
  }
  return out;
}

// The 64-byte block tokenizer agrees with the reference on random texts
// dense in the bytes that matter (joins across block boundaries, words
// longer than a block, every whitespace, control and UTF-8 bytes), and
// equal tokens get equal ids.
TEST(TokenizerTest, MatchesByteAtATimeReference) {
  std::mt19937 rng(23);
  const std::string kBytes = std::string("aZ_9.,'' \t\n\r\f\v-(x") + '\0' + "\x01\x1F\x7F\xC3\xA9\xFF";
  for (int trial = 0; trial < 2000; ++trial) {
    std::string text;
    const size_t len = rng() % (trial < 1000 ? 70 : 400);
    const int mode = trial % 3;  // 0: any byte; 1: long words; 2: numbers and words
    for (size_t k = 0; k < len; ++k) {
      if (mode == 1 && rng() % 10 != 0) {
        text += static_cast<char>('a' + rng() % 3);
      } else if (mode == 2) {
        const char kNum[] = "0123456789.,' ab";
        text += kNum[rng() % (sizeof(kNum) - 1)];
      } else {
        text += kBytes[rng() % kBytes.size()];
      }
    }
    internal::Interner in(false);
    const std::vector<internal::Token> got = internal::Tokenize(text, in);
    const std::vector<RefToken> want = RefTokenize(text);
    ASSERT_EQ(got.size(), want.size()) << "trial " << trial;
    internal::Interner by_intern(false);
    for (size_t k = 0; k < got.size(); ++k) {
      ASSERT_EQ((RefToken{got[k].begin, got[k].size, got[k].word}), want[k])
          << "trial " << trial << " token " << k;
      ASSERT_EQ(got[k].id, by_intern.Intern(std::string_view(text).substr(want[k].begin,
                                                                           want[k].size)));
    }
  }
  // A word that runs across several blocks to the very end of the text.
  const std::string long_word(200, 'q');
  internal::Interner in(false);
  const auto tokens = internal::Tokenize("x " + long_word, in);
  ASSERT_EQ(tokens.size(), 2u);
  EXPECT_EQ(tokens[1].begin, 2u);
  EXPECT_EQ(tokens[1].size, 200u);
}

// Tokenize hashes with whole 8-byte loads inside the text; Intern hashes
// the token bytes alone. Both must give the same ids, folded the same way.
TEST(InternerTest, TokenizeAndInternAgreeAndFoldCase) {
  const std::string text =
      "Internationalisation INTERNATIONALISATION internationalisation x Y y 1,250.50 don't "
      "DON'T abcdefgh ABCDEFGH abcdefghi ABCDEFGHI caf\xC3\xA9 CAF\xC3\xA9 end";
  internal::Interner by_tokenize(false);
  std::vector<internal::Token> tokens = internal::Tokenize(text, by_tokenize);
  internal::Interner by_intern(false);
  for (const internal::Token& t : tokens) {
    EXPECT_EQ(by_intern.Intern(std::string_view(text).substr(t.begin, t.size)), t.id)
        << text.substr(t.begin, t.size);
  }
  EXPECT_EQ(tokens[0].id, tokens[1].id);
  EXPECT_EQ(tokens[1].id, tokens[2].id);
  internal::Interner cs(true);
  EXPECT_NE(cs.Intern("abcdefghi"), cs.Intern("ABCDEFGHI"));
  EXPECT_EQ(cs.Intern("abcdefghi"), cs.Intern("abcdefghi"));
}

// Tokens of the same length up to 8 bytes never collide: all 2-byte strings get distinct
// ids, in first-seen order.
TEST(InternerTest, ShortTokensGetDistinctDenseIds) {
  internal::Interner in(true);
  uint32_t expected = 0;
  for (int x = 0; x < 256; ++x) {
    for (int y = 0; y < 256; ++y) {
      const char s[2] = {static_cast<char>(x), static_cast<char>(y)};
      ASSERT_EQ(in.Intern(std::string_view(s, 2)), expected++);
    }
  }
  EXPECT_EQ(in.size(), 65536u);
  EXPECT_EQ(in.Intern(std::string_view("\0\0", 2)), 0u);
}

// Salient tokens from the shared tokens equal those of a fresh scan.
TEST(SalientTest, SharedTokensGiveTheSameSalientTokens) {
  for (const std::string& text :
       {std::string("The meeting is in Paris at 36 Rue Cler on March 3. See https://ex.com/a, "
                    "call `parse_config` and fooBar() but NOT never shouldn't. "
                    "However\nThe Supercalifragilisticexpialidocious WASN'T there."),
        std::string("")}) {
    internal::Interner in(false);
    std::vector<internal::Token> tokens = internal::Tokenize(text, in);
    std::vector<internal::Salient> shared = internal::ExtractSalient(text, tokens, false);
    std::vector<internal::Salient> fresh = internal::ExtractSalient(text, false);
    ASSERT_EQ(shared.size(), fresh.size());
    for (size_t i = 0; i < shared.size(); ++i) {
      EXPECT_EQ(shared[i].kind, fresh[i].kind);
      EXPECT_EQ(shared[i].key, fresh[i].key);
      EXPECT_EQ(shared[i].display, fresh[i].display);
      EXPECT_EQ(shared[i].begin, fresh[i].begin);
    }
  }
  // Long tokens skip the stopword test but still end in "n't".
  std::vector<internal::Salient> s = internal::ExtractSalient(
      "However we won't go to Paris. The Supercalifragilisticexpialidocious hasn't "
      "Supercalifragilisticexpialidocisn't",
      false);
  std::vector<std::string> keys;
  for (const auto& x : s) keys.push_back(x.key);
  EXPECT_THAT(keys, ::testing::ElementsAre("won't", "paris", "supercalifragilisticexpialidocious",
                                           "hasn't", "supercalifragilisticexpialidocisn't"));
}

// URLs are found by their "://": http and https only, trailing punctuation
// and closing brackets left out, a scheme glued to a word still found.
TEST(SalientTest, UrlsAreFoundByTheirScheme) {
  auto s = internal::ExtractSalient(
      "See https://ex.com/a, (http://b.org/x?y=1) ftp://no.pe and x://nope; "
      "xhttp://c.io/p://q. Then https://d.dev",
      false);
  std::vector<std::string> urls;
  for (const auto& x : s) {
    if (x.kind == internal::SalientKind::kUrl) urls.push_back(x.key + "@" + std::to_string(x.begin));
  }
  EXPECT_THAT(urls, ::testing::ElementsAre("https://ex.com/a@4", "http://b.org/x?y=1@23",
                                           "http://c.io/p://q@70", "https://d.dev@94"));
}

// Repeated keys match in order of appearance; leftovers are reported.
TEST(SalientTest, DiffMatchesRepeatedKeysAsAMultiset) {
  auto a = internal::ExtractSalient("Paris 3 Paris 4 Lyon 3", false);
  auto b = internal::ExtractSalient("Paris 3 3 Nice", false);
  internal::SalientDiff d = internal::DiffSalient(a, b, 1e-9);
  std::vector<std::string> only_a, only_b;
  for (const auto& x : d.only_a) only_a.push_back(x.display + "@" + std::to_string(x.begin));
  for (const auto& x : d.only_b) only_b.push_back(x.display);
  EXPECT_THAT(only_a, ::testing::ElementsAre("Paris@8", "4@14", "Lyon@16"));
  EXPECT_THAT(only_b, ::testing::ElementsAre("Nice"));
}

// Numbers within the tolerance (relative, at least 1 absolute scale) still
// match, each number of a at most once; a tolerance of 0 needs equal keys.
TEST(SalientTest, NumbersMatchWithinTolerance) {
  auto a = internal::ExtractSalient("Totals: 36.0001, 12, 1000.4 and 7.", false);
  auto b = internal::ExtractSalient("Totals: 36, 13, 1000 and 36.", false);
  auto names = [](const std::vector<internal::Salient>& v) {
    std::vector<std::string> out;
    for (const auto& x : v) out.push_back(x.display);
    return out;
  };
  internal::SalientDiff d = internal::DiffSalient(a, b, 1e-3);
  EXPECT_THAT(names(d.only_a), ::testing::ElementsAre("12", "7"));
  EXPECT_THAT(names(d.only_b), ::testing::ElementsAre("13", "36"));  // 36.0001 is taken
  d = internal::DiffSalient(a, b, 0);
  EXPECT_THAT(names(d.only_a), ::testing::ElementsAre("36.0001", "12", "1000.4", "7"));
  EXPECT_THAT(names(d.only_b), ::testing::ElementsAre("36", "13", "1000", "36"));
}

// ---------------------------------------------------------------- refusal --

// The RE2::Set scan answers exactly as matching pattern by pattern, for the
// default patterns and for custom ones, on refusals, near misses and text.
TEST(RefusalSetTest, AgreesWithPatternByPattern) {
  const std::vector<std::string> texts = {
      "I'm sorry, but I can't help with that.",
      "I am afraid I won't be able to do it.",
      "Sure! I can't wait to help: here is the answer.",
      "I cannot assist with this request.",
      "Unfortunately I must decline.",
      "As an AI language model, I don't have opinions.",
      "as an ai, i cannot browse",
      "The capital of France is Paris.",
      "no can do, friend",
      "NO CAN DO",
      "",
      std::string(2000, 'x') + "I cannot help",
  };
  CompareOptions defaults;
  ASSERT_OK(CompileRefusalPatterns(&defaults));
  CompareOptions custom;
  custom.refusal_patterns = {"(?i)no can do", "^Sure", "help$", "x{3}I"};
  ASSERT_OK(CompileRefusalPatterns(&custom));
  for (const CompareOptions* o : {&defaults, &custom}) {
    ASSERT_NE(o->compiled_refusal_set, nullptr);
    EXPECT_EQ(o->compiled_refusal_set->patterns(), o->compiled_refusals.get());
    for (const std::string& t : texts) {
      EXPECT_EQ(o->compiled_refusal_set->Matches(t), MatchesAnyPattern(t, *o->compiled_refusals))
          << t.substr(0, 60);
    }
  }
  EXPECT_TRUE(defaults.compiled_refusal_set->Matches(texts[0]));
  EXPECT_FALSE(defaults.compiled_refusal_set->Matches(texts[7]));
  EXPECT_TRUE(custom.compiled_refusal_set->Matches("no can DO"));
  // No patterns: no set, and nothing is a refusal.
  CompareOptions none;
  none.refusal_patterns.clear();
  ASSERT_OK(CompileRefusalPatterns(&none));
  EXPECT_EQ(none.compiled_refusal_set, nullptr);
}

// Compare ignores a set that no longer goes with compiled_refusals (patterns
// replaced by hand) and still finds refusals only in the first 1 KiB.
TEST(RefusalSetTest, CompareUsesTheMatchingPatternsOnly) {
  CompareOptions o;
  ASSERT_OK(CompileRefusalPatterns(&o));
  CompareOptions other;
  other.refusal_patterns = {"(?i)banana"};
  ASSERT_OK(CompileRefusalPatterns(&other));
  o.compiled_refusals = other.compiled_refusals;  // the set still has the defaults
  ModelAnswer p, c;
  p.text = "Here is the answer.";
  c.text = "Banana.";
  p.finish_reason = c.finish_reason = "stop";
  understudy::v1::Comparison cmp = Compare(p, c, o, CompareContext{});
  bool refusal_finding = false;
  for (const auto& f : cmp.findings()) refusal_finding |= f.kind() == "refusal";
  EXPECT_TRUE(refusal_finding);
  // Past the 1 KiB window a refusal phrase does not count.
  CompareOptions d;
  ASSERT_OK(CompileRefusalPatterns(&d));
  c.text = std::string(1100, 'x') + " I cannot help with that.";
  p.text = std::string(1100, 'x') + " Here you go.";
  cmp = Compare(p, c, d, CompareContext{});
  for (const auto& f : cmp.findings()) EXPECT_NE(f.kind(), "refusal");
  c.text = "I cannot help with that.";
  cmp = Compare(p, c, d, CompareContext{});
  refusal_finding = false;
  for (const auto& f : cmp.findings()) refusal_finding |= f.kind() == "refusal";
  EXPECT_TRUE(refusal_finding);
}

// ---------------------------------------------------------------- Compare --

ModelAnswer Answer(std::string text) {
  ModelAnswer a;
  a.text = std::move(text);
  a.finish_reason = "stop";
  a.model = "gpt-4o";
  return a;
}

std::vector<std::string> Corpus() {
  std::mt19937 rng(5);
  std::vector<std::string> out = {
      "The capital of France is Paris. It lies on the Seine.",
      "Die Hauptstadt von Frankreich ist Paris. Sie liegt an der Seine, gr\xC3\xB6\xC3\x9F"
      "er als Lyon.",
      "\xE5\xB7\xB4\xE9\xBB\x8E\xE6\x98\xAF\xE6\xB3\x95\xE5\x9B\xBD\xE7\x9A\x84\xE9\xA6\x96"
      "\xE9\x83\xBD\xE3\x80\x82",
      "Call `get_weather(city)` with https://api.example.com/v1?q=1 and wait 30s.",
      "",
  };
  const char* words[] = {"the", "model", "Paris", "answer", "42", "not", "3.14", "fooBar",
                         "\xC3\xA9t\xC3\xA9", ".", ",", "\n\n", "Seine", "refund", "days"};
  for (int k = 0; k < 6; ++k) {
    std::string s;
    for (int i = 0; i < 1000; ++i) (s += words[rng() % 15]) += ' ';
    out.push_back(s);
  }
  return out;
}

// Compare(x, x) is equivalent with every score 1, however the text looks.
TEST(CompareFastPathsTest, SelfComparisonStaysEquivalent) {
  CompareOptions options;
  ASSERT_OK(CompileRefusalPatterns(&options));
  for (const std::string& text : Corpus()) {
    for (bool cs : {false, true}) {
      options.case_sensitive = cs;
      ModelAnswer a = Answer(text);
      understudy::v1::Comparison c = Compare(a, a, options, CompareContext{});
      EXPECT_EQ(c.verdict(), understudy::v1::VERDICT_EQUIVALENT) << text.substr(0, 40);
      for (const auto& s : c.scores()) {
        EXPECT_DOUBLE_EQ(s.score(), 1.0) << s.name() << " on " << text.substr(0, 40);
      }
      EXPECT_EQ(c.findings_size(), 0);
    }
  }
}

// Outputs are byte-identical whatever ran before on the thread (scratch
// buffers are reused) and on other threads at the same time.
TEST(CompareFastPathsTest, OutputsAreDeterministicAcrossCallsAndThreads) {
  CompareOptions options;
  ASSERT_OK(CompileRefusalPatterns(&options));
  const std::vector<std::string> corpus = Corpus();
  auto all_pairs = [&] {
    std::vector<std::string> out;
    for (const std::string& p : corpus) {
      for (const std::string& c : corpus) {
        out.push_back(Compare(Answer(p), Answer(c), options, CompareContext{}).SerializeAsString());
      }
    }
    return out;
  };
  const std::vector<std::string> first = all_pairs();
  // The same pairs in reverse order, so each runs after different ones.
  std::vector<std::string> reversed;
  for (size_t i = corpus.size(); i-- > 0;) {
    for (size_t j = corpus.size(); j-- > 0;) {
      reversed.push_back(
          Compare(Answer(corpus[i]), Answer(corpus[j]), options, CompareContext{})
              .SerializeAsString());
    }
  }
  std::reverse(reversed.begin(), reversed.end());
  EXPECT_EQ(first, reversed);
  std::vector<std::string> t1, t2;
  std::thread a([&] { t1 = all_pairs(); });
  std::thread b([&] { t2 = all_pairs(); });
  a.join();
  b.join();
  EXPECT_EQ(first, t1);
  EXPECT_EQ(first, t2);
  // chrF of a pair inside Compare equals chrF computed on its own.
  understudy::v1::Comparison c =
      Compare(Answer(corpus[5]), Answer(corpus[6]), options, CompareContext{});
  for (const auto& s : c.scores()) {
    if (s.name() == "chrf") {
      EXPECT_DOUBLE_EQ(s.score(), RefChrf(corpus[5], corpus[6], 6, 2, false));
    }
  }
}

}  // namespace
}  // namespace understudy::compare
