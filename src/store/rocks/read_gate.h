// Where a request-path read of the embedded store runs: inline on the caller's (event-loop)
// thread, or handed to the store's read executor and back.
//
// A RocksDB read answered from memory (memtables, block cache) takes microseconds; the hand-
// off to a reader thread and back costs two thread wake-ups, which on the 2-core machine
// measured 30 us of CPU per request of the mixed scenario (docs/operations.md, "Where reads
// run"). A read that must read a table file may wait for the disk, and must not hold an event
// loop. Which one a read will be cannot be known beforehand without a cache-only read, and
// those are unsafe on RocksDB 7.8.3 (issue 7, defect 1: they can stop early, or return a
// stale value with an OK status, and a point read of a merge operand chain can too). So the
// gate judges by the reads just done: every read, wherever it ran, reports whether it read
// any block from a table file (RocksDB's per-thread perf context, block_read_count) and how
// long it took. A read that read a table file and took longer than kSlowFileRead (the disk
// answered, not the OS page cache: an SSD's random read is about 100 us, a page-cache hit a
// few us) sends the reads of the next kHoldOff to the executor. A working set that no longer
// fits in memory sends reads to the executor within one read; once reads stop waiting on the
// disk for kHoldOff, they come back inline. Every read is a full read (kReadAllTier)
// wherever it runs: the gate moves work between threads, it never changes an answer.
//
// Time alone is not the signal: on a busy machine a read is often preempted, and a wall-clock
// rule sent nearly every read to the executor in the mixed scenario; so time is only asked
// of reads that touched a file (where preemption can only make the gate more careful). And a
// read that does not end: an inline read still running kStuck after it began (a hung or
// failing disk) closes the gate too, so it holds its own event loop but no other read
// follows it there. What a hung disk costs is stated in docs/operations.md ("Where reads
// run"); `storage.inline_reads: false` is for disks that hang.
//
// Thread-safe, lock-free.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>

namespace commentd::store::rocks {

class ReadGate {
 public:
  static constexpr int64_t kHoldOff = 1'000'000'000;  // ns
  static constexpr int64_t kStuck = 20'000'000;       // ns
  static constexpr int64_t kSlowFileRead = 250'000;   // ns

  explicit ReadGate(bool enabled = true) : enabled_(enabled) {}
  // Before the gate is shared (the store sets them once at open).
  void set_enabled(bool on) { enabled_ = on; }
  void set_slow_file_read(int64_t ns) { slow_file_read_ = ns; }

  bool inline_ok(int64_t now_ns) {
    if (!enabled_ || now_ns < hop_until_ns_.load(std::memory_order_relaxed)) return false;
    for (auto& s : started_) {
      const int64_t at = s.load(std::memory_order_relaxed);
      if (at != 0 && now_ns - at > kStuck) {
        hop_until_ns_.store(now_ns + kHoldOff, std::memory_order_relaxed);
        return false;
      }
    }
    return true;
  }

  // Around each inline read: begin() returns what end() takes. A thread has one slot
  // (threads beyond kSlots share them; a shared slot only makes the check weaker).
  int64_t begin(int64_t now_ns) {
    const int64_t at = now_ns == 0 ? 1 : now_ns;  // 0 marks a free slot
    slot().store(at, std::memory_order_relaxed);
    return at;
  }
  void end(int64_t began) {
    int64_t expected = began;
    slot().compare_exchange_strong(expected, 0, std::memory_order_relaxed);
  }

  // A read ended at `now_ns` after `took_ns`; `read_files`: it read at least one block from a
  // table file.
  void report(int64_t now_ns, bool read_files, int64_t took_ns) {
    if (read_files && took_ns > slow_file_read_) hop_until_ns_.store(now_ns + kHoldOff, std::memory_order_relaxed);
  }

 private:
  static constexpr size_t kSlots = 16;
  std::atomic<int64_t>& slot() {
    static std::atomic<size_t> next{0};
    thread_local const size_t mine = next.fetch_add(1, std::memory_order_relaxed) % kSlots;
    return started_[mine];
  }

  bool enabled_;
  int64_t slow_file_read_ = kSlowFileRead;
  std::atomic<int64_t> hop_until_ns_{0};
  std::array<std::atomic<int64_t>, kSlots> started_{};  // inline reads in progress: start, or 0
};

}  // namespace commentd::store::rocks
