// server.request_timeout as an end-to-end deadline, at the service: a read held back in
// storage past the deadline is answered in time with deadline_exceeded; a write not yet
// queued past its deadline writes nothing; a write whose commit was queued completes and is
// answered even when the deadline passes meanwhile. HeldStore is a Store over a real
// RocksStore that holds reads (or commits) until the test releases them.
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "service/comment_service.h"
#include "store/rocks/rocks_store.h"
#include "testing/run_sync.h"
#include "testing/temp_store.h"

namespace commentd::service {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

class HeldStore final : public store::Store {
 public:
  explicit HeldStore(store::Store& inner) : inner_(inner) {}

  bool hold_reads = false;
  bool hold_commits = false;
  int held_reads = 0;

  // Lets every held read and commit go on. Call from the io_context's thread.
  void release() {
    hold_reads = hold_commits = false;
    for (auto* t : gates_) t->cancel();
    for (auto& [ws, done] : commits_) inner_.commit(std::move(ws), std::move(done));
    commits_.clear();
  }

  asio::awaitable<Result<std::optional<Comment>>> get_comment(Uuid id, Deadline d) override {
    co_await gate();
    co_return co_await inner_.get_comment(id, d);
  }
  asio::awaitable<Result<store::ScanResult>> scan(store::ScanRequest req, Deadline d) override {
    co_await gate();
    co_return co_await inner_.scan(std::move(req), d);
  }
  asio::awaitable<Result<bool>> has_entries(store::Index i, Uuid key, Deadline d) override {
    return inner_.has_entries(i, key, d);
  }
  asio::awaitable<Result<std::vector<CommentMetrics>>> get_metrics(std::vector<Uuid> ids,
                                                                   Deadline d) override {
    return inner_.get_metrics(std::move(ids), d);
  }
  asio::awaitable<Result<VideoStats>> get_video_stats(Uuid v, Deadline d) override {
    return inner_.get_video_stats(v, d);
  }
  asio::awaitable<Result<std::vector<ReactionType>>> get_reactions(Uuid v, Uuid u,
                                                                   std::vector<Uuid> ids,
                                                                   Deadline d) override {
    return inner_.get_reactions(v, u, std::move(ids), d);
  }
  asio::awaitable<Result<bool>> has_hidden(Uuid v, Uuid u, Deadline d) override {
    return inner_.has_hidden(v, u, d);
  }
  Result<std::vector<ReactionRow>> get_registers(
      const std::vector<std::pair<Uuid, Uuid>>& cu) override {
    return inner_.get_registers(cu);
  }
  Result<std::optional<CommentRecount>> recount_comment(const Uuid& id) override {
    return inner_.recount_comment(id);
  }
  Result<VideoRecount> recount_video(const Uuid& v) override { return inner_.recount_video(v); }
  Result<std::vector<Uuid>> list_ids(IdTable t, std::optional<Uuid> after, size_t max) override {
    return inner_.list_ids(t, after, max);
  }
  Result<std::vector<ReactionOp>> read_ops(uint64_t after, size_t max) override {
    return inner_.read_ops(after, max);
  }
  Result<uint64_t> consumer_pos(const std::string& c) override { return inner_.consumer_pos(c); }
  uint64_t last_op_seq() const override { return inner_.last_op_seq(); }
  void commit(store::WriteSet ws, store::CommitCallback done) override {
    if (hold_commits) {
      commits_.emplace_back(std::move(ws), std::move(done));
      return;
    }
    inner_.commit(std::move(ws), std::move(done));
  }
  Status commit_owned(store::WriteSet ws) override { return inner_.commit_owned(std::move(ws)); }
  Status trim_logs(uint64_t op_seq_upto, uint64_t outbox_delivered_upto, uint64_t outbox_keep) override {
    return inner_.trim_logs(op_seq_upto, outbox_delivered_upto, outbox_keep);
  }
  asio::awaitable<Result<UserView>> get_user_view(Uuid v, Uuid u, Deadline d) override {
    return inner_.get_user_view(v, u, d);
  }
  Result<std::vector<store::OutboxEntry>> read_outbox_entries(uint64_t after, size_t max) override {
    return inner_.read_outbox_entries(after, max);
  }
  uint64_t last_outbox_seq() const override { return inner_.last_outbox_seq(); }
  void close() override { inner_.close(); }
  bool ready() const override { return inner_.ready(); }

 private:
  asio::awaitable<void> gate() {
    if (!hold_reads) co_return;
    ++held_reads;
    asio::steady_timer t(co_await asio::this_coro::executor, Deadline::clock::time_point::max());
    gates_.push_back(&t);
    boost::system::error_code ec;
    co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    std::erase(gates_, &t);
  }

  store::Store& inner_;
  std::vector<asio::steady_timer*> gates_;
  std::vector<std::pair<store::WriteSet, store::CommitCallback>> commits_;
};

class DeadlineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    rocks_ = *testing::open_temp_store(dir_, /*sync_writes=*/false);
    held_ = std::make_unique<HeldStore>(*rocks_);
    cache_ = cache::make_memory_cache({}, clock_);
    limiter_ = limit::make_memory_limiter({0, 60'000}, {0, 60'000}, clock_);
    svc_ = std::make_unique<CommentService>(*held_, *cache_, *limiter_, clock_, ids_, overlay_,
                                            ServiceOptions{});
  }
  void TearDown() override {
    svc_.reset();
    held_.reset();
    rocks_.reset();
  }

  // Runs `a` on one io_context; when it answers, records how long that took and releases
  // whatever the store still holds, so the abandoned work can finish.
  template <class T>
  std::pair<T, std::chrono::milliseconds> answer(asio::awaitable<T> a) {
    asio::io_context& ioc = commentd::testing::run_sync_context();  // outlives the store's posts
    ioc.restart();
    std::optional<T> out;
    std::chrono::milliseconds took{};
    const auto t0 = Deadline::clock::now();
    asio::co_spawn(
        ioc,
        [&]() -> asio::awaitable<void> {
          out.emplace(co_await std::move(a));
          took = std::chrono::duration_cast<std::chrono::milliseconds>(Deadline::clock::now() - t0);
          held_->release();
        },
        [](std::exception_ptr e) {
          if (e) std::rethrow_exception(e);
        });
    ioc.run();
    return {std::move(*out), took};
  }

  Uuid create(const Uuid& video, std::string text) {
    auto r = testing::run_sync(
        svc_->create_comment(author_, video, std::move(text), std::nullopt, Deadline::never()));
    EXPECT_TRUE(r.ok()) << r.error().message;
    return r.ok() ? *Uuid::parse(r->substr(7, 36)) : Uuid{};
  }

  testing::TempDir dir_{"deadline"};
  ManualClock clock_;
  UuidGenerator ids_{clock_, 1};
  std::unique_ptr<store::rocks::RocksStore> rocks_;
  std::unique_ptr<HeldStore> held_;
  std::unique_ptr<cache::PageCache> cache_;
  std::unique_ptr<limit::RateLimiter> limiter_;
  ReactionOverlay overlay_;
  std::unique_ptr<CommentService> svc_;
  Actor author_{ids_.next(), false};
};

TEST_F(DeadlineTest, ReadHeldPastTheDeadlineAnswersInTimeWithTheError) {
  const Uuid video = ids_.next();
  const Uuid cid = create(video, "hello");
  held_->hold_reads = true;
  auto [r, took] = answer(svc_->get_comment(author_, cid, Deadline::after(100ms)));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::deadline_exceeded);
  EXPECT_EQ(r.error().client_code(), "deadline_exceeded");
  EXPECT_EQ(held_->held_reads, 1) << "the read was really held";
  EXPECT_LT(took, 5000ms) << "answered only when the read was released";

  // A list (scan held) too.
  held_->hold_reads = true;
  auto [page, took2] = answer(svc_->list_comments(
      Actor{}, ListRequest{video, SortOrder::newest, 20, std::nullopt}, Deadline::after(100ms)));
  ASSERT_FALSE(page.ok());
  EXPECT_EQ(page.error().code, Errc::deadline_exceeded);
  EXPECT_LT(took2, 5000ms);

  // Released, the same reads answer.
  auto ok = testing::run_sync(svc_->get_comment(author_, cid, Deadline::after(30s)));
  ASSERT_TRUE(ok.ok()) << ok.error().message;
}

TEST_F(DeadlineTest, WritePastItsDeadlineBeforeItsCommitWritesNothing) {
  const Uuid video = ids_.next();
  Deadline past{Deadline::clock::now() - 1ms};
  auto r = testing::run_sync(svc_->create_comment(author_, video, "late", std::nullopt, past));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::deadline_exceeded);
  auto page = testing::run_sync(svc_->list_comments(
      Actor{}, ListRequest{video, SortOrder::newest, 20, std::nullopt}, Deadline::never()));
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->find("late"), std::string::npos) << *page;
}

TEST_F(DeadlineTest, QueuedWriteCompletesAndAnswersPastTheDeadline) {
  const Uuid video = ids_.next();
  const Uuid cid = create(video, "before");
  held_->hold_commits = true;
  asio::io_context& ioc = commentd::testing::run_sync_context();  // outlives the store's posts
  ioc.restart();
  std::optional<Result<std::string>> out;
  asio::co_spawn(
      ioc,
      [&]() -> asio::awaitable<void> {
        out.emplace(co_await svc_->edit_comment(author_, cid, "after", Deadline::after(50ms)));
      },
      [](std::exception_ptr e) {
        if (e) std::rethrow_exception(e);
      });
  // The commit is queued (held); release it only once the deadline has passed.
  asio::steady_timer later(ioc, 300ms);
  later.async_wait([&](boost::system::error_code) { held_->release(); });
  ioc.run();
  ASSERT_TRUE(out.has_value());
  ASSERT_TRUE(out->ok()) << out->error().message;
  EXPECT_NE((*out)->find("\"content\":\"after\""), std::string::npos) << **out;
  auto got = testing::run_sync(svc_->get_comment(author_, cid, Deadline::never()));
  ASSERT_TRUE(got.ok());
  EXPECT_NE(got->find("\"content\":\"after\""), std::string::npos);
}

}  // namespace
}  // namespace commentd::service
