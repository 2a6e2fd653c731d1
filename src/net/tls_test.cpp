#include "net/tls.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <filesystem>
#include <fstream>

namespace commentd::net {
namespace {

std::string temp_file(const std::string& name, const std::string& text) {
  auto path = (std::filesystem::temp_directory_path() / ("commentd-tls-test-" + name)).string();
  std::ofstream(path) << text;
  return path;
}

TEST(TlsContext, TheSystemsRootsWhenNoCaFileIsGiven) { EXPECT_TRUE(make_client_context({}, "redis tls").ok()); }

TEST(TlsContext, AFileItCannotUseIsABadConfigNamingTheFileAndTheEngine) {
  const std::string garbage = temp_file("garbage.pem", "not a certificate\n");
  struct Case {
    TlsFiles files;
    std::string says;
  } cases[] = {
      {{"/no/such/ca.pem", "", ""}, "ca_file /no/such/ca.pem"},
      {{garbage, "", ""}, "ca_file " + garbage},
      {{"", "/no/such/client.pem", "/no/such/client.key"}, "cert_file /no/such/client.pem"},
      {{"", garbage, garbage}, "cert_file " + garbage},
      {{"", "/no/such/client.pem", ""}, "cert_file and key_file go together"},
      {{"", "", "/no/such/client.key"}, "cert_file and key_file go together"},
  };
  for (const Case& c : cases) {
    auto ctx = make_client_context(c.files, "pulsar admin tls");
    ASSERT_FALSE(ctx) << c.says;
    EXPECT_EQ(ctx.error().code, Errc::bad_request);
    EXPECT_EQ(ctx.error().client_code(), "bad_config");
    EXPECT_TRUE(ctx.error().message.starts_with("pulsar admin tls: " + c.says)) << ctx.error().message;
  }
  std::filesystem::remove(garbage);
}

// SNI carries a DNS name and never an IP literal (RFC 6066 section 3).
TEST(TlsServerName, ADnsNameGoesOutAsSniAnIpLiteralDoesNot) {
  boost::asio::io_context ioc;
  auto ctx = make_client_context({}, "test");
  ASSERT_TRUE(ctx.ok());
  auto sni = [&](const std::string& host) -> std::string {
    boost::asio::ssl::stream<boost::asio::ip::tcp::socket> s(ioc, **ctx);
    expect_server_name(s, host);
    const char* name = SSL_get_servername(s.native_handle(), TLSEXT_NAMETYPE_host_name);
    return name ? name : "";
  };
  EXPECT_EQ(sni("cache.internal.example"), "cache.internal.example");
  EXPECT_EQ(sni("127.0.0.1"), "");
  EXPECT_EQ(sni("::1"), "");
}

}  // namespace
}  // namespace commentd::net
