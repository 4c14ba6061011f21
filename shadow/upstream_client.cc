// UpstreamClient: libcurl's multi interface driven by one thread.
//
// The loop: take queued requests while fewer than max_concurrency are in
// flight, curl_multi_perform, collect finished transfers, then sleep in
// curl_multi_poll until a socket is ready, curl's own timer fires, or
// TrySend/shutdown calls curl_multi_wakeup. Nothing here ever waits on the
// network while holding mu_, so TrySend returns at once even when every
// transfer hangs.
#include <curl/curl.h>

#include <chrono>
#include <deque>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/strings.h"
#include "shadow/answer.h"
#include "shadow/headers.h"
#include "shadow/shadow.h"

namespace understudy::shadow {

namespace internal {

bool IsCredentialHeader(std::string_view name, const ShadowConfig& config) {
  static constexpr std::string_view kSecrets[] = {
      "authorization", "proxy-authorization", "x-api-key", "api-key", "cookie", "set-cookie"};
  for (std::string_view s : kSecrets) {
    if (name == s) return true;
  }
  return name == config.production.auth_header || name == config.candidate.auth_header;
}

bool IsTransportHeader(std::string_view name) {
  static constexpr std::string_view kDropped[] = {
      "content-length", "host",    "transfer-encoding", "connection", "keep-alive",     "te",
      "trailer",        "upgrade", "proxy-connection",  "expect"};
  if (!name.empty() && name[0] == ':') return true;
  for (std::string_view s : kDropped) {
    if (name == s) return true;
  }
  return false;
}

bool IsInternalHeader(std::string_view name) {
  return absl::StartsWith(Av(name), "x-envoy-") || absl::StartsWith(Av(name), "x-understudy-");
}

}  // namespace internal

std::optional<absl::Duration> UpstreamResult::Latency() const {
  if (exchange.end_offset_micros() < 0) return std::nullopt;
  return absl::Microseconds(exchange.end_offset_micros());
}

std::optional<absl::Duration> UpstreamResult::Ttft() const {
  if (exchange.first_body_byte_offset_micros() < 0) return std::nullopt;
  return absl::Microseconds(exchange.first_body_byte_offset_micros());
}

namespace {

using SteadyTime = std::chrono::steady_clock::time_point;

int64_t MicrosSince(SteadyTime start) {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() -
                                                               start)
      .count();
}

std::string AuthorityOf(const std::string& url) {
  size_t begin = url.find("://");
  begin = begin == std::string::npos ? 0 : begin + 3;
  const size_t end = url.find('/', begin);
  return url.substr(begin, end == std::string::npos ? std::string::npos : end - begin);
}

absl::Status GlobalInit() {
  static CURLcode code = curl_global_init(CURL_GLOBAL_DEFAULT);
  if (code != CURLE_OK) {
    return absl::InternalError(absl::StrCat("curl_global_init: ", curl_easy_strerror(code)));
  }
  return absl::OkStatus();
}

}  // namespace

class UpstreamClient::Impl {
 public:
  Impl(const ShadowConfig& config, const Clock& clock) : config_(config), clock_(clock) {}

  absl::Status Init() {
    if (absl::Status s = GlobalInit(); !s.ok()) return s;
    multi_ = curl_multi_init();
    if (multi_ == nullptr) return absl::InternalError("curl_multi_init failed");
    // Keep up to max_concurrency idle connections per host for reuse.
    curl_multi_setopt(multi_, CURLMOPT_MAXCONNECTS, static_cast<long>(config_.max_concurrency));
    thread_ = std::thread([this] { Run(); });
    return absl::OkStatus();
  }

  ~Impl() {
    {
      absl::MutexLock lock(&mu_);
      stopping_ = true;
    }
    if (multi_ != nullptr) curl_multi_wakeup(multi_);
    if (thread_.joinable()) thread_.join();
    if (multi_ != nullptr) curl_multi_cleanup(multi_);
  }

  bool TrySend(UpstreamRequest request, Callback done) {
    const UpstreamConfig& u = UpstreamFor(request.target);
    {
      absl::MutexLock lock(&mu_);
      if (stopping_ || u.url.empty() || queue_.size() >= static_cast<size_t>(config_.max_queue)) {
        ++dropped_;
        return false;
      }
      queue_.push_back(Pending{std::move(request), std::move(done)});
      ++outstanding_;
    }
    curl_multi_wakeup(multi_);
    return true;
  }

  bool WaitIdle(absl::Duration timeout) const {
    absl::MutexLock lock(&mu_);
    return mu_.AwaitWithTimeout(absl::Condition(
                                    +[](const Impl* self) ABSL_EXCLUSIVE_LOCKS_REQUIRED(self->mu_) {
                                      return self->outstanding_ == 0;
                                    },
                                    this),
                                timeout);
  }

  ShadowStats Stats() const {
    absl::MutexLock lock(&mu_);
    ShadowStats s;
    s.sent = sent_;
    s.completed = completed_;
    s.failed = failed_;
    s.timed_out = timed_out_;
    s.dropped_queue_full = dropped_;
    s.aborted = aborted_;
    s.queued = static_cast<int64_t>(queue_.size());
    s.in_flight = in_flight_;
    return s;
  }

 private:
  struct Pending {
    UpstreamRequest request;
    Callback done;
  };

  // One transfer in flight; owned by active_ on the loop thread.
  struct Transfer {
    Impl* impl = nullptr;
    CURL* easy = nullptr;
    curl_slist* headers = nullptr;
    Callback done;
    UpstreamResult result;
    std::string body;  // request body; must live as long as the transfer
    std::string url;
    SteadyTime start;
    int64_t first_byte = -1;
    int64_t headers_end = -1;
    int64_t bytes_seen = 0;
    bool truncated = false;
    char error[CURL_ERROR_SIZE] = {0};

    ~Transfer() {
      if (headers != nullptr) curl_slist_free_all(headers);
      if (easy != nullptr) curl_easy_cleanup(easy);
    }
  };

  const UpstreamConfig& UpstreamFor(v1::Arm arm) const {
    return arm == v1::ARM_PRODUCTION ? config_.production : config_.candidate;
  }

  static size_t OnBody(char* data, size_t size, size_t n, void* userp) {
    auto* t = static_cast<Transfer*>(userp);
    const size_t len = size * n;
    if (t->first_byte < 0 && len > 0) t->first_byte = MicrosSince(t->start);
    t->bytes_seen += static_cast<int64_t>(len);
    std::string* body = t->result.exchange.mutable_response()->mutable_body();
    const size_t cap = static_cast<size_t>(t->impl->config_.max_response_bytes);
    if (body->size() < cap) {
      const size_t take = std::min(len, cap - body->size());
      body->append(data, take);
      if (take < len) t->truncated = true;
    } else if (len > 0) {
      t->truncated = true;
    }
    return len;
  }

  static size_t OnHeader(char* data, size_t size, size_t n, void* userp) {
    auto* t = static_cast<Transfer*>(userp);
    const size_t len = size * n;
    std::string_view line(data, len);
    v1::HttpMessage* resp = t->result.exchange.mutable_response();
    if (absl::StartsWith(Av(line), "HTTP/")) {
      // A new response (after 100 Continue): forget earlier headers.
      resp->clear_headers();
      return len;
    }
    if (line == "\r\n" || line == "\n") {
      t->headers_end = MicrosSince(t->start);
      return len;
    }
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) return len;
    std::string key = absl::AsciiStrToLower(Av(line.substr(0, colon)));
    if (key == "set-cookie" || internal::IsCredentialHeader(key, t->impl->config_)) return len;
    v1::Header* h = resp->add_headers();
    h->set_key(std::move(key));
    h->set_value(std::string(absl::StripAsciiWhitespace(Av(line.substr(colon + 1)))));
    return len;
  }

  void Run() {
    while (true) {
      std::vector<Pending> starting;
      {
        absl::MutexLock lock(&mu_);
        if (stopping_) break;
        while (!queue_.empty() &&
               active_.size() + starting.size() < static_cast<size_t>(config_.max_concurrency)) {
          starting.push_back(std::move(queue_.front()));
          queue_.pop_front();
        }
      }
      for (Pending& p : starting) StartTransfer(std::move(p));
      int running = 0;
      curl_multi_perform(multi_, &running);
      int left = 0;
      while (CURLMsg* msg = curl_multi_info_read(multi_, &left)) {
        if (msg->msg != CURLMSG_DONE) continue;
        CURL* easy = msg->easy_handle;
        const CURLcode code = msg->data.result;
        Finish(easy, code);
      }
      curl_multi_poll(multi_, nullptr, 0, 1000, nullptr);
    }
    Shutdown();
  }

  void StartTransfer(Pending p) {
    auto t = std::make_unique<Transfer>();
    t->impl = this;
    t->done = std::move(p.done);
    UpstreamRequest& r = p.request;
    const UpstreamConfig& u = UpstreamFor(r.target);
    v1::Exchange& ex = t->result.exchange;
    ex.set_request_id(r.request_id);
    ex.set_arm(r.target);
    ex.set_source(r.source);
    ex.set_method(r.method);
    ex.set_path(r.path);
    ex.set_api(r.api);
    ex.set_authority(AuthorityOf(u.url));
    ex.set_start_unix_micros(absl::ToUnixMicros(clock_.Now()));
    ex.set_response_headers_offset_micros(-1);
    ex.set_first_body_byte_offset_micros(-1);
    ex.set_end_offset_micros(-1);
    t->start = std::chrono::steady_clock::now();
    t->url = u.url + r.path;
    t->body = std::move(r.body);

    bool has_content_type = false;
    for (const auto& [name, value] : r.headers) {
      const std::string key = absl::AsciiStrToLower(name);
      if (internal::IsCredentialHeader(key, config_) || internal::IsTransportHeader(key)) continue;
      if (value.find_first_of("\r\n") != std::string::npos) continue;
      if (key == "content-type") has_content_type = true;
      t->headers = curl_slist_append(t->headers, absl::StrCat(key, ": ", value).c_str());
      v1::Header* h = ex.mutable_request()->add_headers();
      h->set_key(key);
      h->set_value(value);
    }
    if (!has_content_type && !t->body.empty()) {
      t->headers = curl_slist_append(t->headers, "content-type: application/json");
      v1::Header* h = ex.mutable_request()->add_headers();
      h->set_key("content-type");
      h->set_value("application/json");
    }
    // No "Expect: 100-continue" round trip for large bodies.
    t->headers = curl_slist_append(t->headers, "Expect:");
    if (!u.api_key.empty()) {
      // The credential goes to curl only; it is not recorded anywhere.
      std::string line = absl::StrCat(u.auth_header, ": ", u.auth_scheme,
                                      u.auth_scheme.empty() ? "" : " ", u.api_key);
      t->headers = curl_slist_append(t->headers, line.c_str());
      std::fill(line.begin(), line.end(), '\0');
    }
    ex.mutable_request()->set_body(t->body);
    ex.mutable_request()->set_body_bytes_seen(static_cast<int64_t>(t->body.size()));
    ex.mutable_request()->set_complete(true);

    CURL* easy = curl_easy_init();
    if (easy == nullptr) {
      t->result.exchange.set_error("curl_easy_init failed");
      Deliver(std::move(t), rollout::OutcomeClass::kTransport, /*aborted=*/false);
      return;
    }
    t->easy = easy;
    curl_easy_setopt(easy, CURLOPT_URL, t->url.c_str());
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_PRIVATE, t.get());
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, t->error);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, &Impl::OnBody);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, t.get());
    curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, &Impl::OnHeader);
    curl_easy_setopt(easy, CURLOPT_HEADERDATA, t.get());
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, t->headers);
    // No CURLOPT_ACCEPT_ENCODING: the client's own Accept-Encoding goes
    // along as a header, and the answer is decoded by shadow/answer.h as
    // live answers are, so both arms are judged alike.
    curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS,
                     static_cast<long>(absl::ToInt64Milliseconds(config_.timeout)));
    curl_easy_setopt(
        easy, CURLOPT_CONNECTTIMEOUT_MS,
        static_cast<long>(std::min<int64_t>(absl::ToInt64Milliseconds(config_.timeout), 10000)));
    const std::string method = absl::AsciiStrToUpper(r.method);
    if (method == "GET" && t->body.empty()) {
      curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L);
    } else if (method == "HEAD") {
      curl_easy_setopt(easy, CURLOPT_NOBODY, 1L);
    } else {
      curl_easy_setopt(easy, CURLOPT_POSTFIELDS, t->body.data());
      curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(t->body.size()));
      if (method != "POST") curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, method.c_str());
    }
    if (curl_multi_add_handle(multi_, easy) != CURLM_OK) {
      t->result.exchange.set_error("curl_multi_add_handle failed");
      Deliver(std::move(t), rollout::OutcomeClass::kTransport, /*aborted=*/false);
      return;
    }
    {
      absl::MutexLock lock(&mu_);
      ++sent_;
      ++in_flight_;
    }
    active_.emplace(easy, std::move(t));
  }

  void Finish(CURL* easy, CURLcode code) {
    auto it = active_.find(easy);
    if (it == active_.end()) return;
    std::unique_ptr<Transfer> t = std::move(it->second);
    active_.erase(it);
    curl_multi_remove_handle(multi_, easy);
    {
      absl::MutexLock lock(&mu_);
      --in_flight_;
    }
    v1::Exchange& ex = t->result.exchange;
    long status = 0;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    ex.set_status_code(static_cast<int32_t>(status));
    ex.set_end_offset_micros(MicrosSince(t->start));
    ex.set_response_headers_offset_micros(t->headers_end);
    ex.set_first_body_byte_offset_micros(t->first_byte);
    v1::HttpMessage* resp = ex.mutable_response();
    resp->set_body_bytes_seen(t->bytes_seen);
    resp->set_body_truncated(t->truncated);

    rollout::OutcomeClass outcome;
    if (code != CURLE_OK) {
      ex.set_incomplete(true);
      ex.set_error(absl::StrCat(curl_easy_strerror(code), t->error[0] ? ": " : "", t->error));
      outcome = code == CURLE_OPERATION_TIMEDOUT ? rollout::OutcomeClass::kTimeout
                                                 : rollout::OutcomeClass::kTransport;
    } else {
      resp->set_complete(true);
      PrepareExchange(&ex, config_.decode_limits);
      ParsedAnswer parsed;
      outcome = ClassifyExchange(ex, /*options=*/nullptr, &parsed).outcome;
      t->result.answer = std::move(parsed.chat);
      t->result.embedding = std::move(parsed.embedding);
    }
    Deliver(std::move(t), outcome, /*aborted=*/false);
  }

  // Deliver runs the callback outside mu_ and then updates the counters.
  void Deliver(std::unique_ptr<Transfer> t, rollout::OutcomeClass outcome, bool aborted) {
    t->result.outcome = outcome;
    t->result.aborted = aborted;
    Callback done = std::move(t->done);
    UpstreamResult result = std::move(t->result);
    t.reset();  // frees the easy handle before the callback may block
    if (done) done(std::move(result));
    absl::MutexLock lock(&mu_);
    if (aborted) {
      ++aborted_;
    } else {
      ++completed_;
      if (rollout::IsError(outcome)) ++failed_;
      if (outcome == rollout::OutcomeClass::kTimeout) ++timed_out_;
    }
    --outstanding_;
  }

  void Shutdown() {
    for (auto& [easy, t] : active_) {
      curl_multi_remove_handle(multi_, easy);
      v1::Exchange& ex = t->result.exchange;
      ex.set_incomplete(true);
      ex.set_error("aborted: client shut down");
      ex.set_end_offset_micros(MicrosSince(t->start));
      {
        absl::MutexLock lock(&mu_);
        --in_flight_;
      }
      Deliver(std::move(t), rollout::OutcomeClass::kTransport, /*aborted=*/true);
    }
    active_.clear();
    std::deque<Pending> queued;
    {
      absl::MutexLock lock(&mu_);
      queued.swap(queue_);
    }
    for (Pending& p : queued) {
      auto t = std::make_unique<Transfer>();
      t->done = std::move(p.done);
      v1::Exchange& ex = t->result.exchange;
      ex.set_request_id(p.request.request_id);
      ex.set_arm(p.request.target);
      ex.set_source(p.request.source);
      ex.set_method(p.request.method);
      ex.set_path(p.request.path);
      ex.set_response_headers_offset_micros(-1);
      ex.set_first_body_byte_offset_micros(-1);
      ex.set_end_offset_micros(-1);
      ex.set_incomplete(true);
      ex.set_error("aborted: client shut down before sending");
      Deliver(std::move(t), rollout::OutcomeClass::kTransport, /*aborted=*/true);
    }
  }

  const ShadowConfig config_;
  const Clock& clock_;
  CURLM* multi_ = nullptr;
  std::thread thread_;
  // Loop thread only.
  std::unordered_map<CURL*, std::unique_ptr<Transfer>> active_;

  mutable absl::Mutex mu_;
  std::deque<Pending> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  int64_t outstanding_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t sent_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t completed_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t failed_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t timed_out_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t dropped_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t aborted_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t in_flight_ ABSL_GUARDED_BY(mu_) = 0;
};

absl::StatusOr<std::unique_ptr<UpstreamClient>> UpstreamClient::Start(const ShadowConfig& config,
                                                                      const Clock& clock) {
  for (const UpstreamConfig* u : {&config.production, &config.candidate}) {
    if (!u->url.empty() && !absl::StartsWith(u->url, "http://") &&
        !absl::StartsWith(u->url, "https://")) {
      return absl::InvalidArgumentError(
          absl::StrCat("upstream url must start with http:// or https://, got \"", u->url, "\""));
    }
  }
  if (config.max_concurrency < 1) {
    return absl::InvalidArgumentError("shadow.max_concurrency: must be at least 1");
  }
  auto impl = std::make_unique<Impl>(config, clock);
  if (absl::Status s = impl->Init(); !s.ok()) return s;
  return std::unique_ptr<UpstreamClient>(new UpstreamClient(std::move(impl)));
}

UpstreamClient::UpstreamClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
UpstreamClient::~UpstreamClient() = default;

bool UpstreamClient::TrySend(UpstreamRequest request, Callback done) {
  return impl_->TrySend(std::move(request), std::move(done));
}

bool UpstreamClient::WaitIdle(absl::Duration timeout) const { return impl_->WaitIdle(timeout); }

ShadowStats UpstreamClient::Stats() const { return impl_->Stats(); }

}  // namespace understudy::shadow
