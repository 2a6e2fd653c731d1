// OwnerLeases' bookkeeping against a model of the store's conditional writes (one shared
// table of owner + expiry, by a test clock): what is asked, when, and what is held. The
// real conditional writes are tested on Cassandra (cql_store_cqltest.cpp, OwnerLeases*).
#include "workers/owner_leases.h"

#include <gtest/gtest.h>

#include <map>
#include <string>

namespace commentd::workers {
namespace {

using namespace std::chrono_literals;
using TimePoint = std::chrono::steady_clock::time_point;

struct Table {  // the store's reaction_owners, with TTLs
  TimePoint now{};
  std::map<Uuid, std::pair<std::string, TimePoint>> rows;
  int writes = 0;
  bool down = false;
};

OwnerLeases make(Table& t, const std::string& owner, std::chrono::seconds lease = 30s) {
  OwnerLeaseOptions o;
  o.lease = lease;
  o.write_margin = 7s;
  o.retry_other = 1s;
  o.now = [&t] { return t.now; };
  return OwnerLeases(
      [&t, owner](const std::vector<std::pair<Uuid, bool>>& asks, std::chrono::seconds ttl) -> Result<std::vector<bool>> {
        if (t.down) return Error(Errc::unavailable, "store away");
        std::vector<bool> out;
        for (auto& [c, renew] : asks) {
          ++t.writes;
          auto it = t.rows.find(c);
          const bool live = it != t.rows.end() && it->second.second > t.now;
          const bool ours = live && it->second.first == owner;
          // take: IF NOT EXISTS, then (found ours) IF owner = ours; renew: IF owner = ours.
          const bool ok = renew ? ours : (!live || ours);
          if (ok) t.rows[c] = {owner, t.now + ttl};
          out.push_back(ok);
        }
        return out;
      },
      [&t, owner](const std::vector<Uuid>& cs) -> Status {
        for (auto& c : cs)
          if (auto it = t.rows.find(c); it != t.rows.end() && it->second.first == owner) t.rows.erase(it);
        return ok_status();
      },
      o);
}

Uuid id(uint8_t n) {
  Uuid u;
  u.bytes[15] = n;
  return u;
}

TEST(OwnerLeases, TakesFreeLeasesOnceAndRenewsAfterAThirdOfTheLease) {
  Table t;
  auto a = make(t, "a");
  auto r = a.hold({id(1), id(2)});
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->empty());
  EXPECT_EQ(t.writes, 2);
  EXPECT_TRUE(a.writable({id(1), id(2)}));
  t.now += 9s;  // under a third: no write
  ASSERT_TRUE(a.hold({id(1), id(2)}).ok());
  EXPECT_EQ(t.writes, 2);
  t.now += 2s;  // past a third: renewed
  ASSERT_TRUE(a.hold({id(1)}).ok());
  EXPECT_EQ(t.writes, 3);
  EXPECT_EQ(a.stats().taken.load(), 2u);
  EXPECT_EQ(a.stats().renewed.load(), 1u);
  // id(2) was not renewed: its lease (29 s by our clock) runs short of the write margin.
  t.now += 16s;
  EXPECT_TRUE(a.writable({id(1)}));
  EXPECT_FALSE(a.writable({id(2)}));
  EXPECT_FALSE(a.writable({id(3)}));  // never held
}

TEST(OwnerLeases, ALeaseHeldElsewhereIsRefusedAndAskedAgainOnlyAfterTheRetryDelay) {
  Table t;
  auto a = make(t, "a");
  auto b = make(t, "b");
  ASSERT_TRUE(a.hold({id(1)}).ok());
  auto r = b.hold({id(1), id(2)});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, std::set<Uuid>{id(1)});
  EXPECT_FALSE(b.writable({id(1)}));
  const int writes = t.writes;
  t.now += 500ms;  // redeliveries within the retry delay ask nothing
  EXPECT_EQ(*b.hold({id(1)}), std::set<Uuid>{id(1)});
  EXPECT_EQ(t.writes, writes);
  t.now += 1s;  // asked again, still A's
  EXPECT_EQ(*b.hold({id(1)}), std::set<Uuid>{id(1)});
  EXPECT_EQ(t.writes, writes + 1);
  // A is cut off and never renews: once its TTL ends, B takes it, and A's own clock stopped
  // letting it write before that (write margin).
  t.now += 22s;
  EXPECT_FALSE(a.writable({id(1)}));
  t.now += 7s;
  EXPECT_TRUE(b.hold({id(1)})->empty());
  EXPECT_TRUE(b.writable({id(1)}));
  // A comes back: its renewal is refused, and it no longer counts the lease as its own.
  EXPECT_EQ(*a.hold({id(1)}), std::set<Uuid>{id(1)});
  EXPECT_FALSE(a.writable({id(1)}));
  EXPECT_EQ(a.stats().refused.load(), 1u);
}

TEST(OwnerLeases, ReleaseHandsTheLeasesOverAtOnce) {
  Table t;
  auto a = make(t, "a");
  auto b = make(t, "b");
  ASSERT_TRUE(a.hold({id(1), id(2)}).ok());
  EXPECT_EQ(b.hold({id(1)})->size(), 1u);
  a.release_all();
  EXPECT_EQ(a.stats().released.load(), 2u);
  EXPECT_FALSE(a.writable({id(1)}));
  t.now += 1s;
  EXPECT_TRUE(b.hold({id(1), id(2)})->empty());
}

TEST(OwnerLeases, LeasesNoBatchUsedForTheIdleTimeAreReleased) {
  // The broker moved id(2)'s key to B: A never asks about it again, and releases it after
  // idle_release (5 s), so B waits seconds, not a whole lease.
  Table t;
  auto a = make(t, "a");
  auto b = make(t, "b");
  ASSERT_TRUE(a.hold({id(1), id(2)}).ok());
  t.now += 3s;
  ASSERT_TRUE(a.hold({id(1)}).ok());
  EXPECT_EQ(b.hold({id(2)})->size(), 1u);
  a.release_idle();  // both used within 5 s
  EXPECT_EQ(a.stats().released.load(), 0u);
  t.now += 2500ms;
  a.release_idle();  // id(2) idle 5.5 s; id(1) 2.5 s
  EXPECT_EQ(a.stats().released.load(), 1u);
  EXPECT_TRUE(a.writable({id(1)}));
  EXPECT_FALSE(a.writable({id(2)}));
  EXPECT_TRUE(b.hold({id(2)})->empty());
  EXPECT_EQ(a.stats().held.load(), 1u);
}

TEST(OwnerLeases, ATakeWhoseAnswerWasLostIsFoundOursAndAFailedCallHoldsNothingNew) {
  Table t;
  auto a = make(t, "a");
  t.rows[id(1)] = {"a", t.now + 30s};  // landed, but A never heard
  EXPECT_TRUE(a.hold({id(1)})->empty());
  EXPECT_TRUE(a.writable({id(1)}));
  t.down = true;
  auto r = a.hold({id(2)});
  EXPECT_FALSE(r.ok());
  EXPECT_FALSE(a.writable({id(2)}));
  EXPECT_TRUE(a.writable({id(1)}));  // a failed call takes nothing away
  EXPECT_EQ(a.stats().failures.load(), 1u);
}

}  // namespace
}  // namespace commentd::workers
