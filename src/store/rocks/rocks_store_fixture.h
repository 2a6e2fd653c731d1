// Shared by the RocksStore tests (rocks_store_test.cpp: reads; rocks_writer_test.cpp:
// the writer). Test-only.
#pragma once

#include "testing/run_sync.h"
#include "store/rocks/rocks_store.h"
#include "testing/temp_store.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <atomic>
#include <filesystem>
#include <future>
#include <random>
#include <set>
#include <tuple>
#include <thread>
#include <vector>

namespace commentd::store::rocks::test {

namespace fs = std::filesystem;

using commentd::testing::commit_sync;
using commentd::testing::TempDir;

inline Uuid uid(uint8_t tag, uint32_t n) {
  Uuid u;
  u.bytes[0] = tag;
  u.bytes[12] = static_cast<uint8_t>(n >> 24);
  u.bytes[13] = static_cast<uint8_t>(n >> 16);
  u.bytes[14] = static_cast<uint8_t>(n >> 8);
  u.bytes[15] = static_cast<uint8_t>(n);
  return u;
}

inline const Uuid kVideo = uid(0xF0, 1);
inline const Uuid kOtherVideo = uid(0xF0, 2);
inline const Uuid kUser = uid(0xA0, 1);

inline Comment make_comment(const Uuid& id, const Uuid& video, TimeMs created_at,
                     std::optional<Uuid> parent = std::nullopt) {
  Comment c;
  c.id = id;
  c.video_id = video;
  c.user_id = kUser;
  c.parent_id = parent;
  c.reply_to = parent;
  c.depth = parent ? 1 : 0;
  c.content = "comment " + id.str();
  c.created_at = created_at;
  c.updated_at = created_at;
  return c;
}

// A WriteSet creating a top-level comment (must not exist yet) with its index entry.
inline WriteSet create_ws(const Comment& c) {
  WriteSet ws;
  ws.preconditions.push_back(CommentAt{c.id, 0});
  ws.mutations.push_back(PutComment{c});
  if (c.parent_id)
    ws.mutations.push_back(IndexPut{Index::replies, *c.parent_id, c.created_at, c.id});
  else
    ws.mutations.push_back(IndexPut{Index::video, c.video_id, c.created_at, c.id});
  return ws;
}

inline ReactionOp make_op(uint32_t n, const Uuid& comment, const Uuid& user, ReactionType t, TimeMs ts) {
  ReactionOp op;
  op.op_id = uid(0x0F, n);
  op.comment_id = comment;
  op.video_id = kVideo;
  op.user_id = user;
  op.type = t;
  op.timestamp = ts;
  op.node_id = 3;
  return op;
}

class RocksStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { open(); }
  void open(size_t queue_capacity = 10000) {
    RocksOptions o;
    o.data_dir = dir_.str();
    o.block_cache_mb = 8;
    o.sync_writes = false;
    o.write_queue_capacity = queue_capacity;
    o.inline_reads = inline_reads_;
    o.slow_file_read_ns = slow_file_read_ns_;
    auto s = RocksStore::open(o);
    ASSERT_TRUE(s.ok()) << s.error().message;
    store_ = std::move(*s);
    ASSERT_TRUE(store_->ready());
  }
  void reopen(size_t queue_capacity = 10000) {
    store_->close();
    store_.reset();
    open(queue_capacity);
  }
  void put(const Comment& c) {
    auto r = commit_sync(*store_, create_ws(c));
    ASSERT_TRUE(r.ok()) << r.error().message;
  }
  std::vector<Uuid> scan_ids(const ScanRequest& req) {
    auto r = commentd::testing::run_sync(store_->scan(req, {}));
    EXPECT_TRUE(r.ok()) << r.error().message;
    std::vector<Uuid> out;
    if (r.ok())
      for (auto& c : r->rows) out.push_back(c.id);
    return out;
  }

  TempDir dir_{"rocks_test"};
  bool inline_reads_ = true;  // RocksOptions::inline_reads at the next open()
  int64_t slow_file_read_ns_ = ReadGate::kSlowFileRead;  // ... and slow_file_read_ns
  std::unique_ptr<RocksStore> store_;
};

}  // namespace commentd::store::rocks::test
