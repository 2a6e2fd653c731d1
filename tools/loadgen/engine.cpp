#include "engine.h"

#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>

namespace commentd::loadgen {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using clock_type = std::chrono::steady_clock;
using time_point = clock_type::time_point;

namespace {

constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);
constexpr uint64_t no_limit = UINT64_MAX;

int64_t micros(clock_type::duration d) {
  return std::chrono::duration_cast<std::chrono::microseconds>(d).count();
}

// One keep-alive connection. Owned by its shard; touched only on the shard's thread.
struct Connection {
  // Beast reads max(512, free capacity) bytes at a time: reserve enough that a typical
  // response arrives in one recv instead of a dozen.
  explicit Connection(asio::io_context& io) : socket(io), timer(io) { buffer.reserve(64 * 1024); }
  tcp::socket socket;
  asio::steady_timer timer;  // waits for the next due time
  beast::flat_buffer buffer;
  std::optional<http::response_parser<http::string_body>> parser;
  RequestSlot slot;
  bool open = false;
  bool busy = false;       // a connect or request is in flight since busy_since
  bool timed_out = false;  // the sweeper closed the socket
  time_point busy_since;
};

struct Shard {
  asio::io_context io{1};
  std::unique_ptr<WorkloadShard> workload;
  std::vector<std::unique_ptr<Connection>> connections;
  size_t live = 0;  // connection coroutines still running (shard thread only)
  std::mutex mu;
  Recorder recorder;  // GUARDED_BY(mu): written by the shard, read by the progress thread
  explicit Shard(size_t ops) : recorder(ops) {}
};

// State every shard shares.
struct Run {
  const EngineConfig& cfg;
  tcp::resolver::results_type endpoints;
  time_point t0;
  time_point end;             // schedule end (open) or stop time (closed)
  time_point drain_deadline;  // open loop: nothing is sent after this
  uint64_t total = 0;         // indices to take
  double ns_per_request = 0;
  std::atomic<uint64_t> next{0};
  std::atomic<uint64_t> sent{0};
  std::atomic<uint64_t> completed{0};
  std::atomic<uint64_t> errors{0};
  std::atomic<uint64_t> abandoned{0};  // taken, then dropped at the drain deadline
  std::atomic<int64_t> last_completion_ns{0};

  time_point due(uint64_t i) const {
    return t0 +
           std::chrono::nanoseconds(static_cast<int64_t>(static_cast<double>(i) * ns_per_request));
  }
  uint64_t second_of(time_point t) const {
    return t <= t0 ? 0 : static_cast<uint64_t>(micros(t - t0) / 1'000'000);
  }
  void note_completion(time_point now) {
    const int64_t ns = std::chrono::duration_cast<std::chrono::nanoseconds>(now - t0).count();
    int64_t prev = last_completion_ns.load(std::memory_order_relaxed);
    while (prev < ns && !last_completion_ns.compare_exchange_weak(prev, ns)) {
    }
  }
};

void close_connection(Connection& c) {
  beast::error_code ignored;
  c.socket.shutdown(tcp::socket::shutdown_both, ignored);
  c.socket.close(ignored);
  c.open = false;
  c.buffer.consume(c.buffer.size());
}

// Takes the next index, or nullopt when the run is over for this connection.
std::optional<uint64_t> take_index(Run& run) {
  if (run.cfg.closed_loop && run.cfg.duration_s > 0 && clock_type::now() >= run.end)
    return std::nullopt;
  const uint64_t i = run.next.fetch_add(1, std::memory_order_relaxed);
  if (i >= run.total) return std::nullopt;
  return i;
}

asio::awaitable<void> connection_loop(Run& run, Shard& shard, Connection& c) {
  const bool open_loop = !run.cfg.closed_loop;
  {
    // Connect before the schedule starts, so the first requests do not pay for it. A failure
    // here is not recorded: the loop below retries and records it against a request.
    c.busy = true;
    c.busy_since = clock_type::now();
    auto [ec, ep] = co_await asio::async_connect(c.socket, run.endpoints, nothrow);
    c.busy = false;
    if (ec) {
      close_connection(c);
    } else {
      beast::error_code ignored;
      c.socket.set_option(tcp::no_delay(true), ignored);
      c.open = true;
    }
  }
  for (;;) {
    std::optional<uint64_t> taken = take_index(run);
    if (!taken) break;
    const uint64_t index = *taken;
    time_point start = open_loop ? run.due(index) : clock_type::now();
    if (open_loop && clock_type::now() < start) {
      c.timer.expires_at(start);
      co_await c.timer.async_wait(nothrow);
    }
    c.slot.bytes.clear();
    c.slot.tag = 0;
    shard.workload->build(index, c.slot);
    if (open_loop && clock_type::now() > run.drain_deadline) {
      // Past the drain deadline: this one is never sent; the rest are counted after the run.
      const time_point now = clock_type::now();
      std::lock_guard lock(shard.mu);
      shard.recorder.record_failure(c.slot.op, run.second_of(start), run.second_of(now),
                                    Failure::timeout, micros(now - start));
      run.errors.fetch_add(1, std::memory_order_relaxed);
      run.completed.fetch_add(1, std::memory_order_relaxed);
      run.abandoned.fetch_add(1, std::memory_order_relaxed);
      break;
    }
    if (!open_loop) start = clock_type::now();
    const uint64_t second = run.second_of(start);

    std::optional<Failure> failure;
    unsigned status = 0;
    for (int attempt = 0; attempt < 2; ++attempt) {
      failure.reset();
      const bool reused = c.open;
      c.busy = true;
      c.timed_out = false;
      c.busy_since = clock_type::now();
      if (!c.open) {
        auto [ec, ep] = co_await asio::async_connect(c.socket, run.endpoints, nothrow);
        if (ec) {
          close_connection(c);
          failure = c.timed_out ? Failure::timeout : Failure::connect;
          break;
        }
        beast::error_code ignored;
        c.socket.set_option(tcp::no_delay(true), ignored);
        c.open = true;
      }
      if (attempt == 0) run.sent.fetch_add(1, std::memory_order_relaxed);
      auto [wec, wn] = co_await asio::async_write(c.socket, asio::buffer(c.slot.bytes), nothrow);
      if (!wec) {
        c.parser.emplace();
        c.parser->body_limit(64 * 1024 * 1024);
        auto [rec, rn] = co_await http::async_read(c.socket, c.buffer, *c.parser, nothrow);
        if (!rec) {
          status = c.parser->get().result_int();
          break;
        }
        // A keep-alive connection the server closed while idle: retry once on a new one.
        const bool stale = reused && !c.timed_out && rn == 0 &&
                           (rec == http::error::end_of_stream ||
                            rec == asio::error::connection_reset || rec == asio::error::eof);
        close_connection(c);
        failure = c.timed_out ? Failure::timeout : Failure::io;
        if (stale && attempt == 0) continue;
        break;
      }
      const bool stale = reused && !c.timed_out && wec == asio::error::broken_pipe;
      close_connection(c);
      failure = c.timed_out ? Failure::timeout : Failure::io;
      if (!(stale && attempt == 0)) break;
    }
    c.busy = false;

    const time_point now = clock_type::now();
    run.note_completion(now);
    {
      std::lock_guard lock(shard.mu);
      if (failure) {
        const int64_t latency = *failure == Failure::connect ? -1 : micros(now - start);
        shard.recorder.record_failure(c.slot.op, second, run.second_of(now), *failure, latency);
      } else {
        shard.recorder.record_response(c.slot.op, second, run.second_of(now),
                                       static_cast<uint64_t>(micros(now - start)), status);
      }
    }
    run.completed.fetch_add(1, std::memory_order_relaxed);
    if (failure || status >= 400) run.errors.fetch_add(1, std::memory_order_relaxed);

    if (failure) {
      shard.workload->on_response(c.slot, 0, {});
      if (*failure == Failure::connect) {
        // Do not spin on a refused port; what falls due meanwhile queues (open loop).
        c.timer.expires_after(std::chrono::milliseconds(100));
        co_await c.timer.async_wait(nothrow);
      }
    } else {
      shard.workload->on_response(c.slot, status, c.parser->get().body());
      if (!c.parser->keep_alive()) close_connection(c);
    }
  }
  close_connection(c);
  --shard.live;
}

// Closes connections whose connect or request outlived the request timeout.
asio::awaitable<void> sweeper(Run& run, Shard& shard) {
  asio::steady_timer timer(shard.io);
  const auto period = std::clamp<clock_type::duration>(
      run.cfg.request_timeout / 10, std::chrono::milliseconds(1), std::chrono::milliseconds(100));
  while (shard.live > 0) {
    timer.expires_after(period);
    co_await timer.async_wait(nothrow);
    const time_point now = clock_type::now();
    for (auto& c : shard.connections) {
      if (c->busy && !c->timed_out && now - c->busy_since > run.cfg.request_timeout) {
        c->timed_out = true;
        beast::error_code ignored;
        c->socket.close(ignored);
      }
    }
  }
}

Progress snapshot(Run& run, std::vector<std::unique_ptr<Shard>>& shards) {
  Progress p;
  const time_point now = clock_type::now();
  p.elapsed_s = std::chrono::duration<double>(now - run.t0).count();
  p.completed = run.completed.load();
  p.errors = run.errors.load();
  if (!run.cfg.closed_loop && now > run.t0) {
    const uint64_t due = std::min<uint64_t>(
        run.total,
        static_cast<uint64_t>(std::chrono::duration<double, std::nano>(now - run.t0).count() /
                              run.ns_per_request) +
            1);
    const uint64_t sent = run.sent.load();
    p.backlog = due > sent ? due - sent : 0;
  }
  Histogram all;
  for (auto& s : shards) {
    std::lock_guard lock(s->mu);
    for (size_t i = 0; i < s->recorder.op_count(); ++i) all.merge(s->recorder.op(i).latency);
  }
  p.p99_us = all.percentile(99);
  return p;
}

}  // namespace

EngineResult run_engine(const EngineConfig& cfg, Workload& workload) {
  if (!cfg.closed_loop && !(cfg.rate > 0)) throw std::invalid_argument("open loop needs rate > 0");
  if (cfg.connections == 0 || cfg.threads == 0)
    throw std::invalid_argument("need connections and threads");
  EngineResult result;
  result.op_names = workload.op_names();
  const size_t ops = result.op_names.size();

  Run run{cfg};
  {
    asio::io_context io;
    tcp::resolver resolver(io);
    beast::error_code ec;
    run.endpoints = resolver.resolve(cfg.target.host, cfg.target.port, ec);
    if (ec)
      throw std::runtime_error("cannot resolve " + cfg.target.host_header + ": " + ec.message());
  }
  if (cfg.closed_loop) {
    run.total = cfg.max_requests ? cfg.max_requests : no_limit;
  } else {
    run.total = static_cast<uint64_t>(cfg.rate * cfg.duration_s + 0.5);
    run.ns_per_request = 1e9 / cfg.rate;
  }

  std::vector<std::unique_ptr<Shard>> shards;
  for (size_t s = 0; s < cfg.threads; ++s) {
    shards.push_back(std::make_unique<Shard>(ops));
    shards.back()->workload = workload.make_shard(s);
  }
  for (size_t i = 0; i < cfg.connections; ++i) {
    Shard& shard = *shards[i % shards.size()];
    shard.connections.push_back(std::make_unique<Connection>(shard.io));
    ++shard.live;
  }

  // Let the threads start and the connections open (see connection_loop) before t0.
  run.t0 = clock_type::now() + std::chrono::milliseconds(50);
  const auto duration = std::chrono::duration_cast<clock_type::duration>(
      std::chrono::duration<double>(cfg.duration_s));
  run.end = cfg.duration_s > 0 ? run.t0 + duration : time_point::max();
  run.drain_deadline = cfg.closed_loop ? time_point::max() : run.end + cfg.drain_timeout;

  for (auto& shard : shards) {
    for (auto& c : shard->connections) {
      asio::co_spawn(shard->io, connection_loop(run, *shard, *c), asio::detached);
    }
    asio::co_spawn(shard->io, sweeper(run, *shard), asio::detached);
  }

  std::mutex done_mu;
  std::condition_variable done_cv;
  size_t running = shards.size();
  std::vector<std::thread> threads;
  for (auto& shard : shards) {
    threads.emplace_back([&, s = shard.get()] {
      s->io.run();
      std::lock_guard lock(done_mu);
      --running;
      done_cv.notify_all();
    });
  }
  {
    std::unique_lock lock(done_mu);
    auto next_tick = run.t0 + std::chrono::seconds(1);
    while (running > 0) {
      if (done_cv.wait_until(lock, next_tick, [&] { return running == 0; })) break;
      next_tick += std::chrono::seconds(1);
      if (cfg.on_progress) {
        lock.unlock();
        cfg.on_progress(snapshot(run, shards));
        lock.lock();
      }
    }
  }
  for (auto& t : threads) t.join();

  result.stats = Recorder(ops);
  for (auto& shard : shards) result.stats.merge(shard->recorder);
  result.elapsed_s = static_cast<double>(run.last_completion_ns.load()) / 1e9;
  if (!cfg.closed_loop) {
    result.scheduled = run.total;
    const uint64_t taken = std::min(run.next.load(), run.total);
    result.unsent = run.abandoned.load();
    // Never taken before the drain deadline: timeouts, attributed to the op they would have been.
    if (taken < run.total) {
      RequestSlot slot;
      const time_point deadline = run.drain_deadline;
      Recorder unsent(ops);
      for (uint64_t i = taken; i < run.total; ++i) {
        slot.bytes.clear();
        shards[0]->workload->build(i, slot);
        const time_point due = run.due(i);
        unsent.record_failure(slot.op, run.second_of(due), run.second_of(deadline),
                              Failure::timeout, micros(deadline - due));
      }
      result.stats.merge(unsent);
      result.unsent += run.total - taken;
    }
  }
  return result;
}

}  // namespace commentd::loadgen
