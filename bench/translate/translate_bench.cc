// translate_bench: SSE stream translation throughput, in MB of upstream
// bytes per second on one core, for a long realistic answer (one text block
// of ~20k small deltas of 1-4 words, with escapes and non-ASCII text) in both
// directions. The upstream bytes arrive in 4 KiB reads, so events are split
// across Feed calls as they are on the wire. Baseline in the same run: the
// SSE split alone (translate/sse_parser.h, no JSON), the floor any
// translation pays.
//
//   build/bench/translate/translate_bench
//   build/bench/translate/translate_bench --benchmark_filter=AnthropicToOpenAI
#include <benchmark/benchmark.h>

#include <cstdio>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "translate/sse_parser.h"
#include "translate/translate.h"

namespace understudy::translate {
namespace {

constexpr int kDeltas = 20000;
constexpr size_t kReadSize = 4096;

// Delta texts as JSON string contents (escaped): mostly words, some
// punctuation, newlines, quotes and non-ASCII.
std::vector<std::string> DeltaTexts() {
  static const char* kWords[] = {
      "the",      "model",   "answer",      "request",      "latency",
      "Paris",    "capital", "river",       "city",         "people",
      "about",    "which",   "is",          "are",          "in",
      "for",      "with",    "and",         "not",          "service",
      "deploy",   "token",   "output",      "input",        "cost",
      "customer", "refund",  "order",       "policy",       "days",
      "return",   "account", "caf\xC3\xA9", "na\xC3\xAFve", "\xE6\x97\xA5\xE6\x9C\xAC",
      "42",       "3.14",    "`code`"};
  constexpr int kCount = sizeof(kWords) / sizeof(kWords[0]);
  std::mt19937 rng(1);
  std::vector<std::string> texts;
  for (int i = 0; i < kDeltas; ++i) {
    std::string t;
    const int words = 1 + static_cast<int>(rng() % 4);
    for (int w = 0; w < words; ++w) {
      t += ' ';
      t += kWords[rng() % kCount];
    }
    const int r = static_cast<int>(rng() % 20);
    if (r == 0) t += ".\\n\\n";
    if (r == 1) t += ", \\\"quoted\\\"";
    if (r == 2) t += ".";
    texts.push_back(std::move(t));
  }
  return texts;
}

std::string AnthropicStream() {
  std::string s =
      "event: message_start\n"
      "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_01XFDUDYJgAACzvnptvVoYEL\","
      "\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":\"claude-sonnet-4-5\","
      "\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":472,"
      "\"output_tokens\":2}}}\n\n"
      "event: content_block_start\n"
      "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\","
      "\"text\":\"\"}}\n\n"
      "event: ping\ndata: {\"type\": \"ping\"}\n\n";
  for (const std::string& t : DeltaTexts()) {
    s += "event: content_block_delta\n"
         "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\","
         "\"text\":\"";
    s += t;
    s += "\"}}\n\n";
  }
  s += "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
       "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"
       "\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":41000}}\n\n"
       "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
  return s;
}

std::string OpenAIStream() {
  const std::string head =
      "data: {\"id\":\"chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG\",\"object\":"
      "\"chat.completion.chunk\",\"created\":1741570283,\"model\":\"gpt-4o-2024-08-06\","
      "\"service_tier\":\"default\",\"system_fingerprint\":\"fp_eb9dce56a8\",\"choices\":[{"
      "\"index\":0,\"delta\":";
  const std::string tail = ",\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n\n";
  std::string s = head + "{\"role\":\"assistant\",\"content\":\"\",\"refusal\":null}" + tail;
  for (const std::string& t : DeltaTexts()) {
    s += head;
    s += "{\"content\":\"";
    s += t;
    s += "\"}";
    s += tail;
  }
  s += head + "{},\"logprobs\":null,\"finish_reason\":\"stop\"}],\"usage\":null}\n\n";
  s += "data: {\"id\":\"chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG\",\"object\":"
       "\"chat.completion.chunk\",\"created\":1741570283,\"model\":\"gpt-4o-2024-08-06\","
       "\"choices\":[],\"usage\":{\"prompt_tokens\":472,\"completion_tokens\":41000,"
       "\"total_tokens\":41472}}\n\ndata: [DONE]\n\n";
  return s;
}

void Translate(benchmark::State& state, const std::string& upstream, Provider from, Provider to) {
  StreamOptions options;
  options.include_usage = true;
  options.client_model = to == Provider::kOpenAIChat ? "gpt-4o" : "claude-sonnet-4-5";
  std::string out;
  out.reserve(upstream.size() * 2);
  for (auto _ : state) {
    out.clear();
    StreamTranslator t(from, to, options);
    for (size_t i = 0; i < upstream.size(); i += kReadSize) {
      if (!t.Feed(std::string_view(upstream).substr(i, kReadSize), &out).ok()) {
        state.SkipWithError("Feed failed");
        return;
      }
    }
    if (!t.Finish(&out).ok()) {
      state.SkipWithError("Finish failed");
      return;
    }
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * upstream.size()));
  state.counters["MB"] = benchmark::Counter(static_cast<double>(upstream.size()) / 1e6,
                                            benchmark::Counter::kIsIterationInvariantRate);
  state.counters["out/in"] = static_cast<double>(out.size()) / upstream.size();
}

void BM_AnthropicToOpenAI(benchmark::State& state) {
  static const std::string upstream = AnthropicStream();
  Translate(state, upstream, Provider::kAnthropicMessages, Provider::kOpenAIChat);
}
BENCHMARK(BM_AnthropicToOpenAI)->Unit(benchmark::kMillisecond);

void BM_OpenAIToAnthropic(benchmark::State& state) {
  static const std::string upstream = OpenAIStream();
  Translate(state, upstream, Provider::kOpenAIChat, Provider::kAnthropicMessages);
}
BENCHMARK(BM_OpenAIToAnthropic)->Unit(benchmark::kMillisecond);

// Baseline: only splitting the same bytes into events.
void SplitOnly(benchmark::State& state, const std::string& upstream) {
  size_t events = 0;
  for (auto _ : state) {
    internal::SseParser parser(1 << 20);
    auto count = [&](const internal::SseEvent& e) {
      events += e.data.size() > 0;
      return absl::OkStatus();
    };
    for (size_t i = 0; i < upstream.size(); i += kReadSize) {
      if (!parser.Feed(std::string_view(upstream).substr(i, kReadSize), count).ok()) {
        state.SkipWithError("Feed failed");
        return;
      }
    }
    if (!parser.Finish(count).ok()) state.SkipWithError("Finish failed");
    benchmark::DoNotOptimize(events);
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * upstream.size()));
  state.counters["MB"] = benchmark::Counter(static_cast<double>(upstream.size()) / 1e6,
                                            benchmark::Counter::kIsIterationInvariantRate);
}

void BM_SseSplitOnly_Anthropic(benchmark::State& state) {
  static const std::string upstream = AnthropicStream();
  SplitOnly(state, upstream);
}
BENCHMARK(BM_SseSplitOnly_Anthropic)->Unit(benchmark::kMillisecond);

void BM_SseSplitOnly_OpenAI(benchmark::State& state) {
  static const std::string upstream = OpenAIStream();
  SplitOnly(state, upstream);
}
BENCHMARK(BM_SseSplitOnly_OpenAI)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace understudy::translate

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  std::printf(
      "SSE translation of a ~20k-delta answer fed in 4 KiB reads; MB = upstream MB per CPU "
      "second (one core). Goal: >= 200 MB/s.\n");
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
