// One durable subscription's life, shared by the plan's Consumer (EventSubscriber) and
// BatchConsumer: a thread of its own runs `loop` on a consumer of `topic`/`subscription`.
// - start() subscribes once, waiting for the answer on the caller's thread for up to
//   `startup_wait`; a subscribe still waiting then (a broker that is away: the bus would wait
//   out its connect timeout) goes on in the background, so it never holds the node's start.
//   A bus that is away, or a broker-side failure (e.g. Pulsar's "not enough bookies"), does
//   not fail it: the runner subscribes again in the background with backoff (doubling up to
//   5 s), logging each failure and counting it. Only an error no retry can fix
//   (is_permanent_subscribe_error: bad arguments, authentication) answered within
//   startup_wait fails start(), so a misconfigured node stops at start-up with the cause;
//   one answered later is logged as an error, counted, and retried like the others.
// - When `loop` returns while not stopping (the bus ended the consumer: the broker went
//   away), the consumer is closed and replaced the same way; what it had not acked is
//   redelivered by the bus.
// - stop() closes the consumer (a pending receive() completes) and joins the thread. A
//   subscribe in flight is waited for: the bus bounds it (Pulsar: connect_timeout +
//   send_timeout + its busy retries, about 10 s with the defaults; docs/bridge.md), and a
//   stopping node ends it first (EventBus::stop_waiting, called by Application::stop).
//
// Thread-safe: start/stop from one owner thread; stats from any thread.
#pragma once

#include <prometheus/metric_family.h>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "events/event_bus.h"

namespace commentd::workers {

struct SubscriptionStats {
  std::atomic<uint64_t> subscribe_errors{0};  // failed subscribe attempts (start and background)
  std::atomic<uint64_t> resubscribes{0};      // consumers the bus ended, replaced
};

struct SubscriptionOptions {
  std::string topic;
  std::string subscription;
  events::SubscribeOptions sub;
  std::chrono::milliseconds resubscribe_backoff{200};  // doubles up to 5 s while the bus is away
  std::string thread_name = "commentd-sub";            // at most 15 characters
  // How long start() waits for the first subscribe's answer. A reachable broker answers
  // within it (a new topic's first subscribe included), so a permanent error still stops the
  // start; past it the subscribe goes on in the background.
  std::chrono::milliseconds startup_wait{2000};
};

// commentd_subscription_subscribe_errors_total and _resubscribes_total, one series per
// subscription (label `subscription`: the worker's name).
void append_subscription_metrics(const std::vector<std::pair<std::string, const SubscriptionStats*>>& subs,
                                 std::vector<prometheus::MetricFamily>& out);

// True for errors that retrying cannot fix (configuration, credentials).
bool is_permanent_subscribe_error(const Error& e);

class Subscription {
 public:
  // Consumes until the consumer ends (receive() fails) or the subscription stops. Runs on
  // ioc(); may use it for timers and channels, which must be done when it returns.
  using Loop = std::function<boost::asio::awaitable<void>(events::Consumer&)>;

  // REQUIRES: `bus` and `stats` outlive the subscription.
  Subscription(events::EventBus& bus, std::string name, SubscriptionOptions opts, SubscriptionStats& stats,
               Loop loop);
  ~Subscription();

  Status start();
  void stop();
  bool stopping() const { return stopping_; }
  boost::asio::io_context& ioc() { return ioc_; }
  const std::string& name() const { return name_; }

 private:
  boost::asio::awaitable<void> first_subscribe(std::shared_ptr<std::optional<Status>> first);
  boost::asio::awaitable<void> run();
  boost::asio::awaitable<bool> subscribe_with_backoff();
  void set_consumer(std::unique_ptr<events::Consumer> c);
  std::unique_ptr<events::Consumer> take_consumer();

  events::EventBus& bus_;
  const std::string name_;
  const SubscriptionOptions opts_;
  SubscriptionStats& stats_;
  Loop loop_;

  std::mutex mu_;
  std::unique_ptr<events::Consumer> consumer_;  // guarded by mu_
  std::atomic<bool> stopping_{false};
  bool handed_off_ = false;  // start() returned with the first subscribe still going (ioc_'s thread)
  boost::asio::io_context ioc_{1};
  boost::asio::steady_timer timer_{ioc_};  // the backoff; owned by ioc_'s thread
  std::thread thread_;
};

}  // namespace commentd::workers
