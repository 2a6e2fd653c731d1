// Micro-benchmarks of the pure encodings on the request and storage paths: RocksDB key and
// row codecs, page cursors, and the read-model JSON that a cache hit sends. None of these
// touch I/O, so ns/op here is the CPU floor of each step.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cache/page_cache.h"
#include "core/cursor.h"
#include "core/model.h"
#include "service/read_model.h"
#include "store/rocks/codec.h"

using namespace commentd;
namespace rocks = commentd::store::rocks;

namespace {

constexpr TimeMs kT0 = 1'700'000'000'000;

// A deterministic, UUIDv7-shaped id: 48-bit ms timestamp, then `n` in the low bytes.
Uuid v7_like(TimeMs ms, uint64_t n) {
  Uuid u;
  for (int i = 0; i < 6; ++i) u.bytes[i] = static_cast<uint8_t>(ms >> (40 - 8 * i));
  u.bytes[6] = 0x70;
  for (int i = 0; i < 8; ++i) u.bytes[8 + i] = static_cast<uint8_t>(n >> (56 - 8 * i));
  u.bytes[8] = static_cast<uint8_t>((u.bytes[8] & 0x3f) | 0x80);
  return u;
}

// A typical top-level comment: ~180 bytes of text, a little non-ASCII for the JSON escaper.
Comment sample_comment(uint64_t n) {
  Comment c;
  c.created_at = c.updated_at = kT0 + static_cast<TimeMs>(n);
  c.id = v7_like(c.created_at, n);
  c.video_id = v7_like(kT0 - 86'400'000, 7);
  c.user_id = v7_like(kT0 - 5'000'000, 1000 + n);
  c.content =
      "Great explanation of the group-commit path \xe2\x80\x94 the part about one fsync per "
      "batch finally made it click. Could you do a follow-up on compaction tuning? \"Thanks\"!";
  return c;
}

}  // namespace

// --- 1. Key encoding ----------------------------------------------------------------------

// index_key: built for every IndexPut/IndexDelete/BucketPut and for every scan with a cursor.
void BM_index_key(benchmark::State& state) {
  const std::string partition = rocks::uuid_key(v7_like(kT0, 7));
  const Uuid id = v7_like(kT0, 42);
  TimeMs t = kT0;
  for (auto _ : state) {
    std::string k = rocks::index_key(partition, t++, id);
    benchmark::DoNotOptimize(k);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_index_key);

// parse_index_suffix: once per index entry a scan visits (20 per page miss).
void BM_parse_index_suffix(benchmark::State& state) {
  const std::string key = rocks::index_key(rocks::uuid_key(v7_like(kT0, 7)), kT0, v7_like(kT0, 42));
  for (auto _ : state) {
    auto pos = rocks::parse_index_suffix(key);
    benchmark::DoNotOptimize(pos);
  }
  if (rocks::parse_index_suffix(key).id != v7_like(kT0, 42)) state.SkipWithError("round trip failed");
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_parse_index_suffix);

// encode_comment: once per PutComment (create, edit, delete, status change).
void BM_encode_comment(benchmark::State& state) {
  const Comment c = sample_comment(1);
  size_t bytes = 0;
  for (auto _ : state) {
    std::string v = rocks::encode_comment(c);
    bytes += v.size();
    benchmark::DoNotOptimize(v);
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
}
BENCHMARK(BM_encode_comment);

// decode_comment: once per row a page miss joins, and per CommentAt precondition check.
void BM_decode_comment(benchmark::State& state) {
  const Comment c = sample_comment(1);
  const std::string v = rocks::encode_comment(c);
  for (auto _ : state) {
    auto d = rocks::decode_comment(c.id, v);
    benchmark::DoNotOptimize(d);
  }
  auto d = rocks::decode_comment(c.id, v);
  if (!d || d->content != c.content || d->created_at != c.created_at)
    state.SkipWithError("decode_comment round trip failed");
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * v.size()));
}
BENCHMARK(BM_decode_comment);

// encode_op/decode_op: every reaction is appended once and read back once by the applier.
void BM_encode_decode_op(benchmark::State& state) {
  ReactionOp op;
  op.op_id = v7_like(kT0, 1);
  op.comment_id = v7_like(kT0, 2);
  op.video_id = v7_like(kT0, 3);
  op.user_id = v7_like(kT0, 4);
  op.type = ReactionType::like;
  op.timestamp = kT0;
  op.node_id = 1;
  uint64_t seq = 0;
  for (auto _ : state) {
    std::string v = rocks::encode_op(op);
    auto back = rocks::decode_op(++seq, v);
    benchmark::DoNotOptimize(back);
  }
  auto back = rocks::decode_op(1, rocks::encode_op(op));
  if (!back || back->user_id != op.user_id || back->type != op.type)
    state.SkipWithError("op round trip failed");
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_encode_decode_op);

// --- 2. Cursors ---------------------------------------------------------------------------

const CursorKey kCursorKey = derive_cursor_key("", "bench-secret");
const CursorScope kCursorScope{CursorList::video, v7_like(kT0, 1), SortOrder::newest};

// encode_cursor: once per page served with a next page (cached with the page on a fill).
void BM_encode_cursor(benchmark::State& state) {
  const CursorPos pos{kT0, v7_like(kT0, 42)};
  for (auto _ : state) {
    std::string s = encode_cursor(kCursorKey, kCursorScope, pos);
    benchmark::DoNotOptimize(s);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_encode_cursor);

// decode_cursor: once per request that carries ?cursor=, including on a cache hit.
void BM_decode_cursor(benchmark::State& state) {
  const CursorPos pos{kT0, v7_like(kT0, 42)};
  const std::string text = encode_cursor(kCursorKey, kCursorScope, pos);
  for (auto _ : state) {
    auto r = decode_cursor(kCursorKey, text, kCursorScope);
    benchmark::DoNotOptimize(r);
  }
  auto r = decode_cursor(kCursorKey, text, kCursorScope);
  if (!r || !(*r == pos)) state.SkipWithError("cursor round trip failed");
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_decode_cursor);

// --- 3. Page serialization ----------------------------------------------------------------

// comment_json_open for the 20 comments of a page: the per-comment work of a cache fill
// (a miss), done once and then shared by every hit until the page is invalidated.
// items/s = comments serialized per second.
void BM_comment_json_open_x20(benchmark::State& state) {
  std::vector<Comment> comments;
  std::vector<CommentMetrics> metrics;
  for (uint64_t i = 0; i < 20; ++i) {
    comments.push_back(sample_comment(i));
    metrics.push_back(CommentMetrics{static_cast<int64_t>(i * 37), static_cast<int64_t>(i), 3, kT0});
  }
  for (auto _ : state) {
    for (size_t i = 0; i < comments.size(); ++i) {
      std::string s = service::comment_json_open(comments[i], metrics[i]);
      benchmark::DoNotOptimize(s);
    }
  }
  state.SetItemsProcessed(state.iterations() * 20);
}
BENCHMARK(BM_comment_json_open_x20);

// page_json of a 20-item cached page plus the caller's reactions: the per-request
// serialization of a cache hit (the whole response body). items/s = pages per second.
void BM_page_json_20(benchmark::State& state) {
  std::vector<cache::PageItem> items;
  std::vector<ReactionType> mine;
  for (uint64_t i = 0; i < 20; ++i) {
    Comment c = sample_comment(i);
    items.push_back({c.id, c.user_id, service::comment_json_open(c, CommentMetrics{12, 1, 3, kT0})});
    mine.push_back(i % 5 == 0 ? ReactionType::like : i % 7 == 0 ? ReactionType::dislike : ReactionType::none);
  }
  const std::optional<std::string> next =
      encode_cursor(kCursorKey, kCursorScope, CursorPos{kT0, v7_like(kT0, 19)});
  size_t bytes = 0;
  for (auto _ : state) {
    std::string body = service::page_json(items, mine, next);
    bytes += body.size();
    benchmark::DoNotOptimize(body);
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
}
BENCHMARK(BM_page_json_20);
