// The token-range split of the backfill and verify scans (backfill_internal.h).
#include <gtest/gtest.h>

#include <limits>

#include "store/cql/backfill_internal.h"

namespace commentd::store::cql::tool {
namespace {

TEST(TokenRanges, CoverTheWholeRingWithoutGapsOrOverlaps) {
  for (int n : {1, 2, 3, 7, 64, 256, 65536}) {
    TokenRanges tr{n};
    EXPECT_EQ(tr.start(0), std::numeric_limits<int64_t>::min()) << n;
    EXPECT_EQ(tr.end(n - 1), std::numeric_limits<int64_t>::max()) << n;
    for (int i = 0; i + 1 < n; ++i) {
      ASSERT_EQ(tr.end(i), tr.start(i + 1)) << n << " " << i;
      ASSERT_LT(tr.start(i), tr.end(i)) << n << " " << i;
    }
  }
  TokenRanges two{2};
  EXPECT_EQ(two.end(0), 0);
}

TEST(TokenRanges, CoveredIsTheFractionDone) {
  TokenRanges tr{4};
  EXPECT_DOUBLE_EQ(tr.covered(1, tr.start(1)), 0.0);
  EXPECT_DOUBLE_EQ(tr.covered(1, tr.end(1)), 1.0);
  EXPECT_NEAR(tr.covered(1, tr.start(1) / 2), 0.5, 1e-9);
  EXPECT_DOUBLE_EQ(tr.covered(2, std::numeric_limits<int64_t>::min()), 0.0);
}

}  // namespace
}  // namespace commentd::store::cql::tool
