// baseline_server: the physical limit commentd is measured against. A minimal Beast/Asio
// keep-alive HTTP/1.1 server with commentd's threading model (one io_context, N threads,
// one coroutine per connection) that answers every request with 200 and a fixed JSON body of
// --body-bytes (default 6000, about a cached page of 20 comments), sent as prebuilt bytes the
// way commentd sends a cached page. Anything commentd costs above this is commentd's own.
//
// usage: baseline_server [--listen 127.0.0.1:PORT] [--threads N] [--body-bytes N]
// Prints "listening on PORT" on stdout once bound (port 0 = any free port); stops on
// SIGINT/SIGTERM.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <charconv>
#include <cstdio>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace commentd::bench {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
constexpr auto nothrow = asio::as_tuple(asio::use_awaitable);

struct Options {
  std::string host = "127.0.0.1";
  unsigned short port = 0;
  unsigned threads = 0;  // 0 = one per core
  size_t body_bytes = 6000;
};

// A JSON-shaped body of exactly `size` bytes (>= 64), like a page of comments.
std::string make_body(size_t size) {
  std::string body = R"({"comments":[)";
  const std::string tail = R"(],"next_cursor":null})";
  for (int i = 0; body.size() + tail.size() < size; ++i) {
    if (i) body += ',';
    body += R"({"id":"00000000-0000-4000-8000-)";
    body += std::to_string(100000000000 + i);
    body += R"(","likes":0,"content":")";
    const size_t room = size - tail.size() - body.size();
    const size_t text = std::min<size_t>(room > 2 ? room - 2 : 0, 200);
    body.append(text, 'x');
    body += R"("})";
  }
  body.resize(size - tail.size(), ' ');
  return body + tail;
}

std::string make_response(const std::string& body, bool keep_alive) {
  std::string r =
      "HTTP/1.1 200 OK\r\nServer: baseline\r\nContent-Type: application/json\r\nContent-Length: ";
  r += std::to_string(body.size());
  r += keep_alive ? "\r\n\r\n" : "\r\nConnection: close\r\n\r\n";
  return r + body;
}

struct Responses {
  std::string keep_alive;
  std::string close;
};

asio::awaitable<void> serve(tcp::socket socket, const Responses& responses) {
  beast::error_code ignored;
  socket.set_option(tcp::no_delay(true), ignored);
  beast::flat_buffer buffer;
  for (;;) {
    http::request_parser<http::string_body> parser;
    parser.body_limit(1 << 20);
    auto [ec, n] = co_await http::async_read(socket, buffer, parser, nothrow);
    if (ec) break;
    const bool keep_alive = parser.get().keep_alive();
    const std::string& bytes = keep_alive ? responses.keep_alive : responses.close;
    auto [wec, wn] = co_await asio::async_write(socket, asio::buffer(bytes), nothrow);
    if (wec || !keep_alive) break;
  }
  socket.shutdown(tcp::socket::shutdown_send, ignored);
}

asio::awaitable<void> accept_loop(tcp::acceptor& acceptor, const Responses& responses) {
  for (;;) {
    auto [ec, socket] = co_await acceptor.async_accept(nothrow);
    if (ec == asio::error::operation_aborted) co_return;
    if (ec) continue;  // e.g. EMFILE: keep serving the connections we have
    asio::co_spawn(acceptor.get_executor(), serve(std::move(socket), responses), asio::detached);
  }
}

std::optional<Options> parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (i + 1 >= argc) return std::nullopt;
    const std::string_view value = argv[++i];
    auto number = [&](auto& out) {
      auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), out);
      return ec == std::errc() && p == value.data() + value.size();
    };
    if (arg == "--listen") {
      const size_t colon = value.rfind(':');
      if (colon == std::string_view::npos) return std::nullopt;
      o.host = std::string(value.substr(0, colon));
      const std::string_view port = value.substr(colon + 1);
      auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), o.port);
      if (ec != std::errc() || p != port.data() + port.size()) return std::nullopt;
    } else if (arg == "--threads") {
      if (!number(o.threads)) return std::nullopt;
    } else if (arg == "--body-bytes") {
      if (!number(o.body_bytes) || o.body_bytes < 64 || o.body_bytes > (64u << 20))
        return std::nullopt;
    } else {
      return std::nullopt;
    }
  }
  return o;
}

int run(int argc, char** argv) {
  const auto options = parse(argc, argv);
  if (!options) {
    std::fputs("usage: baseline_server [--listen HOST:PORT] [--threads N] [--body-bytes N>=64]\n",
               stderr);
    return 2;
  }
  const unsigned threads =
      options->threads ? options->threads : std::max(1u, std::thread::hardware_concurrency());
  const std::string body = make_body(options->body_bytes);
  const Responses responses{make_response(body, true), make_response(body, false)};

  asio::io_context io(static_cast<int>(threads));
  tcp::acceptor acceptor(io);
  const tcp::endpoint endpoint(asio::ip::make_address(options->host), options->port);
  acceptor.open(endpoint.protocol());
  acceptor.set_option(asio::socket_base::reuse_address(true));
  acceptor.bind(endpoint);
  acceptor.listen(asio::socket_base::max_listen_connections);
  std::cout << "listening on " << acceptor.local_endpoint().port() << std::endl;

  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const beast::error_code&, int) { io.stop(); });
  asio::co_spawn(io, accept_loop(acceptor, responses), asio::detached);

  std::vector<std::thread> pool;
  for (unsigned i = 1; i < threads; ++i) pool.emplace_back([&io] { io.run(); });
  io.run();
  for (auto& t : pool) t.join();
  return 0;
}

}  // namespace
}  // namespace commentd::bench

int main(int argc, char** argv) {
  try {
    return commentd::bench::run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "baseline_server: %s\n", e.what());
    return 1;
  }
}
