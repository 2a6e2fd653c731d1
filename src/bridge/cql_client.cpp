#include "bridge/cql_client.h"

namespace commentd::bridge {

std::optional<Consistency> parse_consistency(std::string_view n) {
  static constexpr std::pair<std::string_view, Consistency> kNames[] = {
      {"any", Consistency::any},
      {"one", Consistency::one},
      {"two", Consistency::two},
      {"three", Consistency::three},
      {"quorum", Consistency::quorum},
      {"all", Consistency::all},
      {"local_quorum", Consistency::local_quorum},
      {"each_quorum", Consistency::each_quorum},
      {"serial", Consistency::serial},
      {"local_serial", Consistency::local_serial},
      {"local_one", Consistency::local_one},
  };
  for (const auto& [name, c] : kNames)
    if (name == n) return c;
  return std::nullopt;
}

cb_cql_exec_options ExecOptions::to_c() const {
  return cb_cql_exec_options{static_cast<int32_t>(consistency),
                             static_cast<int32_t>(serial_consistency),
                             page_size,
                             reinterpret_cast<const uint8_t*>(paging_state.data()),
                             paging_state.size(),
                             static_cast<uint32_t>(timeout.count()),
                             idempotent ? 1 : 0,
                             timestamp_us};
}

const std::string& CqlSession::batch_label(BatchType t) {
  static const std::string logged = "BATCH logged", unlogged = "BATCH unlogged", counter = "BATCH counter";
  return t == BatchType::logged ? logged : t == BatchType::unlogged ? unlogged : counter;
}

void CqlSession::start_batch(BatchType type, const std::vector<BatchItem>& items, const ExecOptions& opts,
                             cb_done done, void* user) {
  std::vector<const cb_cql_prepared*> stmts;
  std::vector<std::vector<cb_value>> vals(items.size());
  std::vector<const cb_value*> val_ptrs;
  std::vector<size_t> counts;
  for (size_t i = 0; i < items.size(); ++i) {
    stmts.push_back(items[i].statement ? items[i].statement->get() : nullptr);
    for (const auto& v : items[i].values) vals[i].push_back(v.to_c());
    val_ptrs.push_back(vals[i].data());
    counts.push_back(vals[i].size());
  }
  auto o = opts.to_c();
  cb_cql_batch(s_, static_cast<int32_t>(type), items.size(), stmts.data(), val_ptrs.data(), counts.data(), &o, done,
               user);
}

std::string_view Rows::column_name(size_t col) const {
  const uint8_t* p = nullptr;
  size_t n = 0;
  if (cb_cql_result_column_name(r_.get(), col, &p, &n) != CB_GET_OK) return {};
  return {reinterpret_cast<const char*>(p), n};
}

std::optional<std::string> Rows::paging_state() const {
  const uint8_t* p = nullptr;
  size_t n = 0;
  if (cb_cql_result_paging_state(r_.get(), &p, &n) != 1) return std::nullopt;
  return std::string(reinterpret_cast<const char*>(p), n);
}

std::optional<bool> Rows::applied() const {
  int32_t a = cb_cql_result_applied(r_.get());
  if (a < 0) return std::nullopt;
  return a == 1;
}

namespace {

template <class T>
Result<std::optional<T>> answer(int32_t rc, T value, size_t row, size_t col) {
  switch (rc) {
    case CB_GET_OK: return std::optional<T>(std::move(value));
    case CB_GET_NULL: return std::optional<T>();
    case CB_GET_TYPE_MISMATCH:
      return Error(Errc::internal, "cql row " + std::to_string(row) + " column " + std::to_string(col) +
                                       ": wrong type for this getter");
    default:
      return Error(Errc::internal, "cql row " + std::to_string(row) + " column " + std::to_string(col) +
                                       ": out of range");
  }
}

}  // namespace

Result<std::optional<int64_t>> Rows::i64(size_t row, size_t col) const {
  int64_t v = 0;
  int32_t rc = cb_cql_get_i64(r_.get(), row, col, &v);
  return answer(rc, v, row, col);
}

Result<std::optional<bool>> Rows::boolean(size_t row, size_t col) const {
  int32_t v = 0;
  int32_t rc = cb_cql_get_bool(r_.get(), row, col, &v);
  return answer(rc, v != 0, row, col);
}

Result<std::optional<std::string_view>> Rows::bytes(size_t row, size_t col) const {
  const uint8_t* p = nullptr;
  size_t n = 0;
  int32_t rc = cb_cql_get_bytes(r_.get(), row, col, &p, &n);
  return answer(rc, std::string_view(reinterpret_cast<const char*>(p), n), row, col);
}

Result<std::optional<Uuid>> Rows::uuid(size_t row, size_t col) const {
  Uuid u{};
  int32_t rc = cb_cql_get_uuid(r_.get(), row, col, u.data());
  return answer(rc, u, row, col);
}

}  // namespace commentd::bridge
