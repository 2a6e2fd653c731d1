// Recent activity per comment and per video, which decides each one's update_frequency tier
// (the plan's realtime/high/normal/low) and whether a video is trending.
//
// Rate = events in the last minute, estimated by a sliding-window counter (the previous
// full minute weighted by how much of it is still inside the window, plus the current one).
// Tier: rate >= realtime_per_minute -> realtime; >= high_per_minute -> high;
//       >= normal_per_minute -> normal; otherwise (or never seen) low.
// Trending (videos): events in the last `trending_window` >= trending_min_events, by the same
// sliding-window estimate over windows of that length.
// Memory is bounded: keys idle for longer than both windows are dropped by sweep(), and at
// most max_keys are kept (the least recently active go first).
//
// Thread-safe (sharded mutexes).
#pragma once

#include <array>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "core/model.h"

namespace commentd::workers {

struct TierRules {
  int64_t realtime_per_minute = 600;
  int64_t high_per_minute = 60;
  int64_t normal_per_minute = 1;
  TimeMs trending_window_ms = 600'000;
  int64_t trending_min_events = 300;
  size_t max_keys = 1'000'000;
};

class ActivityTracker {
 public:
  ActivityTracker(const Clock& clock, TierRules rules);

  void record_comment(const Uuid& comment_id, int64_t events = 1);
  void record_video(const Uuid& video_id, int64_t events = 1);

  Tier comment_tier(const Uuid& comment_id) const;
  Tier video_tier(const Uuid& video_id) const;
  bool video_trending(const Uuid& video_id) const;
  double comment_rate_per_minute(const Uuid& comment_id) const;

  // Keys currently in `tier` (low is not listed: it is everything else).
  std::vector<Uuid> comments_in(Tier tier) const;
  std::vector<Uuid> videos_in(Tier tier) const;
  // Drops idle keys; returns how many.
  size_t sweep();
  size_t size() const;

 private:
  struct Window {
    TimeMs start = 0;  // start of the current window
    int64_t cur = 0, prev = 0;
    void add(TimeMs now, TimeMs len, int64_t n);
    double estimate(TimeMs now, TimeMs len) const;
  };
  struct Entry {
    Window minute;
    Window trend;
    TimeMs last = 0;
  };
  struct Shard {
    mutable std::mutex mu;
    std::unordered_map<Uuid, Entry, UuidHash> map;  // GUARDED_BY(mu)
  };
  static constexpr size_t kShards = 16;
  using Shards = std::array<Shard, kShards>;

  void record(Shards& s, const Uuid& id, int64_t n);
  Tier tier_of(const Shards& s, const Uuid& id) const;
  std::vector<Uuid> in(const Shards& s, Tier t) const;
  Tier tier_for_rate(double r) const;

  const Clock& clock_;
  const TierRules rules_;
  Shards comments_;
  Shards videos_;
};

}  // namespace commentd::workers
