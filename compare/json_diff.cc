#include "compare/json_diff.h"

#include <simdjson.h>

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/strings.h"

namespace understudy::compare::internal {

namespace {

// Range-for over e.get_array().value_unsafe() would bind to a temporary
// that dies before the loop body; copy the (cheap) view out first.
simdjson::dom::array AsArray(const simdjson::dom::element& e) {
  simdjson::dom::array a;
  if (e.get_array().get(a) != simdjson::SUCCESS) return simdjson::dom::array();
  return a;
}
simdjson::dom::object AsObject(const simdjson::dom::element& e) {
  simdjson::dom::object o;
  if (e.get_object().get(o) != simdjson::SUCCESS) return simdjson::dom::object();
  return o;
}

using simdjson::dom::element;
using simdjson::dom::element_type;

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

constexpr size_t kMaxValueChars = 120;

std::string Show(const element& e) {
  std::string s = simdjson::minify(e);
  if (s.size() > kMaxValueChars) {
    s.resize(kMaxValueChars);
    s += "...";
  }
  return s;
}

const char* TypeName(element_type t) {
  switch (t) {
    case element_type::ARRAY:
      return "array";
    case element_type::OBJECT:
      return "object";
    case element_type::INT64:
    case element_type::UINT64:
    case element_type::DOUBLE:
      return "number";
    case element_type::STRING:
      return "string";
    case element_type::BOOL:
      return "bool";
    case element_type::NULL_VALUE:
      return "null";
  }
  return "unknown";
}

bool IsNumber(element_type t) {
  return t == element_type::INT64 || t == element_type::UINT64 || t == element_type::DOUBLE;
}

double AsDouble(const element& e) {
  switch (e.type()) {
    case element_type::INT64:
      return static_cast<double>(e.get_int64().value_unsafe());
    case element_type::UINT64:
      return static_cast<double>(e.get_uint64().value_unsafe());
    default:
      return e.get_double().value_unsafe();
  }
}

bool EqualFold(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

std::string ChildKeyPath(std::string_view path, std::string_view key) {
  // Plain identifiers as .key, anything else as ["key"].
  bool plain = !key.empty();
  for (char c : key) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-')) plain = false;
  }
  if (plain) return absl::StrCat(Av(path), ".", Av(key));
  return absl::StrCat(Av(path), "[\"", Av(key), "\"]");
}

class Differ {
 public:
  Differ(const JsonDiffOptions& options, JsonDiffResult* result)
      : options_(options), result_(result) {}

  void Diff(const element& a, const element& b, const std::string& path) {
    if (Ignored(path)) return;
    element_type ta = a.type(), tb = b.type();
    if (IsNumber(ta) && IsNumber(tb)) {
      ++result_->leaves;
      double x = AsDouble(a), y = AsDouble(b);
      double scale = std::max({1.0, std::fabs(x), std::fabs(y)});
      if (!(std::fabs(x - y) <= options_.numeric_tolerance * scale)) {
        Add("json_changed", path, Show(a), Show(b), 1);
      }
      return;
    }
    if (ta != tb) {
      size_t n = std::max(Leaves(a), Leaves(b));
      result_->leaves += n;
      Add("json_type_changed", path, absl::StrCat(TypeName(ta), " ", Show(a)),
          absl::StrCat(TypeName(tb), " ", Show(b)), n);
      return;
    }
    switch (ta) {
      case element_type::OBJECT: {
        auto ka = SortedMembers(a), kb = SortedMembers(b);
        if (ka.empty() && kb.empty()) {
          ++result_->leaves;
          return;
        }
        size_t i = 0, j = 0;
        while (i < ka.size() || j < kb.size()) {
          if (j == kb.size() || (i < ka.size() && ka[i].first < kb[j].first)) {
            OneSided("json_removed", ChildKeyPath(path, ka[i].first), ka[i].second, true);
            ++i;
          } else if (i == ka.size() || kb[j].first < ka[i].first) {
            OneSided("json_added", ChildKeyPath(path, kb[j].first), kb[j].second, false);
            ++j;
          } else {
            Diff(ka[i].second, kb[j].second, ChildKeyPath(path, ka[i].first));
            ++i;
            ++j;
          }
        }
        return;
      }
      case element_type::ARRAY: {
        std::vector<element> xa, xb;
        for (element e : AsArray(a)) xa.push_back(e);
        for (element e : AsArray(b)) xb.push_back(e);
        if (xa.empty() && xb.empty()) {
          ++result_->leaves;
          return;
        }
        for (size_t k = 0; k < std::max(xa.size(), xb.size()); ++k) {
          std::string p = absl::StrCat(path, "[", k, "]");
          if (k >= xb.size()) {
            OneSided("json_removed", p, xa[k], true);
          } else if (k >= xa.size()) {
            OneSided("json_added", p, xb[k], false);
          } else {
            Diff(xa[k], xb[k], p);
          }
        }
        return;
      }
      case element_type::STRING: {
        ++result_->leaves;
        std::string_view x = a.get_string().value_unsafe(), y = b.get_string().value_unsafe();
        bool same = options_.case_sensitive ? x == y : EqualFold(x, y);
        if (!same) Add("json_changed", path, Show(a), Show(b), 1);
        return;
      }
      case element_type::BOOL:
        ++result_->leaves;
        if (a.get_bool().value_unsafe() != b.get_bool().value_unsafe()) {
          Add("json_changed", path, Show(a), Show(b), 1);
        }
        return;
      default:  // null == null
        ++result_->leaves;
        return;
    }
  }

 private:
  static std::vector<std::pair<std::string_view, element>> SortedMembers(const element& e) {
    std::vector<std::pair<std::string_view, element>> out;
    for (auto field : AsObject(e)) out.emplace_back(field.key, field.value);
    std::stable_sort(out.begin(), out.end(),
                     [](const auto& x, const auto& y) { return x.first < y.first; });
    return out;
  }

  static size_t Leaves(const element& e) {
    size_t n = 0;
    if (e.is_object()) {
      for (auto field : AsObject(e)) n += Leaves(field.value);
    } else if (e.is_array()) {
      for (element x : AsArray(e)) n += Leaves(x);
    }
    return std::max<size_t>(n, 1);
  }

  void OneSided(const char* kind, const std::string& path, const element& e, bool production) {
    if (Ignored(path)) return;
    size_t n = Leaves(e);
    result_->leaves += n;
    if (production) {
      Add(kind, path, Show(e), "", n);
    } else {
      Add(kind, path, "", Show(e), n);
    }
  }

  void Add(const char* kind, const std::string& path, std::string a, std::string b,
           size_t leaves) {
    result_->differing += leaves;
    if (result_->entries.size() < options_.max_entries) {
      result_->entries.push_back({kind, path, std::move(a), std::move(b)});
    }
  }

  bool Ignored(std::string_view path) const {
    for (const std::string& p : options_.ignore_paths) {
      if (GlobMatch(p, path)) return true;
    }
    return false;
  }

  const JsonDiffOptions& options_;
  JsonDiffResult* result_;
};

}  // namespace

std::optional<std::string_view> ExtractJson(std::string_view text) {
  std::string_view t = Trim(text);
  if (!t.empty() && (t.front() == '{' || t.front() == '[')) return t;
  size_t open = text.find("```");
  while (open != std::string_view::npos) {
    size_t body = text.find('\n', open + 3);
    if (body == std::string_view::npos) return std::nullopt;
    size_t close = text.find("```", body + 1);
    if (close == std::string_view::npos) return std::nullopt;
    std::string_view inner = Trim(text.substr(body + 1, close - body - 1));
    if (!inner.empty() && (inner.front() == '{' || inner.front() == '[')) return inner;
    open = text.find("```", close + 3);
  }
  return std::nullopt;
}

double JsonDiffResult::Score() const {
  if (leaves == 0) return 1.0;
  return 1.0 - static_cast<double>(std::min(differing, leaves)) / static_cast<double>(leaves);
}

JsonDiffResult DiffJson(std::string_view production, std::string_view candidate,
                        const JsonDiffOptions& options, std::string_view path_prefix) {
  JsonDiffResult result;
  simdjson::dom::parser pa, pb;
  element ea, eb;
  simdjson::error_code ca = pa.parse(production.data(), production.size(), true).get(ea);
  simdjson::error_code cb = pb.parse(candidate.data(), candidate.size(), true).get(eb);
  result.production_valid = ca == simdjson::SUCCESS;
  result.candidate_valid = cb == simdjson::SUCCESS;
  if (!result.production_valid) result.production_error = simdjson::error_message(ca);
  if (!result.candidate_valid) result.candidate_error = simdjson::error_message(cb);
  if (!result.production_valid || !result.candidate_valid) return result;
  Differ differ(options, &result);
  differ.Diff(ea, eb, std::string(path_prefix));
  return result;
}

bool GlobMatch(std::string_view pattern, std::string_view path) {
  // Iterative glob with backtracking to the last '*'.
  size_t p = 0, s = 0, star = std::string_view::npos, mark = 0;
  while (s < path.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = s;
    } else if (p < pattern.size() && pattern[p] == path[s]) {
      ++p;
      ++s;
    } else if (star != std::string_view::npos && path[mark] != '.') {
      p = star + 1;
      s = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

}  // namespace understudy::compare::internal
