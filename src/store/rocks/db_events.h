// RocksDB's side channels, kept off the data volume and visible to the store:
//  - SpdlogLogger: RocksDB's info log goes to the service log instead of a LOG file in
//    data_dir. A LOG file on a full volume is what aborted the process: its writer, once a
//    write failed, asserts on the next one (Debian's librocksdb keeps assertions on).
//  - HealthListener: tracks RocksDB's background error (e.g. no space), set when RocksDB
//    stops writes and cleared when its recovery (automatic for no-space, via the
//    SstFileManager) succeeds; and counts the events after which the default column
//    family's memtable may be empty (see RocksStore::arm_wal_recovery).
// Internal to store/rocks. Thread-safe.
#pragma once

#include <rocksdb/env.h>
#include <rocksdb/listener.h>

#include <atomic>
#include <mutex>
#include <string>

namespace commentd::store::rocks {

class SpdlogLogger final : public rocksdb::Logger {
 public:
  // RocksDB's INFO lines (flushes, compactions) are logged at debug; WARN and up as such.
  SpdlogLogger() : rocksdb::Logger(rocksdb::InfoLogLevel::INFO_LEVEL) {}
  using rocksdb::Logger::Logv;
  void Logv(const char* format, va_list ap) override;
  void Logv(const rocksdb::InfoLogLevel level, const char* format, va_list ap) override;
};

class HealthListener final : public rocksdb::EventListener {
 public:
  const char* Name() const override { return "commentd.HealthListener"; }
  void OnBackgroundError(rocksdb::BackgroundErrorReason reason, rocksdb::Status* bg_error) override;
  void OnErrorRecoveryEnd(const rocksdb::BackgroundErrorRecoveryInfo& info) override;
  void OnMemTableSealed(const rocksdb::MemTableInfo& info) override;

  // Moves on every background error and every seal of the default column family's memtable.
  uint64_t memtable_epoch() const { return epoch_.load(std::memory_order_acquire); }

  // True while RocksDB holds a background error (writes may be refused).
  bool degraded() const { return degraded_.load(std::memory_order_acquire); }
  std::string last_error() const;

 private:
  std::atomic<bool> degraded_{false};
  std::atomic<uint64_t> epoch_{0};
  mutable std::mutex mu_;
  std::string last_error_;  // GUARDED_BY(mu_)
};

}  // namespace commentd::store::rocks
