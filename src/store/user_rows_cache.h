// UserRowsCache: a shared cache of the two per-user rows that every signed-in list request
// reads (docs/cluster.md "What a request costs on the cluster"): the user's view of a video
// (read-your-writes mark, hidden comments) and the user's reactions in it. The CQL store asks
// it before Cassandra when one is set (redis/user_rows.h implements it in Redis).
//
// Exactness contract (the implementation's, see redis/guarded_copies.h): a lookup that misses
// hands out a token; the store reads both rows from storage and fills under that token; the
// fill is refused if an invalidation of the key came after the lookup. The store invalidates
// a (video, user) after every write to either row is durable and before it is acknowledged.
//
// Written marks (the reaction owner's skipped rewrite, docs/cluster.md "Reaction apply"): on
// the bus, a reaction's user_reactions row is written twice, by the request that accepted
// the op (read-your-writes) and by the comment's owner when it applies the op (it mends the
// row when the accepting node died before its write). The request's commit, once its row is
// durable, leaves a mark (the row's write timestamp and type); the owner's commit takes the
// marks of its rows and writes only the rows no mark covers. A mark covers a row when it is
// newer, or of the same timestamp and type (the same cell value: writing it again changes
// nothing). A mark lost, expired, or never made (Redis away, a failed write, a node that
// died) only makes the owner write the row as before: marks can skip a write, never lose one.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/deadline.h"
#include "core/model.h"
#include "store/store.h"

namespace commentd::store {

struct UserRows {
  Store::UserView view;
  std::vector<std::pair<Uuid, ReactionType>> reactions;  // every reaction of the user in the video
};

// A user_reactions row of (video, user, comment) written with write timestamp `at` (the
// store's microseconds) and `type` (none: a delete).
struct RowMark {
  Uuid video_id;
  Uuid user_id;
  Uuid comment_id;
  int64_t at = 0;
  ReactionType type = ReactionType::none;
};

class UserRowsCache {
 public:
  virtual ~UserRowsCache() = default;
  struct Lookup {
    std::optional<UserRows> rows;      // a hit
    std::optional<std::string> token;  // a miss: fill under it (none: the cache failed; do not fill)
  };
  virtual boost::asio::awaitable<Lookup> lookup(Uuid video_id, Uuid user_id, Deadline d) = 0;
  virtual boost::asio::awaitable<void> fill(Uuid video_id, Uuid user_id, std::string token, const UserRows& rows,
                                            Deadline d) = 0;
  // REQUIRES: after the writes to these keys' rows are durable. Failures are counted, not
  // returned: the copies then expire within the cache's TTL (the staleness bound).
  // `written`: rows of these keys now durable, marked (above) beside the invalidation.
  virtual boost::asio::awaitable<void> invalidate(std::vector<std::pair<Uuid, Uuid>> video_user,
                                                  std::vector<RowMark> written, Deadline d) = 0;
  // For each row the caller is about to write: true if a mark covers it (skip the write).
  // Takes the marks no newer than the asked row (they have served); a newer one stays for
  // its own op. Failures answer false (write it).
  virtual boost::asio::awaitable<std::vector<bool>> take_written(std::vector<RowMark> rows, Deadline d) = 0;
};

}  // namespace commentd::store
