#include "http/client_address.h"

#include <gtest/gtest.h>

namespace commentd::http {
namespace {

using boost::asio::ip::make_address;

TrustedProxies trust(std::vector<std::string> e) {
  auto t = TrustedProxies::parse(e);
  EXPECT_TRUE(t.ok()) << t.error().message;
  return std::move(*t);
}

std::string client(const char* peer, std::string_view xff, const TrustedProxies& t) {
  return client_address(make_address(peer), xff, t).to_string();
}

TEST(TrustedProxies, ParsesAddressesAndCidrsOfBothFamilies) {
  auto t = trust({"10.0.0.0/8", "192.168.1.7", "fd00::/8", "::1", "172.16.0.0/12"});
  EXPECT_TRUE(t.contains(make_address("10.255.1.2")));
  EXPECT_FALSE(t.contains(make_address("11.0.0.1")));
  EXPECT_TRUE(t.contains(make_address("192.168.1.7")));
  EXPECT_FALSE(t.contains(make_address("192.168.1.8")));
  EXPECT_TRUE(t.contains(make_address("172.31.255.255")));
  EXPECT_FALSE(t.contains(make_address("172.32.0.0")));
  EXPECT_TRUE(t.contains(make_address("fd12:3456::1")));
  EXPECT_FALSE(t.contains(make_address("fe80::1")));
  EXPECT_TRUE(t.contains(make_address("::1")));
  EXPECT_FALSE(t.contains(make_address("::2")));
  // An IPv4 rule matches the same address arriving IPv4-mapped on a dual-stack socket.
  EXPECT_TRUE(t.contains(make_address("::ffff:10.1.2.3")));
  // An IPv4 /8 never matches IPv6 addresses that share its first bytes.
  EXPECT_FALSE(trust({"0.0.0.0/0"}).contains(make_address("2001:db8::1")));
  EXPECT_TRUE(trust({"0.0.0.0/0"}).contains(make_address("8.8.8.8")));
  EXPECT_TRUE(trust({"::/0"}).contains(make_address("2001:db8::1")));
  EXPECT_TRUE(trust({"10.1.2.3/32"}).contains(make_address("10.1.2.3")));
  EXPECT_FALSE(trust({"10.1.2.3/31"}).contains(make_address("10.1.2.4")));
  EXPECT_TRUE(trust({"10.1.2.3/31"}).contains(make_address("10.1.2.2")));
  EXPECT_TRUE(TrustedProxies{}.empty());
}

TEST(TrustedProxies, RejectsWhatIsNotAnAddressOrCidr) {
  for (const char* e : {"", "10.0.0.0/33", "::/129", "10.0.0.0/", "10.0.0.0/x", "10.0.0.0/-1",
                        "localhost", "10.0.0", "1.2.3.4:80", "10.0.0.0/8/8"}) {
    auto t = TrustedProxies::parse({e});
    EXPECT_FALSE(t.ok()) << e;
    if (!t.ok()) {
      EXPECT_NE(t.error().message.find("server.trusted_proxies"), std::string::npos);
    }
  }
}

TEST(ForwardedEntry, ReadsIpv4Ipv6WithOrWithoutPort) {
  auto s = [](std::string_view e) {
    auto a = parse_forwarded_entry(e);
    return a ? a->to_string() : std::string("-");
  };
  EXPECT_EQ(s("1.2.3.4"), "1.2.3.4");
  EXPECT_EQ(s("  1.2.3.4 \t"), "1.2.3.4");
  EXPECT_EQ(s("1.2.3.4:8080"), "1.2.3.4");
  EXPECT_EQ(s("2001:db8::1"), "2001:db8::1");
  EXPECT_EQ(s("[2001:db8::1]"), "2001:db8::1");
  EXPECT_EQ(s("[2001:db8::1]:443"), "2001:db8::1");
  EXPECT_EQ(s("::ffff:1.2.3.4"), "1.2.3.4");
  for (const char* bad : {"", " ", "unknown", "1.2.3", "1.2.3.4:", "1.2.3.4:http", "[2001:db8::1",
                          "[2001:db8::1]x", "[2001:db8::1]:", "2001:db8::1:80:", "_hidden", "1.2.3.4 5.6.7.8"})
    EXPECT_EQ(s(bad), "-") << bad;
}

TEST(ClientAddress, AnUntrustedPeerIsTheClientWhateverItForwards) {
  EXPECT_EQ(client("203.0.113.9", "1.1.1.1", TrustedProxies{}), "203.0.113.9");
  auto t = trust({"10.0.0.0/8"});
  EXPECT_EQ(client("203.0.113.9", "1.1.1.1", t), "203.0.113.9");
  EXPECT_EQ(client("203.0.113.9", "10.0.0.1", t), "203.0.113.9");
  EXPECT_EQ(client("::ffff:203.0.113.9", "1.1.1.1", t), "203.0.113.9");
}

TEST(ClientAddress, ATrustedPeerNamesTheRightMostUntrustedEntry) {
  auto t = trust({"10.0.0.0/8", "fd00::/8"});
  EXPECT_EQ(client("10.0.0.2", "198.51.100.7", t), "198.51.100.7");
  // Left entries were written by the client: spoofed, never believed.
  EXPECT_EQ(client("10.0.0.2", "6.6.6.6, 198.51.100.7", t), "198.51.100.7");
  EXPECT_EQ(client("10.0.0.2", "6.6.6.6, 198.51.100.7, 10.0.0.9, 10.3.3.3", t), "198.51.100.7");
  // Garbage left of the client's own entry is never reached.
  EXPECT_EQ(client("10.0.0.2", "not-an-ip, 198.51.100.7", t), "198.51.100.7");
  EXPECT_EQ(client("fd00::2", "2001:db8::5, fd00::9", t), "2001:db8::5");
  EXPECT_EQ(client("10.0.0.2", "[2001:db8::5]:1234,10.0.0.3:99", t), "2001:db8::5");
  EXPECT_EQ(client("::ffff:10.0.0.2", "198.51.100.7", t), "198.51.100.7");
  // Every hop trusted: the left-most (the request began inside).
  EXPECT_EQ(client("10.0.0.2", "10.0.0.5, 10.0.0.9", t), "10.0.0.5");
}

TEST(ClientAddress, NoOrMalformedForwardingFromATrustedPeerFallsBackToThePeer) {
  auto t = trust({"10.0.0.0/8"});
  EXPECT_EQ(client("10.0.0.2", "", t), "10.0.0.2");
  EXPECT_EQ(client("10.0.0.2", "   ", t), "10.0.0.2");
  EXPECT_EQ(client("10.0.0.2", "unknown", t), "10.0.0.2");
  EXPECT_EQ(client("10.0.0.2", "198.51.100.7, garbage", t), "10.0.0.2");
  EXPECT_EQ(client("10.0.0.2", "198.51.100.7,", t), "10.0.0.2");
  EXPECT_EQ(client("10.0.0.2", "198.51.100.7,,10.0.0.3", t), "10.0.0.2");
}

TEST(ClientAddress, ReadsEveryForwardedForHeaderInOrder) {
  auto t = trust({"127.0.0.1", "10.0.0.0/8"});
  Request req;
  req.insert("X-Forwarded-For", "6.6.6.6, 198.51.100.7");
  req.insert("X-Forwarded-For", "10.0.0.4");
  RequestContext cx{Deadline{}, make_address("127.0.0.1")};
  EXPECT_EQ(client_address(req, cx, t).to_string(), "198.51.100.7");
  EXPECT_EQ(client_address(req, cx, TrustedProxies{}).to_string(), "127.0.0.1");
}

TEST(AddressSubject, Ipv4WholeIpv6ByItsSlash64) {
  EXPECT_EQ(address_subject(make_address("198.51.100.7")), "ip:198.51.100.7");
  EXPECT_EQ(address_subject(make_address("2001:db8:1:2:aaaa::1")), "ip:2001:db8:1:2::/64");
  EXPECT_EQ(address_subject(make_address("2001:db8:1:2:ffff::9")), "ip:2001:db8:1:2::/64");
}

}  // namespace
}  // namespace commentd::http
