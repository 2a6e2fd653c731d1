#include "redis/client.h"

#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <openssl/evp.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>

namespace commentd::redis {

namespace {

using Clock = std::chrono::steady_clock;

std::string sha1_hex(const std::string& s) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(s.data(), s.size(), md, &len, EVP_sha1(), nullptr);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < len; ++i) {
    out += hex[md[i] >> 4];
    out += hex[md[i] & 15];
  }
  return out;
}

// The message of a call that ended at its deadline (or had none left): not a transport failure
// by itself (see breaker_result).
constexpr const char* kTimeout = "redis: timeout";

// A connection with calls in flight and nothing read for this long is taken as stuck and
// reset. Well above command_timeout: a stall of this process or of a CPU-starved Redis must
// not reset healthy connections (a reset fails every call in flight, and the next ones fail
// fast while it reconnects, which opened the breaker in the viral benchmark).
milliseconds stuck_after(const ClientOptions& o) { return std::max(o.command_timeout * 4, milliseconds(1000)); }

bool timed_out(const Result<Reply>& r) { return !r && r.error().message == kTimeout; }

// One call's completion: whichever of the reply and the deadline comes first wins.
struct CallState {
  explicit CallState(const asio::any_io_executor& ex) : timer(ex) {}
  std::atomic<bool> done{false};
  std::function<void(Result<Reply>)> fire;  // posts the result to the awaiting coroutine
  asio::steady_timer timer;

  void complete(Result<Reply> r) {
    if (done.exchange(true)) return;
    auto f = std::move(fire);
    fire = nullptr;
    f(std::move(r));
  }
};

// A pipelined wave's completion: every reply, or the deadline, whichever comes first.
struct WaveState {
  WaveState(const asio::any_io_executor& ex, size_t n)
      : timer(ex), results(n, Result<Reply>(Error(Errc::unavailable, kTimeout))), remaining(n) {}
  std::mutex mu;
  asio::steady_timer timer;
  std::vector<Result<Reply>> results;  // GUARDED_BY(mu)
  size_t remaining;                    // GUARDED_BY(mu)
  bool done = false;                   // GUARDED_BY(mu)
  std::function<void(std::vector<Result<Reply>>)> fire;

  void finish(std::unique_lock<std::mutex>& lk) {
    done = true;
    auto f = std::move(fire);
    fire = nullptr;
    auto r = std::move(results);
    lk.unlock();
    f(std::move(r));
  }
};

bool retried_alone(std::string_view kind) {
  return kind == "MOVED" || kind == "ASK" || kind == "TRYAGAIN" || kind == "CLUSTERDOWN" || kind == "NOSCRIPT";
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// "MOVED 3999 127.0.0.1:6381" / "ASK 3999 127.0.0.1:6381"
bool parse_redirect(const std::string& msg, uint16_t& slot, std::string& host, uint16_t& port) {
  auto a = msg.find(' ');
  auto b = msg.find(' ', a + 1);
  if (a == std::string::npos || b == std::string::npos) return false;
  auto colon = msg.rfind(':');
  if (colon == std::string::npos || colon < b) return false;
  unsigned s = 0, p = 0;
  if (std::from_chars(msg.data() + a + 1, msg.data() + b, s).ec != std::errc()) return false;
  if (std::from_chars(msg.data() + colon + 1, msg.data() + msg.size(), p).ec != std::errc()) return false;
  slot = static_cast<uint16_t>(s);
  host = msg.substr(b + 1, colon - b - 1);
  port = static_cast<uint16_t>(p);
  return slot < 16384 && !host.empty();
}

// Outside coroutines: g++ 12 miscompiles braced lists of string literals in a coroutine body.
const std::string& asking_cmd() {
  static const std::string s = format_command({"ASKING"});
  return s;
}
const std::string& cluster_slots_cmd() {
  static const std::string s = format_command({"CLUSTER", "SLOTS"});
  return s;
}

}  // namespace

Script::Script(std::string n, std::string src) : name(std::move(n)), source(std::move(src)), sha1(sha1_hex(source)) {}

CommandStats& ClientStats::command(const std::string& name) {
  std::lock_guard lk(mu_);
  auto& p = by_name_[name];
  if (!p) p = std::make_unique<CommandStats>();
  return *p;
}

std::vector<std::pair<std::string, const CommandStats*>> ClientStats::commands() const {
  std::lock_guard lk(mu_);
  std::vector<std::pair<std::string, const CommandStats*>> out;
  for (auto& [k, v] : by_name_) out.emplace_back(k, v.get());
  return out;
}

struct Client::Node {
  std::vector<std::shared_ptr<Connection>> conns;
  std::atomic<size_t> rr{0};
  // Round robin over the connections that are up; any one if none is (it queues or fails fast).
  std::shared_ptr<Connection> pick() {
    size_t start = rr.fetch_add(1, std::memory_order_relaxed);
    for (size_t i = 0; i < conns.size(); ++i) {
      auto& c = conns[(start + i) % conns.size()];
      if (c->up()) return c;
    }
    return conns[start % conns.size()];
  }
};

Client::Client(asio::any_io_executor ex, ClientOptions opts)
    : ex_(std::move(ex)), opts_(std::move(opts)),
      breaker_({.failures = opts_.breaker_failures, .open_for = opts_.breaker_open,
                .timeout_window = opts_.command_timeout}) {
  for (auto& [h, p] : opts_.nodes) node_for(h, p);
}

Client::~Client() { stop(); }

void Client::stop() {
  std::unique_lock lk(mu_);
  if (stopped_) return;
  stopped_ = true;
  for (auto& [_, n] : nodes_)
    for (auto& c : n->conns) c->stop();
}

std::shared_ptr<Client::Node> Client::node_for(const std::string& host, uint16_t port) {
  const std::string name = host + ":" + std::to_string(port);
  {
    std::shared_lock lk(mu_);
    if (auto it = nodes_.find(name); it != nodes_.end()) return it->second;
  }
  std::unique_lock lk(mu_);
  auto& n = nodes_[name];
  if (n) return n;
  n = std::make_shared<Node>();
  ConnectionOptions co;
  co.host = host;
  co.port = port;
  co.username = opts_.username;
  co.password = opts_.password;
  co.db = opts_.cluster ? 0 : opts_.db;
  co.tls = opts_.tls;
  co.connect_timeout = opts_.connect_timeout;
  co.backoff_min = opts_.backoff_min;
  co.backoff_max = opts_.backoff_max;
  for (size_t i = 0; i < std::max<size_t>(1, opts_.pool_size); ++i) {
    auto c = Connection::create(ex_, co, stats_.connection_counters, seed_.fetch_add(0x9e3779b97f4a7c15ULL));
    if (!stopped_) c->start();
    n->conns.push_back(std::move(c));
  }
  return n;
}

std::shared_ptr<Connection> Client::pick(const std::string& key) {
  std::shared_lock lk(mu_);
  if (nodes_.empty()) return nullptr;
  if (opts_.cluster && !key.empty() && !slots_.empty())
    if (auto& n = slots_[key_slot(key)]) return n->pick();
  // Keyless, single node, or slot not known yet: a seed (a MOVED corrects it).
  if (!opts_.nodes.empty()) {
    auto it = nodes_.find(opts_.nodes.front().first + ":" + std::to_string(opts_.nodes.front().second));
    if (it != nodes_.end() && it->second->conns.front()->up()) return it->second->pick();
  }
  for (auto& [_, n] : nodes_)
    if (n->conns.front()->up()) return n->pick();
  return nodes_.begin()->second->pick();
}

asio::awaitable<Result<Reply>> Client::exec(std::shared_ptr<Connection> c, std::string bytes, int n, Deadline d) {
  const Deadline dl = d.capped(opts_.command_timeout);
  if (dl.expired()) co_return Error(Errc::unavailable, kTimeout);
  co_return co_await asio::async_initiate<decltype(asio::use_awaitable), void(Result<Reply>)>(
      [&](auto handler) {
        auto st = std::make_shared<CallState>(ex_);
        using Handler = decltype(handler);
        // The work guard keeps the awaiting executor's io_context running until the result is
        // posted, so an io_context that only waits for this call does not run out of work.
        auto target = asio::prefer(asio::any_io_executor(asio::get_associated_executor(handler, ex_)),
                                   asio::execution::outstanding_work.tracked);
        st->fire = [h = std::make_shared<Handler>(std::move(handler)), target](Result<Reply> r) mutable {
          asio::post(target, [h, r = std::move(r)]() mutable { std::move (*h)(std::move(r)); });
          target = asio::any_io_executor();
        };
        st->timer.expires_at(dl.at);
        st->timer.async_wait([this, st, c](boost::system::error_code ec) {
          if (ec || st->done) return;
          stats_.timeouts++;
          st->complete(Error(Errc::unavailable, kTimeout));
          c->note_timeout(stuck_after(opts_));
        });
        c->send(std::move(bytes), n, [st](Result<Reply> r) {
          st->timer.cancel();
          st->complete(std::move(r));
        });
      },
      asio::use_awaitable);
}

asio::awaitable<Result<Reply>> Client::routed(std::string label, std::vector<std::string> args, std::string key,
                                              Deadline d) {
  auto& cs = stats_.command(label);
  cs.calls++;
  const auto t0 = Clock::now();
  auto finish = [&](Result<Reply> r) {
    cs.latency.observe(std::chrono::duration<double>(Clock::now() - t0).count());
    if (!r || (r->is_error() && r->error_kind() != "NOSCRIPT")) cs.errors++;
    return r;
  };
  if (!breaker_admit()) {
    co_return finish(Error(Errc::unavailable, "redis: unavailable (circuit open)"));
  }
  co_await ensure_slots();
  const std::string bytes = format_command(args);
  auto conn = pick(key);
  bool asking = false;
  for (int hop = 0;; ++hop) {
    if (!conn) co_return finish(Error(Errc::unavailable, "redis: no node"));
    std::string out = asking ? asking_cmd() + bytes : bytes;
    auto r = co_await exec(conn, std::move(out), asking ? 2 : 1, d);
    breaker_result(r.ok(), timed_out(r));
    if (!r || !r->is_error() || hop >= opts_.max_redirects) co_return finish(std::move(r));
    auto kind = r->error_kind();
    if (!opts_.cluster) co_return finish(std::move(r));
    if (kind == "TRYAGAIN" || kind == "CLUSTERDOWN") {
      // A slot in migration (multi-key script with keys on both sides) or a failover: retry
      // shortly, within the deadline.
      asio::steady_timer t(co_await asio::this_coro::executor);
      t.expires_at(std::min(d.at, Clock::now() + std::chrono::milliseconds(10 << std::min(hop, 4))));
      boost::system::error_code ec;
      co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      asking = false;
      conn = pick(key);
      continue;
    }
    if (kind != "MOVED" && kind != "ASK") co_return finish(std::move(r));
    uint16_t slot = 0, port = 0;
    std::string host;
    if (!parse_redirect(r->str, slot, host, port)) co_return finish(std::move(r));
    auto node = node_for(host, port);
    if (kind == "MOVED") {
      stats_.moved++;
      asking = false;
      {
        std::unique_lock lk(mu_);
        if (slots_.size() == 16384) slots_[slot] = node;
      }
      // One caller refreshes the whole map (other slots probably moved too).
      if (!refreshing_.exchange(true)) {
        co_await refresh_slots();
        refreshing_ = false;
      }
    } else {
      stats_.ask++;
      asking = true;
    }
    conn = node->pick();
  }
}

asio::awaitable<std::vector<Result<Reply>>> Client::wave(std::vector<std::pair<std::string, std::string>> calls,
                                                         Deadline d) {
  const size_t n = calls.size();
  const Deadline dl = d.capped(opts_.command_timeout);
  if (dl.expired()) co_return std::vector<Result<Reply>>(n, Result<Reply>(Error(Errc::unavailable, kTimeout)));
  // The calls for one connection go out in one send_each (one write).
  std::vector<std::pair<std::shared_ptr<Connection>, std::vector<size_t>>> groups;
  std::vector<size_t> unrouted;
  for (size_t i = 0; i < n; ++i) {
    auto c = pick(calls[i].second);
    if (!c) {
      unrouted.push_back(i);
      continue;
    }
    auto g = std::find_if(groups.begin(), groups.end(), [&](auto& e) { return e.first == c; });
    if (g == groups.end()) {
      groups.emplace_back(std::move(c), std::vector<size_t>());
      g = std::prev(groups.end());
    }
    g->second.push_back(i);
  }
  co_return co_await asio::async_initiate<decltype(asio::use_awaitable), void(std::vector<Result<Reply>>)>(
      [&](auto handler) {
        auto st = std::make_shared<WaveState>(ex_, n);
        using Handler = decltype(handler);
        auto target = asio::prefer(asio::any_io_executor(asio::get_associated_executor(handler, ex_)),
                                   asio::execution::outstanding_work.tracked);
        st->fire = [h = std::make_shared<Handler>(std::move(handler)), target](std::vector<Result<Reply>> r) mutable {
          asio::post(target, [h, r = std::move(r)]() mutable { std::move (*h)(std::move(r)); });
          target = asio::any_io_executor();
        };
        std::unique_lock lk(st->mu);
        for (size_t i : unrouted) st->results[i] = Error(Errc::unavailable, "redis: no node");
        st->remaining -= unrouted.size();
        if (st->remaining == 0) {
          st->finish(lk);
          return;
        }
        lk.unlock();
        std::vector<std::shared_ptr<Connection>> conns;
        for (auto& g : groups) conns.push_back(g.first);
        st->timer.expires_at(dl.at);
        st->timer.async_wait([this, st, conns](boost::system::error_code ec) {
          if (ec) return;
          std::unique_lock lk(st->mu);
          if (st->done) return;
          stats_.timeouts += st->remaining;
          for (auto& c : conns) c->note_timeout(stuck_after(opts_));
          st->finish(lk);
        });
        for (auto& [conn, idx] : groups) {
          std::vector<std::pair<std::string, Connection::Callback>> cs;
          cs.reserve(idx.size());
          for (size_t i : idx)
            cs.emplace_back(std::move(calls[i].first), [st, i](Result<Reply> r) {
              std::unique_lock lk(st->mu);
              if (st->done) return;
              st->results[i] = std::move(r);
              if (--st->remaining > 0) return;
              st->timer.cancel();
              st->finish(lk);
            });
          conn->send_each(std::move(cs));
        }
      },
      asio::use_awaitable);
}

asio::awaitable<std::vector<Result<Reply>>> Client::eval_pipelined(const Script& s,
                                                                   std::vector<std::vector<std::string>> keys,
                                                                   std::vector<std::vector<std::string>> args,
                                                                   Deadline d) {
  const size_t n = keys.size();
  std::vector<Result<Reply>> out(n, Result<Reply>(Error(Errc::unavailable, "redis: not sent")));
  if (n == 0 || args.size() != n) co_return out;
  auto& cs = stats_.command("evalsha:" + s.name);
  if (!breaker_admit(n)) {
    cs.calls += n;
    cs.errors += n;
    for (auto& r : out) r = Error(Errc::unavailable, "redis: unavailable (circuit open)");
    co_return out;
  }
  co_await ensure_slots();
  std::vector<size_t> todo(n);
  for (size_t i = 0; i < n; ++i) todo[i] = i;
  for (int round = 0; !todo.empty(); ++round) {
    std::vector<std::pair<std::string, std::string>> calls;
    calls.reserve(todo.size());
    for (size_t i : todo) {
      std::vector<std::string> full;
      full.reserve(3 + keys[i].size() + args[i].size());
      full.push_back("EVALSHA");
      full.push_back(s.sha1);
      full.push_back(std::to_string(keys[i].size()));
      for (auto& k : keys[i]) full.push_back(k);
      for (auto& a : args[i]) full.push_back(a);
      calls.emplace_back(format_command(full), keys[i].empty() ? std::string() : keys[i].front());
    }
    cs.calls += todo.size();
    const auto t0 = Clock::now();
    auto rs = co_await wave(std::move(calls), d);
    const double took = std::chrono::duration<double>(Clock::now() - t0).count();
    bool any_reply = false, all_timed_out = true;
    std::vector<size_t> again;
    for (size_t j = 0; j < todo.size(); ++j) {
      const size_t i = todo[j];
      auto& r = rs[j];
      cs.latency.observe(took);
      if (r) any_reply = true;
      if (!timed_out(r)) all_timed_out = false;
      if (r && r->is_error()) {
        if (retried_alone(r->error_kind())) {
          again.push_back(i);
          continue;
        }
        cs.errors++;
        out[i] = Error(Errc::internal, "redis: " + r->str);
        continue;
      }
      if (!r) cs.errors++;
      out[i] = std::move(r);
    }
    breaker_result(any_reply, all_timed_out);
    if (again.empty()) break;
    if (round >= opts_.max_redirects) {
      for (size_t i : again) out[i] = co_await eval(s, keys[i], args[i], d);
      break;
    }
    // One alone first: it follows the redirection, refreshes the slot map or loads the script
    // for the rest of them.
    out[again.front()] = co_await eval(s, keys[again.front()], args[again.front()], d);
    todo.assign(again.begin() + 1, again.end());
  }
  co_return out;
}

asio::awaitable<void> Client::ensure_slots() {
  if (!opts_.cluster) co_return;
  bool need;
  {
    std::shared_lock lk(mu_);
    need = slots_.empty();
  }
  if (need && !refreshing_.exchange(true)) {
    co_await refresh_slots();
    refreshing_ = false;
  }
}

asio::awaitable<void> Client::refresh_slots() {
  auto conn = pick({});
  if (!conn) co_return;
  auto r = co_await exec(conn, cluster_slots_cmd(), 1, Deadline::after(opts_.command_timeout * 4));
  if (!r || r->type != Reply::Type::array) co_return;
  std::vector<std::shared_ptr<Node>> slots(16384);
  for (auto& range : r->elements) {
    if (range.elements.size() < 3 || range.elements[2].elements.size() < 2) continue;
    auto lo = range.elements[0].integer, hi = range.elements[1].integer;
    auto& master = range.elements[2];
    auto node = node_for(master.elements[0].str, static_cast<uint16_t>(master.elements[1].integer));
    for (auto s = std::max<int64_t>(0, lo); s <= std::min<int64_t>(16383, hi); ++s) slots[s] = node;
  }
  std::unique_lock lk(mu_);
  slots_ = std::move(slots);
  stats_.slot_refreshes++;
}

bool Client::breaker_admit(uint64_t calls) { return breaker_.admit(CircuitBreaker::clock::now(), calls); }

void Client::breaker_result(bool transport_ok, bool timed_out) {
  using O = CircuitBreaker::Outcome;
  switch (breaker_.record(transport_ok ? O::ok : timed_out ? O::timed_out : O::failed)) {
    case CircuitBreaker::Change::none:
      break;
    case CircuitBreaker::Change::closed:
      spdlog::info("redis: available again; circuit closed");
      break;
    case CircuitBreaker::Change::opened: {
      // At most one line per 10 s: a dead Redis must not flood the log.
      const int64_t now_ms =
          std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now().time_since_epoch()).count();
      int64_t last = last_log_ms_.load();
      if (now_ms - last >= 10'000 && last_log_ms_.compare_exchange_strong(last, now_ms))
        spdlog::warn("redis: unavailable; circuit open, calls fail fast for {} ms between probes "
                     "(reads go to storage)", opts_.breaker_open.count());
      break;
    }
  }
}

asio::awaitable<Result<Reply>> Client::command(std::vector<std::string> args, Deadline d) {
  if (args.empty()) co_return Error(Errc::internal, "redis: empty command");
  std::string key = args.size() > 1 ? args[1] : std::string();
  std::string label = lower(args[0]);
  auto r = co_await routed(std::move(label), std::move(args), std::move(key), d);
  if (r && r->is_error()) co_return Error(Errc::internal, "redis: " + r->str);
  co_return r;
}

asio::awaitable<Result<Reply>> Client::eval(const Script& s, std::vector<std::string> keys,
                                            std::vector<std::string> args, Deadline d) {
  std::vector<std::string> full;
  full.reserve(3 + keys.size() + args.size());
  full.push_back("EVALSHA");
  full.push_back(s.sha1);
  full.push_back(std::to_string(keys.size()));
  for (auto& k : keys) full.push_back(k);
  for (auto& a : args) full.push_back(std::move(a));
  std::string key = keys.empty() ? std::string() : keys.front();
  auto r = co_await routed("evalsha:" + s.name, full, key, d);
  if (r && r->error_kind() == "NOSCRIPT") {
    stats_.noscript++;
    full[0] = "EVAL";
    full[1] = s.source;
    r = co_await routed("eval:" + s.name, std::move(full), std::move(key), d);
  }
  if (r && r->is_error()) co_return Error(Errc::internal, "redis: " + r->str);
  co_return r;
}

}  // namespace commentd::redis
