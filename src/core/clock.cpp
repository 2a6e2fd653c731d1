#include "core/clock.h"

#include <cstdio>
#include <ctime>

namespace commentd {
namespace {
std::tm utc(TimeMs t) {
  std::time_t secs = static_cast<std::time_t>(t >= 0 ? t / 1000 : (t - 999) / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  return tm;
}
}  // namespace

std::string format_rfc3339_ms(TimeMs t) {
  std::tm tm = utc(t);
  int ms = static_cast<int>(((t % 1000) + 1000) % 1000);
  char buf[80];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
  return buf;
}

std::string time_bucket(TimeMs t) {
  std::tm tm = utc(t);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02d-%02d", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour);
  return buf;
}

std::string day_bucket(TimeMs t) {
  std::tm tm = utc(t);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
  return buf;
}

std::string comment_bucket(TimeMs created_at, bool trending) {
  return trending ? time_bucket(created_at) : day_bucket(created_at);
}

std::optional<BucketSpan> bucket_span(std::string_view name) {
  if (name.size() != 10 && name.size() != 13) return std::nullopt;
  auto digits = [&](size_t at, size_t n, int& out) {
    out = 0;
    for (size_t i = at; i < at + n; ++i) {
      if (name[i] < '0' || name[i] > '9') return false;
      out = out * 10 + (name[i] - '0');
    }
    return true;
  };
  int y = 0, mo = 0, d = 0, h = 0;
  if (!digits(0, 4, y) || name[4] != '-' || !digits(5, 2, mo) || name[7] != '-' || !digits(8, 2, d)) return std::nullopt;
  const bool hourly = name.size() == 13;
  if (hourly && (name[10] != '-' || !digits(11, 2, h))) return std::nullopt;
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23) return std::nullopt;
  std::tm tm{};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  const std::time_t secs = timegm(&tm);
  BucketSpan s;
  s.hourly = hourly;
  s.start = static_cast<TimeMs>(secs) * 1000;
  s.end = s.start + (hourly ? 3'600'000 : 86'400'000);
  // A name must be the canonical one of its own start ("2024-02-30" is not a day).
  if ((hourly ? time_bucket(s.start) : day_bucket(s.start)) != name) return std::nullopt;
  return s;
}

}  // namespace commentd
