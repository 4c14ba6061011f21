// storage/privacy.h (internal)
// Scrubber removes secrets from every record before it is stored: secret
// headers always; bodies, comparison findings and feedback comments per
// BodyMode. Built once from PrivacyConfig. The store applies it in Write,
// which every other output (admin API, export, report, dashboard) reads
// from, so this file is the one place the privacy rules live.
//
// In every mode but `full`, no prompt or answer text is kept:
//   * redacted: bodies keep their JSON structure; the built-in content paths
//     (BuiltinContentJsonPaths: prompts, messages, answers and stream deltas
//     of every API kind) and the configured paths are replaced by
//     "[REDACTED]", then the regexes run.
//   * hash_only: bodies become body_sha256; none: bodies are dropped.
//   * findings keep kind, path (a JSON path or a position), major/noise and
//     the comparison's scores; their production/candidate texts become
//     "[sha256:<16 hex> len:<bytes>]" ("[len:<bytes>]" in none) and their
//     message is rebuilt from kind, path and lengths.
//   * feedback comments are dropped (the score, source and arm are kept).
//   * scheduled eval runs keep each answer's sha256 and length, not its
//     text (a re-ask check then compares hashes: docs/drift.md).
//
// Thread safety: Scrub is const and may be called concurrently.
#ifndef UNDERSTUDY_STORAGE_PRIVACY_H_
#define UNDERSTUDY_STORAGE_PRIVACY_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "re2/re2.h"
#include "storage/store.h"

namespace understudy::storage {

inline constexpr std::string_view kRedacted = "[REDACTED]";

// The headers that are never stored, whatever the config says.
const std::vector<std::string>& BuiltinSecretHeaders();
// The JSON paths always replaced in redacted mode, in addition to the
// configured ones: prompt and answer text of OpenAI Chat Completions and
// Responses, Anthropic Messages and embeddings inputs, JSON and SSE.
const std::vector<std::string>& BuiltinContentJsonPaths();
// The patterns used in redacted mode when the config lists none.
const std::vector<std::string>& DefaultRedactPatterns();

// JsonPath is one parsed redaction path: "messages[*].content" →
// {name "messages", all}, {name "content"}.
struct JsonPathSegment {
  std::string name;        // "" = no key step (path starts with [..]); "*" = any key
  enum class Index { kNone, kAll, kOne } index = Index::kNone;
  size_t position = 0;
};
using JsonPath = std::vector<JsonPathSegment>;

// ParseJsonPath accepts "a.b", "$.a.b", "a[*].b", "a[2]", "*.token";
// InvalidArgument otherwise.
[[nodiscard]] absl::StatusOr<JsonPath> ParseJsonPath(std::string_view path);

class Scrubber {
 public:
  // Create validates the config (paths and RE2 patterns).
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Scrubber>> Create(const PrivacyConfig& config);

  // Scrub removes secret headers and trailers from both directions and
  // applies the body mode.
  void Scrub(v1::Exchange* exchange) const;
  // ScrubComparison replaces finding texts per the mode (see above).
  void ScrubComparison(v1::Comparison* comparison) const;
  // ScrubFeedback drops the comment in every mode but full.
  void ScrubFeedback(v1::Feedback* feedback) const;
  // ScrubEvalRun fills each answer's text_sha256 and text_length from its
  // text when they are unset, and drops the text in every mode but full.
  void ScrubEvalRun(v1::EvalRun* run) const;

  // RedactBody applies JSON paths (to a JSON body or to each `data:` line of
  // an SSE body) and then the regexes; exposed for tests.
  std::string RedactBody(std::string_view body) const;
  bool IsSecretHeader(std::string_view lower_name) const;

 private:
  Scrubber() = default;
  void ScrubMessage(v1::HttpMessage* message) const;
  std::string RedactText(std::string text) const;

  BodyMode mode_ = BodyMode::kRedacted;
  absl::flat_hash_set<std::string> secret_headers_;
  std::vector<JsonPath> paths_;
  std::vector<std::unique_ptr<RE2>> patterns_;
};


}  // namespace understudy::storage

#endif  // UNDERSTUDY_STORAGE_PRIVACY_H_
