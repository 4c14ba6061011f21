// compare/json_diff.h (internal to compare/; other modules use compare.h)
// Structural JSON diff by path, ignoring key order, with numeric tolerance
// and ignore paths.
#ifndef UNDERSTUDY_COMPARE_JSON_DIFF_H_
#define UNDERSTUDY_COMPARE_JSON_DIFF_H_

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace understudy::compare::internal {

// ExtractJson returns the JSON text of an answer: the whole (trimmed) text
// when it starts with '{' or '[', else the first ``` fenced block (```json
// or bare) whose body starts with '{' or '['; nullopt otherwise.
std::optional<std::string_view> ExtractJson(std::string_view text);

struct JsonDiffOptions {
  double numeric_tolerance = 1e-9;
  bool case_sensitive = true;  // for string values
  std::vector<std::string> ignore_paths;
  size_t max_entries = 20;
};

struct JsonDiffEntry {
  std::string kind;  // json_added, json_removed, json_changed, json_type_changed
  std::string path;  // $.a.b[2]
  std::string production;  // minified value ("" when absent)
  std::string candidate;
};

struct JsonDiffResult {
  bool production_valid = false;
  bool candidate_valid = false;
  std::string production_error;  // parse error when invalid
  std::string candidate_error;
  size_t leaves = 0;     // leaf paths in the union of both documents
  size_t differing = 0;  // leaf paths that differ
  std::vector<JsonDiffEntry> entries;  // at most max_entries, in path order
  double Score() const;  // 1 - differing / leaves, 1 when no leaves
};

// DiffJson parses both texts and diffs them. `path_prefix` starts every
// path (default "$").
JsonDiffResult DiffJson(std::string_view production, std::string_view candidate,
                        const JsonDiffOptions& options, std::string_view path_prefix = "$");

// GlobMatch: '*' matches any run of characters except '.'.
bool GlobMatch(std::string_view pattern, std::string_view path);

}  // namespace understudy::compare::internal

#endif  // UNDERSTUDY_COMPARE_JSON_DIFF_H_
