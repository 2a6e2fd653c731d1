// group_writes: which writes exec_writes sends together as one unlogged batch.
#include <gtest/gtest.h>

#include "store/cql/cql_internal.h"

namespace commentd::store::cql {
namespace {

using Call = CqlStore::Call;

Uuid id(uint8_t n) {
  Uuid u;
  u.bytes[15] = n;
  return u;
}

// Calls are told apart by their first value's payload size (a text of `tag` bytes).
Call call(std::string key, size_t tag, size_t payload = 0) {
  return Call{nullptr, {txt(std::string(tag, 'x')), txt(std::string(payload, 'p'))}, {}, std::move(key)};
}

std::vector<std::vector<size_t>> tags(const std::vector<std::vector<Call>>& groups) {
  std::vector<std::vector<size_t>> out;
  for (auto& g : groups) {
    auto& o = out.emplace_back();
    for (auto& c : g) o.push_back(c.values[0].wire_size() - 4);
  }
  return out;
}

TEST(GroupWrites, WritesOfOnePartitionGoTogetherInTheirOrderAndOthersAlone) {
  std::vector<Call> calls;
  calls.push_back(call(pk(id(1)), 1));
  calls.push_back(call(pk(id(2)), 2));
  calls.push_back(call({}, 3));  // no partition named: alone
  calls.push_back(call(pk(id(1)), 4));
  calls.push_back(call({}, 5));
  calls.push_back(call(pk(id(1), id(2)), 6));
  calls.push_back(call(pk(id(1)), 7));
  calls.push_back(call(pk(id(1), id(2)), 8));
  auto g = tags(group_writes(std::move(calls)));
  std::vector<std::vector<size_t>> want{{1, 4, 7}, {2}, {3}, {5}, {6, 8}};
  EXPECT_EQ(g, want);
}

TEST(GroupWrites, KeysOfDifferentShapesNeverMeet) {
  // One uuid, a pair whose bytes start with it, and a (uuid, text) key.
  EXPECT_NE(pk(id(1)), pk(id(1), id(0)));
  EXPECT_NE(pk(id(1), id(0)), pk(id(1), std::string(16, '\0')));
  std::vector<Call> calls;
  calls.push_back(call(pk(id(1)), 1));
  calls.push_back(call(pk(id(1), id(0)), 2));
  calls.push_back(call(pk(id(1), std::string(16, '\0')), 3));
  EXPECT_EQ(group_writes(std::move(calls)).size(), 3u);
}

TEST(GroupWrites, ABatchIsCutAtItsByteAndItemBounds) {
  std::vector<Call> calls;
  for (size_t i = 1; i <= 5; ++i) calls.push_back(call(pk(id(9)), i, 100));
  // Each call is about 2 * 4 + i + 100 bytes: 230 bytes hold two.
  auto by_bytes = tags(group_writes(calls, 230, 64));
  std::vector<std::vector<size_t>> want_bytes{{1, 2}, {3, 4}, {5}};
  EXPECT_EQ(by_bytes, want_bytes);
  auto by_items = tags(group_writes(calls, 1 << 20, 3));
  std::vector<std::vector<size_t>> want_items{{1, 2, 3}, {4, 5}};
  EXPECT_EQ(by_items, want_items);
  // A call larger than the bound still goes, alone.
  std::vector<Call> big;
  big.push_back(call(pk(id(9)), 1, 5000));
  big.push_back(call(pk(id(9)), 2, 5000));
  EXPECT_EQ(group_writes(std::move(big)).size(), 2u);
}

}  // namespace
}  // namespace commentd::store::cql
