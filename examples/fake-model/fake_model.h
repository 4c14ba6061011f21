// examples/fake-model/fake_model.h
// A fake model server that speaks the providers' wire formats, for
// end-to-end tests, the Envoy driver, the quickstart and benches. It answers
// OpenAI Chat Completions, OpenAI Responses, OpenAI Embeddings and Anthropic
// Messages (JSON or SSE streaming, usage, tool calls, each provider's error
// schema) from a small question/answer corpus, with knobs for latency and
// time-to-first-token, injected 500/429 errors, hangs, refusals, invalid JSON
// and answer drift (paraphrase, truncation, wrong answer). Knobs change at
// runtime through SetKnobs() or the server's own HTTP endpoint, so a
// regression can be injected mid-run.
//
// Like a real provider it checks what it is sent: the model name (404
// model_not_found / not_found_error for a model it does not serve), the API
// key (401), Anthropic's anthropic-version header (400) and each API's
// required fields (400). See FakeModelOptions for what is on by default.
//
// Endpoints (which ones depend on FakeModelOptions::api):
//   POST /v1/chat/completions   OpenAI Chat Completions          (openai)
//   POST /v1/responses          OpenAI Responses                 (openai)
//   POST /v1/embeddings         OpenAI Embeddings                (openai)
//   POST /v1/messages           Anthropic Messages               (anthropic)
//   GET  /v1/models             the served model and its aliases (OpenAI's
//                               list, or Anthropic's when the request
//                               carries anthropic-version / x-api-key or
//                               the server is anthropic-only)
//   GET  /v1/models/{id}        one model; 404 if not served
//   GET  /control               the knobs as JSON
//   POST /control               partial JSON update of the knobs, e.g.
//                               {"error_rate":0.2,"latency_ms":300};
//                               {"reset":true} restores the start-up knobs;
//                               400 with a message naming the bad key
//   GET  /stats                 the counters as JSON
//   GET  /healthz               {"status":"ok"}
//
// Every random decision comes from a per-request generator seeded with
// (knobs.seed, request sequence number), so a run with one client is
// reproducible and a rate of 0 or 1 is exact.
//
// Example:
//   FakeModelOptions options;
//   options.corpus_path = "examples/fake-model/corpus.jsonl";
//   options.knobs.model = "cand-1";          // named: only cand-1 is served
//   options.accept_models = {"cand-1-2025"};  // ... and this alias
//   options.knobs.ttft = {absl::Milliseconds(200), 0.5};
//   ASSIGN_OR_RETURN(std::unique_ptr<FakeModelServer> server,
//                    FakeModelServer::Start(options));
//   // ... point a client at http://127.0.0.1:<server->port()> ...
//   FakeModelKnobs knobs = server->Knobs();
//   knobs.wrong_answer_rate = 0.3;   // inject a regression mid-run
//   server->SetKnobs(knobs);
//   server->Stop();
//
// Thread safety: every FakeModelServer method may be called concurrently.
#ifndef UNDERSTUDY_EXAMPLES_FAKE_MODEL_FAKE_MODEL_H_
#define UNDERSTUDY_EXAMPLES_FAKE_MODEL_FAKE_MODEL_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace understudy::fake_model {

// A latency distribution: lognormal with the given median and shape sigma,
// or exactly `median` when sigma is 0. Samples are capped at 60 s.
struct LatencyDistribution {
  absl::Duration median = absl::ZeroDuration();
  double sigma = 0.0;
};

// The behaviour of the fake model. Rates are probabilities in [0, 1].
// The model name a server answers as when the caller names none.
inline constexpr char kDefaultModelName[] = "fake-model-1";

struct FakeModelKnobs {
  // "model" in every answer, and the name the server serves (see
  // FakeModelOptions::model_check).
  std::string model = kDefaultModelName;
  uint64_t seed = 1;
  // Total time of an answer (a JSON answer is sent after it; a stream ends
  // after it). Time to first token of a stream; a TTFT above the total time
  // stretches the total to the TTFT.
  LatencyDistribution latency;
  LatencyDistribution ttft;
  double error_rate = 0.0;       // 500 server_error
  // Users alike in nothing: this fraction of users (by the x-user-id
  // header) get a 500 on every request, as when a user's prompts are always
  // too long. Which users is a hash of the id alone, so two servers with the
  // same rate fail the same users (an A/A test with clustered errors).
  double failing_user_rate = 0.0;
  double rate_limit_rate = 0.0;  // 429 rate_limit_exceeded (with retry-after)
  // Hang: accept the request and never answer, until Stop() or until both
  // `hang` and `hang_rate` are cleared (then it is answered normally).
  bool hang = false;
  double hang_rate = 0.0;
  double refusal_rate = 0.0;       // "I'm sorry, but I can't help with that."
  double invalid_json_rate = 0.0;  // breaks JSON-mode answers
  // Drift, applied to the corpus answer in this order:
  double wrong_answer_rate = 0.0;  // changes a number or a name
  double paraphrase_rate = 0.0;    // synonyms and sentence order, same facts
  double truncation_rate = 0.0;    // cut mid-answer, finish_reason "length"
  // Compress answers when the request's Accept-Encoding allows gzip, br or
  // zstd (JSON whole; SSE with a flush per event, preferring gzip).
  bool compress = false;
  // Silent model drift (docs/drift.md): `system_fingerprint` in OpenAI
  // answers ("" = derived from the model name, as before), and a fraction
  // of each plain-text answer cut off at a word boundary (0.3 = answers
  // 30% shorter; finish_reason stays "stop").
  std::string system_fingerprint;
  double shorten = 0.0;
};

// One corpus item. A line of corpus.jsonl is
//   {"id":"...","question":"...","answer":"...",
//    "json":{...optional JSON-mode answer...},
//    "tool_call":{"name":"...","arguments":{...}}   (optional)}
struct CorpusEntry {
  std::string id;
  std::string question;
  std::string answer;
  std::string json_answer;     // serialized JSON object; empty if none
  std::string tool_name;       // empty if the item has no tool call
  std::string tool_arguments;  // serialized JSON object
};

// ParseCorpus reads JSON Lines (blank lines and lines starting with '#' are
// skipped). InvalidArgument names the line number and the problem.
[[nodiscard]] absl::StatusOr<std::vector<CorpusEntry>> ParseCorpus(std::string_view jsonl);
// LoadCorpus reads and parses a file; NotFound if it cannot be read.
[[nodiscard]] absl::StatusOr<std::vector<CorpusEntry>> LoadCorpus(const std::string& path);

// KnobsToJson renders knobs in the /control format:
//   {"model":"fake-model-1","seed":1,"latency_ms":0,"latency_sigma":0,
//    "ttft_ms":0,"ttft_sigma":0,"error_rate":0,...,"hang":false,
//    "compress":false}
std::string KnobsToJson(const FakeModelKnobs& knobs);
// ApplyKnobsJson applies a partial JSON object (the /control format) on top
// of `base`. InvalidArgument on malformed JSON, unknown keys, wrong types or
// out-of-range values; the message names the key. `base` is never modified.
[[nodiscard]] absl::StatusOr<FakeModelKnobs> ApplyKnobsJson(const FakeModelKnobs& base,
                                                            std::string_view json);

// Which provider APIs a server speaks.
enum class ApiMode {
  kOpenAi,     // /v1/chat/completions, /v1/responses, /v1/embeddings
  kAnthropic,  // /v1/messages; every error in Anthropic's schema
  kBoth,       // all of them, routed by path
};

// Whether a request's "model" must be one the server serves.
enum class ModelCheck {
  // Strict when the caller named what it serves: knobs.model differs from
  // kDefaultModelName or accept_models is non-empty. Otherwise any model.
  kAuto,
  kStrict,  // only knobs.model and accept_models; others get a 404
  kOff,     // any model name is served
};

struct FakeModelOptions {
  std::string host = "127.0.0.1";
  int port = 0;  // 0 picks a free port; see FakeModelServer::port()
  // The corpus: `corpus` if non-empty, else the file at `corpus_path`, else a
  // tiny built-in corpus.
  std::vector<CorpusEntry> corpus;
  std::string corpus_path;
  FakeModelKnobs knobs;
  ApiMode api = ApiMode::kOpenAi;
  // More names the server answers to besides knobs.model (aliases, dated
  // snapshots). Answers always carry knobs.model.
  std::vector<std::string> accept_models;
  ModelCheck model_check = ModelCheck::kAuto;
  // When non-empty, OpenAI requests must carry "Authorization: Bearer
  // <api_key>" and Anthropic requests "x-api-key: <api_key>"; otherwise 401
  // (invalid_api_key / authentication_error). Never logged or echoed.
  std::string api_key;
  // Anthropic requests must carry an anthropic-version header (400 without),
  // with or without a key.
  bool require_anthropic_version = true;
  // Each API's required fields and allowed roles (400 when missing): chat
  // needs model; Anthropic model, max_tokens and user/assistant roles;
  // Responses model and input; embeddings model. Off: those may be missing.
  bool validate_schema = true;
  // Length of an embedding when the request has no "dimensions".
  int embedding_dim = 256;
  int worker_threads = 64;  // each hanging request holds one
  // Idle keep-alive connections are closed after this; Stop() may wait for
  // it when a client keeps an idle connection open.
  int keep_alive_timeout_sec = 1;
};

struct FakeModelCounters {
  int64_t requests = 0;         // model requests received (all POST /v1/... APIs)
  int64_t chat = 0;             // of which POST /v1/chat/completions
  int64_t responses = 0;        // of which POST /v1/responses
  int64_t messages = 0;         // of which POST /v1/messages (Anthropic)
  int64_t embeddings = 0;       // of which POST /v1/embeddings
  int64_t served = 0;           // 200 answers completed (JSON or full stream)
  int64_t streamed = 0;         // of which streams
  int64_t bad_requests = 0;     // 400 / 401
  int64_t unauthorized = 0;     // of which 401
  int64_t model_not_found = 0;  // 404 for a model the server does not serve
  int64_t errors_injected = 0;  // 500
  int64_t rate_limited = 0;     // 429
  int64_t hangs = 0;            // requests that hung
  int64_t refusals = 0;
  int64_t invalid_json = 0;
  int64_t wrong_answers = 0;
  int64_t paraphrased = 0;
  int64_t truncated = 0;  // by the truncation knob or by max_tokens
  int64_t tool_calls = 0;
  int64_t control_updates = 0;  // accepted POST /control
  int64_t compressed = 0;       // answers sent with a Content-Encoding
};

class FakeModelServer {
 public:
  // Start loads the corpus, binds host:port and starts serving on background
  // threads. InvalidArgument for a bad corpus or bad options, Unavailable if
  // the port cannot be bound.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<FakeModelServer>> Start(
      const FakeModelOptions& options);
  ~FakeModelServer();  // calls Stop()
  FakeModelServer(const FakeModelServer&) = delete;
  FakeModelServer& operator=(const FakeModelServer&) = delete;

  // SetKnobs replaces the knobs; requests that start afterwards use them.
  // Hanging requests are released when the new knobs do not hang.
  void SetKnobs(const FakeModelKnobs& knobs);
  FakeModelKnobs Knobs() const;
  FakeModelCounters Counters() const;
  int port() const;
  std::string url() const;  // "http://127.0.0.1:PORT"
  // HangingNow is the number of requests hanging at this moment.
  int HangingNow() const;
  // WaitForHangingForTest blocks until at least `n` requests hang or the
  // timeout passes; returns whether they do.
  bool WaitForHangingForTest(int n, absl::Duration timeout) const;

  // Stop stops accepting, wakes hanging and sleeping requests (a hanging
  // request gets a 503; a stream in progress is cut) and joins all threads.
  // Idempotent.
  void Stop();

 private:
  class Impl;
  explicit FakeModelServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace understudy::fake_model

#endif  // UNDERSTUDY_EXAMPLES_FAKE_MODEL_FAKE_MODEL_H_
