// CqlStore: pages of a video's top-level comments from the time buckets
// (docs/cluster.md "Time buckets").
//
// A video's entries live in hourly buckets (written while it trends) and daily buckets
// (written while it is quiet); video_buckets lists the buckets that exist. Days are disjoint,
// so a page walks day by day; inside one day the daily bucket and the hourly buckets overlap
// wherever the video switched granularity, and the day's entries are their merge by
// (created_at, id). Only listed buckets are read (never hour by hour), and the walk starts at
// the buckets that hold the cursor's created_at: a bucket is a pure function of created_at
// (core/clock.h comment_bucket), so the cursor's position names its hour and its day and the
// next page starts there without re-walking.
#include <algorithm>
#include <string_view>

#include "core/clock.h"
#include "store/async.h"
#include "store/cql/cql_internal.h"

namespace commentd::store::cql {

using bridge::Rows;

namespace {

constexpr int32_t kListBatch = 100;  // bucket names per video_buckets read
constexpr size_t kWalkBatch = 4;     // hourly buckets read at once after a day's first

Error read_error(const Error& e, Deadline d) { return d.expired() ? deadline_error() : e; }

// Does `a` come before `b` in the walk (newest: later first)?
bool before(TimeMs a, TimeMs b, SortOrder s) { return s == SortOrder::newest ? a > b : a < b; }

// Our list order (ties by id, not by CQL's uuid order), duplicates (one comment in two
// buckets) dropped.
void order_unique(std::vector<CursorPos>& v, SortOrder sort) {
  std::sort(v.begin(), v.end(), [sort](const CursorPos& a, const CursorPos& b) {
    if (a.created_at != b.created_at) return before(a.created_at, b.created_at, sort);
    return sort == SortOrder::newest ? a.id > b.id : a.id < b.id;
  });
  v.erase(std::unique(v.begin(), v.end()), v.end());
}

// The video's bucket names read so far, in walk order (text order is time order within a
// granularity; the two granularities interleave).
struct Listing {
  std::vector<std::string> names;
  std::vector<std::optional<BucketSpan>> spans;  // nullopt: not a bucket name, never read
  std::vector<bool> maybe;                       // a recent bucket beside a cached list: may not exist
  bool all = false;                              // nothing after names.back()
};

// May bucket `s` hold entries strictly beyond `bound` in the walk?
bool reaches(const BucketSpan& s, std::optional<TimeMs> bound, SortOrder sort) {
  if (!bound) return true;
  return sort == SortOrder::newest ? s.start <= *bound : s.end > *bound + 1;
}

}  // namespace

void CqlStore::note_buckets(const std::vector<Mutation>& muts) {
  for (auto& m : muts)
    if (auto* b = std::get_if<BucketPut>(&m)) bucket_lists_->add(b->video_id, b->bucket);
}

asio::awaitable<Result<std::vector<std::string>>> CqlStore::list_buckets(Uuid video, SortOrder sort,
                                                                         std::optional<std::string> from,
                                                                         bool inclusive, int32_t limit, Deadline d) {
  if (d.expired()) co_return deadline_error();
  const int so = sort == SortOrder::newest ? 0 : 1, mode = !from ? 0 : inclusive ? 1 : 2;
  std::vector<bridge::Value> vals{V(video)};
  if (from) vals.push_back(txt(*from));
  vals.push_back(bridge::Value::int32(limit));
  auto r = co_await exec(*st_->bucket_list[so][mode], std::move(vals), read_opts(d));
  if (!r) co_return read_error(r.error(), d);
  std::vector<std::string> out;
  for (size_t i = 0; i < r->size(); ++i) {
    auto b = r->bytes(i, 0);
    if (!b || !*b) co_return Error(Errc::internal, "cql: corrupt video_buckets row");
    out.emplace_back(**b);
  }
  co_return out;
}

asio::awaitable<Result<std::vector<CursorPos>>> CqlStore::bucket_tie_group(Uuid video, TimeMs at, SortOrder sort,
                                                                           Deadline d) {
  if (d.expired()) co_return deadline_error();
  std::vector<Call> calls;
  for (auto& b : {time_bucket(at), day_bucket(at)})
    calls.push_back(Call{st_->bucket_ties.get(), {V(video), txt(b), ts(at)}, read_opts(d)});
  auto rows = co_await exec_all(std::move(calls));
  if (!rows) co_return read_error(rows.error(), d);
  std::vector<CursorPos> out;
  for (auto& r : *rows)
    for (size_t i = 0; i < r.size(); ++i) {
      auto id = r.uuid(i, 0);
      if (!id || !*id) co_return Error(Errc::internal, "cql: bucketed entry without id");
      out.push_back(CursorPos{at, from_cql(**id)});
    }
  order_unique(out, sort);
  co_return out;
}

// Day by day in walk order (a day's names are contiguous in text order: its daily bucket and
// its hours), since days are disjoint. Within a day the daily bucket and the hourly buckets
// are two streams. Each read gathers up to `lim` + 1 entries strictly beyond `bound` from each
// stream and merges them. A day whose streams both ended is whole; otherwise what is
// certainly whole is every entry before the first point where a stream stopped because it
// was full (its last created_at may continue); when those are not enough for the page, that
// created_at's group is read whole, and the next read starts strictly after it.
asio::awaitable<Result<ScanResult>> CqlStore::scan_buckets(ScanRequest req, Deadline d) {
  const SortOrder sort = req.sort;
  const int so = sort == SortOrder::newest ? 0 : 1;
  const Uuid video = req.key;
  const size_t want = req.max_rows + 1;  // one more tells whether the list is exhausted
  std::vector<CursorPos> entries;
  std::optional<TimeMs> bound;
  if (req.after) {
    auto g = co_await bucket_tie_group(video, req.after->created_at, sort, d);
    if (!g) co_return g.take_error();
    for (auto& p : *g)
      if (sort == SortOrder::newest ? p.id < req.after->id : p.id > req.after->id) entries.push_back(p);
    bound = req.after->created_at;
  }

  Listing l;
  auto add = [&l](std::string n, bool maybe) {
    l.spans.push_back(bucket_span(n));
    l.names.push_back(std::move(n));
    l.maybe.push_back(maybe);
  };
  auto take = [&](std::vector<std::string>& names) {
    l.all = names.size() < static_cast<size_t>(kListBatch);
    for (auto& n : names) add(std::move(n), false);
  };
  {
    // Newest: the hour holding the bound sorts after its day, so both are listed from it;
    // oldest: the day sorts before its hours.
    std::optional<std::string> from;
    if (bound) from = sort == SortOrder::newest ? time_bucket(*bound) : day_bucket(*bound);
    const TimeMs now = clock_.now_ms();
    std::optional<BucketLists::List> cached;
    if (sort == SortOrder::newest) cached = bucket_lists_->get(video, now);
    // A list cut short before `from` does not reach the names this page starts at.
    if (cached && from && !cached->all && *from < cached->names.back()) cached.reset();
    auto& stats = bucket_lists_->stats();
    if (cached) {
      // The cached names down from `from`, and the recent buckets not among them (a comment
      // created since the list was read may be in one of them; bucket_lists.h), newest first.
      stats.hits.fetch_add(1, std::memory_order_relaxed);
      // From a comment's created_at to its video_buckets row: its parent and thread root
      // read (one CQL read each), then its commit (less than intent_settle).
      const TimeMs settle = (intent_settle(opts_.cql) + 2 * opts_.cql.request_timeout).count();
      std::vector<std::pair<std::string, bool>> names;
      auto below = [&from](const std::string& n) { return !from || n <= *from; };
      for (auto& n : cached->names)
        if (below(n)) names.emplace_back(n, false);
      for (auto& n : recent_buckets(cached->listed_at - settle, now))
        if (below(n) && std::find(cached->names.begin(), cached->names.end(), n) == cached->names.end())
          names.emplace_back(std::move(n), true);
      std::sort(names.begin(), names.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
      for (auto& [n, maybe] : names) {
        if (maybe) stats.speculative_reads.fetch_add(1, std::memory_order_relaxed);
        add(std::move(n), maybe);
      }
      l.all = cached->all;
    } else {
      auto names = co_await list_buckets(video, sort, from, true, kListBatch, d);
      if (!names) co_return names.take_error();
      if (sort == SortOrder::newest && bucket_lists_->enabled()) {
        stats.misses.fetch_add(1, std::memory_order_relaxed);
        // Only a list from the top is whole enough to keep; `now` was read before the read.
        if (!from) bucket_lists_->put(video, {*names, names->size() < static_cast<size_t>(kListBatch), now});
      }
      take(*names);
    }
  }
  auto day_of = [](const std::string& name) { return std::string_view(name).substr(0, 10); };

  size_t g = 0;  // the first name of the current day
  while (entries.size() < want) {
    // The current day, listed whole.
    while (!l.all && (g >= l.names.size() || day_of(l.names.back()) == day_of(l.names[g]))) {
      auto more = co_await list_buckets(video, sort, l.names.back(), false, kListBatch, d);
      if (!more) co_return more.take_error();
      take(*more);
    }
    if (g >= l.names.size()) break;  // no bucket left: the list ends here
    size_t e = g;
    while (e < l.names.size() && day_of(l.names[e]) == day_of(l.names[g])) ++e;
    std::vector<size_t> cand[2];  // [0] the day's hourly buckets, [1] its daily bucket
    for (size_t i = g; i < e; ++i)
      if (l.spans[i] && reaches(*l.spans[i], bound, sort)) cand[l.spans[i]->hourly ? 0 : 1].push_back(i);
    // A stream's first read takes its first listed bucket and the recent ones before it that
    // may not exist (an empty one would otherwise cost a round trip in sequence).
    size_t first_batch[2] = {1, 1};
    for (int k = 0; k < 2; ++k)
      for (size_t i : cand[k]) {
        if (!l.maybe[i]) break;
        ++first_batch[k];
      }

    const size_t lim = want - entries.size();
    // Each stream reads one row past what the page needs. A full stream may continue after
    // its last created_at; when that row's created_at differs from the one before it (almost
    // always), the rows before it are already enough and the tie-group read below, one more
    // round trip in sequence, is not needed.
    const size_t keep = lim + 1;
    std::vector<CursorPos> got[2];
    bool full[2] = {false, false}, done[2] = {false, false};
    size_t next[2] = {0, 0};
    for (size_t step = 0; !(done[0] || full[0]) || !(done[1] || full[1]); ++step) {
      std::vector<Call> calls;
      std::vector<int> whose;
      size_t asked[2] = {0, 0};
      for (int k = 0; k < 2; ++k) {
        if (done[k] || full[k]) continue;
        asked[k] = keep - got[k].size();
        const size_t batch = step == 0 ? first_batch[k] : kWalkBatch;
        size_t n = 0;
        for (; n < batch && next[k] < cand[k].size(); ++n, ++next[k]) {
          std::vector<bridge::Value> vals{V(video), txt(l.names[cand[k][next[k]]])};
          if (bound) vals.push_back(ts(*bound));
          vals.push_back(bridge::Value::int32(static_cast<int32_t>(asked[k])));
          calls.push_back(Call{st_->bucket_page[so][bound ? 1 : 0].get(), std::move(vals), read_opts(d)});
          whose.push_back(k);
        }
        if (n == 0) done[k] = true;
      }
      if (calls.empty()) break;
      if (d.expired()) co_return deadline_error();
      auto rows = co_await exec_all(std::move(calls));
      if (!rows) co_return read_error(rows.error(), d);
      for (size_t j = 0; j < whose.size(); ++j) {
        const int k = whose[j];
        if (full[k]) continue;  // later buckets of a batch that already has enough
        const Rows& r = (*rows)[j];
        for (size_t x = 0; x < r.size(); ++x) {
          auto at = r.i64(x, 0);
          auto id = r.uuid(x, 1);
          if (!at || !*at || !id || !*id) co_return Error(Errc::internal, "cql: corrupt bucketed entry");
          got[k].push_back(CursorPos{**at, from_cql(**id)});
        }
        // A bucket that answered all it was asked for may hold more; a stream past `keep` is
        // cut. Either way it may continue after its last created_at.
        if (r.size() >= asked[k] || got[k].size() >= keep) {
          got[k].resize(std::min(got[k].size(), keep));
          full[k] = true;
        }
      }
    }

    std::vector<CursorPos> merged = got[0];
    merged.insert(merged.end(), got[1].begin(), got[1].end());
    order_unique(merged, sort);
    if (!full[0] && !full[1]) {  // both streams of the day read to their end: the day is whole
      entries.insert(entries.end(), merged.begin(), merged.end());
      g = e;
      continue;
    }
    // Within a stream entries come in created_at order (ties in CQL's order), so its last
    // entry holds the created_at where it may continue.
    std::optional<TimeMs> cutoff;
    for (int k = 0; k < 2; ++k)
      if (full[k] && (!cutoff || before(got[k].back().created_at, *cutoff, sort))) cutoff = got[k].back().created_at;
    for (auto& p : merged)
      if (before(p.created_at, *cutoff, sort)) entries.push_back(p);
    if (entries.size() >= want) break;  // the page is whole before the cutoff
    auto ties = co_await bucket_tie_group(video, *cutoff, sort, d);
    if (!ties) co_return ties.take_error();
    entries.insert(entries.end(), ties->begin(), ties->end());
    bound = cutoff;
  }
  co_return co_await join_entries(std::move(entries), req, video, d);
}

}  // namespace commentd::store::cql
