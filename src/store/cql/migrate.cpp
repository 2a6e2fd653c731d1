#include "store/cql/migrate.h"

#include <unistd.h>

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <algorithm>
#include <cstdio>
#include <map>
#include <optional>
#include <thread>

#include "store/cql/schema.h"

namespace commentd::store::cql {
namespace {

using bridge::CqlSession;
using bridge::ExecOptions;
using bridge::PreparedPtr;
using bridge::Rows;
using bridge::Value;

// Runs one bridge operation to completion on a private io_context driven by this thread.
template <class T, class Init>
Result<T> run_sync(Init init) {
  boost::asio::io_context io;
  auto guard = boost::asio::make_work_guard(io);
  std::optional<Result<T>> out;
  init(boost::asio::bind_executor(io, [&](Result<T> r) {
    out.emplace(std::move(r));
    guard.reset();
  }));
  io.run();
  return std::move(*out);
}

Error with_context(const Error& e, const std::string& what) {
  return Error(e.code, what + ": " + e.message, e.detail_code);
}

std::string default_owner() {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
  return std::string(host) + "/" + std::to_string(::getpid());
}

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// One migration run on one session: statements, reads and the lease.
class Migrator {
 public:
  Migrator(CqlSession& s, const config::CqlConfig& cfg, const MigrateOptions& o)
      : s_(s), cfg_(cfg), opts_(o), owner_(o.owner.empty() ? default_owner() : o.owner) {
    auto c = bridge::parse_consistency(cfg.consistency);
    consistency_ = c ? *c : bridge::Consistency::local_quorum;
  }

  Result<MigrateOutcome> run() {
    MigrateOutcome out;
    if (auto st = ddl(create_keyspace_cql(cfg_)); !st) return st.error();
    for (std::string_view stmt : bookkeeping_statements())
      if (auto st = ddl(with_keyspace(stmt, cfg_.keyspace)); !st) return st.error();
    auto applied = applied_versions();
    if (!applied) return applied.error();
    out.version_before = contiguous(*applied);
    if (out.version_before >= latest_schema_version()) {
      out.version_after = out.version_before;
      return out;
    }

    const auto deadline = std::chrono::steady_clock::now() + opts_.lease_wait;
    for (;;) {
      auto got = take_lease();
      if (!got) return got.error();
      if (*got) break;
      // Another runner holds the lease: done once it has brought the schema up.
      auto now = applied_versions();
      if (!now) return now.error();
      if (contiguous(*now) >= latest_schema_version()) {
        out.version_after = contiguous(*now);
        return out;
      }
      if (std::chrono::steady_clock::now() >= deadline)
        return Error(Errc::unavailable, "another runner holds the migration lease (schema_lease) "
                                        "and the schema did not reach version " +
                                            std::to_string(latest_schema_version()) + " in time");
      std::this_thread::sleep_for(opts_.lease_poll);
    }

    auto result = apply_missing(out);
    auto released = release_lease();
    if (!result) return result.error();
    if (!released) return released.error();
    return out;
  }

 private:
  Status apply_missing(MigrateOutcome& out) {
    auto applied = applied_versions();  // re-read under the lease
    if (!applied) return applied.error();
    // This run creates user_hidden: there is nothing of it to fold into user_reactions.
    const bool fresh_user_view = applied->count(kUserHiddenVersion) == 0;
    for (const MigrationStep& step : migration_steps()) {
      if (applied->count(step.version)) continue;
      for (std::string_view stmt : step.statements)
        if (auto st = ddl(with_keyspace(stmt, cfg_.keyspace)); !st)
          return with_context(st.error(), "step " + std::to_string(step.version));
      for (const AddColumn& col : step.add_columns)
        if (auto st = add_column(col); !st)
          return with_context(st.error(), "step " + std::to_string(step.version));
      if (auto st = record(step); !st) return st;
      out.applied.push_back(step.version);
      applied->insert({step.version, true});
      if (auto st = renew_lease(); !st) return st;
    }
    out.version_after = contiguous(*applied);
    // Killed before this line, a rerun finds user_hidden applied and leaves the marker to
    // `commentd backfill` (nodes read both tables until then: slower, not wrong).
    if (fresh_user_view && out.version_after >= latest_schema_version()) {
      auto r = exec("INSERT INTO " + table("backfill_progress") +
                        " (job, phase, range_id, next_token, done, rows, updated_at) VALUES (?, ?, 0, 0, true, 0, ?)",
                    {Value::text(std::string(kFoldMarkerJob)), Value::text(std::string(kFoldMarkerPhase)),
                     Value::timestamp_ms(now_ms())},
                    consistency_);
      if (!r) return with_context(r.error(), "fold marker");
      out.user_view_folded = true;
    }
    return ok_status();
  }

  Status ddl(const std::string& cql) {
    auto r = run_sync<Rows>([&](auto h) { s_.query(cql, cfg_.request_timeout, std::move(h)); });
    if (!r) return with_context(r.error(), cql.substr(0, cql.find('(')));
    auto agreed = run_sync<Unit>([&](auto h) { s_.await_schema_agreement(std::move(h)); });
    if (!agreed) return with_context(agreed.error(), "schema agreement");
    return ok_status();
  }

  Result<Rows> exec(const std::string& cql, std::vector<Value> values, bridge::Consistency c) {
    auto p = run_sync<PreparedPtr>([&](auto h) { s_.prepare(cql, std::move(h)); });
    if (!p) return with_context(p.error(), cql);
    ExecOptions o;
    o.consistency = c;
    o.timeout = cfg_.request_timeout;
    auto r = run_sync<Rows>([&](auto h) { s_.execute(**p, std::move(values), std::move(o), std::move(h)); });
    if (!r) return with_context(r.error(), cql);
    return r;
  }

  std::string table(std::string_view name) const { return cfg_.keyspace + "." + std::string(name); }

  Result<std::map<int, bool>> applied_versions() {
    auto r = exec("SELECT version FROM " + table("schema_version"), {}, consistency_);
    if (!r) return r.error();
    std::map<int, bool> out;
    for (size_t i = 0; i < r->size(); ++i) {
      auto v = r->i64(i, 0);
      if (!v) return v.error();
      if (v->has_value()) out[static_cast<int>(**v)] = true;
    }
    return out;
  }

  static int contiguous(const std::map<int, bool>& applied) {
    int v = 0;
    while (applied.count(v + 1)) ++v;
    // A keyspace migrated by a newer binary: report its highest version.
    if (!applied.empty() && applied.rbegin()->first > latest_schema_version() && v >= latest_schema_version())
      v = applied.rbegin()->first;
    return v;
  }

  Status add_column(const AddColumn& col) {
    for (int attempt = 0; attempt < 2; ++attempt) {
      auto r = exec("SELECT type, kind FROM system_schema.columns WHERE keyspace_name = ? AND table_name = ? "
                    "AND column_name = ?",
                    {Value::text(cfg_.keyspace), Value::text(std::string(col.table)),
                     Value::text(std::string(col.column))},
                    bridge::Consistency::one);
      if (!r) return r.error();
      if (r->size() > 0) {
        auto type = r->bytes(0, 0), kind = r->bytes(0, 1);
        if (!type) return type.error();
        if (!kind) return kind.error();
        const std::string_view want_kind = "regular";  // a step adds regular columns only
        if (!type->has_value() || **type != col.type || !kind->has_value() || **kind != want_kind)
          return Error(Errc::internal, table(col.table) + "." + std::string(col.column) + " exists as " +
                                           std::string(kind->value_or("?")) + " " + std::string(type->value_or("?")) +
                                           ", expected " + std::string(want_kind) + " " + std::string(col.type));
        return ok_status();
      }
      if (attempt == 1) break;
      auto st = ddl("ALTER TABLE " + table(col.table) + " ADD " + std::string(col.column) + " " +
                    std::string(col.type));
      // Refused because a concurrent ALTER added it: the re-read above decides.
      if (!st && st.error().message.find("onflicts with an existing column") == std::string::npos &&
          st.error().message.find("already exists") == std::string::npos)
        return st;
    }
    return Error(Errc::internal, "column " + table(col.table) + "." + std::string(col.column) +
                                     " missing after ALTER TABLE ADD");
  }

  Status record(const MigrationStep& step) {
    auto r = exec("INSERT INTO " + table("schema_version") +
                      " (version, description, applied_at, applied_by) VALUES (?, ?, ?, ?)",
                  {Value::int32(step.version), Value::text(std::string(step.description)),
                   Value::timestamp_ms(now_ms()), Value::text(owner_)},
                  consistency_);
    if (!r) return r.error();
    return ok_status();
  }

  // True when this runner now holds the lease.
  Result<bool> take_lease() {
    auto r = exec("INSERT INTO " + table("schema_lease") +
                      " (name, owner) VALUES ('migrate', ?) IF NOT EXISTS USING TTL " +
                      std::to_string(opts_.lease_ttl.count()),
                  {Value::text(owner_)}, consistency_);
    if (!r) return r.error();
    return r->applied().value_or(false);
  }

  Status renew_lease() {
    auto r = exec("UPDATE " + table("schema_lease") + " USING TTL " + std::to_string(opts_.lease_ttl.count()) +
                      " SET owner = ? WHERE name = 'migrate' IF owner = ?",
                  {Value::text(owner_), Value::text(owner_)}, consistency_);
    if (!r) return r.error();
    if (!r->applied().value_or(false))
      return Error(Errc::unavailable, "lost the migration lease (expired after " +
                                          std::to_string(opts_.lease_ttl.count()) + " s); rerun migrate");
    return ok_status();
  }

  Status release_lease() {
    auto r = exec("DELETE FROM " + table("schema_lease") + " WHERE name = 'migrate' IF owner = ?",
                  {Value::text(owner_)}, consistency_);
    if (!r) return r.error();
    return ok_status();
  }

  CqlSession& s_;
  const config::CqlConfig& cfg_;
  const MigrateOptions& opts_;
  std::string owner_;
  bridge::Consistency consistency_;
};

}  // namespace

Result<std::unique_ptr<CqlSession>> connect_cql(const bridge::Runtime& rt, const config::CqlConfig& cfg) {
  bridge::CqlConfig c;
  for (const std::string& h : cfg.hosts) c.contact_points += (c.contact_points.empty() ? "" : ",") + h;
  c.local_datacenter = cfg.local_datacenter;
  c.username = cfg.username;
  c.password = cfg.password;
  c.request_timeout = cfg.request_timeout;
  c.connect_timeout = cfg.request_timeout;
  c.tls = cfg.tls.enabled;
  c.tls_ca_file = cfg.tls.ca_file;
  c.tls_cert_file = cfg.tls.cert_file;
  c.tls_key_file = cfg.tls.key_file;
  if (auto cons = bridge::parse_consistency(cfg.consistency)) c.default_consistency = *cons;
  return run_sync<std::unique_ptr<CqlSession>>([&](auto h) { CqlSession::connect(rt, c, std::move(h)); });
}

Result<int> read_schema_version(CqlSession& session, const config::CqlConfig& cfg) {
  auto t = run_sync<Rows>([&](auto h) {
    session.query("SELECT table_name FROM system_schema.tables WHERE keyspace_name = '" + cfg.keyspace +
                      "' AND table_name = 'schema_version'",
                  cfg.request_timeout, std::move(h));
  });
  if (!t) return t.error();
  if (t->size() == 0) return 0;
  auto r = run_sync<Rows>([&](auto h) {
    session.query("SELECT version FROM " + cfg.keyspace + ".schema_version", cfg.request_timeout, std::move(h));
  });
  if (!r) return r.error();
  std::map<int, bool> applied;
  for (size_t i = 0; i < r->size(); ++i) {
    auto v = r->i64(i, 0);
    if (!v) return v.error();
    if (v->has_value()) applied[static_cast<int>(**v)] = true;
  }
  int v = 0;
  while (applied.count(v + 1)) ++v;
  return v;
}

Result<MigrateOutcome> migrate(CqlSession& session, const config::CqlConfig& cfg, const MigrateOptions& options) {
  return Migrator(session, cfg, options).run();
}

int run_migrate_command(const config::Config& config) {
  // Schema changes wait for agreement across the cluster: they get schema_timeout, not the
  // request-path request_timeout.
  config::CqlConfig cfg = config.storage.cql;
  cfg.request_timeout = cfg.schema_timeout;
  auto rt = bridge::Runtime::create(2);
  if (!rt) {
    std::fprintf(stderr, "commentd migrate: %s\n", rt.error().message.c_str());
    return 1;
  }
  auto session = connect_cql(**rt, cfg);
  if (!session) {
    std::fprintf(stderr, "commentd migrate: cannot connect to %s: %s\n",
                 cfg.hosts.empty() ? "(no hosts)" : cfg.hosts.front().c_str(), session.error().message.c_str());
    return 1;
  }
  auto out = migrate(**session, cfg);
  if (!out) {
    std::fprintf(stderr, "commentd migrate: keyspace %s is NOT at schema version %d: %s\n", cfg.keyspace.c_str(),
                 latest_schema_version(), out.error().message.c_str());
    return 1;
  }
  std::string steps;
  for (int v : out->applied) steps += (steps.empty() ? "" : ", ") + std::to_string(v);
  std::printf("commentd migrate: keyspace %s at schema version %d (was %d; applied: %s)\n", cfg.keyspace.c_str(),
              out->version_after, out->version_before, steps.empty() ? "none" : steps.c_str());
  if (std::find(out->applied.begin(), out->applied.end(), kFoldVersion) != out->applied.end() && !out->user_view_folded)
    std::printf("commentd migrate: once every node runs this release, run `commentd backfill --phase user_view "
                "--job fold` to fold the users' views into user_reactions (docs/operations.md section 2, step 4)\n");
  if (out->version_after < latest_schema_version()) {
    std::fprintf(stderr, "commentd migrate: schema version %d is below %d\n", out->version_after,
                 latest_schema_version());
    return 1;
  }
  return 0;
}

}  // namespace commentd::store::cql
