// tests/e2e/e2e_cluster.h
// Real processes for the end-to-end tests: two fake model servers
// (production and candidate), `understudy serve` with a config written to a
// temporary directory, and the Envoy-faithful driver (two-filter chain) as
// the data plane, talking to the sidecar's ext_proc port and to the fakes
// over real HTTP.
//
// Example:
//   Cluster c;
//   ASSERT_OK(c.StartFakes());
//   ASSERT_OK(c.StartSidecar());
//   absl::StatusOr<DriverResult> r = c.Send("user-1");
//   envoy_driver::HttpRequest models;
//   models.method = "GET";
//   models.path = "/v1/models";
//   absl::StatusOr<DriverResult> m = c.SendRequest(models);  // with production's key
//   HttpReply state = c.Admin("GET", "/v1/rollout");
//   c.KillSidecar();             // SIGKILL, then reaped
//   ASSERT_OK(c.StartSidecar()); // same --data dir: the rollout resumes
//
// Thread safety: none; one test thread drives a Cluster (Send may be
// called from several threads once the sidecar is up).
#ifndef UNDERSTUDY_TESTS_E2E_E2E_CLUSTER_H_
#define UNDERSTUDY_TESTS_E2E_E2E_CLUSTER_H_

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tests/common/test_util.h"
#include "tests/support/subprocess.h"
#include "tools/envoy_driver/envoy_driver.h"

namespace understudy::e2e {

using envoy_driver::DriverResult;
using nlohmann::json;

struct HttpReply {
  long status = 0;        // 0: no HTTP answer (see error)
  std::string body;
  std::string headers;    // raw response header block
  std::string error;      // curl's reason when status == 0
  json Json() const;      // parsed body, or a discarded value
};

// Http makes one real HTTP/1.1 request with libcurl.
HttpReply Http(const std::string& method, const std::string& url, const std::string& body = "",
               const std::vector<std::string>& headers = {},
               absl::Duration timeout = absl::Seconds(30));

struct FakeOptions {
  int latency_ms = 20;
  int ttft_ms = 5;
  int threads = 64;
  // --api: "openai" (chat, Responses, embeddings), "anthropic" or "both".
  std::string api = "openai";
  // --compress: answers gzip, br or zstd when the request's
  // Accept-Encoding allows it.
  bool compress = false;
  // More fake-model flags, e.g. {"--failing-user-rate", "0.05"}.
  std::vector<std::string> extra_args;
  // The one model the fake serves; empty: gpt-4o for production,
  // gpt-5-mini for the candidate.
  std::string model;
};

struct SidecarKnobs {
  double sample_rate = 1.0;
  std::string shadow_timeout = "5s";
  int shadow_max_concurrency = 16;
  int shadow_max_queue = 256;
  // Replaces the `rollout:` section (written as is, starting with
  // "rollout:"); empty: the default plan with every gate off, so the judge
  // never acts on its own.
  std::string rollout_yaml;
  // Appended to the config as is (whole top-level sections, e.g. "drift:").
  std::string extra_yaml;
  // upstreams.candidate: its API ("openai" or "anthropic") and the model
  // name its requests are reshaped to.
  std::string candidate_api = "openai";
  std::string candidate_model = "gpt-5-mini";
  // routing.fallback (docs/extproc.md, "Fallback to production").
  bool fallback = true;
  // feedback.signing_key_file's contents ("" = no feedback tokens).
  std::string feedback_signing_key;
  // feedback.verify_key_file's contents ("" = none).
  std::string feedback_verify_key;
};

class Cluster {
 public:
  Cluster();
  ~Cluster();

  // StartFakes starts production (gpt-4o, seed 1) and candidate
  // (gpt-5-mini, seed 2) fake models with fixed latencies (sigma 0).
  absl::Status StartFakes(FakeOptions production = {}, FakeOptions candidate = {});
  // UseFakesOf points this cluster's sidecar and driver at `other`'s fakes
  // (same models, keys and upstreams): several sidecars, one pair of
  // models (fleet mode). `other` must have started its fakes and outlive
  // this cluster's use of them.
  absl::Status UseFakesOf(const Cluster& other);
  // StartSidecar writes the config (first call only, or when knobs change)
  // and starts `understudy serve` on data_dir(); waits for both ports.
  absl::Status StartSidecar(const SidecarKnobs& knobs = {}, bool reset_rollout = false);
  // KillSidecar sends SIGKILL and reaps the process.
  void KillSidecar();
  // StopSidecar sends SIGTERM and reaps the process: it drains its exchange
  // queue into the store first, so what was answered is stored. Returns the
  // exit status (nullopt if it did not exit within 30 s; then it is killed).
  std::optional<int> StopSidecar();
  // NewDataDir points later starts at a fresh, empty --data directory.
  void NewDataDir();
  // UseCandidatePort points the sidecar's candidate upstream (and the
  // driver's candidate cluster) at another server on 127.0.0.1, e.g. one
  // that misbehaves; call before StartSidecar.
  void UseCandidatePort(int port);
  // UseChain sets the driver's filter chain (default TwoFilter(); e.g.
  // WithFallback()); call before StartSidecar.
  void UseChain(envoy_driver::FilterChain chain) { chain_ = std::move(chain); }
  // UseDataDir points later starts at `path` (e.g. on a small tmpfs).
  void UseDataDir(const std::string& path) { data_dir_ = path; }

  // Send plays one chat completion for `user` (header x-user-id) through
  // the two-filter chain, as a client of the production model would send it
  // (model gpt-4o, production's key). request_id "" lets the driver pick one.
  absl::StatusOr<DriverResult> Send(const std::string& user, const std::string& request_id = "");
  // SendRequest plays `req` through the two-filter chain as a client of the
  // production model: it adds `authorization: Bearer <production key>`
  // unless `req` carries an authorization header already. FailedPrecondition
  // before StartSidecar.
  absl::StatusOr<DriverResult> SendRequest(envoy_driver::HttpRequest req);
  // SendFeedback POSTs `body` to /understudy/feedback through the chain,
  // with x-understudy-feedback-token: `token` unless it is empty.
  absl::StatusOr<DriverResult> SendFeedback(const std::string& body,
                                            const std::string& token = "");

  // Admin calls the admin API; every call carries the token unless
  // `with_token` is false.
  HttpReply Admin(const std::string& method, const std::string& path,
                  const std::string& body = "", bool with_token = true);
  json Rollout();     // GET /v1/rollout, parsed (discarded on failure)
  json Decisions();   // GET /v1/decisions?limit=1000 → the "decisions" array
  // Cli runs `understudy ARGS... --admin URL --token-file FILE`.
  absl::StatusOr<testing::CommandResult> Cli(std::vector<std::string> args,
                                             bool admin_flags = true);
  // Control POSTs a JSON knob object to the candidate fake's /control.
  HttpReply CandidateControl(const std::string& body);

  std::string admin_url() const { return "http://127.0.0.1:" + std::to_string(admin_port_); }
  std::string candidate_url() const { return "http://127.0.0.1:" + std::to_string(cand_port_); }
  const std::string& token() const { return token_; }
  const std::string& production_key() const { return prod_key_; }
  const std::string& candidate_key() const { return cand_key_; }
  const std::string& token_file() const { return token_file_; }
  const std::string& data_dir() const { return data_dir_; }
  int extproc_port() const { return extproc_port_; }
  // SidecarPid is the running sidecar's process id (0 if none).
  int SidecarPid() const;
  // SidecarErrors is the sidecar's stderr so far (for failure messages).
  std::string SidecarErrors() const;

  static std::string UnderstudyPath();
  static std::string FakeModelPath();

 private:
  static const char kDefaultRollout[];
  absl::Status WriteConfig(const SidecarKnobs& knobs);

  std::string dir_;
  std::string token_;
  std::string token_file_;
  // Each provider's API key: the client holds production's; the sidecar
  // reads both from files (upstreams.<arm>.api_key_file) and gives the
  // candidate arm its own.
  std::string prod_key_, cand_key_;
  std::string prod_key_file_, cand_key_file_;
  std::string config_path_;
  std::string data_dir_;
  int data_dirs_ = 0;
  std::unique_ptr<testing::Subprocess> prod_;
  std::unique_ptr<testing::Subprocess> cand_;
  std::unique_ptr<testing::Subprocess> sidecar_;
  int prod_port_ = 0;
  int cand_port_ = 0;
  int extproc_port_ = 0;
  int admin_port_ = 0;
  std::unique_ptr<envoy_driver::Upstream> prod_upstream_;
  std::unique_ptr<envoy_driver::Upstream> cand_upstream_;
  std::unique_ptr<envoy_driver::EnvoyDriver> driver_;
  envoy_driver::FilterChain chain_ = envoy_driver::FilterChain::TwoFilter();
};

// Percentile returns the q-quantile (nearest rank) of `values` (copied).
double Percentile(std::vector<double> values, double q);

// MetricValue sums the samples of `name` whose label set contains
// `label` (e.g. outcome="timed_out") in Prometheus text; -1 if none.
double MetricValue(const std::string& metrics_text, const std::string& name,
                   const std::string& label);


// JudgedPlan is a short plan the judge drives by itself: 10%, 50%, then
// everyone, on the error gates (error_rate with `max_abs_increase`, and
// `critical` when asked); the latency, satisfaction, cost and agreement
// gates are off (the fakes' timings are fixed). For SidecarKnobs::rollout_yaml.
std::string JudgedPlan(double max_abs_increase = 0.01, bool critical = true);

// E2eFixture checks that the binaries exist and prints the sidecar's stderr
// when a test fails.
class E2eFixture : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;
  // The rollout state (GET /v1/rollout's "state").
  json State() { return c_.Rollout().value("state", json()); }
  // WaitForPhase polls until the phase is one of `phases` or `timeout`
  // passes, and returns the last phase seen.
  std::string WaitForPhase(const std::vector<std::string>& phases, absl::Duration timeout);
  Cluster c_;
};

}  // namespace understudy::e2e

#endif  // UNDERSTUDY_TESTS_E2E_E2E_CLUSTER_H_
