// `commentd migrate`: brings a keyspace to the latest schema (schema.h) and records each step
// in `schema_version`. Idempotent; safe to run from several processes or nodes at once: the
// steps are applied by the holder of a lease row (`schema_lease`, INSERT ... IF NOT EXISTS
// USING TTL, renewed after each step, released at the end), and every other runner waits
// until the schema is at the latest version or the lease is free. Every DDL is IF NOT EXISTS
// (added columns are guarded by system_schema.columns) and followed by a schema-agreement
// wait, so a runner that dies mid-step leaves nothing a rerun cannot finish.
// Blocking: call from a thread that is not an event loop (the CLI, a test).
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "bridge/cql_client.h"
#include "config/config.h"
#include "core/error.h"

namespace commentd::store::cql {

struct MigrateOptions {
  std::string owner;  // the lease owner and `applied_by`; empty: "<hostname>/<pid>"
  std::chrono::seconds lease_ttl{60};
  std::chrono::milliseconds lease_wait{std::chrono::minutes(5)};  // for another runner
  std::chrono::milliseconds lease_poll{500};
};

struct MigrateOutcome {
  int version_before = 0;  // highest version recorded when this run started
  int version_after = 0;
  std::vector<int> applied;  // the steps this run applied (empty: nothing to do)
  bool user_view_folded = false;  // this run wrote the fold marker (schema.h kFoldMarkerJob)
};

// Connects to the configured contact points without a keyspace (migrate may create it).
Result<std::unique_ptr<bridge::CqlSession>> connect_cql(const bridge::Runtime& rt,
                                                        const config::CqlConfig& cfg);

// The highest version V such that every step 1..V is recorded in `schema_version`; 0 when
// the keyspace or the table does not exist yet.
Result<int> read_schema_version(bridge::CqlSession& session, const config::CqlConfig& cfg);

// Brings cfg.keyspace to latest_schema_version(). Errors: unavailable (no lease within
// lease_wait, lease lost), internal (DDL refused, an existing column with another type).
Result<MigrateOutcome> migrate(bridge::CqlSession& session, const config::CqlConfig& cfg,
                               const MigrateOptions& options = {});

// The CLI: connects, migrates, prints the outcome; 0 when the schema is at the latest version
// (or newer), 1 with the reason on stderr otherwise.
int run_migrate_command(const config::Config& config);

}  // namespace commentd::store::cql
