#include "api/json_body.h"

#include <rapidjson/error/en.h>
#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>

#include <string>
#include <unordered_set>
#include <vector>

namespace commentd::api {
namespace {

constexpr unsigned kFlags = rapidjson::kParseIterativeFlag;

Error invalid(std::string msg) { return Error(Errc::bad_request, std::move(msg), "invalid_json"); }

// A SAX pass that stops at the first container past the depth limit or the first repeated
// member name; `error` says which.
struct Checker : rapidjson::BaseReaderHandler<rapidjson::UTF8<>, Checker> {
  size_t max_depth;
  size_t depth = 0;
  // One name set per open container (empty for arrays).
  std::vector<std::unordered_set<std::string>> names;
  std::string error;

  explicit Checker(size_t max) : max_depth(max) {}

  bool Default() { return true; }
  bool open() {
    if (++depth > max_depth) {
      error = "body nests deeper than " + std::to_string(max_depth) + " levels";
      return false;
    }
    names.emplace_back();
    return true;
  }
  bool close() {
    --depth;
    names.pop_back();
    return true;
  }
  bool StartObject() { return open(); }
  bool EndObject(rapidjson::SizeType) { return close(); }
  bool StartArray() { return open(); }
  bool EndArray(rapidjson::SizeType) { return close(); }
  bool Key(const char* s, rapidjson::SizeType n, bool) {
    if (!names.back().emplace(s, n).second) {
      std::string shown;
      for (char c : std::string_view(s, n).substr(0, 40))
        shown.push_back(c >= 0x20 && c < 0x7f ? c : '?');
      error = "duplicate key '" + shown + "'";
      return false;
    }
    return true;
  }
};

}  // namespace

Result<rapidjson::Document> parse_json_body(std::string_view body, size_t max_depth) {
  Checker checker(max_depth);
  rapidjson::Reader reader;
  rapidjson::MemoryStream ms(body.data(), body.size());
  rapidjson::ParseResult pr = reader.Parse<kFlags>(ms, checker);
  if (!checker.error.empty()) return invalid(std::move(checker.error));
  if (pr.IsError())
    return invalid(std::string("body is not valid JSON: ") + rapidjson::GetParseError_En(pr.Code()) +
                   " at offset " + std::to_string(pr.Offset()));

  rapidjson::Document d;
  d.Parse<kFlags>(body.data(), body.size());
  if (d.HasParseError()) return invalid("body is not valid JSON");  // the SAX pass accepted it
  if (!d.IsObject()) return invalid("body must be a JSON object");
  return d;
}

}  // namespace commentd::api
