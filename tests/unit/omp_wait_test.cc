#include "core/omp_wait.h"

#include <gtest/gtest.h>

namespace wbs {
namespace {

TEST(OmpWaitTest, IdleTwoCoreMachineSpins) {
  EXPECT_EQ(DecideOmpWait(0, 2, false), OmpWait::kSpin);
}

TEST(OmpWaitTest, AnyOtherRunnableTaskOnTwoCoresSleeps) {
  // One other runnable task is enough to make a spinning partner thread hurt.
  EXPECT_EQ(DecideOmpWait(1, 2, false), OmpWait::kPassive);
  EXPECT_EQ(DecideOmpWait(11, 2, false), OmpWait::kPassive);
}

TEST(OmpWaitTest, LargeMachineNeedsTwoFreeCpus) {
  EXPECT_EQ(DecideOmpWait(14, 16, false), OmpWait::kSpin);
  EXPECT_EQ(DecideOmpWait(15, 16, false), OmpWait::kPassive);
  EXPECT_EQ(DecideOmpWait(0, 1, false), OmpWait::kSpin);
  EXPECT_EQ(DecideOmpWait(1, 1, false), OmpWait::kPassive);
}

TEST(OmpWaitTest, LongRunningOrUnknownSleeps) {
  EXPECT_EQ(DecideOmpWait(0, 2, true), OmpWait::kPassive);
  EXPECT_EQ(DecideOmpWait(-1, 2, false), OmpWait::kPassive);
  EXPECT_EQ(DecideOmpWait(0, 0, false), OmpWait::kPassive);
}

TEST(OmpWaitTest, RealTimePrioritySpinsWhateverTheLoad) {
  // Under SCHED_FIFO / SCHED_RR ordinary tasks cannot preempt us.
  EXPECT_EQ(DecideOmpWait(0, 2, false, true), OmpWait::kSpin);
  EXPECT_EQ(DecideOmpWait(6, 2, false, true), OmpWait::kSpin);
  EXPECT_EQ(DecideOmpWait(-1, 2, false, true), OmpWait::kSpin);
  // Training still sleeps.
  EXPECT_EQ(DecideOmpWait(0, 2, true, true), OmpWait::kPassive);
  EXPECT_EQ(DecideOmpWait(6, 2, false, false), OmpWait::kPassive);
}

}  // namespace
}  // namespace wbs
