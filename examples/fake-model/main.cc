// fake-model: the fake model server (OpenAI and Anthropic APIs) as a process.
//
//   fake-model --port 0 --model cand-1 --corpus examples/fake-model/corpus.jsonl
//              --seed 7 --ttft-ms 150 --latency-ms 600 --error-rate 0.02
//
// Naming the model (--model or --accept-model) makes the server strict: a
// request for any other model gets a 404, as from a real provider;
// --any-model turns that off. --api-key / --api-key-env / --api-key-file
// require that key (never printed).
//
// Prints "listening on 127.0.0.1:PORT" (flushed) once it accepts requests,
// and exits 0 on SIGTERM or SIGINT. Bad flags or a bad corpus exit 2.
#include <pthread.h>
#include <signal.h>

#include <CLI/CLI.hpp>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "examples/fake-model/fake_model.h"

#ifndef UNDERSTUDY_FAKE_MODEL_DEFAULT_CORPUS
#define UNDERSTUDY_FAKE_MODEL_DEFAULT_CORPUS ""
#endif

namespace fm = understudy::fake_model;

int main(int argc, char** argv) {
  CLI::App app{
      "Fake model server (OpenAI and Anthropic APIs) for Understudy tests and "
      "demos"};
  fm::FakeModelOptions options;
  fm::FakeModelKnobs& k = options.knobs;
  double latency_ms = 0, ttft_ms = 0;
  std::string api_key_file, api_key_env, api_mode = "openai";
  bool any_model = false;
  options.corpus_path = UNDERSTUDY_FAKE_MODEL_DEFAULT_CORPUS;
  app.add_option("--host", options.host, "address to bind")->capture_default_str();
  app.add_option("--port", options.port, "port to bind; 0 picks a free one")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  CLI::Option* model_flag = app.add_option("--model", k.model,
                                           "the model served and named in answers; naming it "
                                           "makes requests for other models get a 404")
                                ->capture_default_str();
  CLI::Option* accept_flag = app.add_option("--accept-model", options.accept_models,
                                            "more model names to serve (aliases), comma-separated; "
                                            "also makes the model check strict")
                                 ->delimiter(',');
  app.add_flag("--any-model", any_model, "serve any model name (no 404 for an unknown model)")
      ->excludes(accept_flag);
  app.add_option("--api", api_mode,
                 "openai (/v1/chat/completions, /v1/responses, "
                 "/v1/embeddings), anthropic (/v1/messages) or both")
      ->check(CLI::IsMember({"openai", "anthropic", "both"}))
      ->capture_default_str();
  app.add_option("--corpus", options.corpus_path, "question/answer corpus (JSON Lines)")
      ->capture_default_str();
  app.add_option("--seed", k.seed, "seed for every random decision")->capture_default_str();
  app.add_option("--latency-ms", latency_ms, "median total answer time, ms")
      ->check(CLI::Range(0.0, 600000.0));
  app.add_option("--latency-sigma", k.latency.sigma,
                 "lognormal sigma of the total time (0 = fixed)")
      ->check(CLI::Range(0.0, 5.0));
  app.add_option("--ttft-ms", ttft_ms, "median time to first token, ms")
      ->check(CLI::Range(0.0, 600000.0));
  app.add_option("--ttft-sigma", k.ttft.sigma, "lognormal sigma of the TTFT (0 = fixed)")
      ->check(CLI::Range(0.0, 5.0));
  const auto rate = CLI::Range(0.0, 1.0);
  app.add_option("--error-rate", k.error_rate, "fraction answered 500")->check(rate);
  app.add_option("--failing-user-rate", k.failing_user_rate,
                 "fraction of users (x-user-id header) answered 500 every time")
      ->check(rate);
  app.add_option("--rate-limit-rate", k.rate_limit_rate, "fraction answered 429")->check(rate);
  app.add_option("--hang-rate", k.hang_rate, "fraction that hang until released or stopped")
      ->check(rate);
  app.add_flag("--hang", k.hang, "every request hangs");
  app.add_option("--refusal-rate", k.refusal_rate, "fraction refused")->check(rate);
  app.add_option("--invalid-json-rate", k.invalid_json_rate, "fraction of JSON-mode answers broken")
      ->check(rate);
  app.add_option("--wrong-answer-rate", k.wrong_answer_rate,
                 "fraction with a changed number or name")
      ->check(rate);
  app.add_option("--paraphrase-rate", k.paraphrase_rate, "fraction paraphrased")->check(rate);
  app.add_option("--truncation-rate", k.truncation_rate,
                 "fraction cut short (finish_reason length)")
      ->check(rate);
  app.add_option("--system-fingerprint", k.system_fingerprint,
                 "system_fingerprint in answers (default: derived from the model)");
  app.add_option("--shorten", k.shorten, "fraction of each text answer left out (drift)")
      ->check(CLI::Range(0.0, 0.95));
  CLI::Option* key_flag =
      app.add_option("--api-key", options.api_key,
                     "require this key (OpenAI: Authorization: Bearer; Anthropic: "
                     "x-api-key); prefer --api-key-env, argv is visible to other users");
  CLI::Option* key_env_flag = app.add_option("--api-key-env", api_key_env,
                                             "require the key held in this environment variable");
  CLI::Option* key_file_flag =
      app.add_option("--api-key-file", api_key_file, "require the key in this file");
  key_flag->excludes(key_env_flag)->excludes(key_file_flag);
  key_env_flag->excludes(key_file_flag);
  bool no_version_check = false;
  app.add_flag("--no-anthropic-version-check", no_version_check,
               "accept Anthropic requests without an anthropic-version "
               "header");
  bool lenient = false;
  app.add_flag("--lenient-schema", lenient,
               "accept requests missing a required field (model, Anthropic "
               "max_tokens, Responses input) or with an Anthropic role other "
               "than user/assistant");
  app.add_option("--embedding-dim", options.embedding_dim,
                 "embedding length when a request has no \"dimensions\"")
      ->check(CLI::Range(1, 8192))
      ->capture_default_str();
  app.add_flag("--compress", k.compress,
               "compress answers (gzip, br, zstd) when Accept-Encoding allows; "
               "also the \"compress\" knob of /control");
  app.add_option("--threads", options.worker_threads,
                 "worker threads (each hanging request holds one)")
      ->check(CLI::Range(2, 4096))
      ->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  if (any_model) {
    options.model_check = fm::ModelCheck::kOff;
  } else if (model_flag->count() > 0 || accept_flag->count() > 0) {
    options.model_check = fm::ModelCheck::kStrict;
  }
  options.api = api_mode == "anthropic" ? fm::ApiMode::kAnthropic
                : api_mode == "both"    ? fm::ApiMode::kBoth
                                        : fm::ApiMode::kOpenAi;
  options.require_anthropic_version = !no_version_check;
  options.validate_schema = !lenient;
  if (key_env_flag->count() > 0) {
    const char* value = std::getenv(api_key_env.c_str());
    if (value == nullptr || *value == '\0') {
      // Name the variable, never a value.
      std::cerr << "fake-model: --api-key-env " << api_key_env << " is unset or empty\n";
      return 2;
    }
    options.api_key = value;
  }
  if (key_flag->count() > 0 && options.api_key.empty()) {
    std::cerr << "fake-model: --api-key is empty\n";
    return 2;
  }
  k.latency.median = absl::Microseconds(static_cast<int64_t>(latency_ms * 1000));
  k.ttft.median = absl::Microseconds(static_cast<int64_t>(ttft_ms * 1000));
  if (!api_key_file.empty()) {
    std::ifstream in(api_key_file);
    if (!in) {
      std::cerr << "fake-model: cannot read --api-key-file " << api_key_file << "\n";
      return 2;
    }
    std::stringstream buffer;
    buffer << in.rdbuf();
    options.api_key = buffer.str();
    while (!options.api_key.empty() &&
           std::isspace(static_cast<unsigned char>(options.api_key.back()))) {
      options.api_key.pop_back();
    }
    if (options.api_key.empty()) {
      std::cerr << "fake-model: --api-key-file " << api_key_file << " is empty\n";
      return 2;
    }
  }

  // Block the stop signals before any thread starts so only sigwait sees them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  absl::StatusOr<std::unique_ptr<fm::FakeModelServer>> server = fm::FakeModelServer::Start(options);
  if (!server.ok()) {
    std::cerr << "fake-model: " << server.status().message() << "\n";
    return server.status().code() == absl::StatusCode::kInvalidArgument ||
                   server.status().code() == absl::StatusCode::kNotFound
               ? 2
               : 1;
  }
  std::printf("listening on %s:%d\n", options.host.c_str(), (*server)->port());
  std::fflush(stdout);
  int sig = 0;
  sigwait(&signals, &sig);
  (*server)->Stop();
  std::fprintf(stderr, "fake-model: stopped on signal %d\n", sig);
  return 0;
}
