// Small HTTP helpers shared by the engine, the workloads and the /metrics scraper.
// All functions are pure or own their I/O; thread-safe.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace commentd::loadgen {

// The server under test, from a URL of the form http://HOST:PORT[/...] (path ignored).
struct Target {
  std::string host;         // e.g. "127.0.0.1"
  std::string port;         // e.g. "8080"
  std::string host_header;  // "HOST:PORT", sent as Host
};
// nullopt unless `url` is http://HOST[:PORT][/...]; the port defaults to 80.
std::optional<Target> parse_target(std::string_view url);

// Appends one HTTP/1.1 keep-alive request to `out`. An empty `bearer` sends no
// Authorization header; an empty `body` with a method other than POST/PUT/PATCH sends no
// Content-Type/Content-Length.
void append_request(std::string& out, std::string_view method, std::string_view target,
                    std::string_view host_header, std::string_view bearer, std::string_view body);

// The string value of the first JSON member named `key` in `json` (a plain text scan that
// does not unescape; enough for ids and cursors). nullopt if absent or not a string.
std::optional<std::string_view> find_json_string(std::string_view json, std::string_view key);

struct HttpResponse {
  unsigned status = 0;
  std::string body;
};
// One blocking GET on a fresh connection; nullopt on any network error or timeout.
std::optional<HttpResponse> http_get(const Target& target, std::string_view path,
                                     std::chrono::milliseconds timeout);

}  // namespace commentd::loadgen
