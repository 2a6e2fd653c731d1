// UserRowsCache: a shared cache of the two per-user rows that every signed-in list request
// reads (docs/cluster.md "What a request costs on the cluster"): the user's view of a video
// (read-your-writes mark, hidden comments) and the user's reactions in it. The CQL store asks
// it before Cassandra when one is set (redis/user_rows.h implements it in Redis).
//
// Exactness contract (the implementation's, see redis/guarded_copies.h): a lookup that misses
// hands out a token; the store reads both rows from storage and fills under that token; the
// fill is refused if an invalidation of the key came after the lookup. The store invalidates
// a (video, user) after every write to either row is durable and before it is acknowledged.
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
  virtual boost::asio::awaitable<void> invalidate(std::vector<std::pair<Uuid, Uuid>> video_user,
                                                  Deadline d) = 0;
};

}  // namespace commentd::store
