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
    ASSERT_TRUE(store->trim_logs(30, 10).ok());
    auto ops = *store->read_ops(0, 1000);
    ASSERT_EQ(ops.size(), 20u);
    EXPECT_EQ(ops.front().seq, 31u);
    auto events = *store->read_outbox(0, 1000);
    ASSERT_EQ(events.size(), 10u);
    EXPECT_EQ(events.front().first, 41u);
    EXPECT_EQ(events.back().second.substr(events.back().second.size() - 7), "event49");
    // Asking to trim past the newest op trims no further than the newest op.
    ASSERT_TRUE(store->trim_logs(1000, 1000).ok());
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

}  // namespace
}  // namespace commentd::store::rocks
