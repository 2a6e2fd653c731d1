#include "store/cql/bucket_lists.h"

#include <algorithm>
#include <functional>

namespace commentd::store::cql {

std::vector<std::string> recent_buckets(TimeMs from, TimeMs to) {
  std::vector<std::string> out;
  if (to < from) return out;
  constexpr TimeMs kHour = 3'600'000;
  // Each hour that [from, to] touches, from the start of from's hour; a day's name comes with
  // its first hour here (or with `from`'s).
  for (TimeMs t = from - from % kHour; t <= to; t += kHour) {
    const TimeMs at = std::max(t, from);
    out.push_back(time_bucket(at));
    std::string day = day_bucket(at);
    if (std::find(out.begin(), out.end(), day) == out.end()) out.push_back(std::move(day));
  }
  return out;
}

std::optional<BucketLists::List> BucketLists::get(const Uuid& video, TimeMs now) {
  if (!enabled()) return std::nullopt;
  std::lock_guard lk(mu_);
  if (List* held = lists_.find(video)) {
    const TimeMs age = now - held->listed_at;
    if (age >= 0 && age < ttl_) return *held;
    lists_.erase(video);
  }
  return std::nullopt;
}

void BucketLists::put(const Uuid& video, List list) {
  if (!enabled()) return;
  std::lock_guard lk(mu_);
  // Two reads raced: keep the later one.
  if (List* held = lists_.find(video); held && held->listed_at > list.listed_at) return;
  lists_.put(video, std::move(list));
}

void BucketLists::add(const Uuid& video, const std::string& name) {
  if (!enabled()) return;
  std::lock_guard lk(mu_);
  List* held = lists_.peek(video);
  if (!held) return;
  auto& names = held->names;
  // Newest (greatest) first; past the end of a list cut short, the reads that continue it
  // from video_buckets find the name.
  auto at = std::lower_bound(names.begin(), names.end(), name, std::greater<>());
  if (at != names.end() && *at == name) return;
  if (at == names.end() && !held->all) return;
  names.insert(at, name);
}

}  // namespace commentd::store::cql
