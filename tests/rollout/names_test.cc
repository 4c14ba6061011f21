// The one name of each enum value (rollout.h): every value has its own,
// and the words metrics labels and reports use do not change.
#include <set>
#include <string>

#include <gtest/gtest.h>

#include "rollout/rollout.h"

namespace understudy::rollout {
namespace {

namespace v1 = ::understudy::v1;

TEST(NamesTest, EveryDecisionActionHasItsOwnName) {
  std::set<std::string> seen;
  for (int i = v1::DecisionAction_MIN; i <= v1::DecisionAction_MAX; ++i) {
    if (!v1::DecisionAction_IsValid(i) || i == v1::ACTION_UNSPECIFIED) continue;
    std::string name(DecisionActionName(static_cast<v1::DecisionAction>(i)));
    EXPECT_NE(name, "unspecified") << v1::DecisionAction_Name(i);
    EXPECT_TRUE(seen.insert(name).second) << name;
  }
  EXPECT_EQ(DecisionActionName(v1::ACTION_UNSPECIFIED), "unspecified");
  EXPECT_EQ(DecisionActionName(v1::ACTION_SET_WEIGHT), "set_weight");
  EXPECT_EQ(DecisionActionName(v1::ACTION_ROLLBACK), "rollback");
}

TEST(NamesTest, ArmAndSourceNamesAreTheLabelValues) {
  EXPECT_EQ(ArmName(v1::ARM_PRODUCTION), "production");
  EXPECT_EQ(ArmName(v1::ARM_CANDIDATE), "candidate");
  EXPECT_EQ(ArmName(v1::ARM_UNSPECIFIED), "unknown");
  std::set<std::string> seen;
  for (int i = v1::ExchangeSource_MIN; i <= v1::ExchangeSource_MAX; ++i) {
    if (!v1::ExchangeSource_IsValid(i)) continue;
    std::string name(ExchangeSourceName(static_cast<v1::ExchangeSource>(i)));
    EXPECT_TRUE(seen.insert(name).second) << name;
  }
  EXPECT_EQ(ExchangeSourceName(v1::SOURCE_LIVE), "live");
  EXPECT_EQ(ExchangeSourceName(v1::SOURCE_UNSPECIFIED), "unknown");
}

}  // namespace
}  // namespace understudy::rollout
