#include "store/rocks/codec.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <limits>
#include <random>
#include <string>
#include <tuple>
#include <vector>

namespace commentd::store::rocks {
namespace {

Uuid random_uuid(std::mt19937_64& rng) {
  Uuid u;
  for (auto& b : u.bytes) b = static_cast<uint8_t>(rng());
  return u;
}

// The documented clustering order (codec.h): created_at DESC, then id DESC.
bool clustering_less(TimeMs ta, const Uuid& a, TimeMs tb, const Uuid& b) {
  if (ta != tb) return ta > tb;
  return a > b;
}

TEST(CodecTest, IndexKeyOrderIsCreatedAtDescThenIdDesc) {
  std::mt19937_64 rng(2024);
  const std::string partition = uuid_key(random_uuid(rng));
  struct Entry { TimeMs t; Uuid id; std::string key; };
  std::vector<Entry> entries;
  for (int i = 0; i < 3000; ++i) {
    // Few distinct timestamps so ties on created_at are common; some extremes.
    TimeMs t = 1'700'000'000'000 + static_cast<TimeMs>(rng() % 40);
    if (i % 100 == 0) t = 0;
    if (i % 101 == 0) t = std::numeric_limits<TimeMs>::max();
    Uuid id = random_uuid(rng);
    if (i % 7 == 0) id.bytes[15] = 0;  // ids that differ only late
    entries.push_back({t, id, index_key(partition, t, id)});
  }
  auto by_bytes = entries;
  std::sort(by_bytes.begin(), by_bytes.end(), [](auto& a, auto& b) { return a.key < b.key; });
  auto by_order = entries;
  std::sort(by_order.begin(), by_order.end(),
            [](auto& a, auto& b) { return clustering_less(a.t, a.id, b.t, b.id); });
  ASSERT_EQ(by_bytes.size(), by_order.size());
  for (size_t i = 0; i < by_bytes.size(); ++i) {
    ASSERT_EQ(by_bytes[i].t, by_order[i].t) << i;
    ASSERT_EQ(by_bytes[i].id, by_order[i].id) << i;
  }
  // Pairwise on a sample, comparing the byte order directly.
  for (int i = 0; i < 20000; ++i) {
    auto& a = entries[rng() % entries.size()];
    auto& b = entries[rng() % entries.size()];
    bool bytes_less = a.key < b.key;
    ASSERT_EQ(bytes_less, clustering_less(a.t, a.id, b.t, b.id))
        << a.t << " " << a.id.str() << " vs " << b.t << " " << b.id.str();
  }
}

TEST(CodecTest, IndexKeyLayoutAndSuffixRoundTrip) {
  std::mt19937_64 rng(5);
  for (int i = 0; i < 1000; ++i) {
    Uuid part = random_uuid(rng), id = random_uuid(rng);
    TimeMs t = static_cast<TimeMs>(rng() >> 1);
    std::string k = index_key(uuid_key(part), t, id);
    ASSERT_EQ(k.size(), 40u);
    EXPECT_EQ(get_uuid(k), part);
    IndexPos p = parse_index_suffix(k);
    EXPECT_EQ(p.created_at, t);
    EXPECT_EQ(p.id, id);
    // Longer (bucketed) partitions parse the same.
    std::string kb = index_key(bucket_partition(part, "2024-05-01-12"), t, id);
    ASSERT_EQ(kb.size(), 16u + 13u + 24u);
    IndexPos pb = parse_index_suffix(kb);
    EXPECT_EQ(pb.created_at, t);
    EXPECT_EQ(pb.id, id);
  }
}

TEST(CodecTest, PartitionsNeverInterleave) {
  std::mt19937_64 rng(99);
  std::vector<Uuid> parts;
  for (int i = 0; i < 20; ++i) parts.push_back(random_uuid(rng));
  // Two partitions that differ only in the last byte, the tightest case.
  Uuid near = parts[0];
  near.bytes[15] ^= 1;
  parts.push_back(near);
  std::vector<std::pair<std::string, size_t>> keys;
  for (int i = 0; i < 5000; ++i) {
    size_t p = rng() % parts.size();
    TimeMs t = i % 50 == 0 ? 0 : static_cast<TimeMs>(rng() >> 1);
    Uuid id = random_uuid(rng);
    if (i % 13 == 0) id.bytes.fill(0xFF);
    if (i % 17 == 0) id.bytes.fill(0);
    keys.emplace_back(index_key(uuid_key(parts[p]), t, id), p);
  }
  std::sort(keys.begin(), keys.end());
  // In byte order each partition's keys form one contiguous run, in partition byte order.
  std::vector<size_t> runs;
  for (auto& [k, p] : keys)
    if (runs.empty() || runs.back() != p) runs.push_back(p);
  std::vector<size_t> uniq = runs;
  std::sort(uniq.begin(), uniq.end());
  EXPECT_EQ(std::unique(uniq.begin(), uniq.end()), uniq.end()) << "a partition's keys interleave";
  for (size_t i = 1; i < runs.size(); ++i) EXPECT_LT(parts[runs[i - 1]], parts[runs[i]]);
  // Every key lies within [partition, partition + 25 x 0xff), the bounds scans use.
  for (auto& [k, p] : keys) {
    std::string lower = uuid_key(parts[p]);
    std::string upper = lower + std::string(25, '\xff');
    EXPECT_LE(lower, k);
    EXPECT_LT(k, upper);
  }
}

Comment full_comment(bool parent, bool reply_to, bool edited) {
  std::mt19937_64 rng(parent * 4 + reply_to * 2 + edited);
  Comment c;
  c.id = random_uuid(rng);
  c.video_id = random_uuid(rng);
  c.user_id = random_uuid(rng);
  if (parent) c.parent_id = random_uuid(rng);
  if (reply_to) c.reply_to = random_uuid(rng);
  c.content = "h\xc3\xa9llo\n\xf0\x9f\x98\x80";
  c.content.push_back('\0');  // binary-safe
  c.content += "end";
  c.status = CommentStatus::pending;
  c.created_at = 1'700'000'000'123;
  c.updated_at = 1'700'000'000'456;
  c.deleted_at = 1'700'000'000'789;
  c.edited = edited;
  c.depth = parent ? 3 : 0;
  c.version = 0x0102030405060708ULL;
  return c;
}

void expect_same(const Comment& a, const Comment& b) {
  EXPECT_EQ(a.id, b.id);
  EXPECT_EQ(a.video_id, b.video_id);
  EXPECT_EQ(a.user_id, b.user_id);
  EXPECT_EQ(a.parent_id, b.parent_id);
  EXPECT_EQ(a.reply_to, b.reply_to);
  EXPECT_EQ(a.content, b.content);
  EXPECT_EQ(a.status, b.status);
  EXPECT_EQ(a.created_at, b.created_at);
  EXPECT_EQ(a.updated_at, b.updated_at);
  EXPECT_EQ(a.deleted_at, b.deleted_at);
  EXPECT_EQ(a.edited, b.edited);
  EXPECT_EQ(a.depth, b.depth);
  EXPECT_EQ(a.version, b.version);
}

TEST(CodecTest, CommentRoundTripAllOptionalFields) {
  for (int mask = 0; mask < 8; ++mask) {
    Comment c = full_comment(mask & 1, mask & 2, mask & 4);
    std::string v = encode_comment(c);
    auto back = decode_comment(c.id, v);
    ASSERT_TRUE(back.has_value()) << "mask " << mask;
    SCOPED_TRACE(mask);
    expect_same(c, *back);
  }
  for (auto st : {CommentStatus::visible, CommentStatus::hidden, CommentStatus::pending,
                  CommentStatus::spam, CommentStatus::deleted}) {
    Comment c = full_comment(false, false, false);
    c.status = st;
    c.content.clear();
    auto back = decode_comment(c.id, encode_comment(c));
    ASSERT_TRUE(back.has_value());
    EXPECT_EQ(back->status, st);
    EXPECT_EQ(back->content, "");
  }
}

TEST(CodecTest, CommentDecodeUsesTheGivenId) {
  Comment c = full_comment(true, true, true);
  Uuid other;
  other.bytes[0] = 7;
  auto back = decode_comment(other, encode_comment(c));
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->id, other);
}

TEST(CodecTest, TruncatedCommentIsNullopt) {
  for (int mask = 0; mask < 8; ++mask) {
    Comment c = full_comment(mask & 1, mask & 2, mask & 4);
    std::string v = encode_comment(c);
    for (size_t n = 0; n < v.size(); ++n)
      EXPECT_FALSE(decode_comment(c.id, std::string_view(v).substr(0, n)).has_value())
          << "mask " << mask << " length " << n;
  }
}

TEST(CodecTest, CorruptCommentIsNullopt) {
  Comment c = full_comment(true, false, false);
  std::string v = encode_comment(c);
  std::string bad_format = v;
  bad_format[0] = 2;
  EXPECT_FALSE(decode_comment(c.id, bad_format).has_value());
  std::string bad_status = v;
  bad_status[2] = 5;
  EXPECT_FALSE(decode_comment(c.id, bad_status).has_value());
  // A content length far past the end must not read out of bounds.
  std::string huge = v;
  size_t len_at = v.size() - c.content.size() - 8;
  for (size_t i = 0; i < 8; ++i) huge[len_at + i] = '\xff';
  EXPECT_FALSE(decode_comment(c.id, huge).has_value());
  // Random garbage never crashes.
  std::mt19937_64 rng(3);
  for (int i = 0; i < 2000; ++i) {
    std::string g(rng() % 150, '\0');
    for (auto& ch : g) ch = static_cast<char>(rng());
    (void)decode_comment(c.id, g);
    (void)decode_reaction_row(g);
    (void)decode_op(1, g);
  }
}

TEST(CodecTest, ReactionRowRoundTripAndTruncation) {
  for (auto t : {ReactionType::none, ReactionType::like, ReactionType::dislike}) {
    ReactionRow r{t, 1'700'000'000'999, 0xDEADBEEF, {}};
    r.op_id.bytes = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    std::string v = encode_reaction_row(r);
    auto back = decode_reaction_row(v);
    ASSERT_TRUE(back.has_value());
    EXPECT_EQ(back->type, r.type);
    EXPECT_EQ(back->timestamp, r.timestamp);
    EXPECT_EQ(back->node_id, r.node_id);
    EXPECT_EQ(back->op_id, r.op_id);
    for (size_t n = 0; n < v.size(); ++n)
      EXPECT_FALSE(decode_reaction_row(std::string_view(v).substr(0, n)).has_value()) << n;
  }
  std::string v = encode_reaction_row({ReactionType::like, 1, 1, {}});
  v[0] = 3;
  EXPECT_FALSE(decode_reaction_row(v).has_value());
}

TEST(CodecTest, OpRoundTripAndTruncation) {
  std::mt19937_64 rng(8);
  for (auto t : {ReactionType::none, ReactionType::like, ReactionType::dislike}) {
    ReactionOp op;
    op.op_id = random_uuid(rng);
    op.comment_id = random_uuid(rng);
    op.video_id = random_uuid(rng);
    op.user_id = random_uuid(rng);
    op.type = t;
    op.timestamp = 1'700'000'000'321;
    op.node_id = 4'000'000'000u;
    std::string v = encode_op(op);
    auto back = decode_op(77, v);
    ASSERT_TRUE(back.has_value());
    EXPECT_EQ(back->seq, 77u);  // the seq comes from the key
    EXPECT_EQ(back->op_id, op.op_id);
    EXPECT_EQ(back->comment_id, op.comment_id);
    EXPECT_EQ(back->video_id, op.video_id);
    EXPECT_EQ(back->user_id, op.user_id);
    EXPECT_EQ(back->type, op.type);
    EXPECT_EQ(back->timestamp, op.timestamp);
    EXPECT_EQ(back->node_id, op.node_id);
    for (size_t n = 0; n < v.size(); ++n)
      EXPECT_FALSE(decode_op(1, std::string_view(v).substr(0, n)).has_value()) << n;
  }
}

TEST(CodecTest, CountersRoundTrip) {
  int64_t m[kMetricsSlots] = {5, -3, 1'000'000'000'000, 1'700'000'000'000};
  std::string v = encode_counters(m, kMetricsSlots);
  EXPECT_EQ(v.size(), kMetricsSlots * 8);
  int64_t back[kMetricsSlots] = {9, 9, 9, 9};
  decode_counters(v, back, kMetricsSlots);
  for (size_t i = 0; i < kMetricsSlots; ++i) EXPECT_EQ(back[i], m[i]) << i;

  int64_t s[kStatsSlots] = {std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max(), 0};
  int64_t sb[kStatsSlots] = {1, 1, 1};
  decode_counters(encode_counters(s, kStatsSlots), sb, kStatsSlots);
  for (size_t i = 0; i < kStatsSlots; ++i) EXPECT_EQ(sb[i], s[i]) << i;
}

TEST(CodecTest, CountersMissingSlotsAreZero) {
  int64_t two[2] = {7, -8};
  std::string v = encode_counters(two, 2);
  int64_t out[kMetricsSlots] = {1, 1, 1, 1};
  decode_counters(v, out, kMetricsSlots);
  EXPECT_EQ(out[0], 7);
  EXPECT_EQ(out[1], -8);
  EXPECT_EQ(out[2], 0);
  EXPECT_EQ(out[3], 0);
  decode_counters("", out, kMetricsSlots);
  for (auto x : out) EXPECT_EQ(x, 0);
  // A partial slot is missing too.
  decode_counters(v.substr(0, 12), out, kMetricsSlots);
  EXPECT_EQ(out[0], 7);
  EXPECT_EQ(out[1], 0);
}

TEST(CodecTest, FixedWidthHelpers) {
  std::string s;
  put_u64be(s, 0x0102030405060708ULL);
  EXPECT_EQ(s, std::string("\x01\x02\x03\x04\x05\x06\x07\x08", 8));
  EXPECT_EQ(get_u64be(s), 0x0102030405060708ULL);
  std::string a, b;
  put_desc_time(a, 100);
  put_desc_time(b, 101);
  EXPECT_LT(b, a);  // later sorts first
  EXPECT_EQ(get_desc_time(a), 100);
  // pair_key is the concatenation, so a comment's registers share its prefix.
  std::mt19937_64 rng(1);
  Uuid x = random_uuid(rng), y = random_uuid(rng);
  EXPECT_EQ(pair_key(x, y), uuid_key(x) + uuid_key(y));
  EXPECT_EQ(bucket_partition(x, "b"), uuid_key(x) + "b");
}

}  // namespace
}  // namespace commentd::store::rocks
