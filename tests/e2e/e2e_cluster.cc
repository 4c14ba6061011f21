#include "tests/e2e/e2e_cluster.h"

#include <cstdlib>
#include <filesystem>

#include <curl/curl.h>
#include <signal.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <mutex>
#include <random>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace understudy::e2e {

namespace {

size_t AppendTo(char* data, size_t size, size_t n, void* user) {
  static_cast<std::string*>(user)->append(data, size * n);
  return size * n;
}

std::string RandomHex(int bytes) {
  std::random_device rd;
  std::string out;
  static const char kHex[] = "0123456789abcdef";
  for (int i = 0; i < bytes; ++i) {
    unsigned v = rd() & 0xff;
    out += kHex[v >> 4];
    out += kHex[v & 15];
  }
  return out;
}

absl::Status WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) return absl::InternalError("cannot write " + path);
  return absl::OkStatus();
}

// StartFake starts a fake model that serves only `model` and only to
// `key_file`'s key, as a real provider would.
absl::StatusOr<std::unique_ptr<testing::Subprocess>> StartFake(const std::string& model, int seed,
                                                              const FakeOptions& o, int* port,
                                                              const std::string& key_file) {
  std::vector<std::string> args = {
      Cluster::FakeModelPath(), "--port", "0", "--model", model, "--seed", std::to_string(seed),
      "--latency-ms", std::to_string(o.latency_ms), "--latency-sigma", "0", "--ttft-ms",
      std::to_string(o.ttft_ms), "--ttft-sigma", "0", "--threads", std::to_string(o.threads),
      "--api-key-file", key_file, "--api", o.api};
  if (o.compress) args.push_back("--compress");
  args.insert(args.end(), o.extra_args.begin(), o.extra_args.end());
  absl::StatusOr<std::unique_ptr<testing::Subprocess>> p = testing::Subprocess::Start(args);
  if (!p.ok()) return p.status();
  absl::StatusOr<int> got = (*p)->WaitForPort("listening on 127.0.0.1:", absl::Seconds(15));
  if (!got.ok()) return got.status();
  *port = *got;
  return p;
}

}  // namespace

json HttpReply::Json() const { return json::parse(body, nullptr, false); }

HttpReply Http(const std::string& method, const std::string& url, const std::string& body,
               const std::vector<std::string>& headers, absl::Duration timeout) {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  HttpReply reply;
  CURL* h = curl_easy_init();
  if (h == nullptr) {
    reply.error = "curl_easy_init failed";
    return reply;
  }
  struct curl_slist* list = nullptr;
  for (const std::string& header : headers) list = curl_slist_append(list, header.c_str());
  // No "Expect: 100-continue" round trip for big bodies.
  list = curl_slist_append(list, "Expect:");
  char error[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(absl::ToInt64Milliseconds(timeout)));
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, list);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &AppendTo);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &reply.body);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, &AppendTo);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &reply.headers);
  if (method == "POST") {
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  } else if (method != "GET") {
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method.c_str());
  }
  CURLcode rc = curl_easy_perform(h);
  if (rc == CURLE_OK) {
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &reply.status);
  } else {
    // A server may answer early (413) and close while the body is still
    // being sent; curl then still has the answer's status.
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &reply.status);
    reply.error = error[0] != '\0' ? error : curl_easy_strerror(rc);
  }
  curl_slist_free_all(list);
  curl_easy_cleanup(h);
  return reply;
}

Cluster::Cluster() {
  dir_ = testing::MakeTempDir("understudy-e2e");
  // A random token made at run time; written to a file the sidecar reads
  // (admin.token_file) and the CLI reads (--token-file).
  token_ = "e2e-" + RandomHex(16);
  token_file_ = dir_ + "/admin-token";
  (void)WriteFile(token_file_, token_ + "\n");
  prod_key_ = "sk-prod-" + RandomHex(12);
  cand_key_ = "sk-cand-" + RandomHex(12);
  prod_key_file_ = dir_ + "/production.key";
  cand_key_file_ = dir_ + "/candidate.key";
  (void)WriteFile(prod_key_file_, prod_key_ + "\n");
  (void)WriteFile(cand_key_file_, cand_key_ + "\n");
  config_path_ = dir_ + "/understudy.yaml";
  NewDataDir();
}

Cluster::~Cluster() {
  KillSidecar();
  driver_.reset();
  // Keep the data for a post-mortem only when asked to.
  if (std::getenv("UNDERSTUDY_E2E_KEEP") == nullptr && !dir_.empty()) {
    std::filesystem::remove_all(dir_);
  }
}

void Cluster::NewDataDir() { data_dir_ = absl::StrCat(dir_, "/data", data_dirs_++); }

std::string Cluster::UnderstudyPath() { return testing::BuildDir() + "/cli/understudy"; }
std::string Cluster::FakeModelPath() {
  return testing::BuildDir() + "/examples/fake-model/fake-model";
}

absl::Status Cluster::StartFakes(FakeOptions production, FakeOptions candidate) {
  absl::StatusOr<std::unique_ptr<testing::Subprocess>> p =
      StartFake(production.model.empty() ? "gpt-4o" : production.model, 1, production,
                &prod_port_, prod_key_file_);
  if (!p.ok()) return p.status();
  prod_ = *std::move(p);
  absl::StatusOr<std::unique_ptr<testing::Subprocess>> c =
      StartFake(candidate.model.empty() ? "gpt-5-mini" : candidate.model, 2, candidate,
                &cand_port_, cand_key_file_);
  if (!c.ok()) return c.status();
  cand_ = *std::move(c);
  prod_upstream_ = envoy_driver::NewCurlUpstream(absl::StrCat("http://127.0.0.1:", prod_port_),
                                                 absl::Seconds(30));
  cand_upstream_ = envoy_driver::NewCurlUpstream(candidate_url(), absl::Seconds(30));
  return absl::OkStatus();
}

absl::Status Cluster::UseFakesOf(const Cluster& other) {
  if (other.prod_port_ == 0) return absl::FailedPreconditionError("the other cluster has no fakes");
  prod_port_ = other.prod_port_;
  cand_port_ = other.cand_port_;
  prod_key_ = other.prod_key_;
  cand_key_ = other.cand_key_;
  prod_key_file_ = other.prod_key_file_;
  cand_key_file_ = other.cand_key_file_;
  prod_upstream_ = envoy_driver::NewCurlUpstream(absl::StrCat("http://127.0.0.1:", prod_port_),
                                                 absl::Seconds(30));
  cand_upstream_ = envoy_driver::NewCurlUpstream(candidate_url(), absl::Seconds(30));
  return absl::OkStatus();
}

void Cluster::UseCandidatePort(int port) {
  cand_port_ = port;
  cand_upstream_ = envoy_driver::NewCurlUpstream(candidate_url(), absl::Seconds(30));
}

absl::Status Cluster::WriteConfig(const SidecarKnobs& k) {
  std::string feedback_key;
  if (!k.feedback_signing_key.empty()) {
    const std::string path = dir_ + "/feedback-key";
    if (absl::Status s = WriteFile(path, k.feedback_signing_key + "\n"); !s.ok()) return s;
    feedback_key = absl::StrCat("\n  signing_key_file: ", path);
  }
  if (!k.feedback_verify_key.empty()) {
    const std::string path = dir_ + "/feedback-verify-key";
    if (absl::Status s = WriteFile(path, k.feedback_verify_key + "\n"); !s.ok()) return s;
    absl::StrAppend(&feedback_key, "\n  verify_key_file: ", path);
  }
  std::string yaml = absl::StrCat(R"(extproc:
  listen: 127.0.0.1:0
  drain_timeout: 1s
admin:
  listen: 127.0.0.1:0
  token_file: )", token_file_, R"(
routing:
  sticky_header: x-user-id
  salt: e2e
  fallback: )", k.fallback ? "true" : "false", R"(
capture:
  max_body_bytes: 1048576
  queue_capacity: 4096
  workers: 2
feedback:
  path: /understudy/feedback)", feedback_key, R"(
upstreams:
  production:
    url: http://127.0.0.1:)", prod_port_, R"(
    api_key_file: )", prod_key_file_, R"(
  candidate:
    url: http://127.0.0.1:)", cand_port_, R"(
    api: )", k.candidate_api, R"(
    api_key_file: )", cand_key_file_, R"(
    request:
      set_json: {model: )", k.candidate_model, R"(}
shadow:
  enabled: true
  sample_rate: )", k.sample_rate, R"(
  noise_rate: 0
  reverse_rate: 0
  timeout: )", k.shadow_timeout, R"(
  max_concurrency: )", k.shadow_max_concurrency, R"(
  max_queue: )", k.shadow_max_queue, "\n",
                                  k.rollout_yaml.empty() ? kDefaultRollout : k.rollout_yaml, R"(
storage:
  path: )", data_dir_, R"(
  privacy:
    body_mode: full
)", k.extra_yaml);
  return WriteFile(config_path_, yaml);
}

// The quickstart's plan with short bakes, but min_samples no test reaches
// and every gate off: the judge never acts on its own, so each state a test
// sees is the one it made with commands.
const char Cluster::kDefaultRollout[] = R"(rollout:
  tick_interval: 1s
  windows: {recent: 10s, slots: 10}
  stages:
    - {percent: 0,   min_bake: 8s, min_samples: 1000000}
    - {percent: 1,   min_bake: 8s, min_samples: 1000000}
    - {percent: 5,   min_bake: 8s, min_samples: 1000000}
    - {percent: 25,  min_bake: 8s, min_samples: 1000000}
    - {percent: 50,  min_bake: 8s, min_samples: 1000000}
    - {percent: 100}
  gates:
    error_rate: {enabled: false}
    latency_p95: {enabled: false}
    ttft_p95: {enabled: false}
    satisfaction: {enabled: false}
    cost_per_request: {enabled: false}
    agreement: {enabled: false}
    critical: {enabled: false})";

absl::Status Cluster::StartSidecar(const SidecarKnobs& knobs, bool reset_rollout) {
  if (sidecar_ != nullptr && sidecar_->running()) {
    return absl::FailedPreconditionError("the sidecar is already running");
  }
  if (absl::Status s = WriteConfig(knobs); !s.ok()) return s;
  std::vector<std::string> argv = {UnderstudyPath(), "serve",   "--config", config_path_,
                                   "--listen",       "127.0.0.1:0", "--admin", "127.0.0.1:0",
                                   "--data",         data_dir_};
  if (reset_rollout) argv.push_back("--reset-rollout");
  absl::StatusOr<std::unique_ptr<testing::Subprocess>> s = testing::Subprocess::Start(argv);
  if (!s.ok()) return s.status();
  sidecar_ = *std::move(s);
  absl::StatusOr<int> ext =
      sidecar_->WaitForPort("understudy: ext_proc listening on port ", absl::Seconds(30));
  if (!ext.ok()) {
    return absl::UnavailableError(absl::StrCat(ext.status().message(), "\nstderr: ", SidecarErrors()));
  }
  absl::StatusOr<int> adm =
      sidecar_->WaitForPort("understudy: admin listening on 127.0.0.1:", absl::Seconds(10));
  if (!adm.ok()) return adm.status();
  extproc_port_ = *ext;
  admin_port_ = *adm;
  auto channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", extproc_port_),
                                     grpc::InsecureChannelCredentials());
  driver_ = std::make_unique<envoy_driver::EnvoyDriver>(
      channel, chain_,
      std::map<std::string, envoy_driver::Upstream*>{{"production", prod_upstream_.get()},
                                                     {"candidate", cand_upstream_.get()}});
  return absl::OkStatus();
}

void Cluster::KillSidecar() {
  if (sidecar_ == nullptr) return;
  if (sidecar_->running()) sidecar_->Kill(SIGKILL);
  (void)sidecar_->Wait(absl::Seconds(10));
}

std::optional<int> Cluster::StopSidecar() {
  if (sidecar_ == nullptr || !sidecar_->running()) return std::nullopt;
  sidecar_->Kill(SIGTERM);
  std::optional<int> status = sidecar_->Wait(absl::Seconds(30));
  if (!status.has_value()) KillSidecar();
  return status;
}

int Cluster::SidecarPid() const { return sidecar_ ? static_cast<int>(sidecar_->pid()) : 0; }

std::string Cluster::SidecarErrors() const { return sidecar_ ? sidecar_->Errors() : ""; }

absl::StatusOr<DriverResult> Cluster::Send(const std::string& user, const std::string& request_id) {
  envoy_driver::HttpRequest req;
  req.headers = {{"content-type", "application/json"}, {"x-user-id", user}};
  if (!request_id.empty()) req.headers.emplace_back("x-request-id", request_id);
  req.body_chunks = {
      R"({"model":"gpt-4o","messages":[{"role":"user","content":"What is the capital of France?"}]})"};
  return SendRequest(std::move(req));
}

absl::StatusOr<DriverResult> Cluster::SendRequest(envoy_driver::HttpRequest req) {
  if (driver_ == nullptr) return absl::FailedPreconditionError("the sidecar is not started");
  const bool has_key = std::any_of(req.headers.begin(), req.headers.end(), [](const auto& h) {
    return absl::EqualsIgnoreCase(h.first, "authorization");
  });
  if (!has_key) req.headers.emplace_back("authorization", "Bearer " + prod_key_);
  return driver_->Send(req);
}

absl::StatusOr<DriverResult> Cluster::SendFeedback(const std::string& body,
                                                  const std::string& token) {
  envoy_driver::HttpRequest req;
  req.path = "/understudy/feedback";
  req.headers = {{"content-type", "application/json"}, {"x-user-id", "feedback-user"}};
  if (!token.empty()) req.headers.emplace_back("x-understudy-feedback-token", token);
  req.body_chunks = {body};
  return driver_->Send(req);
}

HttpReply Cluster::Admin(const std::string& method, const std::string& path,
                         const std::string& body, bool with_token) {
  std::vector<std::string> headers = {"Content-Type: application/json"};
  if (with_token) headers.push_back("Authorization: Bearer " + token_);  // reads need it too
  return Http(method, admin_url() + path, body, headers);
}

json Cluster::Rollout() { return Admin("GET", "/v1/rollout").Json(); }

json Cluster::Decisions() {
  json j = Admin("GET", "/v1/decisions?limit=1000").Json();
  if (!j.is_object() || !j.contains("decisions")) return json(json::value_t::discarded);
  return j["decisions"];
}

absl::StatusOr<testing::CommandResult> Cluster::Cli(std::vector<std::string> args,
                                                    bool admin_flags) {
  std::vector<std::string> argv = {UnderstudyPath()};
  argv.insert(argv.end(), args.begin(), args.end());
  if (admin_flags) {
    argv.insert(argv.end(), {"--admin", admin_url(), "--token-file", token_file_});
  }
  // No token from the environment leaks into the CLI under test.
  return testing::RunCommand(argv, absl::Seconds(30), {{"UNDERSTUDY_ADMIN_TOKEN", ""}});
}

HttpReply Cluster::CandidateControl(const std::string& body) {
  return Http("POST", candidate_url() + "/control", body, {"Content-Type: application/json"});
}

double Percentile(std::vector<double> values, double q) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  size_t rank = static_cast<size_t>(std::ceil(q * values.size()));
  if (rank == 0) rank = 1;
  return values[std::min(rank, values.size()) - 1];
}

double MetricValue(const std::string& text, const std::string& name, const std::string& label) {
  double sum = 0;
  bool found = false;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (line.empty() || line[0] == '#') continue;
    if (!absl::StartsWith(line, name)) continue;
    absl::string_view rest = line.substr(name.size());
    if (rest.empty() || (rest[0] != '{' && rest[0] != ' ')) continue;  // a longer name
    if (!label.empty() && !absl::StrContains(rest, label)) continue;
    size_t space = rest.rfind(' ');
    if (space == absl::string_view::npos) continue;
    sum += std::strtod(std::string(rest.substr(space + 1)).c_str(), nullptr);
    found = true;
  }
  return found ? sum : -1;
}

std::string JudgedPlan(double max_abs_increase, bool critical) {
  return absl::StrCat(R"(rollout:
  tick_interval: 1s
  windows: {recent: 20s, slots: 10}
  judge: {stratum: 3s, min_clusters: 20}
  stages:
    - {percent: 10, min_bake: 4s, min_samples: 150, max_bake: 10m}
    - {percent: 50, min_bake: 4s, min_samples: 600, max_bake: 10m}
    - {percent: 100}
  gates:
    error_rate: {enabled: true, max_abs_increase: )",
                      max_abs_increase, R"(}
    latency_p95: {enabled: false}
    ttft_p95: {enabled: false}
    satisfaction: {enabled: false}
    cost_per_request: {enabled: false}
    agreement: {enabled: false}
    critical: {enabled: )",
                      critical ? "true" : "false", "}");
}

void E2eFixture::SetUp() {
  ASSERT_TRUE(std::ifstream(Cluster::UnderstudyPath()).good()) << Cluster::UnderstudyPath();
  ASSERT_TRUE(std::ifstream(Cluster::FakeModelPath()).good()) << Cluster::FakeModelPath();
}

std::string E2eFixture::WaitForPhase(const std::vector<std::string>& phases,
                                     absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  std::string phase;
  while (absl::Now() < deadline) {
    phase = State().value("phase", "");
    for (const std::string& p : phases) {
      if (phase == p) return phase;
    }
    absl::SleepFor(absl::Milliseconds(250));
  }
  return phase;
}

void E2eFixture::TearDown() {
  if (HasFailure()) std::fprintf(stderr, "--- sidecar stderr\n%s\n", c_.SidecarErrors().c_str());
}

}  // namespace understudy::e2e
