// The counter cache's pending invalidations (no Redis needed): a comment pending twice is
// sent once, the set never holds more than its bound, and waves leave in arrival order.
#include "redis/counter_cache.h"

#include <gtest/gtest.h>

namespace commentd::redis {
namespace {

Uuid id(uint8_t n) {
  Uuid u;
  u.bytes[15] = n;
  return u;
}

TEST(PendingInvalidations, ACommentPendingTwiceIsQueuedOnce) {
  PendingInvalidations p(100);
  auto a = p.add({id(1), id(2), id(1)});
  EXPECT_EQ(a.queued, 2u);
  EXPECT_EQ(a.coalesced, 1u);
  a = p.add({id(2), id(3)});
  EXPECT_EQ(a.queued, 1u);
  EXPECT_EQ(a.coalesced, 1u);
  EXPECT_EQ(p.size(), 3u);
  EXPECT_EQ(p.take(10), (std::vector<Uuid>{id(1), id(2), id(3)}));
  EXPECT_EQ(p.size(), 0u);
  // Taken, it is no longer pending: a later change queues it again.
  a = p.add({id(1)});
  EXPECT_EQ(a.queued, 1u);
  EXPECT_EQ(a.coalesced, 0u);
}

TEST(PendingInvalidations, BoundedAndTakenInWavesInArrivalOrder) {
  PendingInvalidations p(3);
  auto a = p.add({id(5), id(4), id(3), id(2), id(1)});
  EXPECT_EQ(a.queued, 3u);
  EXPECT_EQ(a.dropped, 2u);
  EXPECT_EQ(p.size(), 3u);
  a = p.add({id(5)});  // pending already: coalesced, not dropped
  EXPECT_EQ(a.coalesced, 1u);
  EXPECT_EQ(a.dropped, 0u);
  EXPECT_EQ(p.take(2), (std::vector<Uuid>{id(5), id(4)}));
  EXPECT_EQ(p.take(2), (std::vector<Uuid>{id(3)}));
  EXPECT_TRUE(p.take(2).empty());
}

}  // namespace
}  // namespace commentd::redis
