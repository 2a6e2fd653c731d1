// The reaction applier of cluster mode (docs/cluster.md "Reaction apply", CQL): every node
// consumes the reactions topic through ONE Key_Shared subscription keyed by comment id, so
// one node at a time owns a comment and is the only writer of its registers and counters.
// Each batch (BatchConsumer: batch_size or batch_timeout):
//  1. decodes the reaction events (reaction_event_json; the op is the event), drops copies
//     by op id (a bounded in-memory window) and counts what does not decode;
//  2. reads the batch's registers and merges the ops by LWW (core/reaction_set.h);
//  3. writes registers, user_reactions and reaction_events (idempotent: LWW timestamps,
//     keys by op id), then the net counter deltas of real transitions -- one commit_owned
//     (the store writes its counters after its rows; on CQL a comment's last_updated then
//     rides in the batch of its registers);
//  4. recounts the comments the rule below names -- a second commit_owned, only for them;
//  5. returns success, and the consumer acks the batch.
// Crash or failure between 3 and 5: the messages come back (nack, or redelivery to the next
// owner). Rule (exact, no position needed): a comment is RECOUNTED instead of counted by
// deltas when (a) a register of the batch already holds an op of the batch (3 ran before),
// (b) this owner failed a batch touching it (kept in memory: a nacked batch comes back here),
// (c) one of its messages is a redelivery, or (d) an op ties the stored register's write
// timestamp (same millisecond and node: the store may keep either value). A recount writes
// registers first (3), then reads
// the comment's count from all its registers and its stored counters and writes the
// difference (and the same difference to its video's reactions_count). It is exact because
// the owner is the only writer of both (rule 3 of docs/cluster.md).
// With owner leases (workers/owner_leases.h; cluster mode always has them), a batch first
// holds the lease of every comment it touches: the messages of comments another node still
// holds are given back (nacked; they come again, here or to that node), and each write step
// starts only while every lease it relies on has write_margin left (else the batch fails and
// comes back). So a node that lost its keys never writes beside their new owner.
//
// Thread-safe: apply() runs on the consumer's thread only; stats from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"
#include "core/model.h"
#include "events/event_bus.h"
#include "metrics/histogram.h"
#include "store/store.h"
#include "workers/applier_stats.h"
#include "workers/batch_consumer.h"
#include "workers/event_subscriber.h"
#include "workers/owner_leases.h"
#include "workers/worker_manager.h"

namespace commentd::workers {

// The op carried by a reaction event (events/schemas.h reaction_event_json); nullopt if the
// payload is not one. The op's timestamp is its id's UUIDv7 time (as the request made it).
std::optional<ReactionOp> parse_reaction_event(std::string_view payload);

struct BusApplierOptions {
  std::string topic;                                   // pulsar.topics.reactions
  std::string subscription = "reaction-applier";       // one name shared by every node
  size_t batch_size = 64;
  std::chrono::milliseconds batch_timeout{5};
  size_t dedup_window = 100000;                        // op ids remembered per node
  std::chrono::milliseconds resubscribe_backoff{200};
  // A failed batch, or a message given back (its comment's lease is another node's), comes
  // again after this: a deferred comment waits out the other lease (seconds) in a few rounds,
  // not dozens.
  std::chrono::milliseconds nack_delay{500};
};

struct BusApplierStats : ApplierStats {  // errors: batches failed and given back
  std::atomic<uint64_t> duplicates{0};    // op ids already applied by this node
  std::atomic<uint64_t> malformed{0};     // messages that are not reaction events (acked)
  std::atomic<uint64_t> redelivered{0};   // messages this node saw again
  std::atomic<uint64_t> recounts{0};      // comments recounted from their registers
  std::atomic<uint64_t> repairs{0};       // recounts that found the stored counters off
  std::atomic<uint64_t> deferred{0};      // messages given back: another node holds the comment's lease
  std::atomic<uint64_t> fenced{0};        // batches failed: a lease had too little time left to write
  // From the op's timestamp (the request) to its batch applied: the consumer's lag.
  metrics::Histogram lag_seconds{metrics::Histogram::delay_bounds()};
};

class BusReactionApplier final : public Worker {
 public:
  static constexpr const char* kName = "reaction-applier";
  // The owner's recount of `comment` (of `video`): its stored counters and its count from
  // all its registers. Correct only in the comment's owner (no snapshot needed: nobody else
  // writes either). nullopt: no such comment.
  using Recount = std::function<Result<std::optional<store::Store::CommentRecount>>(const Uuid& comment,
                                                                                     const Uuid& video)>;

  // REQUIRES: `store`, `bus`, `clock` and `leases` (null: no fencing, one node alone) outlive
  // the applier.
  BusReactionApplier(store::Store& store, events::EventBus& bus, Recount recount, const Clock& clock,
                     BusApplierOptions opts, OwnerLeases* leases = nullptr);
  ~BusReactionApplier() override;

  // Joins the subscription (in the background if the bus is away).
  Status start() override;
  // Leaves the subscription after the batch in hand, then ends its leases; what is not acked
  // goes to other nodes.
  void stop() override;
  std::string name() const override { return kName; }
  BusApplierStats& stats() { return stats_; }
  const BatchConsumerStats* consumer_stats() const { return consumer_ ? &consumer_->stats() : nullptr; }
  // Ends the owner leases no batch has used for their idle_release, between two batches (a
  // maintenance task calls it every second; during a batch it does nothing), so comments
  // whose keys moved to another node reach their new owner within seconds.
  void release_idle_leases();
  // Called for each op of an applied batch (activity tiers, counter-cache invalidation).
  void set_on_applied(std::function<void(const ReactionOp&)> fn) { on_applied_ = std::move(fn); }

  // The batch handler (steps 1-4 above). Success: ack the batch but the messages whose
  // indexes are put in `give_back` (nack those); failure: nack it. Public for tests, which
  // drive a consumer of their own through it.
  Status apply(const std::vector<events::Message>& batch, std::vector<size_t>& give_back);

 private:
  store::Store& store_;
  events::EventBus& bus_;
  Recount recount_;
  const Clock& clock_;
  const BusApplierOptions opts_;
  OwnerLeases* leases_;
  BusApplierStats stats_;
  std::function<void(const ReactionOp&)> on_applied_;
  std::unique_ptr<BatchConsumer> consumer_;

  std::mutex mu_;                // apply() is serial; this guards against a test's misuse
  RecentIds seen_;               // GUARDED_BY(mu_): op ids applied by this node
  std::set<Uuid> dirty_;         // GUARDED_BY(mu_): comments of failed batches
};

}  // namespace commentd::workers
