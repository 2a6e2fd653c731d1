#include "http/conn_table.h"

#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <thread>
#include <tuple>

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
  std::map<uint64_t, ConnTable::Handle> entries;  // what each connection's session keeps
  // Opens a connection 1 ms after the previous one; returns its id and the result.
  std::pair<uint64_t, ConnTable::Opened> open(ConnTable& t, const addr& ip) {
    now += 1ms;
    uint64_t id = next++;
    auto r = t.open(id, ip, now);
    if (r.accepted) entries[id] = r.handle;
    return {id, r};
  }
  bool busy(uint64_t id) { return ConnTable::busy(*entries.at(id)); }
  void idle(uint64_t id, ConnTable::time_point at) { ConnTable::idle(*entries.at(id), at); }
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
  ASSERT_TRUE(busy(a1));
  auto [a4, r4] = open(t, kA);
  ASSERT_TRUE(r4.accepted);
  EXPECT_EQ(r4.evicted, std::vector<uint64_t>{a2});
  EXPECT_EQ(t.count(kA), 3u);
  EXPECT_EQ(t.count(kB), 1u);  // B untouched
  EXPECT_FALSE(busy(a2));    // evicted: its session must not start a request
  EXPECT_EQ(t.size(), 4u);
}

TEST_F(ConnTableTest, PerAddressCapRefusesWhenAllOfThemAreBusy) {
  ConnTable t({.max_connections = 100, .max_per_ip = 2});
  auto [a1, r1] = open(t, kA);
  auto [a2, r2] = open(t, kA);
  ASSERT_TRUE(busy(a1) && busy(a2));
  auto [a3, r3] = open(t, kA);
  EXPECT_FALSE(r3.accepted);
  EXPECT_TRUE(r3.evicted.empty());
  auto [b1, rb] = open(t, kB);
  EXPECT_TRUE(rb.accepted);
  // A request ends: that connection becomes the eviction candidate.
  idle(a1, now);
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
  ASSERT_TRUE(busy(b1));
  now += 1ms;
  idle(b1, now);
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
  ASSERT_TRUE(busy(a1) && busy(a2));
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
    ASSERT_TRUE(busy(id));  // B's clients are served
  }
  EXPECT_EQ(t.count(kB), 20u);
  EXPECT_EQ(t.count(kA), 30u);
  EXPECT_EQ(t.size(), 50u);
}

TEST_F(ConnTableTest, CloseAndEvictOldestIdleKeepTheCountsRight) {
  ConnTable t({.max_connections = 10, .max_per_ip = 10});
  auto [a1, r1] = open(t, kA);
  auto [a2, r2] = open(t, kA);
  ASSERT_TRUE(busy(a1));
  EXPECT_EQ(t.evict_oldest_idle(), std::optional<uint64_t>(a2));
  EXPECT_EQ(t.evict_oldest_idle(), std::nullopt);  // a1 is busy
  t.close(a2);  // already evicted: nothing happens
  EXPECT_EQ(t.size(), 1u);
  t.close(a1);
  EXPECT_EQ(t.size(), 0u);
  EXPECT_EQ(t.count(kA), 0u);
  EXPECT_EQ(t.idle_count(), 0u);
}

// Past kCandidates idle connections, evictions keep the oldest-first order from the kept
// candidates and their rescans, skipping those that began a request or went idle again.
TEST_F(ConnTableTest, ManyEvictionsTakeTheOldestIdleInOrder) {
  ConnTable t({.max_connections = 200, .max_per_ip = 0});
  std::vector<uint64_t> ids;
  for (int i = 0; i < 200; ++i) ids.push_back(open(t, kA).first);
  auto [c0, r0] = open(t, kB);  // scans and keeps candidates; evicts ids[0]
  ASSERT_EQ(r0.evicted, std::vector<uint64_t>{ids[0]});
  ASSERT_TRUE(busy(ids[1]));    // a candidate that began a request
  ASSERT_TRUE(busy(ids[2]));
  idle(ids[2], now);            // and one idle again: now the newest idle but for c0
  ASSERT_TRUE(busy(c0));
  std::vector<uint64_t> evicted, want;
  for (int i = 0; i < 150; ++i) {
    auto [id, r] = open(t, kB);
    ASSERT_TRUE(r.accepted);
    ASSERT_TRUE(busy(id));
    evicted.insert(evicted.end(), r.evicted.begin(), r.evicted.end());
  }
  for (int i = 3; i < 153; ++i) want.push_back(ids[i]);
  EXPECT_EQ(evicted, want);
  EXPECT_EQ(t.size(), 200u);
  auto [last, rl] = open(t, kB);  // ids[153..199] and then ids[2] are the idle ones left
  for (int i = 153; i < 200; ++i) {
    ASSERT_EQ(rl.evicted, std::vector<uint64_t>{ids[i]});
    std::tie(last, rl) = open(t, kB);
  }
  EXPECT_EQ(rl.evicted, std::vector<uint64_t>{ids[2]});
}

// busy() and idle() race the evictions of a full table: a connection is never evicted
// between the start and the end of its request. Evicted clients reconnect.
TEST_F(ConnTableTest, AConnectionInARequestIsNeverEvicted) {
  constexpr int kConns = 64;
  constexpr uint64_t kMaxId = 4000000;
  ConnTable t({.max_connections = kConns, .max_per_ip = 0});
  std::vector<std::atomic<bool>> in_request(kMaxId);
  std::atomic<uint64_t> next_id{1}, evictions{0}, requests{0};
  std::atomic<bool> stop{false}, wrong{false};
  auto check = [&](const ConnTable::Opened& r) {
    for (uint64_t v : r.evicted) {
      evictions.fetch_add(1);
      if (in_request[v].load()) wrong = true;
    }
  };
  auto open_at = [&](const addr& ip, int64_t at_ns) {
    uint64_t id = next_id.fetch_add(1);
    auto r = t.open(id, ip, ConnTable::time_point{} + std::chrono::nanoseconds(at_ns));
    check(r);
    return std::pair{id, r.handle};
  };
  auto worker = [&](int n) {
    std::vector<std::pair<uint64_t, ConnTable::Handle>> mine;
    for (int i = 0; i < n; ++i) mine.push_back(open_at(kA, 0));
    while (!stop && next_id.load() < kMaxId - 1000) {
      for (auto& [id, e] : mine) {
        if (!e || !ConnTable::busy(*e)) {  // refused or evicted: reconnect
          if (e) t.close(id);
          std::tie(id, e) = open_at(kA, int64_t(requests.load()));
          continue;
        }
        in_request[id] = true;
        requests.fetch_add(1);
        std::this_thread::yield();  // the request takes a while
        in_request[id] = false;
        ConnTable::idle(*e, ConnTable::time_point{} + std::chrono::nanoseconds(requests.load()));
      }
    }
  };
  std::thread w1(worker, kConns / 2), w2(worker, kConns / 2);
  // New clients that never send a request: each comes when the table is full and evicts the
  // oldest idle one (the workers reconnect to fill it again), until 2,000 evictions or 30 s.
  // Waiting for a full table: a client into a free slot evicts nothing, and on a loaded
  // machine, where the workers reconnect slowly, those used up the ids before 2,000.
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (evictions.load() < 2000 && std::chrono::steady_clock::now() < until && next_id.load() < kMaxId - 2000) {
    if (t.size() < size_t(kConns)) {
      std::this_thread::yield();
      continue;
    }
    auto [id, e] = open_at(kB, int64_t(requests.load()));
    if (e) t.close(id);
  }
  stop = true;
  w1.join();
  w2.join();
  EXPECT_FALSE(wrong.load()) << "a connection was evicted during its request";
  EXPECT_GE(evictions.load(), 2000u);
  EXPECT_GT(requests.load(), 100u);
  EXPECT_LE(t.size(), size_t(kConns));
}

}  // namespace
}  // namespace commentd::http
