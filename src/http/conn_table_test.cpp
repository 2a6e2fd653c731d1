#include "http/conn_table.h"

#include <gtest/gtest.h>

namespace commentd::http {
namespace {

using namespace std::chrono_literals;
using addr = boost::asio::ip::address;

const addr kA = boost::asio::ip::make_address("10.0.0.1");
const addr kB = boost::asio::ip::make_address("10.0.0.2");
const addr kC = boost::asio::ip::make_address("::1");

class ConnTableTest : public ::testing::Test {
 protected:
  ConnTable::time_point now = ConnTable::time_point{} + 1h;
  uint64_t next = 1;
  // Opens a connection `step` after the previous one; returns its id and the result.
  std::pair<uint64_t, ConnTable::Opened> open(ConnTable& t, const addr& ip) {
    now += 1ms;
    uint64_t id = next++;
    return {id, t.open(id, ip, now)};
  }
};

TEST_F(ConnTableTest, PerAddressCapEvictsThatAddresssOldestIdle) {
  ConnTable t({.max_connections = 100, .max_per_ip = 3});
  auto [a1, r1] = open(t, kA);
  auto [a2, r2] = open(t, kA);
  auto [b1, rb] = open(t, kB);
  auto [a3, r3] = open(t, kA);
  ASSERT_TRUE(r1.accepted && r2.accepted && r3.accepted && rb.accepted);
  EXPECT_EQ(t.count(kA), 3u);
  // a1 is busy: the oldest idle of A is a2.
  ASSERT_TRUE(t.busy(a1));
  auto [a4, r4] = open(t, kA);
  ASSERT_TRUE(r4.accepted);
  EXPECT_EQ(r4.evicted, std::vector<uint64_t>{a2});
  EXPECT_EQ(t.count(kA), 3u);
  EXPECT_EQ(t.count(kB), 1u);  // B untouched
  EXPECT_FALSE(t.busy(a2));    // evicted: its session must not start a request
  EXPECT_EQ(t.size(), 4u);
}

TEST_F(ConnTableTest, PerAddressCapRefusesWhenAllOfThemAreBusy) {
  ConnTable t({.max_connections = 100, .max_per_ip = 2});
  auto [a1, r1] = open(t, kA);
  auto [a2, r2] = open(t, kA);
  ASSERT_TRUE(t.busy(a1) && t.busy(a2));
  auto [a3, r3] = open(t, kA);
  EXPECT_FALSE(r3.accepted);
  EXPECT_TRUE(r3.evicted.empty());
  auto [b1, rb] = open(t, kB);
  EXPECT_TRUE(rb.accepted);
  // A request ends: that connection becomes the eviction candidate.
  t.idle(a1, now);
  auto [a4, r4] = open(t, kA);
  EXPECT_TRUE(r4.accepted);
  EXPECT_EQ(r4.evicted, std::vector<uint64_t>{a1});
}

TEST_F(ConnTableTest, FullServerEvictsTheOldestIdleOfAnyAddress) {
  ConnTable t({.max_connections = 3, .max_per_ip = 0});
  auto [a1, r1] = open(t, kA);
  auto [b1, rb1] = open(t, kB);
  auto [a2, r2] = open(t, kA);
  // b1 finished a request just now; a1 has been idle longest.
  ASSERT_TRUE(t.busy(b1));
  now += 1ms;
  t.idle(b1, now);
  auto [c1, rc] = open(t, kC);
  ASSERT_TRUE(rc.accepted);
  EXPECT_EQ(rc.evicted, std::vector<uint64_t>{a1});
  auto [c2, rc2] = open(t, kC);
  EXPECT_EQ(rc2.evicted, std::vector<uint64_t>{a2});
  EXPECT_EQ(t.size(), 3u);
}

TEST_F(ConnTableTest, FullOfBusyConnectionsRefuses) {
  ConnTable t({.max_connections = 2, .max_per_ip = 0});
  auto [a1, r1] = open(t, kA);
  auto [a2, r2] = open(t, kA);
  ASSERT_TRUE(t.busy(a1) && t.busy(a2));
  auto [b1, rb] = open(t, kB);
  EXPECT_FALSE(rb.accepted);
  EXPECT_EQ(t.size(), 2u);
  t.close(a1);
  auto [b2, rb2] = open(t, kB);
  EXPECT_TRUE(rb2.accepted);
  EXPECT_TRUE(rb2.evicted.empty());
}

TEST_F(ConnTableTest, AFloodFromOneAddressNeverLocksOthersOut) {
  ConnTable t({.max_connections = 50, .max_per_ip = 40});
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(open(t, kA).second.accepted);
  EXPECT_EQ(t.count(kA), 40u);
  for (int i = 0; i < 20; ++i) {
    auto [id, r] = open(t, kB);
    ASSERT_TRUE(r.accepted) << i;
    ASSERT_TRUE(t.busy(id));  // B's clients are served
  }
  EXPECT_EQ(t.count(kB), 20u);
  EXPECT_EQ(t.count(kA), 30u);
  EXPECT_EQ(t.size(), 50u);
}

TEST_F(ConnTableTest, CloseAndEvictOldestIdleKeepTheCountsRight) {
  ConnTable t({.max_connections = 10, .max_per_ip = 10});
  auto [a1, r1] = open(t, kA);
  auto [a2, r2] = open(t, kA);
  ASSERT_TRUE(t.busy(a1));
  EXPECT_EQ(t.evict_oldest_idle(), std::optional<uint64_t>(a2));
  EXPECT_EQ(t.evict_oldest_idle(), std::nullopt);  // a1 is busy
  t.close(a2);  // already evicted: nothing happens
  EXPECT_EQ(t.size(), 1u);
  t.close(a1);
  EXPECT_EQ(t.size(), 0u);
  EXPECT_EQ(t.count(kA), 0u);
  EXPECT_EQ(t.idle_count(), 0u);
}

}  // namespace
}  // namespace commentd::http
