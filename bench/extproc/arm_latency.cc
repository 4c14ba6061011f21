// arm_latency: what the candidate arm adds to a request, through the same
// sidecar (issue #13's bench). Real processes as in the e2e tests: two fake
// models with fixed latency, `understudy serve` at a 50% canary, the
// Envoy-faithful driver. Production-arm requests take the headers-only
// route path; candidate-arm requests have their body reshaped (the
// candidate's model name, its own key: a BUFFERED body round trip on the
// route stream). Both arms' fakes answer in the same fixed time, so the
// difference is the sidecar's.
//
//   arm_latency [requests_per_kind=400]
//
// Prints p50/p99 per arm for JSON and SSE answers and the candidate /
// production ratios (baseline: the production arm, same run, same sidecar).
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/e2e/e2e_cluster.h"

namespace understudy::e2e {
namespace {

double Q(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(q * v.size()))];
}

int Main(int argc, char** argv) {
  const int n = argc > 1 ? std::atoi(argv[1]) : 400;
  Cluster c;
  FakeOptions fake;
  fake.latency_ms = 20;
  fake.ttft_ms = 5;
  if (absl::Status s = c.StartFakes(fake, fake); !s.ok()) {
    std::fprintf(stderr, "arm_latency: %s\n", s.ToString().c_str());
    return 1;
  }
  SidecarKnobs knobs;
  knobs.sample_rate = 0;  // no shadow calls: only the live arms
  knobs.rollout_yaml = R"(rollout:
  tick_interval: 1s
  stages:
    - {percent: 50, min_bake: 24h, min_samples: 1000000000}
    - {percent: 100})";
  if (absl::Status s = c.StartSidecar(knobs); !s.ok()) {
    std::fprintf(stderr, "arm_latency: %s\n", s.ToString().c_str());
    return 1;
  }
  std::printf("%-5s %-10s %7s %9s %9s\n", "body", "arm", "n", "p50 ms", "p99 ms");
  int errors = 0;
  for (bool sse : {false, true}) {
    std::vector<double> prod, cand;
    for (int i = 0; i < 2 * n + 40; ++i) {
      envoy_driver::HttpRequest req;
      req.headers = {{"content-type", "application/json"},
                     {"x-user-id", absl::StrCat("user-", i)}};
      req.body_chunks = {absl::StrCat(
          R"({"model":"gpt-4o","stream":)", sse ? "true" : "false",
          R"(,"messages":[{"role":"user","content":"What is the capital of France?"}]})")};
      absl::StatusOr<DriverResult> r = c.SendRequest(std::move(req));
      if (!r.ok() || r->status != 200) {
        ++errors;
        continue;
      }
      if (i < 40) continue;  // warm-up
      (r->cluster == "candidate" ? cand : prod).push_back(absl::ToDoubleMilliseconds(r->latency));
    }
    const char* kind = sse ? "SSE" : "JSON";
    std::printf("%-5s %-10s %7zu %9.2f %9.2f\n", kind, "production", prod.size(), Q(prod, 0.5),
                Q(prod, 0.99));
    std::printf("%-5s %-10s %7zu %9.2f %9.2f\n", kind, "candidate", cand.size(), Q(cand, 0.5),
                Q(cand, 0.99));
    std::printf("%-5s %-10s %7s %8.2fx %8.2fx\n", kind, "ratio", "",
                Q(prod, 0.5) > 0 ? Q(cand, 0.5) / Q(prod, 0.5) : 0,
                Q(prod, 0.99) > 0 ? Q(cand, 0.99) / Q(prod, 0.99) : 0);
  }
  std::printf("errors: %d\n", errors);
  return errors == 0 ? 0 : 1;
}

}  // namespace
}  // namespace understudy::e2e

int main(int argc, char** argv) { return understudy::e2e::Main(argc, argv); }
