// CQL client over the bridge (ScyllaDB's Rust driver): RAII handles and Asio async
// operations. Every operation takes a completion token (asio::use_awaitable, a callback bound
// to an executor, ...) with the signature void(Result<T>); the completion is posted to the
// token's executor, never run on a bridge thread. Nothing here blocks.
// Thread-safety: CqlSession and Prepared are thread-safe; Rows is a value (one owner).
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bridge/call.h"
#include "bridge/cql_metrics.h"
#include "bridge/runtime.h"

namespace commentd::bridge {

enum class Consistency : int32_t {
  default_ = CB_CONSISTENCY_DEFAULT,
  any = CB_ANY,
  one = CB_ONE,
  two = CB_TWO,
  three = CB_THREE,
  quorum = CB_QUORUM,
  all = CB_ALL,
  local_quorum = CB_LOCAL_QUORUM,
  each_quorum = CB_EACH_QUORUM,
  serial = CB_SERIAL,
  local_serial = CB_LOCAL_SERIAL,
  local_one = CB_LOCAL_ONE,
};

// "local_quorum" -> Consistency::local_quorum; nullopt for an unknown name.
std::optional<Consistency> parse_consistency(std::string_view name);

using Uuid = std::array<uint8_t, 16>;

// A bound value. Integer kinds bind to any integer column (range-checked by the bridge).
class Value {
 public:
  static Value null() { return Value(CB_VALUE_NULL, 0, {}); }
  static Value boolean(bool b) { return Value(CB_VALUE_BOOLEAN, b ? 1 : 0, {}); }
  static Value int32(int32_t v) { return Value(CB_VALUE_INT, v, {}); }
  static Value bigint(int64_t v) { return Value(CB_VALUE_BIGINT, v, {}); }
  static Value counter(int64_t v) { return Value(CB_VALUE_COUNTER, v, {}); }
  static Value text(std::string s) { return Value(CB_VALUE_TEXT, 0, std::move(s)); }
  static Value blob(std::string bytes) { return Value(CB_VALUE_BLOB, 0, std::move(bytes)); }
  static Value uuid(const Uuid& u) { return Value(CB_VALUE_UUID, 0, std::string(u.begin(), u.end())); }
  static Value timestamp_ms(int64_t ms) { return Value(CB_VALUE_TIMESTAMP, ms, {}); }

  int32_t kind() const { return kind_; }
  // About how many bytes it takes in a request (batch size limits are in bytes of values).
  size_t wire_size() const { return 4 + (data_.empty() ? 8 : data_.size()); }
  // Borrows this Value's storage.
  cb_value to_c() const {
    return cb_value{kind_, i64_, reinterpret_cast<const uint8_t*>(data_.data()), data_.size()};
  }

 private:
  Value(int32_t k, int64_t i, std::string d) : kind_(k), i64_(i), data_(std::move(d)) {}
  int32_t kind_;
  int64_t i64_;
  std::string data_;
};

struct CqlConfig {
  std::string contact_points;  // "host:port,host:port"
  std::string local_datacenter;
  std::string username;
  std::string password;
  std::string keyspace;
  std::chrono::milliseconds request_timeout{0};  // 0: driver default
  std::chrono::milliseconds connect_timeout{0};
  Consistency default_consistency = Consistency::local_quorum;
  // TLS to every node (cb_cql_config): the node's certificate verified against tls_ca_file
  // (empty: the system's roots) and its address; a client certificate when both files are set.
  bool tls = false;
  std::string tls_ca_file;
  std::string tls_cert_file;
  std::string tls_key_file;
};

struct ExecOptions {
  Consistency consistency = Consistency::default_;
  Consistency serial_consistency = Consistency::default_;
  int32_t page_size = 0;          // > 0: one page
  std::string paging_state;       // empty: first page
  std::chrono::milliseconds timeout{0};
  bool idempotent = false;        // only idempotent statements are retried
  // Non-zero: the write's timestamp in µs (the protocol's default timestamp, as USING
  // TIMESTAMP; a statement's own USING TIMESTAMP wins). 0: the server's clock.
  int64_t timestamp_us = 0;
  cb_cql_exec_options to_c() const;
};

enum class BatchType : int32_t { logged = CB_BATCH_LOGGED, unlogged = CB_BATCH_UNLOGGED, counter = CB_BATCH_COUNTER };

class Prepared {
 public:
  explicit Prepared(cb_cql_prepared* p, std::string label = "OTHER") : p_(p), label_(std::move(label)) {}
  ~Prepared() { cb_cql_prepared_free(p_); }
  Prepared(const Prepared&) = delete;
  Prepared& operator=(const Prepared&) = delete;
  const cb_cql_prepared* get() const { return p_; }
  size_t param_count() const { return cb_cql_prepared_param_count(p_); }
  // What it does, for metrics (statement_label of its CQL).
  const std::string& label() const { return label_; }

 private:
  cb_cql_prepared* p_;
  const std::string label_;
};
using PreparedPtr = std::shared_ptr<const Prepared>;

// One page of rows. Getters: nullopt for NULL; an Errc::internal error for a wrong type or an
// index out of range (a bug in the caller's statement/reader pair).
class Rows {
 public:
  explicit Rows(cb_cql_result* r) : r_(r, &cb_cql_result_free) {}
  size_t size() const { return cb_cql_result_row_count(r_.get()); }
  size_t columns() const { return cb_cql_result_column_count(r_.get()); }
  std::string_view column_name(size_t col) const;
  int32_t column_kind(size_t col) const { return cb_cql_result_column_kind(r_.get(), col); }
  // The state to pass as ExecOptions::paging_state for the next page; nullopt on the last.
  std::optional<std::string> paging_state() const;
  // LWT: whether the condition applied; nullopt if this is not a conditional result. When not
  // applied, row 0 holds the current values from column 1 on.
  std::optional<bool> applied() const;

  Result<std::optional<int64_t>> i64(size_t row, size_t col) const;  // int, bigint, counter, timestamp
  Result<std::optional<bool>> boolean(size_t row, size_t col) const;
  Result<std::optional<std::string_view>> bytes(size_t row, size_t col) const;  // text, blob
  Result<std::optional<Uuid>> uuid(size_t row, size_t col) const;

 private:
  std::unique_ptr<cb_cql_result, void (*)(cb_cql_result*)> r_;
};

// One statement of a batch. The bridge takes its own reference to the statement when the
// batch starts, so `statement` need only live until batch() returns.
struct BatchItem {
  const Prepared* statement;
  std::vector<Value> values;
};

class CqlSession {
 public:
  ~CqlSession() { cb_cql_session_free(s_); }
  CqlSession(const CqlSession&) = delete;
  CqlSession& operator=(const CqlSession&) = delete;

  // Completion: void(Result<std::unique_ptr<CqlSession>>).
  template <class Token>
  static auto connect(const Runtime& rt, const CqlConfig& cfg, Token&& token) {
    return call<std::unique_ptr<CqlSession>>(
        std::forward<Token>(token),
        [&rt, cfg](cb_done done, void* user) {
          cb_cql_config c{cfg.contact_points.c_str(), cfg.local_datacenter.c_str(), cfg.username.c_str(),
                          cfg.password.c_str(), cfg.keyspace.c_str(),
                          static_cast<uint32_t>(cfg.request_timeout.count()),
                          static_cast<uint32_t>(cfg.connect_timeout.count()),
                          static_cast<int32_t>(cfg.default_consistency),
                          cfg.tls ? 1 : 0,
                          cfg.tls_ca_file.c_str(),
                          cfg.tls_cert_file.c_str(),
                          cfg.tls_key_file.c_str()};
          cb_cql_connect(rt.get(), &c, done, user);
        },
        [](void* r) { return std::unique_ptr<CqlSession>(new CqlSession(static_cast<cb_cql_session*>(r))); });
  }

  // Counts every execute and batch from now on in `m` (nullptr: none). REQUIRES: set before
  // the session is shared; `m` outlives the session.
  void set_metrics(CqlMetrics* m) { metrics_ = m; }
  // The driver's own counters (retries, timeouts, connections) since the session connected.
  cb_cql_driver_metrics driver_metrics() const {
    cb_cql_driver_metrics m{};
    cb_cql_session_metrics(s_, &m);
    return m;
  }

  // Completion: void(Result<PreparedPtr>).
  template <class Token>
  auto prepare(std::string cql, Token&& token) {
    std::string label = statement_label(cql);
    return call<PreparedPtr>(
        std::forward<Token>(token),
        [this, cql = std::move(cql)](cb_done done, void* user) { cb_cql_prepare(s_, cql.data(), cql.size(), done, user); },
        [label = std::move(label)](void* r) {
          return std::make_shared<const Prepared>(static_cast<cb_cql_prepared*>(r), label);
        });
  }

  // Unprepared statement without values (DDL). Completion: void(Result<Rows>).
  template <class Token>
  auto query(std::string cql, std::chrono::milliseconds timeout, Token&& token) {
    return call<Rows>(
        std::forward<Token>(token),
        [this, cql = std::move(cql), timeout](cb_done done, void* user) {
          cb_cql_query(s_, cql.data(), cql.size(), static_cast<uint32_t>(timeout.count()), done, user);
        },
        [](void* r) { return Rows(static_cast<cb_cql_result*>(r)); });
  }

  // Completion: void(Result<Rows>). `values` are copied by the bridge when the call starts.
  template <class Token>
  auto execute(const Prepared& stmt, std::vector<Value> values, ExecOptions opts, Token&& token) {
    return call<Rows>(
        std::forward<Token>(token),
        [this, &stmt, values = std::move(values), opts = std::move(opts)](cb_done done, void* user) {
          std::vector<cb_value> cv;
          cv.reserve(values.size());
          for (const auto& v : values) cv.push_back(v.to_c());
          auto o = opts.to_c();
          cb_cql_execute(s_, stmt.get(), cv.data(), cv.size(), &o, done, user);
        },
        [](void* r) { return Rows(static_cast<cb_cql_result*>(r)); }, observer(stmt.label()));
  }

  // Completion: void(Result<Rows>) (rows only for conditional batches).
  template <class Token>
  auto batch(BatchType type, std::vector<BatchItem> items, ExecOptions opts, Token&& token) {
    return call<Rows>(
        std::forward<Token>(token),
        [this, type, items = std::move(items), opts = std::move(opts)](cb_done done, void* user) {
          start_batch(type, items, opts, done, user);
        },
        [](void* r) { return Rows(static_cast<cb_cql_result*>(r)); }, observer(batch_label(type)));
  }

  // Completion: void(Result<Unit>).
  template <class Token>
  auto await_schema_agreement(Token&& token) {
    return call<Unit>(
        std::forward<Token>(token), [this](cb_done done, void* user) { cb_cql_await_schema_agreement(s_, done, user); },
        [](void*) { return Unit{}; });
  }

 private:
  explicit CqlSession(cb_cql_session* s) : s_(s) {}
  // The observe step of one call: counts it in metrics_ from now until its outcome.
  struct Observer {
    CqlMetrics* m = nullptr;
    CqlMetrics::Statement* s = nullptr;
    std::chrono::steady_clock::time_point start;
    void operator()(int32_t code) const {
      if (m) m->finished(*s, code, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
  };
  Observer observer(const std::string& label) const {
    if (!metrics_) return {};
    metrics_->started();
    return Observer{metrics_, &metrics_->of(label), std::chrono::steady_clock::now()};
  }
  static const std::string& batch_label(BatchType t);
  CqlMetrics* metrics_ = nullptr;
  void start_batch(BatchType type, const std::vector<BatchItem>& items, const ExecOptions& opts, cb_done done,
                   void* user);
  cb_cql_session* s_;
};

}  // namespace commentd::bridge
