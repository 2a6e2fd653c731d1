// Test and benchmark support: a RocksStore in a TempDir, and a synchronous commit.
#pragma once

#include <future>
#include <memory>

#include "store/rocks/rocks_store.h"
#include "testing/temp_dir.h"

namespace commentd::testing {

inline Result<std::unique_ptr<store::rocks::RocksStore>> open_temp_store(const TempDir& dir, bool sync_writes,
                                                                          size_t block_cache_mb = 64) {
  store::rocks::RocksOptions o;
  o.data_dir = dir.str();
  o.sync_writes = sync_writes;
  o.block_cache_mb = block_cache_mb;
  return store::rocks::RocksStore::open(o);
}

// Commits `ws` and waits until it is durable (or refused).
inline Result<store::CommitResult> commit_sync(store::Store& s, store::WriteSet ws) {
  std::promise<Result<store::CommitResult>> p;
  auto f = p.get_future();
  s.commit(std::move(ws), [&p](Result<store::CommitResult> r) { p.set_value(std::move(r)); });
  return f.get();
}

}  // namespace commentd::testing
