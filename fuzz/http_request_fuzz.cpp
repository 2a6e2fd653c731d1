// Beast's HTTP/1.1 request parser, as the server configures it, over arbitrary bytes fed in
// two pieces (the first byte says where to split): never crashes or reads out of bounds, and
// never yields a body over the limit.
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

namespace beast = boost::beast;
namespace bhttp = beast::http;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  constexpr size_t kBodyLimit = 4096;
  size_t split = size > 1 ? 1 + data[0] % (size - 1) : 1;
  const char* p = reinterpret_cast<const char*>(data + 1);
  size_t n = size - 1;
  split = std::min(split, n);
  // Several requests in a row, as on a keep-alive connection.
  size_t offset = 0;
  std::string pending;
  for (int msg = 0; msg < 4 && offset <= n; ++msg) {
    bhttp::request_parser<bhttp::string_body> parser;
    parser.body_limit(kBodyLimit);
    parser.header_limit(8192);
    parser.eager(true);
    beast::error_code ec;
    size_t used = 0;
    for (size_t end : {split, n}) {
      if (end <= offset + used) continue;
      pending.assign(p + offset + used, end - offset - used);
      size_t got = 0;
      while (got < pending.size() && !ec && !parser.is_done()) {
        size_t k = parser.put(boost::asio::buffer(pending.data() + got, pending.size() - got), ec);
        if (ec == bhttp::error::need_more) { ec = {}; break; }
        if (k == 0 && !ec) break;
        got += k;
      }
      used += got;
      if (ec || parser.is_done()) break;
      if (got < pending.size()) break;  // the parser wants the rest together
    }
    if (ec || !parser.is_done()) break;
    auto req = parser.release();
    if (req.body().size() > kBodyLimit) std::abort();
    (void)req.target();
    (void)req.method();
    offset += used;
    if (!req.keep_alive()) break;
  }
  return 0;
}
