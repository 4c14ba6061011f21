// storage/keys.h (internal)
// Key layout: every time-ordered key starts with the record's time as 8-byte
// big-endian milliseconds since the Unix epoch, so keys sort by time and a
// time window is a key range.
//   exchanges:   ms | request_id | 0x00 | source byte | arm byte
//   comparisons: ms | request_id
//   feedback:    ms | request_id | 0x00 | 8-byte big-endian sequence
//                (rewriting a record with the same request id and time keeps
//                its key: rocksdb_store.cc StoredFeedbackKey)
//   decisions:   ms | 8-byte big-endian sequence
//   health:      ms | 8-byte big-endian sequence
//   index:       kind byte | request_id | 0x00 | primary key
#ifndef UNDERSTUDY_STORAGE_KEYS_H_
#define UNDERSTUDY_STORAGE_KEYS_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/time/time.h"

namespace understudy::storage::keys {

inline constexpr size_t kTimeBytes = 8;

inline void AppendBigEndian64(std::string* out, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) out->push_back(static_cast<char>((v >> shift) & 0xff));
}

inline uint64_t ReadBigEndian64(std::string_view s) {
  uint64_t v = 0;
  for (size_t i = 0; i < 8 && i < s.size(); ++i) v = (v << 8) | static_cast<unsigned char>(s[i]);
  return v;
}

// MillisOf clamps times before the epoch to 0 and the infinite future to the
// largest key.
inline uint64_t MillisOf(absl::Time t) {
  if (t == absl::InfiniteFuture()) return UINT64_MAX;
  if (t <= absl::UnixEpoch()) return 0;
  return static_cast<uint64_t>(absl::ToUnixMillis(t));
}

inline uint64_t MillisOfMicros(int64_t micros) {
  return micros <= 0 ? 0 : static_cast<uint64_t>(micros / 1000);
}

// TimePrefix is the 8-byte key prefix for `ms`; scanning from it finds every
// record at or after that millisecond.
inline std::string TimePrefix(uint64_t ms) {
  std::string k;
  AppendBigEndian64(&k, ms);
  return k;
}

inline std::string ExchangeKey(uint64_t ms, std::string_view request_id, int source, int arm) {
  std::string k = TimePrefix(ms);
  k.append(request_id.data(), request_id.size());
  k.push_back('\0');
  k.push_back(static_cast<char>(source & 0xff));
  k.push_back(static_cast<char>(arm & 0xff));
  return k;
}

inline std::string ComparisonKey(uint64_t ms, std::string_view request_id) {
  std::string k = TimePrefix(ms);
  k.append(request_id.data(), request_id.size());
  return k;
}

inline std::string SequencedKey(uint64_t ms, std::string_view request_id, uint64_t seq) {
  std::string k = TimePrefix(ms);
  if (!request_id.empty()) {
    k.append(request_id.data(), request_id.size());
    k.push_back('\0');
  }
  AppendBigEndian64(&k, seq);
  return k;
}

inline uint64_t KeyMillis(std::string_view key) { return ReadBigEndian64(key.substr(0, 8)); }

// Trailing sequence of a decision/health/feedback key.
inline uint64_t KeySequence(std::string_view key) {
  return key.size() >= 16 ? ReadBigEndian64(key.substr(key.size() - 8)) : 0;
}

inline constexpr char kIndexExchange = 'x';
inline constexpr char kIndexComparison = 'c';
inline constexpr char kIndexFeedback = 'f';

inline std::string IndexPrefix(char kind, std::string_view request_id) {
  std::string k(1, kind);
  k.append(request_id.data(), request_id.size());
  k.push_back('\0');
  return k;
}

inline std::string IndexKey(char kind, std::string_view request_id, std::string_view primary) {
  std::string k = IndexPrefix(kind, request_id);
  k.append(primary.data(), primary.size());
  return k;
}

}  // namespace understudy::storage::keys

#endif  // UNDERSTUDY_STORAGE_KEYS_H_
