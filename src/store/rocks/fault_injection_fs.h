// Test-only: a RocksDB FileSystem that can simulate a power loss.
//
// Model (what survives a power cut on a POSIX file system):
//  - a file's bytes survive up to the size it had at its last Sync/Fsync; anything
//    appended after that is lost (RangeSync, Flush and Close promise nothing);
//  - a file created since the last Fsync of its directory is lost entirely, even if the
//    file itself was synced (its directory entry was never made durable);
//  - renames, deletes and directory creation are taken as durable at once (lenient: RocksDB
//    fsyncs the directory after each rename it relies on).
// set_full(true) makes the volume full: appends and syncs fail with NoSpace and the free space
// reads 0, until set_full(false).
// crash() freezes the disk: from then on every mutating call succeeds and does nothing, so
// the store can be closed normally without writing anything more. drop_unsynced() then
// rewinds the real files to what the model says survived, and the store can be reopened
// with any file system.
//
// Thread-safe.
#pragma once

#include <rocksdb/env.h>
#include <rocksdb/file_system.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>

namespace commentd::store::rocks::test {

class FaultInjectionFs final : public rocksdb::FileSystemWrapper {
 public:
  explicit FaultInjectionFs(std::shared_ptr<rocksdb::FileSystem> base = rocksdb::FileSystem::Default())
      : FileSystemWrapper(std::move(base)) {}

  const char* Name() const override { return "commentd.FaultInjectionFs"; }

  // The power goes out: nothing written from now on reaches the disk.
  void crash() {
    std::lock_guard lk(mu_);
    crashed_ = true;
  }
  bool crashed() const {
    std::lock_guard lk(mu_);
    return crashed_;
  }
  void set_full(bool full) { full_.store(full); }
  bool full() const { return full_.load(); }

  rocksdb::IOStatus GetFreeSpace(const std::string& path, const rocksdb::IOOptions& o, uint64_t* free,
                                 rocksdb::IODebugContext* dbg) override {
    if (full()) {
      *free = 0;
      return rocksdb::IOStatus::OK();
    }
    return target()->GetFreeSpace(path, o, free, dbg);
  }

  // REQUIRES: crash() was called and every file is closed (the DB is closed). Truncates each
  // written file to its last synced size and deletes files whose directory entry was never
  // synced. Returns the number of bytes and files dropped.
  std::pair<uint64_t, size_t> drop_unsynced() {
    std::lock_guard lk(mu_);
    uint64_t bytes = 0;
    size_t files = 0;
    for (auto& [name, st] : files_) {
      std::error_code ec;
      if (!st.dir_synced) {
        if (std::filesystem::remove(name, ec)) ++files;
        continue;
      }
      auto size = std::filesystem::file_size(name, ec);
      if (!ec && size > st.synced) {
        bytes += size - st.synced;
        std::filesystem::resize_file(name, st.synced, ec);
      }
    }
    files_.clear();
    return {bytes, files};
  }

  rocksdb::IOStatus NewWritableFile(const std::string& f, const rocksdb::FileOptions& o,
                                    std::unique_ptr<rocksdb::FSWritableFile>* r,
                                    rocksdb::IODebugContext* dbg) override {
    return open_writable(f, o, r, dbg, /*reopen=*/false);
  }
  rocksdb::IOStatus ReopenWritableFile(const std::string& f, const rocksdb::FileOptions& o,
                                       std::unique_ptr<rocksdb::FSWritableFile>* r,
                                       rocksdb::IODebugContext* dbg) override {
    return open_writable(f, o, r, dbg, /*reopen=*/true);
  }
  rocksdb::IOStatus ReuseWritableFile(const std::string& f, const std::string& old,
                                      const rocksdb::FileOptions& o,
                                      std::unique_ptr<rocksdb::FSWritableFile>* r,
                                      rocksdb::IODebugContext* dbg) override {
    if (frozen()) {
      r->reset(new NullFile());
      return rocksdb::IOStatus::OK();
    }
    auto s = rocksdb::FileSystemWrapper::RenameFile(old, f, {}, dbg);
    if (!s.ok()) return s;
    return open_writable(f, o, r, dbg, /*reopen=*/true);
  }
  rocksdb::IOStatus NewDirectory(const std::string& name, const rocksdb::IOOptions& io,
                                 std::unique_ptr<rocksdb::FSDirectory>* result,
                                 rocksdb::IODebugContext* dbg) override {
    std::unique_ptr<rocksdb::FSDirectory> d;
    auto s = target()->NewDirectory(name, io, &d, dbg);
    if (s.ok()) result->reset(new Dir(std::move(d), this, normal_dir(name)));
    return s;
  }
  rocksdb::IOStatus DeleteFile(const std::string& f, const rocksdb::IOOptions& o,
                               rocksdb::IODebugContext* dbg) override {
    if (frozen()) return rocksdb::IOStatus::OK();
    {
      std::lock_guard lk(mu_);
      files_.erase(normal(f));
    }
    return target()->DeleteFile(f, o, dbg);
  }
  rocksdb::IOStatus RenameFile(const std::string& s, const std::string& t,
                               const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg) override {
    if (frozen()) return rocksdb::IOStatus::OK();
    auto st = target()->RenameFile(s, t, o, dbg);
    if (st.ok()) {
      std::lock_guard lk(mu_);
      auto it = files_.find(normal(s));
      if (it != files_.end()) {
        auto state = it->second;
        files_.erase(it);
        state.dir_synced = true;  // renames are taken as durable (see the model above)
        files_[normal(t)] = state;
      }
    }
    return st;
  }
  rocksdb::IOStatus Truncate(const std::string& f, size_t size, const rocksdb::IOOptions& o,
                             rocksdb::IODebugContext* dbg) override {
    if (frozen()) return rocksdb::IOStatus::OK();
    return target()->Truncate(f, size, o, dbg);
  }
  rocksdb::IOStatus LinkFile(const std::string& s, const std::string& t, const rocksdb::IOOptions& o,
                             rocksdb::IODebugContext* dbg) override {
    if (frozen()) return rocksdb::IOStatus::OK();
    return target()->LinkFile(s, t, o, dbg);
  }
  rocksdb::IOStatus NewRandomRWFile(const std::string& f, const rocksdb::FileOptions& o,
                                    std::unique_ptr<rocksdb::FSRandomRWFile>* r,
                                    rocksdb::IODebugContext* dbg) override {
    if (frozen()) return rocksdb::IOStatus::NotSupported("frozen");
    return target()->NewRandomRWFile(f, o, r, dbg);
  }

 private:
  struct FileState {
    uint64_t synced = 0;
    bool dir_synced = false;
  };

  static std::string normal(const std::string& p) {
    return std::filesystem::path(p).lexically_normal().string();
  }
  static std::string normal_dir(const std::string& p) {
    auto d = std::filesystem::path(p).lexically_normal();
    return (d.has_filename() ? d : d.parent_path()).string();
  }
  bool frozen() const {
    std::lock_guard lk(mu_);
    return crashed_;
  }
  void on_sync(const std::string& name, uint64_t size) {
    std::lock_guard lk(mu_);
    if (crashed_) return;
    auto it = files_.find(name);
    if (it != files_.end()) it->second.synced = std::max(it->second.synced, size);
  }
  void on_dir_sync(const std::string& dir) {
    std::lock_guard lk(mu_);
    if (crashed_) return;
    for (auto& [name, st] : files_)
      if (std::filesystem::path(name).parent_path().string() == dir) st.dir_synced = true;
  }

  // Forwards to the real file until the crash; afterwards accepts and drops everything.
  class File final : public rocksdb::FSWritableFileOwnerWrapper {
   public:
    File(std::unique_ptr<rocksdb::FSWritableFile> f, FaultInjectionFs* fs, std::string name, uint64_t size)
        : FSWritableFileOwnerWrapper(std::move(f)), fs_(fs), name_(std::move(name)), size_(size) {}
    rocksdb::IOStatus Append(const rocksdb::Slice& d, const rocksdb::IOOptions& o,
                             rocksdb::IODebugContext* dbg) override {
      if (fs_->frozen()) return rocksdb::IOStatus::OK();
      if (fs_->full()) return rocksdb::IOStatus::NoSpace("FaultInjectionFs: volume full");
      auto s = FSWritableFileOwnerWrapper::Append(d, o, dbg);
      if (s.ok()) size_ += d.size();
      return s;
    }
    rocksdb::IOStatus Append(const rocksdb::Slice& d, const rocksdb::IOOptions& o,
                             const rocksdb::DataVerificationInfo&, rocksdb::IODebugContext* dbg) override {
      return Append(d, o, dbg);
    }
    rocksdb::IOStatus PositionedAppend(const rocksdb::Slice&, uint64_t, const rocksdb::IOOptions&,
                                       rocksdb::IODebugContext*) override {
      return rocksdb::IOStatus::NotSupported("PositionedAppend");
    }
    rocksdb::IOStatus PositionedAppend(const rocksdb::Slice&, uint64_t, const rocksdb::IOOptions&,
                                       const rocksdb::DataVerificationInfo&,
                                       rocksdb::IODebugContext*) override {
      return rocksdb::IOStatus::NotSupported("PositionedAppend");
    }
    rocksdb::IOStatus Truncate(uint64_t size, const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg) override {
      if (fs_->frozen()) return rocksdb::IOStatus::OK();
      auto s = FSWritableFileOwnerWrapper::Truncate(size, o, dbg);
      if (s.ok()) size_ = size;
      return s;
    }
    rocksdb::IOStatus Flush(const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg) override {
      if (fs_->frozen()) return rocksdb::IOStatus::OK();
      return FSWritableFileOwnerWrapper::Flush(o, dbg);
    }
    rocksdb::IOStatus Sync(const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg) override {
      if (fs_->frozen()) return rocksdb::IOStatus::OK();
      if (fs_->full()) return rocksdb::IOStatus::NoSpace("FaultInjectionFs: volume full");
      uint64_t at = size_.load();  // appends racing this sync are not counted as synced
      auto s = FSWritableFileOwnerWrapper::Sync(o, dbg);
      if (s.ok()) fs_->on_sync(name_, at);
      return s;
    }
    rocksdb::IOStatus Fsync(const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg) override {
      if (fs_->frozen()) return rocksdb::IOStatus::OK();
      if (fs_->full()) return rocksdb::IOStatus::NoSpace("FaultInjectionFs: volume full");
      uint64_t at = size_.load();
      auto s = FSWritableFileOwnerWrapper::Fsync(o, dbg);
      if (s.ok()) fs_->on_sync(name_, at);
      return s;
    }
    rocksdb::IOStatus RangeSync(uint64_t, uint64_t, const rocksdb::IOOptions&,
                                rocksdb::IODebugContext*) override {
      return rocksdb::IOStatus::OK();  // sync_file_range: no durability promise
    }
    uint64_t GetFileSize(const rocksdb::IOOptions&, rocksdb::IODebugContext*) override { return size_; }

   private:
    FaultInjectionFs* fs_;
    std::string name_;
    std::atomic<uint64_t> size_;
  };

  // Handed out after the crash: accepts everything, writes nothing.
  class NullFile final : public rocksdb::FSWritableFile {
   public:
    rocksdb::IOStatus Append(const rocksdb::Slice&, const rocksdb::IOOptions&, rocksdb::IODebugContext*) override {
      return rocksdb::IOStatus::OK();
    }
    rocksdb::IOStatus Append(const rocksdb::Slice&, const rocksdb::IOOptions&, const rocksdb::DataVerificationInfo&,
                             rocksdb::IODebugContext*) override {
      return rocksdb::IOStatus::OK();
    }
    rocksdb::IOStatus Close(const rocksdb::IOOptions&, rocksdb::IODebugContext*) override { return rocksdb::IOStatus::OK(); }
    rocksdb::IOStatus Flush(const rocksdb::IOOptions&, rocksdb::IODebugContext*) override { return rocksdb::IOStatus::OK(); }
    rocksdb::IOStatus Sync(const rocksdb::IOOptions&, rocksdb::IODebugContext*) override { return rocksdb::IOStatus::OK(); }
    uint64_t GetFileSize(const rocksdb::IOOptions&, rocksdb::IODebugContext*) override { return 0; }
  };

  class Dir final : public rocksdb::FSDirectoryWrapper {
   public:
    Dir(std::unique_ptr<rocksdb::FSDirectory> d, FaultInjectionFs* fs, std::string name)
        : FSDirectoryWrapper(std::move(d)), fs_(fs), name_(std::move(name)) {}
    rocksdb::IOStatus Fsync(const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg) override {
      if (fs_->frozen()) return rocksdb::IOStatus::OK();
      auto s = FSDirectoryWrapper::Fsync(o, dbg);
      if (s.ok()) fs_->on_dir_sync(name_);
      return s;
    }
    rocksdb::IOStatus FsyncWithDirOptions(const rocksdb::IOOptions& o, rocksdb::IODebugContext* dbg,
                                          const rocksdb::DirFsyncOptions& d) override {
      if (fs_->frozen()) return rocksdb::IOStatus::OK();
      auto s = FSDirectoryWrapper::FsyncWithDirOptions(o, dbg, d);
      if (s.ok()) fs_->on_dir_sync(name_);
      return s;
    }

   private:
    FaultInjectionFs* fs_;
    std::string name_;
  };

  rocksdb::IOStatus open_writable(const std::string& f, const rocksdb::FileOptions& o,
                                  std::unique_ptr<rocksdb::FSWritableFile>* r,
                                  rocksdb::IODebugContext* dbg, bool reopen) {
    if (frozen()) {
      r->reset(new NullFile());
      return rocksdb::IOStatus::OK();
    }
    std::string name = normal(f);
    std::unique_ptr<rocksdb::FSWritableFile> file;
    uint64_t size = 0;
    bool existed = std::filesystem::exists(name);
    auto s = reopen ? target()->ReopenWritableFile(f, o, &file, dbg)
                    : target()->NewWritableFile(f, o, &file, dbg);
    if (!s.ok()) return s;
    if (reopen && existed) size = std::filesystem::file_size(name);
    {
      std::lock_guard lk(mu_);
      auto& st = files_[name];
      // A new (or truncated) file has nothing durable yet; a reopened one keeps its bytes.
      st.synced = reopen && existed ? size : 0;
      st.dir_synced = reopen && existed;
    }
    r->reset(new File(std::move(file), this, name, size));
    return s;
  }

  mutable std::mutex mu_;
  bool crashed_ = false;                   // GUARDED_BY(mu_)
  std::atomic<bool> full_{false};
  std::map<std::string, FileState> files_;  // GUARDED_BY(mu_): files written since start
};

}  // namespace commentd::store::rocks::test
