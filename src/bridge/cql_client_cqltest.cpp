// CqlSession against a real Cassandra (COMMENTD_TEST_CQL=host:port): every bound and read
// type, errors by kind, paging, LWT, batches, schema agreement, timeouts and cancellation
// (through a freezable proxy: deterministic, no sleeps), and TLS.
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <set>

#include "bridge/bridge_error.h"
#include "bridge/cql_client.h"
#include "bridge/tcp_proxy.h"
#include "bridge/testing.h"

namespace commentd::bridge {
namespace {

using namespace std::chrono_literals;
using testing::wait;

constexpr const char* kKeyspace = "commentd_bridge_test";

class CqlBridge : public ::testing::Test {
 protected:
  void SetUp() override {
    COMMENTD_REQUIRE_SERVER(addr_, "COMMENTD_TEST_CQL");
    auto rt = Runtime::create(2);
    ASSERT_TRUE(rt.ok());
    rt_ = std::move(*rt);
    session_ = connect(addr_);
    ASSERT_TRUE(session_);
    ddl(std::string("CREATE KEYSPACE IF NOT EXISTS ") + kKeyspace +
        " WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}");
    // One table name per test: tests may run in parallel processes (ctest -j).
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    table_ = std::string(kKeyspace) + "." + info->name() + "_" + std::to_string(::getpid());
  }

  std::unique_ptr<CqlSession> connect(const std::string& contact, CqlConfig cfg = {}) {
    cfg.contact_points = contact;
    cfg.local_datacenter = "datacenter1";
    cfg.default_consistency = Consistency::one;
    cfg.request_timeout = 20s;
    auto s = wait<std::unique_ptr<CqlSession>>([&](auto h) { CqlSession::connect(*rt_, cfg, std::move(h)); });
    EXPECT_TRUE(s.ok()) << s.error().message;
    return s.ok() ? std::move(*s) : nullptr;
  }

  void ddl(const std::string& cql) {
    auto r = wait<Rows>([&](auto h) { session_->query(cql, 60s, std::move(h)); });
    ASSERT_TRUE(r.ok()) << cql << ": " << r.error().message;
  }

  PreparedPtr prepare(const std::string& cql, CqlSession* s = nullptr) {
    auto p = wait<PreparedPtr>([&](auto h) { (s ? s : session_.get())->prepare(cql, std::move(h)); });
    EXPECT_TRUE(p.ok()) << cql << ": " << (p.ok() ? "" : p.error().message);
    return p.ok() ? *p : nullptr;
  }

  Result<Rows> exec(const PreparedPtr& p, std::vector<Value> v, ExecOptions o = {}) {
    return wait<Rows>([&](auto h) { session_->execute(*p, std::move(v), std::move(o), std::move(h)); });
  }

  std::string addr_;
  std::unique_ptr<Runtime> rt_;
  std::unique_ptr<CqlSession> session_;
  std::string table_;
};

template <class T>
T must(Result<std::optional<T>> r) {
  EXPECT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(r.ok() && r->has_value()) << "unexpected NULL";
  return r.ok() && r->has_value() ? **r : T{};
}

TEST_F(CqlBridge, EveryTypeRoundTripsAndNullsReadAsNull) {
  ddl("CREATE TABLE " + table_ +
      " (id uuid PRIMARY KEY, i int, b bigint, t text, a ascii, bl blob, f boolean, ts timestamp, tu timeuuid,"
      " si smallint, ti tinyint)");
  auto ins = prepare("INSERT INTO " + table_ + " (id, i, b, t, a, bl, f, ts, tu, si, ti) VALUES (?,?,?,?,?,?,?,?,?,?,?)");
  ASSERT_TRUE(ins);
  EXPECT_EQ(ins->param_count(), 11u);
  Uuid id{0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0x4d, 0xef, 0x80, 1, 2, 3, 4, 5, 6, 7};
  Uuid tu{0x6b, 0xa7, 0xb8, 0x10, 0x9d, 0xad, 0x11, 0xd1, 0x80, 0xb4, 0, 0xc0, 0x4f, 0xd4, 0x30, 0xc8};  // v1
  std::string blob("\0\xff\x01z", 4);
  auto r = exec(ins, {Value::uuid(id), Value::int32(-2147483647 - 1), Value::bigint(INT64_MAX),
                      Value::text("h\xC3\xA9llo \xE2\x9C\x93"), Value::text("plain"), Value::blob(blob),
                      Value::boolean(true), Value::timestamp_ms(1700000000123), Value::uuid(tu),
                      Value::int32(-32768), Value::int32(127)});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->size(), 0u);
  EXPECT_FALSE(r->applied().has_value());

  Uuid nid = id;
  nid[15] = 99;
  ASSERT_TRUE(exec(ins, {Value::uuid(nid), Value::null(), Value::null(), Value::null(), Value::null(), Value::null(),
                         Value::null(), Value::null(), Value::null(), Value::null(), Value::null()})
                  .ok());

  auto sel = prepare("SELECT id, i, b, t, a, bl, f, ts, tu, si, ti FROM " + table_ + " WHERE id = ?");
  auto got = exec(sel, {Value::uuid(id)});
  ASSERT_TRUE(got.ok()) << got.error().message;
  ASSERT_EQ(got->size(), 1u);
  ASSERT_EQ(got->columns(), 11u);
  EXPECT_EQ(got->column_name(3), "t");
  EXPECT_EQ(got->column_kind(0), CB_VALUE_UUID);
  EXPECT_EQ(got->column_kind(8), CB_VALUE_TIMEUUID);
  EXPECT_EQ(must(got->uuid(0, 0)), id);
  EXPECT_EQ(must(got->i64(0, 1)), -2147483648LL);
  EXPECT_EQ(must(got->i64(0, 2)), INT64_MAX);
  EXPECT_EQ(must(got->bytes(0, 3)), "h\xC3\xA9llo \xE2\x9C\x93");
  EXPECT_EQ(must(got->bytes(0, 4)), "plain");
  EXPECT_EQ(must(got->bytes(0, 5)), blob);
  EXPECT_EQ(must(got->boolean(0, 6)), true);
  EXPECT_EQ(must(got->i64(0, 7)), 1700000000123);
  EXPECT_EQ(must(got->uuid(0, 8)), tu);
  EXPECT_EQ(must(got->i64(0, 9)), -32768);
  EXPECT_EQ(must(got->i64(0, 10)), 127);
  // Wrong getter and out-of-range indexes are errors, not values.
  EXPECT_FALSE(got->i64(0, 3).ok());
  EXPECT_FALSE(got->bytes(0, 1).ok());
  EXPECT_FALSE(got->i64(1, 1).ok());
  EXPECT_FALSE(got->i64(0, 11).ok());

  auto nul = exec(sel, {Value::uuid(nid)});
  ASSERT_TRUE(nul.ok());
  ASSERT_EQ(nul->size(), 1u);
  for (size_t c = 1; c < 11; ++c) {
    bool is_null = false;
    switch (nul->column_kind(c)) {
      case CB_VALUE_TEXT: case CB_VALUE_ASCII: case CB_VALUE_BLOB:
        is_null = nul->bytes(0, c).ok() && !nul->bytes(0, c)->has_value();
        break;
      case CB_VALUE_BOOLEAN:
        is_null = nul->boolean(0, c).ok() && !nul->boolean(0, c)->has_value();
        break;
      case CB_VALUE_TIMEUUID:
        is_null = nul->uuid(0, c).ok() && !nul->uuid(0, c)->has_value();
        break;
      default:
        is_null = nul->i64(0, c).ok() && !nul->i64(0, c)->has_value();
    }
    EXPECT_TRUE(is_null) << "column " << c;
  }
}

TEST_F(CqlBridge, WrongValueKindsAreRejectedBeforeSending) {
  ddl("CREATE TABLE " + table_ + " (id int PRIMARY KEY, t text, ti tinyint)");
  auto ins = prepare("INSERT INTO " + table_ + " (id, t, ti) VALUES (?, ?, ?)");
  auto kind = exec(ins, {Value::text("1"), Value::text("x"), Value::int32(1)});
  ASSERT_FALSE(kind.ok());
  EXPECT_EQ(kind.error().detail_code, "bridge_bad_argument");
  EXPECT_NE(kind.error().message.find("column id is int"), std::string::npos) << kind.error().message;
  auto range = exec(ins, {Value::int32(1), Value::text("x"), Value::int32(128)});
  ASSERT_FALSE(range.ok());
  EXPECT_EQ(range.error().detail_code, "bridge_bad_argument");
  auto count = exec(ins, {Value::int32(1)});
  ASSERT_FALSE(count.ok());
  EXPECT_EQ(count.error().detail_code, "bridge_bad_argument");
  auto utf8 = exec(ins, {Value::int32(1), Value::text("\xff"), Value::int32(1)});
  ASSERT_FALSE(utf8.ok());
  EXPECT_EQ(utf8.error().detail_code, "bridge_bad_argument");
}

TEST_F(CqlBridge, ServerErrorsArriveByKind) {
  auto syntax = wait<PreparedPtr>([&](auto h) { session_->prepare("SELEC nothing", std::move(h)); });
  ASSERT_FALSE(syntax.ok());
  EXPECT_EQ(syntax.error().detail_code, "bridge_syntax") << syntax.error().message;
  EXPECT_EQ(syntax.error().code, Errc::internal);

  auto table = wait<PreparedPtr>(
      [&](auto h) { session_->prepare(std::string("SELECT * FROM ") + kKeyspace + ".no_such_table", std::move(h)); });
  ASSERT_FALSE(table.ok());
  EXPECT_EQ(table.error().detail_code, "bridge_invalid") << table.error().message;

  auto ks = wait<Rows>([&](auto h) { session_->query("SELECT * FROM no_such_keyspace.t", 0ms, std::move(h)); });
  ASSERT_FALSE(ks.ok());
  EXPECT_EQ(ks.error().detail_code, "bridge_invalid") << ks.error().message;

  ddl("CREATE TABLE " + table_ + " (id int PRIMARY KEY)");
  auto exists = wait<Rows>([&](auto h) { session_->query("CREATE TABLE " + table_ + " (id int PRIMARY KEY)", 0ms, std::move(h)); });
  ASSERT_FALSE(exists.ok());
  EXPECT_EQ(exists.error().detail_code, "bridge_already_exists") << exists.error().message;
  EXPECT_EQ(exists.error().code, Errc::conflict);

  // Unavailable: QUORUM needs 2 of RF 2 replicas, and only one node exists.
  ddl(std::string("CREATE KEYSPACE IF NOT EXISTS ") + kKeyspace +
      "_rf2 WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 2}");
  ddl(std::string("CREATE TABLE IF NOT EXISTS ") + kKeyspace + "_rf2.t (id int PRIMARY KEY)");
  auto ins = prepare(std::string("INSERT INTO ") + kKeyspace + "_rf2.t (id) VALUES (?)");
  ExecOptions all;
  all.consistency = Consistency::all;
  auto un = exec(ins, {Value::int32(1)}, all);
  ASSERT_FALSE(un.ok());
  EXPECT_EQ(un.error().detail_code, "bridge_unavailable") << un.error().message;
  EXPECT_EQ(un.error().code, Errc::unavailable);
}

TEST_F(CqlBridge, PagesThroughAPartition) {
  ddl("CREATE TABLE " + table_ + " (p int, c int, v text, PRIMARY KEY (p, c))");
  auto ins = prepare("INSERT INTO " + table_ + " (p, c, v) VALUES (1, ?, ?)");
  for (int i = 0; i < 25; ++i) ASSERT_TRUE(exec(ins, {Value::int32(i), Value::text("v" + std::to_string(i))}).ok());
  auto sel = prepare("SELECT c, v FROM " + table_ + " WHERE p = 1");
  ExecOptions o;
  o.page_size = 10;
  std::vector<size_t> sizes;
  std::vector<int64_t> seen;
  for (int guard = 0; guard < 10; ++guard) {
    auto page = exec(sel, {}, o);
    ASSERT_TRUE(page.ok()) << page.error().message;
    sizes.push_back(page->size());
    for (size_t r = 0; r < page->size(); ++r) seen.push_back(must(page->i64(r, 0)));
    auto next = page->paging_state();
    if (!next) break;
    o.paging_state = *next;
  }
  // Cassandra may end with an empty page when the last page is exactly full; not here.
  EXPECT_EQ(sizes, (std::vector<size_t>{10, 10, 5}));
  std::vector<int64_t> want(25);
  for (int i = 0; i < 25; ++i) want[i] = i;
  EXPECT_EQ(seen, want);
}

TEST_F(CqlBridge, ConditionalWritesReportAppliedAndTheCurrentRow) {
  ddl("CREATE TABLE " + table_ + " (id int PRIMARY KEY, owner text, version bigint)");
  auto ins = prepare("INSERT INTO " + table_ + " (id, owner, version) VALUES (?, ?, ?) IF NOT EXISTS");
  ExecOptions o;
  o.serial_consistency = Consistency::local_serial;
  o.consistency = Consistency::local_quorum;
  auto first = exec(ins, {Value::int32(1), Value::text("a"), Value::bigint(1)}, o);
  ASSERT_TRUE(first.ok()) << first.error().message;
  EXPECT_EQ(first->applied(), std::optional<bool>(true));

  auto second = exec(ins, {Value::int32(1), Value::text("b"), Value::bigint(9)}, o);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->applied(), std::optional<bool>(false));
  ASSERT_EQ(second->size(), 1u);
  // The current row follows [applied]; find columns by name.
  for (size_t c = 1; c < second->columns(); ++c) {
    if (second->column_name(c) == "owner") {
      EXPECT_EQ(must(second->bytes(0, c)), "a");
    }
    if (second->column_name(c) == "version") {
      EXPECT_EQ(must(second->i64(0, c)), 1);
    }
  }

  auto cas = prepare("UPDATE " + table_ + " SET owner = ?, version = ? WHERE id = ? IF version = ?");
  auto ok = exec(cas, {Value::text("c"), Value::bigint(2), Value::int32(1), Value::bigint(1)}, o);
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->applied(), std::optional<bool>(true));
  auto stale = exec(cas, {Value::text("d"), Value::bigint(2), Value::int32(1), Value::bigint(1)}, o);
  ASSERT_TRUE(stale.ok());
  EXPECT_EQ(stale->applied(), std::optional<bool>(false));
  EXPECT_EQ(must(stale->i64(0, 1)), 2);  // [applied], version
}

TEST_F(CqlBridge, BatchesLoggedUnloggedAndCounter) {
  ddl("CREATE TABLE " + table_ + " (id int PRIMARY KEY, v text)");
  ddl("CREATE TABLE " + table_ + "_n (id int PRIMARY KEY, likes counter, replies counter)");
  auto ins = prepare("INSERT INTO " + table_ + " (id, v) VALUES (?, ?)");
  auto inc = prepare("UPDATE " + table_ + "_n SET likes = likes + ?, replies = replies + ? WHERE id = ?");
  auto batch = [&](BatchType t, std::vector<BatchItem> items) {
    return wait<Rows>([&](auto h) { session_->batch(t, std::move(items), ExecOptions{}, std::move(h)); });
  };
  ASSERT_TRUE(batch(BatchType::logged, {{ins.get(), {Value::int32(1), Value::text("a")}}, {ins.get(), {Value::int32(2), Value::text("b")}}}).ok());
  ASSERT_TRUE(batch(BatchType::unlogged, {{ins.get(), {Value::int32(3), Value::text("c")}}}).ok());
  auto cb = batch(BatchType::counter, {{inc.get(), {Value::counter(5), Value::counter(1), Value::int32(7)}},
                                       {inc.get(), {Value::counter(-2), Value::counter(0), Value::int32(7)}}});
  ASSERT_TRUE(cb.ok()) << cb.error().message;
  auto bad = batch(BatchType::logged, {{inc.get(), {Value::counter(1), Value::counter(1), Value::int32(7)}}});
  ASSERT_FALSE(bad.ok());  // counter updates need a COUNTER batch
  EXPECT_EQ(bad.error().detail_code, "bridge_invalid") << bad.error().message;

  auto count = exec(prepare("SELECT count(*) FROM " + table_), {});
  ASSERT_TRUE(count.ok());
  EXPECT_EQ(must(count->i64(0, 0)), 3);
  auto n = exec(prepare("SELECT likes, replies FROM " + table_ + "_n WHERE id = 7"), {});
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(n->column_kind(0), CB_VALUE_COUNTER);
  EXPECT_EQ(must(n->i64(0, 0)), 3);
  EXPECT_EQ(must(n->i64(0, 1)), 1);
}

TEST_F(CqlBridge, WritesCarryTheTimestampTheyAreGiven) {
  ddl("CREATE TABLE " + table_ + " (id int PRIMARY KEY, v text)");
  auto ins = prepare("INSERT INTO " + table_ + " (id, v) VALUES (?, ?)");
  auto ins_at = prepare("INSERT INTO " + table_ + " (id, v) VALUES (?, ?) USING TIMESTAMP 5000");
  auto read = prepare("SELECT v, WRITETIME(v) FROM " + table_ + " WHERE id = ?");
  ExecOptions at1000;
  at1000.timestamp_us = 1000;
  ASSERT_TRUE(exec(ins, {Value::int32(1), Value::text("new")}, at1000).ok());
  // An older write lands later and loses: last-writer-wins by the given timestamps.
  ExecOptions at500;
  at500.timestamp_us = 500;
  ASSERT_TRUE(exec(ins, {Value::int32(1), Value::text("old")}, at500).ok());
  auto r = exec(read, {Value::int32(1)});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(must(r->bytes(0, 0)), "new");
  EXPECT_EQ(must(r->i64(0, 1)), 1000);
  // The statement's own USING TIMESTAMP wins over the option.
  ASSERT_TRUE(exec(ins_at, {Value::int32(2), Value::text("x")}, at1000).ok());
  r = exec(read, {Value::int32(2)});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(must(r->i64(0, 1)), 5000);
  // A batch takes the option as the timestamp of all its statements.
  ExecOptions at2000;
  at2000.timestamp_us = 2000;
  auto b = wait<Rows>([&](auto h) {
    session_->batch(BatchType::unlogged, {{ins.get(), {Value::int32(3), Value::text("b")}}}, at2000, std::move(h));
  });
  ASSERT_TRUE(b.ok()) << b.error().message;
  r = exec(read, {Value::int32(3)});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(must(r->i64(0, 1)), 2000);
  // Without the option, the server's clock: now, in µs.
  ASSERT_TRUE(exec(ins, {Value::int32(4), Value::text("now")}).ok());
  r = exec(read, {Value::int32(4)});
  ASSERT_TRUE(r.ok());
  EXPECT_GT(must(r->i64(0, 1)), int64_t{1'600'000'000'000'000});
}

TEST_F(CqlBridge, SchemaAgreementAfterDdl) {
  ddl("CREATE TABLE " + table_ + " (id int PRIMARY KEY)");
  auto r = wait<Unit>([&](auto h) { session_->await_schema_agreement(std::move(h)); });
  EXPECT_TRUE(r.ok()) << r.error().message;
}

TEST_F(CqlBridge, RequestTimeoutWhileTheServerIsSilent) {
  auto colon = addr_.rfind(':');
  testing::TcpProxy proxy(addr_.substr(0, colon), static_cast<uint16_t>(std::stoi(addr_.substr(colon + 1))));
  auto s = connect("127.0.0.1:" + std::to_string(proxy.port()));
  ASSERT_TRUE(s);
  auto sel = prepare("SELECT release_version FROM system.local", s.get());
  ASSERT_TRUE(sel);
  proxy.freeze();
  ExecOptions o;
  o.timeout = 300ms;
  auto r = wait<Rows>([&](auto h) { s->execute(*sel, {}, o, std::move(h)); });
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().detail_code, "bridge_timeout") << r.error().message;
  EXPECT_EQ(r.error().code, Errc::unavailable);
  proxy.thaw();
  auto again = wait<Rows>([&](auto h) { s->execute(*sel, {}, ExecOptions{}, std::move(h)); });
  EXPECT_TRUE(again.ok()) << again.error().message;
}

TEST_F(CqlBridge, MetricsCountEveryCallByStatementAndOutcomeBesideTheDriversOwn) {
  CqlMetrics m;
  auto s = connect(addr_);
  ASSERT_TRUE(s);
  s->set_metrics(&m);
  ddl("CREATE TABLE " + table_ + " (id int PRIMARY KEY, v int)");
  auto ins = prepare("INSERT INTO " + table_ + " (id, v) VALUES (?, ?)", s.get());
  auto cas = prepare("UPDATE " + table_ + " SET v = ? WHERE id = ? IF v = ?", s.get());
  ASSERT_TRUE(ins && cas);
  EXPECT_EQ(ins->label(), "INSERT " + table_.substr(table_.find('.') + 1));
  for (int i = 0; i < 3; ++i) {
    auto r = wait<Rows>([&](auto h) { s->execute(*ins, {Value::int32(i), Value::int32(i)}, {}, std::move(h)); });
    ASSERT_TRUE(r.ok()) << r.error().message;
  }
  auto bad = wait<Rows>([&](auto h) { s->execute(*ins, {Value::int32(1)}, {}, std::move(h)); });  // one value short
  ASSERT_FALSE(bad.ok());
  auto lwt = wait<Rows>(
      [&](auto h) { s->execute(*cas, {Value::int32(5), Value::int32(1), Value::int32(1)}, {}, std::move(h)); });
  ASSERT_TRUE(lwt.ok()) << lwt.error().message;
  auto batch = wait<Rows>([&](auto h) {
    s->batch(BatchType::unlogged, {{ins.get(), {Value::int32(7), Value::int32(7)}}}, {}, std::move(h));
  });
  ASSERT_TRUE(batch.ok()) << batch.error().message;

  std::map<std::string, std::map<std::string, uint64_t>> got;
  m.each([&](const std::string& label, const CqlMetrics::Statement& st) {
    for (int32_t c = 0; c < CqlMetrics::kOutcomes; ++c)
      if (auto n = st.outcomes[c].load()) got[label][std::string(code_name(c))] = n;
    uint64_t total = 0;
    for (auto& [o, n] : got[label]) total += n;
    EXPECT_EQ(st.seconds.snapshot().count, total) << label;
  });
  const std::string t = table_.substr(table_.find('.') + 1);
  EXPECT_EQ(got["INSERT " + t]["ok"], 3u);
  EXPECT_EQ(got["INSERT " + t]["bad_argument"], 1u) << "the error's kind";
  EXPECT_EQ(got["UPDATE " + t + " IF"]["ok"], 1u);
  EXPECT_EQ(got["BATCH unlogged"]["ok"], 1u);
  EXPECT_EQ(m.in_flight(), 0);
  auto d = s->driver_metrics();
  EXPECT_GE(d.requests, 5u) << "the driver counts what reached it";
  EXPECT_GE(d.connections, 1u);
}

// Pending queries complete with "cancelled" when their session or the runtime goes away.
TEST_F(CqlBridge, DestroyingTheSessionOrRuntimeCancelsInFlightQueries) {
  auto colon = addr_.rfind(':');
  testing::TcpProxy proxy(addr_.substr(0, colon), static_cast<uint16_t>(std::stoi(addr_.substr(colon + 1))));
  for (bool whole_runtime : {false, true}) {
    auto s = connect("127.0.0.1:" + std::to_string(proxy.port()));
    ASSERT_TRUE(s);
    auto sel = prepare("SELECT release_version FROM system.local", s.get());
    ASSERT_TRUE(sel);
    proxy.freeze();
    boost::asio::io_context io;
    auto guard = boost::asio::make_work_guard(io);
    constexpr int kQueries = 16;
    std::vector<std::optional<Result<Rows>>> out(kQueries);
    int done = 0;
    for (int i = 0; i < kQueries; ++i)
      s->execute(*sel, {}, ExecOptions{}, boost::asio::bind_executor(io, [&, i](Result<Rows> r) {
                   EXPECT_FALSE(out[i].has_value()) << "completed twice";
                   out[i].emplace(std::move(r));
                   if (++done == kQueries) guard.reset();
                 }));
    if (whole_runtime) {
      // The runtime goes while `s` still has queries pending; `s` is freed after it.
      session_.reset();
      rt_.reset();
    } else {
      s.reset();
    }
    io.run();  // returns once every completion has been delivered (then `guard` is reset)
    for (auto& r : out) {
      ASSERT_TRUE(r.has_value());
      ASSERT_FALSE(r->ok());
      EXPECT_EQ(r->error().detail_code, "bridge_cancelled") << r->error().message;
    }
    proxy.thaw();
  }
}

// TLS (storage.cql.tls) against the test node, whose native port takes TLS and plain
// connections alike; COMMENTD_TEST_CQL_TLS names its test CA's files (deploy/cassandra).
class CqlBridgeTls : public CqlBridge {
 protected:
  void SetUp() override {
    CqlBridge::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    COMMENTD_REQUIRE_SERVER(dir_, "COMMENTD_TEST_CQL_TLS");
  }

  CqlConfig tls_config(const std::string& ca) const {
    CqlConfig cfg;
    cfg.tls = true;
    cfg.tls_ca_file = dir_ + "/" + ca;
    return cfg;
  }

  Result<std::unique_ptr<CqlSession>> try_connect(CqlConfig cfg) {
    cfg.contact_points = addr_;
    cfg.local_datacenter = "datacenter1";
    cfg.request_timeout = 20s;
    cfg.connect_timeout = 10s;
    return wait<std::unique_ptr<CqlSession>>([&](auto h) { CqlSession::connect(*rt_, cfg, std::move(h)); });
  }

  // The node's own count of its client connections that speak TLS.
  int64_t tls_connections() {
    auto r = wait<Rows>([&](auto h) {
      session_->query("SELECT ssl_enabled, ssl_protocol FROM system_views.clients", 20s, std::move(h));
    });
    EXPECT_TRUE(r.ok()) << r.error().message;
    int64_t n = 0;
    for (size_t i = 0; r.ok() && i < r->size(); ++i)
      if (auto on = r->boolean(i, 0); on.ok() && on->value_or(false)) ++n;
    return n;
  }

  std::string dir_;
};

// The test node requires a client certificate on TLS connections (require_client_auth), so
// a session that connects presented one, and one without is refused by the node.
TEST_F(CqlBridgeTls, ConnectsToANodeItVerifiesWithItsClientCertificateAndSpeaksTlsToIt) {
  const int64_t before = tls_connections();
  auto cfg = tls_config("ca.pem");
  cfg.tls_cert_file = dir_ + "/client.pem";
  cfg.tls_key_file = dir_ + "/client.key";
  auto s = try_connect(cfg);
  ASSERT_TRUE(s.ok()) << s.error().message;
  auto r = wait<Rows>([&](auto h) { (*s)->query("SELECT release_version FROM system.local", 20s, std::move(h)); });
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->size(), 1u);
  // The node counts this session's connections among its TLS ones (the plain session_ is not).
  EXPECT_GT(tls_connections(), before);

  auto without_cert = try_connect(tls_config("ca.pem"));
  ASSERT_FALSE(without_cert.ok());
  EXPECT_EQ(without_cert.error().detail_code, "bridge_connection") << without_cert.error().message;
}

TEST_F(CqlBridgeTls, RefusesANodeWhoseCertificateItCannotVerify) {
  auto s = try_connect(tls_config("other-ca.pem"));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().detail_code, "bridge_connection") << s.error().message;
  EXPECT_NE(s.error().message.find("certificate verify failed"), std::string::npos) << s.error().message;
}

TEST_F(CqlBridgeTls, FilesItCannotUseFailBeforeAnyConnect) {
  struct Case {
    const char* ca;
    const char* cert;
    const char* key;
    const char* says;
  } cases[] = {
      {"missing.pem", "", "", "ca_file"},
      {"ca.pem", "missing.pem", "client.key", "cert_file"},
      {"ca.pem", "client.pem", "node.key", "key_file"},
      {"ca.pem", "client.pem", "", "go together"},
  };
  for (const Case& c : cases) {
    auto cfg = tls_config(c.ca);
    if (*c.cert) cfg.tls_cert_file = dir_ + "/" + c.cert;
    if (*c.key) cfg.tls_key_file = dir_ + "/" + c.key;
    // Nothing listens there: a connect attempt would fail otherwise.
    cfg.contact_points = "127.0.0.1:1";
    auto s = wait<std::unique_ptr<CqlSession>>([&](auto h) { CqlSession::connect(*rt_, cfg, std::move(h)); });
    ASSERT_FALSE(s.ok()) << c.says;
    EXPECT_EQ(s.error().detail_code, "bridge_bad_argument") << s.error().message;
    EXPECT_NE(s.error().message.find(c.says), std::string::npos) << s.error().message;
  }
}

}  // namespace
}  // namespace commentd::bridge
