// bench/extproc_load: streams/s and p50/p99 per stream for
//   route:     the headers-only `understudy-route` stream (the production path)
//   two-filter: route stream + observability stream with bodies
// against (a) a no-op ext_proc server (same protos, same gRPC callback stack,
// answers CONTINUE) and (b) `understudy serve`, each as its own process,
// at concurrency 1, 16 and 64; prints the ratios sidecar/no-op.
//
// Usage: extproc_load --understudy PATH --config FILE [--seconds S] [--repeats N]
// (each cell: both servers alternately N times, medians reported)
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "envoy/service/ext_proc/v3/external_processor.grpc.pb.h"
#include "tools/envoy_driver/extproc_stream.h"

namespace {

namespace ep = envoy::service::ext_proc::v3;
using Mode = envoy::extensions::filters::http::ext_proc::v3::ProcessingMode;

// --- the no-op server ------------------------------------------------------

class NoopReactor final : public grpc::ServerBidiReactor<ep::ProcessingRequest, ep::ProcessingResponse> {
 public:
  NoopReactor() { StartRead(&in_); }
  void OnReadDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status::OK);
      return;
    }
    if (in_.observability_mode()) {
      StartRead(&in_);
      return;
    }
    out_.Clear();
    switch (in_.request_case()) {
      case ep::ProcessingRequest::kRequestHeaders: out_.mutable_request_headers(); break;
      case ep::ProcessingRequest::kResponseHeaders: out_.mutable_response_headers(); break;
      case ep::ProcessingRequest::kRequestBody: out_.mutable_request_body(); break;
      case ep::ProcessingRequest::kResponseBody: out_.mutable_response_body(); break;
      case ep::ProcessingRequest::kRequestTrailers: out_.mutable_request_trailers(); break;
      default: out_.mutable_response_trailers(); break;
    }
    StartWrite(&out_);
  }
  void OnWriteDone(bool ok) override { StartRead(&in_); }
  void OnDone() override { delete this; }

 private:
  ep::ProcessingRequest in_;
  ep::ProcessingResponse out_;
};

class NoopService final : public ep::ExternalProcessor::CallbackService {
  grpc::ServerBidiReactor<ep::ProcessingRequest, ep::ProcessingResponse>* Process(
      grpc::CallbackServerContext*) override {
    return new NoopReactor;
  }
};

int RunNoopServer() {
  NoopService service;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, 100000);
  builder.RegisterService(&service);
  auto server = builder.BuildAndStart();
  std::printf("noop listening on port %d\n", port);
  std::fflush(stdout);
  server->Wait();
  return 0;
}

// --- child processes ---------------------------------------------------------

struct Child {
  pid_t pid = -1;
  int port = 0;
};

// Spawn runs argv, reads its stdout until a line containing "port N".
Child Spawn(std::vector<std::string> argv) {
  int fds[2];
  if (pipe(fds) != 0) return {};
  Child c;
  c.pid = fork();
  if (c.pid == 0) {
    dup2(fds[1], STDOUT_FILENO);
    close(fds[0]);
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  close(fds[1]);
  std::string out;
  char buf[256];
  while (out.find('\n') == std::string::npos) {
    ssize_t n = read(fds[0], buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  close(fds[0]);
  size_t p = out.find("port ");
  if (p != std::string::npos) c.port = std::atoi(out.c_str() + p + 5);
  return c;
}

void Stop(const Child& c) {
  if (c.pid <= 0) return;
  kill(c.pid, SIGTERM);
  int status;
  waitpid(c.pid, &status, 0);
}

// --- load ------------------------------------------------------------------

ep::ProcessingRequest RequestHeaders(int i, bool observe) {
  ep::ProcessingRequest r;
  auto* map = r.mutable_request_headers()->mutable_headers();
  const std::pair<const char*, std::string> headers[] = {
      {":method", "POST"}, {":path", "/v1/chat/completions"}, {":authority", "llm"},
      {"content-type", "application/json"}, {"x-user-id", absl::StrCat("user-", i % 5000)},
      {"x-request-id", absl::StrCat("req-", i)}};
  for (const auto& [k, v] : headers) {
    auto* h = map->add_headers();
    h->set_key(k);
    h->set_raw_value(v);
  }
  if (observe) {
    r.set_observability_mode(true);
  } else {
    r.mutable_protocol_config()->set_request_body_mode(Mode::NONE);
    r.mutable_protocol_config()->set_response_body_mode(Mode::NONE);
    r.mutable_request_headers()->set_end_of_stream(true);
  }
  return r;
}

// One route stream: headers, wait for the reply, close. Returns success.
bool RouteStream(const std::shared_ptr<grpc::Channel>& ch, int i) {
  understudy::envoy_driver::ExtProcStream s(ch, {{"x-understudy-role", "route"}});
  s.Send(RequestHeaders(i, false));
  bool ok = s.Next(absl::Seconds(5)).ok();
  s.Close();
  return ok;
}

// One observability stream carrying a 1 KiB request and a 4-chunk answer.
bool ObserveStream(const std::shared_ptr<grpc::Channel>& ch, int i) {
  understudy::envoy_driver::ExtProcStream s(ch, {{"x-understudy-role", "observe"}});
  s.Send(RequestHeaders(i, true));
  auto body = [](bool request, std::string data, bool eos) {
    ep::ProcessingRequest r;
    r.set_observability_mode(true);
    auto* b = request ? r.mutable_request_body() : r.mutable_response_body();
    b->set_body(std::move(data));
    b->set_end_of_stream(eos);
    return r;
  };
  s.Send(body(true, std::string(1024, 'q'), true));
  ep::ProcessingRequest rh;
  rh.set_observability_mode(true);
  auto* st = rh.mutable_response_headers()->mutable_headers()->add_headers();
  st->set_key(":status");
  st->set_raw_value("200");
  s.Send(rh);
  for (int c = 0; c < 4; ++c) s.Send(body(false, std::string(256, 'a'), c == 3));
  return s.Close().ok();
}

struct Cell {
  double streams_per_s = 0;
  double p50_us = 0, p99_us = 0;
  int errors = 0;
};

// Median takes each field's median over repeated runs of one cell.
Cell Median(std::vector<Cell> cells) {
  auto med = [&](auto field) {
    std::vector<double> v;
    for (const Cell& c : cells) v.push_back(c.*field);
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  Cell m;
  m.streams_per_s = med(&Cell::streams_per_s);
  m.p50_us = med(&Cell::p50_us);
  m.p99_us = med(&Cell::p99_us);
  return m;
}

Cell RunCell(int port, bool two_filter, int concurrency, absl::Duration duration) {
  auto ch = grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials());
  std::atomic<int> counter{0}, errors{0};
  std::vector<std::vector<double>> lat(concurrency);
  const absl::Time end = absl::Now() + duration;
  std::vector<std::thread> threads;
  for (int t = 0; t < concurrency; ++t) {
    threads.emplace_back([&, t] {
      while (absl::Now() < end) {
        int i = counter++;
        absl::Time s = absl::Now();
        bool ok = RouteStream(ch, i);
        // The production path is the route stream; the observe stream runs
        // beside it in Envoy and is timed as part of the exchange.
        if (two_filter) ok = ObserveStream(ch, i) && ok;
        lat[t].push_back(absl::ToDoubleMicroseconds(absl::Now() - s));
        if (!ok) ++errors;
      }
    });
  }
  for (auto& th : threads) th.join();
  std::vector<double> all;
  for (auto& v : lat) all.insert(all.end(), v.begin(), v.end());
  std::sort(all.begin(), all.end());
  Cell c;
  c.errors = errors;
  if (all.empty()) return c;
  c.streams_per_s = all.size() / absl::ToDoubleSeconds(duration);
  c.p50_us = all[all.size() / 2];
  c.p99_us = all[std::min(all.size() - 1, all.size() * 99 / 100)];
  return c;
}

}  // namespace

int main(int argc, char** argv) {
  std::string understudy, config;
  double seconds = 2;
  int repeats = 3;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--noop-server") return RunNoopServer();
    if (a == "--understudy" && i + 1 < argc) understudy = argv[++i];
    else if (a == "--config" && i + 1 < argc) config = argv[++i];
    else if (a == "--seconds" && i + 1 < argc) seconds = std::atof(argv[++i]);
    else if (a == "--repeats" && i + 1 < argc) repeats = std::max(1, std::atoi(argv[++i]));
  }
  if (understudy.empty() || config.empty()) {
    std::fprintf(stderr, "usage: extproc_load --understudy PATH --config FILE [--seconds S] [--repeats N]\n");
    return 2;
  }
  char self[4096];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) return 1;
  self[n] = 0;
  Child noop = Spawn({self, "--noop-server"});
  char data_dir[] = "/tmp/extproc-load-XXXXXX";
  if (mkdtemp(data_dir) == nullptr) return 1;
  Child sidecar = Spawn({understudy, "serve", "--config", config, "--listen", "127.0.0.1:0",
                         "--admin", "127.0.0.1:0", "--data", std::string(data_dir) + "/data"});
  if (noop.port == 0 || sidecar.port == 0) {
    std::fprintf(stderr, "could not start servers (noop port %d, sidecar port %d)\n", noop.port,
                 sidecar.port);
    Stop(noop);
    Stop(sidecar);
    return 1;
  }
  const absl::Duration d = absl::Seconds(seconds);
  std::printf("%-10s %4s | %10s %9s %9s | %10s %9s %9s | %7s %7s\n", "scenario", "conc",
              "noop st/s", "p50 us", "p99 us", "sidecar/s", "p50 us", "p99 us", "st/s x",
              "p99 x");
  int failures = 0;
  for (bool two : {false, true}) {
    for (int c : {1, 16, 64}) {
      // Warm both, then measure side by side.
      RunCell(noop.port, two, c, absl::Milliseconds(200));
      RunCell(sidecar.port, two, c, absl::Milliseconds(200));
      // Alternate the two servers `repeats` times and take each one's
      // median: a single sub-millisecond p99 is at the mercy of one stall.
      std::vector<Cell> as, bs;
      for (int k = 0; k < repeats; ++k) {
        as.push_back(RunCell(noop.port, two, c, d));
        bs.push_back(RunCell(sidecar.port, two, c, d));
        failures += as.back().errors + bs.back().errors;
      }
      const Cell a = Median(as);
      const Cell b = Median(bs);
      std::printf("%-10s %4d | %10.0f %9.0f %9.0f | %10.0f %9.0f %9.0f | %7.2f %7.2f\n",
                  two ? "two-filter" : "route", c, a.streams_per_s, a.p50_us, a.p99_us,
                  b.streams_per_s, b.p50_us, b.p99_us,
                  a.streams_per_s > 0 ? b.streams_per_s / a.streams_per_s : 0,
                  a.p99_us > 0 ? b.p99_us / a.p99_us : 0);
      std::fflush(stdout);
    }
  }
  Stop(noop);
  Stop(sidecar);
  std::system((std::string("rm -rf ") + data_dir).c_str());
  std::printf("errors: %d\n", failures);
  return failures == 0 ? 0 : 1;
}
