// CqlStore on a real Cassandra (COMMENTD_TEST_CQL=host:port): the Store conformance suite,
// and what only CQL has: conditional writes racing from two sessions, the per-node logs
// across a reopen, and a cluster that stops answering (unavailable or deadline, never a hang).
// Every test migrates its own keyspace, so parallel test processes never collide.
#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <thread>
#include <tuple>

#include "bridge/tcp_proxy.h"
#include "store/cql/count_repair.h"
#include "store/cql/cql_internal.h"
#include "store/cql/cql_store.h"
#include "store/cql/migrate.h"
#include "store/store_conformance.h"
#include "testing/run_sync.h"
#include "testing/test_servers.h"

namespace commentd::store::cql {
namespace {

using namespace std::chrono_literals;

const bridge::Runtime& runtime() {
  static bridge::Runtime* rt = [] {
    auto r = bridge::Runtime::create(2);
    if (!r) throw std::runtime_error(r.error().message);
    return r->release();  // lives as long as the process: stores of every test use it
  }();
  return *rt;
}

// A freshly migrated keyspace, dropped at the end.
class Keyspace {
 public:
  explicit Keyspace(const std::string& addr) {
    static std::atomic<int> counter{0};
    cfg.hosts = {addr};
    cfg.request_timeout = 60s;
    cfg.keyspace = "store_" + std::to_string(::getpid()) + "_" + std::to_string(++counter);
    auto s = connect_cql(runtime(), cfg);
    if (!s) throw std::runtime_error("connect: " + s.error().message);
    session_ = std::move(*s);
    auto m = migrate(*session_, cfg);
    if (!m) throw std::runtime_error("migrate: " + m.error().message);
    cfg.request_timeout = 10s;
  }
  ~Keyspace() {
    std::promise<void> p;
    session_->query("DROP KEYSPACE IF EXISTS " + cfg.keyspace, 60s, [&p](Result<bridge::Rows>) { p.set_value(); });
    p.get_future().wait();
  }
  // One statement on the keyspace's own session ("{ks}" stands for the keyspace).
  bridge::Rows query(std::string cql) const {
    for (size_t at; (at = cql.find("{ks}")) != std::string::npos;) cql.replace(at, 4, cfg.keyspace);
    std::promise<Result<bridge::Rows>> p;
    session_->query(cql, 60s, [&p](Result<bridge::Rows> r) { p.set_value(std::move(r)); });
    auto r = p.get_future().get();
    if (!r) throw std::runtime_error(cql + ": " + r.error().message);
    return std::move(*r);
  }
  std::unique_ptr<CqlStore> open(uint32_t node = 1, std::optional<std::string> host = std::nullopt,
                                 CircuitBreaker::Options breaker = {},
                                 CqlStoreOptions::CommitFault fault = CqlStoreOptions::CommitFault::none) const {
    CqlStoreOptions o;
    o.cql = cfg;
    o.breaker = breaker;
    o.testing_commit_fault = fault;
    if (host) o.cql.hosts = {*host};
    o.node_id = node;
    auto s = CqlStore::open(runtime(), o);
    if (!s) throw std::runtime_error("open: " + s.error().message);
    return std::move(*s);
  }
  config::CqlConfig cfg;

 private:
  std::unique_ptr<bridge::CqlSession> session_;
};

struct CqlHarness {
  // A skip or failure here stops the test before its body (gtest checks after construction).
  // keys_per_read: 0 = the configured default; keep_bucket_lists: storage.cql.bucket_list_ttl
  // as configured (else 0).
  explicit CqlHarness(int keys_per_read = 0, bool keep_bucket_lists = true) { init(keys_per_read, keep_bucket_lists); }
  void init(int keys_per_read, bool keep_bucket_lists) {
    COMMENTD_TEST_SERVER(addr, "COMMENTD_TEST_CQL");
    ks = std::make_unique<Keyspace>(addr);
    if (keys_per_read > 0) ks->cfg.keys_per_read = keys_per_read;
    if (!keep_bucket_lists) ks->cfg.bucket_list_ttl = std::chrono::milliseconds(0);
    s = ks->open();
  }
  ~CqlHarness() {
    if (s) s->close();
    s.reset();
  }
  Store& store() { return *s; }
  std::unique_ptr<Keyspace> ks;
  std::unique_ptr<CqlStore> s;
};

// The per-user rows cache's protocol (redis/guarded_copies.h) in memory, so the whole store
// suite also runs with get_user_view / get_reactions answered from copies: every write the
// suite makes must invalidate what it changes, or a later read in the suite sees old rows.
class MemoryUserRows final : public UserRowsCache {
 public:
  asio::awaitable<Lookup> lookup(Uuid video_id, Uuid user_id, Deadline) override {
    std::lock_guard lk(mu_);
    Lookup out;
    auto k = std::make_pair(video_id, user_id);
    auto& t = tokens_[k];
    if (t == 0) t = ++next_;
    if (auto it = copies_.find(k); it != copies_.end()) {
      hits++;
      out.rows = it->second;
      if (refresh_next.exchange(false)) out.token = std::to_string(t);  // redis/user_rows.h's refresh ahead
      else if (renew_next.exchange(false)) out.renew = true;  // a node's own copy past half its life
    } else {
      out.token = std::to_string(t);
    }
    co_return out;
  }
  asio::awaitable<void> fill(Uuid video_id, Uuid user_id, std::string token, const UserRows& rows,
                             Deadline) override {
    std::lock_guard lk(mu_);
    auto k = std::make_pair(video_id, user_id);
    if (std::to_string(tokens_[k]) == token) copies_[k] = rows;
    co_return;
  }
  // redis/user_rows.cpp's write script, in memory: a written row goes into the copy when it
  // is newer than the copy's row of its comment; two rows of one time drop the copy.
  asio::awaitable<void> after_write(std::vector<std::pair<Uuid, Uuid>> dropped, std::vector<WrittenRow> written,
                                    Deadline) override {
    std::lock_guard lk(mu_);
    for (auto& k : dropped) {
      copies_.erase(k);
      tokens_[k] = ++next_;
      invalidations++;
    }
    for (auto& [m, mark] : written) {
      auto k = std::make_pair(m.video_id, m.user_id);
      tokens_[k] = ++next_;
      if (auto it = copies_.find(k); it != copies_.end()) {
        auto& rows = it->second.reactions;
        auto r = std::find_if(rows.begin(), rows.end(), [&](auto& x) { return x.comment_id == m.comment_id; });
        if (r != rows.end() && r->at == m.at && r->type != m.type) {
          copies_.erase(it);
          invalidations++;
        } else {
          if (r == rows.end()) rows.push_back(UserReaction{m.comment_id, m.type, m.at});
          else if (r->at < m.at) *r = UserReaction{m.comment_id, m.type, m.at};
          updates++;
        }
      }
      if (mark) {  // the newer mark of a user stays
        auto [it, fresh] = marks_.try_emplace(mark_key(m), m.at, m.type);
        if (!fresh && it->second.first < m.at) it->second = {m.at, m.type};
        marks++;
      }
    }
    co_return;
  }
  // The shared copy looked up again; with renew_token, as one in its refresh window.
  asio::awaitable<Lookup> renew(Uuid video_id, Uuid user_id, Deadline d) override {
    renews++;
    refresh_next = renew_token.exchange(false);
    co_return co_await lookup(video_id, user_id, d);
  }
  std::optional<UserRows> copy(const Uuid& video, const Uuid& user) {
    std::lock_guard lk(mu_);
    auto it = copies_.find({video, user});
    if (it == copies_.end()) return std::nullopt;
    return it->second;
  }
  // redis/user_rows.cpp's take script, in memory.
  asio::awaitable<std::vector<bool>> take_written(std::vector<RowMark> rows, Deadline) override {
    std::lock_guard lk(mu_);
    std::vector<bool> out;
    for (auto& r : rows) {
      auto it = marks_.find(mark_key(r));
      bool hit = it != marks_.end() && (it->second.first > r.at || it->second == std::make_pair(r.at, r.type));
      if (it != marks_.end() && it->second.first <= r.at) marks_.erase(it);
      out.push_back(hit);
      if (hit) marks_used++;
    }
    co_return out;
  }
  std::atomic<uint64_t> hits{0}, invalidations{0}, updates{0}, marks{0}, marks_used{0};
  std::atomic<bool> refresh_next{false};  // the next hit comes with the token, as a copy near its end
  std::atomic<bool> renew_next{false};    // the next hit asks for a renewal
  std::atomic<bool> renew_token{false};   // the next renewal comes with the token
  std::atomic<uint64_t> renews{0};

 private:
  static std::tuple<Uuid, Uuid, Uuid> mark_key(const RowMark& m) { return {m.video_id, m.comment_id, m.user_id}; }
  std::mutex mu_;
  std::map<std::pair<Uuid, Uuid>, UserRows> copies_;
  std::map<std::pair<Uuid, Uuid>, uint64_t> tokens_;
  std::map<std::tuple<Uuid, Uuid, Uuid>, std::pair<int64_t, ReactionType>> marks_;
  uint64_t next_ = 0;
};

// Also reads a page's rows and counters 3 keys at a time (storage.cql.keys_per_read): chunks
// of 3, a short chunk padded with repeats and a lone key each read alone, through the whole
// suite; and lists a video's buckets for every page (bucket_list_ttl 0; the default harness
// keeps them).
struct CqlCachedHarness : CqlHarness {
  CqlCachedHarness() : CqlHarness(3, false) {
    if (s) s->set_user_rows_cache(&rows);
  }
  ~CqlCachedHarness() {
    if (s) s->detach_user_rows_cache(std::chrono::seconds(1));
  }
  MemoryUserRows rows;
};

using CqlImpls = ::testing::Types<CqlHarness, CqlCachedHarness>;

}  // namespace
}  // namespace commentd::store::cql

namespace commentd::store::conformance {
INSTANTIATE_TYPED_TEST_SUITE_P(Cql, StoreConformance, commentd::store::cql::CqlImpls);
}

namespace commentd::store::cql {
namespace {

using conformance::scomment;
using conformance::sid;

Result<CommitResult> commit_sync(Store& s, WriteSet ws) {
  std::promise<Result<CommitResult>> p;
  auto f = p.get_future();
  s.commit(std::move(ws), [&p](Result<CommitResult> r) { p.set_value(std::move(r)); });
  return f.get();
}

WriteSet create_ws(const Comment& c) {
  WriteSet ws;
  ws.preconditions.push_back(CommentAt{c.id, 0});
  ws.mutations.push_back(PutComment{c});
  ws.mutations.push_back(IndexPut{Index::video, c.video_id, c.created_at, c.id});
  return ws;
}

class CqlStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    COMMENTD_TEST_SERVER(addr, "COMMENTD_TEST_CQL");
    addr_ = addr;
    ks_ = std::make_unique<Keyspace>(addr);
  }
  std::string addr_;
  std::unique_ptr<Keyspace> ks_;
};

// Two stores (two sessions, as two nodes) edit the same comment at the same version at
// once, round after round: exactly one wins each round, the loser gets conflict, and the
// row holds the winner's content.
TEST_F(CqlStoreTest, ConditionalWriteRaceHasExactlyOneWinner) {
  auto a = ks_->open(1), b = ks_->open(2);
  Comment c = scomment(sid(1, 1), sid(0xF0, 1), 1000);
  ASSERT_TRUE(commit_sync(*a, create_ws(c)).ok());
  for (uint64_t v = 1; v <= 5; ++v) {
    auto edit = [&](Store& s, const std::string& who) {
      Comment e = c;
      e.version = v + 1;
      e.content = who + std::to_string(v);
      WriteSet ws;
      ws.preconditions.push_back(CommentAt{c.id, v});
      ws.mutations.push_back(PutComment{e});
      return commit_sync(s, std::move(ws));
    };
    auto fa = std::async(std::launch::async, [&] { return edit(*a, "a"); });
    auto fb = std::async(std::launch::async, [&] { return edit(*b, "b"); });
    auto ra = fa.get(), rb = fb.get();
    ASSERT_NE(ra.ok(), rb.ok()) << "round " << v << ": exactly one edit may win";
    const auto& loser = ra.ok() ? rb : ra;
    EXPECT_EQ(loser.error().code, Errc::conflict);
    auto got = testing::run_sync(a->get_comment(c.id, Deadline::never()));
    ASSERT_TRUE(got.ok() && got->has_value());
    EXPECT_EQ((*got)->version, v + 1);
    EXPECT_EQ((*got)->content, (ra.ok() ? "a" : "b") + std::to_string(v));
  }
}

// The op log and the outbox keep their sequences across a reopen of the same node, another
// node's logs are apart, and trimming drops what is below the floor.
TEST_F(CqlStoreTest, NodeLogsSurviveReopenAndTrim) {
  std::vector<uint64_t> seqs;
  {
    auto s = ks_->open(7);
    for (uint32_t i = 0; i < 5; ++i) {
      WriteSet ws;
      ReactionOp op;
      op.op_id = sid(0x0F, i);
      op.comment_id = sid(1, 1);
      op.video_id = sid(0xF0, 1);
      op.user_id = sid(0xA0, i);
      op.type = ReactionType::like;
      op.timestamp = 100 + i;
      op.node_id = 7;
      ws.mutations.push_back(AppendReactionOp{op});
      ws.mutations.push_back(AppendOutbox{"comments", "k" + std::to_string(i), "payload " + std::to_string(i)});
      auto r = commit_sync(*s, std::move(ws));
      ASSERT_TRUE(r.ok()) << r.error().message;
      seqs.push_back(r->op_seqs.at(0));
    }
    s->close();
  }
  EXPECT_EQ(seqs, (std::vector<uint64_t>{1, 2, 3, 4, 5}));
  auto s = ks_->open(7);
  EXPECT_EQ(s->last_op_seq(), 5u);
  EXPECT_EQ(s->last_outbox_seq(), 5u);
  auto ops = s->read_ops(2, 100);
  ASSERT_TRUE(ops.ok()) << ops.error().message;
  ASSERT_EQ(ops->size(), 3u);
  EXPECT_EQ((*ops)[0].seq, 3u);
  EXPECT_EQ((*ops)[0].user_id, sid(0xA0, 2));
  EXPECT_EQ((*ops)[0].node_id, 7u);
  auto ob = s->read_outbox_entries(0, 2);
  ASSERT_TRUE(ob.ok());
  ASSERT_EQ(ob->size(), 2u);
  EXPECT_EQ((*ob)[1].seq, 2u);
  EXPECT_EQ((*ob)[1].key, "k1");
  EXPECT_EQ((*ob)[1].payload, "payload 1");

  auto other = ks_->open(8);
  EXPECT_EQ(other->last_op_seq(), 0u) << "another node's log is its own";
  auto none = other->read_ops(0, 10);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());

  ASSERT_TRUE(s->trim_logs(3, 4, 0).ok());
  ops = s->read_ops(0, 100);
  ASSERT_TRUE(ops.ok());
  ASSERT_EQ(ops->size(), 2u);
  EXPECT_EQ((*ops)[0].seq, 4u);
  ob = s->read_outbox_entries(0, 100);
  ASSERT_TRUE(ob.ok());
  ASSERT_EQ(ob->size(), 1u);
  EXPECT_EQ((*ob)[0].seq, 5u);

  // Positions: moved only from where they are.
  WriteSet first;
  first.preconditions.push_back(ConsumerAt{"applier", 0});
  first.mutations.push_back(SetConsumerPos{"applier", 3});
  ASSERT_TRUE(s->commit_owned(std::move(first)).ok());
  WriteSet stale;
  stale.preconditions.push_back(ConsumerAt{"applier", 0});
  stale.mutations.push_back(SetConsumerPos{"applier", 5});
  auto r = s->commit_owned(std::move(stale));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::conflict);
  auto pos = s->consumer_pos("applier");
  ASSERT_TRUE(pos.ok());
  EXPECT_EQ(*pos, 3u);
}

// The cluster stops answering (a frozen connection): a read ends by its deadline, a write
// fails with unavailable after the request timeout: no hang. Thawed, both work again.
TEST_F(CqlStoreTest, FrozenClusterFailsFastAndRecovers) {
  auto hp = commentd::testing::parse_host_port(addr_);
  bridge::testing::TcpProxy proxy(hp.host, static_cast<uint16_t>(std::stoi(hp.port)));
  ks_->cfg.request_timeout = 1s;
  auto s = ks_->open(1, "127.0.0.1:" + std::to_string(proxy.port()));
  Comment c = scomment(sid(1, 1), sid(0xF0, 1), 1000);
  ASSERT_TRUE(commit_sync(*s, create_ws(c)).ok());

  proxy.freeze();
  auto t0 = std::chrono::steady_clock::now();
  auto g = testing::run_sync(s->get_comment(c.id, Deadline::after(300ms)));
  auto read_took = std::chrono::steady_clock::now() - t0;
  ASSERT_FALSE(g.ok());
  // At its deadline; or sooner, unavailable, when the driver already gave up on the frozen
  // connection (e.g. its keepalive timed out under load).
  EXPECT_TRUE(g.error().code == Errc::deadline_exceeded || g.error().code == Errc::unavailable)
      << g.error().message;
  EXPECT_LT(read_took, 3s);

  t0 = std::chrono::steady_clock::now();
  Comment d = scomment(sid(1, 2), sid(0xF0, 1), 1001);
  auto w = commit_sync(*s, create_ws(d));
  auto write_took = std::chrono::steady_clock::now() - t0;
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.error().code, Errc::unavailable) << w.error().message;
  EXPECT_LT(write_took, 5s);

  // A read already past its deadline is not even started.
  auto past = testing::run_sync(s->get_comment(c.id, Deadline{Deadline::clock::now() - 1ms}));
  ASSERT_FALSE(past.ok());
  EXPECT_EQ(past.error().code, Errc::deadline_exceeded);

  proxy.thaw();
  bool recovered = false;
  for (int i = 0; i < 50 && !recovered; ++i) {
    auto again = testing::run_sync(s->get_comment(c.id, Deadline::after(2s)));
    recovered = again.ok() && again->has_value();
  }
  EXPECT_TRUE(recovered) << "reads work again once the connection thaws";
}

// A frozen cluster opens the storage breaker after `failures` timed-out writes: from then on
// calls fail at once (not after request_timeout each), and after the thaw one probe closes it.
TEST_F(CqlStoreTest, FrozenClusterOpensTheBreakerThenItCloses) {
  auto hp = commentd::testing::parse_host_port(addr_);
  bridge::testing::TcpProxy proxy(hp.host, static_cast<uint16_t>(std::stoi(hp.port)));
  ks_->cfg.request_timeout = 1s;
  // open_for leaves the checks below seconds of margin: CI runs this beside Cassandra, Pulsar
  // and Redis on 2 cores, and a third write let through as the half-open probe (the open
  // window gone by before it started) once failed the "at once" check.
  auto s = ks_->open(1, "127.0.0.1:" + std::to_string(proxy.port()), {.failures = 2, .open_for = 3s});
  Comment c = scomment(sid(1, 1), sid(0xF1, 1), 1000);
  ASSERT_TRUE(commit_sync(*s, create_ws(c)).ok());

  proxy.freeze();
  for (int i = 0; i < 2; ++i) {
    auto w = commit_sync(*s, create_ws(scomment(sid(1, 10 + i), sid(0xF1, 1), 1001 + i)));
    ASSERT_FALSE(w.ok());
    EXPECT_EQ(w.error().code, Errc::unavailable) << w.error().message;
  }
  EXPECT_EQ(s->breaker().state(), CircuitBreaker::State::open);
  auto t0 = std::chrono::steady_clock::now();
  auto w = commit_sync(*s, create_ws(scomment(sid(1, 20), sid(0xF1, 1), 1010)));
  auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.error().code, Errc::unavailable);
  EXPECT_EQ(w.error().detail_code, "storage_unavailable") << w.error().message;
  EXPECT_LT(took, 200ms) << "an open breaker answers at once";
  auto g = testing::run_sync(s->get_comment(c.id, Deadline::after(5s)));
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.error().detail_code, "storage_unavailable");
  EXPECT_GE(s->breaker().stats().rejected.load(), 2u);

  proxy.thaw();
  bool recovered = false;
  auto until = std::chrono::steady_clock::now() + 20s;
  while (!recovered && std::chrono::steady_clock::now() < until) {
    auto again = testing::run_sync(s->get_comment(c.id, Deadline::after(2s)));
    recovered = again.ok() && again->has_value();
    if (!recovered) std::this_thread::sleep_for(100ms);  // polling a recovery, not timing it
  }
  EXPECT_TRUE(recovered) << "one probe after open_for closes the breaker once the cluster answers";
  EXPECT_EQ(s->breaker().state(), CircuitBreaker::State::closed);
  EXPECT_TRUE(commit_sync(*s, create_ws(scomment(sid(1, 30), sid(0xF1, 1), 1020))).ok());
}

// A hung (not refusing) cluster with writes waiting opens the breaker after stall_after,
// long before any of them times out: the next write fails at once.
TEST_F(CqlStoreTest, AHungClusterOpensTheBreakerBeforeAnyTimeout) {
  auto hp = commentd::testing::parse_host_port(addr_);
  bridge::testing::TcpProxy proxy(hp.host, static_cast<uint16_t>(std::stoi(hp.port)));
  ks_->cfg.request_timeout = 10s;
  auto s = ks_->open(1, "127.0.0.1:" + std::to_string(proxy.port()),
                     {.failures = 3, .open_for = 500ms, .stall_after = 300ms, .stall_calls = 3});
  ASSERT_TRUE(commit_sync(*s, create_ws(scomment(sid(2, 1), sid(0xF2, 1), 1000))).ok());

  proxy.freeze();
  const auto frozen_at = std::chrono::steady_clock::now();
  std::vector<std::future<Result<CommitResult>>> hung;
  for (int i = 0; i < 3; ++i)
    hung.push_back(std::async(std::launch::async, [&s, i] {
      return commit_sync(*s, create_ws(scomment(sid(2, 10 + i), sid(0xF2, 1), 1001 + i)));
    }));
  std::this_thread::sleep_for(400ms);  // past stall_after: the three are waiting, unanswered
  auto t0 = std::chrono::steady_clock::now();
  auto w = commit_sync(*s, create_ws(scomment(sid(2, 20), sid(0xF2, 1), 1010)));
  auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.error().detail_code, "storage_unavailable") << w.error().message;
  EXPECT_LT(took, 200ms) << "refused at once";
  EXPECT_LT(std::chrono::steady_clock::now() - frozen_at, 5s) << "well before the 10 s request timeout";
  EXPECT_EQ(s->breaker().stats().stalls.load(), 1u);

  proxy.thaw();
  for (auto& f : hung) (void)f.get();  // answered after the thaw (or timed out): either is fine
  bool recovered = false;
  auto until = std::chrono::steady_clock::now() + 20s;
  for (int n = 0; !recovered && std::chrono::steady_clock::now() < until; ++n) {
    recovered = commit_sync(*s, create_ws(scomment(sid(2, 100 + n), sid(0xF2, 1), 1020 + n))).ok();
    if (!recovered) std::this_thread::sleep_for(100ms);  // polling a recovery, not timing it
  }
  EXPECT_TRUE(recovered) << "a probe after open_for closes it once the cluster answers";
  EXPECT_EQ(s->breaker().state(), CircuitBreaker::State::closed);
}

// The calls this store's session made so far, by statement label (commentd_cql_requests_total).
std::map<std::string, uint64_t> calls_by_statement(const CqlStore& s) {
  std::map<std::string, uint64_t> out;
  s.statement_metrics().each([&](const std::string& label, const bridge::CqlMetrics::Statement& st) {
    for (auto& n : st.outcomes) out[label] += n.load();
  });
  return out;
}

// Every user's view and reactions in `video` asked at once on one event loop (user(u), u in
// 1..n, each under deadline(u) from its ask); `hold`, if any, runs on the loop after the asks
// and before anything else. The answers, in order.
std::vector<std::optional<Result<Store::ViewAndReactions>>> ask_at_once(
    CqlStore& s, const Uuid& video, uint32_t n, const std::function<Uuid(uint32_t)>& user,
    const std::function<std::chrono::milliseconds(uint32_t)>& deadline, std::function<void()> hold = {}) {
  std::vector<std::optional<Result<Store::ViewAndReactions>>> got(n);
  asio::io_context ioc;
  for (uint32_t u = 1; u <= n; ++u) {
    asio::co_spawn(
        ioc,
        [&, u]() -> asio::awaitable<void> {
          const Deadline d = Deadline::after(deadline(u));  // a named local (g++ 12)
          auto r = co_await s.get_view_and_reactions(video, user(u), d);
          got[u - 1] = std::move(r);
        },
        asio::detached);
  }
  if (hold) asio::post(ioc, std::move(hold));
  ioc.run();
  return got;
}

// With a per-user rows cache: the second read of a user's rows is a hit (no Cassandra read);
// a view write drops the copy before the commit returns; a reaction row is written into the
// copy (the next read is a hit and sees it), a withdrawal too, and an older op's row landing
// after them changes neither the copy nor Cassandra. A withdrawal is a row of type none with
// its time, so a copy filled from Cassandra orders later writes as the one written in place.
TEST_F(CqlStoreTest, UserRowsAreServedFromTheCacheAndReactionWritesGoIntoTheCopy) {
  auto s = ks_->open();
  MemoryUserRows cache;
  s->set_user_rows_cache(&cache);
  const Uuid video = sid(0xA1, 1), user = sid(0xA1, 2), comment = sid(0xA1, 3);
  auto write = [&](Mutation m) {
    WriteSet ws;
    ws.mutations.push_back(std::move(m));
    return commit_sync(*s, std::move(ws)).ok();
  };
  auto entry = [&] {
    auto r = testing::run_sync(s->get_reactions(video, user, {comment}, Deadline::after(10s)));
    EXPECT_TRUE(r.ok());
    return r.ok() ? r->at(0) : ReactionType::none;
  };
  ASSERT_TRUE(write(RecentWrite{video, user, 5000}));
  EXPECT_EQ(cache.invalidations.load(), 1u);
  auto v = testing::run_sync(s->get_user_view(video, user, Deadline::after(10s)));
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->recent_until, 5000);
  EXPECT_EQ(cache.hits.load(), 0u);
  EXPECT_EQ(entry(), ReactionType::none);
  EXPECT_EQ(cache.hits.load(), 1u) << "both rows were read and cached by the first miss";

  const uint64_t reads = calls_by_statement(*s)["SELECT user_reactions"];
  ASSERT_TRUE(write(UserReactionPut{video, user, comment, ReactionType::like, 9000, 1}));
  EXPECT_EQ(cache.updates.load(), 1u);
  EXPECT_EQ(entry(), ReactionType::like) << "the copy from before the write was served";
  ASSERT_TRUE(write(UserReactionPut{video, user, comment, ReactionType::none, 9500, 1}));
  EXPECT_EQ(entry(), ReactionType::none);
  ASSERT_TRUE(write(UserReactionPut{video, user, comment, ReactionType::dislike, 9200, 2}));  // a slower request
  EXPECT_EQ(entry(), ReactionType::none) << "an older op's row landing later changes nothing";
  EXPECT_EQ(cache.hits.load(), 4u);
  EXPECT_EQ(calls_by_statement(*s)["SELECT user_reactions"], reads) << "every read after a reaction was a hit";

  // The copy filled from Cassandra holds the same row, with its time.
  ASSERT_TRUE(write(RecentWrite{video, user, 6000}));
  EXPECT_EQ(entry(), ReactionType::none);
  EXPECT_EQ(calls_by_statement(*s)["SELECT user_reactions"], reads + 1);
  auto copy = cache.copy(video, user);
  ASSERT_TRUE(copy);
  EXPECT_EQ(copy->reactions, (std::vector<UserReaction>{{comment, ReactionType::none, 9'500'001}}));
  ASSERT_TRUE(write(UserReactionPut{video, user, comment, ReactionType::like, 9400, 2}));
  EXPECT_EQ(entry(), ReactionType::none) << "ordered by the time read from Cassandra";
  ASSERT_TRUE(write(UserReactionPut{video, user, comment, ReactionType::like}));
  EXPECT_FALSE(cache.copy(video, user)) << "a row written at the commit's own time drops the copy";
  EXPECT_EQ(entry(), ReactionType::like);
  s->detach_user_rows_cache(std::chrono::seconds(1));
}

// Refresh ahead: a hit that comes with the token (a copy near its end) is served the copy, and
// the store refills the copy from Cassandra behind the read, under that token: a write whose
// invalidation was lost (made while the cache was detached) is in the copy after the refill,
// not only after the copy's TTL.
TEST_F(CqlStoreTest, ACopyNearItsEndIsServedThenRefilledBehindTheRead) {
  auto s = ks_->open();
  MemoryUserRows cache;
  s->set_user_rows_cache(&cache);
  const Uuid video = sid(0xA6, 1), user = sid(0xA6, 2);
  auto recent = [&](int64_t until) {
    WriteSet ws;
    ws.mutations.push_back(RecentWrite{video, user, until});
    return commit_sync(*s, std::move(ws)).ok();
  };
  auto view = [&] {
    auto v = testing::run_sync(s->get_view_and_reactions(video, user, Deadline::after(10s)));
    EXPECT_TRUE(v.ok());
    return v.ok() ? v->view.recent_until : -1;
  };
  ASSERT_TRUE(recent(5000));
  EXPECT_EQ(view(), 5000);  // a miss: read and filled
  s->detach_user_rows_cache(std::chrono::seconds(1));
  ASSERT_TRUE(recent(6000));  // its invalidation lost
  s->set_user_rows_cache(&cache);
  EXPECT_EQ(view(), 5000) << "the copy, until its TTL or its refill";
  const uint64_t reads = calls_by_statement(*s)["SELECT user_reactions"];
  cache.refresh_next = true;
  EXPECT_EQ(view(), 5000) << "served the copy; refilled behind the read";
  // run_sync returns once its io_context has no work left: the refill is done.
  EXPECT_EQ(calls_by_statement(*s)["SELECT user_reactions"], reads + 1);
  auto copy = cache.copy(video, user);
  ASSERT_TRUE(copy);
  EXPECT_EQ(copy->view.recent_until, 6000);
  EXPECT_EQ(view(), 6000);
  EXPECT_EQ(calls_by_statement(*s)["SELECT user_reactions"], reads + 1) << "a hit";
  s->detach_user_rows_cache(std::chrono::seconds(1));
}

// A hit from a node's own copy past half its life (redis/user_rows.h's near copies) asks for a
// renewal: the store calls renew() behind the read, and reads storage only when that renewal
// hands it a token (the shared copy near its end), filling under it.
TEST_F(CqlStoreTest, ANodesOwnCopyPastHalfItsLifeIsRenewedBehindTheRead) {
  auto s = ks_->open();
  MemoryUserRows cache;
  s->set_user_rows_cache(&cache);
  const Uuid video = sid(0xAB, 1), user = sid(0xAB, 2);
  auto view = [&] {
    auto v = testing::run_sync(s->get_view_and_reactions(video, user, Deadline::after(10s)));
    EXPECT_TRUE(v.ok());
    return v.ok() ? v->view.recent_until : -1;
  };
  WriteSet ws;
  ws.mutations.push_back(RecentWrite{video, user, 7000});
  ASSERT_TRUE(commit_sync(*s, std::move(ws)).ok());
  EXPECT_EQ(view(), 7000);  // a miss: read and filled
  const uint64_t reads = calls_by_statement(*s)["SELECT user_reactions"];
  cache.renew_next = true;
  EXPECT_EQ(view(), 7000);
  EXPECT_EQ(cache.renews.load(), 1u) << "renewed behind the read";
  EXPECT_EQ(calls_by_statement(*s)["SELECT user_reactions"], reads) << "the shared copy was fine: no storage read";
  cache.renew_next = true;
  cache.renew_token = true;
  EXPECT_EQ(view(), 7000);
  EXPECT_EQ(cache.renews.load(), 2u);
  EXPECT_EQ(calls_by_statement(*s)["SELECT user_reactions"], reads + 1) << "the renewal's token: read and filled";
  EXPECT_EQ(view(), 7000);
  EXPECT_EQ(cache.renews.load(), 2u) << "one renewal per ask";
  s->detach_user_rows_cache(std::chrono::seconds(1));
}

// Users' rows of one video asked at once are read together (user_id IN, keys_per_read users a
// read): 30 users cost a few reads, not 30, and each user gets exactly their own rows (their
// reactions, hidden flag and read-your-writes mark; none of another user's), as read alone.
TEST_F(CqlStoreTest, UsersRowsOfOneVideoAskedAtOnceAreReadTogether) {
  auto s = ks_->open();
  ASSERT_TRUE(s->user_view_folded());
  constexpr uint32_t kUsers = 30;
  const Uuid video = sid(0xA7, 0);
  auto user = [](uint32_t u) { return sid(0xA7, u); };
  WriteSet ws;
  for (uint32_t u = 1; u <= kUsers; ++u) {
    if (u % 3 == 0) ws.mutations.push_back(UserReactionPut{video, user(u), sid(0xA8, u), ReactionType::like});
    if (u % 5 == 0) ws.mutations.push_back(HiddenMark{video, user(u), sid(0xA9, u), true});
    if (u % 7 == 0) ws.mutations.push_back(RecentWrite{video, user(u), 1000 + u});
  }
  ASSERT_TRUE(commit_sync(*s, std::move(ws)).ok());
  auto check = [&](uint32_t u, const Result<Store::ViewAndReactions>& v) {
    ASSERT_TRUE(v.ok()) << v.error().message;
    EXPECT_EQ(v->view.hidden, u % 5 == 0) << u;
    EXPECT_EQ(v->view.recent_until, u % 7 == 0 ? int64_t(1000 + u) : 0) << u;
    ASSERT_TRUE(v->reactions.has_value());
    std::vector<std::pair<Uuid, ReactionType>> want;
    if (u % 3 == 0) want.emplace_back(sid(0xA8, u), ReactionType::like);
    EXPECT_EQ(*v->reactions, want) << u;
  };
  const uint64_t before = calls_by_statement(*s)["SELECT user_reactions"];
  auto got = ask_at_once(*s, video, kUsers, user, [](uint32_t) { return 10s; });
  const uint64_t reads = calls_by_statement(*s)["SELECT user_reactions"] - before;
  EXPECT_GE(reads, 2u);
  EXPECT_LE(reads, 6u) << "the first four at once, alone (four reads of a video out at a time); the other 26 "
                          "keys_per_read (25) at a time";
  for (uint32_t u = 1; u <= kUsers; ++u) {
    ASSERT_TRUE(got[u - 1].has_value()) << u;
    check(u, *got[u - 1]);
  }
  for (uint32_t u = 1; u <= kUsers; ++u) check(u, testing::run_sync(s->get_view_and_reactions(video, user(u), Deadline::after(10s))));
}

// Page builds under the same page version reuse the comment rows they read
// (storage.cql.row_reuse): the list's second scan reads no comment row. An edit committed
// through this store, a forget (another node's event), another version, another list and the
// TTL each make rows read again; every scan answers what a scan without reuse answers.
TEST_F(CqlStoreTest, PageBuildsReuseTheRowsTheyReadUnderTheSamePageVersion) {
  ks_->cfg.row_reuse = 2s;
  auto s = ks_->open();
  const Uuid video = sid(0xAC, 0), parent = sid(0xAC, 100), other = sid(0xAC, 200);
  std::vector<Comment> cs;
  for (uint32_t i = 1; i <= 6; ++i) {
    Comment c = scomment(sid(0xAC, i), video, 1000 + i, i <= 5 ? parent : other);
    WriteSet ws;
    ws.preconditions.push_back(CommentAt{c.id, 0});
    ws.mutations.push_back(PutComment{c});
    ws.mutations.push_back(IndexPut{Index::replies, *c.parent_id, c.created_at, c.id});
    ASSERT_TRUE(commit_sync(*s, std::move(ws)).ok());
    cs.push_back(c);
  }
  auto contents = [](const ScanResult& r) {
    std::vector<std::string> out;
    for (auto& c : r.rows) out.push_back(c.id.str() + "@" + std::to_string(c.version) + ":" + c.content);
    return out;
  };
  // A scan with reuse under `gen`, checked against one without; the comment rows it read.
  auto scan = [&](const Uuid& list, std::optional<uint64_t> gen) -> uint64_t {
    ScanRequest sr{Index::replies, list, SortOrder::newest, std::nullopt, 10};
    sr.with_counts = true;
    ScanRequest plain = sr;
    sr.reuse_generation = gen;
    const uint64_t before = calls_by_statement(*s)["SELECT comments"];
    auto r = testing::run_sync(s->scan(sr, Deadline::after(10s)));
    const uint64_t reads = calls_by_statement(*s)["SELECT comments"] - before;
    auto want = testing::run_sync(s->scan(plain, Deadline::after(10s)));
    EXPECT_TRUE(r.ok() && want.ok());
    if (r.ok() && want.ok()) {
      EXPECT_EQ(contents(*r), contents(*want));
      EXPECT_EQ(r->counts.size(), r->rows.size());
    }
    return reads;
  };
  EXPECT_GT(scan(parent, 7), 0u);
  EXPECT_EQ(scan(parent, 7), 0u) << "the same list under the same version: every row kept";
  EXPECT_GT(scan(parent, 8), 0u) << "another version (an edit, delete or moderation moved it)";
  EXPECT_EQ(scan(parent, 8), 0u);
  EXPECT_GT(scan(other, 8), 0u) << "another list";

  // An edit through this store: its row goes before the commit answers.
  Comment e = cs[2];
  e.version = 2;
  e.content = "edited";
  e.edited = true;
  WriteSet ws;
  ws.preconditions.push_back(CommentAt{e.id, 1});
  ws.mutations.push_back(PutComment{e});
  ASSERT_TRUE(commit_sync(*s, std::move(ws)).ok());
  EXPECT_EQ(scan(parent, 8), 1u) << "the edited row alone is read again (the version kept on purpose)";
  EXPECT_EQ(scan(parent, 8), 0u);
  // Another node's change, told by its event.
  s->forget_page_row(cs[0].id);
  EXPECT_EQ(scan(parent, 8), 1u);
  EXPECT_GT(s->page_rows_stats().hits.load(), 0u);
  EXPECT_EQ(s->page_rows_stats().forgotten.load(), 2u);
  // At most row_reuse after its read.
  std::this_thread::sleep_for(2100ms);
  EXPECT_GT(scan(parent, 8), 0u);
  EXPECT_EQ(scan(parent, 8), 0u);
}

// An asker whose deadline passes while it waits for its video's reads is answered
// deadline_exceeded before the next read, and that read is the others' alone, under their
// deadline: the first four askers take the four reads a video may have out at once, then the
// event loop is held past the short deadlines of the next six before any read returns.
TEST_F(CqlStoreTest, AnAskerPastItsDeadlineWhileWaitingIsAnsweredSoAndLeftOutOfTheRead) {
  auto s = ks_->open();
  ASSERT_TRUE(s->user_view_folded());
  const Uuid video = sid(0xAA, 0);
  auto user = [](uint32_t u) { return sid(0xAA, u); };
  constexpr uint32_t kUsers = 15;
  auto short_lived = [](uint32_t u) { return u >= 5 && u <= 10; };
  WriteSet ws;
  for (uint32_t u = 1; u <= kUsers; ++u)
    ws.mutations.push_back(UserReactionPut{video, user(u), sid(0xAB, u), ReactionType::like});
  ASSERT_TRUE(commit_sync(*s, std::move(ws)).ok());
  const uint64_t before = calls_by_statement(*s)["SELECT user_reactions"];
  // The hold comes after every asker and before any read's completion: the short deadlines
  // pass there.
  auto got = ask_at_once(
      *s, video, kUsers, user, [&](uint32_t u) { return short_lived(u) ? 5ms : 10s; },
      [] { std::this_thread::sleep_for(30ms); });
  for (uint32_t u = 1; u <= kUsers; ++u) {
    ASSERT_TRUE(got[u - 1].has_value()) << u;
    const auto& v = *got[u - 1];
    if (short_lived(u)) {
      ASSERT_FALSE(v.ok()) << u;
      EXPECT_EQ(v.error().code, Errc::deadline_exceeded) << u;
      continue;
    }
    ASSERT_TRUE(v.ok()) << u << ": " << v.error().message;
    ASSERT_TRUE(v->reactions.has_value()) << u;
    EXPECT_EQ(*v->reactions, (std::vector<std::pair<Uuid, ReactionType>>{{sid(0xAB, u), ReactionType::like}})) << u;
  }
  EXPECT_LE(calls_by_statement(*s)["SELECT user_reactions"] - before, 5u)
      << "four alone, then the five still waiting with time left in one read";
}

// A list request's user rows in one round trip: the view and every reaction of the user in
// the video, the same as get_user_view and get_reactions answer, from Cassandra and from the
// user-rows cache (one lookup: a hit after the first read).
TEST_F(CqlStoreTest, TheViewComesWithTheUsersReactions) {
  auto s = ks_->open();
  const Uuid video = sid(0xA3, 1), user = sid(0xA3, 2), c1 = sid(0xA3, 3), c2 = sid(0xA3, 4), c3 = sid(0xA3, 5);
  WriteSet ws;
  ws.mutations.push_back(RecentWrite{video, user, 7000});
  ws.mutations.push_back(HiddenMark{video, user, c3, true});
  ws.mutations.push_back(UserReactionPut{video, user, c1, ReactionType::like});
  ws.mutations.push_back(UserReactionPut{video, user, c2, ReactionType::dislike});
  ws.mutations.push_back(UserReactionPut{video, sid(0xA3, 6), c3, ReactionType::like});  // another user's
  ASSERT_TRUE(commit_sync(*s, std::move(ws)).ok());
  auto check = [&] {
    auto v = testing::run_sync(s->get_view_and_reactions(video, user, Deadline::after(10s)));
    ASSERT_TRUE(v.ok()) << v.error().message;
    EXPECT_TRUE(v->view.hidden);
    EXPECT_EQ(v->view.recent_until, 7000);
    ASSERT_TRUE(v->reactions.has_value());
    auto got = *v->reactions;
    std::sort(got.begin(), got.end());
    EXPECT_EQ(got, (std::vector<std::pair<Uuid, ReactionType>>{{c1, ReactionType::like}, {c2, ReactionType::dislike}}));
    auto r = testing::run_sync(s->get_reactions(video, user, {c1, c2, c3}, Deadline::after(10s)));
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(*r, (std::vector<ReactionType>{ReactionType::like, ReactionType::dislike, ReactionType::none}));
  };
  check();
  MemoryUserRows cache;
  s->set_user_rows_cache(&cache);
  check();
  const uint64_t hits = cache.hits.load();
  check();
  EXPECT_EQ(cache.hits.load(), hits + 2) << "one lookup each for the view with reactions and get_reactions";
  s->detach_user_rows_cache(std::chrono::seconds(1));
}

// A user's partition past the read's LIMIT (1,000 rows): the view still finds a hidden comment
// among the rows not read (one more read of that partition, hidden = true), and the reactions
// come from the page's registers instead of the partition.
TEST_F(CqlStoreTest, AHiddenCommentPastTheUsersReadLimitIsStillSeen) {
  auto s = ks_->open();
  ASSERT_TRUE(s->user_view_folded());
  const Uuid video = sid(0xA4, 0), user = sid(0xA5, 1), last = sid(0xA4, 5000);
  for (uint32_t from = 1; from <= 1000; from += 100) {
    WriteSet ws;
    for (uint32_t i = from; i < from + 100; ++i)
      ws.mutations.push_back(UserReactionPut{video, user, sid(0xA4, i), ReactionType::like, 1000 + i, 1});
    ASSERT_TRUE(commit_sync(*s, std::move(ws)).ok());
  }
  auto view = [&] {
    auto v = testing::run_sync(s->get_user_view(video, user, Deadline::after(10s)));
    EXPECT_TRUE(v.ok());
    return v.ok() && v->hidden;
  };
  EXPECT_FALSE(view());
  WriteSet hide;
  hide.mutations.push_back(HiddenMark{video, user, last, true});  // sorts after every reaction row
  hide.mutations.push_back(RecentWrite{video, user, 7000});        // the nil id's row sorts first
  ASSERT_TRUE(commit_sync(*s, std::move(hide)).ok());
  const uint64_t reads = calls_by_statement(*s)["SELECT user_reactions"];
  EXPECT_TRUE(view());
  EXPECT_EQ(calls_by_statement(*s)["SELECT user_reactions"], reads + 2) << "the partition, then hidden = true";
  auto v = testing::run_sync(s->get_view_and_reactions(video, user, Deadline::after(10s)));
  ASSERT_TRUE(v.ok());
  EXPECT_TRUE(v->view.hidden);
  EXPECT_EQ(v->view.recent_until, 7000);
  EXPECT_FALSE(v->reactions.has_value()) << "more rows than one read holds";

  // The same user read with two other users of the video (one user_rows_in, PER PARTITION
  // LIMIT): the same answer, and the others' rows are all there.
  const Uuid other = sid(0xA5, 2);
  ASSERT_TRUE(commit_sync(*s, [&] {
                WriteSet ws;
                ws.mutations.push_back(UserReactionPut{video, other, sid(0xA4, 1), ReactionType::dislike, 5000, 1});
                return ws;
              }()).ok());
  std::array<std::optional<Result<Store::ViewAndReactions>>, 4> nobody;
  std::optional<Result<Store::ViewAndReactions>> mine, theirs;
  asio::io_context ioc;
  auto read = [&](Uuid u, std::optional<Result<Store::ViewAndReactions>>& out) -> asio::awaitable<void> {
    const Deadline d = Deadline::after(10s);  // a named local (g++ 12)
    out = co_await s->get_view_and_reactions(video, u, d);
  };
  // Four users with no rows take the four reads a video may have out at once; the two
  // others wait for one to return and are read together.
  for (uint32_t i = 0; i < nobody.size(); ++i) asio::co_spawn(ioc, read(sid(0xA5, 10 + i), nobody[i]), asio::detached);
  asio::co_spawn(ioc, read(user, mine), asio::detached);
  asio::co_spawn(ioc, read(other, theirs), asio::detached);
  const uint64_t before = calls_by_statement(*s)["SELECT user_reactions"];
  ioc.run();
  EXPECT_EQ(calls_by_statement(*s)["SELECT user_reactions"], before + 6)
      << "four alone, two together, then hidden = true for the one past the LIMIT";
  for (auto& n : nobody) {
    ASSERT_TRUE(n && n->ok());
    EXPECT_FALSE((*n)->view.hidden);
    ASSERT_TRUE((*n)->reactions.has_value());
    EXPECT_TRUE((*n)->reactions->empty());
  }
  ASSERT_TRUE(mine && mine->ok() && theirs && theirs->ok());
  EXPECT_TRUE((*mine)->view.hidden);
  EXPECT_EQ((*mine)->view.recent_until, 7000);
  EXPECT_FALSE((*mine)->reactions.has_value());
  ASSERT_TRUE((*theirs)->reactions.has_value());
  EXPECT_EQ(*(*theirs)->reactions,
            (std::vector<std::pair<Uuid, ReactionType>>{{sid(0xA4, 1), ReactionType::dislike}}));
}

// The user's entry keeps the op-order winner whatever order the writes land in: the accept
// of a newer op (on one node), then the accept of an older op of the same user and comment
// (a slower request on another node), then the owner's rewrite of the older op.
TEST_F(CqlStoreTest, AUsersReactionEntryKeepsTheNewerOpWhateverTheWriteOrder) {
  auto s = ks_->open();
  const Uuid video = sid(0xA2, 1), user = sid(0xA2, 2), comment = sid(0xA2, 3);
  auto entry = [&] {
    auto r = testing::run_sync(s->get_reactions(video, user, {comment}, Deadline::after(10s)));
    EXPECT_TRUE(r.ok());
    return r.ok() ? r->at(0) : ReactionType::none;
  };
  // One write of the user's entry, as a request (accept) or the owner (register) makes it.
  auto write = [&](Mutation m) {
    WriteSet ws;
    ws.mutations.push_back(std::move(m));
    return commit_sync(*s, std::move(ws)).ok();
  };
  ASSERT_TRUE(write(UserReactionPut{video, user, comment, ReactionType::dislike, 2000, 2}));
  ASSERT_TRUE(write(UserReactionPut{video, user, comment, ReactionType::like, 1000, 1}));
  EXPECT_EQ(entry(), ReactionType::dislike) << "the older op's later write won";
  ASSERT_TRUE(write(PutReaction{comment, user, video, ReactionRow{ReactionType::like, 1000, 1, sid(0xA2, 9)}}));
  EXPECT_EQ(entry(), ReactionType::dislike);
  // A newer removal beats both; an older put after it does not bring the entry back.
  ASSERT_TRUE(write(UserReactionPut{video, user, comment, ReactionType::none, 3000, 1}));
  ASSERT_TRUE(write(UserReactionPut{video, user, comment, ReactionType::like, 2500, 1}));
  EXPECT_EQ(entry(), ReactionType::none);
}

// A reaction owner's write of one comment: its registers, its event and its counters' time
// go as one batch of the comment's partition, the video's time alone, then one counter update
// each; no statement of its own for comment_metrics_meta. The times and counts are written.
TEST_F(CqlStoreTest, ACommentsCountersTimeGoesInTheBatchOfItsOtherRows) {
  auto s = ks_->open();
  const Uuid video = sid(0xA4, 1), comment = sid(0xA4, 2), u1 = sid(0xA4, 3), u2 = sid(0xA4, 4);
  WriteSet ws;
  ws.mutations.push_back(PutReaction{comment, u1, video, ReactionRow{ReactionType::like, 9000, 1, sid(0xA4, 5)}});
  ws.mutations.push_back(PutReaction{comment, u2, video, ReactionRow{ReactionType::like, 9001, 1, sid(0xA4, 6)}});
  ws.mutations.push_back(PutReactionEvent{comment, 9001, sid(0xA4, 6), u2, ReactionType::like, true});
  ws.mutations.push_back(MetricsDelta{comment, 2, 0, 0, 9001});
  ws.mutations.push_back(StatsDelta{video, 0, 2, 9001});
  const auto before = calls_by_statement(*s);
  ASSERT_TRUE(commit_sync(*s, std::move(ws)).ok());
  auto after = calls_by_statement(*s);
  for (auto& [label, n] : before) after[label] -= n;
  std::erase_if(after, [](auto& kv) { return kv.second == 0; });
  EXPECT_EQ(after, (std::map<std::string, uint64_t>{{"BATCH unlogged", 1},
                                                    {"INSERT user_reactions", 2},
                                                    {"UPDATE comment_metrics", 1},
                                                    {"UPDATE video_stats", 1},
                                                    {"UPDATE video_stats_meta", 1}}));
  auto m = testing::run_sync(s->get_metrics({comment}, Deadline::after(10s)));
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->at(0).likes, 2);
  EXPECT_EQ(m->at(0).last_updated, 9001);
  auto v = testing::run_sync(s->get_video_stats(video, Deadline::after(10s)));
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->reactions_count, 2);
  EXPECT_EQ(v->last_updated, 9001);
}

// The reaction owner's user rows that the requests wrote (store/user_rows_cache.h "Written
// marks"): the owner writes their registers and not their user_reactions rows again; a row no
// request marked (its node died before its write) is written, and so is every row once its
// mark has been taken (a redelivered batch).
TEST_F(CqlStoreTest, TheOwnerDoesNotWriteAgainTheUserRowsItsRequestsWrote) {
  auto s = ks_->open();
  MemoryUserRows cache;
  s->set_user_rows_cache(&cache);
  const Uuid video = sid(0xA5, 1), comment = sid(0xA5, 2), u1 = sid(0xA5, 3), u2 = sid(0xA5, 4);
  WriteSet request;  // u1's request; u2's died between the broker's receipt and its write
  request.mutations.push_back(UserReactionPut{video, u1, comment, ReactionType::like, 9000, 1});
  ASSERT_TRUE(commit_sync(*s, std::move(request)).ok());
  EXPECT_EQ(cache.marks.load(), 1u);
  auto owner = [&] {
    WriteSet ws;
    ws.mutations.push_back(PutReaction{comment, u1, video, ReactionRow{ReactionType::like, 9000, 1, sid(0xA5, 5)}});
    ws.mutations.push_back(PutReaction{comment, u2, video, ReactionRow{ReactionType::dislike, 9001, 1, sid(0xA5, 6)}});
    const auto before = calls_by_statement(*s);
    EXPECT_TRUE(commit_sync(*s, std::move(ws)).ok());
    auto after = calls_by_statement(*s);
    for (auto& [label, n] : before) after[label] -= n;
    std::erase_if(after, [](auto& kv) { return kv.second == 0; });
    return after;
  };
  EXPECT_EQ(owner(), (std::map<std::string, uint64_t>{{"BATCH unlogged", 1}, {"INSERT user_reactions", 1}}));
  EXPECT_EQ(cache.marks_used.load(), 1u);
  auto rows = [&](const Uuid& user) {
    auto r = testing::run_sync(s->get_reactions(video, user, {comment}, Deadline::after(10s)));
    EXPECT_TRUE(r.ok());
    return r.ok() ? r->at(0) : ReactionType::none;
  };
  EXPECT_EQ(rows(u1), ReactionType::like);
  EXPECT_EQ(rows(u2), ReactionType::dislike);
  EXPECT_EQ(owner(), (std::map<std::string, uint64_t>{{"BATCH unlogged", 1}, {"INSERT user_reactions", 2}}))
      << "the mark was taken by the first apply";
  s->detach_user_rows_cache(std::chrono::seconds(1));
}

// No cluster at all: open fails with unavailable instead of hanging.
TEST_F(CqlStoreTest, UnreachableClusterFailsToOpen) {
  CqlStoreOptions o;
  o.cql = ks_->cfg;
  o.cql.hosts = {"127.0.0.1:1"};
  o.cql.request_timeout = 1s;
  auto t0 = std::chrono::steady_clock::now();
  auto s = CqlStore::open(runtime(), o);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, Errc::unavailable) << s.error().message;
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 10s);
}

// --- Counter repair (count_repair.h, docs/cluster.md "Counter repair")

// A video's comments created through the real write path (marks, rows, counts), then the
// state of writes that died after their rows and before their counts: their counter update
// taken back (count and writes_done), which leaves what a kill -9 between steps 4 and 5
// leaves: writes_started ahead of writes_done, the candidate row, the rows.
// Reaction owner leases (docs/cluster.md "Owner leases") on Cassandra: one holder at a time,
// renewed only by it, taken again after its TTL or its release; a take whose answer was lost
// is found its own.
TEST_F(CqlStoreTest, OwnerLeasesHaveOneHolderUntilTheirTtlOrRelease) {
  auto a = ks_->open(1), b = ks_->open(2);
  const Uuid c1 = sid(0x0C, 1), c2 = sid(0x0C, 2);
  auto held = [](const Result<std::vector<bool>>& r) {
    if (!r) throw std::runtime_error(r.error().message);
    return *r;
  };
  EXPECT_EQ(held(a->hold_owner_leases({{c1, false}, {c2, false}}, "a", 2s)), (std::vector<bool>{true, true}));
  EXPECT_EQ(held(b->hold_owner_leases({{c1, false}, {c2, true}}, "b", 2s)), (std::vector<bool>{false, false}));
  EXPECT_EQ(held(a->hold_owner_leases({{c1, true}}, "a", 30s)), std::vector<bool>{true});
  // A take by the holder (its earlier answer lost) renews it.
  EXPECT_EQ(held(a->hold_owner_leases({{c2, false}}, "a", 2s)), std::vector<bool>{true});
  // c2's 2 s TTL runs out; c1 was renewed for 30 s.
  std::this_thread::sleep_for(3s);
  EXPECT_EQ(held(b->hold_owner_leases({{c1, false}, {c2, false}}, "b", 30s)), (std::vector<bool>{false, true}));
  EXPECT_EQ(held(a->hold_owner_leases({{c2, true}}, "a", 30s)), std::vector<bool>{false});
  // A's release ends c1 at once (and leaves c2, B's, alone).
  ASSERT_TRUE(a->release_owner_leases({c1, c2}, "a").ok());
  EXPECT_EQ(held(b->hold_owner_leases({{c1, false}, {c2, true}}, "b", 30s)), (std::vector<bool>{true, true}));
  a->close();
  b->close();
}

class CountRepairTest : public CqlStoreTest {
 protected:
  const Uuid video = sid(0xF1, 1);
  Comment make(uint32_t n, std::optional<Uuid> parent = std::nullopt) {
    Comment c = scomment(sid(1, n), video, 1000 + n, parent);
    WriteSet ws = create_ws(c);
    ws.mutations.push_back(BucketPut{video, "2026-11-30", c.created_at, c.id});
    ws.mutations.push_back(StatsDelta{video, 1, 0, c.created_at});
    if (parent) {
      ws.mutations.push_back(IndexPut{Index::replies, *parent, c.created_at, c.id});
      ws.mutations.push_back(MetricsDelta{*parent, 0, 0, 1, c.created_at});
    }
    auto r = commit_sync(*store, std::move(ws));
    EXPECT_TRUE(r.ok()) << r.error().message;
    return c;
  }
  void die_before_counts(const Comment& c) {
    ks_->query("UPDATE {ks}.video_stats SET comments_count = comments_count - 1, writes_done = writes_done - 1 "
               "WHERE video_id = " + c.video_id.str());
    if (c.parent_id)
      ks_->query("UPDATE {ks}.comment_metrics SET replies_count = replies_count - 1, writes_done = writes_done - 1 "
                 "WHERE comment_id = " + c.parent_id->str());
  }
  // {count, started, done} of a video or a comment row.
  std::array<int64_t, 3> marks(const Uuid& key, bool is_video) {
    auto r = ks_->query(is_video ? "SELECT comments_count, writes_started, writes_done FROM {ks}.video_stats "
                                   "WHERE video_id = " + key.str()
                                 : "SELECT replies_count, writes_started, writes_done FROM {ks}.comment_metrics "
                                   "WHERE comment_id = " + key.str());
    std::array<int64_t, 3> out{};
    for (size_t i = 0; i < 3 && r.size() > 0; ++i) out[i] = r.i64(0, i)->value_or(0);
    return out;
  }
  size_t candidates() {
    size_t n = 0;
    for (int shard = 0; shard < 16; ++shard)
      n += ks_->query("SELECT key FROM {ks}.count_repairs WHERE shard = " + std::to_string(shard)).size();
    return n;
  }
  std::unique_ptr<CountRepairer> repairer(std::chrono::milliseconds settle, bridge::CqlMetrics* metrics = nullptr) {
    auto r = CountRepairer::open(runtime(), ks_->cfg, settle, metrics);
    if (!r) throw std::runtime_error(r.error().message);
    return std::move(*r);
  }
  void SetUp() override {
    CqlStoreTest::SetUp();
    if (ks_) store = ks_->open(1);
  }
  void TearDown() override {
    if (store) store->close();
  }
  std::unique_ptr<CqlStore> store;
};

TEST_F(CountRepairTest, WritesThatDiedBeforeTheirCountsAreRecountedOnce) {
  Comment a = make(1), b = make(2), c = make(3);
  make(4, a.id);
  Comment r2 = make(5, a.id);
  die_before_counts(c);
  die_before_counts(r2);  // the video's count and the parent's replies_count
  EXPECT_EQ(marks(video, true), (std::array<int64_t, 3>{3, 5, 3}));
  EXPECT_EQ(marks(a.id, false), (std::array<int64_t, 3>{1, 2, 1}));
  EXPECT_EQ(candidates(), 2u);

  bridge::CqlMetrics counted;  // the node passes its store's: the repair's statements are exported
  auto rep = repairer(0ms, &counted);
  ASSERT_TRUE(rep->round().ok());
  EXPECT_EQ(marks(video, true), (std::array<int64_t, 3>{5, 5, 5}));
  EXPECT_EQ(marks(a.id, false), (std::array<int64_t, 3>{2, 2, 2}));
  EXPECT_EQ(rep->stats().repaired.load(), 2u);
  std::map<std::string, uint64_t> ok;
  counted.each([&](const std::string& label, const bridge::CqlMetrics::Statement& s) { ok[label] = s.outcomes[CB_OK]; });
  EXPECT_GT(ok["SELECT count_repairs"], 0u) << "the candidates' scan";
  EXPECT_GT(ok["UPDATE comment_metrics"], 0u) << "the repair's write";
  EXPECT_EQ(rep->stats().drift.load(), 3u);  // 2 comments of the video, 1 reply of a
  // Settled: the next round deletes the candidates and changes nothing.
  ASSERT_TRUE(rep->round().ok());
  EXPECT_EQ(candidates(), 0u);
  EXPECT_EQ(marks(video, true), (std::array<int64_t, 3>{5, 5, 5}));
  EXPECT_EQ(rep->stats().repaired.load(), 2u);
  (void)b;
}

// A node writes a key's candidate once per candidate_reuse_window (half request_timeout: 60 s
// here, so a slow machine stays inside it): the key's writes after it in the window rely on
// it, and one of them that died is repaired all the same. Another node writes its own.
TEST_F(CountRepairTest, AKeysCandidateIsWrittenOncePerWindowAndFindsTheWritesThatReliedOnIt) {
  store->close();
  ks_->cfg.request_timeout = 120s;
  store = ks_->open(1);
  auto inserts = [](const CqlStore& s) { return calls_by_statement(s)["INSERT count_repairs"]; };
  make(1);
  EXPECT_EQ(inserts(*store), 1u);
  make(2);
  Comment c = make(3);
  EXPECT_EQ(inserts(*store), 1u) << "the video's candidate was written again within the window";
  die_before_counts(c);
  EXPECT_EQ(marks(video, true), (std::array<int64_t, 3>{2, 3, 2}));
  auto rep = repairer(0ms);
  ASSERT_TRUE(rep->round().ok());
  EXPECT_EQ(marks(video, true), (std::array<int64_t, 3>{3, 3, 3}));
  EXPECT_EQ(rep->stats().repaired.load(), 1u);

  auto other = ks_->open(2);
  WriteSet ws = create_ws(scomment(sid(1, 4), video, 1004));
  ws.mutations.push_back(BucketPut{video, "2026-11-30", 1004, sid(1, 4)});
  ws.mutations.push_back(StatsDelta{video, 1, 0, 1004});
  ASSERT_TRUE(commit_sync(*other, std::move(ws)).ok());
  EXPECT_EQ(inserts(*other), 1u);
  other->close();
}

TEST_F(CountRepairTest, MarksThatStandStillLessThanTheSettleAreLeftAlone) {
  Comment a = make(1);
  die_before_counts(a);
  auto rep = repairer(1h);  // a write that may still be alive
  ASSERT_TRUE(rep->round().ok());
  ASSERT_TRUE(rep->round().ok());
  EXPECT_EQ(marks(video, true), (std::array<int64_t, 3>{0, 1, 0}));
  EXPECT_EQ(rep->stats().pending.load(), 1u);
  EXPECT_EQ(rep->stats().repaired.load(), 0u);
}

TEST_F(CountRepairTest, AKeyClaimedByAnotherNodeIsLeftToIt) {
  Comment a = make(1);
  die_before_counts(a);
  const int64_t until = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch() + 1h).count();
  ks_->query("INSERT INTO {ks}.count_claims (kind, key, claim) VALUES ('video', " + video.str() + ", " +
             std::to_string(until) + ")");
  auto rep = repairer(0ms);
  ASSERT_TRUE(rep->round().ok());
  EXPECT_EQ(marks(video, true), (std::array<int64_t, 3>{0, 1, 0}));
  // Its claim expired: taken and repaired.
  ks_->query("UPDATE {ks}.count_claims SET claim = 1 WHERE kind = 'video' AND key = " + video.str());
  ASSERT_TRUE(rep->round().ok());
  EXPECT_EQ(marks(video, true), (std::array<int64_t, 3>{1, 1, 1}));
}

// A recount longer than its claim (a large video on a busy cluster: one read per comment)
// keeps renewing the claim and repairs; if another node took the claim meanwhile (it had
// expired), it leaves the key to it.
TEST_F(CountRepairTest, ARecountThatOutlastsItsClaimRenewsItUnlessAnotherNodeTookIt) {
  Comment a = make(1);
  make(2);
  make(3);
  die_before_counts(a);
  auto rep = repairer(0ms);
  rep->set_claim_lease_for_test(400ms);
  rep->set_recount_step_for_test([] { std::this_thread::sleep_for(150ms); });  // 3 comments: 600 ms
  ASSERT_TRUE(rep->round().ok());
  EXPECT_EQ(marks(video, true), (std::array<int64_t, 3>{3, 3, 3}));
  EXPECT_GE(rep->stats().claim_renewals.load(), 2u);

  std::this_thread::sleep_for(450ms);  // the first repair's renewed claim runs out
  Comment b = make(4);
  die_before_counts(b);
  auto other = repairer(0ms);
  other->set_claim_lease_for_test(400ms);
  other->set_recount_step_for_test([&] {
    std::this_thread::sleep_for(450ms);  // past the claim: another node takes it
    ks_->query("UPDATE {ks}.count_claims SET claim = 1 WHERE kind = 'video' AND key = " + video.str());
  });
  ASSERT_TRUE(other->round().ok());
  EXPECT_EQ(marks(video, true), (std::array<int64_t, 3>{3, 4, 3})) << "left to the claim's new holder";
  EXPECT_EQ(other->stats().repaired.load(), 0u);
  other->set_recount_step_for_test({});
  ASSERT_TRUE(other->round().ok());  // the other node's claim expired in turn (claim = 1)
  EXPECT_EQ(marks(video, true), (std::array<int64_t, 3>{4, 4, 4}));
}

// The recount reads statuses 25 at a time: 27 comments are two reads (the second padded with
// repeats), and a hidden comment is not counted.
TEST_F(CountRepairTest, TheRecountReadsStatusesInBatchesAndCountsVisibleOnes) {
  std::vector<Comment> all;
  for (uint32_t n = 1; n <= 27; ++n) all.push_back(make(n));
  for (size_t i : {3u, 26u}) ks_->query("UPDATE {ks}.comments SET status = 'hidden' WHERE id = " + all[i].id.str());
  die_before_counts(all[0]);
  EXPECT_EQ(marks(video, true), (std::array<int64_t, 3>{26, 27, 26}));
  auto rep = repairer(0ms);
  ASSERT_TRUE(rep->round().ok());
  EXPECT_EQ(marks(video, true), (std::array<int64_t, 3>{25, 27, 27}));
  EXPECT_EQ(rep->stats().drift.load(), 1u);
}

// A node that stops ends a recount at once: nothing written, the key left for the next pass.
TEST_F(CountRepairTest, ACancelledRecountWritesNothing) {
  Comment a = make(1);
  die_before_counts(a);
  auto rep = repairer(0ms);
  rep->set_claim_lease_for_test(100ms);
  rep->set_cancelled([] { return true; });
  EXPECT_FALSE(rep->round().ok());
  EXPECT_EQ(marks(video, true), (std::array<int64_t, 3>{0, 1, 0}));
  rep->set_cancelled({});
  std::this_thread::sleep_for(150ms);  // its claim runs out
  ASSERT_TRUE(rep->round().ok());
  EXPECT_EQ(marks(video, true), (std::array<int64_t, 3>{1, 1, 1}));
}

// A write refused by its condition (here a create of an id that exists) changed nothing and
// brings its marks together itself: nothing for the repairer to recount.
TEST_F(CountRepairTest, ARefusedWriteBringsItsMarksTogether) {
  Comment a = make(1);
  WriteSet again = create_ws(a);
  again.mutations.push_back(StatsDelta{video, 1, 0, a.created_at});
  auto r = commit_sync(*store, std::move(again));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::conflict);
  EXPECT_EQ(marks(video, true), (std::array<int64_t, 3>{1, 2, 2}));
}

// A write that completes (or fails before its entity write) leaves its marks equal: nothing
// to repair, and the candidate goes once settled.
TEST_F(CountRepairTest, FinishedWritesLeaveNothingToRepair) {
  make(1);
  make(2);
  EXPECT_EQ(marks(video, true), (std::array<int64_t, 3>{2, 2, 2}));
  auto rep = repairer(0ms);
  ASSERT_TRUE(rep->round().ok());
  EXPECT_EQ(rep->stats().repaired.load(), 0u);
  EXPECT_EQ(candidates(), 0u);
}

// --- Commit intents (docs/cluster.md "Commit intents")

// Writes that stop where a killed node would (CqlStoreOptions::testing_commit_fault), then
// the sweep of a healthy node.
class CommitIntentTest : public CqlStoreTest {
 protected:
  using Fault = CqlStoreOptions::CommitFault;
  const Uuid video = sid(0xF2, 1);
  const std::string topic = "persistent://pavilion/comments/events";

  void SetUp() override {
    CqlStoreTest::SetUp();
    if (ks_) store = ks_->open(1);
  }
  void TearDown() override {
    if (store) store->close();
  }
  // A create as the service makes it: row, list entry, bucket, read-your-writes, event.
  WriteSet create(const Comment& c) {
    WriteSet ws = create_ws(c);
    ws.mutations.push_back(BucketPut{video, "2026-11-30-18", c.created_at, c.id});
    ws.mutations.push_back(StatsDelta{video, 1, 0, c.created_at});
    ws.mutations.push_back(RecentWrite{video, c.user_id, c.created_at + 60'000});
    ws.mutations.push_back(AppendOutbox{topic, video.str(), "created " + c.id.str()});
    return ws;
  }
  WriteSet edit(Comment c, uint64_t from, const std::string& content) {
    c.version = from + 1;
    c.content = content;
    WriteSet ws;
    ws.preconditions.push_back(CommentAt{c.id, from});
    ws.mutations.push_back(PutComment{c});
    ws.mutations.push_back(AppendOutbox{topic, video.str(), "edited " + content});
    return ws;
  }
  // Commits through a node that stops at `fault`, and closes it (as the kill would).
  void die_at(Fault fault, WriteSet ws) {
    auto dying = ks_->open(1, std::nullopt, {}, fault);
    auto r = commit_sync(*dying, std::move(ws));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, Errc::unavailable) << r.error().message;
    dying->close();
  }
  Result<CommitResult> commit(WriteSet ws) {
    auto r = commit_sync(*store, std::move(ws));
    // The intent's delete runs after the answer: wait for it, as a sweep much later would.
    while (store->in_flight_commits() > 0) std::this_thread::sleep_for(1ms);
    return r;
  }
  size_t intents() { return ks_->query("SELECT id FROM {ks}.commit_intents").size(); }
  size_t listed() {
    return ks_->query("SELECT comment_id FROM {ks}.comments_by_video WHERE video_id = " + video.str()).size();
  }
  size_t bucketed() {
    return ks_->query("SELECT comment_id FROM {ks}.comments_by_video_bucketed WHERE video_id = " + video.str() +
                      " AND time_bucket = '2026-11-30-18'").size();
  }
  std::vector<std::string> events() {
    auto r = store->read_outbox_entries(0, 100);
    EXPECT_TRUE(r.ok()) << r.error().message;
    std::vector<std::string> out;
    if (r.ok())
      for (auto& e : *r) out.push_back(e.payload);
    return out;
  }
  const IntentStats& stats() { return store->intent_stats(); }
  // The video's {comments_count, writes_started, writes_done}.
  std::array<int64_t, 3> count() {
    auto r = ks_->query("SELECT comments_count, writes_started, writes_done FROM {ks}.video_stats WHERE video_id = " +
                        video.str());
    std::array<int64_t, 3> out{};
    for (size_t i = 0; i < 3 && r.size() > 0; ++i) out[i] = r.i64(0, i)->value_or(0);
    return out;
  }
  std::unique_ptr<CqlStore> store;
};

TEST_F(CommitIntentTest, AWriteThatDiedAfterItsEntityWriteIsRolledForwardOnce) {
  Comment c = scomment(sid(1, 1), video, 1000);
  die_at(Fault::after_entity_write, create(c));
  // What the dead write left: the row, and neither its list entry, its bucket, nor its event.
  auto row = testing::run_sync(store->get_comment(c.id, Deadline::never()));
  ASSERT_TRUE(row.ok() && row->has_value());
  EXPECT_EQ(listed(), 0u);
  EXPECT_EQ(bucketed(), 0u);
  EXPECT_TRUE(events().empty());
  ASSERT_EQ(intents(), 1u);

  // Another node holds the intent's claim: left to it.
  const int64_t later = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch() + 1h).count();
  auto id = ks_->query("SELECT shard, minute, id FROM {ks}.commit_intents");
  const std::string where = " WHERE shard = " + std::to_string(id.i64(0, 0)->value_or(-1)) +
                            " AND minute = " + std::to_string(id.i64(0, 1)->value_or(-1)) +
                            " AND id = " + from_cql(id.uuid(0, 2)->value_or(bridge::Uuid{})).str();
  ks_->query("UPDATE {ks}.commit_intents SET claim = " + std::to_string(later) + where);
  ASSERT_TRUE(store->sweep_intents(0ms).ok());
  EXPECT_EQ(intents(), 1u);
  EXPECT_EQ(listed(), 0u);
  // Its claim expired: taken and rolled forward.
  ks_->query("UPDATE {ks}.commit_intents SET claim = 1" + where);
  ASSERT_TRUE(store->sweep_intents(0ms).ok());
  EXPECT_EQ(stats().rolled_forward.load(), 1u);
  EXPECT_EQ(intents(), 0u);
  EXPECT_EQ(listed(), 1u);
  EXPECT_EQ(bucketed(), 1u);
  auto view = testing::run_sync(store->get_user_view(video, c.user_id, Deadline::never()));
  ASSERT_TRUE(view.ok());
  EXPECT_EQ(view->recent_until, c.created_at + 60'000);
  EXPECT_EQ(events(), std::vector<std::string>{"created " + c.id.str()});
  // Once: a second sweep finds nothing.
  ASSERT_TRUE(store->sweep_intents(0ms).ok());
  EXPECT_EQ(stats().rolled_forward.load(), 1u);
  EXPECT_EQ(events().size(), 1u);
}

// The counter repair settles a dead create's count before the sweep (its recount does not
// see the comment yet: no bucket row); the roll-forward marks the count again, and the next
// repair counts the comment.
TEST_F(CommitIntentTest, ARolledForwardCreateIsCountedByTheCounterRepairThatFollows) {
  ASSERT_TRUE(commit(create(scomment(sid(1, 7), video, 1000))).ok());
  die_at(Fault::after_entity_write, create(scomment(sid(1, 8), video, 2000)));
  auto repairer = CountRepairer::open(runtime(), ks_->cfg, 0ms);
  ASSERT_TRUE(repairer.ok()) << repairer.error().message;
  ASSERT_TRUE((*repairer)->round().ok());
  EXPECT_EQ(count(), (std::array<int64_t, 3>{1, 2, 2}));  // settled without the dead create's row
  ASSERT_TRUE(store->sweep_intents(0ms).ok());
  EXPECT_EQ(stats().rolled_forward.load(), 1u);
  EXPECT_EQ(count(), (std::array<int64_t, 3>{1, 3, 2}));  // marked again, the delta not applied
  // The first repair's claim on the key lasts past it; the sweep comes a settle later, when it
  // has expired.
  ks_->query("UPDATE {ks}.count_claims SET claim = 1 WHERE kind = 'video' AND key = " + video.str());
  ASSERT_TRUE((*repairer)->round().ok());
  EXPECT_EQ(count(), (std::array<int64_t, 3>{2, 3, 3}));
}

// A create's events are appended after its answer (docs/cluster.md "Writes"), its count
// beside its derived rows: when the append fails, the create stands answered and counted, and
// its intent stays; the roll-forward appends the events once and marks the count again, so the
// repair recounts it, and nothing is counted twice.
TEST_F(CommitIntentTest, ACreateWhoseEventsFailedToAppendAfterItsAnswerIsRolledForwardAndCountedOnce) {
  ASSERT_TRUE(commit(create(scomment(sid(1, 9), video, 1000))).ok());
  const Comment c = scomment(sid(1, 10), video, 2000);
  {
    auto failing = ks_->open(1, std::nullopt, {}, Fault::log_append);
    auto r = commit_sync(*failing, create(c));
    ASSERT_TRUE(r.ok()) << r.error().message;  // answered before its append
    failing->close();                           // waits for the append after the answer
    EXPECT_EQ(failing->appends_after_answer_failed(), 1u);
  }
  EXPECT_EQ(count(), (std::array<int64_t, 3>{2, 2, 2}));
  EXPECT_EQ(bucketed(), 2u);
  EXPECT_EQ(events(), std::vector<std::string>{"created " + sid(1, 9).str()});
  ASSERT_EQ(intents(), 1u);
  ASSERT_TRUE(store->sweep_intents(0ms).ok());
  EXPECT_EQ(stats().rolled_forward.load(), 1u);
  EXPECT_EQ(intents(), 0u);
  EXPECT_EQ(events(), (std::vector<std::string>{"created " + sid(1, 9).str(), "created " + c.id.str()}));
  EXPECT_EQ(count(), (std::array<int64_t, 3>{2, 3, 2}));  // marked again, the delta not applied twice
  auto repairer = CountRepairer::open(runtime(), ks_->cfg, 0ms);
  ASSERT_TRUE(repairer.ok()) << repairer.error().message;
  ASSERT_TRUE((*repairer)->round().ok());
  EXPECT_EQ(count(), (std::array<int64_t, 3>{2, 3, 3}));
}

TEST_F(CommitIntentTest, AWriteThatDiedBeforeItsEntityWriteIsDropped) {
  Comment c = scomment(sid(1, 2), video, 1000);
  die_at(Fault::before_entity_write, create(c));
  ASSERT_EQ(intents(), 1u);
  ASSERT_TRUE(store->sweep_intents(0ms).ok());
  EXPECT_EQ(stats().never_applied.load(), 1u);
  EXPECT_EQ(stats().rolled_forward.load(), 0u);
  EXPECT_EQ(intents(), 0u);
  auto row = testing::run_sync(store->get_comment(c.id, Deadline::never()));
  ASSERT_TRUE(row.ok());
  EXPECT_FALSE(row->has_value());
  EXPECT_EQ(listed(), 0u);
  EXPECT_TRUE(events().empty());
}

// The roll-forward writes at the intent's time: the delete that came after the dead create
// removed a list entry that did not exist yet, and the late entry does not bring it back.
TEST_F(CommitIntentTest, ALaterWriteOfTheSameRowsWinsOverTheRollForward) {
  Comment c = scomment(sid(1, 3), video, 1000);
  die_at(Fault::after_entity_write, create(c));
  Comment d = c;
  d.version = 2;
  d.status = CommentStatus::deleted;
  d.deleted_at = 2000;
  WriteSet del;
  del.preconditions.push_back(CommentAt{c.id, 1});
  del.mutations.push_back(PutComment{d});
  del.mutations.push_back(IndexDelete{Index::video, video, c.created_at, c.id});
  del.mutations.push_back(AppendOutbox{topic, video.str(), "deleted"});
  ASSERT_TRUE(commit(std::move(del)).ok());
  ASSERT_TRUE(store->sweep_intents(0ms).ok());
  EXPECT_EQ(stats().rolled_forward.load(), 1u);  // the create won version 1
  EXPECT_EQ(listed(), 0u);
  EXPECT_EQ(bucketed(), 1u);  // the bucketed history keeps deleted comments
  EXPECT_EQ(events(), (std::vector<std::string>{"deleted", "created " + c.id.str()}));
}

TEST_F(CommitIntentTest, AnIntentWhoseWriteLostItsVersionIsDropped) {
  Comment c = scomment(sid(1, 4), video, 1000);
  ASSERT_TRUE(commit(create(c)).ok());
  // This edit's intent is written, then its node dies; another edit takes version 2.
  die_at(Fault::before_entity_write, edit(c, 1, "lost"));
  ASSERT_TRUE(commit(edit(c, 1, "won")).ok());
  ASSERT_TRUE(store->sweep_intents(0ms).ok());
  EXPECT_EQ(stats().lost.load(), 1u);
  EXPECT_EQ(stats().rolled_forward.load(), 0u);
  EXPECT_EQ(intents(), 0u);
  EXPECT_EQ(events(), (std::vector<std::string>{"created " + c.id.str(), "edited won"}));
}

// Past kIntentSlots more versions the slot was reused: dropped and counted, never guessed.
TEST_F(CommitIntentTest, AnIntentTooManyVersionsBehindIsDroppedUnresolved) {
  Comment c = scomment(sid(1, 5), video, 1000);
  ASSERT_TRUE(commit(create(c)).ok());
  die_at(Fault::after_entity_write, edit(c, 1, "v2"));
  for (uint64_t v = 2; v < 6; ++v) ASSERT_TRUE(commit(edit(c, v, "v" + std::to_string(v + 1))).ok());
  ASSERT_TRUE(store->sweep_intents(0ms).ok());
  EXPECT_EQ(stats().unresolved.load(), 1u);
  EXPECT_EQ(stats().rolled_forward.load(), 0u);
  EXPECT_EQ(intents(), 0u);
}

// A body that is not ours (corrupt) can never be rolled forward: dropped unresolved, and the
// pass goes on instead of stopping at it every time.
TEST_F(CommitIntentTest, AnIntentWhoseBodyIsNotOursIsDroppedUnresolved) {
  Comment c = scomment(sid(1, 9), video, 1000);
  die_at(Fault::after_entity_write, create(c));
  auto row = ks_->query("SELECT shard, minute, id FROM {ks}.commit_intents");
  ASSERT_EQ(row.size(), 1u);
  ks_->query("UPDATE {ks}.commit_intents SET body = 0x07ff WHERE shard = " +
             std::to_string(row.i64(0, 0)->value_or(-1)) + " AND minute = " + std::to_string(row.i64(0, 1)->value_or(-1)) +
             " AND id = " + from_cql(row.uuid(0, 2)->value_or(bridge::Uuid{})).str());
  ASSERT_TRUE(store->sweep_intents(0ms).ok());
  EXPECT_EQ(stats().unresolved.load(), 1u);
  EXPECT_EQ(stats().rolled_forward.load(), 0u);
  EXPECT_EQ(intents(), 0u);
  EXPECT_EQ(stats().failed_sweeps.load(), 0u);
}

TEST_F(CommitIntentTest, FinishedAndRefusedWritesLeaveNoIntent) {
  Comment c = scomment(sid(1, 6), video, 1000);
  ASSERT_TRUE(commit(create(c)).ok());
  auto again = commit(create(c));
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, Errc::conflict);
  ASSERT_TRUE(commit(edit(c, 1, "e")).ok());
  EXPECT_EQ(intents(), 0u);
  EXPECT_EQ(listed(), 1u);
  EXPECT_EQ(events().size(), 2u);  // appended after the answers, which commit() waits for
  EXPECT_EQ(store->appends_after_answer_failed(), 0u);
  // A write with no entity write on a comment writes no intent.
  WriteSet plain;
  plain.mutations.push_back(RecentWrite{video, c.user_id, 5000});
  ASSERT_TRUE(commit(std::move(plain)).ok());
  EXPECT_EQ(intents(), 0u);
  // A write with an entity write may only carry what an intent can.
  WriteSet odd = edit(c, 2, "x");
  odd.mutations.push_back(UserReactionPut{video, c.user_id, c.id, ReactionType::like});
  auto r = commit(std::move(odd));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::internal);
  EXPECT_EQ(intents(), 0u);
}

// A shard's sweep position moves over settled minutes, never into one that may still get
// an intent; each shard has one, created at open.
TEST_F(CommitIntentTest, SweepPositionsMoveOverSettledMinutesOnly) {
  auto minute_now = [] {
    return std::chrono::duration_cast<std::chrono::minutes>(std::chrono::system_clock::now().time_since_epoch())
        .count();
  };
  EXPECT_EQ(ks_->query("SELECT shard FROM {ks}.intent_sweeps").size(), 16u);
  const int64_t before = minute_now();
  ks_->query("UPDATE {ks}.intent_sweeps SET minute = " + std::to_string(before - 5) + " WHERE shard = 3");
  ASSERT_TRUE(store->sweep_intents(0ms).ok());
  auto at = ks_->query("SELECT minute FROM {ks}.intent_sweeps WHERE shard = 3").i64(0, 0)->value_or(0);
  EXPECT_GE(at, before);
  EXPECT_LE(at, minute_now());
  // With a settle of an hour, nothing of the last hour is swept.
  ks_->query("UPDATE {ks}.intent_sweeps SET minute = " + std::to_string(before - 5) + " WHERE shard = 3");
  ASSERT_TRUE(store->sweep_intents(1h).ok());
  EXPECT_EQ(ks_->query("SELECT minute FROM {ks}.intent_sweeps WHERE shard = 3").i64(0, 0)->value_or(0), before - 5);
  EXPECT_EQ(stats().failed_sweeps.load(), 0u);
}

}  // namespace
}  // namespace commentd::store::cql
