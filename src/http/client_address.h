// Which address a request comes from, for per-address rate limits. The TCP peer, unless the
// peer is a configured trusted proxy (server.trusted_proxies): then the right-most
// X-Forwarded-For entry that is not itself a trusted proxy. Entries left of that one were
// written by the client and are never believed. If every entry is trusted, the left-most one.
// A malformed entry reached in that walk (from a trusted proxy) falls back to the peer.
//
// Entries are IPv4 ("1.2.3.4", "1.2.3.4:80"), IPv6 ("2001:db8::1", "[2001:db8::1]:80");
// IPv4-mapped IPv6 addresses are read as IPv4. Several X-Forwarded-For headers are one list,
// in order (RFC 9110 5.3). Thread-safe (immutable after parse).
#pragma once

#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "http/server.h"

namespace commentd::http {

class TrustedProxies {
 public:
  TrustedProxies() = default;  // trusts no one: the peer is always the client
  // Each entry an address ("10.0.0.1", "::1") or a CIDR ("10.0.0.0/8", "fd00::/8").
  static Result<TrustedProxies> parse(const std::vector<std::string>& entries);
  bool contains(const asio::ip::address& a) const;
  bool empty() const { return nets_.empty(); }

 private:
  struct Net {
    std::array<uint8_t, 16> bytes;  // IPv4 as IPv4-mapped IPv6
    int prefix;                     // over the 128 bits
  };
  std::vector<Net> nets_;
};

// One X-Forwarded-For entry (surrounding spaces allowed); nullopt when it is not an address.
std::optional<asio::ip::address> parse_forwarded_entry(std::string_view entry);

// The client's address from the peer and the X-Forwarded-For list (comma-separated).
asio::ip::address client_address(const asio::ip::address& peer, std::string_view xff,
                                 const TrustedProxies& trusted);
// The same, reading every X-Forwarded-For header of `req`.
asio::ip::address client_address(const Request& req, const RequestContext& cx,
                                 const TrustedProxies& trusted);

// The rate-limit subject of an address: "ip:1.2.3.4"; IPv6 by its /64 ("ip:2001:db8::/64"),
// since one IPv6 host commonly holds a whole /64 and could rotate through it.
std::string address_subject(const asio::ip::address& a);

}  // namespace commentd::http
