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

// A full volume (or RocksDB's space limit) is the client-visible insufficient_storage: RocksDB
// resumes writes by itself once space returns (RocksStore::open), so a retry may succeed.
inline constexpr int kStorageFullRetryAfterS = 5;
inline Error storage_error(const rocksdb::Status& s) {
  if (s.IsNoSpace() || s.subcode() == rocksdb::Status::kSpaceLimit)
    return Error(Errc::insufficient_storage, "storage is full; writes resume when space is freed",
                 "storage_full", kStorageFullRetryAfterS);
  return Error(Errc::internal, "storage: " + s.ToString(), "storage_error");
}

// Turns a read status into a Result error; NotFound is not an error here. Every read is a
// full read (never kBlockCacheTier), so Incomplete is an error like any other.
inline std::optional<Error> read_error(const rocksdb::Status& s) {
  if (s.ok() || s.IsNotFound()) return std::nullopt;
  return storage_error(s);
}

inline const std::string kConsumerPrefix = "consumer/";
inline constexpr size_t kHiddenSlots = 2;  // count of non-public comments, recent-write mark (max)
// The last sequence handed out per log, written with every group that appends: a trimmed
// (even empty) log still resumes after it, so a sequence is never reused.
inline const std::string kOpSeqKey = "seq/reaction_ops";
inline const std::string kOutboxSeqKey = "seq/outbox";
// Written without the WAL to keep the default memtable non-empty (RocksStore::arm_wal_recovery).
inline const std::string kWalArmKey = "meta/wal_recovery_armed";

}  // namespace commentd::store::rocks::internal
