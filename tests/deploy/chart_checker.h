// tests/deploy/chart_checker.h
// Static checks of a Helm chart directory, for a machine without helm:
//   - Chart.yaml: apiVersion v2, name (= the directory's name), a SemVer
//     version, appVersion;
//   - templates/*: every `{{ ... }}` action closed, `( )` balanced inside
//     it, every if/range/with/define/block closed by `end` (and `else` only
//     inside if/range/with); every `.Values.a.b.c` names a key of values.yaml;
//   - values.yaml: every key, at every level, has a comment on the line
//     directly above it or an inline comment;
//   - byte-identical copies (e.g. files/envoy.yaml vs examples/envoy/envoy.yaml);
//   - a Grafana dashboard JSON that parses, whose every `expr` uses only
//     the allowed metric names, and that uses each of them at least once.
// Each problem is one line naming the file (and line where there is one):
//   "templates/statefulset.yaml:42: .Values.envoy.imag.tag: values.yaml has no key envoy.imag"
//
// Example:
//   ChartCheckOptions options;
//   options.dashboard_file = "files/grafana-dashboard.json";
//   options.allowed_metrics = {"understudy_requests_total", ...};
//   std::vector<std::string> problems = CheckChart("charts/understudy", options);
//   EXPECT_THAT(problems, IsEmpty());
//
// Thread safety: free functions with no shared state.
#ifndef UNDERSTUDY_TESTS_DEPLOY_CHART_CHECKER_H_
#define UNDERSTUDY_TESTS_DEPLOY_CHART_CHECKER_H_

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace understudy::deploy {

struct ChartCheckOptions {
  // Chart-relative path of a Grafana dashboard JSON; empty → not checked.
  std::string dashboard_file;
  // Metric names a dashboard expr may use (each must be used at least once).
  std::vector<std::string> allowed_metrics;
  // {chart-relative copy, absolute path of the original}: must be equal bytes.
  std::vector<std::pair<std::string, std::string>> identical_files;
};

// CheckChart runs every check; an empty result means the chart passed.
std::vector<std::string> CheckChart(const std::string& chart_dir,
                                    const ChartCheckOptions& options);

// The individual checks (`name` prefixes each problem).
std::vector<std::string> CheckChartYaml(std::string_view text, std::string_view dir_name);
std::vector<std::string> CheckTemplateSyntax(std::string_view text, std::string_view name);
// ValuesReferences lists the `.Values.x.y` paths used in the template's
// actions, as {line, "x.y"}.
std::vector<std::pair<int, std::string>> ValuesReferences(std::string_view text);
std::vector<std::string> CheckValuesReferences(std::string_view template_text,
                                               std::string_view name,
                                               std::string_view values_yaml);
std::vector<std::string> CheckValuesComments(std::string_view values_yaml,
                                             std::string_view name = "values.yaml");
std::vector<std::string> CheckDashboard(std::string_view json, std::string_view name,
                                        const std::vector<std::string>& allowed_metrics);
// PromQlMetricNames lists the metric names an expression selects (functions,
// keywords, labels, durations and $variables are left out).
std::vector<std::string> PromQlMetricNames(std::string_view expr);

}  // namespace understudy::deploy

#endif  // UNDERSTUDY_TESTS_DEPLOY_CHART_CHECKER_H_
