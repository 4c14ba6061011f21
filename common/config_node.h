// common/config_node.h
// A read-only view of one node of the YAML config that remembers its key
// path, so every error names where it happened:
//   "rollout.stages[2].percent: must be in 0..100, got 120".
// Modules parse their own typed config structs from a ConfigNode; only
// config_node.cc touches yaml-cpp (which throws), and no exception leaves it.
//
// Example (given std::string_view yaml_text):
//   ASSIGN_OR_RETURN(ConfigNode root, ConfigNode::Parse(yaml_text, "understudy.yaml"));
//   ConfigNode server = root.Child("server");
//   ASSIGN_OR_RETURN(int port, server.GetInt("port", 50051, 1, 65535));
//   RETURN_IF_ERROR(server.CheckKeys({"port", "address"}));
//
// Thread safety: const methods may be called concurrently.
#ifndef UNDERSTUDY_COMMON_CONFIG_NODE_H_
#define UNDERSTUDY_COMMON_CONFIG_NODE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace understudy {

class ConfigNode {
 public:
  // Parse reads YAML text. `source` names the file in errors. An empty
  // document is an empty map.
  [[nodiscard]] static absl::StatusOr<ConfigNode> Parse(std::string_view text,
                                                        std::string_view source);
  // ParseFile reads and parses a file; errors name the path.
  [[nodiscard]] static absl::StatusOr<ConfigNode> ParseFile(const std::string& path);

  ConfigNode(const ConfigNode&);
  ConfigNode& operator=(const ConfigNode&);
  ~ConfigNode();

  // Path is the dotted key path of this node ("" for the root).
  const std::string& Path() const { return path_; }
  // PathOf is the path of a child key, for error messages.
  std::string PathOf(std::string_view key) const;

  bool IsDefined() const;   // false for a missing key
  bool IsMap() const;
  bool IsSequence() const;
  bool IsScalar() const;
  bool Has(std::string_view key) const;

  // Child returns the node at `key` (undefined if absent).
  ConfigNode Child(std::string_view key) const;
  // Elements returns a sequence's items, with paths "key[i]"; an undefined
  // node gives an empty list; a non-sequence gives an error.
  [[nodiscard]] absl::StatusOr<std::vector<ConfigNode>> Elements() const;
  // Keys returns a map's keys in document order.
  std::vector<std::string> Keys() const;

  // Typed getters for a child key: absent → default; wrong type or out of
  // range → InvalidArgument naming the key path.
  [[nodiscard]] absl::StatusOr<std::string> GetString(std::string_view key,
                                                      std::string def) const;
  [[nodiscard]] absl::StatusOr<int64_t> GetInt(std::string_view key, int64_t def,
                                               int64_t min, int64_t max) const;
  [[nodiscard]] absl::StatusOr<double> GetDouble(std::string_view key, double def,
                                                 double min, double max) const;
  [[nodiscard]] absl::StatusOr<bool> GetBool(std::string_view key, bool def) const;
  // GetDuration accepts "150ms", "10s", "5m", "2h" (or a bare number of seconds).
  [[nodiscard]] absl::StatusOr<absl::Duration> GetDuration(std::string_view key,
                                                           absl::Duration def) const;
  // GetStringList accepts a sequence of scalars (absent → empty).
  [[nodiscard]] absl::StatusOr<std::vector<std::string>> GetStringList(
      std::string_view key) const;

  // Scalar accessors for this node itself (for sequence items).
  [[nodiscard]] absl::StatusOr<std::string> AsString() const;
  [[nodiscard]] absl::StatusOr<double> AsDouble() const;

  // A secret named by the config, never held in it (configs live in
  // ConfigMaps and logs): `value` is "" when neither key is set; `source` is
  // "env NAME" or "file PATH", for logs.
  struct Secret {
    std::string value;
    std::string source;
  };
  // GetSecret reads the secret that `env_key` (an environment variable's
  // name) or `file_key` (a file's path; the value is the file with
  // surrounding whitespace trimmed) points to; at most one may be set. A key
  // that is set must yield a value: an unset or empty variable, or a
  // missing, unreadable or empty file, is an error naming the key, so a
  // typo cannot quietly switch a credential off. Errors never contain the
  // value; a value with a control character is refused (it goes into
  // headers).
  [[nodiscard]] absl::StatusOr<Secret> GetSecret(std::string_view env_key,
                                                 std::string_view file_key) const;

  // CheckKeys fails on any key not in `allowed` (catches typos such as
  // "rollot:"), naming the unknown key's path.
  [[nodiscard]] absl::Status CheckKeys(const std::vector<std::string>& allowed) const;

  // Error builds InvalidArgument("<path of key>: <message>").
  absl::Status Error(std::string_view key, std::string_view message) const;

 private:
  struct Impl;
  ConfigNode(std::shared_ptr<const Impl> impl, std::string path);
  std::shared_ptr<const Impl> impl_;
  std::string path_;
};

}  // namespace understudy

#endif  // UNDERSTUDY_COMMON_CONFIG_NODE_H_
