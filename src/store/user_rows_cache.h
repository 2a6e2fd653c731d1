// UserRowsCache: a shared cache of the two per-user rows that every signed-in list request
// reads (docs/cluster.md "What a request costs on the cluster"): the user's view of a video
// (read-your-writes mark, hidden comments) and the user's reactions in it. The CQL store asks
// it before Cassandra when one is set (redis/user_rows.h implements it in Redis).
//
// Exactness contract (the implementation's, see redis/guarded_copies.h): a lookup that misses
// hands out a token; the store reads both rows from storage and fills under that token; the
// fill is refused if a write to the key came after the lookup. After every write to either
// row is durable and before it is acknowledged, the store tells the cache (`after_write`):
// - a view row written, or a write whose outcome is unknown (it failed: it may have landed
//   in part): the copy goes;
// - a user_reactions row written: it is written into the copy, if there is one, as CQL keeps
//   it: the newer write timestamp wins (a reaction then costs the user's next read no storage
//   read). Why that is exact whatever the order: every row in a copy carries its write
//   timestamp, withdrawn reactions included (the store writes them as rows of type none, not
//   as tombstones, so a read sees their time); a row durable before a fill's storage read is in
//   that read, or lost there to a newer row, so writing it again into the copy changes nothing;
//   a row durable after the read began comes after the lookup, so its call refuses the fill or
//   finds the copy. Two different rows of one timestamp (CQL then keeps one by value) drop
//   the copy.
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

// A user_reactions row: its comment, type (none: a withdrawn reaction) and write timestamp
// (the store's microseconds, CQL's WRITETIME; 0 in rows written before they had one).
struct UserReaction {
  Uuid comment_id;
  ReactionType type = ReactionType::none;
  int64_t at = 0;
  bool operator==(const UserReaction&) const = default;
};

struct UserRows {
  Store::UserView view;
  std::vector<UserReaction> reactions;  // every reaction row of the user in the video
  // The live reactions (none left out), as Store::ViewAndReactions gives them.
  std::vector<std::pair<Uuid, ReactionType>> live() const {
    std::vector<std::pair<Uuid, ReactionType>> out;
    out.reserve(reactions.size());
    for (auto& r : reactions)
      if (r.type != ReactionType::none) out.emplace_back(r.comment_id, r.type);
    return out;
  }
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
    // A miss: fill under it (none: the cache failed; do not fill). With rows: the copy is near
    // its end and this lookup is the one to refresh it (refresh ahead): serve the rows, then
    // read storage and fill under the token, behind the read.
    std::optional<std::string> token;
    // With rows and no token: they came from this node's own copy of the shared copy, past half
    // its life; call renew() behind the read, so it is renewed before it ends.
    bool renew = false;
  };
  virtual boost::asio::awaitable<Lookup> lookup(Uuid video_id, Uuid user_id, Deadline d) = 0;
  // Looks the shared copy up again (not the node's own), keeping it as the node's copy; a token
  // as lookup() gives one (the shared copy near its end, or gone): read storage and fill.
  virtual boost::asio::awaitable<Lookup> renew(Uuid, Uuid, Deadline) { co_return Lookup{}; }
  virtual boost::asio::awaitable<void> fill(Uuid video_id, Uuid user_id, std::string token, const UserRows& rows,
                                            Deadline d) = 0;
  // A user_reactions row now durable; `mark`: also leave it as a written mark (a request's row).
  struct WrittenRow {
    RowMark row;
    bool mark = false;
  };
  // REQUIRES: after the writes are durable (or failed). `dropped`: the (video, user) keys whose
  // copies go; `written`: rows written into their key's copy (above). Failures are counted,
  // not returned: the copies then expire within the cache's TTL (the staleness bound).
  virtual boost::asio::awaitable<void> after_write(std::vector<std::pair<Uuid, Uuid>> dropped,
                                                   std::vector<WrittenRow> written, Deadline d) = 0;
  // For each row the caller is about to write: true if a mark covers it (skip the write).
  // Takes the marks no newer than the asked row (they have served); a newer one stays for
  // its own op. Failures answer false (write it).
  virtual boost::asio::awaitable<std::vector<bool>> take_written(std::vector<RowMark> rows, Deadline d) = 0;
};

}  // namespace commentd::store
