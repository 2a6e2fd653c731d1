// Smoke test of the Pulsar test server (deploy/test-servers.sh): the admin REST API over a
// raw HTTP/1.1 socket, and the binary protocol's CONNECT handshake written by hand (two
// protobuf fields), so the tier's wiring is proven without a client library.
#include <cstdint>
#include <string>

#include "testing/test_servers.h"

namespace commentd::testing {
namespace {

struct HttpReply {
  int status = 0;
  std::string body;
};

HttpReply http_get(const std::string& admin_url, const std::string& path) {
  HostPort hp = parse_host_port(admin_url);
  TcpClient c(hp);
  c.send_all("GET " + path + " HTTP/1.1\r\nHost: " + hp.host + ":" + hp.port +
             "\r\nAccept: application/json\r\nConnection: close\r\n\r\n");
  std::string raw = c.recv_to_eof();
  HttpReply r;
  if (raw.rfind("HTTP/1.1 ", 0) != 0) throw std::runtime_error("not an HTTP reply: " + raw.substr(0, 80));
  r.status = std::stoi(raw.substr(9, 3));
  auto head_end = raw.find("\r\n\r\n");
  if (head_end == std::string::npos) throw std::runtime_error("HTTP reply without a header end");
  r.body = raw.substr(head_end + 4);
  if (raw.substr(0, head_end).find("Transfer-Encoding: chunked") != std::string::npos) {
    std::string plain;  // de-chunk: "<hex>\r\n<data>\r\n" ... "0\r\n\r\n"
    for (size_t pos = 0;;) {
      size_t eol = r.body.find("\r\n", pos);
      size_t n = std::stoul(r.body.substr(pos, eol - pos), nullptr, 16);
      if (n == 0) break;
      plain += r.body.substr(eol + 2, n);
      pos = eol + 2 + n + 2;
    }
    r.body = plain;
  }
  return r;
}

TEST(PulsarTestServer, BrokerHealthy) {
  COMMENTD_TEST_SERVER(admin, "COMMENTD_TEST_PULSAR_ADMIN");
  HttpReply r = http_get(admin, "/admin/v2/brokers/health");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, "ok");
}

TEST(PulsarTestServer, PavilionNamespacesExistWithDeduplication) {
  COMMENTD_TEST_SERVER(admin, "COMMENTD_TEST_PULSAR_ADMIN");
  HttpReply list = http_get(admin, "/admin/v2/namespaces/pavilion");
  ASSERT_EQ(list.status, 200) << list.body;
  for (const char* ns : {"comments", "reactions", "metrics"}) {
    EXPECT_NE(list.body.find(std::string("\"pavilion/") + ns + "\""), std::string::npos) << list.body;
    HttpReply dedup = http_get(admin, std::string("/admin/v2/namespaces/pavilion/") + ns + "/deduplication");
    EXPECT_EQ(dedup.status, 200) << dedup.body;
    EXPECT_EQ(dedup.body, "true") << ns;
  }
}

TEST(PulsarTestServer, BinaryProtocolConnectIsAnsweredConnected) {
  COMMENTD_TEST_SERVER(url, "COMMENTD_TEST_PULSAR");
  ASSERT_EQ(url.rfind("pulsar://", 0), 0u) << url;
  TcpClient c(parse_host_port(url));
  // BaseCommand{type: CONNECT(2), connect: CommandConnect{client_version: "commentd-smoke",
  // protocol_version: 21}} in protobuf wire format.
  const std::string version = "commentd-smoke";
  std::string connect = std::string("\x0a") + static_cast<char>(version.size()) + version + "\x20\x15";
  std::string cmd = std::string("\x08\x02\x12") + static_cast<char>(connect.size()) + connect;
  auto be32 = [](uint32_t v) {
    return std::string{static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
                       static_cast<char>(v)};
  };
  c.send_all(be32(static_cast<uint32_t>(cmd.size() + 4)) + be32(static_cast<uint32_t>(cmd.size())) + cmd);
  std::string sizes = c.recv_exact(8);
  uint32_t total = static_cast<uint32_t>(static_cast<uint8_t>(sizes[0])) << 24 |
                   static_cast<uint32_t>(static_cast<uint8_t>(sizes[1])) << 16 |
                   static_cast<uint32_t>(static_cast<uint8_t>(sizes[2])) << 8 | static_cast<uint8_t>(sizes[3]);
  ASSERT_GT(total, 4u);
  ASSERT_LT(total, 1u << 20);
  std::string reply = c.recv_exact(total - 4);
  // BaseCommand.type (field 1, varint) == CONNECTED (3), then field 3 (the CommandConnected).
  ASSERT_GE(reply.size(), 3u);
  EXPECT_EQ(reply.substr(0, 3), std::string("\x08\x03\x1a")) << "reply type byte " << int(reply[1]);
  EXPECT_NE(reply.find("Pulsar Server"), std::string::npos);
}

}  // namespace
}  // namespace commentd::testing
