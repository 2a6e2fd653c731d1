// Helpers of the outbox relay's tests (unit and Pulsar tiers).
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "events/event_bus_conformance.h"
#include "testing/temp_store.h"
#include "workers/outbox_relay.h"

namespace commentd::workers::testing {

// Commits one "created" event with event id "e-<n>" to the outbox of `topic`, keyed `key`.
inline void append_event(store::Store& s, int n, const std::string& key = "v", const std::string& topic = "comments") {
  store::WriteSet ws;
  ws.mutations.push_back(store::AppendOutbox{
      topic, key, "{\"event_id\":\"e-" + std::to_string(n) + "\",\"event_type\":\"created\"}"});
  ASSERT_TRUE(commentd::testing::commit_sync(s, std::move(ws)).ok());
}

// Runs relay rounds until one relays nothing; the number of entries relayed.
inline size_t relay_all(events::conformance::Runner& run, OutboxRelay& relay) {
  size_t total = 0;
  for (;;) {
    auto n = run.run(relay.relay_once());
    EXPECT_TRUE(n.ok()) << (n.ok() ? "" : n.error().message);
    if (!n.ok() || *n == 0) return total;
    total += *n;
  }
}

}  // namespace commentd::workers::testing
