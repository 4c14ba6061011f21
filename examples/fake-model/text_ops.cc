#include "examples/fake-model/text_ops.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <nlohmann/json.hpp>
#include <set>
#include <unordered_map>
#include <unordered_set>

namespace understudy::fake_model {
namespace {

using OJson = nlohmann::ordered_json;

bool IsWordChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '\'';
}

// Words of `text` as [begin, end) byte ranges.
std::vector<std::pair<size_t, size_t>> WordRanges(std::string_view text) {
  std::vector<std::pair<size_t, size_t>> out;
  size_t i = 0;
  while (i < text.size()) {
    if (!IsWordChar(text[i])) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < text.size() && IsWordChar(text[j])) ++j;
    out.emplace_back(i, j);
    i = j;
  }
  return out;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Applies the capitalization of `like` (first letter) to `word`.
std::string MatchCase(std::string word, std::string_view like) {
  if (!like.empty() && std::isupper(static_cast<unsigned char>(like[0])) &&
      !word.empty()) {
    word[0] =
        static_cast<char>(std::toupper(static_cast<unsigned char>(word[0])));
  }
  return word;
}

const std::unordered_map<std::string, std::string>& Synonyms() {
  static const auto* kMap = new std::unordered_map<std::string, std::string>{
      {"largest", "biggest"},
      {"biggest", "largest"},
      {"big", "large"},
      {"large", "big"},
      {"small", "little"},
      {"approximately", "roughly"},
      {"about", "around"},
      {"roughly", "approximately"},
      {"fast", "quick"},
      {"quickly", "rapidly"},
      {"uses", "employs"},
      {"use", "employ"},
      {"shows", "demonstrates"},
      {"because", "since"},
      {"also", "additionally"},
      {"begins", "starts"},
      {"began", "started"},
      {"started", "began"},
      {"located", "situated"},
      {"known", "recognized"},
      {"important", "significant"},
      {"many", "numerous"},
      {"help", "assist"},
      {"helps", "assists"},
      {"make", "create"},
      {"makes", "creates"},
      {"called", "named"},
      {"first", "initial"},
      {"highest", "tallest"},
      {"tallest", "highest"},
      {"returns", "gives back"},
      {"function", "routine"},
      {"wrote", "authored"},
      {"built", "constructed"},
      {"famous", "well-known"},
      {"contains", "holds"},
      {"consists", "is made up"},
      {"main", "primary"},
      {"often", "frequently"},
      {"usually", "typically"},
      {"very", "highly"},
      {"near", "close to"},
      {"measures", "spans"},
      {"located", "found"},
      {"discovered", "found"},
      {"produces", "generates"},
      {"needs", "requires"},
      {"gets", "obtains"},
  };
  return *kMap;
}

const std::unordered_set<std::string>& Stopwords() {
  static const auto* kSet = new std::unordered_set<std::string>{
      "a",     "an",   "the",   "is",     "are",    "was",      "were",
      "be",    "of",   "in",    "on",     "at",     "to",       "for",
      "and",   "or",   "what",  "which",  "who",    "whom",     "how",
      "why",   "when", "where", "do",     "does",   "did",      "it",
      "its",   "this", "that",  "with",   "by",     "as",       "me",
      "i",     "you",  "your",  "please", "tell",   "can",      "could",
      "would", "give", "from",  "about",  "answer", "question", "s"};
  return *kSet;
}

const std::vector<std::string>& NamePool() {
  static const auto* kNames = new std::vector<std::string>{
      "Berlin", "Madrid", "Lisbon", "Vienna",  "Oslo",   "Darwin", "Newton",
      "Curie",  "Tesla",  "Mars",   "Jupiter", "Sydney", "Kepler", "Austen"};
  return *kNames;
}

bool IsSentenceStart(std::string_view text, size_t pos) {
  size_t i = pos;
  while (i > 0 &&
         (text[i - 1] == ' ' || text[i - 1] == '"' || text[i - 1] == '('))
    --i;
  if (i == 0) return true;
  char c = text[i - 1];
  return c == '.' || c == '!' || c == '?' || c == '\n' || c == ':';
}

// Splits into sentences, each keeping its terminator and trailing space.
std::vector<std::string> Sentences(std::string_view text) {
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if ((c == '.' || c == '!' || c == '?') &&
        (i + 1 == text.size() || text[i + 1] == ' ')) {
      // Do not split inside numbers such as "3.14" (no space follows there).
      size_t end = i + 1;
      while (end < text.size() && text[end] == ' ') ++end;
      out.emplace_back(text.substr(start, end - start));
      start = end;
      i = end - 1;
    }
  }
  if (start < text.size()) out.emplace_back(text.substr(start));
  return out;
}

std::string RStrip(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back())))
    s.pop_back();
  return s;
}

// Collects pointers to the leaves of a JSON value.
void Leaves(OJson& value, std::vector<OJson*>& out) {
  if (value.is_object() || value.is_array()) {
    for (auto& child : value) Leaves(child, out);
  } else if (value.is_number() || value.is_string()) {
    out.push_back(&value);
  }
}

OJson Reversed(const OJson& value) {
  if (value.is_object()) {
    OJson out = OJson::object();
    std::vector<std::pair<std::string, const OJson*>> items;
    for (auto it = value.begin(); it != value.end(); ++it)
      items.emplace_back(it.key(), &it.value());
    std::reverse(items.begin(), items.end());
    for (auto& [k, v] : items) out[k] = Reversed(*v);
    return out;
  }
  if (value.is_array()) {
    OJson out = OJson::array();
    for (const auto& v : value) out.push_back(Reversed(v));
    return out;
  }
  return value;
}

}  // namespace

Rng::Rng(uint64_t seed, uint64_t stream)
    : state_(seed * 0x9E3779B97F4A7C15ULL ^ (stream + 0x632BE59BD9B4E019ULL)) {
  Next();
}

uint64_t Rng::Next() {
  uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

double Rng::Uniform() {
  return static_cast<double>(Next() >> 11) * (1.0 / 9007199254740992.0);
}

double Rng::Normal() {
  double u1 = Uniform();
  double u2 = Uniform();
  if (u1 < 1e-300) u1 = 1e-300;
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
}

int Rng::Below(int n) {
  return n <= 1 ? 0 : static_cast<int>(Next() % static_cast<uint64_t>(n));
}

int CountTokens(std::string_view text) {
  int tokens = 0;
  size_t i = 0;
  while (i < text.size()) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (std::isspace(c)) {
      ++i;
    } else if (IsWordChar(text[i]) || c >= 0x80) {
      size_t j = i;
      while (j < text.size() && (IsWordChar(text[j]) ||
                                 static_cast<unsigned char>(text[j]) >= 0x80))
        ++j;
      tokens += static_cast<int>((j - i + 3) / 4);
      i = j;
    } else {
      ++tokens;
      ++i;
    }
  }
  return tokens;
}

std::vector<std::string> SplitForStream(std::string_view text, int max_pieces) {
  // Words with their leading whitespace: " world".
  std::vector<std::string> words;
  size_t i = 0;
  while (i < text.size()) {
    size_t j = i;
    while (j < text.size() && std::isspace(static_cast<unsigned char>(text[j])))
      ++j;
    while (j < text.size() &&
           !std::isspace(static_cast<unsigned char>(text[j])))
      ++j;
    words.emplace_back(text.substr(i, j - i));
    i = j;
  }
  if (max_pieces < 1) max_pieces = 1;
  if (static_cast<int>(words.size()) <= max_pieces) return words;
  std::vector<std::string> out;
  size_t per = (words.size() + max_pieces - 1) / max_pieces;
  for (size_t w = 0; w < words.size(); w += per) {
    std::string piece;
    for (size_t k = w; k < std::min(words.size(), w + per); ++k)
      piece += words[k];
    out.push_back(std::move(piece));
  }
  return out;
}

std::vector<std::string> SplitEvery(std::string_view text, size_t size) {
  std::vector<std::string> out;
  if (size == 0) size = 1;
  for (size_t i = 0; i < text.size(); i += size)
    out.emplace_back(text.substr(i, size));
  return out;
}

std::string Paraphrase(std::string_view text, Rng& rng) {
  std::string original(text);
  if (text.find('\n') != std::string_view::npos) {
    // Code or lists: keep the body, change the framing.
    return "Sure. " + original;
  }
  std::vector<std::string> sentences = Sentences(text);
  std::string reordered;
  if (sentences.size() >= 2) {
    std::string first = RStrip(sentences.front());
    for (size_t k = 1; k < sentences.size(); ++k) {
      std::string s = sentences[k];
      if (k + 1 == sentences.size()) s = RStrip(s) + " ";
      reordered += s;
    }
    reordered += first;
  } else {
    reordered = original;
  }
  // Swap synonyms for about half of the eligible words (at least one).
  std::string out;
  auto ranges = WordRanges(reordered);
  std::vector<size_t> eligible;
  for (size_t k = 0; k < ranges.size(); ++k) {
    std::string w = Lower(std::string_view(reordered).substr(
        ranges[k].first, ranges[k].second - ranges[k].first));
    if (Synonyms().count(w)) eligible.push_back(k);
  }
  std::set<size_t> chosen;
  for (size_t k : eligible) {
    if (rng.Chance(0.6)) chosen.insert(k);
  }
  if (chosen.empty() && !eligible.empty())
    chosen.insert(eligible[rng.Below(eligible.size())]);
  size_t pos = 0;
  for (size_t k = 0; k < ranges.size(); ++k) {
    if (!chosen.count(k)) continue;
    auto [b, e] = ranges[k];
    std::string_view word = std::string_view(reordered).substr(b, e - b);
    out += reordered.substr(pos, b - pos);
    out += MatchCase(Synonyms().at(Lower(word)), word);
    pos = e;
  }
  out += reordered.substr(pos);
  if (out == original) out = "To put it simply: " + original;
  return out;
}

std::string Truncate(std::string_view text, Rng& rng) {
  auto ranges = WordRanges(text);
  if (ranges.size() < 2) {
    // Too short to cut at a word: cut characters.
    if (text.size() < 2) return std::string(text);
    return std::string(text.substr(0, text.size() / 2));
  }
  double fraction = 0.3 + 0.4 * rng.Uniform();
  size_t keep = static_cast<size_t>(std::floor(fraction * ranges.size()));
  keep = std::clamp<size_t>(keep, 1, ranges.size() - 1);
  return std::string(text.substr(0, ranges[keep - 1].second));
}

std::string TruncateToTokens(std::string_view text, int max_tokens) {
  if (CountTokens(text) <= max_tokens) return std::string(text);
  auto ranges = WordRanges(text);
  std::string best;
  for (const auto& r : ranges) {
    std::string_view prefix = text.substr(0, r.second);
    if (CountTokens(prefix) > max_tokens) break;
    best = std::string(prefix);
  }
  return best;
}

std::string WrongAnswer(std::string_view text, Rng& rng) {
  std::string s(text);
  // Numbers: maximal digit runs.
  std::vector<std::pair<size_t, size_t>> numbers;
  for (size_t i = 0; i < s.size();) {
    if (std::isdigit(static_cast<unsigned char>(s[i]))) {
      size_t j = i;
      while (j < s.size() && std::isdigit(static_cast<unsigned char>(s[j])))
        ++j;
      numbers.emplace_back(i, j);
      i = j;
    } else {
      ++i;
    }
  }
  if (!numbers.empty()) {
    auto [b, e] = numbers[rng.Below(numbers.size())];
    std::string digits = s.substr(b, e - b);
    if (digits.size() > 15) {  // keep stoll in range: change the low digits
      b = e - 15;
      digits = s.substr(b, e - b);
    }
    long long value = std::stoll(digits);
    long long delta = 1 + rng.Below(9);
    if (value >= 100)
      delta *= 1 + static_cast<long long>(value / 50);  // visible change
    long long changed =
        (value > delta && rng.Chance(0.5)) ? value - delta : value + delta;
    std::string replacement = std::to_string(changed);
    // Keep leading zeros (e.g. "07") so the shape stays the same.
    if (replacement.size() < digits.size())
      replacement.insert(0, digits.size() - replacement.size(), '0');
    return s.substr(0, b) + replacement + s.substr(e);
  }
  auto ranges = WordRanges(s);
  std::vector<std::pair<size_t, size_t>> names;
  for (auto r : ranges) {
    if (std::isupper(static_cast<unsigned char>(s[r.first])) &&
        r.second - r.first > 1 && !IsSentenceStart(s, r.first)) {
      names.push_back(r);
    }
  }
  if (!names.empty()) {
    auto [b, e] = names[rng.Below(names.size())];
    std::string old = s.substr(b, e - b);
    const auto& pool = NamePool();
    std::string name = pool[rng.Below(pool.size())];
    for (size_t k = 0; name == old && k < pool.size(); ++k) name = pool[k];
    return s.substr(0, b) + name + s.substr(e);
  }
  size_t is = s.find(" is ");
  if (is != std::string::npos)
    return s.substr(0, is) + " is not " + s.substr(is + 4);
  return RStrip(s) + (s.empty() ? "" : " ") +
         "That is all there is to it, no exceptions.";
}

std::string WrongJson(std::string_view json, Rng& rng) {
  OJson value = OJson::parse(json, nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded()) return WrongAnswer(json, rng);
  std::vector<OJson*> leaves;
  Leaves(value, leaves);
  if (leaves.empty()) return WrongAnswer(json, rng);
  OJson& leaf = *leaves[rng.Below(leaves.size())];
  if (leaf.is_number_integer() || leaf.is_number_unsigned()) {
    long long v = leaf.get<long long>();
    leaf = v + 1 + rng.Below(9);
  } else if (leaf.is_number()) {
    leaf = leaf.get<double>() * 1.5 + 1.0;
  } else {
    std::string text = leaf.get<std::string>();
    std::string changed = WrongAnswer(text, rng);
    if (changed == text) changed = text + " (revised)";
    leaf = changed;
  }
  return value.dump();
}

std::string ReorderJson(std::string_view json) {
  OJson value = OJson::parse(json, nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded()) return std::string(json);
  return Reversed(value).dump();
}

std::string BreakJson(std::string_view json, Rng& rng) {
  std::string s(json);
  std::string out;
  switch (rng.Below(3)) {
    case 0: {  // cut before the last closing brace/bracket
      size_t last = s.find_last_of("}]");
      out = last == std::string::npos ? s + "{" : s.substr(0, last);
      break;
    }
    case 1: {  // trailing comma
      size_t last = s.find_last_of("}]");
      out = last == std::string::npos
                ? s + ","
                : s.substr(0, last) + ",," + s.substr(last);
      break;
    }
    default: {  // single-quoted keys, as some models write
      out = s;
      for (char& c : out) {
        if (c == '"') c = '\'';
      }
      if (out == s) out = "{" + s;
      break;
    }
  }
  // Belt and braces: the result must not parse.
  if (nlohmann::json::accept(out)) out = "{" + out;
  return out;
}

std::string Normalize(std::string_view text) {
  std::string out;
  bool space = false;
  for (char c : text) {
    if (std::isalnum(static_cast<unsigned char>(c))) {
      if (space && !out.empty()) out += ' ';
      space = false;
      out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    } else {
      space = true;
    }
  }
  return out;
}

int MatchCorpus(const std::vector<CorpusEntry>& corpus,
                std::string_view query) {
  std::string q = Normalize(query);
  for (size_t i = 0; i < corpus.size(); ++i) {
    if (Normalize(corpus[i].question) == q) return static_cast<int>(i);
  }
  auto words = [](const std::string& normalized) {
    std::set<std::string> out;
    size_t i = 0;
    while (i < normalized.size()) {
      size_t j = normalized.find(' ', i);
      if (j == std::string::npos) j = normalized.size();
      std::string w = normalized.substr(i, j - i);
      if (!w.empty() && !Stopwords().count(w)) out.insert(w);
      i = j + 1;
    }
    return out;
  };
  std::set<std::string> qw = words(q);
  if (qw.empty()) return -1;
  int best = -1;
  double best_score = 0.2 - 1e-9;
  for (size_t i = 0; i < corpus.size(); ++i) {
    std::set<std::string> ew = words(Normalize(corpus[i].question));
    size_t common = 0;
    for (const auto& w : qw) common += ew.count(w);
    if (common == 0) continue;
    double score = static_cast<double>(common) /
                   static_cast<double>(qw.size() + ew.size() - common);
    if (score > best_score) {
      best_score = score;
      best = static_cast<int>(i);
    }
  }
  return best;
}

}  // namespace understudy::fake_model
