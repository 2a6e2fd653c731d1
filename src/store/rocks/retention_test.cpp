// Log retention drops only what it is told to: applied ops up to a seq, outbox events older
// than the newest N; sequences keep growing after a trim and a reopen.
#include <gtest/gtest.h>

#include "store/rocks/rocks_store.h"
#include "testing/temp_store.h"

namespace commentd::store::rocks {
namespace {

using commentd::testing::commit_sync;

TEST(RetentionTest, TrimKeepsTheTailAndSequencesContinue) {
  commentd::testing::TempDir dir("retention");
  RocksOptions o;
  o.data_dir = dir.str();
  o.sync_writes = false;
  {
    auto store = *RocksStore::open(o);
    for (int i = 0; i < 50; ++i) {
      WriteSet ws;
      ReactionOp op;
      op.type = ReactionType::like;
      ws.mutations.push_back(AppendReactionOp{op});
      ws.mutations.push_back(AppendOutbox{"t", "k", "event" + std::to_string(i)});
      ASSERT_TRUE(commit_sync(*store, std::move(ws)).ok());
    }
    ASSERT_TRUE(store->trim_logs(30, 50, 10).ok());
    auto ops = *store->read_ops(0, 1000);
    ASSERT_EQ(ops.size(), 20u);
    EXPECT_EQ(ops.front().seq, 31u);
    auto events = *store->read_outbox(0, 1000);
    ASSERT_EQ(events.size(), 10u);
    EXPECT_EQ(events.front().first, 41u);
    EXPECT_EQ(events.back().second.substr(events.back().second.size() - 7), "event49");
    // Asking to trim past the newest op trims no further than the newest op.
    ASSERT_TRUE(store->trim_logs(1000, 50, 1000).ok());
    EXPECT_EQ(store->read_ops(0, 1000)->size(), 0u);
  }
  {
    auto store = *RocksStore::open(o);
    WriteSet ws;
    ws.mutations.push_back(AppendReactionOp{ReactionOp{}});
    auto r = commit_sync(*store, std::move(ws));
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->op_seqs.at(0), 51u) << "a trimmed log never reuses a sequence";
  }
}

TEST(RetentionTest, TrimNeverDropsAnUndeliveredOutboxEvent) {
  commentd::testing::TempDir dir("retention_undelivered");
  auto store = *commentd::testing::open_temp_store(dir, false);
  for (int i = 0; i < 50; ++i) {
    WriteSet ws;
    ws.mutations.push_back(AppendOutbox{"t", "k", "event" + std::to_string(i)});
    ASSERT_TRUE(commit_sync(*store, std::move(ws)).ok());
  }
  // Delivered up to 20, keep 0: 21..50 stay whatever the retention says.
  ASSERT_TRUE(store->trim_logs(0, 20, 0).ok());
  auto events = *store->read_outbox_entries(0, 1000);
  ASSERT_EQ(events.size(), 30u);
  EXPECT_EQ(events.front().seq, 21u);
  EXPECT_EQ(events.front().payload, "event20");
  EXPECT_EQ(events.front().topic, "t");
  EXPECT_EQ(events.front().key, "k");
  // Nothing delivered: nothing trimmed, even with a tiny retention.
  ASSERT_TRUE(store->trim_logs(0, 0, 1).ok());
  EXPECT_EQ(store->read_outbox_entries(0, 1000)->size(), 30u);
  // Delivered everything, keep 5: the newest 5 stay.
  ASSERT_TRUE(store->trim_logs(0, 50, 5).ok());
  events = *store->read_outbox_entries(0, 1000);
  ASSERT_EQ(events.size(), 5u);
  EXPECT_EQ(events.front().seq, 46u);
  EXPECT_EQ(store->last_outbox_seq(), 50u);
}

}  // namespace
}  // namespace commentd::store::rocks
