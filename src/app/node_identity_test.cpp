#include "app/node_identity.h"

#include <gtest/gtest.h>

#include <fstream>

#include "testing/temp_dir.h"

namespace commentd::app {
namespace {

TEST(NodeIdentityTest, ConfiguredIdWins) {
  commentd::testing::TempDir dir("node_id_cfg");
  auto id = resolve_node_id(7, dir.str(), 12345);
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(*id, 7);
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "node_id"));
}

TEST(NodeIdentityTest, DerivedOnceAndKeptAcrossRestarts) {
  commentd::testing::TempDir dir("node_id_derived");
  auto first = resolve_node_id(0, dir.str(), 5000);
  ASSERT_TRUE(first.ok());
  EXPECT_GE(*first, 1);
  EXPECT_LE(*first, 1023);
  // A restart draws other random bits but reads the kept id.
  auto again = resolve_node_id(0, dir.str(), 77);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *first);
}

TEST(NodeIdentityTest, MalformedFileIsAnError) {
  commentd::testing::TempDir dir("node_id_bad");
  std::filesystem::create_directories(dir.path());
  std::ofstream(dir.path() / "node_id") << "4096\n";
  EXPECT_FALSE(resolve_node_id(0, dir.str(), 1).ok());
}

}  // namespace
}  // namespace commentd::app
