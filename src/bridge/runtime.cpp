#include "bridge/runtime.h"

#include <csignal>

#include <string>

namespace commentd::bridge {

Result<std::unique_ptr<Runtime>> Runtime::create(unsigned worker_threads) {
  // Rust's own main() ignores SIGPIPE; a staticlib inside a C++ process gets no such start-up,
  // and a driver write that does not pass MSG_NOSIGNAL (writev has no flags) to a connection
  // the peer just reset (a killed Pulsar broker or Cassandra node) would kill the whole process
  // with SIGPIPE, silently. Ignored process-wide: the write fails with EPIPE and the driver
  // reconnects.
  std::signal(SIGPIPE, SIG_IGN);
  char err[256] = {};
  cb_runtime* rt = cb_runtime_new(worker_threads, err, sizeof err);
  if (!rt) return Error(Errc::internal, std::string("bridge runtime: ") + err);
  return std::unique_ptr<Runtime>(new Runtime(rt));
}

Runtime::~Runtime() { cb_runtime_free(rt_); }

}  // namespace commentd::bridge
