// The Store conformance suite on the embedded RocksStore.
#include "store/store_conformance.h"

#include "store/rocks/rocks_store.h"
#include "testing/temp_store.h"

namespace commentd::store::conformance {
namespace {

struct RocksHarness {
  testing::TempDir dir{"store_conf"};
  std::unique_ptr<rocks::RocksStore> s = *testing::open_temp_store(dir, /*sync_writes=*/false, 8);
  Store& store() { return *s; }
};

using RocksImpls = ::testing::Types<RocksHarness>;

}  // namespace

INSTANTIATE_TYPED_TEST_SUITE_P(Rocks, StoreConformance, RocksImpls);

}  // namespace commentd::store::conformance
