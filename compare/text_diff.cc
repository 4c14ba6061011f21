#include "compare/text_diff.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <map>
#include <tuple>

namespace understudy::compare::internal {

namespace {

inline bool IsSpace(unsigned char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}
inline bool IsDigit(unsigned char c) { return c >= '0' && c <= '9'; }
inline bool IsUpper(unsigned char c) { return c >= 'A' && c <= 'Z'; }
inline bool IsLower(unsigned char c) { return c >= 'a' && c <= 'z'; }
inline bool IsWordByte(unsigned char c) {
  return IsDigit(c) || IsUpper(c) || IsLower(c) || c == '_' || c >= 0x80;
}
inline unsigned char Lower(unsigned char c) { return IsUpper(c) ? c + 32 : c; }

std::string LowerAscii(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(Lower(static_cast<unsigned char>(c)));
  return out;
}

inline uint64_t Mix(uint64_t h) {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  return h;
}

}  // namespace

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
  // FNV-1a, then a finaliser so ids spread in the hash map.
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : token) {
    h ^= case_sensitive_ ? c : Lower(c);
    h *= 1099511628211ULL;
  }
  h = Mix(h ^ token.size());
  auto [it, inserted] = ids_.try_emplace(h, static_cast<uint32_t>(ids_.size()));
  return it->second;
}

std::vector<Token> Tokenize(std::string_view text, Interner& interner) {
  std::vector<Token> tokens;
  tokens.reserve(text.size() / 4 + 1);
  const size_t n = text.size();
  size_t i = 0;
  auto at = [&](size_t k) -> unsigned char {
    return k < n ? static_cast<unsigned char>(text[k]) : 0;
  };
  while (i < n) {
    unsigned char c = at(i);
    if (IsSpace(c)) {
      ++i;
      continue;
    }
    size_t begin = i;
    bool word = IsWordByte(c);
    if (word) {
      ++i;
      while (i < n) {
        unsigned char d = at(i);
        if (IsWordByte(d)) {
          ++i;
        } else if ((d == '.' || d == ',') && IsDigit(at(i - 1)) && IsDigit(at(i + 1))) {
          i += 2;  // 3.14, 1,000
        } else if (d == '\'' && IsWordByte(at(i - 1)) && IsLower(at(i + 1))) {
          i += 2;  // don't, it's
        } else {
          break;
        }
      }
    } else {
      ++i;
    }
    Token t;
    t.begin = static_cast<uint32_t>(begin);
    t.size = static_cast<uint32_t>(i - begin);
    t.word = word;
    t.id = interner.Intern(text.substr(begin, i - begin));
    tokens.push_back(t);
  }
  return tokens;
}

int LcsLengthBitParallel(absl::Span<const uint32_t> a, absl::Span<const uint32_t> b,
                         uint32_t alphabet_size) {
  const size_t m = a.size();
  if (m == 0 || b.empty()) return 0;
  const size_t words = (m + 63) / 64;
  // Match vectors: bit i of peq[s] is set when a[i] == s.
  std::vector<uint64_t> peq(static_cast<size_t>(alphabet_size) * words, 0);
  for (size_t i = 0; i < m; ++i) {
    peq[static_cast<size_t>(a[i]) * words + i / 64] |= uint64_t{1} << (i % 64);
  }
  // V starts all ones; zeros mark LCS growth (Hyyrö 2004):
  //   V' = (V + (V & M)) | (V & ~M), with carries across words.
  std::vector<uint64_t> v(words, ~uint64_t{0});
  for (uint32_t s : b) {
    if (s >= alphabet_size) continue;  // matches nothing: V unchanged
    const uint64_t* mv = &peq[static_cast<size_t>(s) * words];
    uint64_t carry = 0;
    for (size_t k = 0; k < words; ++k) {
      const uint64_t vk = v[k];
      const uint64_t u = vk & mv[k];
      const uint64_t sum1 = vk + u;
      const uint64_t c1 = sum1 < vk;
      const uint64_t sum2 = sum1 + carry;
      const uint64_t c2 = sum2 < sum1;
      carry = c1 | c2;
      v[k] = sum2 | (vk & ~mv[k]);
    }
  }
  int zeros = 0;
  for (size_t k = 0; k < words; ++k) {
    uint64_t x = ~v[k];
    if (k == words - 1 && m % 64 != 0) x &= (uint64_t{1} << (m % 64)) - 1;
    zeros += __builtin_popcountll(x);
  }
  return zeros;
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

// An open-addressing n-gram count table reused across calls on a thread;
// a generation stamp avoids clearing it.
struct NgramTable {
  struct Entry {
    uint64_t key;
    uint32_t gen;
    uint32_t count_a;
    uint32_t count_b;
  };
  std::vector<Entry> entries;
  uint32_t gen = 0;
  uint64_t mask = 0;

  void Reset(size_t expected) {
    size_t size = 1024;
    while (size < expected * 2) size <<= 1;
    if (entries.size() < size || gen == UINT32_MAX) {
      entries.assign(size, Entry{0, 0, 0, 0});
      gen = 0;
    }
    // Use the whole allocated table so the mask matches its size.
    mask = entries.size() - 1;
    ++gen;
  }
  Entry* Find(uint64_t key, bool insert) {
    uint64_t i = key & mask;
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

std::string StripSpaces(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    if (!IsSpace(c)) out.push_back(static_cast<char>(c));
  }
  return out;
}

}  // namespace

double Chrf(std::string_view a_text, std::string_view b_text, int order, double beta) {
  const std::string a = StripSpaces(a_text);
  const std::string b = StripSpaces(b_text);
  if (a.empty() && b.empty()) return 1.0;
  if (a.empty() || b.empty()) return 0.0;
  order = std::clamp(order, 1, 12);
  thread_local NgramTable table;
  table.Reset(a.size() * static_cast<size_t>(order));
  std::vector<uint64_t> total_a(order + 1, 0), total_b(order + 1, 0), match(order + 1, 0);
  // n-gram keys: a running hash extended byte by byte, mixed with n.
  auto for_each_ngram = [order](const std::string& s, auto&& fn) {
    const size_t len = s.size();
    for (size_t i = 0; i < len; ++i) {
      uint64_t h = 0x9e3779b97f4a7c15ULL;
      for (int n = 1; n <= order && i + n <= len; ++n) {
        h = (h ^ static_cast<unsigned char>(s[i + n - 1])) * 0x100000001b3ULL;
        uint64_t key = Mix(h + static_cast<uint64_t>(n));
        fn(n, key);
      }
    }
  };
  for_each_ngram(a, [&](int n, uint64_t key) {
    ++total_a[n];
    ++table.Find(key, true)->count_a;
  });
  // For b, an n-gram absent from a means every longer one from the same
  // start is absent too (a inserted all prefixes), so stop extending there.
  const size_t len_b = b.size();
  for (size_t i = 0; i < len_b; ++i) {
    uint64_t h = 0x9e3779b97f4a7c15ULL;
    bool present = true;
    for (int n = 1; n <= order && i + n <= len_b; ++n) {
      ++total_b[n];
      if (!present) continue;
      h = (h ^ static_cast<unsigned char>(b[i + n - 1])) * 0x100000001b3ULL;
      NgramTable::Entry* e = table.Find(Mix(h + static_cast<uint64_t>(n)), false);
      if (e == nullptr) {
        present = false;
      } else if (e->count_b < e->count_a) {
        ++e->count_b;
        ++match[n];
      }
    }
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

bool IsNegation(std::string_view lower) {
  static constexpr std::string_view kWords[] = {"not",   "no",      "never",  "none",    "cannot",
                                       "nor",   "neither", "nobody", "nothing", "without",
                                       "nowhere"};
  for (std::string_view w : kWords) {
    if (lower == w) return true;
  }
  return lower.size() > 3 && lower.substr(lower.size() - 3) == "n't";
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
  std::vector<Salient> out;
  // URLs first; their bytes are then skipped by the token scan.
  std::vector<std::pair<size_t, size_t>> urls;
  for (size_t pos = 0; (pos = text.find("http", pos)) != std::string_view::npos;) {
    std::string_view rest = text.substr(pos);
    size_t scheme = rest.substr(0, 8) == "https://" ? 8 : (rest.substr(0, 7) == "http://" ? 7 : 0);
    if (scheme == 0) {
      pos += 4;
      continue;
    }
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
    pos = end;
  }
  Interner scratch(true);
  std::vector<Token> tokens = Tokenize(text, scratch);
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
      std::string_view gap = text.substr(prev.begin + prev.size, tok.begin - prev.begin - prev.size);
      if (gap.find('\n') != std::string_view::npos) sentence_start = true;
    }
    if (!tok.word) {
      if (s == "`") in_code = !in_code;
      if (s == "." || s == "!" || s == "?" || s == ":" || s == "#" || s == "*" || s == "-" ||
          s == ">" || s == "|") {
        sentence_start = true;
      }
      continue;
    }
    const unsigned char c0 = static_cast<unsigned char>(s[0]);
    const std::string lower = LowerAscii(s);
    const uint32_t begin = tok.begin;
    bool was_start = sentence_start;
    sentence_start = false;
    if (IsDigit(c0)) {
      out.push_back({SalientKind::kNumber, NumberKey(s), std::string(s), begin});
      continue;
    }
    if (IsNegation(lower)) {
      out.push_back({SalientKind::kNegation, lower, std::string(s), begin});
      continue;
    }
    bool has_underscore = s.find('_') != std::string_view::npos;
    bool camel = false;
    for (size_t k = 1; k < s.size(); ++k) {
      if (IsLower(static_cast<unsigned char>(s[k - 1])) && IsUpper(static_cast<unsigned char>(s[k]))) {
        camel = true;
      }
    }
    bool call = tok.begin + tok.size < text.size() && text[tok.begin + tok.size] == '(';
    if (in_code || has_underscore || camel || call) {
      out.push_back({SalientKind::kIdentifier, std::string(s), std::string(s), begin});
      continue;
    }
    if (IsUpper(c0) && s.size() > 1 && !(was_start && IsStopword(lower))) {
      out.push_back({SalientKind::kEntity, case_sensitive ? std::string(s) : lower,
                     std::string(s), begin});
    }
  }
  std::sort(out.begin(), out.end(),
            [](const Salient& x, const Salient& y) { return x.begin < y.begin; });
  return out;
}

SalientDiff DiffSalient(const std::vector<Salient>& a, const std::vector<Salient>& b,
                        double numeric_tolerance) {
  SalientDiff d;
  d.total = a.size() + b.size();
  std::map<std::pair<int, std::string_view>, std::vector<size_t>> pool;
  for (size_t i = 0; i < a.size(); ++i) {
    pool[{static_cast<int>(a[i].kind), a[i].key}].push_back(i);
  }
  std::vector<bool> used_a(a.size(), false);
  std::vector<size_t> left_b;
  for (size_t j = 0; j < b.size(); ++j) {
    auto it = pool.find({static_cast<int>(b[j].kind), b[j].key});
    if (it != pool.end() && !it->second.empty()) {
      // Match in order of appearance for determinism.
      used_a[it->second.front()] = true;
      it->second.erase(it->second.begin());
    } else {
      left_b.push_back(j);
    }
  }
  // Numbers that differ only within tolerance still match.
  constexpr size_t kMaxTolerancePairs = 256;
  for (size_t& j_ref : left_b) {
    const Salient& sb = b[j_ref];
    if (sb.kind != SalientKind::kNumber || numeric_tolerance <= 0) continue;
    char* end = nullptr;
    double vb = std::strtod(sb.key.c_str(), &end);
    if (end == nullptr || *end != '\0') continue;
    size_t tries = 0;
    for (size_t i = 0; i < a.size() && tries < kMaxTolerancePairs; ++i) {
      if (used_a[i] || a[i].kind != SalientKind::kNumber) continue;
      ++tries;
      double va = std::strtod(a[i].key.c_str(), &end);
      if (end == nullptr || *end != '\0') continue;
      double scale = std::max({1.0, std::fabs(va), std::fabs(vb)});
      if (std::fabs(va - vb) <= numeric_tolerance * scale) {
        used_a[i] = true;
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
  std::vector<std::pair<uint32_t, uint32_t>> pairs;
  for (uint32_t i = 0; i < a.size(); ++i) {
    const Occ& o = occ[a[i].id];
    if (o.count_a == 1 && o.count_b == 1) pairs.emplace_back(o.pos_a, o.pos_b);
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
