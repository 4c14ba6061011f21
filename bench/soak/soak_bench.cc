// soak_bench: the sidecar under steady load for a long time (default 10
// minutes): both arms live (a 50% canary), every request shadowed, feedback
// flowing, the judge ticking. Every few seconds it samples the sidecar
// process (RSS, open file descriptors, threads), the RocksDB directory's
// size and the pipeline's drop counters, then prints a table, checks that
// RSS and fds do not trend after warm-up (last third's median within ±10%
// of the middle third's) and that nothing was dropped, and writes an SVG
// chart. RocksDB's open table files are counted apart ("sst"): their number
// follows the database's size, which retention bounds in production but
// which only grows in ten minutes; storage caps them (max_open_files), and
// every other descriptor (sockets, pipes, logs) must stay flat.
//
//   soak_bench [seconds=600] [rps=40] [out.svg=soak.svg]
//
// The load comes through the Envoy-faithful driver, as in the e2e tests
// (tests/e2e/e2e_cluster.h), against the fake models.
#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "tests/e2e/e2e_cluster.h"

namespace understudy::e2e {
namespace {

struct Sample {
  double t = 0;            // seconds since start
  double rss_mb = 0;
  int fds = 0;             // open descriptors other than RocksDB table files
  int sst = 0;             // open RocksDB table files
  int threads = 0;
  double db_mb = 0;
  double drops = 0;        // exchange queue drops + mirror results dropped
  int64_t requests = 0;
};

double StatusField(int pid, const char* key) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key, 0) == 0) return std::atof(line.c_str() + std::strlen(key));
  }
  return 0;
}

// CountFds counts `pid`'s open descriptors: table files (*.sst) in `sst`,
// all others in `other`.
void CountFds(int pid, int* other, int* sst) {
  *other = *sst = 0;
  const std::string dir = absl::StrCat("/proc/", pid, "/fd");
  if (DIR* d = opendir(dir.c_str())) {
    while (const dirent* e = readdir(d)) {
      if (e->d_name[0] == '.') continue;
      char target[4096];
      const ssize_t n = readlink((dir + "/" + e->d_name).c_str(), target, sizeof(target) - 1);
      const std::string_view t(target, n > 0 ? static_cast<size_t>(n) : 0);
      (t.size() > 4 && t.substr(t.size() - 4) == ".sst" ? *sst : *other) += 1;
    }
    closedir(d);
  }
}

double DirMb(const std::string& dir) {
  std::error_code ec;
  uintmax_t total = 0;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) break;
    if (it->is_regular_file(ec)) total += it->file_size(ec);
  }
  return total / 1048576.0;
}

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

void WriteSvg(const std::string& path, const std::vector<Sample>& s) {
  const double w = 900, h = 360, pad = 50;
  const double tmax = s.empty() ? 1 : std::max(1.0, s.back().t);
  auto line = [&](auto get, double ymax, const char* color) {
    std::string pts;
    for (const Sample& x : s) {
      absl::StrAppendFormat(&pts, "%.1f,%.1f ", pad + (w - 2 * pad) * x.t / tmax,
                            h - pad - (h - 2 * pad) * get(x) / std::max(1e-9, ymax));
    }
    return absl::StrFormat("<polyline fill='none' stroke='%s' stroke-width='2' points='%s'/>\n",
                           color, pts);
  };
  double rss = 0, fds = 0, thr = 0, db = 0;
  for (const Sample& x : s) {
    rss = std::max(rss, x.rss_mb);
    fds = std::max<double>(fds, x.fds);
    thr = std::max<double>(thr, x.threads);
    db = std::max(db, x.db_mb);
  }
  std::ofstream out(path);
  out << absl::StrFormat("<svg xmlns='http://www.w3.org/2000/svg' width='%.0f' height='%.0f'>\n", w, h);
  out << "<rect width='100%' height='100%' fill='white'/>\n";
  out << absl::StrFormat("<text x='%.0f' y='20' font-family='sans-serif' font-size='14'>understudy "
                         "soak: each series scaled to its own maximum over %.0f s</text>\n", pad, tmax);
  out << line([](const Sample& x) { return x.rss_mb; }, rss, "#d62728");
  out << line([](const Sample& x) { return double(x.fds); }, fds, "#1f77b4");
  out << line([](const Sample& x) { return double(x.threads); }, thr, "#2ca02c");
  out << line([](const Sample& x) { return x.db_mb; }, db, "#9467bd");
  const char* labels[] = {"RSS (max %.0f MB)", "fds, sst apart (max %.0f)", "threads (max %.0f)",
                          "RocksDB (max %.1f MB)"};
  const char* colors[] = {"#d62728", "#1f77b4", "#2ca02c", "#9467bd"};
  const double maxes[] = {rss, fds, thr, db};
  for (int i = 0; i < 4; ++i) {
    out << absl::StrFormat("<text x='%.0f' y='%.0f' font-family='sans-serif' font-size='12' "
                           "fill='%s'>%s</text>\n",
                           pad + i * 200, h - 15, colors[i], absl::StrFormat(labels[i], maxes[i]));
  }
  out << "</svg>\n";
}

int Main(int argc, char** argv) {
  const int seconds = argc > 1 ? std::atoi(argv[1]) : 600;
  const int rps = argc > 2 ? std::atoi(argv[2]) : 40;
  const std::string svg = argc > 3 ? argv[3] : "soak.svg";
  Cluster c;
  FakeOptions fake;
  fake.latency_ms = 30;
  fake.ttft_ms = 5;
  if (absl::Status s = c.StartFakes(fake, fake); !s.ok()) {
    std::fprintf(stderr, "soak: %s\n", s.ToString().c_str());
    return 1;
  }
  SidecarKnobs knobs;
  knobs.sample_rate = 1.0;
  knobs.rollout_yaml = R"(rollout:
  tick_interval: 1s
  stages:
    - {percent: 50, min_bake: 1h, min_samples: 100000000}
    - {percent: 100})";
  if (absl::Status s = c.StartSidecar(knobs); !s.ok()) {
    std::fprintf(stderr, "soak: %s\n", s.ToString().c_str());
    return 1;
  }
  const int pid = c.SidecarPid();
  std::atomic<bool> stop{false};
  std::atomic<int64_t> sent{0}, failed{0};
  // Four clients share the rate; every tenth request also sends feedback.
  std::vector<std::thread> clients;
  for (int t = 0; t < 4; ++t) {
    clients.emplace_back([&, t] {
      const absl::Duration gap = absl::Seconds(4.0 / std::max(1, rps));
      absl::Time next = absl::Now();
      for (int64_t i = 0; !stop.load(); ++i) {
        absl::StatusOr<DriverResult> r = c.Send(absl::StrCat("user-", t, "-", i % 500));
        if (!r.ok() || r->status != 200) {
          failed.fetch_add(1);
        } else {
          sent.fetch_add(1);
          if (i % 10 == 0) {
            (void)c.SendFeedback(absl::StrCat(R"({"request_id":")", r->request_id,
                                              R"(","score":1})"));
          }
        }
        next += gap;
        absl::SleepFor(next - absl::Now());
      }
    });
  }
  std::vector<Sample> samples;
  const absl::Time start = absl::Now();
  std::printf("%8s %9s %6s %5s %8s %9s %7s %10s\n", "t (s)", "RSS (MB)", "fds", "sst", "threads",
              "db (MB)", "drops", "requests");
  while (absl::Now() - start < absl::Seconds(seconds)) {
    absl::SleepFor(absl::Seconds(5));
    Sample s;
    s.t = absl::ToDoubleSeconds(absl::Now() - start);
    s.rss_mb = StatusField(pid, "VmRSS:") / 1024.0;
    s.threads = static_cast<int>(StatusField(pid, "Threads:"));
    CountFds(pid, &s.fds, &s.sst);
    s.db_mb = DirMb(c.data_dir());
    const std::string m = c.Admin("GET", "/metrics").body;
    s.drops = std::max(0.0, MetricValue(m, "understudy_exchange_queue_drops_total", "")) +
              std::max(0.0, MetricValue(m, "understudy_mirror_results_dropped_total", ""));
    s.requests = sent.load();
    samples.push_back(s);
    std::printf("%8.0f %9.1f %6d %5d %8d %9.2f %7.0f %10lld\n", s.t, s.rss_mb, s.fds, s.sst,
                s.threads, s.db_mb, s.drops, static_cast<long long>(s.requests));
    std::fflush(stdout);
  }
  stop.store(true);
  for (std::thread& t : clients) t.join();
  WriteSvg(svg, samples);

  // After warm-up (the first third), RSS and fds must not trend: the
  // median of the last third within ±10% of the middle third's. (Single
  // samples swing more: memtable flushes for RSS, connections in flight for
  // fds; a leak shows as a trend.)
  std::vector<double> rss_mid, rss_last, fds_mid, fds_last;
  for (const Sample& s : samples) {
    if (s.t < seconds / 3.0) continue;
    const bool last = s.t >= 2 * seconds / 3.0;
    (last ? rss_last : rss_mid).push_back(s.rss_mb);
    (last ? fds_last : fds_mid).push_back(s.fds);
  }
  auto flat = [](const std::vector<double>& mid, const std::vector<double>& last) {
    const double a = Median(mid), b = Median(last);
    std::printf("  middle third median %.1f, last third median %.1f (%+.1f%%)\n", a, b,
                a > 0 ? 100 * (b - a) / a : 0);
    return a > 0 && std::abs(b - a) <= 0.1 * a;
  };
  std::printf("\nRSS (MB):\n");
  const bool rss_flat = flat(rss_mid, rss_last);
  std::printf("open fds (RocksDB table files apart):\n");
  const bool fds_flat = flat(fds_mid, fds_last);
  const double drops = samples.empty() ? 0 : samples.back().drops;
  std::printf("\nsent %lld requests (%lld failed) in %d s; RSS %s, fds %s, drops %.0f; chart: %s\n",
              static_cast<long long>(sent.load()), static_cast<long long>(failed.load()), seconds,
              rss_flat ? "flat (±10%)" : "NOT flat", fds_flat ? "flat (±10%)" : "NOT flat",
              drops, svg.c_str());
  return rss_flat && fds_flat && drops == 0 && failed.load() == 0 ? 0 : 1;
}

}  // namespace
}  // namespace understudy::e2e

int main(int argc, char** argv) { return understudy::e2e::Main(argc, argv); }
