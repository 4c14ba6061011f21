#include "tests/deploy/chart_checker.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/strings.h"
#include "re2/re2.h"

namespace understudy::deploy {
namespace {

namespace fs = std::filesystem;

bool ReadFile(const fs::path& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream s;
  s << in.rdbuf();
  *out = s.str();
  return true;
}

int LineAt(std::string_view text, size_t pos) {
  return 1 + static_cast<int>(std::count(text.begin(), text.begin() + std::min(pos, text.size()),
                                         '\n'));
}

std::string Trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return std::string(s.substr(b, e - b));
}

// One `{{ ... }}` action: its text without delimiters and trim markers.
struct Action {
  size_t begin;       // offset of "{{"
  std::string body;   // trimmed content
  bool comment = false;
};

// ScanActions splits a template into actions; problems go to *problems.
std::vector<Action> ScanActions(std::string_view t, std::string_view name,
                                std::vector<std::string>* problems) {
  std::vector<Action> actions;
  size_t i = 0;
  while (i < t.size()) {
    const size_t open = t.find("{{", i);
    const size_t stray = t.find("}}", i);
    if (stray != std::string_view::npos && (open == std::string_view::npos || stray < open)) {
      problems->push_back(absl::StrCat(Av(name), ":", LineAt(t, stray), ": \"}}\" without \"{{\""));
    }
    if (open == std::string_view::npos) break;
    size_t p = open + 2;
    if (p < t.size() && t[p] == '-' && p + 1 < t.size() && isspace(static_cast<unsigned char>(t[p + 1]))) {
      ++p;
    }
    while (p < t.size() && (t[p] == ' ' || t[p] == '\t' || t[p] == '\n')) ++p;
    Action a{open, "", false};
    if (t.substr(p, 2) == "/*") {
      const size_t end = t.find("*/", p + 2);
      const size_t close = end == std::string_view::npos ? end : t.find("}}", end);
      if (close == std::string_view::npos) {
        problems->push_back(absl::StrCat(Av(name), ":", LineAt(t, open), ": comment never closed"));
        break;
      }
      a.comment = true;
      actions.push_back(a);
      i = close + 2;
      continue;
    }
    // Find the closing "}}" outside string literals.
    size_t q = p;
    char quote = 0;
    size_t close = std::string_view::npos;
    for (; q < t.size(); ++q) {
      const char c = t[q];
      if (quote != 0) {
        if (c == '\\' && quote != '`') {
          ++q;
        } else if (c == quote) {
          quote = 0;
        }
        continue;
      }
      if (c == '"' || c == '`' || c == '\'') {
        quote = c;
      } else if (c == '{' && q + 1 < t.size() && t[q + 1] == '{') {
        break;  // a new action opens before this one closed
      } else if (c == '}' && q + 1 < t.size() && t[q + 1] == '}') {
        close = q;
        break;
      }
    }
    if (close == std::string_view::npos) {
      problems->push_back(absl::StrCat(Av(name), ":", LineAt(t, open),
                                       ": \"{{\" is never closed by \"}}\""));
      i = q < t.size() ? q : t.size();
      continue;
    }
    std::string body(t.substr(p, close - p));
    if (body.size() >= 2 && body.back() == '-' && isspace(static_cast<unsigned char>(body[body.size() - 2]))) {
      body.pop_back();
    }
    a.body = Trim(body);
    actions.push_back(a);
    i = close + 2;
  }
  return actions;
}

// StripStrings blanks out string literals so their content is not parsed.
std::string StripStrings(std::string_view s) {
  std::string out;
  char quote = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (quote != 0) {
      if (c == '\\' && quote != '`') {
        ++i;
      } else if (c == quote) {
        quote = 0;
        out.push_back('"');
      }
      continue;
    }
    if (c == '"' || c == '`' || c == '\'') {
      quote = c;
      out.push_back('"');
      continue;
    }
    out.push_back(c);
  }
  return out;
}

std::string FirstWord(std::string_view body) {
  size_t e = 0;
  while (e < body.size() && !isspace(static_cast<unsigned char>(body[e])) && body[e] != '(') ++e;
  return std::string(body.substr(0, e));
}

// Flatten walks a YAML node and collects every map key path ("a.b.c").
void Flatten(const YAML::Node& node, const std::string& prefix, std::set<std::string>* out) {
  if (!node.IsMap()) return;
  for (const auto& kv : node) {
    const std::string key = kv.first.as<std::string>("");
    const std::string path = prefix.empty() ? key : prefix + "." + key;
    out->insert(path);
    Flatten(kv.second, path, out);
  }
}

}  // namespace

std::vector<std::string> CheckChartYaml(std::string_view text, std::string_view dir_name) {
  std::vector<std::string> problems;
  YAML::Node chart;
  try {
    chart = YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    return {absl::StrCat("Chart.yaml: not YAML: ", e.what())};
  }
  auto field = [&](const char* key) -> std::string {
    const YAML::Node n = chart[key];
    return n && n.IsScalar() ? n.Scalar() : "";
  };
  if (field("apiVersion") != "v2") {
    problems.push_back("Chart.yaml: apiVersion must be v2 (Helm 3), got \"" + field("apiVersion") + "\"");
  }
  if (field("name").empty()) {
    problems.push_back("Chart.yaml: name is required");
  } else if (field("name") != dir_name) {
    problems.push_back(absl::StrCat("Chart.yaml: name \"", field("name"),
                                    "\" must equal the chart's directory name \"", Av(dir_name), "\""));
  }
  static const RE2 kSemVer(R"(\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?)");
  if (!RE2::FullMatch(field("version"), kSemVer)) {
    problems.push_back("Chart.yaml: version must be SemVer 2 (e.g. 0.1.0), got \"" +
                       field("version") + "\"");
  }
  if (field("appVersion").empty()) problems.push_back("Chart.yaml: appVersion is required");
  return problems;
}

std::vector<std::string> CheckTemplateSyntax(std::string_view text, std::string_view name) {
  std::vector<std::string> problems;
  std::vector<Action> actions = ScanActions(text, name, &problems);
  struct Open {
    std::string keyword;
    int line;
  };
  std::vector<Open> stack;
  static const std::set<std::string> kBlocks = {"if", "range", "with", "define", "block"};
  for (const Action& a : actions) {
    if (a.comment) continue;
    const int line = LineAt(text, a.begin);
    const std::string code = StripStrings(a.body);
    int depth = 0;
    for (char c : code) {
      if (c == '(') ++depth;
      if (c == ')' && --depth < 0) break;
    }
    if (depth != 0) {
      problems.push_back(absl::StrCat(Av(name), ":", line, ": unbalanced ( ) in {{ ", a.body, " }}"));
    }
    const std::string word = FirstWord(code);
    if (kBlocks.count(word) != 0) {
      stack.push_back({word, line});
    } else if (word == "else") {
      if (stack.empty() || stack.back().keyword == "define" || stack.back().keyword == "block") {
        problems.push_back(absl::StrCat(Av(name), ":", line, ": {{ else }} outside if/range/with"));
      }
    } else if (word == "end") {
      if (stack.empty()) {
        problems.push_back(absl::StrCat(Av(name), ":", line, ": {{ end }} closes nothing"));
      } else {
        stack.pop_back();
      }
    } else if (word.empty()) {
      problems.push_back(absl::StrCat(Av(name), ":", line, ": empty action {{ }}"));
    }
  }
  for (const Open& o : stack) {
    problems.push_back(absl::StrCat(Av(name), ":", o.line, ": {{ ", o.keyword,
                                    " }} is never closed by {{ end }}"));
  }
  return problems;
}

std::vector<std::pair<int, std::string>> ValuesReferences(std::string_view text) {
  std::vector<std::string> ignored;
  std::vector<std::pair<int, std::string>> refs;
  static const RE2 kRef(R"(\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+))");
  for (const Action& a : ScanActions(text, "", &ignored)) {
    if (a.comment) continue;
    const std::string code = StripStrings(a.body);
    re2::StringPiece input(code);
    std::string path;
    while (RE2::FindAndConsume(&input, kRef, &path)) {
      refs.emplace_back(LineAt(text, a.begin), path.substr(1));
    }
  }
  return refs;
}

std::vector<std::string> CheckValuesReferences(std::string_view template_text,
                                               std::string_view name,
                                               std::string_view values_yaml) {
  std::vector<std::string> problems;
  YAML::Node values;
  try {
    values = YAML::Load(std::string(values_yaml));
  } catch (const YAML::Exception& e) {
    return {absl::StrCat("values.yaml: not YAML: ", e.what())};
  }
  for (const auto& [line, path] : ValuesReferences(template_text)) {
    YAML::Node node = YAML::Clone(values);
    std::string walked;
    std::stringstream parts(path);
    std::string key;
    while (std::getline(parts, key, '.')) {
      walked += (walked.empty() ? "" : ".") + key;
      if (!node.IsMap() || !node[key]) {
        problems.push_back(absl::StrCat(Av(name), ":", line, ": .Values.", path,
                                        ": values.yaml has no key ", walked));
        break;
      }
      node = node[key];
    }
  }
  return problems;
}

std::vector<std::string> CheckValuesComments(std::string_view values_yaml, std::string_view name) {
  std::vector<std::string> problems;
  std::vector<std::string> lines;
  {
    std::stringstream s{std::string(values_yaml)};
    std::string line;
    while (std::getline(s, line)) lines.push_back(line);
  }
  // A key line: indentation, optional "- ", a plain or quoted key, ':' then
  // end of line or a space.
  static const RE2 kKey(R"((\s*)(- )?("[^"]*"|'[^']*'|[A-Za-z0-9_./-]+)\s*:(?:\s(.*)|$))");
  std::vector<std::pair<int, std::string>> stack;  // {indent, key}
  std::set<std::string> seen;
  int block_indent = -1;  // inside a | or > block scalar deeper than this
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string& line = lines[i];
    const std::string trimmed = Trim(line);
    const int indent = static_cast<int>(line.find_first_not_of(' '));
    if (block_indent >= 0) {
      if (trimmed.empty() || indent > block_indent) continue;
      block_indent = -1;
    }
    if (trimmed.empty() || trimmed[0] == '#' || trimmed == "---") continue;
    std::string ind, dash, key, rest;
    if (!RE2::FullMatch(line, kKey, &ind, &dash, &key, &rest)) continue;
    if (key.size() >= 2 && (key[0] == '"' || key[0] == '\'')) key = key.substr(1, key.size() - 2);
    const int key_indent = static_cast<int>(ind.size() + dash.size());
    while (!stack.empty() && stack.back().first >= key_indent) stack.pop_back();
    std::string path;
    for (const auto& s : stack) path += s.second + ".";
    path += key;
    stack.emplace_back(key_indent, key);
    if (dash.empty()) seen.insert(path);

    // Inline comment: " #" outside quotes in the value part.
    bool inline_comment = false;
    char quote = 0;
    for (size_t k = 0; k < rest.size(); ++k) {
      const char c = rest[k];
      if (quote != 0) {
        if (c == quote) quote = 0;
      } else if (c == '"' || c == '\'') {
        quote = c;
      } else if (c == '#' && (k == 0 || rest[k - 1] == ' ')) {
        inline_comment = true;
        break;
      }
    }
    const std::string above = i > 0 ? Trim(lines[i - 1]) : "";
    const bool comment_above = !above.empty() && above[0] == '#';
    if (!inline_comment && !comment_above) {
      problems.push_back(absl::StrCat(Av(name), ":", i + 1, ": key ", path,
                                      " has no comment (put one on the line above)"));
    }
    const std::string value = Trim(rest.substr(0, rest.find(" #")));
    if (!value.empty() && (value[0] == '|' || value[0] == '>')) block_indent = key_indent;
  }
  // Cross-check the line scanner against a real YAML parse.
  try {
    std::set<std::string> parsed;
    Flatten(YAML::Load(std::string(values_yaml)), "", &parsed);
    for (const std::string& p : parsed) {
      if (seen.count(p) == 0) {
        problems.push_back(absl::StrCat(Av(name), ": key ", p,
                                        " was not found line by line (write one key per line)"));
      }
    }
  } catch (const YAML::Exception& e) {
    problems.push_back(absl::StrCat(Av(name), ": not YAML: ", e.what()));
  }
  return problems;
}

std::vector<std::string> PromQlMetricNames(std::string_view expr) {
  // Blank out strings, label matchers {..} and range/subquery brackets [..].
  std::string s = StripStrings(expr);
  std::string flat;
  int braces = 0, brackets = 0;
  for (char c : s) {
    if (c == '{') ++braces;
    if (c == '[') ++brackets;
    flat.push_back(braces > 0 || brackets > 0 ? ' ' : c);
    if (c == '}' && braces > 0) --braces;
    if (c == ']' && brackets > 0) --brackets;
  }
  static const std::set<std::string> kKeywords = {
      "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
      "unless", "offset", "sum", "min", "max", "avg", "count", "stddev", "stdvar", "topk",
      "bottomk", "quantile", "count_values", "group", "inf", "nan", "Inf", "NaN"};
  static const std::set<std::string> kGrouping = {"by", "without", "on", "ignoring",
                                                  "group_left", "group_right"};
  std::vector<std::string> names;
  size_t i = 0;
  while (i < flat.size()) {
    const char c = flat[i];
    const bool start = isalpha(static_cast<unsigned char>(c)) || c == '_' || c == ':';
    if (!start || (i > 0 && (flat[i - 1] == '$' || isalnum(static_cast<unsigned char>(flat[i - 1])) ||
                              flat[i - 1] == '.'))) {
      ++i;
      continue;
    }
    size_t e = i;
    while (e < flat.size() && (isalnum(static_cast<unsigned char>(flat[e])) || flat[e] == '_' ||
                               flat[e] == ':')) {
      ++e;
    }
    const std::string word = flat.substr(i, e - i);
    size_t next = e;
    while (next < flat.size() && isspace(static_cast<unsigned char>(flat[next]))) ++next;
    if (kGrouping.count(word) != 0 && next < flat.size() && flat[next] == '(') {
      const size_t close = flat.find(')', next);
      i = close == std::string::npos ? flat.size() : close + 1;  // skip the label list
      continue;
    }
    const bool function = next < flat.size() && flat[next] == '(';
    if (!function && kKeywords.count(word) == 0) names.push_back(word);
    i = e;
  }
  return names;
}

std::vector<std::string> CheckDashboard(std::string_view json, std::string_view name,
                                        const std::vector<std::string>& allowed_metrics) {
  std::vector<std::string> problems;
  nlohmann::json doc = nlohmann::json::parse(json.begin(), json.end(), nullptr,
                                             /*allow_exceptions=*/false);
  if (doc.is_discarded()) return {absl::StrCat(Av(name), ": not valid JSON")};
  if (!doc.is_object() || !doc.contains("panels") || !doc["panels"].is_array() ||
      doc["panels"].empty()) {
    problems.push_back(absl::StrCat(Av(name), ": needs a non-empty \"panels\" list"));
  }
  for (const char* key : {"title", "uid"}) {
    if (!doc.is_object() || !doc.contains(key) || !doc[key].is_string()) {
      problems.push_back(absl::StrCat(Av(name), ": needs a \"", key, "\" string"));
    }
  }
  const std::set<std::string> allowed(allowed_metrics.begin(), allowed_metrics.end());
  std::set<std::string> used;
  int exprs = 0;
  std::function<void(const nlohmann::json&, const std::string&)> walk =
      [&](const nlohmann::json& j, const std::string& where) {
        if (j.is_object()) {
          for (auto it = j.begin(); it != j.end(); ++it) {
            const std::string here = where + "." + it.key();
            if (it.key() == "expr" && it.value().is_string()) {
              ++exprs;
              const std::string expr = it.value().get<std::string>();
              std::vector<std::string> metrics = PromQlMetricNames(expr);
              if (metrics.empty()) {
                problems.push_back(absl::StrCat(Av(name), ": ", here, ": \"", expr,
                                                "\" selects no metric"));
              }
              for (const std::string& m : metrics) {
                if (allowed.count(m) == 0) {
                  problems.push_back(absl::StrCat(Av(name), ": ", here, ": unknown metric \"", m,
                                                  "\" in \"", expr, "\""));
                } else {
                  used.insert(m);
                }
              }
            } else {
              walk(it.value(), here);
            }
          }
        } else if (j.is_array()) {
          for (size_t i = 0; i < j.size(); ++i) walk(j[i], absl::StrCat(where, "[", i, "]"));
        }
      };
  walk(doc, "");
  if (exprs == 0) problems.push_back(absl::StrCat(Av(name), ": has no \"expr\" queries"));
  for (const std::string& m : allowed_metrics) {
    if (used.count(m) == 0) {
      problems.push_back(absl::StrCat(Av(name), ": no panel shows metric ", m));
    }
  }
  return problems;
}

std::vector<std::string> CheckChart(const std::string& chart_dir,
                                    const ChartCheckOptions& options) {
  std::vector<std::string> problems;
  auto add = [&](std::vector<std::string> more) {
    problems.insert(problems.end(), more.begin(), more.end());
  };
  const fs::path dir(chart_dir);
  std::string chart_yaml, values;
  if (!ReadFile(dir / "Chart.yaml", &chart_yaml)) {
    problems.push_back("Chart.yaml: missing");
  } else {
    fs::path normal = dir.lexically_normal();
    if (normal.filename().empty()) normal = normal.parent_path();  // trailing '/'
    add(CheckChartYaml(chart_yaml, normal.filename().string()));
  }
  if (!ReadFile(dir / "values.yaml", &values)) {
    problems.push_back("values.yaml: missing");
  } else {
    add(CheckValuesComments(values));
  }
  std::error_code ec;
  std::vector<fs::path> templates;
  for (const auto& entry : fs::directory_iterator(dir / "templates", ec)) {
    if (entry.is_regular_file()) templates.push_back(entry.path());
  }
  if (ec || templates.empty()) problems.push_back("templates/: missing or empty");
  std::sort(templates.begin(), templates.end());
  for (const fs::path& t : templates) {
    std::string text;
    const std::string name = "templates/" + t.filename().string();
    if (!ReadFile(t, &text)) {
      problems.push_back(name + ": unreadable");
      continue;
    }
    add(CheckTemplateSyntax(text, name));
    add(CheckValuesReferences(text, name, values));
  }
  for (const auto& [copy, original] : options.identical_files) {
    std::string a, b;
    if (!ReadFile(dir / copy, &a)) {
      problems.push_back(copy + ": missing");
    } else if (!ReadFile(original, &b)) {
      problems.push_back(original + ": missing");
    } else if (a != b) {
      problems.push_back(absl::StrCat(copy, ": differs from ", original,
                                      " (copy it again: they must be byte-identical)"));
    }
  }
  if (!options.dashboard_file.empty()) {
    std::string json;
    if (!ReadFile(dir / options.dashboard_file, &json)) {
      problems.push_back(options.dashboard_file + ": missing");
    } else {
      add(CheckDashboard(json, options.dashboard_file, options.allowed_metrics));
    }
  }
  return problems;
}

}  // namespace understudy::deploy
