// Smoke test of the Redis test servers (deploy/test-servers.sh): plain RESP over a socket,
// so the tier's wiring is proven without the service's own client.
#include <unistd.h>

#include <string>
#include <vector>

#include "testing/test_servers.h"

namespace commentd::testing {
namespace {

std::string resp_command(const std::vector<std::string>& args) {
  std::string out = "*" + std::to_string(args.size()) + "\r\n";
  for (const auto& a : args) out += "$" + std::to_string(a.size()) + "\r\n" + a + "\r\n";
  return out;
}

// One reply: a status/error/integer line as is ("+OK", "-MOVED ..."), a bulk string as its
// payload, a nil bulk as "(nil)".
std::string call(TcpClient& c, const std::vector<std::string>& args) {
  c.send_all(resp_command(args));
  std::string line = c.recv_until("\r\n");
  line.resize(line.size() - 2);
  if (line.empty() || line[0] != '$') return line;
  long len = std::stol(line.substr(1));
  if (len < 0) return "(nil)";
  std::string payload = c.recv_exact(static_cast<size_t>(len) + 2);
  payload.resize(static_cast<size_t>(len));
  return payload;
}

std::string unique_key(const char* tag) {
  return std::string("commentd:smoke:") + tag + ":" + std::to_string(::getpid());
}

TEST(RedisTestServer, PingSetGetDel) {
  COMMENTD_TEST_SERVER(addr, "COMMENTD_TEST_REDIS");
  TcpClient c(parse_host_port(addr));
  EXPECT_EQ(call(c, {"PING"}), "+PONG");
  const std::string key = unique_key("single");
  EXPECT_EQ(call(c, {"SET", key, "value\r\nwith crlf"}), "+OK");
  EXPECT_EQ(call(c, {"GET", key}), "value\r\nwith crlf");
  EXPECT_EQ(call(c, {"DEL", key}), ":1");
  EXPECT_EQ(call(c, {"GET", key}), "(nil)");
}

TEST(RedisClusterTestServer, ThreeMastersCoverAllSlots) {
  COMMENTD_TEST_SERVER(addrs, "COMMENTD_TEST_REDIS_CLUSTER");
  auto nodes = parse_host_port_list(addrs);
  ASSERT_EQ(nodes.size(), 3u) << addrs;
  for (const auto& n : nodes) {
    TcpClient c(n);
    std::string info = call(c, {"CLUSTER", "INFO"});
    EXPECT_NE(info.find("cluster_state:ok"), std::string::npos) << n.port << ": " << info;
    EXPECT_NE(info.find("cluster_slots_assigned:16384"), std::string::npos) << info;
    EXPECT_NE(info.find("cluster_size:3"), std::string::npos) << info;
  }
}

TEST(RedisClusterTestServer, ExactlyOneMasterOwnsAKeyTheOthersRedirect) {
  COMMENTD_TEST_SERVER(addrs, "COMMENTD_TEST_REDIS_CLUSTER");
  const std::string key = unique_key("cluster");
  int owners = 0;
  for (const auto& n : parse_host_port_list(addrs)) {
    TcpClient c(n);
    std::string r = call(c, {"SET", key, "v"});
    if (r == "+OK") {
      ++owners;
      EXPECT_EQ(call(c, {"DEL", key}), ":1");
    } else {
      EXPECT_EQ(r.rfind("-MOVED ", 0), 0u) << r;
    }
  }
  EXPECT_EQ(owners, 1);
}

}  // namespace
}  // namespace commentd::testing
