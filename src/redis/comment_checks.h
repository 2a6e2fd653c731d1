// The comment checks' shared layer in Redis (service/comment_checks.h SharedCommentChecks):
// what a reaction needs of a comment (its video, author, status and version, never the
// content), one copy per comment for every node, guarded by a generation token
// (redis/guarded_copies.h) so a fill whose storage read raced a change is refused.
//
// Why it is right: the node that commits a change to a comment (edit, delete, moderation)
// calls forget() after the change is durable and before its answer, which deletes the copy
// and sets a fresh token; so a node that looks up after that answer reads storage, and a
// fill from a read that began before it is refused. The comment's event, on every other
// node (the cache-invalidation subscriber), forgets it once more, which covers a change whose
// node died before its forget (its commit intent rolled forward by another node's sweep). A
// forget that cannot reach Redis leaves the copy for at most `ttl_ms`.
// Only a comment that exists is filled: an absence is never kept (the comment may be created
// on another node a moment later).
//
// Keys (the comment's hash tag: single-slot scripts in Redis Cluster):
//   <prefix>cc:{<comment_id>}    "c1 <video_id> <author_id> <status> <version>"
//   <prefix>cc:{<comment_id>}:g  its generation token
//
// Thread-safe; completes on the caller's executor.
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <prometheus/metric_family.h>

#include "redis/client.h"
#include "redis/guarded_copies.h"
#include "service/comment_checks.h"

namespace commentd::redis {

struct CommentChecksOptions {
  std::string prefix = "cd:";
  int64_t ttl_ms = 60'000;  // a copy's life: the staleness bound if a forget is lost
};

struct CommentChecksStats : CopyStats {   // errors: also forgets that failed (the copy waits out the TTL)
  std::atomic<uint64_t> forgotten{0};  // copies dropped after a change
};

// The copy's text, and back (nullopt: not a copy of this format). The comment's id is the key's.
std::string encode_comment_check(const Comment& c);
std::optional<Comment> decode_comment_check(const Uuid& id, std::string_view s);

class RedisCommentChecks final : public service::SharedCommentChecks {
 public:
  RedisCommentChecks(Client& client, CommentChecksOptions opts);

  asio::awaitable<Lookup> lookup(Uuid id, Deadline d) override;
  asio::awaitable<void> fill(Comment c, std::string token, Deadline d) override;
  asio::awaitable<Status> forget(Uuid id, Deadline d) override;

  const CommentChecksStats& stats() const { return stats_; }

 private:
  std::string key(const Uuid& id) const { return opts_.prefix + "cc:{" + id.str() + "}"; }
  const CommentChecksOptions opts_;
  CommentChecksStats stats_;
  GuardedCopies copies_;
};

// commentd_redis_comment_checks_{hits,misses,fills,fills_refused,forgotten,errors}_total.
void append_metrics(const CommentChecksStats& s, std::vector<prometheus::MetricFamily>& out);

}  // namespace commentd::redis
