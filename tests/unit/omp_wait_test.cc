#include "core/omp_wait.h"

#include <gtest/gtest.h>

namespace wbs {
namespace {

TEST(OmpWaitTest, IdleTwoCoreMachineSpins) {
  EXPECT_EQ(DecideOmpWait(0.0, 2, false), OmpWait::kSpin);
  EXPECT_EQ(DecideOmpWait(0.5, 2, false), OmpWait::kSpin);
}

TEST(OmpWaitTest, BusyTwoCoreMachineSleeps) {
  // One other busy process is enough to make a spinning partner thread hurt.
  EXPECT_EQ(DecideOmpWait(0.51, 2, false), OmpWait::kPassive);
  EXPECT_EQ(DecideOmpWait(1.0, 2, false), OmpWait::kPassive);
  EXPECT_EQ(DecideOmpWait(11.0, 2, false), OmpWait::kPassive);
}

TEST(OmpWaitTest, LargeMachineNeedsTwoFreeCpus) {
  EXPECT_EQ(DecideOmpWait(13.0, 16, false), OmpWait::kSpin);
  EXPECT_EQ(DecideOmpWait(14.5, 16, false), OmpWait::kSpin);
  EXPECT_EQ(DecideOmpWait(14.6, 16, false), OmpWait::kPassive);
  EXPECT_EQ(DecideOmpWait(0.4, 1, false), OmpWait::kSpin);
  EXPECT_EQ(DecideOmpWait(0.6, 1, false), OmpWait::kPassive);
}

TEST(OmpWaitTest, LongRunningOrUnknownLoadSleeps) {
  EXPECT_EQ(DecideOmpWait(0.0, 2, true), OmpWait::kPassive);
  EXPECT_EQ(DecideOmpWait(-1.0, 2, false), OmpWait::kPassive);
  EXPECT_EQ(DecideOmpWait(0.0, 0, false), OmpWait::kPassive);
}

}  // namespace
}  // namespace wbs
