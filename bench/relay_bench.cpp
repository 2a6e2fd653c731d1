// The outbox relay into the LocalBus: events per second from the outbox to a durable,
// acknowledged bus message with the relay's position saved. Each iteration relays one round
// of `batch` events (read outbox, publish with dedup, one fsync'd bus write when sync=1, the
// position committed through the store's writer). Setup (filling the outbox) is not timed.
#include <benchmark/benchmark.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>

#include "events/local/local_bus.h"
#include "testing/temp_store.h"
#include "workers/outbox_relay.h"

namespace commentd {
namespace {

void BM_outbox_relay(benchmark::State& state) {
  const size_t batch = static_cast<size_t>(state.range(0));
  const bool sync = state.range(1) != 0;
  testing::TempDir dir("relay_bench");
  auto st = std::move(*testing::open_temp_store(dir, sync));
  events::LocalBus bus(*st, {.producer_name = "bench"});
  workers::OutboxRelay relay(*st, bus, {.batch_size = batch});
  if (!relay.load_position()) return state.SkipWithError("position");
  const std::string payload(300, 'x');
  auto fill = [&](size_t n) {
    store::WriteSet ws;
    for (size_t i = 0; i < n; ++i)
      ws.mutations.push_back(store::AppendOutbox{"comments", "video" + std::to_string(i % 16), "{\"p\":\"" + payload + "\"}"});
    (void)testing::commit_sync(*st, std::move(ws));
  };
  boost::asio::io_context ioc;
  uint64_t relayed = 0;
  for (auto _ : state) {
    state.PauseTiming();
    fill(batch);
    state.ResumeTiming();
    Result<size_t> n = size_t{0};
    boost::asio::co_spawn(
        ioc, [&]() -> boost::asio::awaitable<void> { n = co_await relay.relay_once(); }, boost::asio::detached);
    ioc.restart();
    ioc.run();
    if (!n || *n != batch) return state.SkipWithError("relay round failed");
    relayed += *n;
  }
  state.SetItemsProcessed(static_cast<int64_t>(relayed));
  bus.close();
}
BENCHMARK(BM_outbox_relay)->Args({256, 1})->Args({256, 0})->Args({16, 1})->UseRealTime()->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace commentd
