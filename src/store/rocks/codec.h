// Byte encodings of RocksDB keys and values. Keys are order-preserving: iterating a column
// family in byte order gives the clustering order of the table it stands for: partition
// key, then created_at DESC, then id DESC. The plan's CQL tables break created_at ties by
// id ASC; we break them by id DESC so that "newest" is strictly reverse creation order even
// for comments made in the same millisecond (ids are time-ordered), and "oldest", iterated
// backwards, strictly creation order. Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/model.h"

namespace commentd::store::rocks {

void put_u64be(std::string& out, uint64_t v);
uint64_t get_u64be(std::string_view in);  // REQUIRES: in.size() >= 8
// created_at DESC: the bitwise complement of a non-negative ms timestamp, big-endian.
void put_desc_time(std::string& out, TimeMs t);
TimeMs get_desc_time(std::string_view in);
void put_uuid(std::string& out, const Uuid& u);
Uuid get_uuid(std::string_view in);  // REQUIRES: in.size() >= 16

// partition(16 or more bytes) + desc(created_at) + desc(id)
std::string index_key(std::string_view partition, TimeMs created_at, const Uuid& id);
std::string uuid_key(const Uuid& u);
std::string pair_key(const Uuid& a, const Uuid& b);
std::string bucket_partition(const Uuid& video_id, std::string_view bucket);
// The position encoded at the end of an index key.
struct IndexPos { TimeMs created_at; Uuid id; };
IndexPos parse_index_suffix(std::string_view key);  // REQUIRES: key.size() >= 24

std::string encode_comment(const Comment& c);
std::optional<Comment> decode_comment(const Uuid& id, std::string_view v);

std::string encode_reaction_row(const ReactionRow& r);
std::optional<ReactionRow> decode_reaction_row(std::string_view v);

std::string encode_op(const ReactionOp& op);
std::optional<ReactionOp> decode_op(uint64_t seq, std::string_view v);

// Counter rows: fixed arrays of int64 little-endian; the last slot is last_updated (max),
// the others add. Used by the merge operator and by readers.
inline constexpr size_t kMetricsSlots = 4;  // likes, dislikes, replies, last_updated
inline constexpr size_t kStatsSlots = 3;    // comments, reactions, last_updated
std::string encode_counters(const int64_t* slots, size_t n);
void decode_counters(std::string_view v, int64_t* slots, size_t n);  // missing slots = 0

}  // namespace commentd::store::rocks
