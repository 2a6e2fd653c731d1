// Test support for the *_redistest tier: where the test Redis servers are.
// COMMENTD_TEST_REDIS=host:port (single node), COMMENTD_TEST_REDIS_CLUSTER=h:p,h:p,h:p (a
// cluster's masters). Unset: the test is skipped, or fails when COMMENTD_TEST_REQUIRE=1.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "config/config.h"
#include "redis/client.h"

namespace commentd::redis::testenv {

inline std::vector<std::pair<std::string, uint16_t>> parse_nodes(const char* text) {
  std::vector<std::pair<std::string, uint16_t>> out;
  std::string s = text ? text : "";
  size_t pos = 0;
  while (pos < s.size()) {
    auto comma = s.find(',', pos);
    auto item = s.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    if (auto hp = config::parse_host_port(item)) out.emplace_back(hp->host, hp->port);
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return out;
}

inline bool required() {
  const char* r = std::getenv("COMMENTD_TEST_REQUIRE");
  return r && std::string(r) == "1";
}

// A unique key prefix per test, so tests share a server without seeing each other's keys.
inline std::string unique_prefix() {
  static std::mt19937_64 rng(std::random_device{}());
  return "t" + std::to_string(rng() % 1000000000) + ":";
}

}  // namespace commentd::redis::testenv

// In a test body: the options for the single node (or cluster), else skip / fail.
#define COMMENTD_REDIS_NODES(var, env)                                                    \
  auto var = ::commentd::redis::testenv::parse_nodes(std::getenv(env));                   \
  if (var.empty()) {                                                                      \
    if (::commentd::redis::testenv::required()) FAIL() << env " is not set";              \
    GTEST_SKIP() << env " is not set";                                                    \
  }
