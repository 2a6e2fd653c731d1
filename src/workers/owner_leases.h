// The leases that fence a reaction owner (docs/cluster.md "Owner leases"). Key_Shared gives
// each comment's messages to one node at a time, but it cannot stop a node that lost its keys
// (cut off from Pulsar, paused, or on the far side of a broker restart) from finishing the
// batch in its hands while the new owner applies the same comment: both would count the same
// transitions. So the node that applies a comment also holds the comment's lease in the
// store: taken by one conditional write when free, renewed by its holder, ended by its TTL or
// by the holder at a clean stop. A node writes a comment's registers and counters only while
// it holds the lease with at least `write_margin` left, so every write it starts lands (or is
// dropped by the store) before the lease can pass to another node.
//
// This class is the owner's side: which leases it holds and until when (by its own steady
// clock, from before the write that took or renewed each one), which to take or renew before a
// batch, and which another node holds (asked again after `retry_other`, not at every
// redelivery). The store does the conditional writes (Hold, Release).
//
// Assumes, as the counter repair and the commit intents do, that clocks run at the same rate;
// the store's TTL has a granularity of one second, taken off every lease.
//
// Thread-safe: one owner thread calls hold/writable/release_all; stats from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <utility>
#include <vector>

#include "core/error.h"
#include "core/uuid.h"

namespace commentd::workers {

struct OwnerLeaseOptions {
  std::chrono::seconds lease{30};                      // the TTL of a lease taken or renewed
  std::chrono::milliseconds write_margin{7000};        // lease left for a write to start
  std::chrono::milliseconds retry_other{1000};         // a lease held elsewhere is asked again after this
  // A lease no batch has used for this long is released by release_idle(): when the broker
  // moves a comment's key to another node (a node joins or comes back), the comment waits
  // about this long for its new owner, not a whole lease. A comment quieter than this costs a
  // take and a release per batch instead of one take per lease.
  std::chrono::milliseconds idle_release{5000};
  std::function<std::chrono::steady_clock::time_point()> now = [] { return std::chrono::steady_clock::now(); };
};

struct OwnerLeaseStats {
  std::atomic<uint64_t> taken{0};      // leases taken (free before)
  std::atomic<uint64_t> renewed{0};
  std::atomic<uint64_t> refused{0};    // asks answered: another node holds it
  std::atomic<uint64_t> released{0};
  std::atomic<uint64_t> failures{0};   // hold or release calls that failed
  std::atomic<uint64_t> held{0};       // leases held now (as of the last call)
};

class OwnerLeases {
 public:
  // One conditional write per ask (comment, renew?), all with TTL `ttl`; per ask: held now.
  using Hold = std::function<Result<std::vector<bool>>(const std::vector<std::pair<Uuid, bool>>& asks,
                                                       std::chrono::seconds ttl)>;
  using Release = std::function<Status(const std::vector<Uuid>& comments)>;

  // REQUIRES: lease > write_margin + 1 s (config validation keeps lease >= 3 x margin).
  OwnerLeases(Hold hold, Release release, OwnerLeaseOptions opts);

  // Makes sure this node holds the leases of `comments` with more than two thirds of a lease
  // left (taking the free ones, renewing its own), and answers the comments it does NOT hold:
  // another node does. An error: no lease asked about is known to be held (the batch waits).
  Result<std::set<Uuid>> hold(const std::set<Uuid>& comments);
  // True when every lease of `comments` is held with at least write_margin left: a write may
  // start. Reads the clock; no I/O.
  bool writable(const std::set<Uuid>& comments) const;
  // Ends every lease held (a clean stop), so the next owners need not wait out the TTLs.
  void release_all();
  // Ends the leases no hold() has asked about for idle_release. REQUIRES: no batch of this
  // node is between its hold() and its last write (the owner calls it between batches).
  void release_idle();

  const OwnerLeaseStats& stats() const { return stats_; }
  const OwnerLeaseOptions& options() const { return opts_; }

 private:
  using TimePoint = std::chrono::steady_clock::time_point;
  struct Entry {
    bool mine = false;
    TimePoint until;  // mine: held until; else: ask again from
    TimePoint used;   // mine: the last hold() that asked about it
  };
  // Releases `which` (held by this node) and forgets them. REQUIRES: mu_ held.
  void release_locked(const std::vector<Uuid>& which);
  void prune(TimePoint now);

  Hold hold_;
  Release release_;
  const OwnerLeaseOptions opts_;
  OwnerLeaseStats stats_;
  mutable std::mutex mu_;
  std::map<Uuid, Entry> leases_;  // GUARDED_BY(mu_)
  TimePoint last_prune_{};        // GUARDED_BY(mu_)
};

}  // namespace commentd::workers
