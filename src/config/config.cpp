#include "config/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include "config/schema.h"

namespace commentd::config {
namespace {

Error bad(std::string message) { return Error{Errc::bad_request, std::move(message)}; }

std::string key_name(std::string_view path) { return "'" + std::string(path) + "'"; }

std::string quoted(std::string_view s) {
  constexpr size_t kMaxShown = 80;
  std::string out = "\"";
  out += s.substr(0, kMaxShown);
  if (s.size() > kMaxShown) out += "...";
  return out + "\"";
}

// What a node holds, for "got ..." in error messages.
std::string shown(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map: return "a mapping";
    case YAML::NodeType::Sequence: return "a list";
    case YAML::NodeType::Scalar: return quoted(node.Scalar());
    default: return "nothing";
  }
}

Status range_error(const KeySpec& key, const std::string& bound_lo, const std::string& bound_hi,
                   std::string_view got) {
  return bad(key_name(key.path) + " must be between " + bound_lo + " and " + bound_hi +
             ", got " + std::string(got));
}

Status check_int(const KeySpec& key, int64_t value, std::string_view got) {
  if (value >= key.min && value <= key.max) return ok_status();
  return range_error(key, std::to_string(key.min), std::to_string(key.max), got);
}

Status check_duration(const KeySpec& key, milliseconds value, std::string_view got) {
  if (value.count() >= key.min && value.count() <= key.max) return ok_status();
  return range_error(key, format_duration(milliseconds{key.min}),
                     format_duration(milliseconds{key.max}), got);
}

Status check_enum(const KeySpec& key, const std::string& value) {
  if (std::find(key.allowed.begin(), key.allowed.end(), value) != key.allowed.end())
    return ok_status();
  return bad(key_name(key.path) + " must be one of " + format_bounds(key) + ", got " +
             quoted(value));
}

// Stores one YAML value into the field its key is bound to; checks type and bounds.
struct LeafLoader {
  const KeySpec& key;
  const YAML::Node& node;
  Config& config;

  Error type_error(std::string_view expected) const {
    return bad(key_name(key.path) + " must be " + std::string(expected) + ", got " + shown(node));
  }

  Status operator()(FieldRef<bool> f) const {
    if (node.IsScalar() && node.Scalar() == "true") f(config) = true;
    else if (node.IsScalar() && node.Scalar() == "false") f(config) = false;
    else return type_error("true or false");
    return ok_status();
  }

  Result<int64_t> integer() const {
    if (!node.IsScalar()) return type_error("an integer");
    const std::string& text = node.Scalar();
    int64_t value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec == std::errc::result_out_of_range)
      return range_error(key, std::to_string(key.min), std::to_string(key.max), text).take_error();
    if (ec != std::errc() || end != text.data() + text.size() || text.empty())
      return type_error("an integer");
    Status in_range = check_int(key, value, text);
    if (!in_range) return in_range.take_error();
    return value;
  }
  Status operator()(FieldRef<int> f) const {
    Result<int64_t> v = integer();
    if (!v) return v.take_error();
    f(config) = static_cast<int>(*v);
    return ok_status();
  }
  Status operator()(FieldRef<size_t> f) const {
    Result<int64_t> v = integer();
    if (!v) return v.take_error();
    f(config) = static_cast<size_t>(*v);
    return ok_status();
  }

  Status operator()(FieldRef<std::string> f) const {
    std::string value;  // a key with no value is the empty string
    if (node.IsScalar()) value = node.Scalar();
    else if (!node.IsNull()) return type_error("a string");
    if (key.is_enum()) {
      Status allowed = check_enum(key, value);
      if (!allowed) return allowed;
    }
    f(config) = std::move(value);
    return ok_status();
  }

  Status operator()(FieldRef<milliseconds> f) const {
    if (!node.IsScalar()) return type_error("a duration such as 100ms, 30s or 5m");
    std::optional<milliseconds> d = parse_duration(node.Scalar());
    if (!d)
      return bad(key_name(key.path) + ": bad duration " + quoted(node.Scalar()) +
                 " (use e.g. 100ms, 30s, 5m)");
    Status in_range = check_duration(key, *d, node.Scalar());
    if (!in_range) return in_range;
    f(config) = *d;
    return ok_status();
  }

  Status operator()(FieldRef<std::vector<std::string>> f) const {
    std::vector<std::string> items;  // a key with no value is the empty list
    if (node.IsSequence()) {
      for (size_t i = 0; i < node.size(); ++i) {
        if (!node[i].IsScalar())
          return bad(key_name(std::string(key.path) + "[" + std::to_string(i) + "]") +
                     " must be a string, got " + shown(node[i]));
        items.push_back(node[i].Scalar());
      }
    } else if (!node.IsNull()) {
      return type_error("a list of strings");
    }
    f(config) = std::move(items);
    return ok_status();
  }
};

// Walks a mapping at `prefix`; every key must be a schema key or section.
Status load_map(const YAML::Node& map, const std::string& prefix, Config& config,
                std::set<std::string>& seen) {
  for (const auto& entry : map) {
    const YAML::Node& k = entry.first;
    const YAML::Node& v = entry.second;
    std::string where = prefix.empty() ? "the top level" : key_name(prefix);
    if (!k.IsScalar()) return bad("non-string key " + shown(k) + " under " + where);
    const std::string& name = k.Scalar();
    std::string path = prefix.empty() ? name : prefix + "." + name;
    if (name.empty() || name.find('.') != std::string::npos)
      return bad("unknown key " + key_name(path));
    if (!seen.insert(path).second) return bad("duplicate key " + key_name(path));

    if (const KeySpec* key = find_key(path)) {
      Status loaded = std::visit(LeafLoader{*key, v, config}, key->field);
      if (!loaded) return loaded;
    } else if (is_section(path)) {
      if (v.IsNull()) continue;  // "section:" with nothing under it
      if (!v.IsMap()) return bad(key_name(path) + " must be a mapping, got " + shown(v));
      Status loaded = load_map(v, path, config, seen);
      if (!loaded) return loaded;
    } else {
      return bad("unknown key " + key_name(path));
    }
  }
  return ok_status();
}

// Bounds and allowed values of every key, as stored in `config`.
Status check_keys(const Config& config) {
  Config copy = config;  // FieldRef takes a mutable Config
  for (const KeySpec& key : schema()) {
    Status st = ok_status();
    if (auto* f = std::get_if<FieldRef<int>>(&key.field)) {
      st = check_int(key, (*f)(copy), std::to_string((*f)(copy)));
    } else if (auto* g = std::get_if<FieldRef<size_t>>(&key.field)) {
      size_t v = (*g)(copy);
      int64_t clamped = static_cast<int64_t>(std::min<size_t>(v, INT64_MAX));
      st = check_int(key, clamped, std::to_string(v));
    } else if (auto* d = std::get_if<FieldRef<milliseconds>>(&key.field)) {
      st = check_duration(key, (*d)(copy), format_duration((*d)(copy)));
    } else if (auto* s = std::get_if<FieldRef<std::string>>(&key.field); s && key.is_enum()) {
      st = check_enum(key, (*s)(copy));
    }
    if (!st) return st;
  }
  return ok_status();
}

bool is_cql_identifier(std::string_view s) {
  if (s.empty() || s.size() > 48) return false;
  if (!std::isalpha(static_cast<unsigned char>(s[0]))) return false;
  return std::all_of(s.begin(), s.end(), [](char ch) {
    return std::isalnum(static_cast<unsigned char>(ch)) || ch == '_';
  });
}

// Datacenter names: letters, digits, _, - and . (Cassandra's snitches allow these).
bool is_cql_identifier_chars(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char ch) {
    return std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' || ch == '-' || ch == '.';
  });
}

Status must_not_exceed(std::string_view lo_key, int64_t lo, std::string_view hi_key,
                       int64_t hi, std::string_view lo_shown, std::string_view hi_shown) {
  if (lo <= hi) return ok_status();
  return bad(key_name(lo_key) + " (" + std::string(lo_shown) + ") must not exceed " +
             key_name(hi_key) + " (" + std::string(hi_shown) + ")");
}

Status check_ms_order(std::string_view lo_key, milliseconds lo, std::string_view hi_key,
                      milliseconds hi) {
  return must_not_exceed(lo_key, lo.count(), hi_key, hi.count(), format_duration(lo),
                         format_duration(hi));
}

Status check_int_order(std::string_view lo_key, int64_t lo, std::string_view hi_key,
                       int64_t hi) {
  return must_not_exceed(lo_key, lo, hi_key, hi, std::to_string(lo), std::to_string(hi));
}

// A TLS section (`prefix` is its path). A file named while TLS is off would leave the
// operator believing it is on.
Status check_tls(const std::string& prefix, const TlsConfig& tls) {
  for (auto [key, file] : {std::pair{"ca_file", &tls.ca_file}, std::pair{"cert_file", &tls.cert_file},
                           std::pair{"key_file", &tls.key_file}})
    if (!tls.enabled && !file->empty())
      return bad("'" + prefix + "." + key + "' is set but " + prefix + ".enabled is false");
  if (tls.cert_file.empty() != tls.key_file.empty())
    return bad("'" + prefix + ".cert_file' and '" + prefix + ".key_file' go together: set both or neither");
  return ok_status();
}

// Rules that span keys or look inside a string.
Status check_cross_keys(const Config& c) {
  if (!parse_host_port(c.server.listen))
    return bad("'server.listen' must be host:port with port 0..65535, got " +
               quoted(c.server.listen));

  for (const std::string& host : c.storage.cql.hosts) {
    std::optional<HostPort> hp = parse_host_port(host);
    if (!hp || hp->port == 0)
      return bad("'storage.cql.hosts' entries must be host:port with port 1..65535, got " +
                 quoted(host));
  }
  if (c.storage.backend == "cql" && c.storage.cql.hosts.empty())
    return bad("'storage.cql.hosts' must not be empty when storage.backend is cql");
  if (Status st = check_tls("storage.cql.tls", c.storage.cql.tls); !st) return st;
  if (!is_cql_identifier(c.storage.cql.keyspace))
    return bad("'storage.cql.keyspace' must be 1-48 letters, digits or _, starting with a "
               "letter, got " + quoted(c.storage.cql.keyspace));
  for (const std::string& dc : c.storage.cql.datacenters) {
    auto colon = dc.rfind(':');
    int rf = 0;
    bool ok = colon != std::string::npos && colon > 0 && is_cql_identifier_chars(dc.substr(0, colon));
    if (ok) {
      auto [end, ec] = std::from_chars(dc.data() + colon + 1, dc.data() + dc.size(), rf);
      ok = ec == std::errc() && end == dc.data() + dc.size() && rf >= 1 && rf <= 32;
    }
    if (!ok)
      return bad("'storage.cql.datacenters' entries must be dc:rf with rf 1..32, got " + quoted(dc));
  }
  if (c.storage.cql.replication == "NetworkTopologyStrategy" && c.storage.cql.datacenters.empty())
    return bad("'storage.cql.datacenters' must not be empty when storage.cql.replication is "
               "NetworkTopologyStrategy");
  if (c.storage.backend == "rocksdb" && c.storage.data_dir.empty())
    return bad("'storage.data_dir' must not be empty when storage.backend is rocksdb");

  const auto& rb = c.workers.reaction_batch;
  const auto& mr = c.workers.metrics_reconciliation;
  const auto& t = c.workers.tiers;
  const std::string mrp = "workers.metrics_reconciliation.";
  for (const Status& st : {
           check_int_order("storage.max_group_commit",
                           static_cast<int64_t>(c.storage.max_group_commit),
                           "storage.write_queue_capacity",
                           static_cast<int64_t>(c.storage.write_queue_capacity)),
           check_int_order("server.admission.max_writes + server.admission.max_reactions",
                           static_cast<int64_t>(c.server.admission.max_writes + c.server.admission.max_reactions),
                           "storage.write_queue_capacity",
                           static_cast<int64_t>(c.storage.write_queue_capacity)),
           check_int_order("workers.reaction_batch.batch_size",
                           static_cast<int64_t>(rb.batch_size),
                           "workers.reaction_batch.max_pending_ops",
                           static_cast<int64_t>(rb.max_pending_ops)),
           check_ms_order(mrp + "realtime_interval", mr.realtime_interval,
                          mrp + "high_frequency_interval", mr.high_frequency_interval),
           check_ms_order(mrp + "high_frequency_interval", mr.high_frequency_interval,
                          mrp + "normal_frequency_interval", mr.normal_frequency_interval),
           check_ms_order(mrp + "normal_frequency_interval", mr.normal_frequency_interval,
                          mrp + "low_frequency_interval", mr.low_frequency_interval),
           check_int_order("workers.tiers.high_per_minute", t.high_per_minute,
                           "workers.tiers.realtime_per_minute", t.realtime_per_minute),
           check_int_order("workers.tiers.normal_per_minute", t.normal_per_minute,
                           "workers.tiers.high_per_minute", t.high_per_minute),
       }) {
    if (!st) return st;
  }

  // The owner lease outlasts a write started with its margin (request_timeout + 2 s) left,
  // after a renewal at a third of it (workers/owner_leases.h).
  if (c.storage.backend == "cql" && c.pulsar.enabled) {
    const auto margin = c.storage.cql.request_timeout + std::chrono::seconds(2);
    if (rb.owner_lease < 3 * margin)
      return bad("'workers.reaction_batch.owner_lease' must be at least 3 x (storage.cql.request_timeout + 2s) = " +
                 format_duration(3 * margin) + " with pulsar on cql, got " + format_duration(rb.owner_lease));
  }
  if (c.redis.enabled && c.redis.host.empty())
    return bad("'redis.host' must not be empty when redis.enabled is true");
  for (const auto& n : c.redis.cluster_nodes)
    if (!parse_host_port(n)) return bad("'redis.cluster_nodes': bad host:port '" + n + "'");
  if (Status st = check_tls("redis.tls", c.redis.tls); !st) return st;
  if (c.redis.key_prefix.find_first_of("{}") != std::string::npos)
    return bad("'redis.key_prefix' must not contain '{' or '}' (they mark Redis Cluster hash tags)");
  if (c.pulsar.enabled) {
    if (!c.pulsar.url.starts_with("pulsar://") && !c.pulsar.url.starts_with("pulsar+ssl://"))
      return bad("'pulsar.url' must start with pulsar:// or pulsar+ssl://, got " +
                 quoted(c.pulsar.url));
    if (!c.pulsar.tls_ca_file.empty() && !c.pulsar.url.starts_with("pulsar+ssl://") &&
        !c.pulsar.admin_url.starts_with("https://"))
      return bad("'pulsar.tls.ca_file' is set but neither 'pulsar.url' is pulsar+ssl:// nor 'pulsar.admin_url' "
                 "https:// (the schemes turn TLS on)");
    for (const auto* topic : {&c.pulsar.topics.comments, &c.pulsar.topics.reactions,
                              &c.pulsar.topics.metrics})
      if (topic->empty())
        return bad("'pulsar.topics' must all be non-empty when pulsar.enabled is true");
  }
  return ok_status();
}

}  // namespace

Status validate_config(const Config& config) {
  Status st = check_keys(config);
  if (!st) return st;
  return check_cross_keys(config);
}

Result<Config> parse_config_yaml(std::string_view yaml_text) {
  std::vector<YAML::Node> docs;
  try {
    docs = YAML::LoadAll(std::string(yaml_text));
  } catch (const YAML::Exception& e) {
    std::string where = e.mark.is_null() ? "" : " at line " + std::to_string(e.mark.line + 1) +
                                                    ", column " + std::to_string(e.mark.column + 1);
    return bad("YAML syntax error" + where + ": " + e.msg);
  }
  if (docs.size() > 1)
    return bad("expected one YAML document, got " + std::to_string(docs.size()));

  Config config;
  if (docs.empty() || docs[0].IsNull()) return config;
  if (!docs[0].IsMap()) return bad("the top level must be a mapping, got " + shown(docs[0]));
  std::set<std::string> seen;
  Status loaded = load_map(docs[0], "", config, seen);
  if (!loaded) return loaded.take_error();
  Status valid = validate_config(config);
  if (!valid) return valid.take_error();
  return config;
}

Result<Config> load_config_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return bad("cannot read config file '" + path + "': " + std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return bad("cannot read config file '" + path + "'");
  Result<Config> config = parse_config_yaml(text.str());
  if (!config) return bad(path + ": " + config.error().message);
  return config;
}

void apply_env(Config& config) {
  const char* secret = std::getenv("COMMENTD_JWT_SECRET");
  if (secret && *secret) config.auth.jwt_secret = secret;
  const char* cursor = std::getenv("COMMENTD_CURSOR_SECRET");
  if (cursor && *cursor) config.auth.cursor_secret = cursor;
  const char* cql_password = std::getenv("COMMENTD_CQL_PASSWORD");
  if (cql_password && *cql_password) config.storage.cql.password = cql_password;
}

std::string describe_schema() {
  const Config defaults;
  struct Row { std::string cols[4]; std::string_view description; };
  std::vector<Row> rows = {{{"KEY", "TYPE", "DEFAULT", "BOUNDS"}, "DESCRIPTION"}};
  for (const KeySpec& key : schema())
    rows.push_back({{std::string(key.path), std::string(type_name(key)),
                     format_value(key, defaults), format_bounds(key)},
                    key.description});
  size_t width[4] = {};
  for (const Row& r : rows)
    for (size_t i = 0; i < 4; ++i) width[i] = std::max(width[i], r.cols[i].size());

  std::string out =
      "commentd configuration (YAML). Unknown keys are errors; absent keys take the default.\n"
      "Durations are <int>ms|s|m|h, e.g. 100ms, 30s, 5m. Bounds are inclusive.\n"
      "Environment: COMMENTD_JWT_SECRET, if non-empty, overrides auth.jwt_secret;\n"
      "COMMENTD_CURSOR_SECRET, if non-empty, overrides auth.cursor_secret.\n\n";
  for (const Row& r : rows) {
    for (size_t i = 0; i < 4; ++i) {
      out += r.cols[i];
      out.append(width[i] - r.cols[i].size() + 2, ' ');
    }
    out += r.description;
    out += '\n';
  }
  return out;
}

std::optional<HostPort> parse_host_port(std::string_view text) {
  HostPort hp;
  std::string_view port;
  if (text.starts_with('[')) {
    size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':')
      return std::nullopt;
    hp.host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    size_t colon = text.find(':');
    if (colon == std::string_view::npos || text.find(':', colon + 1) != std::string_view::npos)
      return std::nullopt;
    hp.host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  if (hp.host.empty() || port.empty() || port.size() > 5) return std::nullopt;
  for (char ch : hp.host)
    if (std::isspace(static_cast<unsigned char>(ch)) || ch == '[' || ch == ']' || ch == '/')
      return std::nullopt;
  unsigned value = 0;
  for (char ch : port) {
    if (ch < '0' || ch > '9') return std::nullopt;
    value = value * 10 + static_cast<unsigned>(ch - '0');
  }
  if (value > 65535) return std::nullopt;
  hp.port = static_cast<uint16_t>(value);
  return hp;
}

}  // namespace commentd::config
