#include "bridge/runtime.h"

#include <string>

namespace commentd::bridge {

Result<std::unique_ptr<Runtime>> Runtime::create(unsigned worker_threads) {
  char err[256] = {};
  cb_runtime* rt = cb_runtime_new(worker_threads, err, sizeof err);
  if (!rt) return Error(Errc::internal, std::string("bridge runtime: ") + err);
  return std::unique_ptr<Runtime>(new Runtime(rt));
}

Runtime::~Runtime() { cb_runtime_free(rt_); }

}  // namespace commentd::bridge
