// Smoke test of the Cassandra test server (deploy/test-servers.sh): CQL native protocol v4
// frames written by hand, so the tier's wiring is proven without a driver.
#include <algorithm>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "testing/test_servers.h"

namespace commentd::testing {
namespace {

constexpr uint8_t kError = 0x00, kStartup = 0x01, kReady = 0x02, kOptions = 0x05, kSupported = 0x06,
                  kQuery = 0x07, kResult = 0x08;

void put16(std::string& s, uint16_t v) {
  s += static_cast<char>(v >> 8);
  s += static_cast<char>(v & 0xff);
}
void put32(std::string& s, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) s += static_cast<char>((v >> shift) & 0xff);
}
void put_string(std::string& s, std::string_view v) {
  put16(s, static_cast<uint16_t>(v.size()));
  s += v;
}

// Reads the big-endian fields of a response body, bounds-checked.
class Reader {
 public:
  explicit Reader(std::string body) : b_(std::move(body)) {}
  uint32_t u32() { return static_cast<uint32_t>(u16()) << 16 | u16(); }
  uint16_t u16() {
    need(2);
    uint16_t v = static_cast<uint16_t>(static_cast<uint8_t>(b_[pos_]) << 8 | static_cast<uint8_t>(b_[pos_ + 1]));
    pos_ += 2;
    return v;
  }
  std::string str() { return take(u16()); }
  std::string bytes() {
    auto n = static_cast<int32_t>(u32());
    return n < 0 ? std::string() : take(static_cast<size_t>(n));
  }

 private:
  void need(size_t n) {
    if (pos_ + n > b_.size()) throw std::runtime_error("CQL frame body too short");
  }
  std::string take(size_t n) {
    need(n);
    std::string v = b_.substr(pos_, n);
    pos_ += n;
    return v;
  }
  std::string b_;
  size_t pos_ = 0;
};

struct Frame {
  uint8_t opcode;
  std::string body;
};

Frame exchange(TcpClient& c, int16_t stream, uint8_t opcode, const std::string& body) {
  std::string f;
  f += static_cast<char>(0x04);  // protocol v4, request
  f += static_cast<char>(0x00);  // no flags
  put16(f, static_cast<uint16_t>(stream));
  f += static_cast<char>(opcode);
  put32(f, static_cast<uint32_t>(body.size()));
  c.send_all(f + body);
  std::string h = c.recv_exact(9);
  if (static_cast<uint8_t>(h[0]) != 0x84) throw std::runtime_error("not a v4 response frame");
  Reader len(h.substr(5));
  Frame out{static_cast<uint8_t>(h[4]), c.recv_exact(len.u32())};
  if (out.opcode == kError) {
    Reader r(out.body);
    uint32_t code = r.u32();
    throw std::runtime_error("CQL error " + std::to_string(code) + ": " + r.str());
  }
  return out;
}

TEST(CqlTestServer, OptionsAnswersSupportedWithProtocolV4AndV5) {
  COMMENTD_TEST_SERVER(addr, "COMMENTD_TEST_CQL");
  TcpClient c(parse_host_port(addr));
  Frame f = exchange(c, 1, kOptions, "");
  ASSERT_EQ(f.opcode, kSupported);
  Reader r(f.body);
  std::map<std::string, std::vector<std::string>> supported;
  for (uint16_t n = r.u16(); n > 0; --n) {
    std::string key = r.str();
    for (uint16_t m = r.u16(); m > 0; --m) supported[key].push_back(r.str());
  }
  ASSERT_EQ(supported.count("CQL_VERSION"), 1u);
  const auto& versions = supported["PROTOCOL_VERSIONS"];
  EXPECT_NE(std::find(versions.begin(), versions.end(), "4/v4"), versions.end());
  EXPECT_NE(std::find(versions.begin(), versions.end(), "5/v5"), versions.end());
}

TEST(CqlTestServer, QueryReturnsCassandra5ReleaseVersion) {
  COMMENTD_TEST_SERVER(addr, "COMMENTD_TEST_CQL");
  TcpClient c(parse_host_port(addr));
  std::string startup;
  put16(startup, 1);
  put_string(startup, "CQL_VERSION");
  put_string(startup, "3.0.0");
  ASSERT_EQ(exchange(c, 1, kStartup, startup).opcode, kReady);

  const std::string q = "SELECT release_version FROM system.local";
  std::string query;
  put32(query, static_cast<uint32_t>(q.size()));
  query += q;
  put16(query, 0x0001);  // consistency ONE
  query += '\0';         // no query flags
  Frame f = exchange(c, 2, kQuery, query);
  ASSERT_EQ(f.opcode, kResult);
  Reader r(f.body);
  ASSERT_EQ(r.u32(), 2u);  // Rows
  uint32_t flags = r.u32();
  ASSERT_EQ(r.u32(), 1u);  // one column
  ASSERT_EQ(flags & 0x0006u, 0u);  // no paging state, metadata present
  r.str();                         // keyspace
  r.str();                         // table
  EXPECT_EQ(r.str(), "release_version");
  EXPECT_EQ(r.u16(), 0x000Du);  // varchar
  ASSERT_EQ(r.u32(), 1u);       // one row
  EXPECT_EQ(r.bytes().rfind("5.0.", 0), 0u);
}

}  // namespace
}  // namespace commentd::testing
