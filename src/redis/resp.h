// The RESP2 adapter over hiredis: requests formatted by redisFormatCommandArgv, replies
// parsed by hiredis's reader and converted to our own Reply value. No hiredis type crosses
// this header. Reply is a value type; RespReader is owned by one connection (not thread-safe).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"

namespace commentd::redis {

struct Reply {
  enum class Type : uint8_t { string, array, integer, nil, status, error };
  Type type = Type::nil;
  int64_t integer = 0;
  std::string str;  // string, status, error
  std::vector<Reply> elements;

  bool is_error() const { return type == Type::error; }
  bool is_nil() const { return type == Type::nil; }
  // The error's first word ("MOVED", "ASK", "NOSCRIPT", "WRONGPASS"...), empty for non-errors.
  std::string_view error_kind() const;
};

// One RESP2 command from its arguments (binary-safe).
std::string format_command(const std::vector<std::string>& args);

class RespReader {
 public:
  RespReader();
  ~RespReader();
  RespReader(const RespReader&) = delete;
  RespReader& operator=(const RespReader&) = delete;

  void feed(const char* data, size_t len);
  // The next complete reply; nullopt when more bytes are needed; an Error on a protocol error
  // (the connection must then be closed).
  Result<std::optional<Reply>> next();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Redis Cluster hash slot of a key (CRC16/XMODEM of the {hash tag} if any, mod 16384).
uint16_t key_slot(std::string_view key);

}  // namespace commentd::redis
