// Sticky, monotone assignment (rollout/router.h) as the controller uses it.
#include <string>

#include <gtest/gtest.h>

#include "rollout/rollout.h"

namespace understudy::rollout {
namespace {

class RouterTest : public ::testing::Test {
 protected:
  Router router_{"gpt-4o->gpt-5-mini"};
};

// A user on the candidate at 1% stays there at 5%, 25% and 50%.
TEST_F(RouterTest, RaisingTheWeightKeepsEveryCandidateUserOnTheCandidate) {
  std::vector<std::string> on_candidate;
  router_.SetWeightBasisPoints(100);
  for (int i = 0; i < 20000; ++i) {
    std::string key = "user-" + std::to_string(i);
    if (router_.Assign(key) == understudy::v1::ARM_CANDIDATE) on_candidate.push_back(key);
  }
  EXPECT_NEAR(on_candidate.size(), 200, 60);
  for (int bps : {500, 2500, 5000}) {
    router_.SetWeightBasisPoints(bps);
    for (const std::string& key : on_candidate) {
      ASSERT_EQ(router_.Assign(key), understudy::v1::ARM_CANDIDATE) << key << " at " << bps;
    }
  }
}

// The same key gets the same arm every time at a fixed weight.
TEST_F(RouterTest, SameKeyGetsSameArm) {
  router_.SetWeightBasisPoints(2500);
  for (int i = 0; i < 1000; ++i) {
    std::string key = "k" + std::to_string(i);
    EXPECT_EQ(router_.Assign(key), router_.Assign(key));
  }
}

}  // namespace
}  // namespace understudy::rollout
