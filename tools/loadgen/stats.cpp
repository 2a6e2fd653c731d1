#include "stats.h"

#include <stdexcept>

namespace commentd::loadgen {

namespace {
// Longer runs fold their tail into the last second rather than grow without bound.
constexpr uint64_t max_series_seconds = 24 * 3600;
}  // namespace

const char* to_string(Failure f) {
  switch (f) {
    case Failure::connect:
      return "connect";
    case Failure::timeout:
      return "timeout";
    case Failure::io:
      return "io";
  }
  return "?";
}

void OpStats::merge(const OpStats& other) {
  latency.merge(other.latency);
  ok_latency.merge(other.ok_latency);
  count += other.count;
  ok += other.ok;
  for (const auto& [status, n] : other.statuses) statuses[status] += n;
  for (int i = 0; i < 3; ++i) failures[i] += other.failures[i];
  if (series.size() < other.series.size()) series.resize(other.series.size());
  for (size_t s = 0; s < other.series.size(); ++s) {
    series[s].latency.merge(other.series[s].latency);
    series[s].count += other.series[s].count;
    series[s].errors += other.series[s].errors;
    series[s].completed += other.series[s].completed;
  }
}

SecondStats& Recorder::second_of(size_t op, uint64_t second) {
  auto& series = ops_[op].series;
  if (second >= max_series_seconds) second = max_series_seconds - 1;
  if (second >= series.size()) series.resize(second + 1);
  return series[second];
}

void Recorder::record_response(size_t op, uint64_t second, uint64_t done_second,
                               uint64_t latency_us, unsigned status) {
  OpStats& s = ops_[op];
  ++second_of(op, done_second).completed;
  SecondStats& sec = second_of(op, second);
  ++s.count;
  ++sec.count;
  s.latency.record(latency_us);
  sec.latency.record(latency_us);
  if (status < 400) {
    ++s.ok;
    s.ok_latency.record(latency_us);
  } else {
    ++s.statuses[status];
    ++sec.errors;
  }
}

void Recorder::record_failure(size_t op, uint64_t second, uint64_t done_second, Failure why,
                              int64_t latency_us) {
  OpStats& s = ops_[op];
  ++second_of(op, done_second).completed;
  SecondStats& sec = second_of(op, second);
  ++s.count;
  ++sec.count;
  ++sec.errors;
  ++s.failures[static_cast<int>(why)];
  if (latency_us >= 0) {
    s.latency.record(static_cast<uint64_t>(latency_us));
    sec.latency.record(static_cast<uint64_t>(latency_us));
  }
}

void Recorder::merge(const Recorder& other) {
  if (other.ops_.size() != ops_.size()) throw std::invalid_argument("recorder: op count differs");
  for (size_t i = 0; i < ops_.size(); ++i) ops_[i].merge(other.ops_[i]);
}

OpStats Recorder::overall() const {
  OpStats all;
  for (const OpStats& s : ops_) all.merge(s);
  return all;
}

}  // namespace commentd::loadgen
