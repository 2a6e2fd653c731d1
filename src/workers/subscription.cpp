#include "workers/subscription.h"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <optional>

#include "metrics/metrics.h"

namespace commentd::workers {

namespace asio = boost::asio;

void append_subscription_metrics(const std::vector<std::pair<std::string, const SubscriptionStats*>>& subs,
                                 std::vector<prometheus::MetricFamily>& out) {
  prometheus::MetricFamily errors{"commentd_subscription_subscribe_errors_total",
                                  "Failed attempts to subscribe (retried with backoff), by subscription",
                                  prometheus::MetricType::Counter, {}};
  prometheus::MetricFamily again{"commentd_subscription_resubscribes_total",
                                 "Consumers the bus ended (e.g. the broker went away) and replaced, by subscription",
                                 prometheus::MetricType::Counter, {}};
  for (const auto& [name, st] : subs) {
    metrics::add_sample(errors, {{"subscription", name}}, double(st->subscribe_errors.load()));
    metrics::add_sample(again, {{"subscription", name}}, double(st->resubscribes.load()));
  }
  out.push_back(std::move(errors));
  out.push_back(std::move(again));
}

bool is_permanent_subscribe_error(const Error& e) {
  switch (e.code) {
    case Errc::bad_request:
    case Errc::unprocessable:
    case Errc::unauthenticated:
    case Errc::forbidden:
      return true;
    default:
      break;
  }
  // The bridge's codes for a refused credential or a malformed topic/subscription (an
  // internal Errc: no client caused them); everything else from a broker may pass.
  const auto d = e.client_code();
  return d == "bridge_auth" || d == "bridge_bad_argument" || d == "bridge_invalid" || d == "bridge_syntax";
}

Subscription::Subscription(events::EventBus& bus, std::string name, SubscriptionOptions opts,
                           SubscriptionStats& stats, Loop loop)
    : bus_(bus), name_(std::move(name)), opts_(std::move(opts)), stats_(stats), loop_(std::move(loop)) {}

Subscription::~Subscription() { stop(); }

Status Subscription::start() {
  // The first subscribe runs on this thread for up to startup_wait; past it, the runner's
  // thread takes it over, so a broker that is away does not hold the node's start (each
  // subscription would otherwise wait out the bus's bound, pulsar.connect_timeout and more).
  auto first = std::make_shared<std::optional<Status>>();
  handed_off_ = false;
  asio::co_spawn(ioc_, first_subscribe(first), asio::detached);
  ioc_.restart();
  const auto until = std::chrono::steady_clock::now() + opts_.startup_wait;
  while (!*first && ioc_.run_one_until(until) > 0) {
  }
  if (*first && !**first) {  // an error no retry can fix: the coroutine has ended
    ioc_.run();              // (nothing is left on it)
    return std::move(**first);
  }
  handed_off_ = true;  // the coroutine goes on to run() on the runner's thread
  ioc_.restart();
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), opts_.thread_name.c_str());
    ioc_.run();
  });
  return ok_status();
}

asio::awaitable<void> Subscription::first_subscribe(std::shared_ptr<std::optional<Status>> first) {
  auto c = co_await bus_.subscribe(opts_.topic, opts_.subscription, opts_.sub);
  if (c) {
    set_consumer(std::move(*c));
  } else if (is_permanent_subscribe_error(c.error()) && !handed_off_) {
    first->emplace(c.take_error());  // start() fails with it
    co_return;
  } else {
    stats_.subscribe_errors.fetch_add(1);
    if (is_permanent_subscribe_error(c.error()))  // found after the start had gone on
      spdlog::error("{}: subscribing to {} failed ({}); check the configuration; retrying in the background",
                    name_, opts_.topic, c.error().message);
    else
      spdlog::warn("{}: subscribing to {} failed ({}); retrying in the background", name_, opts_.topic,
                   c.error().message);
  }
  first->emplace(ok_status());
  // Lets start() return before the loop begins: the loop runs on the runner's thread only.
  co_await asio::post(ioc_, asio::use_awaitable);
  co_await run();
}

void Subscription::stop() {
  stopping_ = true;
  asio::post(ioc_, [this] { timer_.cancel(); });
  {
    std::lock_guard lk(mu_);
    if (consumer_) consumer_->close();  // a pending receive() completes with unavailable
  }
  if (thread_.joinable()) thread_.join();
}

void Subscription::set_consumer(std::unique_ptr<events::Consumer> c) {
  std::lock_guard lk(mu_);
  consumer_ = std::move(c);
  if (stopping_) consumer_->close();
}

std::unique_ptr<events::Consumer> Subscription::take_consumer() {
  std::lock_guard lk(mu_);
  return std::move(consumer_);
}

asio::awaitable<bool> Subscription::subscribe_with_backoff() {
  {
    std::lock_guard lk(mu_);
    if (consumer_) co_return true;
  }
  auto wait = opts_.resubscribe_backoff;
  while (!stopping_) {
    timer_.expires_after(wait);
    boost::system::error_code ec;
    co_await timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    if (stopping_) break;
    auto c = co_await bus_.subscribe(opts_.topic, opts_.subscription, opts_.sub);
    if (c) {
      set_consumer(std::move(*c));
      spdlog::info("{}: subscribed to {}", name_, opts_.topic);
      co_return true;
    }
    stats_.subscribe_errors.fetch_add(1);
    wait = std::min<std::chrono::milliseconds>(wait * 2, std::chrono::seconds(5));
    spdlog::warn("{}: subscribing to {} failed ({}); next try in {} ms", name_, opts_.topic, c.error().message,
                 wait.count());
  }
  co_return false;
}

asio::awaitable<void> Subscription::run() {
  while (!stopping_) {
    if (!co_await subscribe_with_backoff()) break;
    events::Consumer* c = nullptr;
    {
      std::lock_guard lk(mu_);
      c = consumer_.get();
    }
    co_await loop_(*c);
    if (stopping_) break;
    // The bus ended the consumer (e.g. the broker went away): replace it.
    if (auto old = take_consumer()) old->close();
    stats_.resubscribes.fetch_add(1);
    spdlog::warn("{}: the consumer of {} ended; subscribing again", name_, opts_.topic);
  }
}

}  // namespace commentd::workers
