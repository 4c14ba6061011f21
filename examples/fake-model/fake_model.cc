#include "examples/fake-model/fake_model.h"

#include <httplib.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>
#include <unordered_set>

#include "absl/base/thread_annotations.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "examples/fake-model/api.h"
#include "examples/fake-model/compression.h"
#include "examples/fake-model/text_ops.h"

namespace understudy::fake_model {
namespace {

using api::Api;
using Json = nlohmann::ordered_json;
using OJson = nlohmann::ordered_json;

constexpr char kFallbackAnswer[] =
    "I'm not certain about that. Could you rephrase the question or give me "
    "more detail?";
constexpr char kRefusal[] = "I'm sorry, but I can't help with that.";

// Shorten drops the last `fraction` of `text`, cut back to a word boundary
// (knob `shorten`): the same answer, tersely.
std::string Shorten(const std::string& text, double fraction) {
  size_t keep = static_cast<size_t>(static_cast<double>(text.size()) * (1.0 - fraction));
  if (keep >= text.size()) return text;
  const size_t space = text.rfind(' ', keep);
  if (space != std::string::npos && space > 0) keep = space;
  return text.substr(0, keep);
}
constexpr size_t kMaxBodyBytes = 16 << 20;
constexpr size_t kMaxSeenPrompts = 100000;
constexpr int kMaxEmbeddingDim = 8192;
constexpr char kJson[] = "application/json";

const char kBuiltinCorpus[] =
    R"({"id":"builtin-capital","question":"What is the capital of France?","answer":"The capital of France is Paris.","json":{"country":"France","capital":"Paris"}})"
    "\n"
    R"({"id":"builtin-weather","question":"What is the weather in Paris?","answer":"It is 18 degrees Celsius and sunny in Paris.","tool_call":{"name":"get_weather","arguments":{"city":"Paris","unit":"celsius"}}})"
    "\n";

bool KeyMatches(std::string_view given, std::string_view expected) {
  // Constant time in the length of `expected`: a wrong key's prefix does not
  // answer faster.
  unsigned char diff = given.size() == expected.size() ? 0 : 1;
  for (size_t i = 0; i < expected.size(); ++i) {
    const char g = i < given.size() ? given[i] : 0;
    diff |= static_cast<unsigned char>(g ^ expected[i]);
  }
  return diff == 0;
}

absl::Duration Sample(const LatencyDistribution& d, double z) {
  if (d.median <= absl::ZeroDuration()) return absl::ZeroDuration();
  if (d.sigma <= 0) return d.median;
  double ms = absl::ToDoubleMilliseconds(d.median) * std::exp(d.sigma * z);
  return std::min(absl::Seconds(60), absl::Microseconds(static_cast<int64_t>(ms * 1000)));
}

bool IsOpenAi(Api api) { return api != Api::kAnthropic; }

}  // namespace

class FakeModelServer::Impl {
 public:
  Impl(const FakeModelOptions& options, std::vector<CorpusEntry> corpus)
      : options_(options),
        initial_knobs_(options.knobs),
        corpus_(std::move(corpus)),
        knobs_(options.knobs) {
    fingerprint_ = absl::StrFormat("fp_%010x",
                                   std::hash<std::string>{}(options.knobs.model) & 0xffffffffffULL);
    switch (options.model_check) {
      case ModelCheck::kStrict:
        strict_model_ = true;
        break;
      case ModelCheck::kOff:
        strict_model_ = false;
        break;
      case ModelCheck::kAuto:
        strict_model_ = options.knobs.model != kDefaultModelName || !options.accept_models.empty();
        break;
    }
    parse_.validate_schema = options.validate_schema;
  }

  absl::Status Bind() {
    const int threads = std::max(2, options_.worker_threads);
    server_.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
    server_.set_keep_alive_timeout(std::max(0, options_.keep_alive_timeout_sec));
    server_.set_payload_max_length(kMaxBodyBytes);
    server_.set_keep_alive_max_count(1000);
    const bool openai = options_.api != ApiMode::kAnthropic;
    const bool anthropic = options_.api != ApiMode::kOpenAi;
    if (openai) {
      server_.Post("/v1/chat/completions",
                   [this](const httplib::Request& req, httplib::Response& res) {
                     HandleGenerate(Api::kChat, req, res);
                   });
      server_.Post("/v1/responses", [this](const httplib::Request& req, httplib::Response& res) {
        HandleGenerate(Api::kResponses, req, res);
      });
      server_.Post("/v1/embeddings", [this](const httplib::Request& req, httplib::Response& res) {
        HandleEmbeddings(req, res);
      });
    }
    if (anthropic) {
      server_.Post("/v1/messages", [this](const httplib::Request& req, httplib::Response& res) {
        HandleGenerate(Api::kAnthropic, req, res);
      });
    }
    server_.Get("/v1/models", [this](const httplib::Request& req, httplib::Response& res) {
      HandleModels(req, res, nullptr);
    });
    server_.Get(R"(/v1/models/([^/]+))",
                [this](const httplib::Request& req, httplib::Response& res) {
                  const std::string id = req.matches[1];
                  HandleModels(req, res, &id);
                });
    server_.Get("/control", [this](const httplib::Request& req, httplib::Response& res) {
      SendBody(req, res, 200, KnobsToJson(Knobs()), kJson, false);
    });
    server_.Post("/control", [this](const httplib::Request& req, httplib::Response& res) {
      HandleControl(req, res);
    });
    server_.Get("/stats", [this](const httplib::Request& req, httplib::Response& res) {
      HandleStats(req, res);
    });
    server_.Get("/healthz", [this](const httplib::Request& req, httplib::Response& res) {
      SendBody(req, res, 200, R"({"status":"ok"})", kJson, false);
    });
    server_.set_error_handler([this](const httplib::Request& req, httplib::Response& res) {
      // Our own errors carry a body already (a content provider).
      if (!res.body.empty() || res.content_provider_) return;
      const Api api = PathApi(req.path);
      if (res.status == 404) {
        SendError(api, req, res, 404,
                  IsOpenAi(api)
                      ? absl::StrCat("Unknown request URL: ", req.method, " ", req.path, ".")
                      : "Not Found",
                  "invalid_request_error", "unknown_url");
      } else if (res.status == 413) {
        SendError(api, req, res, 413, "Request body too large.", "invalid_request_error");
      }
    });
    // httplib's default sets SO_REUSEPORT, which lets a second server bind a
    // port already in use and silently share its traffic. Refuse that.
    // Like a real model server, send each SSE event as soon as it is
    // written: without TCP_NODELAY, Nagle holds the first delta until the
    // client's delayed ACK (~40 ms) and every TTFT measures that instead.
    // Accepted sockets inherit the option from the listener on Linux.
    server_.set_socket_options([](socket_t sock) {
      int yes = 1;
      setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
      setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, &yes, sizeof(yes));
    });
    if (options_.port == 0) {
      port_ = server_.bind_to_any_port(options_.host);
    } else {
      port_ = server_.bind_to_port(options_.host, options_.port) ? options_.port : -1;
    }
    if (port_ <= 0) {
      return absl::UnavailableError(
          absl::StrCat("fake model: cannot bind ", options_.host, ":", options_.port));
    }
    listener_ = std::thread([this] { server_.listen_after_bind(); });
    // stop() before the accept loop runs would be lost, so wait for it.
    while (!server_.is_running()) std::this_thread::yield();
    return absl::OkStatus();
  }

  void Stop() {
    std::lock_guard<std::mutex> stop_lock(stop_mu_);
    if (stopped_) return;
    {
      absl::MutexLock l(&mu_);
      stopping_ = true;  // wakes every hanging or sleeping request
    }
    server_.stop();
    if (listener_.joinable()) listener_.join();  // also joins the worker pool
    stopped_ = true;
  }

  void SetKnobs(const FakeModelKnobs& knobs) {
    absl::MutexLock l(&mu_);
    knobs_ = knobs;
  }
  FakeModelKnobs Knobs() const {
    absl::MutexLock l(&mu_);
    return knobs_;
  }
  FakeModelCounters Counters() const {
    absl::MutexLock l(&mu_);
    return counters_;
  }
  int HangingNow() const {
    absl::MutexLock l(&mu_);
    return hanging_;
  }
  bool WaitForHanging(int n, absl::Duration timeout) const {
    absl::MutexLock l(&mu_);
    auto enough = [this, n]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return hanging_ >= n; };
    return mu_.AwaitWithTimeout(absl::Condition(&enough), timeout);
  }
  int port() const { return port_; }
  const std::string& host() const { return options_.host; }

 private:
  bool HangReleased() const ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return stopping_ || !(knobs_.hang || knobs_.hang_rate > 0);
  }

  // SleepUnlessStopping waits `d`; false when the server is stopping.
  bool SleepUnlessStopping(absl::Duration d) {
    absl::MutexLock l(&mu_);
    if (d > absl::ZeroDuration()) mu_.AwaitWithTimeout(absl::Condition(&stopping_), d);
    return !stopping_;
  }

  // HangUntilReleased returns false when the server is stopping.
  bool HangUntilReleased() {
    absl::MutexLock l(&mu_);
    ++hanging_;
    ++counters_.hangs;
    mu_.Await(absl::Condition(this, &Impl::HangReleased));
    --hanging_;
    return !stopping_;
  }

  template <typename F>
  void Count(F f) {
    absl::MutexLock l(&mu_);
    f(counters_);
  }

  // PathApi is the API family whose error schema a path's errors use.
  Api PathApi(const std::string& path) const {
    if (options_.api == ApiMode::kAnthropic) return Api::kAnthropic;
    if (options_.api == ApiMode::kBoth && absl::StartsWith(path, "/v1/messages")) {
      return Api::kAnthropic;
    }
    return Api::kChat;
  }

  // SendBody sets a complete body, compressed when `compress` is on and the
  // client accepts a coding. Through a sized content provider: httplib would
  // otherwise gzip or brotli a JSON body on its own whenever the client
  // asks, whatever the knobs say.
  void SendBody(const httplib::Request& req, httplib::Response& res, int status, std::string body,
                const char* content_type, bool compress) {
    res.status = status;
    bool stopping;
    {
      absl::MutexLock l(&mu_);
      stopping = stopping_;
    }
    if (stopping) {
      // httplib writes no content-provider bytes once it is shutting down;
      // the 503 for a request cut by Stop() must still reach the client.
      res.set_content(body, content_type);
      return;
    }
    const Coding coding = compress ? NegotiateCoding(req.get_header_value("Accept-Encoding"),
                                                     /*stream=*/false)
                                   : Coding::kIdentity;
    if (coding != Coding::kIdentity) {
      body = CompressAll(coding, body);
      res.set_header("Content-Encoding", CodingName(coding));
      Count([](FakeModelCounters& c) { ++c.compressed; });
    }
    if (compress) res.set_header("Vary", "Accept-Encoding");
    auto shared = std::make_shared<std::string>(std::move(body));
    res.set_content_provider(shared->size(), content_type,
                             [shared](size_t offset, size_t length, httplib::DataSink& sink) {
                               return sink.write(shared->data() + offset, length);
                             });
  }

  // SendError answers in the API's error schema. `openai_type` defaults to
  // invalid_request_error below 500 and server_error from 500.
  void SendError(Api api, const httplib::Request& req, httplib::Response& res, int status,
                 const std::string& message, std::string openai_type = "",
                 const Json& code = nullptr, const std::string& param = "") {
    std::string body;
    if (IsOpenAi(api)) {
      if (openai_type.empty())
        openai_type = status < 500 ? "invalid_request_error" : "server_error";
      body = api::OpenAiError(message, openai_type, param, code);
    } else {
      body = api::AnthropicError(api::AnthropicErrorType(status), message);
    }
    SendBody(req, res, status, std::move(body), kJson, Knobs().compress);
  }

  void SendRequestError(Api api, const httplib::Request& req, httplib::Response& res,
                        const api::RequestError& e) {
    SendError(api, req, res, e.status, e.message, "", e.code.empty() ? Json() : Json(e.code),
              e.param);
  }

  // CheckAuth answers 401 (or Anthropic's 400 for a missing version) and
  // returns false when the request may not proceed. The key is never
  // echoed: a wrong key may be a real key sent to the wrong upstream.
  bool CheckAuth(Api api, const httplib::Request& req, httplib::Response& res) {
    const std::string& key = options_.api_key;
    if (IsOpenAi(api)) {
      if (key.empty()) return true;
      const std::string header = req.get_header_value("Authorization");
      constexpr std::string_view kBearer = "Bearer ";
      std::string_view given = header;
      const bool bearer = given.substr(0, kBearer.size()) == kBearer;
      if (bearer && KeyMatches(given.substr(kBearer.size()), key)) return true;
      Count([](FakeModelCounters& c) {
        ++c.bad_requests;
        ++c.unauthorized;
      });
      SendError(api, req, res, 401,
                "Incorrect API key provided. You can find your API key at "
                "https://platform.openai.com/account/api-keys.",
                "invalid_request_error", "invalid_api_key");
      return false;
    }
    if (!key.empty() && !KeyMatches(req.get_header_value("x-api-key"), key)) {
      Count([](FakeModelCounters& c) {
        ++c.bad_requests;
        ++c.unauthorized;
      });
      SendError(api, req, res, 401, "invalid x-api-key");
      return false;
    }
    if (options_.require_anthropic_version && req.get_header_value("anthropic-version").empty()) {
      Count([](FakeModelCounters& c) { ++c.bad_requests; });
      SendError(api, req, res, 400, "anthropic-version: header is required");
      return false;
    }
    return true;
  }

  // Served: whether `model` names what this server serves (an empty name,
  // possible only under a lenient schema, is the served model).
  bool Served(const std::string& model, const FakeModelKnobs& k) const {
    if (!strict_model_ || model.empty() || model == k.model) return true;
    return std::find(options_.accept_models.begin(), options_.accept_models.end(), model) !=
           options_.accept_models.end();
  }

  void SendModelNotFound(Api api, const httplib::Request& req, httplib::Response& res,
                         const std::string& model) {
    Count([](FakeModelCounters& c) { ++c.model_not_found; });
    if (IsOpenAi(api)) {
      SendError(api, req, res, 404,
                absl::StrCat("The model `", model,
                             "` does not exist or you do not have access to "
                             "it."),
                "invalid_request_error", "model_not_found");
    } else {
      SendError(api, req, res, 404, absl::StrCat("model: ", model));
    }
  }

  // FailingUser: whether `user` is one of the failing_user_rate users.
  static bool FailingUser(std::string_view user, double rate) {
    if (user.empty() || rate <= 0) return false;
    uint64_t h = 1469598103934665603ull;  // FNV-1a
    for (unsigned char ch : user) h = (h ^ ch) * 1099511628211ull;
    h ^= h >> 29;
    return static_cast<double>(h % 1000000) / 1e6 < rate;
  }

  api::Plan MakePlan(const FakeModelKnobs& k, const api::GenRequest& r, uint64_t seq,
                     std::string_view user = {}) {
    Rng rng(k.seed, seq);
    // Every draw happens in the same order whatever the knobs, so changing
    // one rate does not reshuffle the others.
    const double u_hang = rng.Uniform();
    const double u_error = rng.Uniform();
    const double u_refusal = rng.Uniform();
    const double u_invalid = rng.Uniform();
    const double u_wrong = rng.Uniform();
    const double u_para = rng.Uniform();
    const double u_trunc = rng.Uniform();
    const double z_total = rng.Normal();
    const double z_ttft = rng.Normal();
    api::Plan p;
    p.id_bits = rng.Next();
    p.id_bits2 = rng.Next();
    p.call_bits = rng.Next();
    Rng drift(rng.Next());
    p.hang = k.hang || u_hang < k.hang_rate;
    if (u_error < k.error_rate || FailingUser(user, k.failing_user_rate)) {
      p.status = 500;
    } else if (u_error < k.error_rate + k.rate_limit_rate) {
      p.status = 429;
    }
    p.total = Sample(k.latency, z_total);
    p.ttft = Sample(k.ttft, z_ttft);
    if (p.ttft > p.total) p.total = p.ttft;
    if (p.status != 200) return p;

    const int index = MatchCorpus(corpus_, r.last_user);
    const CorpusEntry* entry = index >= 0 ? &corpus_[index] : nullptr;
    const bool wrong = u_wrong < k.wrong_answer_rate;
    const bool para = u_para < k.paraphrase_rate;
    const bool trunc = u_trunc < k.truncation_rate;
    if (u_refusal < k.refusal_rate) {
      p.content = kRefusal;
      p.events.push_back("refusal");
    } else if (entry != nullptr && !entry->tool_name.empty() && !r.last_is_tool_result &&
               r.tool_names.count(entry->tool_name) &&
               (r.forced_tool.empty() || r.forced_tool == entry->tool_name)) {
      p.tool_call = true;
      p.tool_name = entry->tool_name;
      p.tool_arguments = entry->tool_arguments;
      if (wrong)
        p.tool_arguments = WrongJson(p.tool_arguments, drift), p.events.push_back("wrong_answer");
      if (para) p.tool_arguments = ReorderJson(p.tool_arguments), p.events.push_back("paraphrase");
      if (trunc)
        p.tool_arguments = Truncate(p.tool_arguments, drift), p.events.push_back("truncation");
      p.finish = api::Finish::kToolCall;
    } else if (r.json_mode) {
      const bool wrapped = entry == nullptr || entry->json_answer.empty();
      if (wrapped) {
        std::string text = entry != nullptr ? entry->answer : kFallbackAnswer;
        if (wrong) text = WrongAnswer(text, drift), p.events.push_back("wrong_answer");
        if (para) text = Paraphrase(text, drift), p.events.push_back("paraphrase");
        p.content = OJson{{"answer", text}}.dump();
      } else {
        p.content = entry->json_answer;
        if (wrong) p.content = WrongJson(p.content, drift), p.events.push_back("wrong_answer");
        if (para) p.content = ReorderJson(p.content), p.events.push_back("paraphrase");
      }
      if (u_invalid < k.invalid_json_rate)
        p.content = BreakJson(p.content, drift), p.events.push_back("invalid_json");
      if (trunc) p.content = Truncate(p.content, drift), p.events.push_back("truncation");
    } else {
      p.content = entry != nullptr ? entry->answer : kFallbackAnswer;
      if (wrong) p.content = WrongAnswer(p.content, drift), p.events.push_back("wrong_answer");
      if (para) p.content = Paraphrase(p.content, drift), p.events.push_back("paraphrase");
      if (trunc) p.content = Truncate(p.content, drift), p.events.push_back("truncation");
      if (k.shorten > 0) p.content = Shorten(p.content, k.shorten), p.events.push_back("shorten");
    }
    if (trunc) p.finish = api::Finish::kLength;
    if (!p.tool_call && !r.stop.empty()) {
      // The earliest stop sequence ends the answer (it is not included).
      size_t cut = std::string::npos;
      for (const std::string& s : r.stop) {
        const size_t at = s.empty() ? std::string::npos : p.content.find(s);
        if (at < cut) {
          cut = at;
          p.stop_sequence = s;
        }
      }
      if (cut != std::string::npos) {
        p.content.resize(cut);
        p.finish = api::Finish::kStopSequence;
        p.events.push_back("stop_sequence");
      }
    }
    if (!p.tool_call && r.max_tokens > 0 && CountTokens(p.content) > r.max_tokens) {
      p.content = TruncateToTokens(p.content, static_cast<int>(r.max_tokens));
      p.finish = api::Finish::kLength;
      p.events.push_back("max_tokens");
    }
    p.completion_tokens = p.tool_call ? CountTokens(p.tool_name) + CountTokens(p.tool_arguments) + 3
                                      : CountTokens(p.content);
    if (p.completion_tokens == 0) p.completion_tokens = 1;
    return p;
  }

  void CountRequest(Api api) {
    Count([api](FakeModelCounters& c) {
      ++c.requests;
      switch (api) {
        case Api::kChat:
          ++c.chat;
          break;
        case Api::kResponses:
          ++c.responses;
          break;
        case Api::kAnthropic:
          ++c.messages;
          break;
        case Api::kEmbeddings:
          ++c.embeddings;
          break;
      }
    });
  }

  // SendInjected answers an injected error, a hang cut by Stop(), or
  // nothing; returns false when the request was answered.
  bool SurviveInjections(Api api, const api::Plan& plan, const httplib::Request& req,
                         httplib::Response& res) {
    if (plan.hang && !HangUntilReleased()) {
      SendError(api, req, res, 503, "The server is shutting down.");
      return false;
    }
    if (plan.status == 500) {
      Count([](FakeModelCounters& c) { ++c.errors_injected; });
      if (IsOpenAi(api)) {
        SendError(api, req, res, 500,
                  "The server had an error while processing your request. "
                  "Sorry about that!");
      } else {
        SendError(api, req, res, 529, "Overloaded");
      }
      res.set_header("x-fake-model-events", "error");
      return false;
    }
    if (plan.status == 429) {
      Count([](FakeModelCounters& c) { ++c.rate_limited; });
      if (IsOpenAi(api)) {
        SendError(api, req, res, 429, "Rate limit reached for requests. Please try again in 1s.",
                  "requests", "rate_limit_exceeded");
      } else {
        SendError(api, req, res, 429,
                  "This request would exceed your organization's rate limit. "
                  "Please try again in 1s.");
      }
      res.set_header("retry-after", "1");
      res.set_header("x-fake-model-events", "rate_limit");
      return false;
    }
    return true;
  }

  void SetAnswerHeaders(Api api, const api::Plan& plan, httplib::Response& res) {
    if (api == Api::kAnthropic) {
      res.set_header("request-id", "req_01" + api::RequestId(Api::kAnthropic, plan).substr(6));
    } else {
      res.set_header("x-request-id", api == Api::kChat ? api::RequestId(Api::kChat, plan)
                                                       : api::RequestId(Api::kEmbeddings, plan));
      res.set_header("openai-processing-ms", absl::StrCat(absl::ToInt64Milliseconds(plan.total)));
    }
    if (!plan.events.empty())
      res.set_header("x-fake-model-events", absl::StrJoin(plan.events, ","));
  }

  void HandleGenerate(Api api, const httplib::Request& req, httplib::Response& res) {
    const uint64_t seq = next_seq_.fetch_add(1);
    CountRequest(api);
    if (!CheckAuth(api, req, res)) return;
    api::GenRequest r;
    api::RequestError error;
    const bool parsed = api == Api::kChat ? api::ParseChat(req.body, parse_, &r, &error)
                        : api == Api::kResponses
                            ? api::ParseResponses(req.body, parse_, &r, &error)
                            : api::ParseAnthropic(req.body, parse_, &r, &error);
    if (!parsed) {
      Count([](FakeModelCounters& c) { ++c.bad_requests; });
      SendRequestError(api, req, res, error);
      return;
    }
    FakeModelKnobs knobs = Knobs();
    if (!Served(r.model, knobs)) {
      SendModelNotFound(api, req, res, r.model);
      return;
    }
    api::Plan plan = MakePlan(knobs, r, seq, req.get_header_value("x-user-id"));
    if (!SurviveInjections(api, plan, req, res)) return;
    knobs = Knobs();  // a hang may have ended with new knobs
    api::AnswerContext context;
    context.model = knobs.model;
    context.created = absl::ToUnixSeconds(absl::Now());
    context.fingerprint =
        knobs.system_fingerprint.empty() ? fingerprint_ : knobs.system_fingerprint;
    {
      absl::MutexLock l(&mu_);
      if (seen_prompts_.size() >= kMaxSeenPrompts) seen_prompts_.clear();
      const uint64_t key = r.prompt_hash ^ static_cast<uint64_t>(api);
      if (!seen_prompts_.insert(key).second) context.cached_tokens = (r.prompt_tokens / 64) * 64;
      for (const std::string& e : plan.events) {
        if (e == "refusal") ++counters_.refusals;
        if (e == "invalid_json") ++counters_.invalid_json;
        if (e == "wrong_answer") ++counters_.wrong_answers;
        if (e == "paraphrase") ++counters_.paraphrased;
        if (e == "truncation" || e == "max_tokens") ++counters_.truncated;
      }
      if (plan.tool_call) ++counters_.tool_calls;
    }
    SetAnswerHeaders(api, plan, res);
    if (!r.stream) {
      if (!SleepUnlessStopping(plan.total)) {
        SendError(api, req, res, 503, "The server is shutting down.");
        return;
      }
      std::string body = api == Api::kChat        ? api::RenderChat(r, plan, context)
                         : api == Api::kResponses ? api::RenderResponses(r, plan, context)
                                                  : api::RenderAnthropic(r, plan, context);
      SendBody(req, res, 200, std::move(body), kJson, knobs.compress);
      Count([](FakeModelCounters& c) { ++c.served; });
      return;
    }
    api::Stream stream = api == Api::kChat        ? api::RenderChatStream(r, plan, context)
                         : api == Api::kResponses ? api::RenderResponsesStream(r, plan, context)
                                                  : api::RenderAnthropicStream(r, plan, context);
    StartStream(req, res, std::move(stream), plan, knobs.compress);
  }

  // StartStream writes the events from the provider, which runs on this
  // worker thread after the handler returns: the burst at the time to first
  // token, the rest spaced evenly over the remaining time. Compressed, every
  // write is flushed so each event can be decoded on arrival.
  void StartStream(const httplib::Request& req, httplib::Response& res, api::Stream stream,
                   const api::Plan& plan, bool compress) {
    struct State {
      api::Stream stream;
      std::unique_ptr<Compressor> compressor;
    };
    auto state = std::make_shared<State>();
    state->stream = std::move(stream);
    const Coding coding = compress ? NegotiateCoding(req.get_header_value("Accept-Encoding"),
                                                     /*stream=*/true)
                                   : Coding::kIdentity;
    state->compressor = NewCompressor(coding);
    if (state->compressor != nullptr) {
      res.set_header("Content-Encoding", CodingName(coding));
      Count([](FakeModelCounters& c) { ++c.compressed; });
    }
    if (compress) res.set_header("Vary", "Accept-Encoding");
    res.set_header("Cache-Control", "no-cache");
    const size_t n = state->stream.events.size();
    const size_t burst = std::min(std::max<size_t>(1, state->stream.burst), n);
    const absl::Duration ttft = plan.ttft;
    const int gaps = std::max<int>(1, static_cast<int>(n - burst));
    const absl::Duration gap = (plan.total - plan.ttft) / gaps;
    res.set_chunked_content_provider(
        "text/event-stream", [this, state, ttft, gap, burst](size_t, httplib::DataSink& sink) {
          const std::vector<std::string>& events = state->stream.events;
          if (!SleepUnlessStopping(ttft)) return false;
          for (size_t i = 0; i < events.size(); ++i) {
            if (i >= burst && !SleepUnlessStopping(gap)) return false;
            std::string out = events[i];
            if (state->compressor != nullptr) {
              out = state->compressor->Write(events[i], /*flush=*/true);
              if (i + 1 == events.size()) out += state->compressor->Finish();
            }
            if (!out.empty() && !sink.write(out.data(), out.size())) return false;
          }
          // Count before done(): the client sees the stream end only after
          // the terminating chunk, so it never reads a stale counter.
          Count([](FakeModelCounters& c) {
            ++c.served;
            ++c.streamed;
          });
          sink.done();
          return true;
        });
  }

  void HandleEmbeddings(const httplib::Request& req, httplib::Response& res) {
    const uint64_t seq = next_seq_.fetch_add(1);
    CountRequest(Api::kEmbeddings);
    if (!CheckAuth(Api::kEmbeddings, req, res)) return;
    api::EmbeddingRequest r;
    api::RequestError error;
    if (!api::ParseEmbeddings(req.body, parse_, &r, &error)) {
      Count([](FakeModelCounters& c) { ++c.bad_requests; });
      SendRequestError(Api::kEmbeddings, req, res, error);
      return;
    }
    FakeModelKnobs knobs = Knobs();
    if (!Served(r.model, knobs)) {
      SendModelNotFound(Api::kEmbeddings, req, res, r.model);
      return;
    }
    // The same draws as a generation request: hangs, errors and latency
    // apply; the answer itself depends only on (model, text).
    api::Plan plan = MakePlan(knobs, api::GenRequest{}, seq, req.get_header_value("x-user-id"));
    plan.events.clear();
    if (!SurviveInjections(Api::kEmbeddings, plan, req, res)) return;
    knobs = Knobs();
    SetAnswerHeaders(Api::kEmbeddings, plan, res);
    if (!SleepUnlessStopping(plan.total)) {
      SendError(Api::kEmbeddings, req, res, 503, "The server is shutting down.");
      return;
    }
    const int dims = r.dimensions > 0 ? r.dimensions : options_.embedding_dim;
    SendBody(req, res, 200, api::RenderEmbeddings(r, knobs.model, dims), kJson, knobs.compress);
    Count([](FakeModelCounters& c) { ++c.served; });
  }

  // GET /v1/models and /v1/models/{id}, in OpenAI's shape or Anthropic's.
  void HandleModels(const httplib::Request& req, httplib::Response& res, const std::string* id) {
    const bool anthropic = options_.api == ApiMode::kAnthropic ||
                           (options_.api == ApiMode::kBoth &&
                            (req.has_header("anthropic-version") || req.has_header("x-api-key")));
    const Api api = anthropic ? Api::kAnthropic : Api::kChat;
    if (!CheckAuth(api, req, res)) return;
    const FakeModelKnobs knobs = Knobs();
    std::vector<std::string> names = {knobs.model};
    for (const std::string& a : options_.accept_models) {
      if (std::find(names.begin(), names.end(), a) == names.end()) names.push_back(a);
    }
    auto render = [anthropic](const std::string& name) {
      if (anthropic) {
        return Json{{"type", "model"},
                    {"id", name},
                    {"display_name", name},
                    {"created_at", "2025-01-01T00:00:00Z"}};
      }
      return Json{{"id", name},
                  {"object", "model"},
                  {"created", 1700000000},
                  {"owned_by", "understudy-fake"}};
    };
    if (id != nullptr) {
      if (!Served(*id, knobs)) {
        SendModelNotFound(api, req, res, *id);
        return;
      }
      SendBody(req, res, 200, render(*id).dump(), kJson, knobs.compress);
      return;
    }
    Json data = Json::array();
    for (const std::string& name : names) data.push_back(render(name));
    Json body;
    if (anthropic) {
      body = {{"data", data},
              {"has_more", false},
              {"first_id", names.front()},
              {"last_id", names.back()}};
    } else {
      body = {{"object", "list"}, {"data", data}};
    }
    SendBody(req, res, 200, body.dump(), kJson, knobs.compress);
  }

  void HandleControl(const httplib::Request& req, httplib::Response& res) {
    Json j = Json::parse(req.body, nullptr, /*allow_exceptions=*/false);
    FakeModelKnobs base = Knobs();
    std::string body = req.body;
    auto fail = [&](const std::string& message) {
      SendBody(req, res, 400, api::OpenAiError(message, "invalid_request_error", "", nullptr),
               kJson, false);
    };
    if (j.is_object() && j.contains("reset")) {
      if (!j["reset"].is_boolean()) {
        fail("reset: must be true or false");
        return;
      }
      if (j["reset"].get<bool>()) base = initial_knobs_;
      j.erase("reset");
      body = j.dump();
    }
    absl::StatusOr<FakeModelKnobs> knobs = ApplyKnobsJson(base, body);
    if (!knobs.ok()) {
      fail(std::string(knobs.status().message()));
      return;
    }
    {
      absl::MutexLock l(&mu_);
      knobs_ = *knobs;
      ++counters_.control_updates;
    }
    SendBody(req, res, 200, KnobsToJson(*knobs), kJson, false);
  }

  void HandleStats(const httplib::Request& req, httplib::Response& res) {
    FakeModelCounters c;
    int hanging;
    {
      absl::MutexLock l(&mu_);
      c = counters_;
      hanging = hanging_;
    }
    Json j = {{"requests", c.requests},
              {"chat", c.chat},
              {"responses", c.responses},
              {"messages", c.messages},
              {"embeddings", c.embeddings},
              {"served", c.served},
              {"streamed", c.streamed},
              {"bad_requests", c.bad_requests},
              {"unauthorized", c.unauthorized},
              {"model_not_found", c.model_not_found},
              {"errors_injected", c.errors_injected},
              {"rate_limited", c.rate_limited},
              {"hangs", c.hangs},
              {"hanging_now", hanging},
              {"refusals", c.refusals},
              {"invalid_json", c.invalid_json},
              {"wrong_answers", c.wrong_answers},
              {"paraphrased", c.paraphrased},
              {"truncated", c.truncated},
              {"tool_calls", c.tool_calls},
              {"control_updates", c.control_updates},
              {"compressed", c.compressed}};
    SendBody(req, res, 200, j.dump(), kJson, false);
  }

  const FakeModelOptions options_;
  const FakeModelKnobs initial_knobs_;
  const std::vector<CorpusEntry> corpus_;
  bool strict_model_ = false;
  api::ParseOptions parse_;
  std::string fingerprint_;
  httplib::Server server_;
  std::thread listener_;
  int port_ = 0;
  std::atomic<uint64_t> next_seq_{0};

  std::mutex stop_mu_;
  bool stopped_ = false;  // guarded by stop_mu_

  mutable absl::Mutex mu_;
  FakeModelKnobs knobs_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  int hanging_ ABSL_GUARDED_BY(mu_) = 0;
  FakeModelCounters counters_ ABSL_GUARDED_BY(mu_);
  std::unordered_set<uint64_t> seen_prompts_ ABSL_GUARDED_BY(mu_);
};

absl::StatusOr<std::unique_ptr<FakeModelServer>> FakeModelServer::Start(
    const FakeModelOptions& options) {
  std::vector<CorpusEntry> corpus = options.corpus;
  if (corpus.empty()) {
    absl::StatusOr<std::vector<CorpusEntry>> loaded =
        options.corpus_path.empty() ? ParseCorpus(kBuiltinCorpus) : LoadCorpus(options.corpus_path);
    if (!loaded.ok()) return loaded.status();
    corpus = *std::move(loaded);
  }
  if (options.port < 0 || options.port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("fake model: port must be in 0..65535, got ", options.port));
  }
  if (options.embedding_dim < 1 || options.embedding_dim > kMaxEmbeddingDim) {
    return absl::InvalidArgumentError(absl::StrCat("fake model: embedding_dim must be in 1..",
                                                   kMaxEmbeddingDim, ", got ",
                                                   options.embedding_dim));
  }
  if (options.knobs.model.empty()) {
    return absl::InvalidArgumentError("fake model: the model name is empty");
  }
  for (const std::string& name : options.accept_models) {
    if (name.empty()) {
      return absl::InvalidArgumentError("fake model: accept_models has an empty name");
    }
  }
  auto impl = std::make_unique<Impl>(options, std::move(corpus));
  absl::Status bound = impl->Bind();
  if (!bound.ok()) return bound;
  return std::unique_ptr<FakeModelServer>(new FakeModelServer(std::move(impl)));
}

FakeModelServer::FakeModelServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
FakeModelServer::~FakeModelServer() { Stop(); }
void FakeModelServer::SetKnobs(const FakeModelKnobs& knobs) { impl_->SetKnobs(knobs); }
FakeModelKnobs FakeModelServer::Knobs() const { return impl_->Knobs(); }
FakeModelCounters FakeModelServer::Counters() const { return impl_->Counters(); }
int FakeModelServer::port() const { return impl_->port(); }
std::string FakeModelServer::url() const {
  return absl::StrCat("http://", impl_->host(), ":", impl_->port());
}
int FakeModelServer::HangingNow() const { return impl_->HangingNow(); }
bool FakeModelServer::WaitForHangingForTest(int n, absl::Duration timeout) const {
  return impl_->WaitForHanging(n, timeout);
}
void FakeModelServer::Stop() { impl_->Stop(); }

}  // namespace understudy::fake_model
