// The bus reaction applier on the LocalBus and a RocksStore (the same code runs on Pulsar and
// CQL in bus_reaction_applier_pulsartest.cpp): the reaction event decodes back to its op; two
// appliers on one Key_Shared subscription count exactly; a batch whose counters were lost
// after its registers were written is recounted, whether it comes back to the same owner
// (nack) or to the other one (the first left without acking).
#include "workers/bus_reaction_applier.h"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>
#include <thread>

#include "core/reaction_set.h"
#include "events/event_bus_conformance.h"
#include "events/local/local_bus.h"
#include "events/schemas.h"
#include "testing/eventually.h"
#include "testing/temp_store.h"
#include "workers/bus_reaction_applier_testing.h"

namespace commentd::workers {
namespace {

using events::conformance::Runner;
using commentd::testing::commit_sync;

using commentd::testing::eventually;

constexpr const char* kTopic = "reactions";

TEST(ParseReactionEvent, RoundTripsTheOpAndRefusesOtherPayloads) {
  SystemClock clock;
  UuidGenerator ids(clock, 7, 3);
  ReactionOp op;
  op.op_id = ids.next();
  op.comment_id = ids.next();
  op.video_id = ids.next();
  op.user_id = ids.next();
  op.type = ReactionType::dislike;
  op.timestamp = op.op_id.v7_time_ms();
  op.node_id = 3;
  for (auto type : {ReactionType::dislike, ReactionType::none}) {
    op.type = type;
    auto back = parse_reaction_event(events::with_position(events::reaction_event_json(ids.next(), op), 9));
    ASSERT_TRUE(back);
    EXPECT_EQ(back->op_id, op.op_id);
    EXPECT_EQ(back->comment_id, op.comment_id);
    EXPECT_EQ(back->video_id, op.video_id);
    EXPECT_EQ(back->user_id, op.user_id);
    EXPECT_EQ(back->type, type);
    EXPECT_EQ(back->timestamp, op.timestamp);
    EXPECT_EQ(back->node_id, 3u);
  }
  EXPECT_FALSE(parse_reaction_event("not json"));
  EXPECT_FALSE(parse_reaction_event(R"({"event_id":"x","event_type":"created"})"));
  std::string bad = events::reaction_event_json(ids.next(), op);
  bad.replace(bad.find("\"removed\""), 9, "\"added\"");  // type none but "added"
  EXPECT_FALSE(parse_reaction_event(bad));
}

class BusApplierTest : public ::testing::Test {
 protected:
  Runner run_;  // first: destroyed after every bus and store that posts to it
  void SetUp() override {
    store_ = *commentd::testing::open_temp_store(dir_, /*sync_writes=*/false);
    faulty_ = std::make_unique<fault::CounterFaultStore>(*store_);
    bus_ = std::make_unique<events::LocalBus>(*store_, events::LocalBusOptions{.producer_name = "t"});
    script_.video = ids_.next();
    for (int c = 0; c < 3; ++c) {
      Comment cm;
      cm.id = ids_.next();
      cm.video_id = script_.video;
      cm.user_id = ids_.next();
      cm.content = "c";
      cm.created_at = cm.id.v7_time_ms();
      store::WriteSet ws;
      ws.mutations.push_back(store::PutComment{cm});
      ws.mutations.push_back(store::IndexPut{store::Index::video, script_.video, cm.created_at, cm.id});
      ws.mutations.push_back(store::BucketPut{script_.video, time_bucket(cm.created_at), cm.created_at, cm.id});
      ASSERT_TRUE(commit_sync(*store_, std::move(ws)).ok());
      script_.comments.push_back(cm.id);
    }
    for (int u = 0; u < 40; ++u) script_.users.push_back(ids_.next());
  }
  void TearDown() override {
    appliers_.clear();
    bus_.reset();
    store_.reset();
  }

  std::unique_ptr<BusReactionApplier> applier(store::Store& s, OwnerLeases* leases = nullptr) {
    BusApplierOptions o;
    o.topic = kTopic;
    o.batch_size = 16;
    o.batch_timeout = std::chrono::milliseconds(2);
    return std::make_unique<BusReactionApplier>(
        s, *bus_, [this](const Uuid& c, const Uuid&) { return store_->recount_comment(c); }, clock_, o, leases);
  }

  // A reaction event of `op` as a delivered message.
  events::Message message(const ReactionOp& op, uint32_t redeliveries = 0) {
    events::Message m;
    m.topic = kTopic;
    m.key = op.comment_id.str();
    m.payload = events::reaction_event_json(ids_.next(), op);
    m.redelivery_count = redeliveries;
    return m;
  }

  // `n` random ops (seeded) from the users on the comments, published in chunks.
  void publish_random(int n, uint32_t seed) {
    std::mt19937 rng(seed);
    std::vector<events::OutMessage> msgs;
    for (int i = 0; i < n; ++i) {
      auto op = script_.next_op(rng, 1 + rng() % 2);
      msgs.push_back({op.comment_id.str(), events::reaction_event_json(ids_.next(), op), 0});
      if (msgs.size() == 50 || i + 1 == n) {
        ASSERT_TRUE(run_.run(bus_->publish(kTopic, std::move(msgs))).ok());
        msgs.clear();
      }
    }
    published_ += n;
  }

  uint64_t handled() const {
    uint64_t n = 0;
    for (auto& a : appliers_)
      if (auto* cs = a->consumer_stats()) n += cs->messages.load();
    return n;
  }

  // Stored counters equal the registers, and the registers the LWW result of every op.
  void expect_exact() {
    const int64_t reactions = applier_testing::expect_counts_exact(
        script_, [this](const Uuid& c) { return store_->recount_comment(c); });
    auto v = store_->recount_video(script_.video);
    ASSERT_TRUE(v.ok());
    EXPECT_EQ(v->stored.reactions_count, reactions);
  }

  commentd::testing::TempDir dir_{"bus-applier"};
  std::unique_ptr<store::rocks::RocksStore> store_;
  std::unique_ptr<fault::CounterFaultStore> faulty_;
  std::unique_ptr<events::LocalBus> bus_;
  std::vector<std::unique_ptr<BusReactionApplier>> appliers_;
  SystemClock clock_;
  UuidGenerator ids_{clock_, 11, 1};
  applier_testing::ReactionScript script_;
  uint64_t published_ = 0;
};

TEST_F(BusApplierTest, TwoOwnersOnOneSubscriptionCountExactly) {
  appliers_.push_back(applier(*store_));
  appliers_.push_back(applier(*store_));
  for (auto& a : appliers_) ASSERT_TRUE(a->start().ok());
  publish_random(600, 1);
  ASSERT_TRUE(eventually([&] { return handled() == published_; })) << handled() << " of " << published_;
  for (auto& a : appliers_) a->stop();
  expect_exact();
  uint64_t recounts = 0;
  for (auto& a : appliers_) recounts += a->stats().recounts.load();
  EXPECT_EQ(recounts, 0u);  // nothing failed: deltas only
}

TEST_F(BusApplierTest, LostCountersComeBackToTheSameOwnerAndAreRecounted) {
  appliers_.push_back(applier(*faulty_));
  faulty_->fail_counters = 3;  // three batches write their registers, then fail (nacked)
  ASSERT_TRUE(appliers_[0]->start().ok());
  publish_random(300, 2);
  ASSERT_TRUE(eventually([&] { return handled() == published_; }))
      << handled() << " of " << published_ << " failed " << appliers_[0]->consumer_stats()->failed_batches.load()
      << " dup " << appliers_[0]->stats().duplicates.load() << " applied " << appliers_[0]->stats().ops_applied.load()
      << " ign " << appliers_[0]->stats().ops_ignored.load() << " redeliv " << appliers_[0]->stats().redelivered.load();
  appliers_[0]->stop();
  EXPECT_EQ(faulty_->refused.load(), 3);
  EXPECT_GE(appliers_[0]->stats().errors.load(), 3u);
  EXPECT_GE(appliers_[0]->stats().recounts.load(), 1u);
  EXPECT_GE(appliers_[0]->stats().repairs.load(), 1u);
  expect_exact();
}

TEST_F(BusApplierTest, AnOwnerGoneMidBatchLeavesItToTheOtherWhichRecounts) {
  // Owner A takes every message, writes a batch's registers and loses its counters (as a
  // crash between steps 3 and 4), then leaves without acking; B gets the batch again.
  auto a = applier(*faulty_);
  auto sub = run_.run(bus_->subscribe(kTopic, "reaction-applier", {.type = events::SubscriptionType::key_shared}));
  ASSERT_TRUE(sub.ok());
  publish_random(200, 3);
  std::vector<events::Message> batch;
  for (int i = 0; i < 200; ++i) {
    auto m = run_.run((*sub)->receive());
    ASSERT_TRUE(m.ok());
    batch.push_back(std::move(*m));
  }
  faulty_->fail_counters = 1;
  std::vector<size_t> give_back;
  EXPECT_FALSE(a->apply(batch, give_back).ok());
  EXPECT_EQ(faulty_->refused.load(), 1);
  (*sub)->close();  // gone: no ack, no nack

  appliers_.push_back(applier(*store_));
  ASSERT_TRUE(appliers_[0]->start().ok());
  ASSERT_TRUE(eventually([&] { return handled() == published_; })) << handled() << " of " << published_;
  appliers_[0]->stop();
  // B had no memory of the failure: the redelivery (and the registers holding the batch's ops)
  // made it recount.
  EXPECT_GE(appliers_[0]->stats().recounts.load(), 1u);
  EXPECT_GE(appliers_[0]->stats().repairs.load(), 1u);
  expect_exact();
}

TEST_F(BusApplierTest, ACommentHeldElsewhereIsGivenBackAndKeepsItsDirtyMark) {
  // Owner leases (docs/cluster.md "Owner leases") by a table in memory: the comments in
  // `elsewhere` are another node's.
  std::set<Uuid> elsewhere;
  OwnerLeaseOptions lo;
  lo.retry_other = std::chrono::milliseconds(0);
  std::chrono::steady_clock::time_point now{};
  lo.now = [&now] { return now; };
  OwnerLeases leases(
      [&elsewhere](const std::vector<std::pair<Uuid, bool>>& asks, std::chrono::seconds) -> Result<std::vector<bool>> {
        std::vector<bool> out;
        for (auto& [c, renew] : asks) out.push_back(!elsewhere.count(c));
        return out;
      },
      [](const std::vector<Uuid>&) { return ok_status(); }, lo);
  auto a = applier(*faulty_, &leases);
  std::mt19937 rng(7);
  ReactionOp op1 = script_.next_op(rng, 1), op2 = script_.next_op(rng, 1);
  op2.comment_id = op1.comment_id;
  op1.type = op2.type = ReactionType::like;
  op2.user_id = script_.users[(std::find(script_.users.begin(), script_.users.end(), op1.user_id) -
                               script_.users.begin() + 1) % script_.users.size()];
  ReactionOp op3 = script_.next_op(rng, 1);  // on another comment, this node's
  op3.comment_id = op1.comment_id == script_.comments[0] ? script_.comments[1] : script_.comments[0];
  script_.expected = ReactionSet();
  for (auto* op : {&op1, &op2, &op3}) script_.expected.add(*op);
  // 1. op1's registers are written, its counters lost: the comment is dirty here.
  faulty_->fail_counters = 1;
  std::vector<size_t> back;
  EXPECT_FALSE(a->apply({message(op1)}, back).ok());
  // 2. This node's lease ran out and another node took it; the op comes back here (keys
  //    move back and forth): given back, nothing of it applied; the rest of the batch is.
  now += lo.lease + std::chrono::seconds(1);
  elsewhere.insert(op1.comment_id);
  auto m1 = message(op1, 1);
  ASSERT_TRUE(a->apply({message(op2), m1, message(op3)}, back).ok());
  EXPECT_EQ(back, (std::vector<size_t>{0, 1}));
  EXPECT_EQ(a->stats().deferred.load(), 2u);
  EXPECT_EQ(a->stats().recounts.load(), 0u);
  // 3. The lease is this node's again; op2 alone comes first: the dirty mark makes it recount.
  elsewhere.clear();
  back.clear();
  ASSERT_TRUE(a->apply({message(op2)}, back).ok());
  EXPECT_TRUE(back.empty());
  EXPECT_EQ(a->stats().recounts.load(), 1u);
  ASSERT_TRUE(a->apply({m1}, back).ok());
  expect_exact();
}

TEST_F(BusApplierTest, AnOpThatBeatsTheRegisterByOpIdAloneIsRecounted) {
  // Two ops of one user on one comment, one millisecond, one node (rule d): the second one's
  // write may not win in CQL, so its owner counts what the store kept.
  auto a = applier(*store_);
  script_.op_clock.advance_ms(1);
  Uuid i1 = script_.op_ids.next(), i2 = script_.op_ids.next();
  ASSERT_EQ(i1.v7_time_ms(), i2.v7_time_ms());
  std::vector<ReactionOp> ops(2);
  for (int i = 0; i < 2; ++i) {
    ops[i].op_id = (i == 0) == (i1 < i2) ? i1 : i2;  // ops[1] has the larger id: it wins
    ops[i].comment_id = script_.comments[0];
    ops[i].video_id = script_.video;
    ops[i].user_id = script_.users[0];
    ops[i].type = i == 0 ? ReactionType::like : ReactionType::dislike;
    ops[i].timestamp = ops[i].op_id.v7_time_ms();
    ops[i].node_id = 2;
    script_.expected.add(ops[i]);
  }
  for (int i = 0; i < 2; ++i) {
    events::Message m;
    m.topic = kTopic;
    m.key = ops[i].comment_id.str();
    m.payload = events::reaction_event_json(ids_.next(), ops[i]);
    m.message_id = static_cast<uint64_t>(i + 1);
    std::vector<size_t> give_back;
    ASSERT_TRUE(a->apply({m}, give_back).ok());
    EXPECT_TRUE(give_back.empty());
  }
  EXPECT_EQ(a->stats().recounts.load(), 1u);
  expect_exact();
}

}  // namespace
}  // namespace commentd::workers
