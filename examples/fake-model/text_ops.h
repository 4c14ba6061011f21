// examples/fake-model/text_ops.h (internal to the fake model)
// Deterministic text transforms behind the drift knobs, token counting,
// stream splitting and corpus matching. Pure functions; the randomness comes
// from the caller's Rng so a seed reproduces a run.
#ifndef UNDERSTUDY_EXAMPLES_FAKE_MODEL_TEXT_OPS_H_
#define UNDERSTUDY_EXAMPLES_FAKE_MODEL_TEXT_OPS_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "examples/fake-model/fake_model.h"

namespace understudy::fake_model {

// Rng is SplitMix64: tiny, portable and identical on every platform (the
// std:: distributions are not).
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  Rng(uint64_t seed, uint64_t stream);
  uint64_t Next();
  double Uniform();  // [0, 1)
  double Normal();   // standard normal (Box-Muller)
  int Below(int n);  // [0, n), n > 0
  bool Chance(double p) { return Uniform() < p; }

 private:
  uint64_t state_;
};

// CountTokens approximates a BPE tokenizer: one token per 4 characters of a
// word (at least one) plus one per punctuation mark.
int CountTokens(std::string_view text);

// SplitForStream cuts text into stream deltas (a word with its leading
// whitespace each, grouped so there are at most `max_pieces`). The pieces
// concatenate to `text`; text with two or more words gives two or more.
std::vector<std::string> SplitForStream(std::string_view text,
                                        int max_pieces = 200);
// SplitEvery cuts text into pieces of `size` bytes (the last may be shorter).
std::vector<std::string> SplitEvery(std::string_view text, size_t size);

// Paraphrase keeps the facts (numbers and names) but swaps synonyms and
// moves the first sentence to the end; the result always differs.
std::string Paraphrase(std::string_view text, Rng& rng);
// Truncate keeps 30-70% of the words; the result is a non-empty strict
// prefix of a non-empty text.
std::string Truncate(std::string_view text, Rng& rng);
// TruncateToTokens keeps words while CountTokens stays within max_tokens.
std::string TruncateToTokens(std::string_view text, int max_tokens);
// WrongAnswer changes one number; without numbers, one name (a capitalized
// word not starting a sentence); without either, negates " is " or appends
// a false claim. The result always differs.
std::string WrongAnswer(std::string_view text, Rng& rng);
// WrongJson changes one leaf (number or string) of a serialized JSON value;
// the result is valid JSON with the same keys. Non-JSON input goes through
// WrongAnswer.
std::string WrongJson(std::string_view json, Rng& rng);
// ReorderJson reverses the key order of objects (same JSON value).
std::string ReorderJson(std::string_view json);
// BreakJson returns text that no JSON parser accepts.
std::string BreakJson(std::string_view json, Rng& rng);

// Normalize lowercases and turns non-alphanumerics into single spaces.
std::string Normalize(std::string_view text);
// MatchCorpus returns the index of the entry whose question equals the
// normalized query, else the best word overlap (Jaccard over non-stopwords,
// at least 0.2), else -1.
int MatchCorpus(const std::vector<CorpusEntry>& corpus, std::string_view query);

}  // namespace understudy::fake_model

#endif  // UNDERSTUDY_EXAMPLES_FAKE_MODEL_TEXT_OPS_H_
