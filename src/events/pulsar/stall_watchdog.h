// A watchdog for a known class of broker fault: a Key_Shared subscription that stops
// dispatching while it has a backlog and ready consumers (apache/pulsar issues 8115, 10284,
// 21199: after consumers reconnect, e.g. across a broker restart, the dispatcher's read
// position or its per-key hold can leave messages that no consumer is ever given). Seen here
// once after a kill -9 of the broker: 39 messages in the backlog, none delivered, the
// cursor's read position past them. What unsticks it is what an operator does: unload the
// topic (the broker reopens it and every consumer reconnects, at the acknowledged position).
// Without this, "when Pulsar returns, everything drains by itself" would not hold.
//
// Every check reads the topic's stats from the admin REST API and, per watched subscription,
// looks for: consumers connected with permits to spare, more messages in the backlog than
// those delivered and not yet acknowledged (so some were never given out), and no message
// dispatched (msgOutCounter unchanged) since the previous check. When that lasts
// `stuck_after`, the topic is unloaded once and the subscription's clock starts over.
// A consumer that is slow, failing, or redelivering moves msgOutCounter (nacked messages are
// dispatched again), so only a dispatcher that sends nothing at all trips it. Unloading a
// healthy topic costs a reconnect and redelivery of unacknowledged messages, which every
// consumer here handles (idempotent by event id; the appliers are fenced by their leases).
// Several nodes may unload the same topic in one round; that is one more reconnect.
//
// check() is synchronous, each HTTP request bounded by `request_timeout`; it runs on the
// maintenance scheduler's thread. Not thread-safe: one caller.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"
#include "core/error.h"

namespace commentd::events {

// One subscription's numbers from the broker's topic stats.
struct SubscriptionSample {
  int64_t backlog = 0;    // msgBacklog: not yet acknowledged
  int64_t unacked = 0;    // unackedMessages: delivered, not yet acknowledged
  int64_t msg_out = 0;    // msgOutCounter: delivered so far (resets when the topic reloads)
  int64_t permits = 0;    // the consumers' availablePermits, summed
  size_t consumers = 0;
};

// The sample of `subscription` in a topic-stats JSON document
// (GET /admin/v2/persistent/<tenant>/<namespace>/<topic>/stats); nullopt when the topic has
// no such subscription. An error when the document is not topic stats.
Result<std::optional<SubscriptionSample>> parse_subscription_stats(std::string_view json,
                                                                   std::string_view subscription);

// "persistent://t/n/x" -> "/admin/v2/persistent/t/n/x"; an error for any other form.
Result<std::string> admin_topic_path(std::string_view topic);

// Decides when one subscription is stuck, from its samples over time.
class StallDetector {
 public:
  explicit StallDetector(std::chrono::milliseconds stuck_after) : stuck_after_(stuck_after) {}
  // True once the subscription has waited with nothing dispatched for stuck_after.
  bool observe(const SubscriptionSample& s, TimeMs now);
  // After the remedy: the next samples start a new wait.
  void reset() {
    last_out_.reset();
    waiting_since_.reset();
  }

 private:
  std::chrono::milliseconds stuck_after_;
  std::optional<int64_t> last_out_;
  std::optional<TimeMs> waiting_since_;
};

struct AdminReply {
  int status = 0;
  std::string body;
};
// One admin REST call: (method, target) -> reply, or an error (connect, timeout).
using AdminHttp = std::function<Result<AdminReply>(std::string_view method, const std::string& target)>;
// The real one: HTTP/1.1 to `admin_url` ("http://host:port", or "https://host:port": the
// server's chain verified against `ca_file`'s roots, or the system's without one, and its
// name or IP against its certificate), with `token` as a bearer token when set, each call
// (connect, handshake, request) bounded by `timeout`. An error for an admin_url it cannot use
// or an https CA file it cannot read.
Result<AdminHttp> make_admin_http(const std::string& admin_url, const std::string& token,
                                  std::chrono::milliseconds timeout, const std::string& ca_file = "");

struct WatchedSubscription {
  std::string topic;         // persistent://tenant/namespace/topic
  std::string subscription;
};

struct StallWatchdogStats {
  std::atomic<uint64_t> checks{0};    // stats reads that answered
  std::atomic<uint64_t> errors{0};    // stats reads or unloads that failed
  std::atomic<uint64_t> stalls{0};    // subscriptions found stuck
  std::atomic<uint64_t> unloads{0};   // topics unloaded for it
};

class StallWatchdog {
 public:
  StallWatchdog(AdminHttp http, std::vector<WatchedSubscription> watched,
                std::chrono::milliseconds stuck_after, const Clock& clock);
  // One round over every watched subscription. An error only when every stats read failed
  // (the scheduler logs it); a stuck subscription is logged and counted.
  Status check();
  const StallWatchdogStats& stats() const { return stats_; }

 private:
  struct Entry {
    WatchedSubscription w;
    std::string path;  // admin path of the topic
    StallDetector detector;
  };
  AdminHttp http_;
  std::vector<Entry> entries_;
  const Clock& clock_;
  StallWatchdogStats stats_;
};

}  // namespace commentd::events
