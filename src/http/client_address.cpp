#include "http/client_address.h"

#include <charconv>

namespace commentd::http {
namespace {

asio::ip::address unmapped(const asio::ip::address& a) {
  if (a.is_v6() && a.to_v6().is_v4_mapped())
    return asio::ip::address(asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6()));
  return a;
}

// Plain IPv4/IPv6 text; IPv4-mapped IPv6 becomes IPv4.
std::optional<asio::ip::address> parse_plain(std::string_view s) {
  boost::system::error_code ec;
  auto a = asio::ip::make_address(std::string(s), ec);
  if (ec) return std::nullopt;
  return unmapped(a);
}

std::array<uint8_t, 16> bytes16(const asio::ip::address& a) {
  if (a.is_v6()) return a.to_v6().to_bytes();
  return asio::ip::make_address_v6(asio::ip::v4_mapped, a.to_v4()).to_bytes();
}

bool prefix_match(const std::array<uint8_t, 16>& a, const std::array<uint8_t, 16>& b, int bits) {
  int i = 0;
  for (; bits >= 8; bits -= 8, ++i)
    if (a[i] != b[i]) return false;
  if (bits == 0) return true;
  uint8_t mask = static_cast<uint8_t>(0xff << (8 - bits));
  return (a[i] & mask) == (b[i] & mask);
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool all_digits(std::string_view s) {
  if (s.empty() || s.size() > 5) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

}  // namespace

Result<TrustedProxies> TrustedProxies::parse(const std::vector<std::string>& entries) {
  TrustedProxies t;
  for (const std::string& e : entries) {
    auto bad = [&] {
      return Error(Errc::bad_request,
                   "'server.trusted_proxies': not an address or CIDR: '" + e + "'");
    };
    std::string_view s = e;
    std::optional<int> bits;
    if (auto slash = s.find('/'); slash != std::string_view::npos) {
      std::string_view p = s.substr(slash + 1);
      int v = -1;
      auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), v);
      if (p.empty() || ec != std::errc() || end != p.data() + p.size()) return bad();
      bits = v;
      s = s.substr(0, slash);
    }
    auto a = parse_plain(s);
    if (!a) return bad();
    const int width = a->is_v4() ? 32 : 128;
    if (bits && (*bits < 0 || *bits > width)) return bad();
    const int prefix = (a->is_v4() ? 96 : 0) + bits.value_or(width);
    t.nets_.push_back({bytes16(*a), prefix});
  }
  return t;
}

bool TrustedProxies::contains(const asio::ip::address& a) const {
  if (nets_.empty()) return false;
  auto b = bytes16(a);
  for (const Net& n : nets_)
    if (prefix_match(b, n.bytes, n.prefix)) return true;
  return false;
}

std::optional<asio::ip::address> parse_forwarded_entry(std::string_view entry) {
  std::string_view s = trim(entry);
  if (s.empty()) return std::nullopt;
  if (s.front() == '[') {  // [v6] or [v6]:port
    auto close = s.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    std::string_view rest = s.substr(close + 1);
    if (!rest.empty() && !(rest.front() == ':' && all_digits(rest.substr(1)))) return std::nullopt;
    return parse_plain(s.substr(1, close - 1));
  }
  // One colon: IPv4 with a port. More: bare IPv6.
  if (auto c = s.find(':'); c != std::string_view::npos && s.find(':', c + 1) == std::string_view::npos) {
    if (!all_digits(s.substr(c + 1))) return std::nullopt;
    auto a = parse_plain(s.substr(0, c));
    if (!a || !a->is_v4()) return std::nullopt;
    return a;
  }
  return parse_plain(s);
}

asio::ip::address client_address(const asio::ip::address& peer_in, std::string_view xff,
                                 const TrustedProxies& trusted) {
  const asio::ip::address peer = unmapped(peer_in);
  if (!trusted.contains(peer)) return peer;
  std::optional<asio::ip::address> last;  // the left-most trusted entry seen so far
  std::string_view rest = xff;
  while (true) {
    size_t comma = rest.rfind(',');
    std::string_view entry = comma == std::string_view::npos ? rest : rest.substr(comma + 1);
    auto a = parse_forwarded_entry(entry);
    if (!a) return peer;  // malformed where a trusted proxy wrote it
    if (!trusted.contains(*a)) return *a;
    last = a;
    if (comma == std::string_view::npos) return *last;
    rest = rest.substr(0, comma);
  }
}

asio::ip::address client_address(const Request& req, const RequestContext& cx,
                                  const TrustedProxies& trusted) {
  if (trusted.empty()) return cx.peer;
  std::string joined;
  for (auto [it, end] = req.equal_range("X-Forwarded-For"); it != end; ++it) {
    if (!joined.empty()) joined += ',';
    joined.append(it->value().data(), it->value().size());
  }
  return client_address(cx.peer, joined, trusted);
}

std::string address_subject(const asio::ip::address& a) {
  if (a.is_v4()) return "ip:" + a.to_string();
  auto b = a.to_v6().to_bytes();
  std::fill(b.begin() + 8, b.end(), uint8_t{0});
  return "ip:" + asio::ip::address_v6(b).to_string() + "/64";
}

}  // namespace commentd::http
