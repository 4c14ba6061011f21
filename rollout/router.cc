#include "rollout/router.h"

#include <algorithm>

namespace understudy::rollout {

int32_t StickyBucket(std::string_view salt, std::string_view key) {
  uint64_t h = 1469598103934665603ULL;  // FNV-1a offset basis
  auto mix = [&h](unsigned char c) {
    h ^= c;
    h *= 1099511628211ULL;  // FNV prime
  };
  for (unsigned char c : salt) mix(c);
  mix(0);
  for (unsigned char c : key) mix(c);
  // fmix64 from MurmurHash3: FNV alone leaves low bits poorly mixed for
  // short keys that differ only in their last character.
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  return static_cast<int32_t>(h % kBucketCount);
}

Router::Router(std::string salt, int32_t weight_basis_points)
    : salt_(std::move(salt)), weight_(0) {
  SetWeightBasisPoints(weight_basis_points);
}

understudy::v1::Arm Router::Assign(std::string_view key) const {
  if (key.empty()) return understudy::v1::ARM_PRODUCTION;
  const int32_t weight = weight_.load(std::memory_order_relaxed);
  if (weight <= 0) return understudy::v1::ARM_PRODUCTION;
  if (weight >= kBucketCount) return understudy::v1::ARM_CANDIDATE;
  return StickyBucket(salt_, key) < weight ? understudy::v1::ARM_CANDIDATE
                                           : understudy::v1::ARM_PRODUCTION;
}

void Router::SetWeightBasisPoints(int32_t weight) {
  weight_.store(std::clamp<int32_t>(weight, 0, kBucketCount), std::memory_order_relaxed);
}

}  // namespace understudy::rollout
