#include "store/rocks/codec.h"

#include <cstring>

namespace commentd::store::rocks {
namespace {

class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  bool ok() const { return ok_; }
  bool need(size_t n) {
    if (in_.size() - pos_ < n) ok_ = false;
    return ok_;
  }
  uint8_t u8() { return need(1) ? static_cast<uint8_t>(in_[pos_++]) : 0; }
  uint64_t u64() {
    if (!need(8)) return 0;
    uint64_t v = get_u64be(in_.substr(pos_));
    pos_ += 8;
    return v;
  }
  uint32_t u32() { return static_cast<uint32_t>(u64()); }
  Uuid uuid() {
    if (!need(16)) return {};
    Uuid u = get_uuid(in_.substr(pos_));
    pos_ += 16;
    return u;
  }
  std::string_view bytes(size_t n) {
    if (!need(n)) return {};
    auto s = in_.substr(pos_, n);
    pos_ += n;
    return s;
  }

 private:
  std::string_view in_;
  size_t pos_ = 0;
  bool ok_ = true;
};

enum CommentFlags : uint8_t { kHasParent = 1, kHasReplyTo = 2, kEdited = 4 };
constexpr uint8_t kCommentFormat = 1;

}  // namespace

void put_u64be(std::string& out, uint64_t v) {
  char b[8];
  for (int i = 0; i < 8; ++i) b[i] = static_cast<char>(v >> (56 - 8 * i));
  out.append(b, 8);
}

uint64_t get_u64be(std::string_view in) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = v << 8 | static_cast<uint8_t>(in[i]);
  return v;
}

void put_desc_time(std::string& out, TimeMs t) { put_u64be(out, ~static_cast<uint64_t>(t)); }
TimeMs get_desc_time(std::string_view in) { return static_cast<TimeMs>(~get_u64be(in)); }

void put_uuid(std::string& out, const Uuid& u) {
  out.append(reinterpret_cast<const char*>(u.bytes.data()), 16);
}

Uuid get_uuid(std::string_view in) {
  Uuid u;
  std::memcpy(u.bytes.data(), in.data(), 16);
  return u;
}

std::string index_key(std::string_view partition, TimeMs created_at, const Uuid& id) {
  std::string k;
  k.reserve(partition.size() + 24);
  k.append(partition);
  put_desc_time(k, created_at);
  for (uint8_t b : id.bytes) k.push_back(static_cast<char>(~b));  // id DESC too
  return k;
}

std::string uuid_key(const Uuid& u) {
  std::string k;
  put_uuid(k, u);
  return k;
}

std::string pair_key(const Uuid& a, const Uuid& b) {
  std::string k;
  k.reserve(32);
  put_uuid(k, a);
  put_uuid(k, b);
  return k;
}

std::string bucket_partition(const Uuid& video_id, std::string_view bucket) {
  std::string k = uuid_key(video_id);
  k.append(bucket);
  return k;
}

IndexPos parse_index_suffix(std::string_view key) {
  auto s = key.substr(key.size() - 24);
  IndexPos p{get_desc_time(s), {}};
  for (size_t i = 0; i < 16; ++i) p.id.bytes[i] = static_cast<uint8_t>(~static_cast<uint8_t>(s[8 + i]));
  return p;
}

std::string encode_comment(const Comment& c) {
  std::string v;
  v.reserve(96 + c.content.size());
  v.push_back(static_cast<char>(kCommentFormat));
  uint8_t flags = (c.parent_id ? kHasParent : 0) | (c.reply_to ? kHasReplyTo : 0) |
                  (c.edited ? kEdited : 0);
  v.push_back(static_cast<char>(flags));
  v.push_back(static_cast<char>(c.status));
  put_u64be(v, c.depth);
  put_u64be(v, static_cast<uint64_t>(c.created_at));
  put_u64be(v, static_cast<uint64_t>(c.updated_at));
  put_u64be(v, static_cast<uint64_t>(c.deleted_at));
  put_u64be(v, c.version);
  put_uuid(v, c.video_id);
  put_uuid(v, c.user_id);
  if (c.parent_id) put_uuid(v, *c.parent_id);
  if (c.reply_to) put_uuid(v, *c.reply_to);
  put_u64be(v, c.content.size());
  v.append(c.content);
  return v;
}

std::optional<Comment> decode_comment(const Uuid& id, std::string_view v) {
  Reader r(v);
  if (r.u8() != kCommentFormat) return std::nullopt;
  Comment c;
  c.id = id;
  uint8_t flags = r.u8();
  uint8_t status = r.u8();
  if (status > static_cast<uint8_t>(CommentStatus::deleted)) return std::nullopt;
  c.status = static_cast<CommentStatus>(status);
  c.edited = flags & kEdited;
  c.depth = r.u32();
  c.created_at = static_cast<TimeMs>(r.u64());
  c.updated_at = static_cast<TimeMs>(r.u64());
  c.deleted_at = static_cast<TimeMs>(r.u64());
  c.version = r.u64();
  c.video_id = r.uuid();
  c.user_id = r.uuid();
  if (flags & kHasParent) c.parent_id = r.uuid();
  if (flags & kHasReplyTo) c.reply_to = r.uuid();
  uint64_t n = r.u64();
  c.content = std::string(r.bytes(n));
  if (!r.ok()) return std::nullopt;
  return c;
}

std::string encode_reaction_row(const ReactionRow& row) {
  std::string v;
  v.reserve(33);
  v.push_back(static_cast<char>(row.type));
  put_u64be(v, static_cast<uint64_t>(row.timestamp));
  put_u64be(v, row.node_id);
  put_uuid(v, row.op_id);
  return v;
}

std::optional<ReactionRow> decode_reaction_row(std::string_view v) {
  Reader r(v);
  ReactionRow row;
  uint8_t t = r.u8();
  if (t > static_cast<uint8_t>(ReactionType::dislike)) return std::nullopt;
  row.type = static_cast<ReactionType>(t);
  row.timestamp = static_cast<TimeMs>(r.u64());
  row.node_id = r.u32();
  row.op_id = r.uuid();
  if (!r.ok()) return std::nullopt;
  return row;
}

std::string encode_op(const ReactionOp& op) {
  std::string v;
  v.reserve(81);
  put_uuid(v, op.op_id);
  put_uuid(v, op.comment_id);
  put_uuid(v, op.video_id);
  put_uuid(v, op.user_id);
  v.push_back(static_cast<char>(op.type));
  put_u64be(v, static_cast<uint64_t>(op.timestamp));
  put_u64be(v, op.node_id);
  return v;
}

std::optional<ReactionOp> decode_op(uint64_t seq, std::string_view v) {
  Reader r(v);
  ReactionOp op;
  op.seq = seq;
  op.op_id = r.uuid();
  op.comment_id = r.uuid();
  op.video_id = r.uuid();
  op.user_id = r.uuid();
  uint8_t t = r.u8();
  if (t > static_cast<uint8_t>(ReactionType::dislike)) return std::nullopt;
  op.type = static_cast<ReactionType>(t);
  op.timestamp = static_cast<TimeMs>(r.u64());
  op.node_id = r.u32();
  if (!r.ok()) return std::nullopt;
  return op;
}

std::string encode_counters(const int64_t* slots, size_t n) {
  std::string v(n * 8, '\0');
  for (size_t i = 0; i < n; ++i) {
    uint64_t x = static_cast<uint64_t>(slots[i]);
    for (int b = 0; b < 8; ++b) v[i * 8 + b] = static_cast<char>(x >> (8 * b));
  }
  return v;
}

void decode_counters(std::string_view v, int64_t* slots, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    uint64_t x = 0;
    if (v.size() >= (i + 1) * 8)
      for (int b = 7; b >= 0; --b) x = x << 8 | static_cast<uint8_t>(v[i * 8 + b]);
    slots[i] = static_cast<int64_t>(x);
  }
}

}  // namespace commentd::store::rocks
