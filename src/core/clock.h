// Time and randomness are passed in (STYLE.md #3): tests advance a ManualClock instead of
// sleeping.
#pragma once

#include <atomic>
#include <chrono>
#include <optional>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>

namespace commentd {

// Milliseconds since the Unix epoch, UTC.
using TimeMs = int64_t;

// Thread-safe.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual TimeMs now_ms() const = 0;
};

class SystemClock final : public Clock {
 public:
  TimeMs now_ms() const override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
};

// Thread-safe; time moves only when a test says so.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(TimeMs start = 1'700'000'000'000) : now_(start) {}
  TimeMs now_ms() const override { return now_.load(); }
  void advance_ms(TimeMs d) { now_.fetch_add(d); }
  void set_ms(TimeMs t) { now_.store(t); }

 private:
  std::atomic<TimeMs> now_;
};

// "2024-05-01T12:34:56.789Z"
std::string format_rfc3339_ms(TimeMs t);
// "2024-05-01-12": the plan's time bucket (YYYY-MM-DD-HH, UTC).
std::string time_bucket(TimeMs t);
// "2024-05-01": the coarse (daily) bucket of a quiet video (YYYY-MM-DD, UTC).
std::string day_bucket(TimeMs t);

// The bucket rule (docs/cluster.md "Time buckets"): a new comment of a trending video goes
// into its hourly bucket, any other into its daily bucket. Either way the bucket is a pure
// function of created_at, so a comment's bucket is one of exactly two names.
std::string comment_bucket(TimeMs created_at, bool trending);

// The time range [start, end) a bucket name covers; nullopt for a name that is neither an
// hourly nor a daily bucket. Text order of names keeps time order within each granularity.
struct BucketSpan {
  bool hourly = false;
  TimeMs start = 0, end = 0;
  bool operator==(const BucketSpan&) const = default;
};
std::optional<BucketSpan> bucket_span(std::string_view name);

}  // namespace commentd
