// fake-model: the OpenAI-compatible fake model server as a process.
//
//   fake-model --port 0 --model cand-1 --corpus
//   examples/fake-model/corpus.jsonl
//              --seed 7 --ttft-ms 150 --latency-ms 600 --error-rate 0.02
//
// Prints "listening on 127.0.0.1:PORT" (flushed) once it accepts requests,
// and exits 0 on SIGTERM or SIGINT. Bad flags or a bad corpus exit 2.
#include <pthread.h>
#include <signal.h>

#include <CLI/CLI.hpp>
#include <cstdio>
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
      "OpenAI-compatible fake model server for Understudy tests and demos"};
  fm::FakeModelOptions options;
  fm::FakeModelKnobs& k = options.knobs;
  double latency_ms = 0, ttft_ms = 0;
  std::string api_key_file;
  options.corpus_path = UNDERSTUDY_FAKE_MODEL_DEFAULT_CORPUS;
  app.add_option("--host", options.host, "address to bind")
      ->capture_default_str();
  app.add_option("--port", options.port, "port to bind; 0 picks a free one")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  app.add_option("--model", k.model, "model name in answers")
      ->capture_default_str();
  app.add_option("--corpus", options.corpus_path,
                 "question/answer corpus (JSON Lines)")
      ->capture_default_str();
  app.add_option("--seed", k.seed, "seed for every random decision")
      ->capture_default_str();
  app.add_option("--latency-ms", latency_ms, "median total answer time, ms")
      ->check(CLI::Range(0.0, 600000.0));
  app.add_option("--latency-sigma", k.latency.sigma,
                 "lognormal sigma of the total time (0 = fixed)")
      ->check(CLI::Range(0.0, 5.0));
  app.add_option("--ttft-ms", ttft_ms, "median time to first token, ms")
      ->check(CLI::Range(0.0, 600000.0));
  app.add_option("--ttft-sigma", k.ttft.sigma,
                 "lognormal sigma of the TTFT (0 = fixed)")
      ->check(CLI::Range(0.0, 5.0));
  const auto rate = CLI::Range(0.0, 1.0);
  app.add_option("--error-rate", k.error_rate, "fraction answered 500")
      ->check(rate);
  app.add_option("--rate-limit-rate", k.rate_limit_rate,
                 "fraction answered 429")
      ->check(rate);
  app.add_option("--hang-rate", k.hang_rate,
                 "fraction that hang until released or stopped")
      ->check(rate);
  app.add_flag("--hang", k.hang, "every request hangs");
  app.add_option("--refusal-rate", k.refusal_rate, "fraction refused")
      ->check(rate);
  app.add_option("--invalid-json-rate", k.invalid_json_rate,
                 "fraction of JSON-mode answers broken")
      ->check(rate);
  app.add_option("--wrong-answer-rate", k.wrong_answer_rate,
                 "fraction with a changed number or name")
      ->check(rate);
  app.add_option("--paraphrase-rate", k.paraphrase_rate, "fraction paraphrased")
      ->check(rate);
  app.add_option("--truncation-rate", k.truncation_rate,
                 "fraction cut short (finish_reason length)")
      ->check(rate);
  app.add_option("--api-key-file", api_key_file,
                 "require this bearer key (file contents)");
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
  k.latency.median =
      absl::Microseconds(static_cast<int64_t>(latency_ms * 1000));
  k.ttft.median = absl::Microseconds(static_cast<int64_t>(ttft_ms * 1000));
  if (!api_key_file.empty()) {
    std::ifstream in(api_key_file);
    if (!in) {
      std::cerr << "fake-model: cannot read --api-key-file " << api_key_file
                << "\n";
      return 2;
    }
    std::stringstream buffer;
    buffer << in.rdbuf();
    options.api_key = buffer.str();
    while (!options.api_key.empty() &&
           std::isspace(static_cast<unsigned char>(options.api_key.back()))) {
      options.api_key.pop_back();
    }
  }

  // Block the stop signals before any thread starts so only sigwait sees them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  absl::StatusOr<std::unique_ptr<fm::FakeModelServer>> server =
      fm::FakeModelServer::Start(options);
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
