#include "store/rocks/db_events.h"

#include <rocksdb/db.h>
#include <spdlog/spdlog.h>

#include <cstdarg>
#include <cstdio>

namespace commentd::store::rocks {

void SpdlogLogger::Logv(const char* format, va_list ap) {
  Logv(rocksdb::InfoLogLevel::INFO_LEVEL, format, ap);
}

void SpdlogLogger::Logv(const rocksdb::InfoLogLevel level, const char* format, va_list ap) {
  if (level < GetInfoLogLevel()) return;
  spdlog::level::level_enum to = spdlog::level::debug;
  switch (level) {
    case rocksdb::InfoLogLevel::DEBUG_LEVEL: to = spdlog::level::trace; break;
    case rocksdb::InfoLogLevel::INFO_LEVEL:
    case rocksdb::InfoLogLevel::HEADER_LEVEL: to = spdlog::level::debug; break;
    case rocksdb::InfoLogLevel::WARN_LEVEL: to = spdlog::level::warn; break;
    case rocksdb::InfoLogLevel::ERROR_LEVEL: to = spdlog::level::err; break;
    case rocksdb::InfoLogLevel::FATAL_LEVEL: to = spdlog::level::critical; break;
    default: break;
  }
  if (!spdlog::should_log(to)) return;
  char buf[1024];
  va_list copy;
  va_copy(copy, ap);
  int n = std::vsnprintf(buf, sizeof buf, format, copy);
  va_end(copy);
  if (n < 0) return;
  size_t len = std::min(static_cast<size_t>(n), sizeof buf - 1);
  while (len > 0 && buf[len - 1] == '\n') --len;
  spdlog::log(to, "rocksdb: {}", std::string_view(buf, len));
}

void HealthListener::OnBackgroundError(rocksdb::BackgroundErrorReason, rocksdb::Status* bg_error) {
  if (!bg_error || bg_error->ok()) return;
  {
    std::lock_guard lk(mu_);
    last_error_ = bg_error->ToString();
  }
  degraded_.store(true, std::memory_order_release);
  epoch_.fetch_add(1, std::memory_order_acq_rel);
  spdlog::error("storage: background error, writes refused until it clears: {}", bg_error->ToString());
}

void HealthListener::OnErrorRecoveryEnd(const rocksdb::BackgroundErrorRecoveryInfo& info) {
  if (!info.new_bg_error.ok()) {
    spdlog::error("storage: recovery from '{}' failed: {}", info.old_bg_error.ToString(),
                  info.new_bg_error.ToString());
    return;
  }
  degraded_.store(false, std::memory_order_release);
  spdlog::info("storage: recovered from '{}'; writes accepted again", info.old_bg_error.ToString());
}

void HealthListener::OnMemTableSealed(const rocksdb::MemTableInfo& info) {
  if (info.cf_name == rocksdb::kDefaultColumnFamilyName) epoch_.fetch_add(1, std::memory_order_acq_rel);
}

std::string HealthListener::last_error() const {
  std::lock_guard lk(mu_);
  return last_error_;
}

}  // namespace commentd::store::rocks
