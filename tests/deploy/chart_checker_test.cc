// The Helm chart charts/understudy, checked without helm: template syntax,
// .Values references, documented values, Chart.yaml, the Envoy config copy
// and the Grafana dashboard. The checker is itself tested on broken copies
// of the chart, so a pass means something.
#include "tests/deploy/chart_checker.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <map>
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

  // Secrets reach the sidecar as environment variables or mounted files:
  // the rendered config names variables and paths, never values.
  const std::string cm = Read(kChart + "/templates/configmap-understudy.yaml");
  EXPECT_THAT(cm, HasSubstr("api_key_env:"));
  EXPECT_THAT(cm, HasSubstr("token_file: /etc/understudy-secrets/admin/token"));
  EXPECT_THAT(cm, AllOf(::testing::Not(HasSubstr("api_key:")),
                        ::testing::Not(HasSubstr("token:")),
                        ::testing::Not(HasSubstr(".key }}"))));
  EXPECT_THAT(cm, HasSubstr("path: {{ .Values.persistence.mountPath }}/db"));
  // The admin API is only on the Service when asked for.
  const std::string svc = Read(kChart + "/templates/service.yaml");
  EXPECT_THAT(svc, HasSubstr("{{- if .Values.admin.expose }}"));
  EXPECT_FALSE(values["admin"]["expose"].as<bool>());
}

// --- The chart rendered (tests/image/render_chart.py: no helm here) --------

struct Rendered {
  int exit_code = -1;
  std::string out;
};

// Render renders templates/`tmpl` (or, with `data_key`, that key of the
// ConfigMap it renders) with `values_yaml` overlaid on values.yaml.
Rendered Render(const std::string& tmpl, const std::string& values_yaml = "",
                const std::string& data_key = "") {
  const std::string values = ::testing::TempDir() + "/chart-values-" +
                             std::to_string(::getpid()) + ".yaml";
  Write(values, values_yaml.empty() ? "{}\n" : values_yaml);
  std::string cmd = "python3 " + kRoot + "/tests/image/render_chart.py " + kChart + " " + tmpl +
                    " -f " + values;
  if (!data_key.empty()) cmd += " --data " + data_key;
  cmd += " 2>&1";
  Rendered r;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return r;
  char buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof(buf), p)) > 0;) r.out.append(buf, n);
  const int status = ::pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  fs::remove(values);
  return r;
}

class RenderedChartTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::system("python3 -c 'import yaml' >/dev/null 2>&1") != 0) {
      GTEST_SKIP() << "python3 with PyYAML is needed to render the chart";
    }
  }
  // The values every render needs (the model addresses).
  static std::string Values(const std::string& more = "") {
    return "envoy:\n  upstreams:\n    production: {address: prod.models}\n"
           "    candidate: {address: cand.models}\n" + more;
  }
  // Container and Named return a null node when there is no such entry.
  static YAML::Node Container(const YAML::Node& sts, const std::string& name) {
    for (const YAML::Node& c : sts["spec"]["template"]["spec"]["containers"]) {
      if (c["name"].as<std::string>() == name) return c;
    }
    return YAML::Node();
  }
  static YAML::Node Named(const YAML::Node& list, const std::string& name) {
    for (const YAML::Node& n : list) {
      if (n["name"] && n["name"].as<std::string>() == name) return n;
    }
    return YAML::Node();
  }
};

// By default the chart makes the admin token: a Secret with 32 random
// characters (kept across upgrades through `lookup`), mounted read-only in
// the sidecar as the file the config names; the CLI in the container finds
// it through UNDERSTUDY_ADMIN_TOKEN_FILE. The admin API never runs without
// a token.
TEST_F(RenderedChartTest, GeneratesMountsAndConfiguresTheAdminToken) {
  const std::string tmpl = Read(kChart + "/templates/secret-admin-token.yaml");
  EXPECT_THAT(tmpl, HasSubstr("lookup \"v1\" \"Secret\" .Release.Namespace $name"));
  EXPECT_THAT(tmpl, HasSubstr("randAlphaNum 32"));

  Rendered secret = Render("secret-admin-token.yaml", Values());
  ASSERT_EQ(secret.exit_code, 0) << secret.out;
  YAML::Node s = YAML::Load(secret.out);
  EXPECT_EQ(s["kind"].as<std::string>(), "Secret");
  EXPECT_EQ(s["metadata"]["name"].as<std::string>(), "understudy-admin-token");
  const std::string encoded = s["data"]["admin-token"].as<std::string>();
  EXPECT_EQ(encoded.size(), 44u) << "base64 of 32 characters";
  Rendered again = Render("secret-admin-token.yaml", Values());
  EXPECT_NE(YAML::Load(again.out)["data"]["admin-token"].as<std::string>(), encoded)
      << "not random";

  Rendered sts = Render("statefulset.yaml", Values());
  ASSERT_EQ(sts.exit_code, 0) << sts.out;
  YAML::Node pod = YAML::Load(sts.out)["spec"]["template"]["spec"];
  YAML::Node volume = Named(pod["volumes"], "admin-token");
  ASSERT_FALSE(volume.IsNull()) << sts.out;
  EXPECT_EQ(volume["secret"]["secretName"].as<std::string>(), "understudy-admin-token");
  EXPECT_EQ(volume["secret"]["items"][0]["key"].as<std::string>(), "admin-token");
  EXPECT_EQ(volume["secret"]["items"][0]["path"].as<std::string>(), "token");
  YAML::Node sidecar = Container(YAML::Load(sts.out), "understudy");
  YAML::Node mount = Named(sidecar["volumeMounts"], "admin-token");
  ASSERT_FALSE(mount.IsNull());
  EXPECT_EQ(mount["mountPath"].as<std::string>(), "/etc/understudy-secrets/admin");
  EXPECT_TRUE(mount["readOnly"].as<bool>());
  EXPECT_EQ(Named(sidecar["env"], "UNDERSTUDY_ADMIN_TOKEN_FILE")["value"].as<std::string>(),
            "/etc/understudy-secrets/admin/token");
  EXPECT_TRUE(Named(pod["volumes"], "read-token").IsNull());
  // The kubelet probes /healthz, the one route without a token.
  EXPECT_EQ(sidecar["livenessProbe"]["httpGet"]["path"].as<std::string>(), "/healthz");

  Rendered config = Render("configmap-understudy.yaml", Values(), "understudy.yaml");
  ASSERT_EQ(config.exit_code, 0) << config.out;
  YAML::Node admin = YAML::Load(config.out)["admin"];
  EXPECT_EQ(admin["token_file"].as<std::string>(),
            mount["mountPath"].as<std::string>() + "/" +
                volume["secret"]["items"][0]["path"].as<std::string>());
  EXPECT_FALSE(admin["token_env"]);
  EXPECT_FALSE(admin["read_token_file"]);
  EXPECT_FALSE(admin["metrics_public"]);

  Rendered notes = Render("NOTES.txt", Values());
  ASSERT_EQ(notes.exit_code, 0) << notes.out;
  EXPECT_THAT(notes.out, HasSubstr("get secret understudy-admin-token"));
  EXPECT_THAT(notes.out, ::testing::Not(HasSubstr("WARNING")));
}

// Signed feedback tokens are opt-in: off, nothing is rendered; on, the chart
// makes a random key Secret (or mounts the user's) and the config reads it
// from the mounted file.
TEST_F(RenderedChartTest, SignedFeedbackTokensMountAKeySecret) {
  Rendered off = Render("secret-feedback-key.yaml", Values());
  ASSERT_EQ(off.exit_code, 0) << off.out;
  EXPECT_TRUE(YAML::Load(off.out).IsNull()) << off.out;
  Rendered off_config = Render("configmap-understudy.yaml", Values(), "understudy.yaml");
  ASSERT_EQ(off_config.exit_code, 0) << off_config.out;
  EXPECT_FALSE(YAML::Load(off_config.out)["feedback"]["signing_key_file"]);

  const std::string on = Values("config:\n  feedback: {signedTokens: true, tokenTtl: 2h}\n");
  Rendered secret = Render("secret-feedback-key.yaml", on);
  ASSERT_EQ(secret.exit_code, 0) << secret.out;
  YAML::Node doc = YAML::Load(secret.out);
  EXPECT_EQ(doc["metadata"]["name"].as<std::string>(), "understudy-feedback-key");
  EXPECT_GE(doc["data"]["feedback-key"].as<std::string>().size(), 64u);  // base64 of 64 chars
  Rendered config = Render("configmap-understudy.yaml", on, "understudy.yaml");
  ASSERT_EQ(config.exit_code, 0) << config.out;
  YAML::Node feedback = YAML::Load(config.out)["feedback"];
  EXPECT_EQ(feedback["signing_key_file"].as<std::string>(), "/etc/understudy-secrets/feedback/key");
  EXPECT_EQ(feedback["token_ttl"].as<std::string>(), "2h");
  Rendered sts = Render("statefulset.yaml", on);
  ASSERT_EQ(sts.exit_code, 0) << sts.out;
  YAML::Node pod = YAML::Load(sts.out)["spec"]["template"]["spec"];
  YAML::Node volume = Named(pod["volumes"], "feedback-key");
  ASSERT_FALSE(volume.IsNull()) << sts.out;
  EXPECT_EQ(volume["secret"]["secretName"].as<std::string>(), "understudy-feedback-key");
  EXPECT_EQ(volume["secret"]["items"][0]["path"].as<std::string>(), "key");
  EXPECT_EQ(Named(Container(YAML::Load(sts.out), "understudy")["volumeMounts"], "feedback-key")
                ["mountPath"].as<std::string>(),
            "/etc/understudy-secrets/feedback");

  const std::string mine = Values(
      "config:\n  feedback: {signedTokens: true}\n"
      "secrets:\n  feedbackKey: {existingSecret: my-key, key: k}\n");
  Rendered none = Render("secret-feedback-key.yaml", mine);
  ASSERT_EQ(none.exit_code, 0) << none.out;
  EXPECT_TRUE(YAML::Load(none.out).IsNull()) << none.out;
  sts = Render("statefulset.yaml", mine);
  ASSERT_EQ(sts.exit_code, 0) << sts.out;
  volume = Named(YAML::Load(sts.out)["spec"]["template"]["spec"]["volumes"], "feedback-key");
  EXPECT_EQ(volume["secret"]["secretName"].as<std::string>(), "my-key");
  EXPECT_EQ(volume["secret"]["items"][0]["key"].as<std::string>(), "k");
  EXPECT_EQ(volume["secret"]["items"].size(), 1u) << "no verify key unless asked";
  config = Render("configmap-understudy.yaml", mine, "understudy.yaml");
  ASSERT_EQ(config.exit_code, 0) << config.out;
  EXPECT_FALSE(YAML::Load(config.out)["feedback"]["verify_key_file"]) << config.out;

  // Rotation: a second item of the same Secret, mounted beside the key and
  // read as the verify key.
  const std::string rotating = Values(
      "config:\n  feedback: {signedTokens: true}\n"
      "secrets:\n  feedbackKey: {existingSecret: my-key, key: new, verifyKey: old}\n");
  sts = Render("statefulset.yaml", rotating);
  ASSERT_EQ(sts.exit_code, 0) << sts.out;
  volume = Named(YAML::Load(sts.out)["spec"]["template"]["spec"]["volumes"], "feedback-key");
  ASSERT_EQ(volume["secret"]["items"].size(), 2u) << sts.out;
  EXPECT_EQ(volume["secret"]["items"][0]["key"].as<std::string>(), "new");
  EXPECT_EQ(volume["secret"]["items"][0]["path"].as<std::string>(), "key");
  EXPECT_EQ(volume["secret"]["items"][1]["key"].as<std::string>(), "old");
  EXPECT_EQ(volume["secret"]["items"][1]["path"].as<std::string>(), "verify-key");
  config = Render("configmap-understudy.yaml", rotating, "understudy.yaml");
  ASSERT_EQ(config.exit_code, 0) << config.out;
  feedback = YAML::Load(config.out)["feedback"];
  EXPECT_EQ(feedback["signing_key_file"].as<std::string>(), "/etc/understudy-secrets/feedback/key");
  EXPECT_EQ(feedback["verify_key_file"].as<std::string>(),
            "/etc/understudy-secrets/feedback/verify-key");
}

// A Secret the user made replaces the generated one; pod-local admin (no
// httpGet probes) probes with the CLI and the mounted token.
TEST_F(RenderedChartTest, AnExistingSecretIsMountedInstead) {
  const std::string values = Values(
      "admin: {podNetwork: false}\n"
      "secrets:\n  adminToken: {existingSecret: my-admin, key: token}\n");
  Rendered secret = Render("secret-admin-token.yaml", values);
  ASSERT_EQ(secret.exit_code, 0) << secret.out;
  EXPECT_TRUE(YAML::Load(secret.out).IsNull()) << "rendered a Secret: " << secret.out;
  Rendered sts = Render("statefulset.yaml", values);
  ASSERT_EQ(sts.exit_code, 0) << sts.out;
  YAML::Node doc = YAML::Load(sts.out);
  YAML::Node volume = Named(doc["spec"]["template"]["spec"]["volumes"], "admin-token");
  EXPECT_EQ(volume["secret"]["secretName"].as<std::string>(), "my-admin");
  EXPECT_EQ(volume["secret"]["items"][0]["key"].as<std::string>(), "token");
  YAML::Node probe = Container(doc, "understudy")["readinessProbe"]["exec"]["command"];
  ASSERT_TRUE(probe.IsSequence()) << sts.out;
  std::vector<std::string> command = probe.as<std::vector<std::string>>();
  EXPECT_THAT(command, Contains("status"));
  EXPECT_THAT(command, Contains("/etc/understudy-secrets/admin/token"));
}

// A read-only token is mounted beside the admin one and the ServiceMonitor
// scrapes with it; metricsPublic opens /metrics and drops the credentials.
TEST_F(RenderedChartTest, ReadOnlyTokenAndPublicMetrics) {
  const std::string with_read = Values(
      "admin: {expose: true}\nserviceMonitor: {enabled: true}\n"
      "secrets:\n  readToken: {existingSecret: dashboards, key: token}\n");
  Rendered config = Render("configmap-understudy.yaml", with_read, "understudy.yaml");
  ASSERT_EQ(config.exit_code, 0) << config.out;
  EXPECT_EQ(YAML::Load(config.out)["admin"]["read_token_file"].as<std::string>(),
            "/etc/understudy-secrets/read/token");
  Rendered sts = Render("statefulset.yaml", with_read);
  ASSERT_EQ(sts.exit_code, 0) << sts.out;
  YAML::Node doc = YAML::Load(sts.out);
  EXPECT_EQ(Named(doc["spec"]["template"]["spec"]["volumes"], "read-token")["secret"]["secretName"]
                .as<std::string>(),
            "dashboards");
  EXPECT_EQ(Named(Container(doc, "understudy")["volumeMounts"], "read-token")["mountPath"]
                .as<std::string>(),
            "/etc/understudy-secrets/read");
  Rendered monitor = Render("servicemonitor.yaml", with_read);
  ASSERT_EQ(monitor.exit_code, 0) << monitor.out;
  YAML::Node credentials =
      YAML::Load(monitor.out)["spec"]["endpoints"][0]["authorization"]["credentials"];
  EXPECT_EQ(credentials["name"].as<std::string>(), "dashboards");
  EXPECT_EQ(credentials["key"].as<std::string>(), "token");

  // Without a read-only token the monitor uses the admin token's Secret.
  monitor = Render("servicemonitor.yaml",
                   Values("admin: {expose: true}\nserviceMonitor: {enabled: true}\n"));
  ASSERT_EQ(monitor.exit_code, 0) << monitor.out;
  EXPECT_EQ(YAML::Load(monitor.out)["spec"]["endpoints"][0]["authorization"]["credentials"]["name"]
                .as<std::string>(),
            "understudy-admin-token");

  const std::string open = Values(
      "admin: {expose: true, metricsPublic: true}\nserviceMonitor: {enabled: true}\n");
  config = Render("configmap-understudy.yaml", open, "understudy.yaml");
  ASSERT_EQ(config.exit_code, 0) << config.out;
  EXPECT_TRUE(YAML::Load(config.out)["admin"]["metrics_public"].as<bool>());
  monitor = Render("servicemonitor.yaml", open);
  ASSERT_EQ(monitor.exit_code, 0) << monitor.out;
  EXPECT_FALSE(YAML::Load(monitor.out)["spec"]["endpoints"][0]["authorization"]);
}

// --- Fleet mode (docs/fleet.md): coordination through etcd -------------------

// Statically: the replicaCount guard and the PodDisruptionBudget are in the
// templates, conditioned as documented, and their values exist with the
// documented defaults (every .Values reference resolving is checked for
// every template by ChartPassesEveryCheck).
TEST(ChartTest, FleetGuardAndDisruptionBudgetAreInTheTemplates) {
  const std::string cm = Read(kChart + "/templates/configmap-understudy.yaml");
  EXPECT_THAT(cm, HasSubstr("{{- if and (gt (int .Values.replicaCount) 1) (not (include "
                            "\"understudy.coordinated\" .)) }}\n{{- fail \"replicaCount > 1 needs "
                            "coordination"));
  EXPECT_THAT(cm, HasSubstr("{{- if include \"understudy.coordinated\" . }}\n"
                            "    # Fleet mode"));
  const std::string helpers = Read(kChart + "/templates/_helpers.tpl");
  EXPECT_THAT(helpers, HasSubstr("{{- if or .Values.coordination.etcd.endpoints "
                                 ".Values.coordination.etcd.bundled.enabled -}}\ntrue"));
  const std::string pdb = Read(kChart + "/templates/poddisruptionbudget.yaml");
  EXPECT_THAT(pdb, HasSubstr("{{- if gt (int .Values.replicaCount) 1 }}\napiVersion: policy/v1\n"
                             "kind: PodDisruptionBudget\n"));
  EXPECT_THAT(pdb, HasSubstr("maxUnavailable: {{ .Values.podDisruptionBudget.maxUnavailable }}"));
  const std::string values = Read(kChart + "/values.yaml");
  EXPECT_THAT(CheckValuesReferences(pdb, "templates/poddisruptionbudget.yaml", values), IsEmpty());
  std::vector<std::string> refs;
  for (const auto& [line, path] : ValuesReferences(pdb)) refs.push_back(path);
  EXPECT_THAT(refs, AllOf(Contains("replicaCount"), Contains("podDisruptionBudget.maxUnavailable")));

  const YAML::Node v = YAML::Load(values);
  EXPECT_EQ(v["replicaCount"].as<int>(), 1);
  const YAML::Node etcd = v["coordination"]["etcd"];
  ASSERT_TRUE(etcd.IsMap());
  EXPECT_TRUE(etcd["endpoints"].IsSequence());
  EXPECT_EQ(etcd["endpoints"].size(), 0u);
  EXPECT_EQ(etcd["prefix"].as<std::string>(), "");
  EXPECT_EQ(etcd["leaseTtl"].as<std::string>(), "10s");
  EXPECT_EQ(etcd["requestTimeout"].as<std::string>(), "3s");
  EXPECT_EQ(etcd["tls"]["existingSecret"].as<std::string>(), "");
  EXPECT_EQ(etcd["auth"]["username"].as<std::string>(), "");
  EXPECT_EQ(etcd["auth"]["existingSecret"].as<std::string>(), "");
  EXPECT_FALSE(etcd["bundled"]["enabled"].as<bool>());
  EXPECT_FALSE(etcd["bundled"]["persistence"]["enabled"].as<bool>());
  EXPECT_EQ(v["podDisruptionBudget"]["maxUnavailable"].as<int>(), 1);
  EXPECT_FALSE(v["coordination"]["member"]) << "member is the sidecar's default (the pod name)";
}

// replicaCount > 1 without coordination is refused, whichever template is
// rendered first (the StatefulSet includes the ConfigMap for its checksum).
TEST_F(RenderedChartTest, RefusesReplicasWithoutCoordination) {
  for (const std::string tmpl : {"configmap-understudy.yaml", "statefulset.yaml"}) {
    SCOPED_TRACE(tmpl);
    Rendered r = Render(tmpl, Values("replicaCount: 2\n"));
    EXPECT_EQ(r.exit_code, 1) << r.out;
    EXPECT_THAT(r.out, AllOf(HasSubstr("fail: replicaCount > 1 needs coordination"),
                             HasSubstr("coordination.etcd.endpoints"),
                             HasSubstr("coordination.etcd.bundled.enabled")));
  }
  for (const std::string more :
       {"replicaCount: 2\ncoordination: {etcd: {endpoints: [\"etcd.infra:2379\"]}}\n",
        "replicaCount: 2\ncoordination: {etcd: {bundled: {enabled: true}}}\n", "replicaCount: 1\n"}) {
    SCOPED_TRACE(more);
    Rendered r = Render("statefulset.yaml", Values(more));
    EXPECT_EQ(r.exit_code, 0) << r.out;
  }
}

// The config's coordination: section is rendered only when coordinated
// (endpoints set, or the bundled etcd), and the PodDisruptionBudget only
// with more than one replica.
TEST_F(RenderedChartTest, CoordinationSectionOnlyWhenCoordinated) {
  Rendered config = Render("configmap-understudy.yaml", Values(), "understudy.yaml");
  ASSERT_EQ(config.exit_code, 0) << config.out;
  EXPECT_FALSE(YAML::Load(config.out)["coordination"]) << config.out;
  EXPECT_THAT(config.out, ::testing::Not(HasSubstr("coordination")));
  Rendered pdb = Render("poddisruptionbudget.yaml", Values());
  ASSERT_EQ(pdb.exit_code, 0) << pdb.out;
  EXPECT_TRUE(YAML::Load(pdb.out).IsNull()) << pdb.out;
  for (const std::string tmpl : {"etcd-statefulset.yaml", "etcd-service.yaml"}) {
    Rendered r = Render(tmpl, Values());
    ASSERT_EQ(r.exit_code, 0) << r.out;
    EXPECT_TRUE(YAML::Load(r.out).IsNull()) << tmpl << ": " << r.out;
  }
  Rendered sts = Render("statefulset.yaml", Values());
  ASSERT_EQ(sts.exit_code, 0) << sts.out;
  EXPECT_THAT(sts.out, ::testing::Not(HasSubstr("etcd")));

  // Endpoints alone (one replica: a fleet of one is allowed).
  const std::string one = Values("coordination: {etcd: {endpoints: [\"etcd-0.infra:2379\", \"etcd-1.infra:2379\"]}}\n");
  config = Render("configmap-understudy.yaml", one, "understudy.yaml");
  ASSERT_EQ(config.exit_code, 0) << config.out;
  const YAML::Node c = YAML::Load(config.out)["coordination"];
  ASSERT_TRUE(c.IsMap()) << config.out;
  EXPECT_FALSE(c["member"]) << "left to the sidecar: <host name = pod name>-<pid>-<random>";
  const YAML::Node etcd = c["etcd"];
  EXPECT_THAT(etcd["endpoints"].as<std::vector<std::string>>(),
              ElementsAre("etcd-0.infra:2379", "etcd-1.infra:2379"));
  EXPECT_EQ(etcd["prefix"].as<std::string>(), "/understudy/understudy/");  // <fullname>
  EXPECT_EQ(etcd["lease_ttl"].as<std::string>(), "10s");
  EXPECT_EQ(etcd["request_timeout"].as<std::string>(), "3s");
  EXPECT_FALSE(etcd["tls"]);
  EXPECT_FALSE(etcd["auth"]);
  pdb = Render("poddisruptionbudget.yaml", one);
  EXPECT_TRUE(YAML::Load(pdb.out).IsNull()) << "one replica: " << pdb.out;

  // Three replicas: the budget selects exactly the sidecar pods.
  const std::string three = Values(
      "replicaCount: 3\nfullnameOverride: checkout\n"
      "coordination: {etcd: {endpoints: [\"etcd.infra:2379\"], prefix: /rollouts/checkout, "
      "leaseTtl: 15s, requestTimeout: 2s}}\n");
  config = Render("configmap-understudy.yaml", three, "understudy.yaml");
  ASSERT_EQ(config.exit_code, 0) << config.out;
  const YAML::Node etcd3 = YAML::Load(config.out)["coordination"]["etcd"];
  EXPECT_EQ(etcd3["prefix"].as<std::string>(), "/rollouts/checkout");
  EXPECT_EQ(etcd3["lease_ttl"].as<std::string>(), "15s");
  EXPECT_EQ(etcd3["request_timeout"].as<std::string>(), "2s");
  pdb = Render("poddisruptionbudget.yaml", three);
  ASSERT_EQ(pdb.exit_code, 0) << pdb.out;
  const YAML::Node budget = YAML::Load(pdb.out);
  EXPECT_EQ(budget["apiVersion"].as<std::string>(), "policy/v1");
  EXPECT_EQ(budget["kind"].as<std::string>(), "PodDisruptionBudget");
  EXPECT_EQ(budget["metadata"]["name"].as<std::string>(), "checkout");
  EXPECT_EQ(budget["spec"]["maxUnavailable"].as<int>(), 1);
  sts = Render("statefulset.yaml", three);
  ASSERT_EQ(sts.exit_code, 0) << sts.out;
  const YAML::Node set = YAML::Load(sts.out);
  EXPECT_EQ(set["spec"]["replicas"].as<int>(), 3);
  using Labels = std::map<std::string, std::string>;
  EXPECT_EQ(budget["spec"]["selector"]["matchLabels"].as<Labels>(),
            set["spec"]["selector"]["matchLabels"].as<Labels>());
  pdb = Render("poddisruptionbudget.yaml", three + "podDisruptionBudget: {maxUnavailable: 2}\n");
  EXPECT_EQ(YAML::Load(pdb.out)["spec"]["maxUnavailable"].as<int>(), 2) << pdb.out;

  // Bad prefix, auth halves, TLS/auth for the bundled etcd: refused.
  for (const auto& [more, message] : std::vector<std::pair<std::string, std::string>>{
           {"coordination: {etcd: {endpoints: [\"e:2379\"], prefix: rollouts/x}}\n",
            "coordination.etcd.prefix must start with a slash"},
           {"coordination: {etcd: {endpoints: [\"e:2379\"], auth: {username: u}}}\n",
            "go together"},
           {"coordination: {etcd: {endpoints: [\"e:2379\"], auth: {existingSecret: s}}}\n",
            "go together"},
           {"coordination: {etcd: {bundled: {enabled: true}, tls: {existingSecret: t}}}\n",
            "for an existing etcd"}}) {
    SCOPED_TRACE(more);
    Rendered r = Render("configmap-understudy.yaml", Values(more));
    EXPECT_EQ(r.exit_code, 1) << r.out;
    EXPECT_THAT(r.out, HasSubstr(message));
  }
}

// etcd's TLS files and password come from Secrets mounted read-only in the
// sidecar; the config names the mounted files, never the password.
TEST_F(RenderedChartTest, EtcdSecretsAreMountedNotWritten) {
  const std::string values = Values(
      "replicaCount: 2\n"
      "coordination:\n  etcd:\n    endpoints: [\"https://etcd.infra:2379\"]\n"
      "    tls: {existingSecret: etcd-client}\n"
      "    auth: {username: understudy, existingSecret: etcd-pass, passwordKey: pw}\n");
  Rendered config = Render("configmap-understudy.yaml", values, "understudy.yaml");
  ASSERT_EQ(config.exit_code, 0) << config.out;
  const YAML::Node etcd = YAML::Load(config.out)["coordination"]["etcd"];
  ASSERT_TRUE(etcd.IsMap()) << config.out;
  Rendered sts = Render("statefulset.yaml", values);
  ASSERT_EQ(sts.exit_code, 0) << sts.out;
  const YAML::Node doc = YAML::Load(sts.out);
  const YAML::Node pod = doc["spec"]["template"]["spec"];
  const YAML::Node sidecar = Container(doc, "understudy");

  const YAML::Node tls_volume = Named(pod["volumes"], "etcd-tls");
  ASSERT_FALSE(tls_volume.IsNull()) << sts.out;
  EXPECT_EQ(tls_volume["secret"]["secretName"].as<std::string>(), "etcd-client");
  const YAML::Node tls_mount = Named(sidecar["volumeMounts"], "etcd-tls");
  ASSERT_FALSE(tls_mount.IsNull());
  EXPECT_TRUE(tls_mount["readOnly"].as<bool>());
  const std::string tls_dir = tls_mount["mountPath"].as<std::string>();
  EXPECT_EQ(etcd["tls"]["ca_file"].as<std::string>(), tls_dir + "/ca.crt");
  EXPECT_EQ(etcd["tls"]["cert_file"].as<std::string>(), tls_dir + "/tls.crt");
  EXPECT_EQ(etcd["tls"]["key_file"].as<std::string>(), tls_dir + "/tls.key");

  const YAML::Node auth_volume = Named(pod["volumes"], "etcd-auth");
  ASSERT_FALSE(auth_volume.IsNull()) << sts.out;
  EXPECT_EQ(auth_volume["secret"]["secretName"].as<std::string>(), "etcd-pass");
  EXPECT_EQ(auth_volume["secret"]["items"][0]["key"].as<std::string>(), "pw");
  const YAML::Node auth_mount = Named(sidecar["volumeMounts"], "etcd-auth");
  ASSERT_FALSE(auth_mount.IsNull());
  EXPECT_TRUE(auth_mount["readOnly"].as<bool>());
  EXPECT_EQ(etcd["auth"]["username"].as<std::string>(), "understudy");
  EXPECT_EQ(etcd["auth"]["password_file"].as<std::string>(),
            auth_mount["mountPath"].as<std::string>() + "/" +
                auth_volume["secret"]["items"][0]["path"].as<std::string>());
  EXPECT_FALSE(etcd["auth"]["password"]);
  EXPECT_FALSE(etcd["auth"]["password_env"]);
}

// The bundled etcd: one replica behind a headless Service, used by the
// sidecars when no endpoints are given, selected apart from the sidecar pods.
TEST_F(RenderedChartTest, BundledEtcdForTrials) {
  const std::string values =
      Values("replicaCount: 2\ncoordination: {etcd: {bundled: {enabled: true}}}\n");
  Rendered set = Render("etcd-statefulset.yaml", values);
  ASSERT_EQ(set.exit_code, 0) << set.out;
  const YAML::Node etcd = YAML::Load(set.out);
  EXPECT_EQ(etcd["kind"].as<std::string>(), "StatefulSet");
  EXPECT_EQ(etcd["metadata"]["name"].as<std::string>(), "understudy-etcd");
  EXPECT_EQ(etcd["spec"]["replicas"].as<int>(), 1);
  const YAML::Node container = Container(etcd, "etcd");
  ASSERT_FALSE(container.IsNull()) << set.out;
  EXPECT_THAT(container["image"].as<std::string>(), HasSubstr("quay.io/coreos/etcd:v3.4."));
  EXPECT_EQ(container["readinessProbe"]["httpGet"]["path"].as<std::string>(), "/health");
  EXPECT_TRUE(container["securityContext"]["readOnlyRootFilesystem"].as<bool>());
  const YAML::Node data = Named(etcd["spec"]["template"]["spec"]["volumes"], "etcd-data");
  ASSERT_FALSE(data.IsNull()) << set.out;
  EXPECT_TRUE(data["emptyDir"]);
  EXPECT_FALSE(etcd["spec"]["volumeClaimTemplates"]);

  Rendered svc = Render("etcd-service.yaml", values);
  ASSERT_EQ(svc.exit_code, 0) << svc.out;
  const YAML::Node service = YAML::Load(svc.out);
  EXPECT_EQ(service["spec"]["clusterIP"].as<std::string>(), "None");
  EXPECT_EQ(etcd["spec"]["serviceName"].as<std::string>(),
            service["metadata"]["name"].as<std::string>());
  using Labels = std::map<std::string, std::string>;
  const Labels etcd_pod = etcd["spec"]["template"]["metadata"]["labels"].as<Labels>();
  EXPECT_EQ(service["spec"]["selector"].as<Labels>(), etcd_pod);
  EXPECT_EQ(etcd["spec"]["selector"]["matchLabels"].as<Labels>(), etcd_pod);

  // The sidecars use it: <service>.<namespace>.svc:<port>.
  Rendered config = Render("configmap-understudy.yaml", values, "understudy.yaml");
  ASSERT_EQ(config.exit_code, 0) << config.out;
  EXPECT_THAT(YAML::Load(config.out)["coordination"]["etcd"]["endpoints"].as<std::vector<std::string>>(),
              ElementsAre("understudy-etcd.default.svc:" +
                          service["spec"]["ports"][0]["port"].as<std::string>()));

  // Neither the app Service nor the budget selects the etcd pod.
  Rendered app = Render("service.yaml", values);
  Rendered pdb = Render("poddisruptionbudget.yaml", values);
  ASSERT_EQ(app.exit_code, 0) << app.out;
  ASSERT_EQ(pdb.exit_code, 0) << pdb.out;
  for (const Labels& selector :
       {YAML::Load(app.out)["spec"]["selector"].as<Labels>(),
        YAML::Load(pdb.out)["spec"]["selector"]["matchLabels"].as<Labels>()}) {
    bool matches = true;
    for (const auto& [k, v] : selector) {
      auto it = etcd_pod.find(k);
      matches = matches && it != etcd_pod.end() && it->second == v;
    }
    EXPECT_FALSE(matches) << "a sidecar selector matches the etcd pod";
  }

  // Explicit endpoints win over the bundled etcd.
  config = Render("configmap-understudy.yaml",
                  Values("coordination: {etcd: {endpoints: [\"etcd.infra:2379\"], bundled: {enabled: true}}}\n"),
                  "understudy.yaml");
  EXPECT_THAT(YAML::Load(config.out)["coordination"]["etcd"]["endpoints"].as<std::vector<std::string>>(),
              ElementsAre("etcd.infra:2379"));

  // A small claim instead of the emptyDir.
  set = Render("etcd-statefulset.yaml",
               Values("coordination: {etcd: {bundled: {enabled: true, persistence: {enabled: true, "
                      "size: 2Gi}}}}\n"));
  ASSERT_EQ(set.exit_code, 0) << set.out;
  const YAML::Node claimed = YAML::Load(set.out);
  EXPECT_FALSE(claimed["spec"]["template"]["spec"]["volumes"]);
  EXPECT_EQ(claimed["spec"]["volumeClaimTemplates"][0]["metadata"]["name"].as<std::string>(),
            "etcd-data");
  EXPECT_EQ(claimed["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"]
                .as<std::string>(),
            "2Gi");

  Rendered notes = Render("NOTES.txt", values);
  ASSERT_EQ(notes.exit_code, 0) << notes.out;
  EXPECT_THAT(notes.out, AllOf(HasSubstr("Fleet mode"), HasSubstr("WARNING: the bundled etcd")));
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

TEST_F(BrokenChartTest, DisruptionBudgetValuesReference) {
  Edit("templates/poddisruptionbudget.yaml", ".Values.podDisruptionBudget.maxUnavailable",
       ".Values.podDisruptionBudget.maxUnavail");
  EXPECT_THAT(Problems(),
              ElementsAre(AllOf(HasSubstr("templates/poddisruptionbudget.yaml:"),
                                HasSubstr("no key podDisruptionBudget.maxUnavail"))));
}

TEST_F(BrokenChartTest, CoordinationValuesReferenceAndComments) {
  Edit("templates/configmap-understudy.yaml", ".Values.coordination.etcd.leaseTtl",
       ".Values.coordination.etcd.lease_ttl");
  Edit("values.yaml", "      # etcd's client port.", "      newKey: 1\n      # etcd's client port.");
  EXPECT_THAT(Problems(),
              AllOf(Contains(AllOf(HasSubstr("templates/configmap-understudy.yaml:"),
                                   HasSubstr("no key coordination.etcd.lease_ttl"))),
                    Contains(HasSubstr("key coordination.etcd.bundled.newKey has no comment"))));
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
