// The migration steps' invariants that need no server (migrate_cqltest.cpp runs them).
#include "store/cql/schema.h"

#include <gtest/gtest.h>

#include <set>

namespace commentd::store::cql {
namespace {

TEST(CqlSchema, StepsAreNumberedOneToLatestWithoutGaps) {
  int expected = 1;
  for (const MigrationStep& step : migration_steps()) EXPECT_EQ(step.version, expected++);
  EXPECT_EQ(latest_schema_version(), expected - 1);
  EXPECT_GE(latest_schema_version(), 3);
}

TEST(CqlSchema, EveryStatementIsIdempotentAndKeyspaceQualified) {
  auto check = [](std::string_view stmt) {
    EXPECT_TRUE(stmt.find("CREATE TABLE IF NOT EXISTS {ks}.") == 0 || stmt.find("DROP TABLE IF EXISTS {ks}.") == 0)
        << stmt;
    EXPECT_EQ(stmt.find("ALTER"), std::string_view::npos) << "columns are added through add_columns: " << stmt;
  };
  for (const MigrationStep& step : migration_steps())
    for (std::string_view stmt : step.statements) check(stmt);
  for (std::string_view stmt : bookkeeping_statements()) check(stmt);
}

TEST(CqlSchema, CounterTablesHoldOnlyCounters) {
  for (const MigrationStep& step : migration_steps())
    for (std::string_view stmt : step.statements) {
      if (stmt.find(" counter") == std::string_view::npos) continue;
      for (std::string_view other : {" text", " timestamp", " boolean", " int,", " bigint"})
        EXPECT_EQ(stmt.find(other), std::string_view::npos) << stmt;
    }
}

TEST(CqlSchema, V1TablesAreNeverAlteredBeyondAddedColumns) {
  // V1 columns are the plan's; a later step may only add columns with new names.
  std::set<std::string> v1_columns = {"comments.id",          "comments.video_id",   "comments.user_id",
                                      "comments.content",     "comments.created_at", "comments.updated_at",
                                      "comments.deleted_at",  "comments.parent_id",  "comments.likes",
                                      "comments.dislikes",    "comments.status",     "reactions.comment_id",
                                      "reactions.user_id",    "reactions.type",      "reactions.created_at"};
  for (const MigrationStep& step : migration_steps())
    for (const AddColumn& col : step.add_columns)
      EXPECT_EQ(v1_columns.count(std::string(col.table) + "." + std::string(col.column)), 0u) << col.column;
}

TEST(CqlSchema, WithKeyspaceReplacesEveryPlaceholder) {
  EXPECT_EQ(with_keyspace("CREATE TABLE {ks}.a; SELECT * FROM {ks}.b", "ks1"),
            "CREATE TABLE ks1.a; SELECT * FROM ks1.b");
  EXPECT_EQ(with_keyspace("no placeholder {k}", "x"), "no placeholder {k}");
}

TEST(CqlSchema, KeyspaceReplicationFromConfig) {
  config::CqlConfig c;
  c.keyspace = "pc";
  EXPECT_EQ(create_keyspace_cql(c),
            "CREATE KEYSPACE IF NOT EXISTS pc WITH replication = {'class': 'SimpleStrategy', "
            "'replication_factor': 1}");
  c.replication = "NetworkTopologyStrategy";
  c.datacenters = {"eu-west:3", "us_east:2"};
  EXPECT_EQ(create_keyspace_cql(c),
            "CREATE KEYSPACE IF NOT EXISTS pc WITH replication = {'class': 'NetworkTopologyStrategy', "
            "'eu-west': 3, 'us_east': 2}");
}

}  // namespace
}  // namespace commentd::store::cql
