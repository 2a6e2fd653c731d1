#include "workers/worker_manager.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

namespace commentd::workers {
namespace {

// Records start/stop calls into a shared log; fails to start when told to.
class FakeWorker final : public Worker {
 public:
  FakeWorker(std::string name, std::vector<std::string>& log, bool fail_start = false)
      : name_(std::move(name)), log_(log), fail_start_(fail_start) {}
  Status start() override {
    log_.push_back("start " + name_);
    if (fail_start_) return Error(Errc::internal, name_ + " cannot start");
    running_ = true;
    return ok_status();
  }
  void stop() override {
    log_.push_back("stop " + name_);
    running_ = false;
  }
  std::string name() const override { return name_; }
  bool running() const { return running_; }

 private:
  std::string name_;
  std::vector<std::string>& log_;
  bool fail_start_;
  bool running_ = false;
};

using Log = std::vector<std::string>;

TEST(WorkerManagerTest, StartsInOrderStopsInReverse) {
  Log log;
  WorkerManager m;
  for (auto n : {"a", "b", "c"}) ASSERT_TRUE(m.register_worker(std::make_shared<FakeWorker>(n, log)).ok());
  EXPECT_EQ(m.size(), 3u);
  ASSERT_TRUE(m.start_all().ok());
  EXPECT_EQ(log, (Log{"start a", "start b", "start c"}));
  log.clear();
  m.stop_all();
  EXPECT_EQ(log, (Log{"stop c", "stop b", "stop a"}));
  log.clear();
  m.stop_all();  // nothing is running any more: no second stop
  EXPECT_TRUE(log.empty());
}

TEST(WorkerManagerTest, StartFailureStopsTheStartedOnes) {
  Log log;
  WorkerManager m;
  auto a = std::make_shared<FakeWorker>("a", log);
  auto b = std::make_shared<FakeWorker>("b", log);
  auto bad = std::make_shared<FakeWorker>("bad", log, /*fail_start=*/true);
  auto d = std::make_shared<FakeWorker>("d", log);
  for (auto& w : {std::static_pointer_cast<Worker>(a), std::static_pointer_cast<Worker>(b),
                  std::static_pointer_cast<Worker>(bad), std::static_pointer_cast<Worker>(d)})
    ASSERT_TRUE(m.register_worker(w).ok());
  Status s = m.start_all();
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, Errc::internal);
  EXPECT_EQ(s.error().message, "bad cannot start");
  // d never starts; the failed one is not stopped (it never ran); a and b stop in reverse.
  EXPECT_EQ(log, (Log{"start a", "start b", "start bad", "stop b", "stop a"}));
  EXPECT_FALSE(a->running());
  EXPECT_FALSE(b->running());
  EXPECT_FALSE(d->running());
  log.clear();
  m.stop_all();
  EXPECT_TRUE(log.empty());
}

TEST(WorkerManagerTest, FirstWorkerFailingStopsNothing) {
  Log log;
  WorkerManager m;
  ASSERT_TRUE(m.register_worker(std::make_shared<FakeWorker>("bad", log, true)).ok());
  ASSERT_TRUE(m.register_worker(std::make_shared<FakeWorker>("b", log)).ok());
  EXPECT_FALSE(m.start_all().ok());
  EXPECT_EQ(log, (Log{"start bad"}));
}

TEST(WorkerManagerTest, DuplicateNamesAreRejected) {
  Log log;
  WorkerManager m;
  ASSERT_TRUE(m.register_worker(std::make_shared<FakeWorker>("x", log)).ok());
  Status s = m.register_worker(std::make_shared<FakeWorker>("x", log));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, Errc::conflict);
  EXPECT_NE(s.error().message.find("x"), std::string::npos);
  EXPECT_EQ(m.size(), 1u);
  ASSERT_TRUE(m.register_worker(std::make_shared<FakeWorker>("y", log)).ok());
  ASSERT_TRUE(m.start_all().ok());
  EXPECT_EQ(log, (Log{"start x", "start y"}));  // the rejected duplicate never starts
  m.stop_all();
}

// ------------------------------------------------------------------------------ Scheduler

using std::chrono::milliseconds;

TEST(SchedulerTest, RunsNothingBeforeTheIntervalAndOnceAtIt) {
  ManualClock clock;
  Scheduler sched("test", clock);
  int runs = 0;
  ASSERT_TRUE(sched.add_task("t", milliseconds(1000), [&] { ++runs; return ok_status(); }).ok());
  EXPECT_EQ(sched.tick(), 0u);
  clock.advance_ms(999);
  EXPECT_EQ(sched.tick(), 0u);
  EXPECT_EQ(runs, 0);
  clock.advance_ms(1);
  EXPECT_EQ(sched.tick(), 1u);
  EXPECT_EQ(runs, 1);
  EXPECT_EQ(sched.tick(), 0u);  // not again at the same instant
  EXPECT_EQ(runs, 1);
  clock.advance_ms(1000);
  EXPECT_EQ(sched.tick(), 1u);
  EXPECT_EQ(runs, 2);
  auto st = sched.task_stats();
  ASSERT_EQ(st.size(), 1u);
  EXPECT_EQ(st[0].name, "t");
  EXPECT_EQ(st[0].runs, 2u);
  EXPECT_EQ(st[0].failures, 0u);
  EXPECT_EQ(st[0].last_run, clock.now_ms());
}

TEST(SchedulerTest, NoBurstToCatchUp) {
  ManualClock clock;
  Scheduler sched("test", clock);
  int runs = 0;
  ASSERT_TRUE(sched.add_task("t", milliseconds(100), [&] { ++runs; return ok_status(); }).ok());
  clock.advance_ms(10'000);  // 100 intervals pass unobserved
  EXPECT_EQ(sched.tick(), 1u);
  EXPECT_EQ(sched.tick(), 0u);
  EXPECT_EQ(runs, 1);
  clock.advance_ms(99);
  EXPECT_EQ(sched.tick(), 0u);
  clock.advance_ms(1);
  EXPECT_EQ(sched.tick(), 1u);
}

TEST(SchedulerTest, TaskErrorIsCountedAndTheTaskRunsAgain) {
  ManualClock clock;
  Scheduler sched("test", clock);
  int calls = 0;
  ASSERT_TRUE(sched.add_task("flaky", milliseconds(10), [&]() -> Status {
                ++calls;
                if (calls % 2) return Error(Errc::internal, "boom");
                return ok_status();
              }).ok());
  for (int i = 0; i < 4; ++i) {
    clock.advance_ms(10);
    EXPECT_EQ(sched.tick(), 1u);
  }
  auto st = sched.task_stats();
  ASSERT_EQ(st.size(), 1u);
  EXPECT_EQ(st[0].runs, 4u);
  EXPECT_EQ(st[0].failures, 2u);
  EXPECT_EQ(st[0].failures_logged, 2u) << "each failure follows a success: each is logged";
  EXPECT_EQ(calls, 4);
}

TEST(SchedulerTest, AFailureThatGoesOnIsLoggedOncePerIntervalAndAgainAfterARecovery) {
  ManualClock clock;
  Scheduler sched("test", clock);
  bool away = true;
  ASSERT_TRUE(sched.add_task("dependency", milliseconds(1000), [&]() -> Status {
                if (away) return Error(Errc::unavailable, "connection refused");
                return ok_status();
              }).ok());
  auto stats = [&] { return sched.task_stats().at(0); };
  // Away for 150 s, one run a second: logged at 1 s, 61 s and 121 s.
  for (int i = 0; i < 150; ++i) {
    clock.advance_ms(1000);
    sched.tick();
  }
  EXPECT_EQ(stats().failures, 150u);
  EXPECT_EQ(stats().failures_logged, 3u);
  away = false;
  clock.advance_ms(1000);
  sched.tick();
  away = true;
  clock.advance_ms(1000);
  sched.tick();
  EXPECT_EQ(stats().failures_logged, 4u) << "a new streak is logged at once";
}

TEST(SchedulerTest, TwoTasksWithDifferentIntervals) {
  ManualClock clock;
  Scheduler sched("test", clock);
  int fast = 0, slow = 0;
  ASSERT_TRUE(sched.add_task("fast", milliseconds(100), [&] { ++fast; return ok_status(); }).ok());
  ASSERT_TRUE(sched.add_task("slow", milliseconds(250), [&] { ++slow; return ok_status(); }).ok());
  size_t total = 0;
  for (int step = 0; step < 10; ++step) {  // 0..1000 ms in 100 ms steps, ticking at each
    clock.advance_ms(100);
    total += sched.tick();
  }
  EXPECT_EQ(fast, 10);
  // slow is due at 250, then one interval after each run: runs at 300, 600, 900.
  EXPECT_EQ(slow, 3);
  EXPECT_EQ(total, 13u);
  auto st = sched.task_stats();
  ASSERT_EQ(st.size(), 2u);
  EXPECT_EQ(st[0].name, "fast");
  EXPECT_EQ(st[0].runs, 10u);
  EXPECT_EQ(st[1].name, "slow");
  EXPECT_EQ(st[1].runs, 3u);
}

TEST(SchedulerTest, DuplicateTaskNameIsRejected) {
  ManualClock clock;
  Scheduler sched("test", clock);
  ASSERT_TRUE(sched.add_task("t", milliseconds(10), [] { return ok_status(); }).ok());
  Status s = sched.add_task("t", milliseconds(20), [] { return ok_status(); });
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, Errc::conflict);
  EXPECT_EQ(sched.task_stats().size(), 1u);
}

TEST(SchedulerTest, IsAWorkerThatStartsAndStops) {
  // The thread is started and stopped; with the ManualClock frozen no task is ever due, so
  // the outcome does not depend on how often the thread wakes.
  ManualClock clock;
  auto sched = std::make_shared<Scheduler>("sched", clock, milliseconds(1));
  int runs = 0;
  ASSERT_TRUE(sched->add_task("t", milliseconds(1000), [&] { ++runs; return ok_status(); }).ok());
  WorkerManager m;
  ASSERT_TRUE(m.register_worker(sched).ok());
  ASSERT_TRUE(m.start_all().ok());
  m.stop_all();
  EXPECT_EQ(runs, 0);
  EXPECT_EQ(sched->name(), "sched");
  // Ticking by hand still works after stop.
  clock.advance_ms(1000);
  EXPECT_EQ(sched->tick(), 1u);
  EXPECT_EQ(runs, 1);
}

}  // namespace
}  // namespace commentd::workers
