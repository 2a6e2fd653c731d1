#include "core/clock.h"

#include <chrono>
#include <cstdio>
#include <ctime>

namespace commentd {
namespace {
// The UTC calendar fields of t, from <chrono>'s civil calendar: no gmtime_r and no printf on
// paths that format a time per comment and per event (about 0.4 us each with them).
struct Civil {
  int year;
  unsigned month, day, hour, minute, second, ms;
};
Civil civil(TimeMs t) {
  using namespace std::chrono;
  const sys_time<milliseconds> tp{milliseconds{t}};
  const sys_days day = floor<days>(tp);
  const year_month_day ymd{day};
  const hh_mm_ss<milliseconds> hms{tp - day};
  return {static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
          static_cast<unsigned>(hms.hours().count()), static_cast<unsigned>(hms.minutes().count()),
          static_cast<unsigned>(hms.seconds().count()), static_cast<unsigned>(hms.subseconds().count())};
}
void put(char* at, unsigned v, int digits) {
  for (int i = digits - 1; i >= 0; --i, v /= 10) at[i] = static_cast<char>('0' + v % 10);
}
// "YYYY-MM-DD" then, as asked, "-HH" (a bucket) or "THH:MM:SS.mmmZ"; a year outside
// 0..9999 (not a time this service stores) takes the printf route, as many digits as needed.
enum class Form { day, hour_bucket, rfc3339_ms };
std::string format(TimeMs t, Form f) {
  const Civil c = civil(t);
  if (c.year < 0 || c.year > 9999) {
    char buf[80];
    if (f == Form::day) std::snprintf(buf, sizeof buf, "%04d-%02u-%02u", c.year, c.month, c.day);
    else if (f == Form::hour_bucket) std::snprintf(buf, sizeof buf, "%04d-%02u-%02u-%02u", c.year, c.month, c.day, c.hour);
    else
      std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02u:%02u:%02u.%03uZ", c.year, c.month, c.day, c.hour, c.minute,
                    c.second, c.ms);
    return buf;
  }
  char buf[24];
  put(buf, static_cast<unsigned>(c.year), 4);
  buf[4] = '-';
  put(buf + 5, c.month, 2);
  buf[7] = '-';
  put(buf + 8, c.day, 2);
  if (f == Form::day) return std::string(buf, 10);
  if (f == Form::hour_bucket) {
    buf[10] = '-';
    put(buf + 11, c.hour, 2);
    return std::string(buf, 13);
  }
  buf[10] = 'T';
  put(buf + 11, c.hour, 2);
  buf[13] = ':';
  put(buf + 14, c.minute, 2);
  buf[16] = ':';
  put(buf + 17, c.second, 2);
  buf[19] = '.';
  put(buf + 20, c.ms, 3);
  buf[23] = 'Z';
  return std::string(buf, 24);
}
}  // namespace

std::string format_rfc3339_ms(TimeMs t) { return format(t, Form::rfc3339_ms); }
std::string time_bucket(TimeMs t) { return format(t, Form::hour_bucket); }
std::string day_bucket(TimeMs t) { return format(t, Form::day); }

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
