// A full volume, simulated by FaultInjectionFs::set_full: writes fail with
// insufficient_storage and nothing of them lands, reads work, ready() is false, closing does
// not abort, and writes resume by themselves once space returns.
#include "testing/run_sync.h"
#include "store/rocks/fault_injection_fs.h"
#include "store/rocks/rocks_store_fixture.h"

namespace commentd::store::rocks {
namespace {

using namespace test;

constexpr auto kRecoveryDeadline = std::chrono::seconds(30);  // RocksDB polls every 5 s

class DiskFullTest : public ::testing::Test {
 protected:
  std::unique_ptr<RocksStore> open() {
    RocksOptions o;
    o.data_dir = dir_.str();
    o.block_cache_mb = 8;
    o.sync_writes = true;
    o.env = env_;
    auto s = RocksStore::open(o);
    EXPECT_TRUE(s.ok()) << s.error().message;
    return s.ok() ? std::move(*s) : nullptr;
  }
  static void expect_full(const Error& e) {
    EXPECT_EQ(e.code, Errc::insufficient_storage) << e.message;
    EXPECT_EQ(e.client_code(), "storage_full");
    EXPECT_GT(e.retry_after_s, 0);
  }
  static bool wait_ready(RocksStore& s) {
    auto end = std::chrono::steady_clock::now() + kRecoveryDeadline;
    while (!s.ready()) {
      if (std::chrono::steady_clock::now() > end) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return true;
  }

  TempDir dir_{"disk_full"};
  std::shared_ptr<FaultInjectionFs> fs_ = std::make_shared<FaultInjectionFs>();
  std::shared_ptr<rocksdb::Env> env_ = rocksdb::NewCompositeEnv(fs_);
};

// The hard case: the failed append is the first write after open, so every memtable is
// empty and RocksDB's recovery would keep the failed WAL writer (whose next append aborts).
TEST_F(DiskFullTest, FirstWriteAfterOpenFailsThenWritesResume) {
  Comment before = make_comment(uid(1, 1), kVideo, 100);
  {
    auto s = open();
    ASSERT_TRUE(s);
    ASSERT_TRUE(commit_sync(*s, create_ws(before)).ok());
  }
  auto s = open();  // recovery flushed the WAL into a table file: memtables empty
  ASSERT_TRUE(s);
  ASSERT_TRUE(s->ready());

  fs_->set_full(true);
  Comment refused = make_comment(uid(1, 2), kVideo, 200);
  auto r = commit_sync(*s, create_ws(refused));
  ASSERT_FALSE(r.ok());
  expect_full(r.error());
  EXPECT_FALSE(s->ready());
  EXPECT_TRUE(s->degraded());
  // Every later write is refused the same way, the applier's path too.
  auto r2 = commit_sync(*s, create_ws(make_comment(uid(1, 3), kVideo, 300)));
  ASSERT_FALSE(r2.ok());
  expect_full(r2.error());
  WriteSet owned;
  owned.mutations.push_back(MetricsDelta{before.id, 1, 0, 0, 5});
  auto o = s->commit_owned(std::move(owned));
  ASSERT_FALSE(o.ok());
  expect_full(o.error());
  // Reads keep working.
  auto got = commentd::testing::run_sync(s->get_comment(before.id, {}));
  ASSERT_TRUE(got.ok() && got->has_value());

  fs_->set_full(false);
  ASSERT_TRUE(wait_ready(*s)) << "writes did not resume after space returned";
  for (uint32_t n = 10; n < 60; ++n) {
    auto ok = commit_sync(*s, create_ws(make_comment(uid(1, n), kVideo, 1000 + n)));
    ASSERT_TRUE(ok.ok()) << ok.error().message;
  }
  // Nothing of the refused writes landed.
  auto gone = commentd::testing::run_sync(s->get_comment(refused.id, {}));
  ASSERT_TRUE(gone.ok());
  EXPECT_FALSE(gone->has_value());
  auto m = commentd::testing::run_sync(s->get_metrics({before.id}, {}));
  ASSERT_TRUE(m.ok());
  EXPECT_EQ((*m)[0].likes, 0);
}

// Full again right after a recovery, and closed while full: no abort, nothing acknowledged
// lost.
TEST_F(DiskFullTest, FullTwiceThenClosedWhileFull) {
  std::vector<Uuid> acked;
  {
    auto s = open();
    ASSERT_TRUE(s);
    uint32_t n = 0;
    for (int round = 0; round < 2; ++round) {
      for (int i = 0; i < 20; ++i, ++n) {
        Comment c = make_comment(uid(2, n), kVideo, 1000 + n);
        auto r = commit_sync(*s, create_ws(c));
        ASSERT_TRUE(r.ok()) << r.error().message;
        acked.push_back(c.id);
      }
      fs_->set_full(true);
      auto r = commit_sync(*s, create_ws(make_comment(uid(3, n), kVideo, 1)));
      ASSERT_FALSE(r.ok());
      expect_full(r.error());
      if (round == 0) {
        fs_->set_full(false);
        ASSERT_TRUE(wait_ready(*s));
      }
    }
    s->close();
    EXPECT_FALSE(s->ready());
  }  // destroyed (RocksDB closed) with the volume still full
  fs_->set_full(false);
  auto s = open();
  ASSERT_TRUE(s);
  for (auto& id : acked) {
    auto c = commentd::testing::run_sync(s->get_comment(id, {}));
    ASSERT_TRUE(c.ok());
    EXPECT_TRUE(c->has_value()) << id.str();
  }
}

}  // namespace
}  // namespace commentd::store::rocks
