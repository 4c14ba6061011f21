#include "common/config_node.h"

#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/strings.h"

namespace understudy {

struct ConfigNode::Impl {
  YAML::Node node;
};

namespace {

std::string Describe(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Map:
      return "a map";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Null:
      return "null";
    case YAML::NodeType::Scalar:
      return absl::StrCat("\"", n.Scalar(), "\"");
    default:
      return "nothing";
  }
}

}  // namespace

ConfigNode::ConfigNode(std::shared_ptr<const Impl> impl, std::string path)
    : impl_(std::move(impl)), path_(std::move(path)) {}
ConfigNode::ConfigNode(const ConfigNode&) = default;
ConfigNode& ConfigNode::operator=(const ConfigNode&) = default;
ConfigNode::~ConfigNode() = default;

absl::StatusOr<ConfigNode> ConfigNode::Parse(std::string_view text,
                                             std::string_view source) {
  auto impl = std::make_shared<Impl>();
  try {
    impl->node = YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(Av(source), ": invalid YAML at line ", e.mark.line + 1,
                     ", column ", e.mark.column + 1, ": ", e.msg));
  }
  if (!impl->node.IsDefined() || impl->node.IsNull()) {
    impl->node = YAML::Node(YAML::NodeType::Map);
  }
  if (!impl->node.IsMap()) {
    return absl::InvalidArgumentError(
        absl::StrCat(Av(source), ": the top level must be a map"));
  }
  return ConfigNode(std::move(impl), "");
}

absl::StatusOr<ConfigNode> ConfigNode::ParseFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": cannot read file"));
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return Parse(ss.str(), path);
}

std::string ConfigNode::PathOf(std::string_view key) const {
  if (path_.empty()) return std::string(key);
  return absl::StrCat(path_, ".", Av(key));
}

bool ConfigNode::IsDefined() const {
  return impl_->node.IsDefined() && !impl_->node.IsNull();
}
bool ConfigNode::IsMap() const { return impl_->node.IsMap(); }
bool ConfigNode::IsSequence() const { return impl_->node.IsSequence(); }
bool ConfigNode::IsScalar() const { return impl_->node.IsScalar(); }

bool ConfigNode::Has(std::string_view key) const {
  if (!impl_->node.IsMap()) return false;
  YAML::Node child = impl_->node[std::string(key)];
  return child.IsDefined() && !child.IsNull();
}

ConfigNode ConfigNode::Child(std::string_view key) const {
  auto impl = std::make_shared<Impl>();
  if (impl_->node.IsMap()) {
    // operator[] on a const node never inserts.
    // A missing key yields an "invalid" node whose accessors throw, so keep
    // the default (null) node instead.
    const YAML::Node& parent = impl_->node;
    YAML::Node child = parent[std::string(key)];
    if (child.IsDefined()) impl->node = child;
  }
  return ConfigNode(std::move(impl), PathOf(key));
}

absl::StatusOr<std::vector<ConfigNode>> ConfigNode::Elements() const {
  std::vector<ConfigNode> out;
  if (!IsDefined()) return out;
  if (!impl_->node.IsSequence()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path_, ": must be a list, got ", Describe(impl_->node)));
  }
  for (size_t i = 0; i < impl_->node.size(); ++i) {
    auto impl = std::make_shared<Impl>();
    impl->node = impl_->node[i];
    out.push_back(ConfigNode(std::move(impl), absl::StrCat(path_, "[", i, "]")));
  }
  return out;
}

std::vector<std::string> ConfigNode::Keys() const {
  std::vector<std::string> keys;
  if (!impl_->node.IsMap()) return keys;
  for (const auto& kv : impl_->node) {
    keys.push_back(kv.first.as<std::string>(""));
  }
  return keys;
}

absl::Status ConfigNode::Error(std::string_view key, std::string_view message) const {
  return absl::InvalidArgumentError(absl::StrCat(PathOf(key), ": ", Av(message)));
}

absl::StatusOr<std::string> ConfigNode::GetString(std::string_view key,
                                                  std::string def) const {
  ConfigNode c = Child(key);
  if (!c.IsDefined()) return def;
  return c.AsString();
}

absl::StatusOr<std::string> ConfigNode::AsString() const {
  if (!impl_->node.IsScalar()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path_, ": must be a string, got ", Describe(impl_->node)));
  }
  return impl_->node.Scalar();
}

absl::StatusOr<double> ConfigNode::AsDouble() const {
  if (!impl_->node.IsScalar()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path_, ": must be a number, got ", Describe(impl_->node)));
  }
  double v;
  if (!absl::SimpleAtod(impl_->node.Scalar(), &v) || !std::isfinite(v)) {
    return absl::InvalidArgumentError(absl::StrCat(
        path_, ": must be a number, got ", Describe(impl_->node)));
  }
  return v;
}

absl::StatusOr<int64_t> ConfigNode::GetInt(std::string_view key, int64_t def,
                                           int64_t min, int64_t max) const {
  ConfigNode c = Child(key);
  int64_t v = def;
  if (c.IsDefined()) {
    if (!c.impl_->node.IsScalar() || !absl::SimpleAtoi(c.impl_->node.Scalar(), &v)) {
      return absl::InvalidArgumentError(absl::StrCat(
          c.path_, ": must be a whole number, got ", Describe(c.impl_->node)));
    }
  }
  if (v < min || v > max) {
    return absl::InvalidArgumentError(
        absl::StrCat(c.path_, ": must be in ", min, "..", max, ", got ", v));
  }
  return v;
}

absl::StatusOr<double> ConfigNode::GetDouble(std::string_view key, double def,
                                             double min, double max) const {
  ConfigNode c = Child(key);
  double v = def;
  if (c.IsDefined()) {
    absl::StatusOr<double> parsed = c.AsDouble();
    if (!parsed.ok()) return parsed.status();
    v = *parsed;
  }
  if (v < min || v > max) {
    return absl::InvalidArgumentError(
        absl::StrCat(c.path_, ": must be in ", min, "..", max, ", got ", v));
  }
  return v;
}

absl::StatusOr<bool> ConfigNode::GetBool(std::string_view key, bool def) const {
  ConfigNode c = Child(key);
  if (!c.IsDefined()) return def;
  if (c.impl_->node.IsScalar()) {
    const std::string& s = c.impl_->node.Scalar();
    if (s == "true" || s == "yes" || s == "on") return true;
    if (s == "false" || s == "no" || s == "off") return false;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      c.path_, ": must be true or false, got ", Describe(c.impl_->node)));
}

absl::StatusOr<absl::Duration> ConfigNode::GetDuration(std::string_view key,
                                                       absl::Duration def) const {
  ConfigNode c = Child(key);
  if (!c.IsDefined()) return def;
  if (c.impl_->node.IsScalar()) {
    const std::string& s = c.impl_->node.Scalar();
    absl::Duration d;
    double secs;
    if (absl::SimpleAtod(s, &secs) && std::isfinite(secs) && secs >= 0) {
      return absl::Seconds(secs);
    }
    if (absl::ParseDuration(s, &d) && d >= absl::ZeroDuration() &&
        d != absl::InfiniteDuration()) {
      return d;
    }
  }
  return absl::InvalidArgumentError(
      absl::StrCat(c.path_, ": must be a duration such as 500ms, 10s, 5m or 2h, got ",
                   Describe(c.impl_->node)));
}

absl::StatusOr<std::vector<std::string>> ConfigNode::GetStringList(
    std::string_view key) const {
  std::vector<std::string> out;
  ConfigNode c = Child(key);
  absl::StatusOr<std::vector<ConfigNode>> items = c.Elements();
  if (!items.ok()) return items.status();
  for (const ConfigNode& item : *items) {
    absl::StatusOr<std::string> s = item.AsString();
    if (!s.ok()) return s.status();
    out.push_back(*s);
  }
  return out;
}

absl::Status ConfigNode::CheckKeys(const std::vector<std::string>& allowed) const {
  if (!IsDefined()) return absl::OkStatus();
  if (!impl_->node.IsMap()) {
    return absl::InvalidArgumentError(absl::StrCat(
        path_.empty() ? "config" : path_, ": must be a map, got ", Describe(impl_->node)));
  }
  for (const std::string& k : Keys()) {
    bool ok = false;
    for (const std::string& a : allowed) ok = ok || a == k;
    if (!ok) {
      return absl::InvalidArgumentError(absl::StrCat(
          PathOf(k), ": unknown key (expected one of: ", absl::StrJoin(allowed, ", "), ")"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<ConfigNode::Secret> ConfigNode::GetSecret(std::string_view env_key,
                                                         std::string_view file_key) const {
  absl::StatusOr<std::string> env = GetString(env_key, "");
  if (!env.ok()) return env.status();
  absl::StatusOr<std::string> file = GetString(file_key, "");
  if (!file.ok()) return file.status();
  Secret out;
  if (!env->empty() && !file->empty()) {
    return Error(file_key, absl::StrCat("set ", Av(env_key), " or ", Av(file_key), ", not both"));
  }
  std::string_view key = env_key;
  if (!env->empty()) {
    const char* value = std::getenv(env->c_str());
    out.value = value == nullptr ? "" : std::string(absl::StripAsciiWhitespace(value));
    if (out.value.empty()) {
      return Error(env_key, absl::StrCat("$", *env, " is unset or empty (set it, or remove ",
                                         Av(env_key), ")"));
    }
    out.source = absl::StrCat("env ", *env);
  } else if (!file->empty()) {
    key = file_key;
    std::ifstream in(*file, std::ios::binary);
    if (!in) {
      const int err = errno;
      return Error(file_key, absl::StrCat("cannot read ", *file, ": ",
                                          err != 0 ? std::strerror(err) : "error"));
    }
    std::ostringstream ss;
    ss << in.rdbuf();
    if (in.bad()) return Error(file_key, absl::StrCat("cannot read ", *file));
    out.value = std::string(absl::StripAsciiWhitespace(ss.str()));
    if (out.value.empty()) return Error(file_key, absl::StrCat(*file, " is empty"));
    out.source = absl::StrCat("file ", *file);
  }
  for (char c : out.value) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      return Error(key, absl::StrCat("the value from ", out.source,
                                     " contains a control character (a line break or NUL?)"));
    }
  }
  return out;
}

}  // namespace understudy
