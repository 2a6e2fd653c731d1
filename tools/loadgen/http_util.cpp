#include "http_util.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <cstdio>

namespace commentd::loadgen {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

std::optional<Target> parse_target(std::string_view url) {
  constexpr std::string_view scheme = "http://";
  if (!url.starts_with(scheme)) return std::nullopt;
  url.remove_prefix(scheme.size());
  url = url.substr(0, url.find('/'));
  if (url.empty()) return std::nullopt;
  Target t;
  const size_t colon = url.rfind(':');
  if (colon == std::string_view::npos || url.back() == ']') {
    t.host = std::string(url);
    t.port = "80";
  } else {
    t.host = std::string(url.substr(0, colon));
    t.port = std::string(url.substr(colon + 1));
    if (t.port.empty() || t.port.find_first_not_of("0123456789") != std::string::npos) {
      return std::nullopt;
    }
  }
  if (t.host.size() > 2 && t.host.front() == '[' && t.host.back() == ']') {
    t.host = t.host.substr(1, t.host.size() - 2);
  }
  if (t.host.empty()) return std::nullopt;
  t.host_header = std::string(url);
  return t;
}

void append_request(std::string& out, std::string_view method, std::string_view target,
                    std::string_view host_header, std::string_view bearer, std::string_view body) {
  out += method;
  out += ' ';
  out += target;
  out += " HTTP/1.1\r\nHost: ";
  out += host_header;
  out += "\r\n";
  if (!bearer.empty()) {
    out += "Authorization: Bearer ";
    out += bearer;
    out += "\r\n";
  }
  const bool has_body = !body.empty() || method == "POST" || method == "PUT" || method == "PATCH";
  if (has_body) {
    out += "Content-Type: application/json\r\nContent-Length: ";
    char digits[24];
    const int n = std::snprintf(digits, sizeof digits, "%zu", body.size());
    out.append(digits, static_cast<size_t>(n));
    out += "\r\n";
  }
  out += "\r\n";
  out += body;
}

std::optional<std::string_view> find_json_string(std::string_view json, std::string_view key) {
  size_t pos = 0;
  while ((pos = json.find(key, pos)) != std::string_view::npos) {
    const size_t end = pos + key.size();
    const bool quoted = pos > 0 && json[pos - 1] == '"' && end < json.size() && json[end] == '"';
    pos = end;
    if (!quoted) continue;
    size_t i = end + 1;
    while (i < json.size() && (json[i] == ' ' || json[i] == '\t' || json[i] == '\n')) ++i;
    if (i >= json.size() || json[i] != ':') continue;  // the key text was a value, not a member
    ++i;
    while (i < json.size() && (json[i] == ' ' || json[i] == '\t' || json[i] == '\n')) ++i;
    if (i >= json.size() || json[i] != '"') return std::nullopt;  // null, number, object...
    const size_t start = i + 1;
    size_t close = start;
    while (close < json.size() && json[close] != '"') close += json[close] == '\\' ? 2 : 1;
    if (close >= json.size()) return std::nullopt;
    return json.substr(start, close - start);
  }
  return std::nullopt;
}

std::optional<HttpResponse> http_get(const Target& target, std::string_view path,
                                     std::chrono::milliseconds timeout) {
  try {
    asio::io_context io;
    asio::ip::tcp::resolver resolver(io);
    beast::tcp_stream stream(io);
    stream.expires_after(timeout);
    HttpResponse result;
    std::optional<beast::error_code> failure;
    auto endpoints = resolver.resolve(target.host, target.port);
    http::request<http::empty_body> req{http::verb::get, std::string(path), 11};
    req.set(http::field::host, target.host_header);
    req.set(http::field::connection, "close");
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(64 * 1024 * 1024);
    stream.async_connect(endpoints, [&](beast::error_code ec, const auto&) {
      if (ec) return failure.emplace(ec), void();
      http::async_write(stream, req, [&](beast::error_code ec2, size_t) {
        if (ec2) return failure.emplace(ec2), void();
        http::async_read(stream, buffer, parser, [&](beast::error_code ec3, size_t) {
          if (ec3) return failure.emplace(ec3), void();
          result.status = parser.get().result_int();
          result.body = std::move(parser.get().body());
        });
      });
    });
    io.run();
    if (failure || result.status == 0) return std::nullopt;
    return result;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

}  // namespace commentd::loadgen
