#include "bridge/cql_metrics.h"

#include <cctype>
#include <vector>

#include "bridge/bridge_error.h"
#include "metrics/metrics.h"

namespace commentd::bridge {

namespace {

bool same_word(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::toupper(static_cast<unsigned char>(a[i])) != std::toupper(static_cast<unsigned char>(b[i]))) return false;
  return true;
}

// The CQL text's words: runs of letters, digits, '_', '.', '{', '}'; the rest separates.
std::vector<std::string_view> words(std::string_view cql) {
  std::vector<std::string_view> out;
  size_t i = 0;
  auto in_word = [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '{' || c == '}';
  };
  while (i < cql.size()) {
    while (i < cql.size() && !in_word(cql[i])) ++i;
    size_t b = i;
    while (i < cql.size() && in_word(cql[i])) ++i;
    if (i > b) out.push_back(cql.substr(b, i - b));
  }
  return out;
}

}  // namespace

std::string statement_label(std::string_view cql) {
  auto w = words(cql);
  if (w.empty()) return "OTHER";
  std::string verb;
  for (char c : w[0]) verb.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
  // The word naming the table: after FROM (SELECT, DELETE), INTO (INSERT), or UPDATE itself.
  std::string_view after = verb == "INSERT" ? "INTO" : verb == "UPDATE" ? "UPDATE" : "FROM";
  std::string_view table;
  for (size_t i = 0; i + 1 < w.size(); ++i)
    if (same_word(w[i], after)) {
      table = w[i + 1];
      break;
    }
  if (auto dot = table.rfind('.'); dot != std::string_view::npos) table.remove_prefix(dot + 1);
  if (verb != "SELECT" && verb != "INSERT" && verb != "UPDATE" && verb != "DELETE") return "OTHER";
  std::string label = verb;
  if (!table.empty()) {
    label.push_back(' ');
    label.append(table);
  }
  for (auto x : w)
    if (same_word(x, "IF")) {
      label.append(" IF");
      break;
    }
  return label;
}

CqlMetrics::Statement& CqlMetrics::of(const std::string& label) {
  std::lock_guard lk(mu_);
  auto& s = by_label_[label];
  if (!s) s = std::make_unique<Statement>();
  return *s;
}

void append_metrics(const CqlMetrics& m, const cb_cql_driver_metrics& driver,
                    std::vector<prometheus::MetricFamily>& out) {
  prometheus::MetricFamily seconds{"commentd_cql_request_duration_seconds",
                                   "CQL calls from request to answer (the driver's retries included), by statement",
                                   prometheus::MetricType::Histogram, {}};
  prometheus::MetricFamily calls{"commentd_cql_requests_total", "CQL calls by statement and outcome (ok or the error kind)",
                                 prometheus::MetricType::Counter, {}};
  m.each([&](const std::string& label, const CqlMetrics::Statement& s) {
    metrics::add_histogram_sample(seconds, {{"statement", label}}, s.seconds);
    for (int32_t c = 0; c < CqlMetrics::kOutcomes; ++c)
      if (auto n = s.outcomes[c].load(std::memory_order_relaxed))
        metrics::add_sample(calls, {{"statement", label}, {"outcome", std::string(code_name(c))}}, double(n));
  });
  out.push_back(std::move(seconds));
  out.push_back(std::move(calls));
  out.push_back(metrics::gauge_family("commentd_cql_in_flight_requests", "CQL calls sent and not answered yet",
                                      double(m.in_flight())));
  out.push_back(metrics::counter_family("commentd_cql_driver_requests_total", "Requests the CQL driver sent",
                                        double(driver.requests)));
  out.push_back(metrics::counter_family("commentd_cql_driver_errors_total",
                                        "Driver requests that failed after its retries", double(driver.errors)));
  out.push_back(metrics::counter_family("commentd_cql_driver_retries_total",
                                        "Times the driver's retry policy retried a request (idempotent statements only)",
                                        double(driver.retries)));
  out.push_back(metrics::gauge_family("commentd_cql_driver_connections", "Connections the CQL driver holds open",
                                      double(driver.connections)));
  out.push_back(metrics::counter_family("commentd_cql_driver_connection_timeouts_total",
                                        "Connection attempts of the driver that timed out", double(driver.connection_timeouts)));
  out.push_back(metrics::counter_family("commentd_cql_driver_request_timeouts_total",
                                        "Driver requests that timed out", double(driver.request_timeouts)));
}

void CqlMetrics::each(const std::function<void(const std::string&, const Statement&)>& f) const {
  std::lock_guard lk(mu_);
  for (auto& [label, s] : by_label_) f(label, *s);
}

}  // namespace commentd::bridge
