// The single declaration of every configuration key (docs/config-schema.md). The parser,
// the validator, describe_schema() and the tests all walk this table. Immutable; thread-safe.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "config/config.h"

namespace commentd::config {

// Where a key's value lives in a Config; the alternative held is the key's type.
template <class T>
using FieldRef = T& (*)(Config&);
using Binding = std::variant<FieldRef<bool>, FieldRef<int>, FieldRef<size_t>,
                             FieldRef<std::string>, FieldRef<milliseconds>,
                             FieldRef<std::vector<std::string>>>;

struct KeySpec {
  std::string_view path{};          // dotted, e.g. "server.threads"
  Binding field{};
  std::string_view default_text{};  // == format_value(*this, Config{}), proven by a test
  int64_t min = 0;                // integers and durations (in ms): inclusive bounds
  int64_t max = 0;
  std::span<const std::string_view> allowed{};  // non-empty only for enum keys
  std::string_view description{};

  bool is_enum() const { return !allowed.empty(); }
  bool has_bounds() const;  // integer or duration
};

// In document order.
std::span<const KeySpec> schema();
const KeySpec* find_key(std::string_view path);
// True if `path` names a section: a proper dotted prefix of some key.
bool is_section(std::string_view path);

// "string", "enum", "bool", "int", "duration" or "list of string".
std::string_view type_name(const KeySpec& key);
// The key's value in `config` as written in default_text: strings quoted, durations like
// "30s", lists like ["a", "b"].
std::string format_value(const KeySpec& key, const Config& config);
// "0..256", "100ms..10m", "trace|debug|...", or "" for keys without bounds.
std::string format_bounds(const KeySpec& key);

// "<digits>ms|s|m|h"; nullopt on anything else or overflow.
std::optional<milliseconds> parse_duration(std::string_view text);
// The largest unit that divides evenly: 90000ms -> "90s", 0 -> "0s".
std::string format_duration(milliseconds d);

}  // namespace commentd::config
