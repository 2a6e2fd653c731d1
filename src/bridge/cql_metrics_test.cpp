// Statement labels and per-statement counts of the CQL metrics (no server; the counts themselves
// are checked against Cassandra in cql_client_cqltest.cpp).
#include "bridge/cql_metrics.h"

#include <gtest/gtest.h>

namespace commentd::bridge {
namespace {

TEST(CqlMetrics, AStatementIsNamedByItsVerbTableAndCondition) {
  EXPECT_EQ(statement_label("SELECT id, content FROM ks.comments WHERE id = ?"), "SELECT comments");
  EXPECT_EQ(statement_label("select count(*) from reactions where comment_id = ?"), "SELECT reactions");
  EXPECT_EQ(statement_label("INSERT INTO {ks}.comments (id) VALUES (?) IF NOT EXISTS"), "INSERT comments IF");
  EXPECT_EQ(statement_label("UPDATE pavilion.comment_metrics SET likes = likes + ? WHERE comment_id = ?"),
            "UPDATE comment_metrics");
  EXPECT_EQ(statement_label("UPDATE reaction_owners USING TTL ? SET owner = ? WHERE comment_id = ? IF owner = ?"),
            "UPDATE reaction_owners IF");
  EXPECT_EQ(statement_label("DELETE FROM ks.reaction_owners WHERE comment_id = ? IF owner = ?"),
            "DELETE reaction_owners IF");
  EXPECT_EQ(statement_label("  SELECT\n release_version\tFROM system.local"), "SELECT local");
  // A column or value merely containing "if" is not a condition.
  EXPECT_EQ(statement_label("SELECT diff, iffy FROM t WHERE k = ?"), "SELECT t");
  EXPECT_EQ(statement_label("CREATE TABLE t (id int PRIMARY KEY)"), "OTHER");
  EXPECT_EQ(statement_label(""), "OTHER");
}

TEST(CqlMetrics, EachStatementKeepsItsCountsAndInFlightReturnsToZero) {
  CqlMetrics m;
  auto& a = m.of("SELECT comments");
  EXPECT_EQ(&a, &m.of("SELECT comments")) << "one entry per label";
  m.started();
  m.started();
  EXPECT_EQ(m.in_flight(), 2);
  m.finished(a, CB_OK, 0.002);
  m.finished(m.of("UPDATE comment_metrics"), CB_TIMEOUT, 5.0);
  EXPECT_EQ(m.in_flight(), 0);
  std::vector<std::string> seen;
  m.each([&](const std::string& label, const CqlMetrics::Statement& s) {
    seen.push_back(label);
    auto snap = s.seconds.snapshot();
    EXPECT_EQ(snap.count, 1u) << label;
  });
  EXPECT_EQ(seen, (std::vector<std::string>{"SELECT comments", "UPDATE comment_metrics"}));
  EXPECT_EQ(a.outcomes[CB_OK].load(), 1u);
  EXPECT_EQ(m.of("UPDATE comment_metrics").outcomes[CB_TIMEOUT].load(), 1u);
}

}  // namespace
}  // namespace commentd::bridge
