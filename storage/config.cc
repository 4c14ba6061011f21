// ParseStorageConfig, record kind names and RecordBatch/Store helpers.
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "common/strings.h"
#include "storage/privacy.h"
#include "storage/store.h"

namespace understudy::storage {
namespace {

constexpr int64_t kMaxRetentionHours = 24 * 365 * 100;

absl::Status ParsePrivacy(const ConfigNode& node, PrivacyConfig* out) {
  if (!node.IsDefined()) {
    out->redact_patterns = DefaultRedactPatterns();
    return absl::OkStatus();
  }
  if (!node.IsMap()) return absl::InvalidArgumentError(absl::StrCat(node.Path(), ": must be a map"));
  RETURN_IF_ERROR(node.CheckKeys(
      {"body_mode", "redact_json_paths", "redact_patterns", "secret_headers"}));
  ASSIGN_OR_RETURN(std::string mode, node.GetString("body_mode", "redacted"));
  if (mode == "full") {
    out->body_mode = BodyMode::kFull;
  } else if (mode == "redacted") {
    out->body_mode = BodyMode::kRedacted;
  } else if (mode == "hash_only") {
    out->body_mode = BodyMode::kHashOnly;
  } else if (mode == "none") {
    out->body_mode = BodyMode::kNone;
  } else {
    return node.Error("body_mode", absl::StrCat("must be one of full, redacted, hash_only, none; got \"",
                                                mode, "\""));
  }
  ASSIGN_OR_RETURN(std::vector<ConfigNode> paths, node.Child("redact_json_paths").Elements());
  for (const ConfigNode& p : paths) {
    ASSIGN_OR_RETURN(std::string text, p.AsString());
    absl::StatusOr<JsonPath> parsed = ParseJsonPath(text);
    if (!parsed.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(p.Path(), ": ", parsed.status().message()));
    }
    out->redact_json_paths.push_back(text);
  }
  if (node.Has("redact_patterns")) {
    ASSIGN_OR_RETURN(std::vector<ConfigNode> patterns, node.Child("redact_patterns").Elements());
    for (const ConfigNode& p : patterns) {
      ASSIGN_OR_RETURN(std::string text, p.AsString());
      RE2 re(text, RE2::Quiet);
      if (!re.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat(p.Path(), ": bad regex \"", text, "\": ", re.error()));
      }
      out->redact_patterns.push_back(text);
    }
  } else {
    out->redact_patterns = DefaultRedactPatterns();
  }
  ASSIGN_OR_RETURN(std::vector<ConfigNode> headers, node.Child("secret_headers").Elements());
  for (const ConfigNode& h : headers) {
    ASSIGN_OR_RETURN(std::string name, h.AsString());
    if (name.empty()) return absl::InvalidArgumentError(absl::StrCat(h.Path(), ": empty header name"));
    out->secret_headers.push_back(absl::AsciiStrToLower(name));
  }
  return absl::OkStatus();
}

absl::Status ParseRetention(const ConfigNode& node, RetentionConfig* out) {
  if (!node.IsDefined()) return absl::OkStatus();
  if (!node.IsMap()) return absl::InvalidArgumentError(absl::StrCat(node.Path(), ": must be a map"));
  RETURN_IF_ERROR(node.CheckKeys({"exchanges", "comparisons", "feedback", "health", "decisions",
                                   "evals"}));
  ASSIGN_OR_RETURN(out->exchanges_hours,
                   node.GetInt("exchanges", out->exchanges_hours, 0, kMaxRetentionHours));
  ASSIGN_OR_RETURN(out->comparisons_hours,
                   node.GetInt("comparisons", out->comparisons_hours, 0, kMaxRetentionHours));
  ASSIGN_OR_RETURN(out->feedback_hours,
                   node.GetInt("feedback", out->feedback_hours, 0, kMaxRetentionHours));
  ASSIGN_OR_RETURN(out->health_hours, node.GetInt("health", out->health_hours, 0, kMaxRetentionHours));
  ASSIGN_OR_RETURN(out->decisions_hours,
                   node.GetInt("decisions", out->decisions_hours, 0, kMaxRetentionHours));
  ASSIGN_OR_RETURN(out->evals_hours, node.GetInt("evals", out->evals_hours, 0, kMaxRetentionHours));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<StorageConfig> ParseStorageConfig(const ConfigNode& node) {
  StorageConfig config;
  if (!node.IsDefined()) {
    config.privacy.redact_patterns = DefaultRedactPatterns();
    return config;
  }
  if (!node.IsMap()) return absl::InvalidArgumentError(absl::StrCat(node.Path(), ": must be a map"));
  RETURN_IF_ERROR(node.CheckKeys({"path", "sync_bulk", "retention_hours", "max_size_mb",
                                  "min_free_mb", "retention_interval", "privacy"}));
  ASSIGN_OR_RETURN(config.path, node.GetString("path", config.path));
  if (config.path.empty()) return node.Error("path", "must not be empty");
  ASSIGN_OR_RETURN(config.sync_bulk, node.GetBool("sync_bulk", config.sync_bulk));
  ASSIGN_OR_RETURN(int64_t max_mb, node.GetInt("max_size_mb", 0, 0, int64_t{1} << 30));
  config.max_size_bytes = max_mb * 1024 * 1024;
  ASSIGN_OR_RETURN(int64_t min_free_mb, node.GetInt("min_free_mb", 0, 0, int64_t{1} << 30));
  config.min_free_bytes = min_free_mb * 1024 * 1024;
  ASSIGN_OR_RETURN(config.retention_interval,
                   node.GetDuration("retention_interval", config.retention_interval));
  if (config.retention_interval < absl::ZeroDuration()) {
    return node.Error("retention_interval", "must not be negative");
  }
  RETURN_IF_ERROR(ParseRetention(node.Child("retention_hours"), &config.retention));
  RETURN_IF_ERROR(ParsePrivacy(node.Child("privacy"), &config.privacy));
  return config;
}

absl::StatusOr<RecordKind> ParseRecordKind(std::string_view name) {
  for (RecordKind k : {RecordKind::kExchanges, RecordKind::kComparisons, RecordKind::kFeedback,
                       RecordKind::kDecisions, RecordKind::kHealth}) {
    if (RecordKindName(k) == name) return k;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown record kind \"", Av(name),
                   "\": want exchanges, comparisons, feedback, decisions or health"));
}

std::string_view RecordKindName(RecordKind kind) {
  switch (kind) {
    case RecordKind::kExchanges: return "exchanges";
    case RecordKind::kComparisons: return "comparisons";
    case RecordKind::kFeedback: return "feedback";
    case RecordKind::kDecisions: return "decisions";
    case RecordKind::kHealth: return "health";
  }
  return "unknown";
}

void RecordBatch::Clear() {
  exchanges_.clear();
  comparisons_.clear();
  feedback_.clear();
  health_.clear();
}

namespace {

// One batch holding `records`, written.
template <typename T>
absl::Status PutAll(Store& store, std::vector<T> records) {
  RecordBatch b;
  for (T& r : records) b.Add(std::move(r));
  return store.Write(std::move(b));
}
template <typename T>
absl::Status PutOne(Store& store, T record) {
  std::vector<T> one;
  one.push_back(std::move(record));
  return PutAll(store, std::move(one));
}

}  // namespace

absl::Status Store::PutExchange(v1::Exchange exchange) { return PutOne(*this, std::move(exchange)); }
absl::Status Store::PutComparison(v1::Comparison comparison) {
  return PutOne(*this, std::move(comparison));
}
absl::Status Store::PutFeedback(v1::Feedback feedback) { return PutOne(*this, std::move(feedback)); }
absl::Status Store::PutHealth(v1::HealthSnapshot snapshot) {
  return PutOne(*this, std::move(snapshot));
}
absl::Status Store::PutExchanges(std::vector<v1::Exchange> exchanges) {
  return PutAll(*this, std::move(exchanges));
}
absl::Status Store::PutComparisons(std::vector<v1::Comparison> comparisons) {
  return PutAll(*this, std::move(comparisons));
}

}  // namespace understudy::storage
