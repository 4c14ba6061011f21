// The Helm chart charts/understudy, checked without helm: template syntax,
// .Values references, documented values, Chart.yaml, the Envoy config copy
// and the Grafana dashboard. The checker is itself tested on broken copies
// of the chart, so a pass means something.
#include "tests/deploy/chart_checker.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "tests/common/test_util.h"
#include "tests/deploy/envoy_config_loader.h"

namespace understudy::deploy {
namespace {

namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Pair;

const std::string kRoot = UNDERSTUDY_SOURCE_DIR;
const std::string kChart = kRoot + "/charts/understudy";

const std::vector<std::string> kMetrics = {
    "understudy_requests_total",         "understudy_errors_total",
    "understudy_request_duration_seconds_bucket", "understudy_ttft_seconds_bucket",
    "understudy_rollout_weight_ratio",   "understudy_rollout_stage_index",
    "understudy_rollout_phase",          "understudy_gate_value",
    "understudy_gate_threshold",         "understudy_shadow_requests_total",
    "understudy_comparisons_total",      "understudy_otlp_spans_total"};

ChartCheckOptions Options(const std::string& chart_dir) {
  (void)chart_dir;
  ChartCheckOptions o;
  o.dashboard_file = "files/grafana-dashboard.json";
  o.allowed_metrics = kMetrics;
  o.identical_files = {{"files/envoy.yaml", kRoot + "/examples/envoy/envoy.yaml"}};
  return o;
}

std::string Read(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void Write(const fs::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << text;
}

int Count(const std::string& haystack, const std::string& needle) {
  int n = 0;
  for (size_t at = haystack.find(needle); at != std::string::npos;
       at = haystack.find(needle, at + 1)) {
    ++n;
  }
  return n;
}

TEST(ChartTest, ChartPassesEveryCheck) {
  EXPECT_THAT(CheckChart(kChart, Options(kChart)), IsEmpty());
}

TEST(ChartTest, EnvoyConfigCopyIsByteIdentical) {
  const std::string copy = Read(kChart + "/files/envoy.yaml");
  ASSERT_FALSE(copy.empty());
  EXPECT_EQ(copy, Read(kRoot + "/examples/envoy/envoy.yaml"))
      << "cp examples/envoy/envoy.yaml charts/understudy/files/envoy.yaml";
}

// The chart's values and templates agree with the Envoy config it ships.
TEST(ChartTest, ValuesAgreeWithTheEnvoyConfig) {
  auto envoy = LoadEnvoyConfig(kChart + "/files/envoy.yaml");
  ASSERT_OK(envoy);
  YAML::Node values = YAML::LoadFile(kChart + "/values.yaml");
  EXPECT_EQ(values["envoy"]["port"].as<int>(), envoy->listener_port);
  const EnvoyCluster& sidecar = envoy->clusters.at("understudy");
  EXPECT_EQ(sidecar.address, "127.0.0.1");  // same pod
  EXPECT_EQ(values["understudy"]["extprocPort"].as<int>(), sidecar.port);
  EXPECT_EQ(values["config"]["feedback"]["path"].as<std::string>(), envoy->feedback_path);
  // Envoy's own admin must not collide with the sidecar's in the shared
  // network namespace of the pod.
  EXPECT_THAT(Read(kChart + "/files/envoy.yaml"),
              HasSubstr("admin:\n  address: { socket_address: { address: 127.0.0.1, port_value: "
                        "9902 } }"));
  EXPECT_NE(values["admin"]["port"].as<int>(), 9902);

  // configmap-envoy.yaml replaces the model addresses by exact string: each
  // anchor must exist exactly once in the file, or the replace misses.
  const std::string file = Read(kChart + "/files/envoy.yaml");
  const std::string tmpl = Read(kChart + "/templates/configmap-envoy.yaml");
  for (const auto& [cluster, port] : {std::pair<std::string, int>{"production", 9001},
                                      {"candidate", 9002}}) {
    SCOPED_TRACE(cluster);
    const std::string anchor =
        "{ address: 127.0.0.1, port_value: " + std::to_string(port) + " }";
    EXPECT_EQ(Count(file, anchor), 1);
    EXPECT_EQ(Count(tmpl, "replace \"" + anchor + "\""), 1);
    EXPECT_EQ(envoy->clusters.at(cluster).port, port);
    EXPECT_THAT(tmpl, HasSubstr(".Values.envoy.upstreams." + cluster + ".address"));
  }
}

TEST(ChartTest, PodIsLockedDownAndProbed) {
  YAML::Node values = YAML::LoadFile(kChart + "/values.yaml");
  YAML::Node sc = values["containerSecurityContext"];
  EXPECT_TRUE(sc["runAsNonRoot"].as<bool>());
  EXPECT_TRUE(sc["readOnlyRootFilesystem"].as<bool>());
  EXPECT_FALSE(sc["allowPrivilegeEscalation"].as<bool>());
  ASSERT_TRUE(sc["capabilities"]["drop"].IsSequence());
  EXPECT_EQ(sc["capabilities"]["drop"][0].as<std::string>(), "ALL");
  EXPECT_TRUE(values["podSecurityContext"]["runAsNonRoot"].as<bool>());

  const std::string sts = Read(kChart + "/templates/statefulset.yaml");
  EXPECT_EQ(Count(sts, "toYaml .Values.containerSecurityContext"), 2);  // both containers
  EXPECT_THAT(sts, HasSubstr("- serve\n        - --config\n        - /etc/understudy/understudy.yaml"));
  EXPECT_THAT(sts, HasSubstr("path: /healthz"));
  EXPECT_THAT(sts, HasSubstr("volumeClaimTemplates:"));
  EXPECT_THAT(sts, HasSubstr("mountPath: {{ .Values.persistence.mountPath }}"));
  EXPECT_THAT(sts, HasSubstr("secretKeyRef:"));

  // Secrets reach the sidecar as environment variables only: the rendered
  // config names variables, never values.
  const std::string cm = Read(kChart + "/templates/configmap-understudy.yaml");
  EXPECT_THAT(cm, HasSubstr("api_key_env:"));
  EXPECT_THAT(cm, HasSubstr("token_env:"));
  EXPECT_THAT(cm, AllOf(::testing::Not(HasSubstr("api_key:")),
                        ::testing::Not(HasSubstr("token:")),
                        ::testing::Not(HasSubstr(".key }}"))));
  EXPECT_THAT(cm, HasSubstr("path: {{ .Values.persistence.mountPath }}/db"));
  // The admin API is only on the Service when asked for.
  const std::string svc = Read(kChart + "/templates/service.yaml");
  EXPECT_THAT(svc, HasSubstr("{{- if .Values.admin.expose }}"));
  EXPECT_FALSE(values["admin"]["expose"].as<bool>());
}

// --- The checker, on broken copies of the chart ------------------------------

class BrokenChartTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) /
           ("understudy-chart-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name()) /
           "understudy";
    fs::remove_all(dir_.parent_path());
    fs::create_directories(dir_.parent_path());
    fs::copy(kChart, dir_, fs::copy_options::recursive);
    ASSERT_THAT(CheckChart(dir_.string(), Options(dir_.string())), IsEmpty());
  }
  void TearDown() override { fs::remove_all(dir_.parent_path()); }

  // Edit replaces the first `from` in a chart file with `to`.
  void Edit(const std::string& file, const std::string& from, const std::string& to) {
    std::string text = Read(dir_ / file);
    const size_t at = text.find(from);
    ASSERT_NE(at, std::string::npos) << from;
    text.replace(at, from.size(), to);
    Write(dir_ / file, text);
  }
  std::vector<std::string> Problems() { return CheckChart(dir_.string(), Options(dir_.string())); }

  fs::path dir_;
};

TEST_F(BrokenChartTest, UnknownValuesReference) {
  Edit("templates/statefulset.yaml", ".Values.envoy.image.tag", ".Values.envoy.imag.tag");
  EXPECT_THAT(Problems(), ElementsAre(AllOf(HasSubstr("templates/statefulset.yaml:"),
                                            HasSubstr("values.yaml has no key envoy.imag"))));
}

TEST_F(BrokenChartTest, ReferenceBelowALeaf) {
  Edit("templates/service.yaml", ".Values.service.port", ".Values.service.port.number");
  EXPECT_THAT(Problems(), ElementsAre(HasSubstr("no key service.port.number")));
}

TEST_F(BrokenChartTest, IfWithoutEnd) {
  Write(dir_ / "templates/extra.yaml",
        "{{- if .Values.probes.enabled }}\nkind: Thing\n{{- with .Values.podLabels }}\n"
        "{{ toYaml . }}\n{{- end }}\n");
  EXPECT_THAT(Problems(), ElementsAre(AllOf(HasSubstr("templates/extra.yaml:1"),
                                            HasSubstr("{{ if }} is never closed"))));
}

TEST_F(BrokenChartTest, UnclosedAction) {
  Edit("templates/service.yaml", "{{ .Values.service.type }}", "{{ .Values.service.type }");
  EXPECT_THAT(Problems(), Contains(HasSubstr("\"{{\" is never closed by \"}}\"")));
}

TEST_F(BrokenChartTest, StrayEndElseAndParens) {
  Write(dir_ / "templates/extra.yaml",
        "a: {{ (default 1 .Values.replicaCount }}\n{{ end }}\n{{ else }}\nb: x }}\n");
  EXPECT_THAT(Problems(), AllOf(Contains(HasSubstr("extra.yaml:1: unbalanced ( )")),
                                Contains(HasSubstr("extra.yaml:2: {{ end }} closes nothing")),
                                Contains(HasSubstr("extra.yaml:3: {{ else }} outside")),
                                Contains(HasSubstr("extra.yaml:4: \"}}\" without \"{{\""))));
}

TEST_F(BrokenChartTest, CommentsAndStringsAreNotParsed) {
  Write(dir_ / "templates/extra.yaml",
        "{{- /* {{ if }} .Values.nope */ -}}\na: {{ \"}} {{ end\" | quote }}\n"
        "b: {{ printf \"%s\" `.Values.nope` }}\n");
  EXPECT_THAT(Problems(), IsEmpty());
}

TEST_F(BrokenChartTest, UndocumentedValuesKey) {
  Edit("values.yaml", "  # Envoy log level", "  newKey: 1\n  # Envoy log level");
  EXPECT_THAT(Problems(), ElementsAre(AllOf(HasSubstr("values.yaml:"),
                                            HasSubstr("key envoy.newKey has no comment"))));
}

TEST_F(BrokenChartTest, InlineCommentDocumentsAKey) {
  Edit("values.yaml", "  # Envoy log level", "  newKey: 1   # documented inline\n  # Envoy log level");
  EXPECT_THAT(Problems(), IsEmpty());
}

TEST_F(BrokenChartTest, ChartYamlFields) {
  Edit("Chart.yaml", "apiVersion: v2", "apiVersion: v1");
  Edit("Chart.yaml", "version: 0.1.0", "version: one");
  Edit("Chart.yaml", "appVersion: \"0.1.0\"\n", "");
  EXPECT_THAT(Problems(), AllOf(Contains(HasSubstr("apiVersion must be v2")),
                                Contains(HasSubstr("version must be SemVer")),
                                Contains(HasSubstr("appVersion is required"))));
}

TEST_F(BrokenChartTest, EnvoyCopyDrift) {
  Edit("files/envoy.yaml", "message_timeout: 0.2s", "message_timeout: 0.5s");
  EXPECT_THAT(Problems(), ElementsAre(HasSubstr("files/envoy.yaml: differs from")));
}

TEST_F(BrokenChartTest, DashboardUnknownMetric) {
  Edit("files/grafana-dashboard.json", "max(understudy_rollout_stage_index)",
       "max(understudy_rollout_stage)");
  EXPECT_THAT(Problems(),
              AllOf(Contains(HasSubstr("unknown metric \"understudy_rollout_stage\"")),
                    Contains(HasSubstr("no panel shows metric understudy_rollout_stage_index"))));
}

TEST_F(BrokenChartTest, DashboardNotJson) {
  Edit("files/grafana-dashboard.json", "\"panels\": [", "\"panels\": [,");
  EXPECT_THAT(Problems(), ElementsAre(HasSubstr("not valid JSON")));
}

TEST(PromQlTest, MetricNames) {
  EXPECT_THAT(PromQlMetricNames("histogram_quantile(0.95, sum by (arm, le) "
                                "(rate(understudy_ttft_seconds_bucket{arm=\"x\"}[$__rate_interval])))"),
              ElementsAre("understudy_ttft_seconds_bucket"));
  EXPECT_THAT(PromQlMetricNames("sum(rate(a_total[5m])) / on(arm) group_left sum(b) > bool 0.5"),
              ElementsAre("a_total", "b"));
  EXPECT_THAT(PromQlMetricNames("max by (phase) (understudy_rollout_phase) offset 5m"),
              ElementsAre("understudy_rollout_phase"));
  EXPECT_THAT(PromQlMetricNames("vector(1)"), IsEmpty());
}

TEST(ValuesReferencesTest, FindsPathsInActionsOnly) {
  EXPECT_THAT(ValuesReferences("x: .Values.not.in.action\n"
                               "y: {{ .Values.a.b | default $.Values.c }}\n"
                               "{{- with .Values.d }}{{ . }}{{ end }}"),
              ElementsAre(Pair(2, "a.b"), Pair(2, "c"), Pair(3, "d")));
}

}  // namespace
}  // namespace understudy::deploy
