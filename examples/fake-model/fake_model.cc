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
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "examples/fake-model/text_ops.h"

namespace understudy::fake_model {
namespace {

using Json = nlohmann::ordered_json;
using OJson = nlohmann::ordered_json;

constexpr char kFallbackAnswer[] =
    "I'm not certain about that. Could you rephrase the question or give me "
    "more detail?";
constexpr char kRefusal[] = "I'm sorry, but I can't help with that.";
constexpr size_t kMaxBodyBytes = 16 << 20;
constexpr size_t kMaxSeenPrompts = 100000;

const char kBuiltinCorpus[] =
    R"({"id":"builtin-capital","question":"What is the capital of France?","answer":"The capital of France is Paris.","json":{"country":"France","capital":"Paris"}})"
    "\n"
    R"({"id":"builtin-weather","question":"What is the weather in Paris?","answer":"It is 18 degrees Celsius and sunny in Paris.","tool_call":{"name":"get_weather","arguments":{"city":"Paris","unit":"celsius"}}})"
    "\n";

// What the client asked for, after validation.
struct ChatRequest {
  std::string model;
  bool stream = false;
  bool include_usage = false;
  bool json_mode = false;
  std::set<std::string>
      tool_names;           // offered tools (empty with tool_choice "none")
  std::string forced_tool;  // tool_choice {"type":"function",...}
  bool last_is_tool_result = false;
  std::string last_user;
  int prompt_tokens = 0;
  int64_t max_tokens = -1;
  size_t prompt_hash = 0;
};

// An OpenAI-style 400 reason.
absl::Status Invalid(const std::string& message) {
  return absl::InvalidArgumentError(message);
}

std::string ContentText(const Json& content) {
  if (content.is_string()) return content.get<std::string>();
  std::string out;
  if (content.is_array()) {
    for (const Json& part : content) {
      if (part.is_object() && part.contains("text") &&
          part["text"].is_string()) {
        if (!out.empty()) out += "\n";
        out += part["text"].get<std::string>();
      }
    }
  }
  return out;
}

absl::StatusOr<ChatRequest> ParseChatRequest(const std::string& body) {
  Json j = Json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    return Invalid(
        "We could not parse the JSON body of your request. (The body must be "
        "valid JSON.)");
  }
  if (!j.is_object()) return Invalid("The request body must be a JSON object.");
  ChatRequest r;
  if (j.contains("model")) {
    if (!j["model"].is_string()) return Invalid("'model' must be a string.");
    r.model = j["model"].get<std::string>();
  }
  if (!j.contains("messages"))
    return Invalid("'messages' is a required property.");
  const Json& messages = j["messages"];
  if (!messages.is_array() || messages.empty())
    return Invalid("'messages' must be a non-empty array.");
  static const std::set<std::string> kRoles = {
      "system", "developer", "user", "assistant", "tool", "function"};
  std::string prompt_text;
  for (size_t i = 0; i < messages.size(); ++i) {
    const Json& m = messages[i];
    if (!m.is_object())
      return Invalid(absl::StrCat("messages[", i, "]: must be an object."));
    if (!m.contains("role") || !m["role"].is_string() ||
        !kRoles.count(m["role"].get<std::string>())) {
      return Invalid(absl::StrCat(
          "messages[", i,
          "].role: must be one of system, developer, user, assistant, tool."));
    }
    const std::string role = m["role"].get<std::string>();
    Json content = m.contains("content") ? m["content"] : Json();
    if (!content.is_null() && !content.is_string() && !content.is_array()) {
      return Invalid(absl::StrCat(
          "messages[", i, "].content: must be a string or an array of parts."));
    }
    std::string text = ContentText(content);
    if (m.contains("tool_calls")) text += m["tool_calls"].dump();
    r.prompt_tokens += CountTokens(text) + 4;
    prompt_text += role + "\x1f" + text + "\x1e";
    if (role == "user") r.last_user = ContentText(content);
    r.last_is_tool_result = role == "tool" || role == "function";
  }
  r.prompt_tokens += 3;
  if (j.contains("stream") && !j["stream"].is_null()) {
    if (!j["stream"].is_boolean())
      return Invalid("'stream' must be a boolean.");
    r.stream = j["stream"].get<bool>();
  }
  if (j.contains("stream_options") && j["stream_options"].is_object()) {
    const Json& so = j["stream_options"];
    if (so.contains("include_usage")) {
      if (!so["include_usage"].is_boolean())
        return Invalid("'stream_options.include_usage' must be a boolean.");
      r.include_usage = so["include_usage"].get<bool>();
    }
  }
  if (j.contains("response_format") && !j["response_format"].is_null()) {
    const Json& rf = j["response_format"];
    if (!rf.is_object() || !rf.contains("type") || !rf["type"].is_string()) {
      return Invalid(
          "'response_format' must be an object with a string 'type'.");
    }
    const std::string type = rf["type"].get<std::string>();
    if (type != "text" && type != "json_object" && type != "json_schema") {
      return Invalid(
          "'response_format.type' must be one of text, json_object, "
          "json_schema.");
    }
    r.json_mode = type != "text";
  }
  for (const char* key : {"max_tokens", "max_completion_tokens"}) {
    if (j.contains(key) && !j[key].is_null()) {
      if (!j[key].is_number_integer() || j[key].get<int64_t>() < 1) {
        return Invalid(absl::StrCat("'", key, "' must be a positive integer."));
      }
      r.max_tokens = j[key].get<int64_t>();
    }
  }
  bool tool_choice_none = false;
  if (j.contains("tool_choice") && !j["tool_choice"].is_null()) {
    const Json& tc = j["tool_choice"];
    if (tc.is_string()) {
      tool_choice_none = tc.get<std::string>() == "none";
    } else if (tc.is_object() && tc.contains("function") &&
               tc["function"].is_object() && tc["function"].contains("name") &&
               tc["function"]["name"].is_string()) {
      r.forced_tool = tc["function"]["name"].get<std::string>();
    } else {
      return Invalid(
          "'tool_choice' must be \"none\", \"auto\", \"required\" or a "
          "function object.");
    }
  }
  if (j.contains("tools") && !j["tools"].is_null()) {
    const Json& tools = j["tools"];
    if (!tools.is_array()) return Invalid("'tools' must be an array.");
    for (size_t i = 0; i < tools.size(); ++i) {
      const Json& t = tools[i];
      if (!t.is_object() || !t.contains("function") ||
          !t["function"].is_object() || !t["function"].contains("name") ||
          !t["function"]["name"].is_string()) {
        return Invalid(
            absl::StrCat("tools[", i, "].function.name: is required."));
      }
      if (!tool_choice_none)
        r.tool_names.insert(t["function"]["name"].get<std::string>());
    }
    r.prompt_tokens += CountTokens(tools.dump());
  }
  r.prompt_hash = std::hash<std::string>{}(prompt_text);
  return r;
}

std::string ErrorBody(const std::string& message, const std::string& type,
                      const Json& code) {
  Json j;
  j["error"] = {
      {"message", message}, {"type", type}, {"param", nullptr}, {"code", code}};
  return j.dump();
}

absl::Duration Sample(const LatencyDistribution& d, double z) {
  if (d.median <= absl::ZeroDuration()) return absl::ZeroDuration();
  if (d.sigma <= 0) return d.median;
  double ms = absl::ToDoubleMilliseconds(d.median) * std::exp(d.sigma * z);
  return std::min(absl::Seconds(60),
                  absl::Microseconds(static_cast<int64_t>(ms * 1000)));
}

// Everything decided about one request before any byte is sent.
struct Plan {
  bool hang = false;
  int status = 200;  // 200, 429 or 500
  std::string id;
  std::string content;  // text answer (empty for a tool call)
  bool tool_call = false;
  std::string tool_name, tool_arguments, tool_call_id;
  std::string finish_reason = "stop";
  int completion_tokens = 0;
  absl::Duration total, ttft;
  std::vector<std::string>
      events;  // injected behaviours, for x-fake-model-events
};

}  // namespace

class FakeModelServer::Impl {
 public:
  Impl(const FakeModelOptions& options, std::vector<CorpusEntry> corpus)
      : options_(options),
        initial_knobs_(options.knobs),
        corpus_(std::move(corpus)),
        knobs_(options.knobs) {
    fingerprint_ = absl::StrFormat(
        "fp_%010x",
        std::hash<std::string>{}(options.knobs.model) & 0xffffffffffULL);
  }

  absl::Status Bind() {
    const int threads = std::max(2, options_.worker_threads);
    server_.new_task_queue = [threads] {
      return new httplib::ThreadPool(threads);
    };
    server_.set_keep_alive_timeout(
        std::max(0, options_.keep_alive_timeout_sec));
    server_.set_payload_max_length(kMaxBodyBytes);
    server_.set_keep_alive_max_count(1000);
    // httplib's default sets SO_REUSEPORT, which lets a second server bind a
    // port already in use and silently share its traffic. Refuse that.
    server_.set_socket_options([](socket_t sock) {
      int yes = 1;
      setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    });
    server_.Post("/v1/chat/completions",
                 [this](const httplib::Request& req, httplib::Response& res) {
                   HandleChat(req, res);
                 });
    server_.Get(
        "/v1/models", [this](const httplib::Request&, httplib::Response& res) {
          Json j = {{"object", "list"},
                    {"data", Json::array({{{"id", Knobs().model},
                                           {"object", "model"},
                                           {"created", 1700000000},
                                           {"owned_by", "understudy-fake"}}})}};
          res.set_content(j.dump(), "application/json");
        });
    server_.Get("/control",
                [this](const httplib::Request&, httplib::Response& res) {
                  res.set_content(KnobsToJson(Knobs()), "application/json");
                });
    server_.Post("/control",
                 [this](const httplib::Request& req, httplib::Response& res) {
                   HandleControl(req, res);
                 });
    server_.Get("/stats", [this](const httplib::Request&,
                                 httplib::Response& res) { HandleStats(res); });
    server_.Get("/healthz",
                [](const httplib::Request&, httplib::Response& res) {
                  res.set_content(R"({"status":"ok"})", "application/json");
                });
    server_.set_error_handler([](const httplib::Request& req,
                                 httplib::Response& res) {
      if (!res.body.empty()) return;
      if (res.status == 404) {
        res.set_content(ErrorBody(absl::StrCat("Unknown request URL: ",
                                               req.method, " ", req.path, "."),
                                  "invalid_request_error", "unknown_url"),
                        "application/json");
      } else if (res.status == 413) {
        res.set_content(ErrorBody("Request body too large.",
                                  "invalid_request_error", nullptr),
                        "application/json");
      }
    });
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
      port_ = server_.bind_to_port(options_.host, options_.port) ? options_.port
                                                                 : -1;
    }
    if (port_ <= 0) {
      return absl::UnavailableError(absl::StrCat(
          "fake model: cannot bind ", options_.host, ":", options_.port));
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
    auto enough = [this, n]()
                      ABSL_NO_THREAD_SAFETY_ANALYSIS { return hanging_ >= n; };
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
    if (d > absl::ZeroDuration())
      mu_.AwaitWithTimeout(absl::Condition(&stopping_), d);
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

  void SendError(httplib::Response& res, int status, const std::string& message,
                 const std::string& type, const Json& code) {
    res.status = status;
    res.set_content(ErrorBody(message, type, code), "application/json");
  }

  Plan MakePlan(const FakeModelKnobs& k, const ChatRequest& r, uint64_t seq) {
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
    Plan p;
    p.id = absl::StrFormat("chatcmpl-%016x%08x", rng.Next(),
                           rng.Next() & 0xffffffffULL);
    p.tool_call_id = absl::StrFormat("call_%016x", rng.Next());
    Rng drift(rng.Next());
    p.hang = k.hang || u_hang < k.hang_rate;
    if (u_error < k.error_rate) {
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
    } else if (entry != nullptr && !entry->tool_name.empty() &&
               !r.last_is_tool_result && r.tool_names.count(entry->tool_name) &&
               (r.forced_tool.empty() || r.forced_tool == entry->tool_name)) {
      p.tool_call = true;
      p.tool_name = entry->tool_name;
      p.tool_arguments = entry->tool_arguments;
      if (wrong)
        p.tool_arguments = WrongJson(p.tool_arguments, drift),
        p.events.push_back("wrong_answer");
      if (para)
        p.tool_arguments = ReorderJson(p.tool_arguments),
        p.events.push_back("paraphrase");
      if (trunc)
        p.tool_arguments = Truncate(p.tool_arguments, drift),
        p.events.push_back("truncation");
      p.finish_reason = trunc ? "length" : "tool_calls";
    } else if (r.json_mode) {
      const bool wrapped = entry == nullptr || entry->json_answer.empty();
      if (wrapped) {
        std::string text = entry != nullptr ? entry->answer : kFallbackAnswer;
        if (wrong)
          text = WrongAnswer(text, drift), p.events.push_back("wrong_answer");
        if (para)
          text = Paraphrase(text, drift), p.events.push_back("paraphrase");
        p.content = OJson{{"answer", text}}.dump();
      } else {
        p.content = entry->json_answer;
        if (wrong)
          p.content = WrongJson(p.content, drift),
          p.events.push_back("wrong_answer");
        if (para)
          p.content = ReorderJson(p.content), p.events.push_back("paraphrase");
      }
      if (u_invalid < k.invalid_json_rate)
        p.content = BreakJson(p.content, drift),
        p.events.push_back("invalid_json");
      if (trunc)
        p.content = Truncate(p.content, drift),
        p.events.push_back("truncation");
    } else {
      p.content = entry != nullptr ? entry->answer : kFallbackAnswer;
      if (wrong)
        p.content = WrongAnswer(p.content, drift),
        p.events.push_back("wrong_answer");
      if (para)
        p.content = Paraphrase(p.content, drift),
        p.events.push_back("paraphrase");
      if (trunc)
        p.content = Truncate(p.content, drift),
        p.events.push_back("truncation");
    }
    if (trunc) p.finish_reason = "length";
    if (!p.tool_call && r.max_tokens > 0 &&
        CountTokens(p.content) > r.max_tokens) {
      p.content = TruncateToTokens(p.content, static_cast<int>(r.max_tokens));
      p.finish_reason = "length";
      p.events.push_back("max_tokens");
    }
    p.completion_tokens = p.tool_call ? CountTokens(p.tool_name) +
                                            CountTokens(p.tool_arguments) + 3
                                      : CountTokens(p.content);
    if (p.completion_tokens == 0) p.completion_tokens = 1;
    return p;
  }

  Json Usage(const ChatRequest& r, const Plan& p, int cached) const {
    return Json{{"prompt_tokens", r.prompt_tokens},
                {"completion_tokens", p.completion_tokens},
                {"total_tokens", r.prompt_tokens + p.completion_tokens},
                {"prompt_tokens_details",
                 {{"cached_tokens", cached}, {"audio_tokens", 0}}},
                {"completion_tokens_details",
                 {{"reasoning_tokens", 0}, {"audio_tokens", 0}}}};
  }

  void HandleChat(const httplib::Request& req, httplib::Response& res) {
    const uint64_t seq = next_seq_.fetch_add(1);
    Count([](FakeModelCounters& c) { ++c.requests; });
    if (!options_.api_key.empty() &&
        req.get_header_value("Authorization") != "Bearer " + options_.api_key) {
      Count([](FakeModelCounters& c) { ++c.bad_requests; });
      SendError(res, 401, "Incorrect API key provided.",
                "invalid_request_error", "invalid_api_key");
      return;
    }
    absl::StatusOr<ChatRequest> parsed = ParseChatRequest(req.body);
    if (!parsed.ok()) {
      Count([](FakeModelCounters& c) { ++c.bad_requests; });
      SendError(res, 400, std::string(parsed.status().message()),
                "invalid_request_error", nullptr);
      return;
    }
    const ChatRequest& r = *parsed;
    FakeModelKnobs knobs = Knobs();
    Plan plan = MakePlan(knobs, r, seq);
    if (plan.hang) {
      if (!HangUntilReleased()) {
        SendError(res, 503, "The server is shutting down.", "server_error",
                  nullptr);
        return;
      }
    }
    if (plan.status == 500) {
      Count([](FakeModelCounters& c) { ++c.errors_injected; });
      SendError(res, 500,
                "The server had an error while processing your request. Sorry "
                "about that!",
                "server_error", nullptr);
      res.set_header("x-fake-model-events", "error");
      return;
    }
    if (plan.status == 429) {
      Count([](FakeModelCounters& c) { ++c.rate_limited; });
      SendError(res, 429,
                "Rate limit reached for requests. Please try again in 1s.",
                "requests", "rate_limit_exceeded");
      res.set_header("retry-after", "1");
      res.set_header("x-fake-model-events", "rate_limit");
      return;
    }
    int cached = 0;
    {
      absl::MutexLock l(&mu_);
      if (seen_prompts_.size() >= kMaxSeenPrompts) seen_prompts_.clear();
      if (!seen_prompts_.insert(r.prompt_hash).second)
        cached = (r.prompt_tokens / 64) * 64;
      for (const std::string& e : plan.events) {
        if (e == "refusal") ++counters_.refusals;
        if (e == "invalid_json") ++counters_.invalid_json;
        if (e == "wrong_answer") ++counters_.wrong_answers;
        if (e == "paraphrase") ++counters_.paraphrased;
        if (e == "truncation" || e == "max_tokens") ++counters_.truncated;
      }
      if (plan.tool_call) ++counters_.tool_calls;
    }
    const std::string model = knobs.model;
    const int64_t created = absl::ToUnixSeconds(absl::Now());
    res.set_header("x-request-id", plan.id);
    res.set_header("openai-processing-ms",
                   absl::StrCat(absl::ToInt64Milliseconds(plan.total)));
    if (!plan.events.empty())
      res.set_header("x-fake-model-events", absl::StrJoin(plan.events, ","));
    Json usage = Usage(r, plan, cached);
    if (!r.stream) {
      if (!SleepUnlessStopping(plan.total)) {
        SendError(res, 503, "The server is shutting down.", "server_error",
                  nullptr);
        return;
      }
      Json message = {{"role", "assistant"}, {"refusal", nullptr}};
      if (plan.tool_call) {
        message["content"] = nullptr;
        message["tool_calls"] =
            Json::array({{{"id", plan.tool_call_id},
                          {"type", "function"},
                          {"function",
                           {{"name", plan.tool_name},
                            {"arguments", plan.tool_arguments}}}}});
      } else {
        message["content"] = plan.content;
      }
      Json body = {
          {"id", plan.id},
          {"object", "chat.completion"},
          {"created", created},
          {"model", model},
          {"choices", Json::array({{{"index", 0},
                                    {"message", message},
                                    {"logprobs", nullptr},
                                    {"finish_reason", plan.finish_reason}}})},
          {"usage", usage},
          {"system_fingerprint", fingerprint_}};
      res.set_content(body.dump(), "application/json");
      Count([](FakeModelCounters& c) { ++c.served; });
      return;
    }
    // Streaming: the chunks are built now and written by the provider, which
    // runs on this worker thread after the handler returns.
    std::vector<std::string> events =
        BuildStream(r, plan, model, created, usage);
    auto state = std::make_shared<std::vector<std::string>>(std::move(events));
    res.set_header("Cache-Control", "no-cache");
    const absl::Duration ttft = plan.ttft;
    const int gaps = std::max<int>(1, static_cast<int>(state->size()) - 2);
    const absl::Duration gap = (plan.total - plan.ttft) / gaps;
    res.set_chunked_content_provider(
        "text/event-stream",
        [this, state, ttft, gap](size_t, httplib::DataSink& sink) {
          const std::vector<std::string>& chunks = *state;
          if (!SleepUnlessStopping(ttft)) return false;
          for (size_t i = 0; i < chunks.size(); ++i) {
            // The role chunk and the first delta go out together at TTFT;
            // later deltas and the final chunk are spaced evenly.
            if (i >= 2 && !SleepUnlessStopping(gap)) return false;
            if (!sink.write(chunks[i].data(), chunks[i].size())) return false;
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

  // BuildStream renders the SSE events: role chunk, deltas, final chunk with
  // finish_reason, optional usage chunk, [DONE]. The last element holds
  // everything after the final delta so it is written at once.
  std::vector<std::string> BuildStream(const ChatRequest& r, const Plan& plan,
                                       const std::string& model,
                                       int64_t created, const Json& usage) {
    auto chunk = [&](const Json& delta, const Json& finish) {
      Json c = {{"id", plan.id},
                {"object", "chat.completion.chunk"},
                {"created", created},
                {"model", model},
                {"system_fingerprint", fingerprint_},
                {"choices", Json::array({{{"index", 0},
                                          {"delta", delta},
                                          {"logprobs", nullptr},
                                          {"finish_reason", finish}}})}};
      if (r.include_usage) c["usage"] = nullptr;
      return "data: " + c.dump() + "\n\n";
    };
    std::vector<std::string> out;
    if (plan.tool_call) {
      out.push_back(chunk(
          {{"role", "assistant"},
           {"content", nullptr},
           {"tool_calls",
            Json::array({{{"index", 0},
                          {"id", plan.tool_call_id},
                          {"type", "function"},
                          {"function",
                           {{"name", plan.tool_name}, {"arguments", ""}}}}})}},
          nullptr));
      for (const std::string& piece : SplitEvery(plan.tool_arguments, 8)) {
        out.push_back(chunk(
            {{"tool_calls",
              Json::array(
                  {{{"index", 0}, {"function", {{"arguments", piece}}}}})}},
            nullptr));
      }
    } else {
      out.push_back(
          chunk({{"role", "assistant"}, {"content", ""}, {"refusal", nullptr}},
                nullptr));
      for (const std::string& piece : SplitForStream(plan.content)) {
        out.push_back(chunk({{"content", piece}}, nullptr));
      }
    }
    std::string tail = chunk(Json::object(), plan.finish_reason);
    if (r.include_usage) {
      Json u = {{"id", plan.id},
                {"object", "chat.completion.chunk"},
                {"created", created},
                {"model", model},
                {"system_fingerprint", fingerprint_},
                {"choices", Json::array()},
                {"usage", usage}};
      tail += "data: " + u.dump() + "\n\n";
    }
    tail += "data: [DONE]\n\n";
    out.push_back(std::move(tail));
    return out;
  }

  void HandleControl(const httplib::Request& req, httplib::Response& res) {
    Json j = Json::parse(req.body, nullptr, /*allow_exceptions=*/false);
    FakeModelKnobs base = Knobs();
    std::string body = req.body;
    if (j.is_object() && j.contains("reset")) {
      if (!j["reset"].is_boolean()) {
        SendError(res, 400, "reset: must be true or false",
                  "invalid_request_error", nullptr);
        return;
      }
      if (j["reset"].get<bool>()) base = initial_knobs_;
      j.erase("reset");
      body = j.dump();
    }
    absl::StatusOr<FakeModelKnobs> knobs = ApplyKnobsJson(base, body);
    if (!knobs.ok()) {
      SendError(res, 400, std::string(knobs.status().message()),
                "invalid_request_error", nullptr);
      return;
    }
    {
      absl::MutexLock l(&mu_);
      knobs_ = *knobs;
      ++counters_.control_updates;
    }
    res.set_content(KnobsToJson(*knobs), "application/json");
  }

  void HandleStats(httplib::Response& res) {
    FakeModelCounters c;
    int hanging;
    {
      absl::MutexLock l(&mu_);
      c = counters_;
      hanging = hanging_;
    }
    Json j = {{"requests", c.requests},
              {"served", c.served},
              {"streamed", c.streamed},
              {"bad_requests", c.bad_requests},
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
              {"control_updates", c.control_updates}};
    res.set_content(j.dump(), "application/json");
  }

  const FakeModelOptions options_;
  const FakeModelKnobs initial_knobs_;
  const std::vector<CorpusEntry> corpus_;
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
  std::unordered_set<size_t> seen_prompts_ ABSL_GUARDED_BY(mu_);
};

absl::StatusOr<std::unique_ptr<FakeModelServer>> FakeModelServer::Start(
    const FakeModelOptions& options) {
  std::vector<CorpusEntry> corpus = options.corpus;
  if (corpus.empty()) {
    absl::StatusOr<std::vector<CorpusEntry>> loaded =
        options.corpus_path.empty() ? ParseCorpus(kBuiltinCorpus)
                                    : LoadCorpus(options.corpus_path);
    if (!loaded.ok()) return loaded.status();
    corpus = *std::move(loaded);
  }
  if (options.port < 0 || options.port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat(
        "fake model: port must be in 0..65535, got ", options.port));
  }
  auto impl = std::make_unique<Impl>(options, std::move(corpus));
  absl::Status bound = impl->Bind();
  if (!bound.ok()) return bound;
  return std::unique_ptr<FakeModelServer>(new FakeModelServer(std::move(impl)));
}

FakeModelServer::FakeModelServer(std::unique_ptr<Impl> impl)
    : impl_(std::move(impl)) {}
FakeModelServer::~FakeModelServer() { Stop(); }
void FakeModelServer::SetKnobs(const FakeModelKnobs& knobs) {
  impl_->SetKnobs(knobs);
}
FakeModelKnobs FakeModelServer::Knobs() const { return impl_->Knobs(); }
FakeModelCounters FakeModelServer::Counters() const {
  return impl_->Counters();
}
int FakeModelServer::port() const { return impl_->port(); }
std::string FakeModelServer::url() const {
  return absl::StrCat("http://", impl_->host(), ":", impl_->port());
}
int FakeModelServer::HangingNow() const { return impl_->HangingNow(); }
bool FakeModelServer::WaitForHangingForTest(int n,
                                            absl::Duration timeout) const {
  return impl_->WaitForHanging(n, timeout);
}
void FakeModelServer::Stop() { impl_->Stop(); }

}  // namespace understudy::fake_model
