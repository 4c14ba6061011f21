// `understudy replay`: plays a JSONL traffic file through the Envoy-faithful
// driver (tests/support) against a running sidecar and real upstreams — a
// small data plane for demos and offline runs.
#include <CLI/CLI.hpp>
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "cli/commands.h"
#include "tools/envoy_driver/envoy_driver.h"

namespace understudy::cli {

namespace {

namespace ed = envoy_driver;

struct ReplayArgs {
  std::string traffic;
  std::string extproc = "127.0.0.1:50051";
  std::vector<std::string> upstreams;
  std::string setup = "two-filter";
  std::string sticky_header = "x-user-id";
  int concurrency = 1;
  std::string output = "text";
  double duration_s = 0;   // > 0: loop over the file for this long
  double rate = 0;         // > 0: requests per second (all workers together)
  int users = 0;           // > 0: each request gets a random user-<k>, k < users
  double progress_s = 0;   // > 0: print a summary line this often, not per request
  uint64_t seed = 1;
};

// ParseTrafficLine turns one JSONL line into a request. Fields: path,
// method, user (sent as the sticky header), headers {k: v}, body (JSON
// object, sent as JSON) or body_text, chunk_bytes (split the body).
absl::StatusOr<ed::HttpRequest> ParseTrafficLine(const std::string& line, int line_no,
                                                 const std::string& sticky_header) {
  nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat("line ", line_no, ": not a JSON object"));
  }
  ed::HttpRequest r;
  r.method = j.value("method", "POST");
  r.path = j.value("path", "/v1/chat/completions");
  if (j.contains("user") && j["user"].is_string()) {
    r.headers.emplace_back(sticky_header, j["user"].get<std::string>());
  }
  if (j.contains("headers") && j["headers"].is_object()) {
    for (auto& [k, v] : j["headers"].items()) {
      if (!v.is_string()) {
        return absl::InvalidArgumentError(
            absl::StrCat("line ", line_no, ": headers.", k, " must be a string"));
      }
      r.headers.emplace_back(k, v.get<std::string>());
    }
  }
  std::string body;
  if (j.contains("body")) {
    body = j["body"].dump();
    r.headers.emplace_back("content-type", "application/json");
  } else if (j.contains("body_text") && j["body_text"].is_string()) {
    body = j["body_text"].get<std::string>();
  }
  size_t chunk = j.value("chunk_bytes", 0);
  if (chunk == 0) chunk = body.size() ? body.size() : 1;
  for (size_t i = 0; i < body.size(); i += chunk) r.body_chunks.push_back(body.substr(i, chunk));
  return r;
}

int RunReplay(const ReplayArgs& args) {
  std::map<std::string, std::unique_ptr<ed::Upstream>> owned;
  std::map<std::string, ed::Upstream*> clusters;
  for (const std::string& u : args.upstreams) {
    size_t eq = u.find('=');
    if (eq == std::string::npos || eq == 0) {
      std::cerr << "understudy replay: --upstream must be NAME=URL, got \"" << u << "\"\n";
      return kExitUsage;
    }
    std::string name = u.substr(0, eq);
    owned[name] = ed::NewCurlUpstream(u.substr(eq + 1));
    clusters[name] = owned[name].get();
  }
  if (!clusters.count("production")) {
    std::cerr << "understudy replay: --upstream production=URL is required\n";
    return kExitUsage;
  }
  std::ifstream in(args.traffic);
  if (!in) {
    std::cerr << "understudy replay: cannot read " << args.traffic << "\n";
    return kExitUsage;
  }
  std::vector<ed::HttpRequest> requests;
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    absl::StatusOr<ed::HttpRequest> r = ParseTrafficLine(line, n, args.sticky_header);
    if (!r.ok()) {
      std::cerr << "understudy replay: " << args.traffic << ": " << r.status().message() << "\n";
      return kExitUsage;
    }
    requests.push_back(std::move(*r));
  }
  ed::FilterChain chain;
  if (args.setup == "two-filter") {
    chain = ed::FilterChain::TwoFilter();
  } else {
    chain = ed::FilterChain::SingleFilter();
  }
  ed::EnvoyDriver driver(grpc::CreateChannel(args.extproc, grpc::InsecureChannelCredentials()),
                         chain, clusters);

  std::mutex mu;
  std::map<std::string, int> per_cluster;
  int violations = 0, failures = 0;
  nlohmann::json rows = nlohmann::json::array();
  std::atomic<size_t> next{0};
  const bool looping = args.duration_s > 0;
  const bool quiet = args.progress_s > 0 || looping;
  const absl::Time start = absl::Now();
  const absl::Time deadline = start + absl::Seconds(args.duration_s);
  std::map<std::string, int> errors_per_cluster;  // status >= 500 or 0
  std::mt19937_64 rng(args.seed);
  auto worker = [&] {
    while (true) {
      const size_t n = next++;
      if (!looping && n >= requests.size()) return;
      if (looping && absl::Now() >= deadline) return;
      if (args.rate > 0) {  // pace: request n is due at start + n/rate
        absl::Time due = start + absl::Seconds(static_cast<double>(n) / args.rate);
        absl::SleepFor(due - absl::Now());
        if (looping && absl::Now() >= deadline) return;
      }
      const size_t i = n % requests.size();
      ed::HttpRequest request = requests[i];
      if (args.users > 0) {
        uint64_t k;
        {
          std::lock_guard<std::mutex> lock(mu);
          k = rng() % static_cast<uint64_t>(args.users);
        }
        bool replaced = false;
        for (auto& [key, v] : request.headers) {
          if (key == args.sticky_header) {
            v = absl::StrCat("user-", k);
            replaced = true;
          }
        }
        if (!replaced) request.headers.emplace_back(args.sticky_header, absl::StrCat("user-", k));
      }
      absl::StatusOr<ed::DriverResult> r = driver.Send(request);
      std::lock_guard<std::mutex> lock(mu);
      if (!r.ok()) {
        ++failures;
        std::fprintf(stderr, "request %zu: %s\n", n + 1, std::string(r.status().message()).c_str());
        continue;
      }
      per_cluster[r->cluster]++;
      if (r->status >= 500 || r->status == 0) errors_per_cluster[r->cluster]++;
      violations += static_cast<int>(r->violations.size());
      std::string user;
      for (const auto& [k, v] : request.headers) {
        if (k == args.sticky_header) user = v;
      }
      if (quiet) {
        for (const std::string& v : r->violations) std::printf("VIOLATION %s\n", v.c_str());
      } else if (args.output == "json") {
        rows.push_back({{"request_id", r->request_id}, {"user", user}, {"arm", r->cluster},
                        {"status", r->status},
                        {"latency_ms", absl::ToDoubleMilliseconds(r->latency)},
                        {"violations", r->violations}});
      } else {
        std::printf("%4zu  user=%-10s arm=%-10s status=%d  %6.1f ms  %s\n", n + 1, user.c_str(),
                    r->cluster.c_str(), r->status, absl::ToDoubleMilliseconds(r->latency),
                    r->request_id.c_str());
        for (const std::string& v : r->violations) std::printf("      VIOLATION %s\n", v.c_str());
      }
    }
  };
  std::atomic<bool> done{false};
  std::thread reporter;
  if (args.progress_s > 0) {
    reporter = std::thread([&] {
      std::map<std::string, int> last;
      while (!done.load()) {
        for (int i = 0; i < 10 && !done.load(); ++i) {
          absl::SleepFor(absl::Seconds(args.progress_s / 10));
        }
        std::lock_guard<std::mutex> lock(mu);
        std::string line = absl::StrFormat("[%5.1fs] traffic", absl::ToDoubleSeconds(absl::Now() - start));
        for (const auto& [cluster, count] : per_cluster) {
          absl::StrAppendFormat(&line, "  %s %+d (5xx %d)", cluster, count - last[cluster],
                                errors_per_cluster[cluster]);
        }
        last = per_cluster;
        std::printf("%s\n", line.c_str());
        std::fflush(stdout);
      }
    });
  }
  std::vector<std::thread> threads;
  for (int t = 0; t < std::max(1, args.concurrency); ++t) threads.emplace_back(worker);
  for (std::thread& t : threads) t.join();
  done = true;
  if (reporter.joinable()) reporter.join();

  int total = 0;
  for (const auto& [cluster, count] : per_cluster) total += count;
  if (args.output == "json") {
    nlohmann::json out = {{"requests", rows},
                          {"per_arm", per_cluster},
                          {"violations", violations},
                          {"failures", failures}};
    std::printf("%s\n", out.dump(2).c_str());
  } else {
    std::printf("served: ");
    for (const auto& [cluster, n] : per_cluster) {
      std::printf("%s=%d (%.1f%%)  ", cluster.c_str(), n, total ? 100.0 * n / total : 0.0);
    }
    std::printf("\nprotocol violations: %d, failed requests: %d\n", violations, failures);
  }
  return (violations == 0 && failures == 0) ? kExitOk : kExitFailure;
}

}  // namespace

void RegisterReplayCommand(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<ReplayArgs>();
  CLI::App* cmd = app.add_subcommand(
      "replay", "Play a JSONL traffic file through the sidecar as Envoy would");
  cmd->add_option("--traffic", args->traffic, "JSONL file, one request per line")->required();
  cmd->add_option("--extproc", args->extproc, "Sidecar ext_proc address (host:port or unix:PATH)");
  cmd->add_option("--upstream", args->upstreams, "NAME=URL, e.g. production=http://127.0.0.1:9001")
      ->required();
  cmd->add_option("--setup", args->setup, "Envoy filter set-up")
      ->check(CLI::IsMember({"two-filter", "single-filter"}));
  cmd->add_option("--sticky-header", args->sticky_header, "Header the `user` field is sent in");
  cmd->add_option("--concurrency", args->concurrency, "Requests in flight")
      ->check(CLI::Range(1, 1024));
  cmd->add_option("--duration", args->duration_s,
                  "Loop over the file for this many seconds (default: play it once)");
  cmd->add_option("--rate", args->rate, "Requests per second, all workers together (0 = unpaced)");
  cmd->add_option("--users", args->users,
                  "Give each request a random user from this many (user-0..), as the sticky key");
  cmd->add_option("--progress", args->progress_s,
                  "Print a per-arm summary line every this many seconds instead of each request");
  cmd->add_option("--seed", args->seed, "Seed for --users");
  cmd->add_option("-o,--output", args->output, "text or json")
      ->check(CLI::IsMember({"text", "json"}));
  cmd->callback([args, exit_code] { *exit_code = RunReplay(*args); });
}

}  // namespace understudy::cli
