#include "store/cql/commit_intent.h"

#include <cstring>

namespace commentd::store::cql {

namespace {

constexpr char kFormat = 1;
enum Tag : char {
  kIndexPut = 1,
  kIndexDelete = 2,
  kBucketPut = 3,
  kHiddenMark = 4,
  kRecentWrite = 5,
  kOutbox = 6,
  kMetricsDelta = 7,
  kStatsDelta = 8
};

void put_u64(std::string& out, uint64_t v) {
  for (int i = 7; i >= 0; --i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void put_uuid(std::string& out, const Uuid& u) { out.append(reinterpret_cast<const char*>(u.bytes.data()), 16); }
void put_str(std::string& out, std::string_view s) {
  put_u64(out, s.size());
  out.append(s);
}

// Reads fields off the front of a body; any short read marks it bad and answers zeros.
struct Reader {
  std::string_view in;
  bool bad = false;
  bool take(size_t n) {
    if (in.size() < n) bad = true;
    return !bad;
  }
  uint64_t u64() {
    if (!take(8)) return 0;
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(in[i]);
    in.remove_prefix(8);
    return v;
  }
  int64_t i64() { return static_cast<int64_t>(u64()); }
  uint8_t byte() {
    if (!take(1)) return 0;
    auto b = static_cast<uint8_t>(in[0]);
    in.remove_prefix(1);
    return b;
  }
  Uuid uuid() {
    Uuid u;
    if (!take(16)) return u;
    std::memcpy(u.bytes.data(), in.data(), 16);
    in.remove_prefix(16);
    return u;
  }
  std::string str() {
    uint64_t n = u64();
    if (bad || !take(n)) return {};
    std::string s(in.substr(0, n));
    in.remove_prefix(n);
    return s;
  }
};

Error not_ours(const std::string& why) { return Error(Errc::internal, "commit intent: " + why); }

}  // namespace

bool intent_carries(const Mutation& m) {
  return std::holds_alternative<IndexPut>(m) || std::holds_alternative<IndexDelete>(m) ||
         std::holds_alternative<BucketPut>(m) || std::holds_alternative<HiddenMark>(m) ||
         std::holds_alternative<RecentWrite>(m) || std::holds_alternative<AppendOutbox>(m) ||
         std::holds_alternative<MetricsDelta>(m) || std::holds_alternative<StatsDelta>(m);
}

bool intent_skips(const Mutation& m) { return std::holds_alternative<PutComment>(m); }

Result<std::string> encode_intent(const std::vector<Mutation>& mutations) {
  std::string out(1, kFormat);
  for (const auto& m : mutations) {
    auto index_entry = [&out](Tag tag, Index index, const Uuid& key, TimeMs created_at, const Uuid& id) {
      out.push_back(tag);
      out.push_back(static_cast<char>(index));
      put_uuid(out, key);
      put_u64(out, static_cast<uint64_t>(created_at));
      put_uuid(out, id);
    };
    if (auto* x = std::get_if<IndexPut>(&m)) {
      index_entry(kIndexPut, x->index, x->key, x->created_at, x->id);
    } else if (auto* d = std::get_if<IndexDelete>(&m)) {
      index_entry(kIndexDelete, d->index, d->key, d->created_at, d->id);
    } else if (auto* b = std::get_if<BucketPut>(&m)) {
      out.push_back(kBucketPut);
      put_uuid(out, b->video_id);
      put_str(out, b->bucket);
      put_u64(out, static_cast<uint64_t>(b->created_at));
      put_uuid(out, b->id);
    } else if (auto* h = std::get_if<HiddenMark>(&m)) {
      out.push_back(kHiddenMark);
      put_uuid(out, h->video_id);
      put_uuid(out, h->user_id);
      put_uuid(out, h->id);
      out.push_back(h->set ? 1 : 0);
    } else if (auto* r = std::get_if<RecentWrite>(&m)) {
      out.push_back(kRecentWrite);
      put_uuid(out, r->video_id);
      put_uuid(out, r->user_id);
      put_u64(out, static_cast<uint64_t>(r->until));
    } else if (auto* o = std::get_if<AppendOutbox>(&m)) {
      out.push_back(kOutbox);
      put_str(out, o->topic);
      put_str(out, o->key);
      put_str(out, o->payload);
    } else if (auto* md = std::get_if<MetricsDelta>(&m)) {
      out.push_back(kMetricsDelta);
      put_uuid(out, md->comment_id);
      for (int64_t v : {md->likes, md->dislikes, md->replies, md->at}) put_u64(out, static_cast<uint64_t>(v));
    } else if (auto* sd = std::get_if<StatsDelta>(&m)) {
      out.push_back(kStatsDelta);
      put_uuid(out, sd->video_id);
      for (int64_t v : {sd->comments, sd->reactions, sd->at}) put_u64(out, static_cast<uint64_t>(v));
    } else if (!intent_skips(m)) {
      return not_ours("a write with an entity write may not carry mutation kind " + std::to_string(m.index()));
    }
  }
  return out;
}

Result<std::vector<Mutation>> decode_intent(std::string_view body) {
  Reader r{body};
  if (r.byte() != static_cast<uint8_t>(kFormat) || r.bad) return not_ours("unknown format");
  std::vector<Mutation> out;
  while (!r.in.empty() && !r.bad) {
    const auto tag = static_cast<char>(r.byte());
    if (tag == kIndexPut || tag == kIndexDelete) {
      const auto index = r.byte();
      if (index > static_cast<uint8_t>(Index::replies)) return not_ours("unknown index");
      IndexPut e{static_cast<Index>(index), r.uuid(), 0, {}};
      e.created_at = r.i64();
      e.id = r.uuid();
      if (tag == kIndexPut) out.emplace_back(e);
      else out.emplace_back(IndexDelete{e.index, e.key, e.created_at, e.id});
    } else if (tag == kBucketPut) {
      BucketPut b;
      b.video_id = r.uuid();
      b.bucket = r.str();
      b.created_at = r.i64();
      b.id = r.uuid();
      out.emplace_back(std::move(b));
    } else if (tag == kHiddenMark) {
      HiddenMark h;
      h.video_id = r.uuid();
      h.user_id = r.uuid();
      h.id = r.uuid();
      h.set = r.byte() != 0;
      out.emplace_back(h);
    } else if (tag == kRecentWrite) {
      RecentWrite w;
      w.video_id = r.uuid();
      w.user_id = r.uuid();
      w.until = r.i64();
      out.emplace_back(w);
    } else if (tag == kOutbox) {
      AppendOutbox o;
      o.topic = r.str();
      o.key = r.str();
      o.payload = r.str();
      out.emplace_back(std::move(o));
    } else if (tag == kMetricsDelta) {
      MetricsDelta d;
      d.comment_id = r.uuid();
      d.likes = r.i64();
      d.dislikes = r.i64();
      d.replies = r.i64();
      d.at = r.i64();
      out.emplace_back(d);
    } else if (tag == kStatsDelta) {
      StatsDelta d;
      d.video_id = r.uuid();
      d.comments = r.i64();
      d.reactions = r.i64();
      d.at = r.i64();
      out.emplace_back(d);
    } else {
      return not_ours("unknown record " + std::to_string(static_cast<int>(tag)));
    }
  }
  if (r.bad) return not_ours("truncated");
  return out;
}

}  // namespace commentd::store::cql
