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

// The fold marker: a `backfill_progress` row (job, phase, range_id 0, done = true) saying that
// every user_hidden row is also in user_reactions (schema step 10), so a node reads a user's
// view of a video from user_reactions alone. Written by `commentd migrate` when user_hidden
// did not exist before its run (nothing to copy), else by `commentd backfill` once its
// "user_view" phase has copied the table, which must run after every node writes both tables
// (docs/operations.md section 2, step 4).
inline constexpr std::string_view kFoldMarkerJob = "cluster";
inline constexpr std::string_view kFoldMarkerPhase = "user_view_folded";
// The schema version that created user_hidden: a keyspace below it has none to copy.
inline constexpr int kUserHiddenVersion = 4;
// The schema version that adds the fold's columns to user_reactions.
inline constexpr int kFoldVersion = 10;
// The fold's row of the read-your-writes mark in a (video, user) partition of user_reactions:
// the nil uuid, which no comment has (the previous release reads it as a withdrawn reaction
// to no comment, which changes nothing it answers).
inline constexpr std::string_view kViewMarkRow = "00000000-0000-0000-0000-000000000000";

// CREATE KEYSPACE IF NOT EXISTS with the configured replication (the config is validated).
std::string create_keyspace_cql(const config::CqlConfig& cfg);

// The bookkeeping tables migrate itself needs before any step: `schema_version` (one row per
// applied step: version, description, applied_at, applied_by) and `schema_lease` (the
// migration lease row, written IF NOT EXISTS USING TTL).
std::span<const std::string_view> bookkeeping_statements();

}  // namespace commentd::store::cql
