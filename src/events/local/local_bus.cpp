#include "events/local/local_bus.h"

#include <pthread.h>

#include <boost/asio/async_result.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <deque>
#include <functional>
#include <future>
#include <map>
#include <set>
#include <thread>
#include <unordered_map>

#include "core/posting.h"
#include "store/rocks/codec.h"

namespace commentd::events {

using store::rocks::get_u64be;
using store::rocks::put_u64be;
using BusOp = store::rocks::RocksStore::BusOp;

namespace {

std::string prefix(char kind, const std::string& topic) {
  std::string k(1, kind);
  k += topic;
  k.push_back('\0');
  return k;
}
std::string msg_key(const std::string& topic, uint64_t id) {
  std::string k = prefix('m', topic);
  put_u64be(k, id);
  return k;
}
std::string u64(uint64_t v) {
  std::string s;
  put_u64be(s, v);
  return s;
}
void put_str(std::string& out, const std::string& s) {
  put_u64be(out, s.size());
  out += s;
}
bool take_str(std::string_view& in, std::string& out) {
  if (in.size() < 8) return false;
  uint64_t n = get_u64be(in);
  in.remove_prefix(8);
  if (in.size() < n) return false;
  out.assign(in.substr(0, n));
  in.remove_prefix(n);
  return true;
}
std::string encode_message(const Message& m) {
  std::string v;
  put_str(v, m.key);
  put_str(v, m.producer);
  put_u64be(v, m.sequence_id);
  v += m.payload;
  return v;
}
std::optional<Message> decode_message(const std::string& topic, uint64_t id, std::string_view v) {
  Message m;
  m.topic = topic;
  m.message_id = id;
  if (!take_str(v, m.key) || !take_str(v, m.producer) || v.size() < 8) return std::nullopt;
  m.sequence_id = get_u64be(v);
  v.remove_prefix(8);
  m.payload.assign(v);
  return m;
}
Error closed_error() { return Error(Errc::unavailable, "event bus is closed", "bus_closed"); }

// Runs f(done) on the core's thread; `done(R)` resumes the awaiting coroutine on its own
// executor. f must call done exactly once (now or later).
template <class R, class Core, class F>
asio::awaitable<R> on_core(std::shared_ptr<Core> core, F f) {
  return asio::async_initiate<decltype(asio::use_awaitable), void(R)>(
      [core, f = std::move(f)](auto handler) mutable {
        std::function<void(R)> done = posting(std::move(handler));
        if (core->closed.load()) return done(R(closed_error()));
        asio::post(core->ioc, [core, f = std::move(f), done = std::move(done)]() mutable {
          if (core->closing) return done(R(closed_error()));
          f(std::move(done));
        });
      },
      asio::use_awaitable);
}

}  // namespace

// ------------------------------------------------------------------------------ the core

struct ConsumerState {
  SubscribeOptions opts;
  std::deque<Message> queue;  // delivered, not yet received
  std::function<void(Result<Message>)> waiting;  // a pending receive()
  size_t unacked = 0;         // delivered and neither acked nor nacked
  bool closed = false;
  bool room() const { return !closed && unacked < opts.max_unacked; }
};
using ConsumerPtr = std::shared_ptr<ConsumerState>;

struct Sub {
  std::string topic, name;
  SubscribeOptions opts;
  uint64_t mark_delete = 0;   // every id <= it is acknowledged
  std::set<uint64_t> acked;   // acknowledged above mark_delete
  uint64_t read_pos = 0;      // ids <= read_pos were read from storage
  std::map<uint64_t, Message> ready;                      // read, waiting for a consumer
  std::unordered_map<std::string, size_t> ready_keys;     // keys in `ready`, with counts
  std::map<uint64_t, std::pair<ConsumerPtr, Message>> in_flight;
  std::unordered_map<std::string, std::pair<ConsumerState*, size_t>> key_owner;  // in-flight keys
  std::vector<ConsumerPtr> consumers;
  size_t rr = 0;
};

struct Topic {
  bool loaded = false;
  uint64_t last_id = 0;
  std::map<std::string, uint64_t> dedup;  // producer -> last stored sequence id
  std::map<std::string, std::unique_ptr<Sub>> subs;
};

struct LocalBus::Core : std::enable_shared_from_this<LocalBus::Core> {
  store::rocks::RocksStore& store;
  LocalBusOptions opts;
  LocalBusStats stats;
  asio::io_context ioc{1};
  asio::executor_work_guard<asio::io_context::executor_type> work{ioc.get_executor()};
  std::thread thread;
  std::atomic<bool> closed{false};
  bool closing = false;  // on the core thread

  // Everything below: owned by the core thread.
  std::map<std::string, Topic> topics;
  struct PendingPublish {
    std::string topic;
    std::vector<OutMessage> msgs;
    std::string producer;
    std::function<void(Result<std::vector<PublishAck>>)> done;
  };
  std::vector<PendingPublish> pending;
  bool flush_posted = false;

  Core(store::rocks::RocksStore& s, LocalBusOptions o) : store(s), opts(std::move(o)) {}

  Result<Topic*> topic(const std::string& name) {
    Topic& t = topics[name];
    if (t.loaded) return &t;
    auto meta = store.bus_scan(prefix('t', name), prefix('t', name) + '\x01', 1);
    if (!meta) return meta.take_error();
    if (!meta->empty() && meta->front().second.size() == 8) t.last_id = get_u64be(meta->front().second);
    auto d = store.bus_scan(prefix('d', name), prefix('d', name).substr(0, name.size() + 1) + '\x01', SIZE_MAX);
    if (!d) return d.take_error();
    for (auto& [k, v] : *d)
      if (v.size() == 8) t.dedup[k.substr(name.size() + 2)] = get_u64be(v);
    t.loaded = true;
    return &t;
  }

  void flush() {
    flush_posted = false;
    auto batch = std::move(pending);
    pending.clear();
    std::vector<BusOp> ops;
    struct Saved { uint64_t last_id; std::map<std::string, uint64_t> dedup; };
    std::map<std::string, Saved> saved;
    std::vector<Result<std::vector<PublishAck>>> results;
    for (auto& p : batch) {
      auto t = topic(p.topic);
      if (!t) {
        results.emplace_back(t.error());
        continue;
      }
      Topic& tp = **t;
      saved.try_emplace(p.topic, Saved{tp.last_id, tp.dedup});
      std::vector<PublishAck> acks;
      for (auto& m : p.msgs) {
        if (m.sequence_id != 0) {
          auto& last = tp.dedup[p.producer];
          if (m.sequence_id <= last) {
            acks.push_back({0, true});
            continue;
          }
          last = m.sequence_id;
        }
        Message msg{p.topic, std::move(m.key), std::move(m.payload), ++tp.last_id, p.producer,
                    m.sequence_id, 0};
        ops.push_back({BusOp::put, msg_key(p.topic, msg.message_id), encode_message(msg)});
        acks.push_back({msg.message_id, false});
      }
      results.emplace_back(std::move(acks));
    }
    for (auto& [name, s] : saved) {
      Topic& tp = topics[name];
      ops.push_back({BusOp::put, prefix('t', name), u64(tp.last_id)});
      for (auto& [producer, seq] : tp.dedup)
        if (s.dedup[producer] != seq) ops.push_back({BusOp::put, prefix('d', name) + producer, u64(seq)});
    }
    Status st = ops.empty() ? ok_status() : store.bus_write(ops, opts.sync_publish);
    if (!st) {
      stats.errors.fetch_add(1);
      for (auto& [name, s] : saved) {
        topics[name].last_id = s.last_id;
        topics[name].dedup = std::move(s.dedup);
      }
    }
    for (size_t i = 0; i < batch.size(); ++i) {
      if (!st) {
        batch[i].done(st.error());
        continue;
      }
      if (results[i])
        for (auto& a : *results[i]) (a.duplicate ? stats.duplicates : stats.published).fetch_add(1);
      batch[i].done(std::move(results[i]));
    }
    if (st)
      for (auto& [name, s] : saved)
        for (auto& [_, sub] : topics[name].subs) dispatch(*sub);
  }

  // --- dispatch ------------------------------------------------------------------------
  bool ordered(const Sub& s) const { return s.opts.type != SubscriptionType::shared; }

  ConsumerState* choose(Sub& s, const std::string& key) {
    if (s.consumers.empty()) return nullptr;
    if (!ordered(s)) {
      for (size_t i = 0; i < s.consumers.size(); ++i) {
        auto* c = s.consumers[(s.rr + i) % s.consumers.size()].get();
        if (c->room()) {
          s.rr = (s.rr + i + 1) % s.consumers.size();
          return c;
        }
      }
      return nullptr;
    }
    // One key goes to one consumer at a time: to the one holding its in-flight messages,
    // else to the key's hash slot (sticky while the consumer set does not change).
    auto it = s.key_owner.find(key);
    ConsumerState* c = it != s.key_owner.end() ? it->second.first
                                               : s.consumers[std::hash<std::string>{}(key) % s.consumers.size()].get();
    return c->room() ? c : nullptr;
  }

  void deliver(Sub& s, ConsumerState* c, Message m) {
    ConsumerPtr owner;
    for (auto& p : s.consumers)
      if (p.get() == c) owner = p;
    auto& ko = s.key_owner[m.key];
    ko.first = c;
    ++ko.second;
    ++c->unacked;
    stats.delivered.fetch_add(1);
    if (m.redelivery_count) stats.redelivered.fetch_add(1);
    s.in_flight[m.message_id] = {owner, m};
    if (c->waiting) {
      auto w = std::move(c->waiting);
      c->waiting = nullptr;
      w(std::move(m));
    } else {
      c->queue.push_back(std::move(m));
    }
  }

  void hold(Sub& s, Message m) {
    ++s.ready_keys[m.key];
    uint64_t id = m.message_id;
    s.ready.emplace(id, std::move(m));
  }

  bool any_room(const Sub& s) const {
    for (auto& c : s.consumers)
      if (c->room()) return true;
    return false;
  }

  void dispatch(Sub& s) {
    if (s.consumers.empty()) return;
    std::set<std::string> blocked;  // keys with an earlier message still waiting in this pass
    for (auto it = s.ready.begin(); it != s.ready.end() && any_room(s);) {
      if (it->first <= s.mark_delete || s.acked.count(it->first)) {  // acked after a give-back
        if (--s.ready_keys[it->second.key] == 0) s.ready_keys.erase(it->second.key);
        it = s.ready.erase(it);
        continue;
      }
      const std::string& key = it->second.key;
      ConsumerState* c = ordered(s) && blocked.count(key) ? nullptr : choose(s, key);
      if (!c) {
        if (ordered(s)) blocked.insert(key);
        ++it;
        continue;
      }
      Message m = std::move(it->second);
      if (--s.ready_keys[m.key] == 0) s.ready_keys.erase(m.key);
      it = s.ready.erase(it);
      deliver(s, c, std::move(m));
    }
    while (any_room(s) && s.ready.size() < opts.max_ready) {
      auto rows = store.bus_scan(msg_key(s.topic, s.read_pos + 1), prefix('m', s.topic) + std::string(8, '\xff'), 256);
      if (!rows) {
        stats.errors.fetch_add(1);
        return;  // retried at the next publish, ack or subscribe
      }
      if (rows->empty()) return;
      for (auto& [k, v] : *rows) {
        uint64_t id = get_u64be(std::string_view(k).substr(k.size() - 8));
        s.read_pos = id;
        if (id <= s.mark_delete || s.acked.count(id)) continue;
        auto m = decode_message(s.topic, id, v);
        if (!m) {
          stats.errors.fetch_add(1);
          continue;
        }
        ConsumerState* c = nullptr;
        if (!ordered(s) || !s.ready_keys.count(m->key)) c = choose(s, m->key);
        if (c) deliver(s, c, std::move(*m));
        else hold(s, std::move(*m));
      }
    }
  }

  // Takes `id` out of flight; returns its message if it was in flight.
  std::optional<Message> settle(Sub& s, uint64_t id) {
    auto it = s.in_flight.find(id);
    if (it == s.in_flight.end()) return std::nullopt;
    Message m = std::move(it->second.second);
    ConsumerState* c = it->second.first.get();
    s.in_flight.erase(it);
    if (c && c->unacked) --c->unacked;
    auto ko = s.key_owner.find(m.key);
    if (ko != s.key_owner.end() && --ko->second.second == 0) s.key_owner.erase(ko);
    return m;
  }

  Status ack(Sub& s, uint64_t id) {
    settle(s, id);
    if (id <= s.mark_delete || s.acked.count(id)) return ok_status();
    std::vector<BusOp> ops;
    std::string sub_key = prefix('c', s.topic) + s.name;
    std::string ack_prefix = prefix('a', s.topic) + s.name + '\0';
    if (id == s.mark_delete + 1) {
      s.mark_delete = id;
      while (!s.acked.empty() && *s.acked.begin() == s.mark_delete + 1) {
        s.mark_delete = *s.acked.begin();
        s.acked.erase(s.acked.begin());
        ops.push_back({BusOp::del, ack_prefix + u64(s.mark_delete), {}});
      }
      ops.push_back({BusOp::put, sub_key, u64(s.mark_delete)});
    } else {
      s.acked.insert(id);
      ops.push_back({BusOp::put, ack_prefix + u64(id), {}});
    }
    stats.acked.fetch_add(1);
    return store.bus_write(ops, /*sync=*/false);
  }

  void give_back(Sub& s, Message m, std::chrono::milliseconds delay) {
    ++m.redelivery_count;
    if (delay.count() == 0) {
      hold(s, std::move(m));
      return;
    }
    auto timer = std::make_shared<asio::steady_timer>(ioc, delay);
    timer->async_wait([self = shared_from_this(), timer, &s, m = std::move(m)](auto) mutable {
      if (self->closing) return;
      self->hold(s, std::move(m));
      self->dispatch(s);
    });
  }

  Result<Sub*> open_sub(const std::string& topic_name, const std::string& name, const SubscribeOptions& o) {
    auto t = topic(topic_name);
    if (!t) return t.take_error();
    auto& slot = (*t)->subs[name];
    if (slot) return slot.get();
    auto s = std::make_unique<Sub>();
    s->topic = topic_name;
    s->name = name;
    s->opts = o;
    std::string sub_key = prefix('c', topic_name) + name;
    auto c = store.bus_scan(sub_key, sub_key + '\0', 1);
    if (!c) return c.take_error();
    if (!c->empty() && c->front().first == sub_key && c->front().second.size() == 8) {
      s->mark_delete = get_u64be(c->front().second);
      std::string ap = prefix('a', topic_name) + name + '\0';
      auto acked = store.bus_scan(ap, ap.substr(0, ap.size() - 1) + '\x01', SIZE_MAX);
      if (!acked) return acked.take_error();
      for (auto& [k, v] : *acked) s->acked.insert(get_u64be(std::string_view(k).substr(k.size() - 8)));
    } else {
      // A new subscription: from the first stored message (earliest) or after the last.
      uint64_t start = (*t)->last_id;
      if (o.initial == InitialPosition::earliest) {
        auto first = store.bus_scan(msg_key(topic_name, 0), prefix('m', topic_name) + std::string(8, '\xff'), 1);
        if (!first) return first.take_error();
        if (!first->empty()) start = get_u64be(std::string_view(first->front().first).substr(first->front().first.size() - 8)) - 1;
      }
      s->mark_delete = start;
      auto st = store.bus_write({{BusOp::put, sub_key, u64(start)}}, /*sync=*/true);
      if (!st) return st.take_error();
    }
    s->read_pos = s->mark_delete;
    slot = std::move(s);
    return slot.get();
  }

  void remove_consumer(Sub& s, const ConsumerPtr& c) {
    std::erase(s.consumers, c);
    c->closed = true;
    std::vector<uint64_t> mine;
    for (auto& [id, p] : s.in_flight)
      if (p.first == c) mine.push_back(id);
    for (uint64_t id : mine)
      if (auto m = settle(s, id)) give_back(s, std::move(*m), std::chrono::milliseconds(0));
    c->queue.clear();
    c->unacked = 0;
    if (c->waiting) {
      auto w = std::move(c->waiting);
      c->waiting = nullptr;
      w(Error(Errc::unavailable, "consumer closed", "consumer_closed"));
    }
    dispatch(s);
  }

  Status trim(uint64_t keep) {
    auto metas = store.bus_scan("t", "u", SIZE_MAX);
    if (!metas) return metas.take_error();
    std::vector<BusOp> ops;
    for (auto& [k, v] : *metas) {
      std::string name = k.substr(1, k.size() - 2);
      uint64_t last = v.size() == 8 ? get_u64be(v) : 0;
      uint64_t upto = last > keep ? last - keep : 0;
      std::string cp = prefix('c', name);
      auto subs = store.bus_scan(cp, cp.substr(0, cp.size() - 1) + '\x01', SIZE_MAX);
      if (!subs) return subs.take_error();
      for (auto& [sk, sv] : *subs)
        if (sv.size() == 8) upto = std::min(upto, get_u64be(sv));
      if (upto > 0) ops.push_back({BusOp::del_range, msg_key(name, 0), msg_key(name, upto + 1)});
    }
    return ops.empty() ? ok_status() : store.bus_write(ops, /*sync=*/false);
  }

  void shutdown() {
    closing = true;
    for (auto& p : pending) p.done(closed_error());
    pending.clear();
    for (auto& [_, t] : topics)
      for (auto& [_, s] : t.subs)
        for (auto& c : s->consumers) {
          c->closed = true;
          if (c->waiting) {
            auto w = std::move(c->waiting);
            c->waiting = nullptr;
            w(closed_error());
          }
        }
  }
};

// ----------------------------------------------------------------------- the consumer

namespace {

class LocalConsumer final : public Consumer {
 public:
  LocalConsumer(std::shared_ptr<LocalBus::Core> core, Sub* sub, ConsumerPtr state)
      : core_(std::move(core)), sub_(sub), state_(std::move(state)) {}
  ~LocalConsumer() override { close(); }

  asio::awaitable<Result<Message>> receive() override {
    return on_core<Result<Message>>(core_, [sub = sub_, c = state_](std::function<void(Result<Message>)> done) {
      (void)sub;
      if (c->closed) return done(Error(Errc::unavailable, "consumer closed", "consumer_closed"));
      if (!c->queue.empty()) {
        Message m = std::move(c->queue.front());
        c->queue.pop_front();
        return done(std::move(m));
      }
      c->waiting = std::move(done);
    });
  }

  asio::awaitable<Status> ack(const Message& m) override {
    return on_core<Status>(core_, [core = core_, sub = sub_, id = m.message_id](std::function<void(Status)> done) {
      Status st = core->ack(*sub, id);
      if (!st) core->stats.errors.fetch_add(1);
      core->dispatch(*sub);
      done(std::move(st));
    });
  }

  asio::awaitable<Status> nack(const Message& m) override {
    return on_core<Status>(core_, [core = core_, sub = sub_, c = state_, id = m.message_id](std::function<void(Status)> done) {
      if (auto msg = core->settle(*sub, id)) {
        core->stats.nacked.fetch_add(1);
        core->give_back(*sub, std::move(*msg), c->opts.nack_delay);
      }
      core->dispatch(*sub);
      done(ok_status());
    });
  }

  void close() override {
    if (closed_.exchange(true) || core_->closed.load()) return;
    asio::post(core_->ioc, [core = core_, sub = sub_, c = state_] {
      if (!core->closing) core->remove_consumer(*sub, c);
    });
  }

 private:
  std::shared_ptr<LocalBus::Core> core_;
  Sub* sub_;  // owned by the core; lives as long as the core
  ConsumerPtr state_;
  std::atomic<bool> closed_{false};
};

}  // namespace

// ---------------------------------------------------------------------------- the bus

LocalBus::LocalBus(store::rocks::RocksStore& store, LocalBusOptions opts)
    : core_(std::make_shared<Core>(store, std::move(opts))) {
  core_->thread = std::thread([c = core_.get()] {
    pthread_setname_np(pthread_self(), "commentd-bus");
    c->ioc.run();
  });
}

LocalBus::~LocalBus() { close(); }

const std::string& LocalBus::producer_name() const { return core_->opts.producer_name; }
LocalBusStats& LocalBus::stats() { return core_->stats; }

asio::awaitable<Result<std::vector<PublishAck>>> LocalBus::publish(std::string topic, std::vector<OutMessage> msgs,
                                                                   std::string producer) {
  using R = Result<std::vector<PublishAck>>;
  if (producer.empty()) producer = core_->opts.producer_name;
  return on_core<R>(core_, [core = core_, topic = std::move(topic), msgs = std::move(msgs),
                            producer = std::move(producer)](std::function<void(R)> done) mutable {
    core->pending.push_back({std::move(topic), std::move(msgs), std::move(producer), std::move(done)});
    if (!core->flush_posted) {
      core->flush_posted = true;
      asio::post(core->ioc, [core] { core->flush(); });
    }
  });
}

// Not a coroutine on purpose: g++ 12 copies a coroutine's by-value parameters captured in a
// lambda from the moved-from originals, not from the frame.
asio::awaitable<Result<std::unique_ptr<Consumer>>> LocalBus::subscribe(std::string topic, std::string subscription,
                                                                     SubscribeOptions opts) {
  using R = Result<std::unique_ptr<Consumer>>;
  return on_core<R>(core_, [core = core_, topic = std::move(topic), subscription = std::move(subscription),
                            opts](std::function<void(R)> done) {
    auto s = core->open_sub(topic, subscription, opts);
    if (!s) return done(s.take_error());
    Sub& sub = **s;
    if (sub.opts.type == SubscriptionType::exclusive && !sub.consumers.empty())
      return done(Error(Errc::conflict, "subscription " + subscription + " is exclusive and has a consumer",
                        "subscription_busy"));
    auto c = std::make_shared<ConsumerState>();
    c->opts = opts;
    sub.consumers.push_back(c);
    core->dispatch(sub);
    done(R(std::unique_ptr<Consumer>(new LocalConsumer(core, &sub, std::move(c)))));
  });
}

void LocalBus::close() {
  if (core_->closed.exchange(true)) return;
  std::promise<void> done;
  asio::post(core_->ioc, [c = core_.get(), &done] {
    c->shutdown();
    done.set_value();
  });
  done.get_future().wait();
  core_->work.reset();
  core_->ioc.stop();
  if (core_->thread.joinable()) core_->thread.join();
}

Status LocalBus::trim(uint64_t keep) {
  if (core_->closed.load()) return closed_error();
  std::promise<Status> p;
  auto f = p.get_future();
  asio::post(core_->ioc, [c = core_.get(), keep, &p] { p.set_value(c->trim(keep)); });
  return f.get();
}

}  // namespace commentd::events
