// storage_bench: durable (fsynced) records/s through storage::Store with
// group commit vs raw RocksDB WriteBatches of the same records, same options,
// same batch size, in one run. Prints the ratio (goal >= 0.8).
//
//   storage_bench [--benchmark_min_time=2] [--batch=64]
#include <stdlib.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "absl/strings/str_cat.h"
#include "rocksdb/db.h"
#include "rocksdb/write_batch.h"
#include "storage/store.h"

namespace understudy::storage {
namespace {

int g_batch = 64;
constexpr size_t kBodyBytes = 2048;

std::string TempPath(const char* name) {
  std::string tmpl = (std::filesystem::temp_directory_path() / absl::StrCat("understudy-bench-", name, "-XXXXXX")).string();
  if (mkdtemp(tmpl.data()) == nullptr) std::abort();
  return tmpl;
}

// A realistic chat exchange with a ~2 KiB request body.
v1::Exchange MakeExchange(int64_t n, int64_t micros) {
  v1::Exchange e;
  e.set_request_id(absl::StrCat("0f1e2d3c-", n));
  e.set_arm(v1::ARM_PRODUCTION);
  e.set_source(v1::SOURCE_LIVE);
  e.set_start_unix_micros(micros);
  e.set_method("POST");
  e.set_path("/v1/chat/completions");
  e.set_status_code(200);
  auto* h = e.mutable_request()->add_headers();
  h->set_key("content-type");
  h->set_value("application/json");
  std::string body = R"({"model":"gpt","messages":[{"role":"user","content":")";
  while (body.size() < kBodyBytes - 4) body += "the quick brown fox jumps over the lazy dog ";
  body += "\"}]}";
  e.mutable_request()->set_body(body);
  e.mutable_response()->set_body(R"({"choices":[{"message":{"content":"ok"}}]})");
  return e;
}

void BM_StoreGroupCommit(benchmark::State& state, BodyMode mode) {
  StorageConfig config;
  config.path = TempPath("store");
  config.sync_bulk = true;
  config.retention_interval = absl::ZeroDuration();
  config.privacy.body_mode = mode;
  config.privacy.redact_json_paths = {"messages[*].content"};
  ManualClock clock;
  absl::StatusOr<std::unique_ptr<Store>> store = OpenRocksStore(config, clock);
  if (!store.ok()) {
    state.SkipWithError(std::string(store.status().message()).c_str());
    return;
  }
  int64_t n = 0;
  std::vector<v1::Exchange> proto;
  for (int i = 0; i < g_batch; ++i) proto.push_back(MakeExchange(i, 0));
  for (auto _ : state) {
    RecordBatch batch;
    for (int i = 0; i < g_batch; ++i, ++n) {
      v1::Exchange e = proto[i];
      e.set_request_id(absl::StrCat("0f1e2d3c-", n));
      e.set_start_unix_micros(1700000000000000 + n * 1000);
      batch.Add(std::move(e));
    }
    if (!(*store)->Write(std::move(batch)).ok()) {
      state.SkipWithError("write failed");
      break;
    }
  }
  state.SetItemsProcessed(state.iterations() * g_batch);
  store->reset();
  std::filesystem::remove_all(config.path);
}

// The same records, pre-serialized, with the same time-ordered keys, put
// straight into RocksDB with the same options (sync=true) and batch size.
void BM_RawRocksDbGroupCommit(benchmark::State& state) {
  std::string path = TempPath("raw");
  rocksdb::Options options;
  options.create_if_missing = true;
  options.keep_log_file_num = 3;
  rocksdb::DB* raw = nullptr;
  if (!rocksdb::DB::Open(options, path, &raw).ok()) {
    state.SkipWithError("open failed");
    return;
  }
  std::unique_ptr<rocksdb::DB> db(raw);
  const std::string value = MakeExchange(0, 1700000000000000).SerializeAsString();
  rocksdb::WriteOptions wo;
  wo.sync = true;
  int64_t n = 0;
  for (auto _ : state) {
    rocksdb::WriteBatch wb;
    for (int i = 0; i < g_batch; ++i, ++n) {
      std::string key;
      uint64_t ms = 1700000000000 + static_cast<uint64_t>(n);
      for (int s = 56; s >= 0; s -= 8) key.push_back(static_cast<char>((ms >> s) & 0xff));
      key += absl::StrCat("0f1e2d3c-", n);
      wb.Put(key, value);
    }
    if (!db->Write(wo, &wb).ok()) {
      state.SkipWithError("write failed");
      break;
    }
  }
  state.SetItemsProcessed(state.iterations() * g_batch);
  db->Close().PermitUncheckedError();
  db.reset();
  std::filesystem::remove_all(path);
}

// Captures the median items/s of each benchmark to print ratios at the end.
class RatioReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& r : runs) {
      if (r.run_type == Run::RT_Aggregate && r.aggregate_name != "median") continue;
      auto it = r.counters.find("items_per_second");
      if (it != r.counters.end()) rates_[r.run_name.function_name] = it->second.value;
    }
    ConsoleReporter::ReportRuns(runs);
  }
  std::map<std::string, double> rates_;
};

}  // namespace
}  // namespace understudy::storage

int main(int argc, char** argv) {
  using namespace understudy::storage;
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--batch=", 8) == 0) g_batch = std::atoi(argv[i] + 8);
  }
  benchmark::RegisterBenchmark("raw_rocksdb", BM_RawRocksDbGroupCommit)->UseRealTime()->Repetitions(3);
  benchmark::RegisterBenchmark("store_redacted", BM_StoreGroupCommit, BodyMode::kRedacted)
      ->UseRealTime()->Repetitions(3);
  benchmark::RegisterBenchmark("store_full", BM_StoreGroupCommit, BodyMode::kFull)
      ->UseRealTime()->Repetitions(3);
  benchmark::Initialize(&argc, argv);
  RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  double raw = reporter.rates_["raw_rocksdb"];
  std::printf("\nbatch %d records of ~%zu B, sync=true (durable)\n", g_batch, size_t{2048});
  for (const char* name : {"store_full", "store_redacted"}) {
    double r = reporter.rates_[name];
    std::printf("%-15s %10.0f records/s   ratio vs raw RocksDB %.2f (goal >= 0.80)\n", name, r,
                raw > 0 ? r / raw : 0.0);
  }
  std::printf("%-15s %10.0f records/s\n", "raw_rocksdb", raw);
  return 0;
}
