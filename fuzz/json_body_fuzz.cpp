// The request-body parser over arbitrary bytes: never crashes, and what it accepts is one
// object nested at most kMaxBodyDepth deep.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "api/json_body.h"

namespace {
size_t depth(const rapidjson::Value& v) {
  size_t d = 0;
  if (v.IsObject())
    for (auto& m : v.GetObject()) d = std::max(d, depth(m.value));
  else if (v.IsArray())
    for (auto& e : v.GetArray()) d = std::max(d, depth(e));
  else
    return 0;
  return d + 1;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view body(reinterpret_cast<const char*>(data), size);
  auto d = commentd::api::parse_json_body(body);
  if (d.ok()) {
    if (!d->IsObject() || depth(*d) > commentd::api::kMaxBodyDepth) std::abort();
  } else if (d.error().client_code() != "invalid_json") {
    std::abort();
  }
  return 0;
}
