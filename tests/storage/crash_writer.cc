// storage_crash_writer DIR FD: commits rollout transitions (state + decision
// in one synced batch) as fast as it can, plus unsynced bulk exchanges, and
// writes the 8-byte number of each acknowledged transition to FD. The crash
// test SIGKILLs it at a random moment.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "storage/store.h"

int main(int argc, char** argv) {
  using namespace understudy;
  if (argc != 3) {
    std::fprintf(stderr, "usage: storage_crash_writer DIR FD\n");
    return 2;
  }
  storage::StorageConfig config;
  config.path = argv[1];
  config.retention_interval = absl::ZeroDuration();
  const int fd = std::atoi(argv[2]);
  absl::StatusOr<std::unique_ptr<storage::Store>> store = storage::OpenRocksStore(config, RealClock::Default());
  if (!store.ok()) {
    std::fprintf(stderr, "open: %s\n", store.status().ToString().c_str());
    return 1;
  }
  // Continue numbering after what a previous (killed) run acknowledged.
  int64_t next = 0;
  absl::StatusOr<v1::RolloutState> prev = (*store)->LoadRolloutState();
  if (prev.ok()) next = prev->version() + 1;
  const int64_t base_micros = int64_t{1700000000} * 1000000;
  for (int64_t i = next;; ++i) {
    v1::RolloutState state;
    state.set_phase(v1::PHASE_CANARY);
    state.set_version(i);
    state.set_stage_index(static_cast<int32_t>(i % 5));
    state.set_weight_basis_points(static_cast<int32_t>((i * 37) % 10001));
    v1::Decision d;
    d.set_time_unix_micros(base_micros + i * 1000);
    d.set_action(v1::ACTION_SET_WEIGHT);
    d.set_actor("crash-writer");
    d.set_reason(absl::StrCat("transition ", i));
    *d.mutable_to() = state;
    d.mutable_to()->set_paused_reason(std::string(200, 'p'));  // a bigger record
    absl::Status s = (*store)->CommitTransition(state, d);
    if (!s.ok()) {
      std::fprintf(stderr, "commit %lld: %s\n", static_cast<long long>(i), s.ToString().c_str());
      return 1;
    }
    unsigned char buf[8];
    for (int b = 0; b < 8; ++b) buf[b] = static_cast<unsigned char>((i >> (56 - 8 * b)) & 0xff);
    if (write(fd, buf, 8) != 8) return 1;
    storage::RecordBatch batch;
    for (int k = 0; k < 4; ++k) {
      v1::Exchange e;
      e.set_request_id(absl::StrCat("x", i, "-", k));
      e.set_start_unix_micros(base_micros + i * 1000);
      e.mutable_request()->set_body(std::string(512, 'b'));
      batch.Add(std::move(e));
    }
    if (!(*store)->Write(std::move(batch)).ok()) return 1;
  }
}
