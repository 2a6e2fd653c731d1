#pragma once
// The client side of TLS, for every engine commentd speaks TLS to from C++ (Redis, the Pulsar
// admin API; the CQL and Pulsar drivers build their own in the Rust bridge): one way to build
// a context that verifies the server, and one way to name the server on a stream.

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <memory>
#include <openssl/ssl.h>
#include <string>
#include <string_view>

#include "core/error.h"

namespace commentd::net {

namespace asio = boost::asio;

// PEM files. An empty ca_file means the system's roots; cert_file and key_file both or
// neither (a client certificate, for servers that require one).
struct TlsFiles {
  std::string ca_file, cert_file, key_file;
};

// A client context that verifies the server's chain. An error (a file that cannot be read,
// a file without a certificate, a key that does not match its certificate) is a bad_config
// error whose message starts with `who` (e.g. "redis tls") and names the file and OpenSSL's
// reason, so a node refuses to start with a message the operator can act on.
Result<std::shared_ptr<asio::ssl::context>> make_client_context(const TlsFiles& files, std::string_view who);

// Before the handshake: the server's certificate must name `host` (a DNS name or an IP
// literal, RFC 6125 rules as OpenSSL applies them), and a DNS name goes out as SNI (RFC 6066
// forbids an IP literal there). Works on asio::ssl::stream and beast::ssl_stream alike.
template <class SslStream>
void expect_server_name(SslStream& stream, const std::string& host) {
  stream.set_verify_callback(asio::ssl::host_name_verification(host));
  boost::system::error_code not_ip;
  asio::ip::make_address(host, not_ip);
  if (not_ip) SSL_set_tlsext_host_name(stream.native_handle(), host.c_str());
}

}  // namespace commentd::net
