// Cluster-mode reactions on a real Pulsar (COMMENTD_TEST_PULSAR) and a real Cassandra
// (COMMENTD_TEST_CQL): two nodes -- each its own PulsarBus, CqlStore (node ids 1 and 2) and
// BusReactionApplier on one Key_Shared subscription -- take reactions from many users on a
// few comments through both producers; the counters equal the registers exactly, and the
// registers the LWW result of every op. Then an owner that wrote a batch's registers but not
// its counters leaves without acking: the other node gets the batch and is still exact. An
// owner that stalls mid-batch while its keys move is fenced by its leases (docs/cluster.md
// "Owner leases"). And two ops of one millisecond, which Cassandra orders by value: the
// counts follow what it kept.
// Every test uses a keyspace and a topic of its own.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <future>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "core/reaction_set.h"
#include "events/event_bus_conformance.h"
#include "events/pulsar/pulsar_bus.h"
#include "events/schemas.h"
#include "store/cql/cql_store.h"
#include "store/cql/migrate.h"
#include "testing/eventually.h"
#include "testing/test_servers.h"
#include "workers/bus_reaction_applier.h"
#include "workers/bus_reaction_applier_testing.h"

namespace commentd::workers {
namespace {

using namespace std::chrono_literals;
using events::conformance::Runner;

const bridge::Runtime& runtime() {
  static bridge::Runtime* rt = [] {
    auto r = bridge::Runtime::create(2);
    if (!r) throw std::runtime_error(r.error().message);
    return r->release();  // lives as long as the process
  }();
  return *rt;
}

// The broker may take a while on a loaded machine.
template <class P>
bool eventually(P pred) {
  return commentd::testing::eventually(pred, std::chrono::seconds(60));
}

std::string unique(const char* what) {
  static std::atomic<int> n{0};
  std::random_device rd;
  return std::string(what) + "_" + std::to_string(::getpid()) + "_" + std::to_string(n++) + "_" +
         std::to_string(rd() % 100000);
}

// One node: its bus (unbatched on the reactions topic, batched elsewhere, as the wiring
// does), its store, and its applier.
struct Node {
  std::unique_ptr<events::PulsarBus> bus;
  std::unique_ptr<store::cql::CqlStore> store;
  std::unique_ptr<fault::CounterFaultStore> faulty;
  std::unique_ptr<OwnerLeases> leases;  // short here: a test waits out a lease
  std::unique_ptr<BusReactionApplier> applier;
};

constexpr auto kLease = 4s;
constexpr auto kWriteMargin = 1s;

class ClusterReactionsTest : public ::testing::Test {
 protected:
  Runner run_;  // first: destroyed after every bus and store that posts to it
  void SetUp() override {
    COMMENTD_TEST_SERVER(pulsar, "COMMENTD_TEST_PULSAR");
    COMMENTD_TEST_SERVER(cql, "COMMENTD_TEST_CQL");
    pulsar_ = pulsar;
    cfg_.hosts = {cql};
    cfg_.request_timeout = 60s;
    cfg_.keyspace = unique("bus_applier");
    auto s = store::cql::connect_cql(runtime(), cfg_);
    ASSERT_TRUE(s.ok()) << s.error().message;
    session_ = std::move(*s);
    auto m = store::cql::migrate(*session_, cfg_);
    ASSERT_TRUE(m.ok()) << m.error().message;
    cfg_.request_timeout = 10s;
    topic_ = "persistent://public/default/" + unique("reactions");
    nodes_.reserve(4);  // add_node's references stay valid
    script_.video = ids_.next();
    for (int c = 0; c < 16; ++c) script_.comments.push_back(ids_.next());
    for (int u = 0; u < 100; ++u) script_.users.push_back(ids_.next());
  }
  void TearDown() override {
    for (auto& n : nodes_) {
      if (n.applier) n.applier->stop();
      n.applier.reset();
      if (n.bus) n.bus->close();
      if (n.store) n.store->close();
    }
    nodes_.clear();
    if (session_) {
      std::promise<void> p;
      session_->query("DROP KEYSPACE IF EXISTS " + cfg_.keyspace, 60s, [&p](Result<bridge::Rows>) { p.set_value(); });
      p.get_future().wait();
    }
  }

  Node& add_node(uint32_t id) {
    Node n;
    events::PulsarBusOptions po;
    po.url = pulsar_;
    po.producer_name = "node-" + std::to_string(id);
    po.batch_size = 100;
    po.batch_delay = 2ms;
    po.unbatched_topics = {topic_};
    po.send_timeout = po.operation_timeout = po.connect_timeout = 10s;
    n.bus = std::make_unique<events::PulsarBus>(runtime(), po);
    store::cql::CqlStoreOptions so;
    so.cql = cfg_;
    so.node_id = id;
    auto st = store::cql::CqlStore::open(runtime(), so);
    if (!st) throw std::runtime_error("open: " + st.error().message);
    n.store = std::move(*st);
    n.faulty = std::make_unique<fault::CounterFaultStore>(*n.store);
    OwnerLeaseOptions lo;
    lo.lease = kLease;
    lo.write_margin = kWriteMargin;
    lo.retry_other = 300ms;
    auto* cql = n.store.get();
    const std::string owner = "node-" + std::to_string(id);
    n.leases = std::make_unique<OwnerLeases>(
        [cql, owner](const std::vector<std::pair<Uuid, bool>>& asks, std::chrono::seconds ttl) {
          std::vector<store::cql::CqlStore::LeaseAsk> a;
          for (auto& [c, renew] : asks) a.push_back({c, renew});
          return cql->hold_owner_leases(a, owner, ttl);
        },
        [cql, owner](const std::vector<Uuid>& cs) { return cql->release_owner_leases(cs, owner); }, lo);
    nodes_.push_back(std::move(n));
    return nodes_.back();
  }

  std::unique_ptr<BusReactionApplier> make_applier(Node& n, store::Store& s) {
    BusApplierOptions o;
    o.topic = topic_;
    o.batch_size = 32;
    o.batch_timeout = 5ms;
    auto* cql = n.store.get();
    return std::make_unique<BusReactionApplier>(
        s, *n.bus, [cql](const Uuid& c, const Uuid& v) { return cql->owner_recount(c, v); }, clock_, o,
        n.leases.get());
  }

  // A consumer of node `n` on the appliers' subscription, driven by the test (an owner that
  // takes a batch by hand).
  std::unique_ptr<events::Consumer> subscribe_by_hand(Node& n) {
    auto sub = run_.run(n.bus->subscribe(topic_, "reaction-applier",
                                         {.type = events::SubscriptionType::key_shared,
                                          .initial = events::InitialPosition::earliest}));
    if (!sub) throw std::runtime_error("subscribe: " + sub.error().message);
    return std::move(*sub);
  }
  // The next `count` messages of `c`, not acked.
  std::vector<events::Message> receive(events::Consumer& c, int count) {
    std::vector<events::Message> batch;
    for (int i = 0; i < count; ++i) {
      auto m = run_.run(c.receive());
      if (!m) throw std::runtime_error("receive: " + m.error().message);
      batch.push_back(std::move(*m));
    }
    return batch;
  }

  // `n` ops, published through every node's producer in turn, chunk by chunk.
  void publish_random(int n, uint32_t seed) {
    std::mt19937 rng(seed);
    for (int i = 0; i < n;) {
      for (size_t k = 0; k < nodes_.size() && i < n; ++k) {
        std::vector<events::OutMessage> msgs;
        for (int j = 0; j < 20 && i < n; ++j, ++i) {
          auto op = script_.next_op(rng, static_cast<uint32_t>(k + 1));
          msgs.push_back({op.comment_id.str(), events::reaction_event_json(ids_.next(), op), 0});
        }
        auto r = run_.run(nodes_[k].bus->publish(topic_, std::move(msgs)));
        ASSERT_TRUE(r.ok()) << r.error().message;
      }
    }
    published_ += static_cast<uint64_t>(n);
  }

  uint64_t handled() const {
    uint64_t n = 0;
    for (auto& x : nodes_)
      if (x.applier && x.applier->consumer_stats()) n += x.applier->consumer_stats()->messages.load();
    return n;
  }

  void expect_exact() {
    auto& s = *nodes_.front().store;
    const int64_t reactions = applier_testing::expect_counts_exact(
        script_, [&](const Uuid& c) { return s.owner_recount(c, script_.video); });
    auto v = run_.run(s.get_video_stats(script_.video, Deadline::after(10s)));
    ASSERT_TRUE(v.ok()) << v.error().message;
    EXPECT_EQ(v->reactions_count, reactions);
  }

  std::string pulsar_, topic_;
  config::CqlConfig cfg_;
  std::unique_ptr<bridge::CqlSession> session_;
  std::vector<Node> nodes_;
  SystemClock clock_;
  UuidGenerator ids_{clock_, 23, 5};
  applier_testing::ReactionScript script_;
  uint64_t published_ = 0;
};

TEST_F(ClusterReactionsTest, TwoNodesOwningCommentsByKeyCountExactly) {
  for (uint32_t id : {1u, 2u}) {
    Node& n = add_node(id);
    n.applier = make_applier(n, *n.store);
  }
  for (auto& n : nodes_) ASSERT_TRUE(n.applier->start().ok());
  publish_random(1200, 1);
  ASSERT_TRUE(eventually([&] { return handled() >= published_; })) << handled() << " of " << published_;
  for (auto& n : nodes_) n.applier->stop();
  for (auto& n : nodes_) EXPECT_GT(n.applier->stats().batches.load(), 0u) << "both nodes own some comments";
  expect_exact();
}

TEST_F(ClusterReactionsTest, AnOwnerGoneMidBatchLeavesItToTheOtherNodeStillExact) {
  Node& a = add_node(1);
  auto sub = subscribe_by_hand(a);
  publish_random(300, 2);
  // A alone owns every comment: it takes the whole batch, writes its registers, loses its
  // counters (a crash between steps 3 and 4), and leaves without acking.
  std::vector<events::Message> batch = receive(*sub, 300);
  auto applier_a = make_applier(a, *a.faulty);
  a.faulty->fail_counters = 1;
  std::vector<size_t> give_back;
  EXPECT_FALSE(applier_a->apply(batch, give_back).ok());
  EXPECT_EQ(a.faulty->refused.load(), 1);
  // A crashed: its leases stand until their TTL. B starts after that, so what makes it
  // recount is rule (a) alone (a deferral would make the messages redeliveries, rule (c)).
  std::this_thread::sleep_for(kLease + 500ms);

  Node& b = add_node(2);
  b.applier = make_applier(b, *b.store);
  ASSERT_TRUE(b.applier->start().ok());
  sub->close();
  ASSERT_TRUE(eventually([&] { return handled() >= published_; })) << handled() << " of " << published_;
  b.applier->stop();
  // B's bus never saw these messages (redelivery counts are per process): the registers that
  // already held the batch's ops made it recount.
  EXPECT_EQ(b.applier->stats().redelivered.load(), 0u);
  EXPECT_GE(b.applier->stats().recounts.load(), 1u);
  EXPECT_GE(b.applier->stats().repairs.load(), 1u);
  expect_exact();
}

TEST_F(ClusterReactionsTest, AnOwnerThatStallsWhileItsKeysMoveIsFencedByItsLeases) {
  // A takes a batch and stalls after reading its registers; its subscription goes (cut off
  // from Pulsar), so Key_Shared hands the batch to B at once. Without leases B would apply it
  // and A, waking, would write counter deltas computed before B's writes: double counts.
  Node& a = add_node(1);
  auto sub = subscribe_by_hand(a);
  publish_random(200, 4);
  std::vector<events::Message> batch = receive(*sub, 200);
  std::promise<void> read, wake;
  auto woken = wake.get_future().share();
  a.faulty->after_registers_read = [&read, woken] {
    read.set_value();
    woken.wait();
  };
  auto applier_a = make_applier(a, *a.faulty);
  std::vector<size_t> a_back;
  auto a_done = std::async(std::launch::async, [&] { return applier_a->apply(batch, a_back); });
  read.get_future().wait();  // A holds every comment's lease and has read the registers
  EXPECT_EQ(a.leases->stats().taken.load(), script_.comments.size());
  sub->close();

  Node& b = add_node(2);
  b.applier = make_applier(b, *b.store);
  ASSERT_TRUE(b.applier->start().ok());
  // B gets the batch, but A's leases stand: B gives the messages back and writes nothing.
  ASSERT_TRUE(eventually([&] { return b.applier->stats().deferred.load() > 0; }));
  EXPECT_EQ(b.applier->stats().batches.load(), 0u);
  // A wakes with less than the write margin left: it must not write.
  std::this_thread::sleep_for(kLease - kWriteMargin);
  wake.set_value();
  Status sa = a_done.get();
  EXPECT_FALSE(sa.ok());
  EXPECT_EQ(applier_a->stats().fenced.load(), 1u);
  EXPECT_EQ(applier_a->stats().batches.load(), 0u);
  // A's leases run out; B takes them and applies everything.
  ASSERT_TRUE(eventually([&] { return handled() >= published_; })) << handled() << " of " << published_;
  b.applier->stop();
  EXPECT_GE(b.leases->stats().refused.load(), 1u);
  EXPECT_EQ(b.leases->stats().taken.load(), script_.comments.size());
  expect_exact();
}

TEST_F(ClusterReactionsTest, TwoOpsOfOneMillisecondOnOneNodeLeaveCountsEqualToTheRegisters) {
  // Both register writes carry the same USING TIMESTAMP: Cassandra keeps the larger value per
  // cell ("like" over "dislike"), not the op-id winner; the owner counts what it kept.
  Node& n = add_node(1);
  auto a = make_applier(n, *n.store);
  for (int round = 0; round < 2; ++round) {
    script_.op_clock.advance_ms(1);
    Uuid i1 = script_.op_ids.next(), i2 = script_.op_ids.next();
    ASSERT_EQ(i1.v7_time_ms(), i2.v7_time_ms());
    for (int i = 0; i < 2; ++i) {
      ReactionOp op;
      op.op_id = (i == 0) == (i1 < i2) ? i1 : i2;  // the second has the larger id
      op.comment_id = script_.comments[round];
      op.video_id = script_.video;
      op.user_id = script_.users[0];
      op.type = (i == 0) == (round == 0) ? ReactionType::like : ReactionType::dislike;
      op.timestamp = op.op_id.v7_time_ms();
      op.node_id = 1;
      events::Message m;
      m.topic = topic_;
      m.key = op.comment_id.str();
      m.payload = events::reaction_event_json(ids_.next(), op);
      std::vector<size_t> give_back;
      ASSERT_TRUE(a->apply({m}, give_back).ok());
      EXPECT_TRUE(give_back.empty());
    }
  }
  EXPECT_EQ(a->stats().recounts.load(), 2u);
  auto& s = *n.store;
  int64_t reactions = 0;
  for (int c = 0; c < 2; ++c) {
    auto r = s.owner_recount(script_.comments[c], script_.video);
    ASSERT_TRUE(r.ok() && *r);
    EXPECT_EQ((*r)->truth.likes + (*r)->truth.dislikes, 1);
    EXPECT_EQ((*r)->stored.likes, (*r)->truth.likes) << c;
    EXPECT_EQ((*r)->stored.dislikes, (*r)->truth.dislikes) << c;
    reactions += 1;
  }
  auto v = run_.run(s.get_video_stats(script_.video, Deadline::after(10s)));
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->reactions_count, reactions);
}

}  // namespace
}  // namespace commentd::workers
