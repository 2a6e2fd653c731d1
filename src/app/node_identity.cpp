#include "app/node_identity.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace commentd::app {

Result<uint16_t> resolve_node_id(int configured, const std::string& data_dir, uint64_t random_bits) {
  if (configured >= 1 && configured <= 1023) return static_cast<uint16_t>(configured);
  if (configured != 0) return Error(Errc::bad_request, "node.id must be 0..1023");
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(data_dir, ec);
  if (ec) return Error(Errc::internal, "cannot create data dir " + data_dir + ": " + ec.message());
  fs::path path = fs::path(data_dir) / "node_id";
  if (std::ifstream in(path); in) {
    std::stringstream ss;
    ss << in.rdbuf();
    int v = 0;
    if (std::sscanf(ss.str().c_str(), "%d", &v) == 1 && v >= 1 && v <= 1023) return static_cast<uint16_t>(v);
    return Error(Errc::internal, path.string() + ": not a node id 1..1023");
  }
  uint16_t id = static_cast<uint16_t>(1 + random_bits % 1023);
  fs::path tmp = path;
  tmp += ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << id << "\n";
    out.flush();
    if (!out) return Error(Errc::internal, "cannot write " + tmp.string());
  }
  fs::rename(tmp, path, ec);  // atomic: a crash leaves either no file or the whole id
  if (ec) return Error(Errc::internal, "cannot write " + path.string() + ": " + ec.message());
  return id;
}

}  // namespace commentd::app
