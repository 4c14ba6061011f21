#include "compare/text_diff.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <tuple>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#if defined(__x86_64__)
#include <x86intrin.h>
#endif

namespace understudy::compare::internal {

namespace {

constexpr bool IsSpace(unsigned char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}
constexpr bool IsDigit(unsigned char c) { return c >= '0' && c <= '9'; }
constexpr bool IsUpper(unsigned char c) { return c >= 'A' && c <= 'Z'; }
constexpr bool IsLower(unsigned char c) { return c >= 'a' && c <= 'z'; }
constexpr unsigned char Lower(unsigned char c) { return IsUpper(c) ? c + 32 : c; }

// Whitespace, one table lookup per byte.
struct SpaceTable {
  bool c[256] = {};
  constexpr SpaceTable() {
    for (int i = 0; i < 256; ++i) c[i] = IsSpace(static_cast<unsigned char>(i));
  }
};
constexpr SpaceTable kSpaces;
inline bool IsSpaceFast(unsigned char c) { return kSpaces.c[c]; }

// ------------------------------------------------ 64-byte block masks --
// The tokenizer classifies 64 bytes at a time into bit masks (bit k: byte
// k of the block), with 16-byte vector compares, then walks the token
// starts with bit scans: no branch per byte and few per token.
struct BlockMasks {
  uint64_t word = 0;      // letters, digits, '_', bytes >= 0x80
  uint64_t space = 0;     // ' ', \t, \n, \v, \f, \r
  uint64_t digit = 0;
  uint64_t lower = 0;     // a-z
  uint64_t dotcomma = 0;  // '.' or ','
  uint64_t apos = 0;      // '\''
};

typedef int8_t Bytes16 __attribute__((vector_size(16)));

// MoveMask packs the top bit of each of the 16 lanes (all ones or zeros).
inline uint32_t MoveMask(Bytes16 v) {
#if defined(__SSE2__)
  return static_cast<uint32_t>(_mm_movemask_epi8(reinterpret_cast<__m128i>(v)));
#else
  uint32_t m = 0;
  for (int k = 0; k < 16; ++k) m |= static_cast<uint32_t>(v[k] < 0) << k;
  return m;
#endif
}

// ClassifyBlock classifies p[0, 64).
inline BlockMasks ClassifyBlock(const unsigned char* p) {
  BlockMasks m;
  for (int chunk = 0; chunk < 4; ++chunk) {
    Bytes16 v;
    std::memcpy(&v, p + 16 * chunk, 16);
    const Bytes16 folded = v | 0x20;  // letters to lower case
    const Bytes16 digit = (v >= '0') & (v <= '9');
    const Bytes16 lower = (v >= 'a') & (v <= 'z');
    // Signed lanes: bytes >= 0x80 are negative.
    const Bytes16 word = digit | ((folded >= 'a') & (folded <= 'z')) | (v == '_') | (v < 0);
    const Bytes16 space = (v == ' ') | ((v >= '\t') & (v <= '\r'));
    const int shift = 16 * chunk;
    m.word |= uint64_t{MoveMask(word)} << shift;
    m.space |= uint64_t{MoveMask(space)} << shift;
    m.digit |= uint64_t{MoveMask(digit)} << shift;
    m.lower |= uint64_t{MoveMask(lower)} << shift;
    m.dotcomma |= uint64_t{MoveMask((v == '.') | (v == ','))} << shift;
    m.apos |= uint64_t{MoveMask(v == '\'')} << shift;
  }
  return m;
}

// ClassifyText classifies every block of a text; the last one is read
// through a zero-padded copy and its masks cut at the text's end.
void ClassifyText(std::string_view text, std::vector<BlockMasks>* out) {
  const size_t n = text.size(), blocks = (n + 63) / 64;
  out->resize(blocks);
  const unsigned char* p = reinterpret_cast<const unsigned char*>(text.data());
  for (size_t b = 0; b + 1 < blocks || (b < blocks && n % 64 == 0); ++b) {
    (*out)[b] = ClassifyBlock(p + 64 * b);
  }
  if (n % 64 != 0) {
    unsigned char tail[64] = {};
    std::memcpy(tail, p + 64 * (blocks - 1), n % 64);
    BlockMasks m = ClassifyBlock(tail);
    const uint64_t valid = (uint64_t{1} << (n % 64)) - 1;
    m.word &= valid;
    m.space |= ~valid;  // past the end: nothing starts there
    m.digit &= valid;
    m.lower &= valid;
    m.dotcomma &= valid;
    m.apos &= valid;
    (*out)[blocks - 1] = m;
  }
}

// FoldAscii8 lower-cases the ASCII letters among 8 packed bytes (SWAR).
inline uint64_t FoldAscii8(uint64_t x) {
  constexpr uint64_t kOnes = 0x0101010101010101ULL;
  const uint64_t heptets = x & (0x7F * kOnes);
  const uint64_t ge_a = heptets + ((0x80 - 'A') * kOnes);  // high bit: byte >= 'A'
  const uint64_t gt_z = heptets + ((0x7F - 'Z') * kOnes);  // high bit: byte > 'Z'
  const uint64_t upper = ge_a & ~gt_z & ~x & (0x80 * kOnes);
  return x | (upper >> 2);
}

inline uint64_t Mix(uint64_t h) {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  return h;
}

// HashToken hashes a token 8 bytes at a time (ASCII-folded unless
// case_sensitive). Every step is a bijection of the chunk, so tokens of the
// same length up to 8 bytes map to distinct hashes. `limit` is the end of the readable
// buffer around the token: a whole 8-byte load is used when it fits.
inline uint64_t HashToken(const char* p, size_t n, const char* limit, bool case_sensitive) {
  uint64_t h = 0x243F6A8885A308D3ULL ^ (static_cast<uint64_t>(n) * 0x9E3779B97F4A7C15ULL);
  while (n > 0) {
    uint64_t chunk;
    size_t take = n < 8 ? n : 8;
    if (static_cast<size_t>(limit - p) >= 8) {
      std::memcpy(&chunk, p, 8);
      if (take < 8) chunk &= (uint64_t{1} << (8 * take)) - 1;  // little-endian tail
    } else {
      chunk = 0;
      for (size_t k = 0; k < take; ++k) {
        chunk |= static_cast<uint64_t>(static_cast<unsigned char>(p[k])) << (8 * k);
      }
    }
    if (!case_sensitive) chunk = FoldAscii8(chunk);
    h = Mix(h ^ chunk);
    p += take;
    n -= take;
  }
  return h;
}

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "HashToken assumes little-endian loads");

}  // namespace

bool NormalisedEqual(std::string_view a, std::string_view b, bool case_sensitive) {
  if (a == b) return true;
  // Walk both texts as their normalised forms: whitespace runs read as one
  // space, except at either end where they read as nothing.
  size_t i = 0, j = 0;
  const size_t na = a.size(), nb = b.size();
  while (i < na && IsSpaceFast(static_cast<unsigned char>(a[i]))) ++i;
  while (j < nb && IsSpaceFast(static_cast<unsigned char>(b[j]))) ++j;
  auto next = [case_sensitive](std::string_view t, size_t& k) -> int {
    if (k >= t.size()) return -1;
    unsigned char c = static_cast<unsigned char>(t[k]);
    if (IsSpaceFast(c)) {
      while (k < t.size() && IsSpaceFast(static_cast<unsigned char>(t[k]))) ++k;
      return k < t.size() ? ' ' : -1;
    }
    ++k;
    return case_sensitive ? c : Lower(c);
  };
  while (true) {
    const int x = next(a, i), y = next(b, j);
    if (x != y) return false;
    if (x < 0) return true;
  }
}

std::string NormaliseText(std::string_view text, bool case_sensitive) {
  std::string out;
  out.reserve(text.size());
  bool pending_space = false;
  for (unsigned char c : text) {
    if (IsSpace(c)) {
      pending_space = !out.empty();
      continue;
    }
    if (pending_space) out.push_back(' ');
    pending_space = false;
    out.push_back(static_cast<char>(case_sensitive ? c : Lower(c)));
  }
  return out;
}

uint32_t Interner::Intern(std::string_view token) {
  return InternHash(HashToken(token.data(), token.size(), token.data() + token.size(),
                              case_sensitive_));
}

uint32_t Interner::InternHash(uint64_t hash) {
  if (slots_.empty() || (size_ + 1) * 2 > slots_.size()) Grow();
  const size_t mask = slots_.size() - 1;
  size_t i = static_cast<size_t>(hash) & mask;
  while (true) {
    Slot& s = slots_[i];
    if (s.id_plus_one == 0) {
      s.hash = hash;
      s.id_plus_one = ++size_;
      return size_ - 1;
    }
    if (s.hash == hash) return s.id_plus_one - 1;
    i = (i + 1) & mask;
  }
}

void Interner::Grow() {
  std::vector<Slot> old = std::move(slots_);
  slots_.assign(old.empty() ? 1024 : old.size() * 2, Slot{0, 0});
  const size_t mask = slots_.size() - 1;
  for (const Slot& s : old) {
    if (s.id_plus_one == 0) continue;
    size_t i = static_cast<size_t>(s.hash) & mask;
    while (slots_[i].id_plus_one != 0) i = (i + 1) & mask;
    slots_[i] = s;
  }
}

std::vector<Token> Tokenize(std::string_view text, Interner& interner) {
  std::vector<Token> tokens;
  tokens.reserve(text.size() / 4 + 1);
  const size_t n = text.size();
  if (n > UINT32_MAX) return tokens;  // offsets are 32-bit; callers cap bodies far below
  thread_local std::vector<BlockMasks> blocks;
  thread_local std::vector<uint64_t> words;  // word bytes, with the joins below
  ClassifyText(text, &blocks);
  const size_t count = blocks.size();
  words.resize(count);
  // A '.' or ',' between two digits joins them (3.14, 1,000), and so does
  // an apostrophe between a word byte and a lower-case letter (don't):
  // masks shifted by one byte, carrying across blocks, find the neighbours.
  uint64_t prev_digit = 0, prev_word = 0;  // top bit of the block before
  for (size_t b = 0; b < count; ++b) {
    const BlockMasks& m = blocks[b];
    const uint64_t next_digit = b + 1 < count ? blocks[b + 1].digit & 1 : 0;
    const uint64_t next_lower = b + 1 < count ? blocks[b + 1].lower & 1 : 0;
    const uint64_t digit_before = (m.digit << 1) | prev_digit;
    const uint64_t digit_after = (m.digit >> 1) | (next_digit << 63);
    const uint64_t word_before = (m.word << 1) | prev_word;
    const uint64_t lower_after = (m.lower >> 1) | (next_lower << 63);
    words[b] = m.word | (m.dotcomma & digit_before & digit_after) |
               (m.apos & word_before & lower_after);
    prev_digit = m.digit >> 63;
    prev_word = m.word >> 63;
  }
  // Tokens start where a run of word bytes starts and at every other
  // byte that is not a space (a punctuation token of one byte).
  const char* data = text.data();
  uint64_t prev_top = 0;
  for (size_t b = 0; b < count; ++b) {
    const uint64_t w = words[b];
    uint64_t starts = (w & ~((w << 1) | prev_top)) | (~w & ~blocks[b].space);
    prev_top = w >> 63;
    while (starts != 0) {
      const int bit = __builtin_ctzll(starts);
      starts &= starts - 1;
      const size_t begin = 64 * b + static_cast<size_t>(bit);
      const bool word = (w >> bit) & 1;
      // A word ends at the next byte that is not in one (a punctuation
      // byte "ends" at itself, plus one).
      uint64_t rest = ~w & (~uint64_t{0} << bit);
      size_t end;
      if (rest != 0) {
        end = 64 * b + static_cast<size_t>(__builtin_ctzll(rest));
      } else {
        size_t e = b + 1;
        while (e < count && words[e] == ~uint64_t{0}) ++e;
        end = e < count ? 64 * e + static_cast<size_t>(__builtin_ctzll(~words[e])) : n;
      }
      end += word ? 0 : 1;
      Token t;
      t.begin = static_cast<uint32_t>(begin);
      t.size = static_cast<uint32_t>(end - begin);
      t.word = word;
      t.id = interner.InternHash(HashToken(data + begin, end - begin, data + n,
                                           interner.case_sensitive_));
      tokens.push_back(t);
    }
  }
  if (count > (size_t{1} << 14)) {  // texts of over 1 MiB: do not keep the buffers
    blocks = {};
    words = {};
  }
  return tokens;
}

namespace {

// AddCarry adds 64-bit words with a carry from one Add to the next (one
// adc instruction on x86-64: the carry chain is the LCS's critical path).
struct AddCarry {
#if defined(__x86_64__)
  unsigned char carry = 0;
  uint64_t Add(uint64_t x, uint64_t y) {
    unsigned long long sum;
    carry = _addcarry_u64(carry, x, y, &sum);
    return sum;
  }
#else
  uint64_t carry = 0;
  uint64_t Add(uint64_t x, uint64_t y) {
    const uint64_t sum1 = x + y;
    const uint64_t sum2 = sum1 + carry;
    carry = (sum1 < x) | (sum2 < sum1);
    return sum2;
  }
#endif
};

// LcsStripe runs one 64-token stripe of `a` (match masks in `mask`,
// indexed by symbol) down every column j of `b`: V' = (V + (V & M)) |
// (V & ~M), the carry into the stripe's addition coming from the stripe
// below in the same column (carry[j], replaced by this stripe's carry out).
// Returns the stripe's final V; traced, V after column j goes to
// history[j + 1] (history[0] is V before any column: all ones).
template <bool kTrace>
uint64_t LcsStripe(absl::Span<const uint32_t> b, const uint64_t* __restrict mask,
                   uint32_t alphabet_size, unsigned char* __restrict carry,
                   uint64_t* __restrict history) {
  uint64_t v = ~uint64_t{0};
  if (kTrace) history[0] = v;
  const size_t n = b.size();
  for (size_t j = 0; j < n; ++j) {
    // Symbols past a's alphabet match nothing: their slot is all zeros.
    const uint64_t mk = mask[std::min(b[j], alphabet_size)];
    AddCarry add;
    add.carry = carry[j];
    const uint64_t sum = add.Add(v, v & mk);
    carry[j] = static_cast<unsigned char>(add.carry);
    v = sum | (v & ~mk);
    if (kTrace) history[j + 1] = v;
  }
  return v;
}

}  // namespace

int LcsLengthBitParallel(absl::Span<const uint32_t> a, absl::Span<const uint32_t> b,
                         uint32_t alphabet_size, std::vector<MatchRun>* runs) {
  if (runs != nullptr) runs->clear();
  const size_t m = a.size(), n = b.size();
  if (m == 0 || n == 0) return 0;
  const size_t words = (m + 63) / 64;
  // a is processed in stripes of 64 tokens (one word of V each), every
  // stripe down all of b, the carries between stripes kept per column: the
  // memory is one mask per symbol and a byte per column, whatever the
  // lengths. mask is all zeros between calls (a stripe clears what it
  // set); slot alphabet_size stays zero for the symbols only b has.
  thread_local std::vector<uint64_t> mask_buffer;
  thread_local std::vector<unsigned char> carry_buffer;
  if (mask_buffer.size() < size_t{alphabet_size} + 1) mask_buffer.resize(size_t{alphabet_size} + 1, 0);
  carry_buffer.assign(n, 0);
  uint64_t* mask = mask_buffer.data();
  // With `runs`, every column's V is kept for the traceback, stripe by
  // stripe (word k of V_j at history[k * (n + 1) + j]), up to
  // kMaxHistoryWords; past that the alignment is not recovered.
  const bool trace = runs != nullptr && words * n <= kMaxHistoryWords;
  thread_local std::vector<uint64_t> history_buffer;
  if (trace && history_buffer.size() < (n + 1) * words) history_buffer.resize((n + 1) * words);
  int lcs = 0;
  for (size_t k = 0; k < words; ++k) {
    const size_t begin = 64 * k, end = std::min(m, begin + 64);
    for (size_t i = begin; i < end; ++i) mask[a[i]] |= uint64_t{1} << (i - begin);
    const uint64_t v = trace ? LcsStripe<true>(b, mask, alphabet_size, carry_buffer.data(),
                                               history_buffer.data() + k * (n + 1))
                             : LcsStripe<false>(b, mask, alphabet_size, carry_buffer.data(),
                                                nullptr);
    // Zeros of the final V (within a) count the LCS.
    const uint64_t in_a = end - begin == 64 ? ~uint64_t{0} : (uint64_t{1} << (end - begin)) - 1;
    lcs += __builtin_popcountll(~v & in_a);
    for (size_t i = begin; i < end; ++i) mask[a[i]] = 0;
  }
  if (mask_buffer.size() > (size_t{1} << 20)) mask_buffer = {};  // 8 MiB: not kept
  if (carry_buffer.size() > (size_t{1} << 20)) carry_buffer = {};
  if (trace) {
    // Traceback from (m, n): a set bit i - 1 of V_j means L(i, j) ==
    // L(i - 1, j), so a[i - 1] is not needed; otherwise a[i - 1] == b[j - 1]
    // ends an LCS of the prefixes (take the diagonal), or L(i, j) ==
    // L(i, j - 1) (drop b[j - 1]).
    size_t i = m, j = n;
    while (i > 0 && j > 0) {
      const uint64_t vj = history_buffer[(i - 1) / 64 * (n + 1) + j];
      if ((vj >> ((i - 1) % 64)) & 1) {
        --i;
      } else if (a[i - 1] == b[j - 1]) {
        --i;
        --j;
        if (!runs->empty() && runs->back().a_begin == i + 1 && runs->back().b_begin == j + 1) {
          MatchRun& r = runs->back();
          --r.a_begin;
          --r.b_begin;
          ++r.length;
        } else {
          runs->push_back({static_cast<uint32_t>(i), static_cast<uint32_t>(j), 1});
        }
      } else {
        --j;
      }
    }
    std::reverse(runs->begin(), runs->end());
  }
  return lcs;
}

int LcsLengthBounded(absl::Span<const uint32_t> a, absl::Span<const uint32_t> b,
                     uint32_t alphabet_size, size_t max_work, std::vector<MatchRun>* runs,
                     size_t* chunks) {
  const size_t m = a.size(), n = b.size();
  // Total word steps in k chunks: k times ceil(ceil(m/k)/64) * ceil(n/k).
  auto work = [&](size_t k) { return k * (((m + k - 1) / k + 63) / 64) * ((n + k - 1) / k); };
  size_t k = 1;
  if (work(1) > max_work) {
    k = std::max<size_t>(1, work(1) / std::max<size_t>(max_work, 1));
    while (work(k) > max_work && k < std::max(m, n)) ++k;
  }
  if (chunks != nullptr) *chunks = k;
  if (k == 1) return LcsLengthBitParallel(a, b, alphabet_size, runs);
  if (runs != nullptr) runs->clear();
  std::vector<MatchRun> part;
  int lcs = 0;
  for (size_t c = 0; c < k; ++c) {
    const size_t a0 = m * c / k, a1 = m * (c + 1) / k, b0 = n * c / k, b1 = n * (c + 1) / k;
    lcs += LcsLengthBitParallel(a.subspan(a0, a1 - a0), b.subspan(b0, b1 - b0), alphabet_size,
                                runs != nullptr ? &part : nullptr);
    if (runs == nullptr) continue;
    for (const MatchRun& r : part) {
      runs->push_back({r.a_begin + static_cast<uint32_t>(a0), r.b_begin + static_cast<uint32_t>(b0),
                       r.length});
    }
  }
  return lcs;
}

int LcsLengthDp(absl::Span<const uint32_t> a, absl::Span<const uint32_t> b) {
  std::vector<int> prev(b.size() + 1, 0), cur(b.size() + 1, 0);
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j) {
      cur[j] = a[i - 1] == b[j - 1] ? prev[j - 1] + 1 : std::max(prev[j], cur[j - 1]);
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

double LcsF1(int lcs, size_t len_a, size_t len_b) {
  if (len_a == 0 && len_b == 0) return 1.0;
  if (lcs == 0) return 0.0;
  double p = static_cast<double>(lcs) / static_cast<double>(len_b);
  double r = static_cast<double>(lcs) / static_cast<double>(len_a);
  return 2 * p * r / (p + r);
}

namespace {

// ------------------------------------------------------------------ chrF --
constexpr int kMaxDigit = 12;  // radix digit bits, at most (36-bit keys: 3 passes)
constexpr int kMaxPasses = 7;
constexpr uint32_t kSkipChar = UINT32_MAX;  // ChrfScratch::ascii_id of whitespace
// Scratch buffers for Chrf, reused across calls on a thread.
struct ChrfScratch {
  std::vector<uint32_t> a, b;       // character ids (1-based), whitespace removed
  std::vector<uint64_t> keys, tmp;  // packed n-gram elements, radix sort buffer
  std::vector<uint32_t> hist;       // radix histograms, one per pass
  std::vector<uint16_t> hist16;     // the same for fewer than 65536 elements
  // Positions whose n-grams are counted (kept), per text, as [begin, end)
  // segments; the rest lie inside verified equal ranges. marks/at: byte
  // offsets of those ranges' ends and the character indexes there.
  using Segments = std::vector<std::pair<uint32_t, uint32_t>>;
  Segments kept_a, kept_b;
  std::vector<uint32_t> marks_a, marks_b, at_a, at_b;
  uint32_t ascii_id[128] = {};      // ASCII character → id, 0 = not seen yet
  absl::flat_hash_map<uint32_t, uint32_t> wide_id;  // other characters → id
  uint32_t alphabet = 0;

  // Hash fallback: an open-addressing n-gram count table; a generation
  // stamp avoids clearing it.
  struct Entry {
    uint64_t key;
    uint32_t gen;
    uint32_t count_a;
    uint32_t count_b;
  };
  std::vector<Entry> entries;
  uint32_t gen = 0;
  size_t mask = 0;

  void ResetAlphabet() {
    std::memset(ascii_id, 0, sizeof(ascii_id));
    for (unsigned char c : {' ', '\t', '\n', '\r', '\f', '\v'}) ascii_id[c] = kSkipChar;
    if (!wide_id.empty()) wide_id.clear();
    alphabet = 0;
  }
  // Release drops buffers grown past `max_elements` by a huge input, so a
  // thread does not keep them for good.
  void Release(size_t max_elements) {
    if (keys.capacity() > max_elements || a.capacity() > max_elements ||
        b.capacity() > max_elements) {
      a = {};
      b = {};
      keys = {};
      tmp = {};
    }
    if (entries.size() > 2 * max_elements) {
      entries = {};
      mask = 0;
    }
    if (hist.size() > max_elements) hist = {};
  }
  void ResetTable(size_t expected) {
    size_t size = 1024;
    while (size < expected * 2) size <<= 1;
    if (entries.size() != size || gen == UINT32_MAX) {
      entries.assign(size, Entry{0, 0, 0, 0});
      gen = 0;
    }
    mask = entries.size() - 1;
    ++gen;
  }
  Entry* Find(uint64_t key, bool insert) {
    size_t i = static_cast<size_t>(key) & mask;
    while (true) {
      Entry& e = entries[i];
      if (e.gen != gen) {
        if (!insert) return nullptr;
        e = Entry{key, gen, 0, 0};
        return &e;
      }
      if (e.key == key) return &e;
      i = (i + 1) & mask;
    }
  }
};

// DecodeWide decodes the non-ASCII character at t[i] and advances i: the
// code point of a valid UTF-8 sequence (no overlong forms, surrogates or
// values past U+10FFFF), else the lone byte as 0x110000 + byte.
inline uint32_t DecodeWide(std::string_view t, size_t& i) {
  const unsigned char c = static_cast<unsigned char>(t[i]);
  size_t len = 0;
  uint32_t cp = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // range of the second byte
  if (c >= 0xC2 && c <= 0xDF) {
    len = 2;
    cp = c & 0x1F;
  } else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
    cp = c & 0x0F;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
    cp = c & 0x07;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  }
  if (len == 0 || len > t.size() - i) {
    ++i;
    return 0x110000 + c;
  }
  for (size_t k = 1; k < len; ++k) {
    const unsigned char d = static_cast<unsigned char>(t[i + k]);
    if (d < (k == 1 ? lo : 0x80) || d > (k == 1 ? hi : 0xBF)) {
      ++i;
      return 0x110000 + c;
    }
    cp = (cp << 6) | (d & 0x3F);
  }
  i += len;
  return cp;
}

// ToCharIds turns a text into dense character ids (1, 2, ... shared by the
// two texts of a Chrf call), dropping whitespace and folding ASCII case
// unless case_sensitive. ASCII is branch-light: whitespace maps to
// kSkipChar and is written but not kept. at[k] receives the number of
// characters before byte offset marks[k] (marks ascending, <= t.size(); a
// mark inside a character counts that character).
void ToCharIds(std::string_view t, bool case_sensitive, ChrfScratch& s,
               std::vector<uint32_t>* out, const std::vector<uint32_t>& marks,
               std::vector<uint32_t>* at) {
  out->resize(t.size() + 1);  // one spare slot: every ASCII byte is written
  at->resize(marks.size());
  uint32_t* w = out->data();
  const unsigned char* base = reinterpret_cast<const unsigned char*>(t.data());
  const unsigned char* p = base;
  const unsigned char* end = base + t.size();
  for (size_t next = 0;; ++next) {
    const unsigned char* stop = next < marks.size() ? base + marks[next] : end;
    while (p < stop) {
      const unsigned char c = *p;
      if (c < 0x80) {
        ++p;
        uint32_t id = s.ascii_id[c];
        if (id == 0) {
          id = s.ascii_id[c] = ++s.alphabet;
          // Both cases of a letter share one id when folding.
          if (!case_sensitive && (IsUpper(c) || IsLower(c))) s.ascii_id[c ^ 0x20] = id;
        }
        *w = id;
        w += id != kSkipChar;
      } else {
        size_t i = static_cast<size_t>(p - base);
        const uint32_t cp = DecodeWide(t, i);
        p = base + i;
        auto [it, inserted] = s.wide_id.try_emplace(cp, s.alphabet + 1);
        if (inserted) ++s.alphabet;
        *w++ = it->second;
      }
    }
    if (next == marks.size()) break;
    (*at)[next] = static_cast<uint32_t>(w - out->data());
  }
  out->resize(static_cast<size_t>(w - out->data()));
}

// KeptCount is the number of positions in `segments`.
size_t KeptCount(const ChrfScratch::Segments& segments) {
  size_t n = 0;
  for (const auto& [begin, end] : segments) n += end - begin;
  return n;
}

// RadixSort sorts keys[0..n) by bits 1..kPasses * digit (LSD, kPasses
// digits; the source bit 0 needs no order). Counters are 16-bit when n
// allows, which keeps the histograms in L1. Each pass scatters from both
// ends at once, the front half forward into the start of each bucket and
// the back half backward into its end: two independent chains of counter
// updates (neighbouring keys often share a digit, and one chain would wait
// on its own stores), and still stable. Returns keys or tmp, whichever
// holds the result. hist holds 2 * kPasses << digit counters.
template <int kPasses, typename Count>
uint64_t* RadixSort(uint64_t* keys, uint64_t* tmp, size_t n, int digit, Count* hist) {
  const size_t buckets = size_t{1} << digit;
  const uint64_t mask = buckets - 1;
  std::fill(hist, hist + 2 * kPasses * buckets, Count{0});
  Count* h[kPasses];
  int shifts[kPasses];
  for (int p = 0; p < kPasses; ++p) {
    h[p] = hist + p * buckets;
    shifts[p] = 1 + p * digit;
  }
  for (size_t i = 0; i < n; ++i) {
    const uint64_t k = keys[i];
    for (int p = 0; p < kPasses; ++p) ++h[p][(k >> shifts[p]) & mask];
  }
  uint64_t* from = keys;
  uint64_t* to = tmp;
  Count* end = hist + kPasses * buckets;  // per bucket: one past its last slot
  for (int p = 0; p < kPasses; ++p) {
    Count* begin = h[p];
    Count sum = 0;
    bool trivial = false;
    for (size_t d = 0; d < buckets; ++d) {
      const Count c = begin[d];
      trivial |= c == n;
      begin[d] = sum;
      sum = static_cast<Count>(sum + c);
      end[d] = sum;
    }
    if (trivial) continue;  // every element has the same digit
    const int shift = shifts[p];
    size_t i = 0, j = n;
    for (; i + 1 < j; ++i) {
      const uint64_t x = from[i], y = from[--j];
      to[begin[(x >> shift) & mask]++] = x;
      to[--end[(y >> shift) & mask]] = y;
    }
    if (i < j) to[begin[(from[i] >> shift) & mask]] = from[i];
    std::swap(from, to);
  }
  return from;
}

template <typename Count>
uint64_t* RadixSortBits(uint64_t* keys, uint64_t* tmp, size_t n, int width,
                        std::vector<Count>* hist) {
  // Each pass costs about n element moves plus 2^digit bucket updates (a
  // move measured about twice an update): few elements (say, only those
  // around the differences of two similar texts) sort faster in more
  // passes over smaller digits.
  int passes = (width + kMaxDigit - 1) / kMaxDigit;
  for (int p = passes + 1; p <= kMaxPasses; ++p) {
    const int d = (width + p - 1) / p, best = (width + passes - 1) / passes;
    if (p * (2 * n + (size_t{1} << d)) < passes * (2 * n + (size_t{1} << best))) passes = p;
  }
  const int digit = (width + passes - 1) / passes;
  hist->resize(static_cast<size_t>(2 * passes) << digit);
  Count* h = hist->data();
  switch (passes) {
    case 1: return RadixSort<1>(keys, tmp, n, digit, h);
    case 2: return RadixSort<2>(keys, tmp, n, digit, h);
    case 3: return RadixSort<3>(keys, tmp, n, digit, h);
    case 4: return RadixSort<4>(keys, tmp, n, digit, h);
    case 5: return RadixSort<5>(keys, tmp, n, digit, h);
    case 6: return RadixSort<6>(keys, tmp, n, digit, h);
    default: return RadixSort<7>(keys, tmp, n, digit, h);
  }
}

// CountGroups adds to match[n] the clipped matches of the sorted elements
// (see MatchesBySorting) in one pass: lane n - 1 of kVecs vectors of four
// counts each holds the elements of a and of b in the current group of
// order n. An element that shares lcp leading characters with the one
// before continues the groups of orders <= lcp and closes those above,
// which add min(count in a, count in b). Vectors of 16 bytes and signed
// lanes keep it to plain SSE2 (or NEON) instructions; lanes of type T
// must hold `total` (a sum of minimums is at most the elements of a).
template <typename T, int kVecs>
void CountGroups(const uint64_t* sorted, size_t total, int order, int bits, uint64_t* match) {
  typedef T Vec __attribute__((vector_size(16)));
  constexpr int kPerVec = 16 / sizeof(T);
  constexpr int kLanes = kPerVec * kVecs;
  Vec close_from[kLanes + 1][kVecs];  // [l]: all ones in lanes l and above
  for (int l = 0; l <= kLanes; ++l) {
    for (int k = 0; k < kLanes; ++k) close_from[l][k / kPerVec][k % kPerVec] = k >= l ? -1 : 0;
  }
  Vec count_a[kVecs] = {}, count_b[kVecs] = {}, matched[kVecs] = {};
  const int width = order * bits;
  // chars[b]: whole characters in b bits (a table: no division per element).
  uint8_t chars[65];
  for (int b = 0; b <= 64; ++b) chars[b] = static_cast<uint8_t>(b / bits);
  uint64_t prev = sorted[0] ^ (uint64_t{1} << width);  // shares no character
  for (size_t i = 0; i < total; ++i) {
    const uint64_t cur = sorted[i];
    // Key bits are 1..width; bit 0 (the source) is set as a sentinel so
    // that equal keys count `width` equal bits (clz of 0 is undefined).
    const Vec* close = close_from[chars[__builtin_clzll((prev ^ cur) | 1) - (63 - width)]];
    prev = cur;
    const T from_b = static_cast<T>(cur & 1);
    for (int v = 0; v < kVecs; ++v) {
      const Vec a_less = count_a[v] < count_b[v];
      matched[v] += ((count_a[v] & a_less) | (count_b[v] & ~a_less)) & close[v];
      count_a[v] = (count_a[v] & ~close[v]) + static_cast<T>(from_b ^ 1);
      count_b[v] = (count_b[v] & ~close[v]) + from_b;
    }
  }
  for (int v = 0; v < kVecs; ++v) {
    const Vec a_less = count_a[v] < count_b[v];
    matched[v] += (count_a[v] & a_less) | (count_b[v] & ~a_less);
  }
  for (int n = 1; n <= order; ++n) {
    match[n] += static_cast<uint64_t>(matched[(n - 1) / kPerVec][(n - 1) % kPerVec]);
  }
}

// MatchesBySorting adds to match[n] (n = 1..order) the clipped n-gram
// matches, sum over n-grams g of min(count of g in a, count in b), counting
// the n-grams that start at kept positions only. Every kept text position
// is one element packing its next `order` characters
// (`bits` each, first character most significant) above a source bit (0:
// a, 1: b). Past its end a text is padded with a character of its own (0
// for a, pad_b for b), so an n-gram that runs off the end of a text never
// matches one of the other text. Once sorted, the elements that share an
// n-gram are contiguous for every n at once, and CountGroups counts all
// orders in one branch-free pass (group boundaries are unpredictable).
// Needs order * bits + 1 <= 64 and character ids in 1..pad_b-1.
void MatchesBySorting(ChrfScratch& s, int order, int bits, uint64_t pad_b, uint64_t* match) {
  const size_t len_a = KeptCount(s.kept_a), total = len_a + KeptCount(s.kept_b);
  if (total == 0) return;
  const int width = order * bits;
  s.keys.resize(total);
  s.tmp.resize(total);
  uint64_t* keys = s.keys.data();
  // Each segment is packed from its end: the key of position i holds
  // characters i..i+order-1 (padded past the text), built by shifting in
  // one character at a time.
  auto pack = [&](const std::vector<uint32_t>& text, const ChrfScratch::Segments& kept,
                  uint64_t pad, uint64_t source, uint64_t* out) {
    for (const auto& [begin, end] : kept) {
      uint64_t key = 0;
      for (int k = 0; k < order; ++k) {
        const size_t q = end + static_cast<size_t>(k);
        key |= (q < text.size() ? text[q] : pad) << (bits * (order - 1 - k));
      }
      out += end - begin;
      uint64_t* o = out;
      for (size_t i = end; i-- > begin;) {
        key = (static_cast<uint64_t>(text[i]) << (bits * (order - 1))) | (key >> bits);
        *--o = (key << 1) | source;
      }
    }
  };
  pack(s.a, s.kept_a, 0, 0, keys);
  pack(s.b, s.kept_b, pad_b, 1, keys + len_a);

  uint64_t* sorted = total <= UINT16_MAX
                         ? RadixSortBits(keys, s.tmp.data(), total, width, &s.hist16)
                         : RadixSortBits(keys, s.tmp.data(), total, width, &s.hist);

  if (total <= INT16_MAX) {  // eight orders to a vector
    if (order <= 8) return CountGroups<int16_t, 1>(sorted, total, order, bits, match);
    return CountGroups<int16_t, 2>(sorted, total, order, bits, match);
  }
  switch ((order + 3) / 4) {
    case 1: return CountGroups<int32_t, 1>(sorted, total, order, bits, match);
    case 2: return CountGroups<int32_t, 2>(sorted, total, order, bits, match);
    default: return CountGroups<int32_t, 3>(sorted, total, order, bits, match);
  }
}

// MatchesByHashing is the same count through a hash table of n-gram
// hashes, for alphabets too large to pack `order` characters in 63 bits.
void MatchesByHashing(ChrfScratch& s, int order, uint64_t* match) {
  s.ResetTable(KeptCount(s.kept_a) * static_cast<size_t>(order));
  // n-gram keys: a running hash extended character by character, mixed with n.
  const size_t len_a = s.a.size();
  for (const auto& [begin, end] : s.kept_a) {
    for (size_t i = begin; i < end; ++i) {
      uint64_t h = 0x9e3779b97f4a7c15ULL;
      for (int n = 1; n <= order && i + n <= len_a; ++n) {
        h = (h ^ s.a[i + n - 1]) * 0x100000001b3ULL;
        ++s.Find(Mix(h + static_cast<uint64_t>(n)), true)->count_a;
      }
    }
  }
  // For b, an n-gram absent from a means every longer one from the same
  // start is absent too (a inserted all prefixes), so stop extending there.
  const size_t len_b = s.b.size();
  for (const auto& [begin, end] : s.kept_b) {
    for (size_t i = begin; i < end; ++i) {
      uint64_t h = 0x9e3779b97f4a7c15ULL;
      for (int n = 1; n <= order && i + n <= len_b; ++n) {
        h = (h ^ s.b[i + n - 1]) * 0x100000001b3ULL;
        ChrfScratch::Entry* e = s.Find(Mix(h + static_cast<uint64_t>(n)), false);
        if (e == nullptr) break;
        if (e->count_b < e->count_a) {
          ++e->count_b;
          ++match[n];
        }
      }
    }
  }
}

// ExcludeEqualRanges sets s.kept_a and s.kept_b. Each hint whose two
// ranges hold the same characters (checked) is a shared stretch: the
// n-grams that lie wholly inside it occur once in each text, so they add
// exactly one match each to every order and need no counting. Returns how
// many positions of a were excluded so (the same number for b): for order
// `order`, the positions whose whole n-gram lies inside the range.
uint64_t ExcludeEqualRanges(ChrfScratch& s, int order, size_t hints) {
  s.kept_a.clear();
  s.kept_b.clear();
  uint32_t from_a = 0, from_b = 0;
  uint64_t excluded = 0;
  for (size_t k = 0; k < hints; ++k) {
    const uint32_t a0 = s.at_a[2 * k], a1 = s.at_a[2 * k + 1];
    const uint32_t b0 = s.at_b[2 * k], b1 = s.at_b[2 * k + 1];
    const uint32_t len = a1 - a0;
    if (len != b1 - b0 || len < static_cast<uint32_t>(order)) continue;
    if (a0 < from_a || b0 < from_b) continue;  // overlaps the previous one
    if (std::memcmp(s.a.data() + a0, s.b.data() + b0, len * sizeof(uint32_t)) != 0) continue;
    const uint32_t skip = len - static_cast<uint32_t>(order) + 1;
    if (a0 > from_a) s.kept_a.emplace_back(from_a, a0);
    if (b0 > from_b) s.kept_b.emplace_back(from_b, b0);
    from_a = a0 + skip;
    from_b = b0 + skip;
    excluded += skip;
  }
  const auto len_a = static_cast<uint32_t>(s.a.size()), len_b = static_cast<uint32_t>(s.b.size());
  if (from_a < len_a) s.kept_a.emplace_back(from_a, len_a);
  if (from_b < len_b) s.kept_b.emplace_back(from_b, len_b);
  return excluded;
}

}  // namespace

double Chrf(std::string_view a_text, std::string_view b_text, int order, double beta,
            bool case_sensitive) {
  return Chrf(a_text, b_text, order, beta, case_sensitive, {});
}

double Chrf(std::string_view a_text, std::string_view b_text, int order, double beta,
            bool case_sensitive, absl::Span<const EqualRange> equal) {
  thread_local ChrfScratch scratch;
  ChrfScratch& s = scratch;
  struct ReleaseOnReturn {  // texts of over ~1M characters
    ChrfScratch& s;
    ~ReleaseOnReturn() { s.Release(size_t{1} << 20); }
  } release{s};
  s.ResetAlphabet();
  // Hints in order in both texts, within bounds, not overlapping.
  s.marks_a.clear();
  s.marks_b.clear();
  for (const EqualRange& r : equal) {
    const bool ordered = s.marks_a.empty() ||
                         (r.a_begin >= s.marks_a.back() && r.b_begin >= s.marks_b.back());
    if (ordered && r.a_begin < r.a_end && r.a_end <= a_text.size() && r.b_begin < r.b_end &&
        r.b_end <= b_text.size()) {
      s.marks_a.insert(s.marks_a.end(), {r.a_begin, r.a_end});
      s.marks_b.insert(s.marks_b.end(), {r.b_begin, r.b_end});
    }
  }
  ToCharIds(a_text, case_sensitive, s, &s.a, s.marks_a, &s.at_a);
  ToCharIds(b_text, case_sensitive, s, &s.b, s.marks_b, &s.at_b);
  const size_t len_a = s.a.size(), len_b = s.b.size();
  if (len_a == 0 && len_b == 0) return 1.0;
  if (len_a == 0 || len_b == 0) return 0.0;
  order = std::clamp(order, 1, 12);
  uint64_t total_a[13] = {}, total_b[13] = {}, match[13] = {};
  const uint64_t shared = ExcludeEqualRanges(s, order, s.marks_a.size() / 2);
  for (int n = 1; n <= order; ++n) match[n] = shared;
  for (int n = 1; n <= order; ++n) {
    total_a[n] = len_a >= static_cast<size_t>(n) ? len_a - n + 1 : 0;
    total_b[n] = len_b >= static_cast<size_t>(n) ? len_b - n + 1 : 0;
  }
  // Character ids are 1..alphabet, 0 pads a and alphabet + 1 pads b.
  const uint64_t pad_b = uint64_t{s.alphabet} + 1;
  int bits = 1;
  while ((uint64_t{1} << bits) <= pad_b) ++bits;
  if (order * bits + 1 <= 64) {
    MatchesBySorting(s, order, bits, pad_b, match);
  } else {
    MatchesByHashing(s, order, match);
  }
  double p_sum = 0, r_sum = 0;
  int orders = 0;
  for (int n = 1; n <= order; ++n) {
    if (total_a[n] == 0 && total_b[n] == 0) continue;
    ++orders;
    if (total_b[n] > 0) p_sum += static_cast<double>(match[n]) / static_cast<double>(total_b[n]);
    if (total_a[n] > 0) r_sum += static_cast<double>(match[n]) / static_cast<double>(total_a[n]);
  }
  if (orders == 0) return 1.0;
  const double p = p_sum / orders, r = r_sum / orders;
  if (p == 0 && r == 0) return 0.0;
  const double b2 = beta * beta;
  return (1 + b2) * p * r / (b2 * p + r);
}

const char* SalientKindName(SalientKind kind) {
  switch (kind) {
    case SalientKind::kNumber:
      return "number";
    case SalientKind::kEntity:
      return "name";
    case SalientKind::kIdentifier:
      return "identifier";
    case SalientKind::kUrl:
      return "url";
    case SalientKind::kNegation:
      return "negation";
  }
  return "token";
}

namespace {

bool IsStopword(std::string_view lower) {
  static constexpr std::string_view kWords[] = {
      "a",       "an",      "the",    "this",   "that",   "these", "those",   "it",
      "its",     "in",      "on",     "at",     "to",     "for",   "of",      "and",
      "or",      "but",     "if",     "then",   "so",     "yes",   "no",      "however",
      "here",    "there",   "i",      "we",     "you",    "he",    "she",     "they",
      "my",      "our",     "your",   "their",  "his",    "her",   "is",      "are",
      "was",     "were",    "be",     "as",     "with",   "by",    "from",    "when",
      "what",    "which",   "who",    "how",    "why",    "where", "also",    "note",
      "sure",    "certainly", "first", "second", "finally", "next", "step",   "example",
      "overall", "in",      "for",    "please", "let",    "let's", "some",    "all",
      "each",    "both",    "after",  "before", "while",  "because", "although", "since",
      "ok",      "okay",    "great",  "thanks", "thank",  "hello", "hi",      "based",
      "using",   "use",     "to",     "do",     "does",   "can",   "will",    "would",
      "should",  "could",   "may",    "might",  "must",   "other", "another", "one"};
  for (std::string_view w : kWords) {
    if (lower == w) return true;
  }
  return false;
}

// Pack8 is a word of up to 8 bytes as a little-endian integer, zero-padded
// (word tokens never contain NUL, so equal packs are equal words).
constexpr uint64_t Pack8(std::string_view w) {
  uint64_t x = 0;
  for (size_t k = 0; k < w.size() && k < 8; ++k) {
    x |= static_cast<uint64_t>(static_cast<unsigned char>(w[k])) << (8 * k);
  }
  return x;
}

// LoadToken packs text[begin, begin + n) for n <= 8, with one 8-byte load
// when the text has 8 readable bytes from begin.
inline uint64_t LoadToken(std::string_view text, size_t begin, size_t n) {
  if (text.size() - begin >= 8) {
    uint64_t x;
    std::memcpy(&x, text.data() + begin, 8);
    return n == 8 ? x : x & ((uint64_t{1} << (8 * n)) - 1);
  }
  return Pack8(text.substr(begin, n));
}

// NegationTable is a collision-free hash of the packed negation words:
// slot (x * multiplier) >> 58 holds x. The multiplier is searched once.
struct NegationTable {
  uint64_t multiplier = 0;
  uint64_t slots[64] = {};
  NegationTable() {
    static constexpr uint64_t kWords[] = {
        Pack8("not"),     Pack8("no"),      Pack8("never"),   Pack8("none"),
        Pack8("cannot"),  Pack8("nor"),     Pack8("neither"), Pack8("nobody"),
        Pack8("nothing"), Pack8("without"), Pack8("nowhere")};
    for (uint64_t m = 0x9E3779B97F4A7C15ULL;; m += 0x632BE59BD9B4E019ULL) {
      multiplier = m | 1;
      std::fill(std::begin(slots), std::end(slots), 0);
      bool ok = true;
      for (uint64_t w : kWords) {
        uint64_t& slot = slots[(w * multiplier) >> 58];
        ok &= slot == 0;
        slot = w;
      }
      if (ok) return;
    }
  }
};

// IsNegation: `folded` is the lower-cased token packed (0 when it is longer
// than 8 bytes; no negation word is), `s` the token as written.
bool IsNegation(uint64_t folded, std::string_view s) {
  static const NegationTable table;
  const bool word = folded != 0 && table.slots[(folded * table.multiplier) >> 58] == folded;
  const size_t n = s.size();
  if (n <= 3) return word;
  if (n <= 8) {
    constexpr uint64_t kNt = Pack8("n't");
    return word | (((folded >> (8 * (n - 3))) & 0xFFFFFF) == kNt);
  }
  return Lower(static_cast<unsigned char>(s[n - 3])) == 'n' && s[n - 2] == '\'' &&
         Lower(static_cast<unsigned char>(s[n - 1])) == 't';
}

// Byte masks (high bit of each byte) of the ASCII upper- and lower-case
// letters among 8 packed bytes.
inline uint64_t UpperMask8(uint64_t x) {
  constexpr uint64_t kOnes = 0x0101010101010101ULL;
  const uint64_t heptets = x & (0x7F * kOnes);
  return (heptets + ((0x80 - 'A') * kOnes)) & ~(heptets + ((0x7F - 'Z') * kOnes)) & ~x &
         (0x80 * kOnes);
}
inline uint64_t LowerMask8(uint64_t x) {
  constexpr uint64_t kOnes = 0x0101010101010101ULL;
  const uint64_t heptets = x & (0x7F * kOnes);
  return (heptets + ((0x80 - 'a') * kOnes)) & ~(heptets + ((0x7F - 'z') * kOnes)) & ~x &
         (0x80 * kOnes);
}
inline bool HasByte8(uint64_t x, unsigned char b) {
  constexpr uint64_t kOnes = 0x0101010101010101ULL;
  const uint64_t v = x ^ (b * kOnes);
  return ((v - kOnes) & ~v & (0x80 * kOnes)) != 0;
}

std::string LowerString(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(Lower(static_cast<unsigned char>(c)));
  return out;
}

std::string NumberKey(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c != ',') out.push_back(c);
  }
  // 36.0 and 36 are the same number.
  if (out.find('.') != std::string::npos && IsDigit(static_cast<unsigned char>(out.back()))) {
    while (out.back() == '0') out.pop_back();
    if (out.back() == '.') out.pop_back();
  }
  return out;
}

}  // namespace

std::vector<Salient> ExtractSalient(std::string_view text, bool case_sensitive) {
  Interner scratch(true);
  return ExtractSalient(text, Tokenize(text, scratch), case_sensitive);
}

std::vector<Salient> ExtractSalient(std::string_view text, const std::vector<Token>& tokens,
                                    bool case_sensitive) {
  std::vector<Salient> out;
  out.reserve(tokens.size() / 8 + 4);
  // URLs first; their bytes are then skipped by the token scan. They are
  // found by their "://" (rare in prose, unlike the letter h).
  std::vector<std::pair<size_t, size_t>> urls;
  for (size_t colon = 0; (colon = text.find("://", colon)) != std::string_view::npos;) {
    size_t pos = colon;
    if (colon >= 5 && text.substr(colon - 5, 5) == "https") {
      pos = colon - 5;
    } else if (colon >= 4 && text.substr(colon - 4, 4) == "http") {
      pos = colon - 4;
    }
    if (pos == colon || (!urls.empty() && pos < urls.back().second)) {
      colon += 3;
      continue;
    }
    const size_t scheme = colon + 3 - pos;
    size_t end = pos + scheme;
    while (end < text.size() && !IsSpace(static_cast<unsigned char>(text[end])) &&
           std::strchr(")]>\"'`", text[end]) == nullptr) {
      ++end;
    }
    while (end > pos + scheme && std::strchr(".,;:!?", text[end - 1]) != nullptr) --end;
    std::string_view url = text.substr(pos, end - pos);
    out.push_back({SalientKind::kUrl, std::string(url), std::string(url),
                   static_cast<uint32_t>(pos)});
    urls.emplace_back(pos, end);
    colon = end > colon + 3 ? end : colon + 3;
  }
  const size_t url_count = out.size();
  size_t url_i = 0;
  bool sentence_start = true;
  bool in_code = false;
  for (size_t t = 0; t < tokens.size(); ++t) {
    const Token& tok = tokens[t];
    std::string_view s = text.substr(tok.begin, tok.size);
    while (url_i < urls.size() && urls[url_i].second <= tok.begin) ++url_i;
    if (url_i < urls.size() && tok.begin >= urls[url_i].first) continue;
    if (t > 0) {
      const Token& prev = tokens[t - 1];
      for (size_t k = prev.begin + prev.size; k < tok.begin; ++k) {
        if (text[k] == '\n') {
          sentence_start = true;
          break;
        }
      }
    }
    if (!tok.word) {
      if (s.size() == 1) {
        switch (s[0]) {
          case '`':
            in_code = !in_code;
            break;
          case '.': case '!': case '?': case ':': case '#': case '*': case '-': case '>':
          case '|':
            sentence_start = true;
            break;
          default:
            break;
        }
      }
      continue;
    }
    const unsigned char c0 = static_cast<unsigned char>(s[0]);
    const uint32_t begin = tok.begin;
    bool was_start = sentence_start;
    sentence_start = false;
    if (IsDigit(c0)) {
      out.push_back({SalientKind::kNumber, NumberKey(s), std::string(s), begin});
      continue;
    }
    // Words of up to 8 bytes are tested 8 bytes at a time.
    const bool short_token = s.size() <= 8;
    const uint64_t raw = short_token ? LoadToken(text, tok.begin, s.size()) : 0;
    if (IsNegation(short_token ? FoldAscii8(raw) : 0, s)) {
      out.push_back({SalientKind::kNegation, LowerString(s), std::string(s), begin});
      continue;
    }
    bool has_underscore = false;
    bool camel = false;
    bool has_upper = false;
    if (short_token) {
      const uint64_t upper = UpperMask8(raw);
      has_upper = upper != 0;
      has_underscore = HasByte8(raw, '_');
      camel = ((LowerMask8(raw) << 8) & upper) != 0;  // a lower-case letter, then an upper
    } else {
      for (size_t k = 0; k < s.size(); ++k) {
        const unsigned char ck = static_cast<unsigned char>(s[k]);
        has_upper |= IsUpper(ck);
        has_underscore |= ck == '_';
        camel |= k > 0 && IsUpper(ck) && IsLower(static_cast<unsigned char>(s[k - 1]));
      }
    }
    bool call = tok.begin + tok.size < text.size() && text[tok.begin + tok.size] == '(';
    if (in_code || has_underscore || camel || call) {
      out.push_back({SalientKind::kIdentifier, std::string(s), std::string(s), begin});
      continue;
    }
    if (!has_upper) continue;  // not a name either
    if (IsUpper(c0) && s.size() > 1 && !(was_start && IsStopword(LowerString(s)))) {
      out.push_back({SalientKind::kEntity, case_sensitive ? std::string(s) : LowerString(s),
                     std::string(s), begin});
    }
  }
  // URLs and tokens are each in text order and never share a start.
  if (url_count > 0) {
    std::inplace_merge(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(url_count),
                       out.end(), [](const Salient& x, const Salient& y) {
                         return x.begin < y.begin;
                       });
  }
  return out;
}

SalientDiff DiffSalient(const std::vector<Salient>& a, const std::vector<Salient>& b,
                        double numeric_tolerance) {
  SalientDiff d;
  d.total = a.size() + b.size();
  // Each (kind, key) of a: a queue of its occurrences in a, consumed front
  // first (order of appearance, for determinism) by equal ones of b.
  struct Queue {
    uint32_t head, tail;  // indexes into a; head == kNone: all consumed
  };
  constexpr uint32_t kNone = UINT32_MAX;
  absl::flat_hash_map<std::pair<SalientKind, std::string_view>, Queue> queues;
  queues.reserve(a.size());
  std::vector<uint32_t> next(a.size(), kNone);  // the next occurrence of the same key
  for (uint32_t i = 0; i < a.size(); ++i) {
    auto [it, inserted] = queues.try_emplace({a[i].kind, a[i].key}, Queue{i, i});
    if (!inserted) {
      if (it->second.head == kNone) {
        it->second.head = i;
      } else {
        next[it->second.tail] = i;
      }
      it->second.tail = i;
    }
  }
  std::vector<bool> used_a(a.size(), false);
  std::vector<size_t> left_b;
  for (size_t j = 0; j < b.size(); ++j) {
    auto it = queues.find(std::pair<SalientKind, std::string_view>(b[j].kind, b[j].key));
    if (it == queues.end() || it->second.head == kNone) {
      left_b.push_back(j);
      continue;
    }
    used_a[it->second.head] = true;
    it->second.head = next[it->second.head];
  }
  // Numbers that differ only within tolerance still match: each left
  // number of b takes the first unused number of a within tolerance (of
  // at most kMaxTolerancePairs tried). Each number is parsed once.
  constexpr size_t kMaxTolerancePairs = 256;
  auto parse = [](const std::string& key, double* value) {
    char* end = nullptr;
    *value = std::strtod(key.c_str(), &end);
    return end != nullptr && *end == '\0';
  };
  struct Number {
    uint32_t index;  // into a
    bool valid;
    double value;
  };
  std::vector<Number> numbers_a;
  if (numeric_tolerance > 0) {
    for (uint32_t i = 0; i < a.size(); ++i) {
      if (used_a[i] || a[i].kind != SalientKind::kNumber) continue;
      Number x{i, false, 0};
      x.valid = parse(a[i].key, &x.value);
      numbers_a.push_back(x);
    }
  }
  for (size_t& j_ref : left_b) {
    const Salient& sb = b[j_ref];
    double vb = 0;
    if (numbers_a.empty() || sb.kind != SalientKind::kNumber || !parse(sb.key, &vb)) continue;
    size_t tries = 0;
    for (const Number& x : numbers_a) {
      if (tries == kMaxTolerancePairs) break;
      if (used_a[x.index]) continue;
      ++tries;
      if (!x.valid) continue;
      const double scale = std::max({1.0, std::fabs(x.value), std::fabs(vb)});
      if (std::fabs(x.value - vb) <= numeric_tolerance * scale) {
        used_a[x.index] = true;
        j_ref = SIZE_MAX;
        break;
      }
    }
  }
  for (size_t i = 0; i < a.size(); ++i) {
    if (!used_a[i]) d.only_a.push_back(a[i]);
  }
  for (size_t j : left_b) {
    if (j != SIZE_MAX) d.only_b.push_back(b[j]);
  }
  return d;
}

std::vector<Span> DifferingSpans(const std::vector<Token>& a, const std::vector<Token>& b,
                                 size_t max_spans) {
  // Anchors: ids that occur exactly once in each sequence.
  struct Occ {
    uint32_t count_a = 0, count_b = 0, pos_a = 0, pos_b = 0;
  };
  std::vector<std::pair<uint32_t, uint32_t>> pairs;
  // Ids from an Interner are dense: index a vector by id when they are.
  uint32_t max_id = 0;
  for (const Token& t : a) max_id = std::max(max_id, t.id);
  if (max_id <= 4 * (a.size() + b.size()) + 1024) {
    std::vector<Occ> occ(static_cast<size_t>(max_id) + 1);
    for (uint32_t i = 0; i < a.size(); ++i) {
      Occ& o = occ[a[i].id];
      ++o.count_a;
      o.pos_a = i;
    }
    for (uint32_t j = 0; j < b.size(); ++j) {
      if (b[j].id > max_id) continue;  // not in a
      Occ& o = occ[b[j].id];
      ++o.count_b;
      o.pos_b = j;
    }
    for (uint32_t i = 0; i < a.size(); ++i) {
      const Occ& o = occ[a[i].id];
      if (o.count_a == 1 && o.count_b == 1) pairs.emplace_back(o.pos_a, o.pos_b);
    }
  } else {
    absl::flat_hash_map<uint32_t, Occ> occ;
    occ.reserve(a.size() + b.size());
    for (uint32_t i = 0; i < a.size(); ++i) {
      Occ& o = occ[a[i].id];
      ++o.count_a;
      o.pos_a = i;
    }
    for (uint32_t j = 0; j < b.size(); ++j) {
      auto it = occ.find(b[j].id);
      if (it == occ.end()) continue;
      ++it->second.count_b;
      it->second.pos_b = j;
    }
    for (uint32_t i = 0; i < a.size(); ++i) {
      const Occ& o = occ[a[i].id];
      if (o.count_a == 1 && o.count_b == 1) pairs.emplace_back(o.pos_a, o.pos_b);
    }
  }
  // Longest increasing subsequence of pos_b (pairs are sorted by pos_a).
  std::vector<size_t> tails, prev(pairs.size(), SIZE_MAX);
  for (size_t k = 0; k < pairs.size(); ++k) {
    auto it = std::lower_bound(tails.begin(), tails.end(), pairs[k].second,
                               [&](size_t idx, uint32_t v) { return pairs[idx].second < v; });
    size_t pos = static_cast<size_t>(it - tails.begin());
    if (pos > 0) prev[k] = tails[pos - 1];
    if (it == tails.end()) {
      tails.push_back(k);
    } else {
      *it = k;
    }
  }
  std::vector<std::pair<uint32_t, uint32_t>> anchors;
  for (size_t k = tails.empty() ? SIZE_MAX : tails.back(); k != SIZE_MAX; k = prev[k]) {
    anchors.push_back(pairs[k]);
  }
  std::reverse(anchors.begin(), anchors.end());
  std::vector<Span> spans;
  uint32_t pa = 0, pb = 0;
  auto gap = [&](uint32_t ea, uint32_t eb) {
    uint32_t sa = pa, sb = pb;
    while (sa < ea && sb < eb && a[sa].id == b[sb].id) ++sa, ++sb;
    while (ea > sa && eb > sb && a[ea - 1].id == b[eb - 1].id) --ea, --eb;
    if (sa < ea || sb < eb) spans.push_back({sa, ea, sb, eb});
  };
  for (const auto& [ia, ib] : anchors) {
    gap(ia, ib);
    pa = ia + 1;
    pb = ib + 1;
  }
  gap(static_cast<uint32_t>(a.size()), static_cast<uint32_t>(b.size()));
  std::stable_sort(spans.begin(), spans.end(), [](const Span& x, const Span& y) {
    return (x.a_end - x.a_begin) + (x.b_end - x.b_begin) >
           (y.a_end - y.a_begin) + (y.b_end - y.b_begin);
  });
  if (spans.size() > max_spans) spans.resize(max_spans);
  return spans;
}

}  // namespace understudy::compare::internal
