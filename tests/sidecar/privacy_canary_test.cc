// Privacy modes mean what they say: unique canary strings are planted in a
// prompt, in production's and the candidate's answers (JSON and SSE) and in
// feedback comments; traffic runs through the assembled sidecar with shadow
// on, and every output surface is searched for them — the raw RocksDB files
// (WAL included), the admin API's JSON, the report (md, json, html), the
// dashboard, /metrics, `export`, OTLP spans, stderr and the feedback
// replies. In `redacted`, `hash_only` and `none` no canary may appear
// anywhere; in `full` the stored bodies must hold them (the positive control
// that proves the search works).
#include <curl/curl.h>
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <unistd.h>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "sidecar/sidecar.h"
#include "storage/store.h"
#include "tests/common/test_util.h"
#include "tests/telemetry/otlp_receiver.h"
#include "tools/envoy_driver/envoy_driver.h"

namespace understudy::sidecar {
namespace {

namespace ed = envoy_driver;

// The canaries. Each is unique and shares no long substring with another or
// with anything the sidecar writes by itself.
constexpr char kPromptCanary[] = "qzPromptKestrel4817";
constexpr char kProductionCanary[] = "vxProdHeron2290";
constexpr char kCandidateCanary[] = "jwCandOsprey7731";
constexpr char kFeedbackCanary[] = "mtFeedbackPlover5064";
constexpr char kEnvoyFeedbackCanary[] = "ghEnvoyFbCurlew3318";

size_t Append(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

// Http sends a GET (empty `json`) or a JSON POST and returns the body.
std::string Http(const std::string& url, const std::string& json = "") {
  std::string body;
  CURL* c = curl_easy_init();
  curl_slist* headers = curl_slist_append(nullptr, "content-type: application/json");
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  if (!json.empty()) {
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, json.c_str());
  }
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &Append);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
  curl_easy_perform(c);
  curl_slist_free_all(headers);
  curl_easy_cleanup(c);
  return body;
}

// CanaryUpstream is an OpenAI-compatible model that answers `answer` (plus a
// number that differs between the arms, so the comparison has salient and
// text findings), as JSON or — for "stream": true — as SSE with the canary
// inside one delta.
class CanaryUpstream {
 public:
  CanaryUpstream(std::string answer, std::string number)
      : answer_(std::move(answer)), number_(std::move(number)) {
    server_.Post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) {
      const std::string text = absl::StrCat("The answer is ", answer_, " and ", number_, ".");
      if (req.body.find("\"stream\":true") == std::string::npos) {
        res.set_content(absl::StrCat(R"({"id":"c1","object":"chat.completion","model":"gpt-4o",)",
                                     R"("choices":[{"index":0,"message":{"role":"assistant",)",
                                     R"("content":")", text, R"("},"finish_reason":"stop"}],)",
                                     R"("usage":{"prompt_tokens":5,"completion_tokens":7,"total_tokens":12}})"),
                        "application/json");
        return;
      }
      std::string sse;
      for (const std::string& piece : {std::string("The answer is "), answer_,
                                       absl::StrCat(" and ", number_, ".")}) {
        absl::StrAppend(&sse, R"(data: {"object":"chat.completion.chunk","model":"gpt-4o",)",
                        R"("choices":[{"index":0,"delta":{"content":")", piece, R"("}}]})", "\n\n");
      }
      absl::StrAppend(&sse,
                      R"(data: {"object":"chat.completion.chunk","model":"gpt-4o","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]})",
                      "\n\ndata: [DONE]\n\n");
      res.set_content(sse, "text/event-stream");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  ~CanaryUpstream() {
    server_.stop();
    thread_.join();
  }
  std::string url() const { return absl::StrCat("http://127.0.0.1:", port_); }

 private:
  std::string answer_;
  std::string number_;
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
};

// ReadTree returns the bytes of every regular file under `dir`.
std::string ReadTree(const std::string& dir) {
  std::string all;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    std::ifstream in(entry.path(), std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    absl::StrAppend(&all, "\n==== ", entry.path().string(), "\n", s.str());
  }
  return all;
}

// StderrCapture sends this process's stderr (fd 2) to a file until Stop,
// which returns what was written.
class StderrCapture {
 public:
  explicit StderrCapture(std::string path) : path_(std::move(path)) {
    std::fflush(stderr);
    saved_ = dup(2);
    const int fd = open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(fd, 2);
    close(fd);
  }
  ~StderrCapture() { Stop(); }
  std::string Stop() {
    if (saved_ < 0) return "";
    std::fflush(stderr);
    dup2(saved_, 2);
    close(saved_);
    saved_ = -1;
    std::ifstream in(path_, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
  }

 private:
  std::string path_;
  int saved_ = -1;
};

// WithBase64Decoded returns `text` followed by the decoding of every run
// that looks like base64: protobuf's JSON mapping prints bytes fields (the
// bodies and header values of exchanges) that way, and a canary must not
// hide in them.
std::string WithBase64Decoded(const std::string& text) {
  std::string out = text;
  auto is_b64 = [](char c) { return absl::ascii_isalnum(c) || c == '+' || c == '/' || c == '='; };
  for (size_t i = 0; i < text.size();) {
    if (!is_b64(text[i])) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < text.size() && is_b64(text[j])) ++j;
    std::string decoded;
    if (j - i >= 8 && absl::Base64Unescape(absl::string_view(text.data() + i, j - i), &decoded)) {
      absl::StrAppend(&out, "\n", decoded);
    }
    i = j;
  }
  return out;
}

// Surface is one output as a user or operator could see it.
struct Surface {
  std::string name;
  std::string text;
};

class PrivacyCanaryTest : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/privacy-canary-XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
    receiver_ = telemetry::testing::OtlpReceiver::Start(telemetry::OtlpProtocol::kGrpc);
    const std::string yaml = absl::StrReplaceAll(R"(
extproc: {listen: "127.0.0.1:0"}
admin: {listen: "127.0.0.1:0"}
routing: {sticky_header: x-user-id}
upstreams:
  production: {url: PROD}
  candidate: {url: CAND}
shadow: {sample_rate: 1.0, timeout: 5s}
storage:
  path: DATA
  privacy: {body_mode: MODE}
telemetry:
  service_name: understudy-test
  otlp: {endpoint: "OTLP", protocol: grpc, flush_interval: 100ms}
)",
                                                 {{"PROD", production_.url()},
                                                  {"CAND", candidate_.url()},
                                                  {"DATA", dir_ + "/data"},
                                                  {"MODE", GetParam()},
                                                  {"OTLP", receiver_->endpoint()}});
    absl::StatusOr<ConfigNode> root = ConfigNode::Parse(yaml, "test.yaml");
    ASSERT_OK(root);
    absl::StatusOr<SidecarConfig> config = ParseSidecarConfig(*root);
    ASSERT_TRUE(config.ok()) << config.status();
    SidecarOptions options;
    options.log_exchanges = true;  // the access log is a surface too
    stderr_ = std::make_unique<StderrCapture>(dir_ + "/stderr.txt");
    absl::StatusOr<std::unique_ptr<Sidecar>> s = Sidecar::Start(*std::move(config), options);
    ASSERT_OK(s);
    sidecar_ = std::move(*s);
    production_client_ = ed::NewCurlUpstream(production_.url());
  }
  void TearDown() override {
    sidecar_.reset();
    stderr_.reset();
    std::system(("rm -rf " + dir_).c_str());
  }
  std::string AdminUrl(std::string_view path) const {
    return absl::StrCat("http://127.0.0.1:", sidecar_->admin_port(), std::string(path));
  }
  absl::StatusOr<ed::DriverResult> Send(const ed::HttpRequest& r) {
    ed::EnvoyDriver driver(grpc::CreateChannel(absl::StrCat("127.0.0.1:", sidecar_->extproc_port()),
                                               grpc::InsecureChannelCredentials()),
                           ed::FilterChain::TwoFilter(), {{"production", production_client_.get()}});
    return driver.Send(r);
  }
  // Chat sends one chat request carrying the prompt canary.
  absl::StatusOr<ed::DriverResult> Chat(bool stream) {
    ed::HttpRequest r;
    r.headers = {{"x-user-id", stream ? "u2" : "u1"}};
    r.body_chunks = {absl::StrCat(R"({"model":"gpt-4o","stream":)", stream ? "true" : "false",
                                  R"(,"messages":[{"role":"system","content":"be brief"},)",
                                  R"({"role":"user","content":"What is )", kPromptCanary, R"(?"}]})")};
    return Send(r);
  }
  // WaitForStored waits for the records that are read below: for each id the
  // live and shadow exchanges, the comparison and `feedback` scores.
  bool WaitForStored(const std::vector<std::string>& ids, size_t feedback) {
    auto stored = [&] {
      size_t scores = 0;
      for (const std::string& id : ids) {
        absl::StatusOr<std::vector<understudy::v1::Exchange>> e = sidecar_->store().GetExchanges(id);
        if (!e.ok() || e->size() != 2 || !sidecar_->store().GetComparison(id).ok()) return false;
        absl::StatusOr<std::vector<understudy::v1::Feedback>> f = sidecar_->store().FeedbackFor(id);
        if (f.ok()) scores += f->size();
      }
      return scores >= feedback;
    };
    const absl::Time deadline = absl::Now() + absl::Seconds(15);
    while (!stored() && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(20));
    return stored();
  }

  CanaryUpstream production_{kProductionCanary, "2.1"};
  CanaryUpstream candidate_{kCandidateCanary, "11.1"};
  std::unique_ptr<ed::Upstream> production_client_;
  std::string dir_;
  std::unique_ptr<StderrCapture> stderr_;
  std::unique_ptr<telemetry::testing::OtlpReceiver> receiver_;
  std::unique_ptr<Sidecar> sidecar_;
};

// Traffic with shadow on and feedback with comments; then every surface is
// searched for every canary.
TEST_P(PrivacyCanaryTest, CanariesReachOnlyWhatTheModeAllows) {
  const std::string mode = GetParam();
  const bool full = mode == "full";
  absl::StatusOr<ed::DriverResult> json_answer = Chat(/*stream=*/false);
  ASSERT_OK(json_answer);
  ASSERT_EQ(json_answer->status, 200) << json_answer->body;
  // The client itself gets its answer in every mode: privacy is about what
  // the sidecar keeps and emits, not the production path.
  EXPECT_THAT(json_answer->body, ::testing::HasSubstr(kProductionCanary));
  absl::StatusOr<ed::DriverResult> sse_answer = Chat(/*stream=*/true);
  ASSERT_OK(sse_answer);
  ASSERT_EQ(sse_answer->status, 200) << sse_answer->body;

  std::vector<Surface> surfaces;
  // Feedback with comments, through the admin API and through Envoy.
  surfaces.push_back({"admin feedback reply",
                      Http(AdminUrl("/v1/feedback"),
                           absl::StrCat(R"({"request_id":")", json_answer->request_id,
                                        R"(","score":1,"comment":"liked )", kFeedbackCanary, R"("})"))});
  ed::HttpRequest fb;
  fb.path = "/understudy/feedback";
  fb.headers = {{"content-type", "application/json"}, {"x-user-id", "u2"}};
  fb.body_chunks = {absl::StrCat(R"({"request_id":")", sse_answer->request_id,
                                 R"(","score":0,"comment":"meh )", kEnvoyFeedbackCanary, R"("})")};
  absl::StatusOr<ed::DriverResult> fb_reply = Send(fb);
  ASSERT_OK(fb_reply);
  EXPECT_EQ(fb_reply->status, 204) << fb_reply->body;
  surfaces.push_back({"envoy feedback reply", fb_reply->body});

  ASSERT_TRUE(WaitForStored({json_answer->request_id, sse_answer->request_id}, 2))
      << "exchanges, comparisons and feedback were not all stored within 15 s";
  absl::StatusOr<understudy::v1::Comparison> comparison =
      sidecar_->store().GetComparison(json_answer->request_id);
  ASSERT_OK(comparison);
  // Findings keep their kinds, positions and scores in every mode.
  ASSERT_GT(comparison->findings_size(), 0);
  EXPECT_GT(comparison->scores_size(), 0);
  // The number that changed ("2.1" → "11.1") is a salient finding at a
  // character position; outside full mode it is known by hash and length.
  bool salient = false;
  for (const auto& f : comparison->findings()) {
    EXPECT_FALSE(f.kind().empty());
    if (f.kind() != "salient_token") continue;
    EXPECT_THAT(f.path(), ::testing::StartsWith("char "));
    if (full) {
      salient = salient || f.production() == "2.1";
    } else if (mode == "none") {
      salient = salient || f.production() == "[len:3]";
    } else {
      salient = salient || (absl::StartsWith(f.production(), "[sha256:") &&
                            absl::EndsWith(f.production(), " len:3]"));
    }
  }
  EXPECT_TRUE(salient) << comparison->DebugString();

  // The outputs.
  for (const char* path : {"/v1/comparisons?limit=100", "/v1/health", "/v1/decisions", "/v1/rollout",
                           "/v1/report?format=md", "/v1/report?format=json",
                           "/v1/report?format=html", "/", "/metrics"}) {
    surfaces.push_back({absl::StrCat("admin ", path), Http(AdminUrl(path))});
  }
  for (storage::RecordKind kind :
       {storage::RecordKind::kExchanges, storage::RecordKind::kComparisons,
        storage::RecordKind::kFeedback, storage::RecordKind::kDecisions,
        storage::RecordKind::kHealth}) {
    std::ostringstream out;
    ASSERT_OK(storage::ExportJsonl(sidecar_->store(), kind, absl::InfinitePast(), out));
    surfaces.push_back({"export " + std::string(storage::RecordKindName(kind)), out.str()});
  }
  // Spans: two exchanges, two shadow calls, two comparisons at least.
  std::string spans;
  for (const auto& s : receiver_->WaitForSpans(6)) absl::StrAppend(&spans, s.span.DebugString());
  EXPECT_THAT(spans, ::testing::HasSubstr("understudy.compare"));
  surfaces.push_back({"otlp spans", spans});
  // While the database is open (the WAL holds everything written), and
  // after shutdown (flushed files).
  surfaces.push_back({"rocksdb files (open)", ReadTree(dir_ + "/data")});
  sidecar_->engine().WaitIdle();
  sidecar_->Shutdown(absl::Seconds(2));
  surfaces.push_back({"rocksdb files (closed)", ReadTree(dir_ + "/data")});
  surfaces.push_back({"stderr", stderr_->Stop()});

  for (Surface& s : surfaces) s.text = WithBase64Decoded(s.text);
  const char* canaries[] = {kPromptCanary, kProductionCanary, kCandidateCanary, kFeedbackCanary,
                            kEnvoyFeedbackCanary};
  if (!full) {
    for (const Surface& s : surfaces) {
      for (const char* canary : canaries) {
        const size_t at = s.text.find(canary);
        EXPECT_EQ(at, std::string::npos)
            << "mode " << mode << ": " << canary << " leaked through " << s.name << ": ..."
            << s.text.substr(at < 200 ? 0 : at - 200, 400) << "...";
      }
    }
    return;
  }
  // Positive control: in full mode the stored bodies, findings and comments
  // hold every canary, so the searches above would have found a leak.
  auto find = [&](const std::string& name) -> const std::string& {
    for (const Surface& s : surfaces) {
      if (s.name == name) return s.text;
    }
    ADD_FAILURE() << "no surface " << name;
    return surfaces.front().text;
  };
  for (const char* canary : canaries) {
    EXPECT_THAT(find("rocksdb files (open)"), ::testing::HasSubstr(canary));
  }
  for (const char* canary : {kPromptCanary, kProductionCanary, kCandidateCanary}) {
    EXPECT_THAT(find("export exchanges"), ::testing::HasSubstr(canary));
  }
  EXPECT_THAT(find("export comparisons"), ::testing::HasSubstr(kCandidateCanary));
  EXPECT_THAT(find("admin /v1/comparisons?limit=100"), ::testing::HasSubstr(kCandidateCanary));
  EXPECT_THAT(find("export feedback"), ::testing::HasSubstr(kFeedbackCanary));
  EXPECT_THAT(find("export feedback"), ::testing::HasSubstr(kEnvoyFeedbackCanary));
}

INSTANTIATE_TEST_SUITE_P(EveryMode, PrivacyCanaryTest,
                         ::testing::Values("full", "redacted", "hash_only", "none"),
                         [](const ::testing::TestParamInfo<const char*>& info) {
                           return std::string(info.param);
                         });

}  // namespace
}  // namespace understudy::sidecar
