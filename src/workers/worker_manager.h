// The plan's worker framework: Worker (start/stop/name), WorkerManager (register, start all
// in order, stop all in reverse with a clean drain) and Scheduler (named tasks at intervals,
// driven by an injectable Clock so tests advance time instead of sleeping).
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/clock.h"
#include "core/error.h"

namespace commentd::workers {

class Worker {
 public:
  virtual ~Worker() = default;
  virtual Status start() = 0;
  // REQUIRES: returns only when the worker's own work is drained and its threads joined.
  virtual void stop() = 0;
  virtual std::string name() const = 0;
};

// Not thread-safe: used by the wiring thread only.
class WorkerManager {
 public:
  // Errc::conflict if the name is taken.
  Status register_worker(std::shared_ptr<Worker> w);
  // Starts in registration order; on a failure stops those already started.
  Status start_all();
  // Stops in reverse order.
  void stop_all();
  size_t size() const { return workers_.size(); }

 private:
  std::vector<std::shared_ptr<Worker>> workers_;
  size_t started_ = 0;
};

// Runs named tasks every `interval`, measured on `clock`. tick() runs whatever is due now
// (tests call it after advancing a ManualClock); start() runs tick() on a thread every
// `resolution` of real time. A task's error is counted, and it runs again next time. It is
// logged at once, then at most once per kFailureLogInterval while the task keeps failing
// (with the count of those not logged), and its recovery is logged: a dependency that is away
// for an hour gives about 60 lines per task, not one per run. Thread-safe.
class Scheduler : public Worker {
 public:
  struct TaskStats {
    std::string name;
    uint64_t runs = 0;
    uint64_t failures = 0;
    uint64_t failures_logged = 0;
    TimeMs last_run = 0;
  };
  static constexpr TimeMs kFailureLogInterval = 60'000;

  Scheduler(std::string name, const Clock& clock,
            std::chrono::milliseconds resolution = std::chrono::milliseconds(100));
  ~Scheduler() override;

  // Errc::conflict if the name is taken. The first run is one interval after add_task.
  Status add_task(std::string name, std::chrono::milliseconds interval, std::function<Status()> fn);
  // Runs every due task once; returns how many ran.
  size_t tick();
  std::vector<TaskStats> task_stats() const;

  Status start() override;
  void stop() override;
  std::string name() const override { return name_; }
  // True once stop() began: a long task polls it to end early.
  bool stopping() const {
    std::lock_guard lk(mu_);
    return stopping_;
  }

 private:
  struct Task {
    std::string name;
    TimeMs interval;
    std::function<Status()> fn;
    TimeMs next_run;
    TaskStats stats;
    uint64_t streak = 0;      // failures in a row
    uint64_t unlogged = 0;    // of those, not logged yet
    TimeMs last_logged = 0;   // the streak's last logged failure
  };
  const std::string name_;
  const Clock& clock_;
  const std::chrono::milliseconds resolution_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Task> tasks_;  // GUARDED_BY(mu_)
  bool stopping_ = false;    // GUARDED_BY(mu_)
  std::mutex run_mu_;        // serializes tick(): a task never runs concurrently with itself
  std::thread thread_;
};

}  // namespace commentd::workers
