// Reads after a restart, from data spread over several table files with a cold block cache
// (issue 7, defect 1): every page of a large video and every counter must equal what was
// written, through the request-path reads (the store's read executor). On the former
// cache-only-first read path (kBlockCacheTier, then a blocking read on would_block) this
// test failed: a reply_count read 0 on page 25.
#include "store/rocks/rocks_store_fixture.h"

#include <map>

namespace commentd::store::rocks {
namespace {

using namespace test;

constexpr uint32_t kPhases = 3;           // each ends in a reopen: one more set of table files
constexpr uint32_t kPerPhase = 1000;      // top-level comments per phase
constexpr uint32_t kReplyEvery = 7;       // every 7th comment gets a reply per phase
constexpr size_t kPage = 20;

template <class T>
T read(boost::asio::awaitable<T> a) {
  return commentd::testing::run_sync(std::move(a));
}

class RestartReadsTest : public RocksStoreTest {
 protected:
  // Comments n = 0 .. kPhases*kPerPhase-1 (created_at 10000+n); the replies of phase p go to
  // every kReplyEvery-th comment written so far, so their reply counters are merge operands
  // spread over several table files.
  void SetUp() override {
    RocksStoreTest::SetUp();
    uint32_t reply_no = 0;
    for (uint32_t p = 0; p < kPhases; ++p) {
      for (uint32_t i = 0; i < kPerPhase; ++i) {
        uint32_t n = p * kPerPhase + i;
        Comment c = make_comment(uid(1, n), kVideo, 10000 + n);
        put(c);
        expected_.push_back(c.id);
      }
      for (uint32_t n = 0; n < (p + 1) * kPerPhase; n += kReplyEvery) {
        Uuid parent = uid(1, n);
        Comment r = make_comment(uid(2, reply_no), kVideo, 50000 + reply_no, parent);
        ++reply_no;
        WriteSet ws = create_ws(r);
        ws.mutations.push_back(MetricsDelta{parent, 0, 0, 1, r.created_at});
        auto res = commit_sync(*store_, std::move(ws));
        ASSERT_TRUE(res.ok()) << res.error().message;
        ++replies_[parent];
      }
      reopen();  // the WAL goes into table files; the block cache starts cold
    }
    std::reverse(expected_.begin(), expected_.end());  // newest first
    size_t tables = 0;
    for (auto& e : fs::directory_iterator(dir_.path()))
      if (e.path().extension() == ".sst") ++tables;
    ASSERT_GE(tables, kPhases) << "the data should be in several table files";
  }

  // Pages through the video and checks every page against the expected list
  // and every counter against the expected reply count.
  void check_pages() {
    std::vector<Uuid> seen;
    std::optional<CursorPos> after;
    for (size_t pages = 0;; ++pages) {
      ASSERT_LT(pages, expected_.size()) << "paging does not end";
      ScanRequest req{Index::video, kVideo, SortOrder::newest, after, kPage};
      auto page = read(store_->scan(req, {}));
      ASSERT_TRUE(page.ok()) << page.error().message;
      std::vector<Uuid> ids;
      for (auto& c : page->rows) ids.push_back(c.id);
      auto metrics = read(store_->get_metrics(ids, {}));
      ASSERT_TRUE(metrics.ok()) << metrics.error().message;
      for (size_t i = 0; i < ids.size(); ++i) {
        auto it = replies_.find(ids[i]);
        int64_t want = it == replies_.end() ? 0 : it->second;
        ASSERT_EQ((*metrics)[i].replies_count, want) << "comment " << ids[i].str() << " on page " << pages;
      }
      seen.insert(seen.end(), ids.begin(), ids.end());
      if (page->exhausted) break;
      ASSERT_EQ(ids.size(), kPage) << "a page short of the limit before the end, page " << pages;
      after = page->last;
    }
    ASSERT_EQ(seen.size(), expected_.size()) << "paging stopped early";
    EXPECT_EQ(seen, expected_);
    // Point reads of every comment, and its replies, too.
    for (auto& [parent, n] : replies_) {
      auto c = read(store_->get_comment(parent, {}));
      ASSERT_TRUE(c.ok() && c->has_value()) << parent.str();
      ScanRequest rq{Index::replies, parent, SortOrder::oldest, std::nullopt, 100};
      auto rs = read(store_->scan(rq, {}));
      ASSERT_TRUE(rs.ok());
      EXPECT_EQ(static_cast<int64_t>(rs->rows.size()), n) << "replies of " << parent.str();
    }
  }

  std::vector<Uuid> expected_;
  std::map<Uuid, int64_t> replies_;
};

TEST_F(RestartReadsTest, EveryReadEqualsWhatWasWritten) { check_pages(); }

// The same pages with every read on the read executor: the gate moves reads, never answers.
TEST_F(RestartReadsTest, EveryReadEqualsWhatWasWrittenWithoutInlineReads) {
  inline_reads_ = false;
  reopen();
  check_pages();
  EXPECT_EQ(store_->stats().inline_reads.load(), 0u);
  EXPECT_GT(store_->stats().pool_reads.load(), 0u);
}

// Where reads run (read_gate.h): the store has just been reopened, so its data is in table
// files and the block cache is cold. The first read runs inline (nothing says otherwise yet)
// and reads table files; the reads after it go to the read executor. (The files were just
// written, so the OS page cache answers in microseconds: the test counts every table-file
// read as slow, which the gate's own tests separate.)
TEST_F(RestartReadsTest, AReadOfATableFileSendsTheNextReadsToTheExecutor) {
  slow_file_read_ns_ = 0;
  reopen();
  const StoreStats& st = store_->stats();
  auto first = read(store_->has_entries(Index::video, kVideo, Deadline::never()));
  ASSERT_TRUE(first.ok() && *first);
  EXPECT_EQ(st.inline_reads.load(), 1u);
  EXPECT_EQ(st.file_reads.load(), 1u);
  EXPECT_EQ(st.pool_reads.load(), 0u);
  auto second = read(store_->has_entries(Index::replies, uid(1, 0), Deadline::never()));
  ASSERT_TRUE(second.ok());
  EXPECT_TRUE(*second);
  EXPECT_EQ(st.inline_reads.load(), 1u);
  EXPECT_EQ(st.pool_reads.load(), 1u);
}

// try_view_and_reactions reads what it lacks only where on_reader would read inline: never
// without inline reads, and not after a table-file read closed the gate.
TEST_F(RestartReadsTest, TryViewAndReactionsReadsOnlyWhereTheGateLetsIt) {
  const Uuid user = uid(9, 1);
  inline_reads_ = false;
  reopen();
  EXPECT_FALSE(store_->try_view_and_reactions(kVideo, user));
  EXPECT_EQ(store_->stats().inline_reads.load(), 0u);

  inline_reads_ = true;
  slow_file_read_ns_ = 0;
  reopen();
  auto first = read(store_->has_entries(Index::video, kVideo, Deadline::never()));
  ASSERT_TRUE(first.ok() && *first);
  ASSERT_EQ(store_->stats().file_reads.load(), 1u);  // the gate is closed now
  EXPECT_FALSE(store_->try_view_and_reactions(kVideo, user));
  EXPECT_EQ(store_->stats().inline_reads.load(), 1u);
}

// Rows still in the memtable are read inline, with no table file read.
TEST_F(RocksStoreTest, ReadsFromTheMemtableRunInline) {
  put(make_comment(uid(1, 1), kVideo, 1000));
  for (int i = 0; i < 3; ++i) {
    auto r = commentd::testing::run_sync(store_->has_entries(Index::video, kVideo, Deadline::never()));
    ASSERT_TRUE(r.ok() && *r);
  }
  EXPECT_EQ(store_->stats().inline_reads.load(), 3u);
  EXPECT_EQ(store_->stats().pool_reads.load(), 0u);
  EXPECT_EQ(store_->stats().file_reads.load(), 0u);
}

}  // namespace
}  // namespace commentd::store::rocks
