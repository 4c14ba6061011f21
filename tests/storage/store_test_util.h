// tests/storage/store_test_util.h: temp directories and record builders.
#ifndef UNDERSTUDY_TESTS_STORAGE_STORE_TEST_UTIL_H_
#define UNDERSTUDY_TESTS_STORAGE_STORE_TEST_UTIL_H_

#include <stdlib.h>

#include <filesystem>
#include <string>

#include <gtest/gtest.h>

#include "storage/store.h"

namespace understudy::storage {

// TempDir is a fresh directory removed at destruction.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = ::testing::TempDir() + "understudy-storage-XXXXXX";
    char* made = mkdtemp(tmpl.data());
    path_ = made != nullptr ? made : "";
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::permissions(path_, std::filesystem::perms::owner_all,
                                 std::filesystem::perm_options::add, ec);
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string Sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

inline v1::Exchange MakeExchange(const std::string& id, absl::Time start) {
  v1::Exchange e;
  e.set_request_id(id);
  e.set_arm(v1::ARM_PRODUCTION);
  e.set_source(v1::SOURCE_LIVE);
  e.set_start_unix_micros(absl::ToUnixMicros(start));
  e.set_status_code(200);
  e.mutable_request()->set_body("{\"q\":\"hello\"}");
  return e;
}

inline v1::Comparison MakeComparison(const std::string& id, absl::Time t, v1::Verdict v, v1::Arm arm) {
  v1::Comparison c;
  c.set_request_id(id);
  c.set_time_unix_micros(absl::ToUnixMicros(t));
  c.set_verdict(v);
  c.set_live_arm(arm);
  return c;
}

inline v1::Decision MakeDecision(const std::string& reason, absl::Time t, int64_t to_version) {
  v1::Decision d;
  d.set_time_unix_micros(absl::ToUnixMicros(t));
  d.set_action(v1::ACTION_PROMOTE);
  d.set_actor("judge");
  d.set_reason(reason);
  d.mutable_to()->set_version(to_version);
  return d;
}

}  // namespace understudy::storage

#endif  // UNDERSTUDY_TESTS_STORAGE_STORE_TEST_UTIL_H_
