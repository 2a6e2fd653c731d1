#include "workers/worker_manager.h"

#include <spdlog/spdlog.h>

namespace commentd::workers {

Status WorkerManager::register_worker(std::shared_ptr<Worker> w) {
  for (auto& x : workers_)
    if (x->name() == w->name()) return Error(Errc::conflict, "worker '" + w->name() + "' already registered");
  workers_.push_back(std::move(w));
  return ok_status();
}

Status WorkerManager::start_all() {
  for (; started_ < workers_.size(); ++started_) {
    auto s = workers_[started_]->start();
    if (!s) {
      spdlog::error("worker {} failed to start: {}", workers_[started_]->name(), s.error().message);
      stop_all();
      return s;
    }
    spdlog::info("worker {} started", workers_[started_]->name());
  }
  return ok_status();
}

void WorkerManager::stop_all() {
  while (started_ > 0) {
    auto& w = workers_[--started_];
    w->stop();
    spdlog::info("worker {} stopped", w->name());
  }
}

Scheduler::Scheduler(std::string name, const Clock& clock, std::chrono::milliseconds resolution)
    : name_(std::move(name)), clock_(clock), resolution_(resolution) {}

Scheduler::~Scheduler() { stop(); }

Status Scheduler::add_task(std::string name, std::chrono::milliseconds interval,
                           std::function<Status()> fn) {
  std::lock_guard lk(mu_);
  for (auto& t : tasks_)
    if (t.name == name) return Error(Errc::conflict, "task '" + name + "' already scheduled");
  TimeMs iv = interval.count();
  tasks_.push_back(Task{name, iv, std::move(fn), clock_.now_ms() + iv, TaskStats{name}});
  return ok_status();
}

size_t Scheduler::tick() {
  std::lock_guard run(run_mu_);
  std::vector<size_t> due;
  {
    std::lock_guard lk(mu_);
    TimeMs now = clock_.now_ms();
    for (size_t i = 0; i < tasks_.size(); ++i)
      if (tasks_[i].next_run <= now) due.push_back(i);
  }
  for (size_t i : due) {
    std::function<Status()> fn;
    {
      std::lock_guard lk(mu_);
      fn = tasks_[i].fn;
    }
    Status s = fn();  // outside the lock: tasks may take long
    std::lock_guard lk(mu_);
    Task& t = tasks_[i];
    TimeMs now = clock_.now_ms();
    t.stats.runs++;
    t.stats.last_run = now;
    if (!s) {
      t.stats.failures++;
      if (t.streak++ == 0 || now - t.last_logged >= kFailureLogInterval) {
        if (t.unlogged)
          spdlog::warn("task {}/{} failed: {} ({} more failures since the last report)", name_, t.name,
                       s.error().message, t.unlogged);
        else
          spdlog::warn("task {}/{} failed: {}", name_, t.name, s.error().message);
        t.stats.failures_logged++;
        t.last_logged = now;
        t.unlogged = 0;
      } else {
        t.unlogged++;
      }
    } else if (t.streak) {
      spdlog::info("task {}/{} succeeded again after {} failures in a row", name_, t.name, t.streak);
      t.streak = 0;
      t.unlogged = 0;
    }
    // Next run one interval after this one, never in a burst to catch up.
    t.next_run = now + t.interval;
  }
  return due.size();
}

std::vector<Scheduler::TaskStats> Scheduler::task_stats() const {
  std::lock_guard lk(mu_);
  std::vector<TaskStats> out;
  for (auto& t : tasks_) out.push_back(t.stats);
  return out;
}

Status Scheduler::start() {
  std::lock_guard lk(mu_);
  if (thread_.joinable()) return ok_status();
  stopping_ = false;
  thread_ = std::thread([this] {
    std::unique_lock lk(mu_);
    while (!stopping_) {
      lk.unlock();
      tick();
      lk.lock();
      cv_.wait_for(lk, resolution_, [&] { return stopping_; });
    }
  });
  return ok_status();
}

void Scheduler::stop() {
  {
    std::lock_guard lk(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

}  // namespace commentd::workers
