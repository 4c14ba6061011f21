// compare/text_diff.h (internal to compare/; other modules use compare.h)
// Text comparators: tokenisation into dense ids, bit-parallel LCS (Hyyrö's
// formulation of Allison–Dix) and its O(n·m) DP baseline, chrF, salient
// tokens and differing spans.
#ifndef UNDERSTUDY_COMPARE_TEXT_DIFF_H_
#define UNDERSTUDY_COMPARE_TEXT_DIFF_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/types/span.h"

namespace understudy::compare::internal {

// NormaliseText collapses whitespace runs to one space, trims both ends and,
// when !case_sensitive, lower-cases ASCII letters.
std::string NormaliseText(std::string_view text, bool case_sensitive);

// NormalisedEqual is NormaliseText(a, cs) == NormaliseText(b, cs) without
// building either string; it stops at the first difference.
bool NormalisedEqual(std::string_view a, std::string_view b, bool case_sensitive);

struct Token {
  uint32_t begin = 0;  // byte offset in the text
  uint32_t size = 0;
  uint32_t id = 0;     // dense id from the Interner
  bool word = false;   // letters/digits/underscore (or non-ASCII bytes)
};

// Interner maps token text (case-folded unless case_sensitive) to dense ids
// 0, 1, 2, ... in first-seen order, via a 64-bit hash of the token (for a
// given length of up to 8 bytes a bijection, so such tokens never collide).
class Interner {
 public:
  explicit Interner(bool case_sensitive) : case_sensitive_(case_sensitive) {}
  uint32_t Intern(std::string_view token);
  uint32_t size() const { return size_; }

 private:
  friend std::vector<Token> Tokenize(std::string_view text, Interner& interner);
  // InternHash returns the id of a token hash (see HashToken in the .cc).
  uint32_t InternHash(uint64_t hash);
  void Grow();

  struct Slot {
    uint64_t hash;
    uint32_t id_plus_one;  // 0: empty
  };
  bool case_sensitive_;
  uint32_t size_ = 0;
  std::vector<Slot> slots_;  // open addressing, power-of-two size
};

// Tokenize splits text into word tokens (runs of letters, digits, '_' and
// bytes >= 0x80, joined across a '.' or ',' between digits, as in 3.14 and
// 1,000, and across an apostrophe before a lower-case letter, as in don't)
// and single punctuation characters (whitespace dropped), interning each.
std::vector<Token> Tokenize(std::string_view text, Interner& interner);

// MatchRun is a run of consecutive matches of an alignment:
// a[a_begin + k] == b[b_begin + k] for k < length.
struct MatchRun {
  uint32_t a_begin = 0, b_begin = 0, length = 0;
};

// LcsLengthBitParallel returns the LCS length of two id sequences in
// O(ceil(|a|/64) * |b|) time and O(alphabet_size + |b|) memory (plus the
// traceback's, below). Ids of `a` must be < alphabet_size; ids of `b`
// that are >= alphabet_size match nothing (they do not occur in `a`).
// Intern `a` before `b` to get this property. With `runs`, it also
// recovers one longest common subsequence as maximal runs of consecutive
// matches, in order (kept column vectors and a traceback; skipped, leaving
// `runs` empty, when |b| * ceil(|a|/64) exceeds kMaxHistoryWords).
constexpr size_t kMaxHistoryWords = size_t{1} << 20;  // 8 MiB
int LcsLengthBitParallel(absl::Span<const uint32_t> a, absl::Span<const uint32_t> b,
                         uint32_t alphabet_size, std::vector<MatchRun>* runs = nullptr);
// LcsLengthBounded is LcsLengthBitParallel within a budget of max_work
// word steps in all (ceil(|a|/64) * |b|, about a nanosecond each): past
// it, a and b are cut into the fewest k aligned chunks (the c-th k-th of
// each) whose steps fit, and the chunks' LCS lengths and runs are joined.
// That is a common subsequence, so a lower bound of the LCS (exact for
// texts that differ only within chunks). A budget below max(|a|, |b|)
// cannot be met (chunks of one token). *chunks (may be null) receives k;
// 1 means exact.
int LcsLengthBounded(absl::Span<const uint32_t> a, absl::Span<const uint32_t> b,
                     uint32_t alphabet_size, size_t max_work, std::vector<MatchRun>* runs,
                     size_t* chunks);
// LcsLengthDp is the plain O(|a|·|b|) dynamic programme (the baseline).
int LcsLengthDp(absl::Span<const uint32_t> a, absl::Span<const uint32_t> b);

// LcsF1 is ROUGE-L F1 from an LCS length: 2PR/(P+R); 1 when both are empty.
double LcsF1(int lcs, size_t len_a, size_t len_b);

// Chrf is the character n-gram F-score (orders 1..order, clamped to
// 1..12; whitespace removed; recall weighted by beta) of two texts; 1 when
// both are empty. Symmetric when beta == 1. Characters are Unicode code
// points of the UTF-8 text (a byte that does not start a valid sequence is
// a character of its own); with !case_sensitive ASCII letters are folded,
// so Chrf(a, b, o, beta, false) == Chrf(NormaliseText(a, false),
// NormaliseText(b, false), o, beta). Allocation-free after warm-up (scratch
// buffers are thread_local); thread-safe.
double Chrf(std::string_view a, std::string_view b, int order, double beta,
            bool case_sensitive = true);

// EqualRange is a byte range of each text that the caller believes equal
// once whitespace is dropped and case folded (as Chrf sees them), e.g. a
// run of equal tokens of an alignment.
struct EqualRange {
  uint32_t a_begin = 0, a_end = 0;
  uint32_t b_begin = 0, b_end = 0;
};
// The same score, faster for similar texts: the n-grams wholly inside an
// equal range match one for one and need no counting. The ranges are only
// hints: each is checked, and one that is out of order (ranges must be
// ascending and disjoint in both texts), out of bounds or not equal is
// ignored, so the result is always exactly Chrf(a, b, ...).
double Chrf(std::string_view a, std::string_view b, int order, double beta,
            bool case_sensitive, absl::Span<const EqualRange> equal);

enum class SalientKind { kNumber, kEntity, kIdentifier, kUrl, kNegation };
const char* SalientKindName(SalientKind kind);

struct Salient {
  SalientKind kind;
  std::string key;      // normalised form used for matching
  std::string display;  // as written
  uint32_t begin = 0;
};

// ExtractSalient finds numbers, capitalised names, code identifiers, URLs
// and negations in a text.
std::vector<Salient> ExtractSalient(std::string_view text, bool case_sensitive);
// The same from the text's tokens (Tokenize(text, any interner)), so callers
// that already tokenised the text do not tokenise it again.
std::vector<Salient> ExtractSalient(std::string_view text, const std::vector<Token>& tokens,
                                    bool case_sensitive);

struct SalientDiff {
  std::vector<Salient> only_a;
  std::vector<Salient> only_b;
  size_t total = 0;  // |a| + |b|
};
// DiffSalient returns the multiset difference (order does not matter;
// numbers equal within `numeric_tolerance`).
SalientDiff DiffSalient(const std::vector<Salient>& a, const std::vector<Salient>& b,
                        double numeric_tolerance);

struct Span {
  uint32_t a_begin, a_end;  // token index ranges [begin, end)
  uint32_t b_begin, b_end;
};
// DifferingSpans aligns the token sequences on tokens unique to both
// (patience diff), trims equal ends of each gap, and returns the gaps that
// still differ, largest first, at most `max_spans`.
std::vector<Span> DifferingSpans(const std::vector<Token>& a, const std::vector<Token>& b,
                                 size_t max_spans);

}  // namespace understudy::compare::internal

#endif  // UNDERSTUDY_COMPARE_TEXT_DIFF_H_
