// storage/rocksdb_store.h (internal)
// Test hooks for the RocksDB-backed Store. Other modules use store.h.
#ifndef UNDERSTUDY_STORAGE_ROCKSDB_STORE_H_
#define UNDERSTUDY_STORAGE_ROCKSDB_STORE_H_

#include <memory>

#include "absl/status/statusor.h"
#include "rocksdb/env.h"
#include "storage/store.h"

namespace understudy::storage {

// OpenRocksStoreWithEnvForTest is OpenRocksStore with a custom RocksDB Env
// (tests inject file-system faults such as a full disk). `env` must outlive
// the store.
[[nodiscard]] absl::StatusOr<std::unique_ptr<Store>> OpenRocksStoreWithEnvForTest(
    const StorageConfig& config, Clock& clock, rocksdb::Env* env);

}  // namespace understudy::storage

#endif  // UNDERSTUDY_STORAGE_ROCKSDB_STORE_H_
