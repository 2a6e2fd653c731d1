// The CQL schema of commentd as versioned migration steps (docs/cluster.md "Tables" and
// "Schema and migration"). A step is applied once per keyspace, in version order, and is
// recorded in `schema_version`; a later schema adds steps and never edits a released one.
// Every statement is idempotent: CREATE ... IF NOT EXISTS, and added columns are ALTER TABLE
// ADD guarded by a read of system_schema.columns. Immutable; thread-safe.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"

namespace commentd::store::cql {

// A column a step adds to an existing table (never a change to an existing column).
struct AddColumn {
  std::string_view table;
  std::string_view column;
  std::string_view type;  // CQL type as written in DDL, e.g. "bigint", "set<uuid>"
};

struct MigrationStep {
  int version;  // 1, 2, 3, ... without gaps
  std::string_view description;
  // CQL with the keyspace written as `{ks}` (see with_keyspace); each is IF NOT EXISTS.
  std::vector<std::string_view> statements;
  std::vector<AddColumn> add_columns;
};

// In version order.
std::span<const MigrationStep> migration_steps();
int latest_schema_version();

// `cql` with every "{ks}" replaced by `keyspace`.
std::string with_keyspace(std::string_view cql, std::string_view keyspace);

// CREATE KEYSPACE IF NOT EXISTS with the configured replication (the config is validated).
std::string create_keyspace_cql(const config::CqlConfig& cfg);

// The bookkeeping tables migrate itself needs before any step: `schema_version` (one row per
// applied step: version, description, applied_at, applied_by) and `schema_lease` (the
// migration lease row, written IF NOT EXISTS USING TTL).
std::span<const std::string_view> bookkeeping_statements();

}  // namespace commentd::store::cql
