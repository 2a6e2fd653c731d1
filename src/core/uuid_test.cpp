#include "core/uuid.h"

#include <gtest/gtest.h>

#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace commentd {
namespace {

constexpr std::string_view kCanonical = "0190a6c4-1234-7abc-8def-0123456789ab";

bool is_v7(const Uuid& u) { return (u.bytes[6] >> 4) == 7 && (u.bytes[8] & 0xC0) == 0x80; }

TEST(UuidTest, ParseFormatRoundTrip) {
  auto u = Uuid::parse(kCanonical);
  ASSERT_TRUE(u.has_value());
  EXPECT_EQ(u->str(), kCanonical);
  EXPECT_EQ(u->bytes[0], 0x01);
  EXPECT_EQ(u->bytes[15], 0xab);
  EXPECT_FALSE(u->is_nil());

  std::mt19937_64 rng(42);
  for (int i = 0; i < 1000; ++i) {
    Uuid x;
    for (auto& b : x.bytes) b = static_cast<uint8_t>(rng());
    std::string s = x.str();
    ASSERT_EQ(s.size(), 36u);
    auto back = Uuid::parse(s);
    ASSERT_TRUE(back.has_value()) << s;
    EXPECT_EQ(*back, x) << s;
  }
}

TEST(UuidTest, ParseAcceptsUppercaseAndFormatsLowercase) {
  auto u = Uuid::parse("0190A6C4-1234-7ABC-8DEF-0123456789AB");
  ASSERT_TRUE(u.has_value());
  EXPECT_EQ(u->str(), kCanonical);
}

TEST(UuidTest, NilUuid) {
  auto u = Uuid::parse("00000000-0000-0000-0000-000000000000");
  ASSERT_TRUE(u.has_value());
  EXPECT_TRUE(u->is_nil());
  EXPECT_EQ(*u, Uuid{});
}

TEST(UuidTest, RejectsBadForms) {
  const std::string good(kCanonical);
  std::vector<std::string> bad = {
      "",
      good.substr(0, 35),                                  // too short
      good + "0",                                          // too long
      "0190a6c41234-7abc-8def-0123456789ab0",              // hyphen missing, length 36
      "0190a6c4-12347abc-8def-0123456789ab0",
      "0190a6c4-1234-7abc8def-0123456789ab0",
      "0190a6c4-1234-7abc-8def0123456789ab0",
      "0190a6c-41234-7abc-8def-0123456789ab",              // hyphen moved
      "0190a6c4_1234-7abc-8def-0123456789ab",              // wrong separator
      "0190a6c41234a7abca8defa0123456789ab0",              // no hyphens at all (36 chars)
      "{190a6c4-1234-7abc-8def-0123456789a}",              // braces
      "0190a6g4-1234-7abc-8def-0123456789ab",              // non-hex
      "0190a6c4-1234-7abc-8def-0123456789aZ",
      "0190a6c4-1234-7abc-8def-0123456789a ",
      "0190a6c4-1234-7abc-8def-01234567-9ab",              // extra hyphen in place of hex
      "0190a6c412347abc8def0123456789ab",                  // 32 hex, no hyphens
  };
  for (auto& s : bad) EXPECT_FALSE(Uuid::parse(s).has_value()) << "'" << s << "'";
  // Non-hex at every hex position.
  for (size_t i = 0; i < good.size(); ++i) {
    if (good[i] == '-') continue;
    std::string s = good;
    s[i] = 'x';
    EXPECT_FALSE(Uuid::parse(s).has_value()) << s;
  }
  // A hyphen anywhere but the four places.
  for (size_t i = 0; i < good.size(); ++i) {
    if (good[i] == '-') continue;
    std::string s = good;
    s[i] = '-';
    EXPECT_FALSE(Uuid::parse(s).has_value()) << s;
  }
}

TEST(UuidTest, OrderIsByteOrder) {
  auto a = *Uuid::parse("00000000-0000-0000-0000-0000000000ff");
  auto b = *Uuid::parse("00000000-0000-0000-0000-000000000100");
  auto c = *Uuid::parse("01000000-0000-0000-0000-000000000000");
  EXPECT_LT(a, b);
  EXPECT_LT(b, c);
  EXPECT_NE(UuidHash{}(a), UuidHash{}(b));
}

TEST(UuidTest, V7TimeMs) {
  auto u = *Uuid::parse("0190a6c4-1234-7abc-8def-0123456789ab");
  EXPECT_EQ(u.v7_time_ms(), TimeMs{0x0190a6c41234});
}

TEST(UuidGeneratorTest, VersionVariantAndTimestamp) {
  ManualClock clock;
  UuidGenerator gen(clock, 1);
  for (int i = 0; i < 100; ++i) {
    clock.advance_ms(7);
    Uuid u = gen.next();
    EXPECT_TRUE(is_v7(u)) << u.str();
    EXPECT_EQ(u.v7_time_ms(), clock.now_ms()) << u.str();
    EXPECT_EQ(u.str()[14], '7');
    EXPECT_TRUE(std::string("89ab").find(u.str()[19]) != std::string::npos) << u.str();
  }
}

TEST(UuidGeneratorTest, StrictlyIncreasingWithAdvancingClock) {
  ManualClock clock;
  UuidGenerator gen(clock, 7);
  std::mt19937_64 rng(7);
  Uuid prev = gen.next();
  for (int i = 0; i < 100'000; ++i) {
    if (rng() % 3 == 0) clock.advance_ms(static_cast<TimeMs>(rng() % 3));
    Uuid u = gen.next();
    ASSERT_LT(prev, u) << "at " << i << ": " << prev.str() << " !< " << u.str();
    ASSERT_TRUE(is_v7(u));
    prev = u;
  }
}

TEST(UuidGeneratorTest, BurstInOneFrozenMillisecond) {
  ManualClock clock;
  const TimeMs t0 = clock.now_ms();
  UuidGenerator gen(clock, 3);
  std::vector<Uuid> ids;
  ids.reserve(100'000);
  for (int i = 0; i < 100'000; ++i) ids.push_back(gen.next());  // clock never moves
  for (size_t i = 1; i < ids.size(); ++i)
    ASSERT_LT(ids[i - 1], ids[i]) << "at " << i << ": " << ids[i - 1].str() << " !< " << ids[i].str();
  for (auto& u : ids) ASSERT_TRUE(is_v7(u)) << u.str();
  // More than 4096 ids in one ms must have borrowed later milliseconds, but no more than needed.
  EXPECT_EQ(ids.front().v7_time_ms(), t0);
  EXPECT_GT(ids.back().v7_time_ms(), t0);
  EXPECT_LE(ids.back().v7_time_ms(), t0 + 100'000 / 4096 + 1);
  std::set<TimeMs> ms;
  for (auto& u : ids) ms.insert(u.v7_time_ms());
  EXPECT_GE(ms.size(), 100'000u / 4096);
}

TEST(UuidGeneratorTest, ClockSteppingBack) {
  ManualClock clock(1'700'000'100'000);
  UuidGenerator gen(clock, 11);
  std::mt19937_64 rng(11);
  Uuid prev = gen.next();
  for (int i = 0; i < 20'000; ++i) {
    switch (rng() % 5) {
      case 0: clock.advance_ms(-static_cast<TimeMs>(rng() % 5000)); break;  // step back
      case 1: clock.advance_ms(static_cast<TimeMs>(rng() % 3)); break;
      default: break;
    }
    Uuid u = gen.next();
    ASSERT_LT(prev, u) << "at " << i << ": " << prev.str() << " !< " << u.str();
    ASSERT_TRUE(is_v7(u));
    prev = u;
  }
  // A big step back: ids keep increasing and keep the newest timestamp seen.
  TimeMs high = prev.v7_time_ms();
  clock.set_ms(1'600'000'000'000);
  for (int i = 0; i < 5000; ++i) {
    Uuid u = gen.next();
    ASSERT_LT(prev, u) << "at " << i;
    ASSERT_GE(u.v7_time_ms(), high);
    prev = u;
  }
}

TEST(UuidGeneratorTest, UniqueAcrossThreads) {
  ManualClock clock;
  UuidGenerator gen(clock, 5);
  constexpr int kThreads = 4, kPer = 5000;
  std::vector<std::vector<Uuid>> out(kThreads);
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; ++t)
    ts.emplace_back([&, t] {
      for (int i = 0; i < kPer; ++i) out[t].push_back(gen.next());
    });
  for (auto& t : ts) t.join();
  std::set<Uuid> all;
  for (auto& v : out) {
    for (size_t i = 1; i < v.size(); ++i) ASSERT_LT(v[i - 1], v[i]);  // per-thread order too
    all.insert(v.begin(), v.end());
  }
  EXPECT_EQ(all.size(), size_t{kThreads * kPer});
}

TEST(UuidGeneratorTest, SeedDeterminesIds) {
  ManualClock c1, c2;
  UuidGenerator a(c1, 99), b(c2, 99), c(c1, 100);
  Uuid x = a.next(), y = b.next(), z = c.next();
  EXPECT_EQ(x, y);
  EXPECT_NE(x, z);
}

}  // namespace
}  // namespace commentd

namespace commentd {
namespace {

TEST(UuidNodeTest, NodeIdIsCarriedAndDistinctNodesNeverCollide) {
  ManualClock clock(1'700'000'000'000);
  // Same seed, same clock: only the node id differs.
  UuidGenerator a(clock, 5, 1), b(clock, 5, 1023), none(clock, 5);
  for (int i = 0; i < 1000; ++i) {
    Uuid x = a.next(), y = b.next();
    EXPECT_NE(x, y);
    EXPECT_EQ(UuidGenerator::node_of(x), 1);
    EXPECT_EQ(UuidGenerator::node_of(y), 1023);
    EXPECT_EQ(x.bytes[6] >> 4, 7) << "still a UUIDv7";
    EXPECT_EQ(x.bytes[8] >> 6, 2) << "still the RFC 9562 variant";
  }
  EXPECT_EQ(a.node_id(), 1);
  EXPECT_EQ(none.node_id(), 0);
}

}  // namespace
}  // namespace commentd
