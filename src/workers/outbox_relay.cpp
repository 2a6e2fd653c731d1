#include "workers/outbox_relay.h"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <algorithm>
#include <future>
#include <random>

#include "events/schemas.h"
#include "store/async.h"

namespace commentd::workers {

namespace asio = boost::asio;

namespace {
constexpr const char* kReactionEventsStart = "reaction-events/first-op";
}  // namespace

RelaySource outbox_source(store::Store& store) {
  return RelaySource{.last_seq = [&store] { return store.last_outbox_seq(); },
                     .read = [&store](uint64_t after, size_t max) { return store.read_outbox_entries(after, max); }};
}

RelaySource op_log_source(store::Store& store, std::string topic, uint64_t floor) {
  return RelaySource{
      .last_seq = [&store] { return store.last_op_seq(); },
      .read = [&store, topic = std::move(topic)](uint64_t after, size_t max) -> Result<std::vector<store::OutboxEntry>> {
        auto ops = store.read_ops(after, max);
        if (!ops) return ops.take_error();
        std::vector<store::OutboxEntry> out;
        out.reserve(ops->size());
        for (auto& op : *ops)
          out.push_back({op.seq, topic, op.comment_id.str(), events::reaction_event_json(op.op_id, op)});
        return out;
      },
      .floor = floor};
}

Result<uint64_t> reaction_events_start(store::Store& store) {
  auto from = store.consumer_pos(kReactionEventsStart);
  if (!from) return from.take_error();
  if (*from != 0) return *from;
  const uint64_t first = store.last_op_seq() + 1;
  store::WriteSet ws;
  ws.preconditions.push_back(store::ConsumerAt{kReactionEventsStart, 0});
  ws.mutations.push_back(store::SetConsumerPos{kReactionEventsStart, first});
  if (auto s = store.commit_owned(std::move(ws)); !s) return s.take_error();
  return first;
}

uint64_t op_log_trim_bound(uint64_t applied, std::optional<uint64_t> relay_delivered, uint64_t keep) {
  const uint64_t done = relay_delivered ? std::min(applied, *relay_delivered) : applied;
  return done > keep ? done - keep : 0;
}

OutboxRelay::OutboxRelay(store::Store& store, events::EventBus& bus, RelayOptions opts)
    : OutboxRelay(store, bus, std::move(opts), outbox_source(store)) {}

OutboxRelay::OutboxRelay(store::Store& store, events::EventBus& bus, RelayOptions opts, RelaySource source)
    : store_(store), bus_(bus), opts_(std::move(opts)), source_(std::move(source)) {}

OutboxRelay::~OutboxRelay() { stop(); }

Status OutboxRelay::load_position() {
  if (!opts_.producer.empty()) {
    const std::string key = name() + "/incarnation";
    auto inc = store_.consumer_pos(key);
    if (!inc) return inc.take_error();
    if (*inc == 0) {
      // 48 random bits: a position is an int64 on CQL, and 12 hex digits keep the name short.
      std::random_device rd;
      const uint64_t fresh = ((uint64_t{rd()} << 32 | rd()) & 0xFFFF'FFFF'FFFFull) | 1;
      store::WriteSet ws;
      ws.preconditions.push_back(store::ConsumerAt{key, 0});
      ws.mutations.push_back(store::SetConsumerPos{key, fresh});
      auto s = store_.commit_owned(std::move(ws));
      if (!s && s.error().code != Errc::conflict) return s;
      inc = s ? Result<uint64_t>(fresh) : store_.consumer_pos(key);  // conflict: another start wrote one
      if (!inc) return inc.take_error();
    }
    producer_ = fmt::format("{}-{:012x}", opts_.producer, *inc);
  }
  auto pos = store_.consumer_pos(name());
  if (!pos) return pos.take_error();
  if (*pos < source_.floor) {
    // Conditional on the position just read, as every write of it.
    store::WriteSet ws;
    ws.preconditions.push_back(store::ConsumerAt{name(), *pos});
    ws.mutations.push_back(store::SetConsumerPos{name(), source_.floor});
    if (auto s = store_.commit_owned(std::move(ws)); !s) return s;
    *pos = source_.floor;
  }
  delivered_ = *pos;
  return ok_status();
}

Status OutboxRelay::start() {
  if (auto s = load_position(); !s) return s;
  asio::co_spawn(ioc_, loop(), asio::detached);
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "commentd-relay");
    ioc_.run();
  });
  return ok_status();
}

void OutboxRelay::stop() {
  if (!thread_.joinable()) return;
  asio::post(ioc_, [this] {
    stopping_ = true;
    timer_.cancel();
  });
  thread_.join();
}

asio::awaitable<void> OutboxRelay::loop() {
  std::chrono::milliseconds backoff{0};
  for (;;) {
    auto n = co_await relay_once();
    std::chrono::milliseconds wait{0};
    if (!n) {
      stats_.errors.fetch_add(1);
      if (stopping_) co_return;  // the bus is away: what is left waits for the next start
      // The bus is away or failing: back off exponentially, so a long outage costs little.
      backoff = backoff.count() == 0 ? opts_.error_backoff : std::min(backoff * 2, opts_.max_error_backoff);
      stats_.backoff_ms.store(backoff.count());
      spdlog::warn("outbox relay: {} (retrying in {} ms)", n.error().message, backoff.count());
      wait = backoff;
    } else if (backoff.count() != 0) {
      backoff = std::chrono::milliseconds{0};
      stats_.backoff_ms.store(0);
      spdlog::info("outbox relay: the bus is back");
    }
    if (n && *n == 0) {
      if (stopping_) co_return;
      wait = opts_.poll_interval;
    }
    if (wait.count() > 0) {
      timer_.expires_after(wait);
      boost::system::error_code ec;
      co_await timer_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
  }
}

asio::awaitable<Result<size_t>> OutboxRelay::relay_once() {
  const uint64_t from = delivered_.load(), last = source_.last_seq();
  if (last <= from) {
    stats_.oldest_pending_at_ms.store(0);
    co_return size_t{0};
  }
  auto entries = source_.read(from, opts_.batch_size);
  if (!entries) co_return entries.take_error();
  // Only what the store calls durable (a read may see a later entry before its write is).
  while (!entries->empty() && entries->back().seq > last) entries->pop_back();
  if (entries->empty()) co_return size_t{0};
  stats_.rounds.fetch_add(1);
  auto oldest = events::parse_event_header(entries->front().payload);
  stats_.oldest_pending_at_ms.store(oldest && oldest->at ? *oldest->at : 0);

  // One publish per topic, each with its entries in outbox order: the order the bus keeps is
  // per topic (and per key within it), so nothing is lost by grouping, and a round of
  // interleaved comment and reaction events costs two publishes instead of one per run.
  // Topics go out in the order of their first entry; publishes run one after another.
  std::vector<std::pair<std::string_view, std::vector<events::OutMessage>>> by_topic;
  for (auto& e : *entries) {
    auto it = std::find_if(by_topic.begin(), by_topic.end(), [&](const auto& t) { return t.first == e.topic; });
    if (it == by_topic.end()) it = by_topic.emplace(by_topic.end(), e.topic, std::vector<events::OutMessage>{});
    it->second.push_back({e.key, events::with_position(e.payload, e.seq), e.seq});
  }
  for (auto& [topic, msgs] : by_topic) {
    auto acks = co_await bus_.publish(std::string(topic), std::move(msgs), producer_);
    if (!acks) co_return acks.take_error();
    for (auto& a : *acks) (a.duplicate ? stats_.duplicates : stats_.published).fetch_add(1);
  }
  if (crash_after_publish_) {
    crash_after_publish_ = false;
    co_return Error(Errc::internal, "injected crash after publish", "injected");
  }
  const uint64_t to = entries->back().seq;
  store::WriteSet ws;
  ws.preconditions.push_back(store::ConsumerAt{name(), from});
  ws.mutations.push_back(store::SetConsumerPos{name(), to});
  auto r = co_await store::commit(store_, std::move(ws));
  if (!r && r.error().code == Errc::conflict) {
    // The stored position moved under us: on CQL a conditional write that timed out may
    // still apply later (ours, from an earlier round). Carry on from the stored position;
    // whatever is published twice, consumers drop by event id.
    const uint64_t mine = delivered_.load();
    if (auto st = load_position(); !st) co_return st.error();
    spdlog::warn("outbox relay: stored position {} differs from {}; continuing from the stored one",
                 delivered_.load(), mine);
    stats_.position_reloads.fetch_add(1);
    co_return entries->size();
  }
  if (!r) co_return r.take_error();
  delivered_.store(to);
  co_return entries->size();
}

}  // namespace commentd::workers
