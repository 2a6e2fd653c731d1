#include "workers/activity_tracker.h"

#include <algorithm>

namespace commentd::workers {

namespace {
constexpr TimeMs kMinute = 60'000;
}

void ActivityTracker::Window::add(TimeMs now, TimeMs len, int64_t n) {
  if (start == 0) start = now - now % len;
  if (now >= start + len) {
    // Rolled over one window (prev = cur) or more (prev = 0).
    prev = now < start + 2 * len ? cur : 0;
    cur = 0;
    start = now - now % len;
  }
  cur += n;
}

double ActivityTracker::Window::estimate(TimeMs now, TimeMs len) const {
  if (start == 0 || now >= start + 2 * len) return 0;
  if (now >= start + len) {
    // The current window became the previous one.
    double inside = 1.0 - double(now - (start + len)) / double(len);
    return cur * inside;
  }
  double inside = 1.0 - double(now - start) / double(len);
  return prev * inside + cur;
}

ActivityTracker::ActivityTracker(const Clock& clock, TierRules rules) : clock_(clock), rules_(rules) {}

void ActivityTracker::record(Shards& shards, const Uuid& id, int64_t n) {
  TimeMs now = clock_.now_ms();
  auto& s = shards[UuidHash{}(id) % kShards];
  std::lock_guard lk(s.mu);
  auto& e = s.map[id];
  e.minute.add(now, kMinute, n);
  e.trend.add(now, rules_.trending_window_ms, n);
  e.last = now;
  if (s.map.size() > rules_.max_keys / kShards) {
    // Over the cap: drop the least recently active key of this shard.
    auto victim = std::min_element(s.map.begin(), s.map.end(),
                                   [](auto& a, auto& b) { return a.second.last < b.second.last; });
    s.map.erase(victim);
  }
}

void ActivityTracker::record_comment(const Uuid& id, int64_t n) { record(comments_, id, n); }
void ActivityTracker::record_video(const Uuid& id, int64_t n) { record(videos_, id, n); }

Tier ActivityTracker::tier_for_rate(double r) const {
  if (r >= double(rules_.realtime_per_minute)) return Tier::realtime;
  if (r >= double(rules_.high_per_minute)) return Tier::high;
  if (r >= double(rules_.normal_per_minute) && r > 0) return Tier::normal;
  return Tier::low;
}

Tier ActivityTracker::tier_of(const Shards& shards, const Uuid& id) const {
  auto& s = shards[UuidHash{}(id) % kShards];
  std::lock_guard lk(s.mu);
  auto it = s.map.find(id);
  if (it == s.map.end()) return Tier::low;
  return tier_for_rate(it->second.minute.estimate(clock_.now_ms(), kMinute));
}

Tier ActivityTracker::comment_tier(const Uuid& id) const { return tier_of(comments_, id); }
Tier ActivityTracker::video_tier(const Uuid& id) const { return tier_of(videos_, id); }

double ActivityTracker::comment_rate_per_minute(const Uuid& id) const {
  auto& s = comments_[UuidHash{}(id) % kShards];
  std::lock_guard lk(s.mu);
  auto it = s.map.find(id);
  return it == s.map.end() ? 0 : it->second.minute.estimate(clock_.now_ms(), kMinute);
}

bool ActivityTracker::video_trending(const Uuid& id) const {
  auto& s = videos_[UuidHash{}(id) % kShards];
  std::lock_guard lk(s.mu);
  auto it = s.map.find(id);
  if (it == s.map.end()) return false;
  return it->second.trend.estimate(clock_.now_ms(), rules_.trending_window_ms) >=
         double(rules_.trending_min_events);
}

std::vector<Uuid> ActivityTracker::in(const Shards& shards, Tier t) const {
  std::vector<Uuid> out;
  TimeMs now = clock_.now_ms();
  for (auto& s : shards) {
    std::lock_guard lk(s.mu);
    for (auto& [id, e] : s.map)
      if (tier_for_rate(e.minute.estimate(now, kMinute)) == t) out.push_back(id);
  }
  return out;
}

std::vector<Uuid> ActivityTracker::comments_in(Tier t) const { return in(comments_, t); }
std::vector<Uuid> ActivityTracker::videos_in(Tier t) const { return in(videos_, t); }

size_t ActivityTracker::sweep() {
  TimeMs now = clock_.now_ms();
  TimeMs idle = 2 * std::max(kMinute, rules_.trending_window_ms);
  size_t dropped = 0;
  for (auto* shards : {&comments_, &videos_})
    for (auto& s : *shards) {
      std::lock_guard lk(s.mu);
      dropped += std::erase_if(s.map, [&](auto& kv) { return now - kv.second.last >= idle; });
    }
  return dropped;
}

size_t ActivityTracker::size() const {
  size_t n = 0;
  for (auto* shards : {&comments_, &videos_})
    for (auto& s : *shards) {
      std::lock_guard lk(s.mu);
      n += s.map.size();
    }
  return n;
}

}  // namespace commentd::workers
