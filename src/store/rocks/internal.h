// Helpers shared by the RocksStore's read side (rocks_store.cpp) and write side
// (rocks_writer.cpp). Internal to store/rocks.
#pragma once

#include <rocksdb/db.h>

#include <optional>
#include <string>
#include <string_view>

#include "core/error.h"
#include "core/model.h"
#include "store/rocks/codec.h"
#include "store/store.h"

namespace commentd::store::rocks::internal {

inline std::string_view sv(const rocksdb::Slice& s) { return {s.data(), s.size()}; }

inline Error storage_error(const rocksdb::Status& s) {
  return Error(Errc::internal, "storage: " + s.ToString(), "storage_error");
}

// Turns a read status into a Result error; NotFound is not an error here. Every read is a
// full read (never kBlockCacheTier), so Incomplete is an error like any other.
inline std::optional<Error> read_error(const rocksdb::Status& s) {
  if (s.ok() || s.IsNotFound()) return std::nullopt;
  return storage_error(s);
}

inline const std::string kConsumerPrefix = "consumer/";
inline constexpr size_t kHiddenSlots = 2;  // count, (unused max slot)
// The last sequence handed out per log, written with every group that appends: a trimmed
// (even empty) log still resumes after it, so a sequence is never reused.
inline const std::string kOpSeqKey = "seq/reaction_ops";
inline const std::string kOutboxSeqKey = "seq/outbox";

}  // namespace commentd::store::rocks::internal
