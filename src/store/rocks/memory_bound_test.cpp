// The store's memory is bounded by configuration (RocksOptions::memtable_mb, block_cache_mb):
// after writing three times the memtable bound, further writes bring all memtables together
// back within the bound once RocksDB's flushes have run. Without the bound
// (db_write_buffer_size) each of the 14 column families keeps up to two 32 MiB memtables, and
// these 24 MB stay in memory whole.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>

#include "store/rocks/rocks_store_fixture.h"

namespace commentd::store::rocks {
namespace {

using namespace test;

TEST(MemoryBoundTest, MemtablesStayNearTheirConfiguredBound) {
  TempDir dir("memory-bound");
  RocksOptions o;
  o.data_dir = dir.str();
  o.sync_writes = false;
  o.block_cache_mb = 8;
  o.memtable_mb = 8;
  auto opened = RocksStore::open(o);
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  auto& s = **opened;
  EXPECT_EQ(s.memtable_limit(), uint64_t(o.memtable_mb) << 20);
  const std::string body(2000, 'x');
  uint64_t peak = 0;
  // About 24 MB of rows and index entries: three times the bound, under one family's 32 MiB.
  for (uint32_t n = 1; n <= 12000; ++n) {
    Comment c = make_comment(uid(1, n), kVideo, 1000 + n);
    c.content = body;
    ASSERT_TRUE(commit_sync(s, create_ws(c)).ok());
    if (n % 1000 == 0) peak = std::max(peak, s.memtable_bytes());
  }
  EXPECT_GT(peak, 1u << 20) << "memtables were never seen holding the writes";
  // RocksDB checks the bound on the write path: each write over it schedules the flush of one
  // column family (the one with the oldest memtable), and the flushes run in the background.
  // So a service that goes on writing, as this loop does with small writes, gets back within
  // the bound; a burst followed by silence may stay over it (a CI run saw 22 MB of 8 after the
  // burst alone).
  const uint64_t bound = o.memtable_mb << 20;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  for (uint32_t n = 1; s.memtable_bytes() > bound && std::chrono::steady_clock::now() < until; ++n) {
    ASSERT_TRUE(commit_sync(s, create_ws(make_comment(uid(2, n), kVideo, 100000 + n))).ok());
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_LE(s.memtable_bytes(), bound) << "peak while writing: " << peak;
  EXPECT_LE(s.block_cache_bytes(), uint64_t(o.block_cache_mb) << 20);
}

}  // namespace
}  // namespace commentd::store::rocks
