#include "config/config.h"

#include <gtest/gtest.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "config/schema.h"

namespace commentd::config {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// A file of the repository: found from the current directory upwards, else from this source.
fs::path repo_file(const std::string& relative) {
  for (fs::path dir = fs::current_path();; dir = dir.parent_path()) {
    if (fs::exists(dir / relative)) return dir / relative;
    if (dir == dir.parent_path()) break;
  }
  return fs::path(__FILE__).parent_path().parent_path().parent_path() / relative;
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// Dotted paths of every non-mapping value in a YAML mapping.
void leaf_paths(const YAML::Node& map, const std::string& prefix, std::set<std::string>& out) {
  for (const auto& entry : map) {
    std::string path = prefix.empty() ? entry.first.Scalar() : prefix + "." + entry.first.Scalar();
    if (entry.second.IsMap()) leaf_paths(entry.second, path, out);
    else out.insert(path);
  }
}

std::set<std::string> schema_paths() {
  std::set<std::string> out;
  for (const KeySpec& key : schema()) out.insert(std::string(key.path));
  return out;
}

// "a.b.c" and "v" -> "a:\n  b:\n    c: v\n"
std::string nested_yaml(std::string_view path, std::string_view value) {
  std::string out, indent;
  size_t start = 0;
  for (size_t dot; (dot = path.find('.', start)) != std::string_view::npos; start = dot + 1) {
    out += indent + std::string(path.substr(start, dot - start)) + ":\n";
    indent += "  ";
  }
  return out + indent + std::string(path.substr(start)) + ": " + std::string(value) + "\n";
}

std::string error_of(std::string_view yaml) {
  Result<Config> r = parse_config_yaml(yaml);
  if (r.ok()) return "<ok>";
  EXPECT_EQ(r.error().code, Errc::bad_request);
  return r.error().message;
}

// Changes the key's field in `c` to something other than its current value.
void perturb(const KeySpec& key, Config& c) {
  struct Visitor {
    Config& c;
    void operator()(FieldRef<bool> f) const { f(c) = !f(c); }
    void operator()(FieldRef<int> f) const { f(c) += 1; }
    void operator()(FieldRef<size_t> f) const { f(c) += 1; }
    void operator()(FieldRef<std::string> f) const { f(c) += "x"; }
    void operator()(FieldRef<milliseconds> f) const { f(c) += 1ms; }
    void operator()(FieldRef<std::vector<std::string>> f) const { f(c).push_back("x"); }
  };
  std::visit(Visitor{c}, key.field);
}

TEST(ConfigSchema, StructDefaultsEqualTableDefaults) {
  const Config defaults;
  for (const KeySpec& key : schema())
    EXPECT_EQ(format_value(key, defaults), key.default_text) << key.path;
}

TEST(ConfigSchema, TableDefaultTextParsesToTheDefault) {
  for (const KeySpec& key : schema()) {
    Result<Config> r = parse_config_yaml(nested_yaml(key.path, key.default_text));
    ASSERT_TRUE(r.ok()) << key.path << ": " << r.error().message;
    EXPECT_EQ(*r, Config{}) << key.path;
  }
}

TEST(ConfigSchema, EveryKeyBindsItsOwnField) {
  const Config defaults;
  for (const KeySpec& changed : schema()) {
    Config c;
    perturb(changed, c);
    EXPECT_NE(c, defaults) << changed.path;
    for (const KeySpec& other : schema()) {
      if (other.path == changed.path) continue;
      EXPECT_EQ(format_value(other, c), other.default_text)
          << changed.path << " also changed " << other.path;
    }
  }
}

TEST(ConfigSchema, KeysAreUniqueDescribedAndBounded) {
  EXPECT_EQ(schema_paths().size(), schema().size());
  for (const KeySpec& key : schema()) {
    EXPECT_FALSE(key.description.empty()) << key.path;
    EXPECT_FALSE(is_section(key.path)) << key.path;
    if (key.has_bounds()) {
      EXPECT_LE(key.min, key.max) << key.path;
    }
  }
}

TEST(ConfigSchema, MatchesTheDocumentedSchema) {
  std::string doc = read_text(repo_file("docs/config-schema.md"));
  size_t begin = doc.find("```yaml\n");
  ASSERT_NE(begin, std::string::npos) << "docs/config-schema.md not found or has no yaml block";
  begin += 8;
  std::string block = doc.substr(begin, doc.find("```", begin) - begin);

  std::set<std::string> documented;
  leaf_paths(YAML::Load(block), "", documented);
  EXPECT_EQ(documented, schema_paths());
  Result<Config> r = parse_config_yaml(block);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(*r, Config{});
}

TEST(ConfigDefaults, EmptyInputIsAllDefaults) {
  for (std::string_view text : {"", "\n", "# nothing here\n", "---\n", "~\n"}) {
    Result<Config> r = parse_config_yaml(text);
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(*r, Config{});
  }
  EXPECT_TRUE(validate_config(Config{}).ok());
}

TEST(ConfigDefaults, ExampleFileHasEveryKeyAndLoadsAsDefaults) {
  fs::path path = repo_file("config/commentd.example.yaml");
  std::set<std::string> present;
  leaf_paths(YAML::LoadFile(path.string()), "", present);
  EXPECT_EQ(present, schema_paths());
  Result<Config> r = load_config_file(path.string());
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(*r, Config{});
}

TEST(ConfigDefaults, ClusterExampleLoadsAndValidates) {
  Result<Config> r = load_config_file(repo_file("config/cluster.example.yaml").string());
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(validate_config(*r).ok());
  EXPECT_EQ(r->storage.backend, "cql");
  EXPECT_TRUE(r->redis.enabled);
  EXPECT_TRUE(r->pulsar.enabled);
}

TEST(ConfigDefaults, DevFileSetsOnlyAuth) {
  Result<Config> r = load_config_file(repo_file("config/dev.yaml").string());
  ASSERT_TRUE(r.ok()) << r.error().message;
  Config expected;
  expected.auth.dev_mode = true;
  expected.auth.jwt_secret = "dev-secret-change-me";
  EXPECT_EQ(*r, expected);
}

TEST(ConfigParse, PartialSectionsKeepOtherDefaults) {
  Result<Config> r = parse_config_yaml(
      "server:\n  threads: 4\nlimits:\n  create_comment: { limit: 7 }\nredis:\n");
  ASSERT_TRUE(r.ok()) << r.error().message;
  Config expected;
  expected.server.threads = 4;
  expected.limits.create_comment.limit = 7;
  EXPECT_EQ(*r, expected);
}

TEST(ConfigParse, EveryValueType) {
  Result<Config> r = parse_config_yaml(R"(
server: { listen: "[::1]:0", max_body_bytes: 1048576, request_timeout: 2m }
log: { level: debug }
storage:
  backend: cql
  sync_writes: false
  cql: { hosts: ["a:9042", "b:9043"], keyspace: ks_1 }
auth: { jwt_secret: , dev_mode: true }
workers: { reaction_batch: { flush_interval: 250ms } }
)");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->server.listen, "[::1]:0");
  EXPECT_EQ(r->server.max_body_bytes, 1048576u);
  EXPECT_EQ(r->server.request_timeout, 2min);
  EXPECT_EQ(r->log.level, "debug");
  EXPECT_EQ(r->storage.backend, "cql");
  EXPECT_FALSE(r->storage.sync_writes);
  EXPECT_EQ(r->storage.cql.hosts, (std::vector<std::string>{"a:9042", "b:9043"}));
  EXPECT_EQ(r->storage.cql.keyspace, "ks_1");
  EXPECT_EQ(r->auth.jwt_secret, "");
  EXPECT_TRUE(r->auth.dev_mode);
  EXPECT_EQ(r->workers.reaction_batch.flush_interval, 250ms);
}

TEST(ConfigDuration, ParseAndFormat) {
  EXPECT_EQ(parse_duration("100ms"), 100ms);
  EXPECT_EQ(parse_duration("30s"), 30s);
  EXPECT_EQ(parse_duration("5m"), 5min);
  EXPECT_EQ(parse_duration("2h"), 2h);
  EXPECT_EQ(parse_duration("0s"), 0ms);
  for (std::string_view bad : {"", "5", "5x", "ms", "-5s", "+5s", "1.5s", " 5s", "5s ", "5 s",
                               "5S", "5sec", "99999999999999999999h", "9223372036854775807h"})
    EXPECT_FALSE(parse_duration(bad).has_value()) << bad;
  EXPECT_EQ(format_duration(0ms), "0s");
  EXPECT_EQ(format_duration(50ms), "50ms");
  EXPECT_EQ(format_duration(1500ms), "1500ms");
  EXPECT_EQ(format_duration(90s), "90s");
  EXPECT_EQ(format_duration(10min), "10m");
  EXPECT_EQ(format_duration(120min), "2h");
}

TEST(ConfigErrors, UnknownKeysNameTheFullPath) {
  EXPECT_EQ(error_of("server:\n  listne: x\n"), "unknown key 'server.listne'");
  EXPECT_EQ(error_of("serve:\n  listen: x\n"), "unknown key 'serve'");
  EXPECT_EQ(error_of("limits: {create_comment: {limt: 1}}"),
            "unknown key 'limits.create_comment.limt'");
  EXPECT_EQ(error_of("server.threads: 3"), "unknown key 'server.threads'");
  EXPECT_EQ(error_of("server:\n  threads:\n    x: 1\n"),
            "'server.threads' must be an integer, got a mapping");
}

TEST(ConfigErrors, OutOfBounds) {
  EXPECT_EQ(error_of("server:\n  threads: 999\n"),
            "'server.threads' must be between 0 and 256, got 999");
  EXPECT_EQ(error_of("server:\n  threads: -1\n"),
            "'server.threads' must be between 0 and 256, got -1");
  EXPECT_EQ(error_of("server:\n  threads: 99999999999999999999\n"),
            "'server.threads' must be between 0 and 256, got 99999999999999999999");
  EXPECT_EQ(error_of("server:\n  request_timeout: 20m\n"),
            "'server.request_timeout' must be between 100ms and 10m, got 20m");
  EXPECT_EQ(error_of("workers: {reaction_batch: {flush_interval: 0ms}}"),
            "'workers.reaction_batch.flush_interval' must be between 1ms and 1m, got 0ms");
}

TEST(ConfigErrors, BadDuration) {
  EXPECT_EQ(error_of("workers:\n  reaction_batch:\n    flush_interval: 5x\n"),
            "'workers.reaction_batch.flush_interval': bad duration \"5x\" "
            "(use e.g. 100ms, 30s, 5m)");
  EXPECT_EQ(error_of("cache: {page_ttl: 5}"),
            "'cache.page_ttl': bad duration \"5\" (use e.g. 100ms, 30s, 5m)");
  EXPECT_EQ(error_of("cache: {page_ttl: [1s]}"),
            "'cache.page_ttl' must be a duration such as 100ms, 30s or 5m, got a list");
}

TEST(ConfigErrors, WrongTypes) {
  EXPECT_EQ(error_of("server: {threads: abc}"), "'server.threads' must be an integer, got \"abc\"");
  EXPECT_EQ(error_of("server: {threads: 1.5}"), "'server.threads' must be an integer, got \"1.5\"");
  EXPECT_EQ(error_of("server: {threads: }"), "'server.threads' must be an integer, got nothing");
  EXPECT_EQ(error_of("storage: {sync_writes: yes}"),
            "'storage.sync_writes' must be true or false, got \"yes\"");
  EXPECT_EQ(error_of("storage: {data_dir: {a: 1}}"),
            "'storage.data_dir' must be a string, got a mapping");
  EXPECT_EQ(error_of("storage: {cql: {hosts: a:1}}"),
            "'storage.cql.hosts' must be a list of strings, got \"a:1\"");
  EXPECT_EQ(error_of("storage: {cql: {hosts: [a:1, [b]]}}"),
            "'storage.cql.hosts[1]' must be a string, got a list");
  EXPECT_EQ(error_of("server: 5"), "'server' must be a mapping, got \"5\"");
  EXPECT_EQ(error_of("- a\n- b\n"), "the top level must be a mapping, got a list");
  EXPECT_EQ(error_of("log: {level: verbose}"),
            "'log.level' must be one of trace|debug|info|warn|error|off, got \"verbose\"");
  EXPECT_EQ(error_of("storage: {backend: postgres}"),
            "'storage.backend' must be one of rocksdb|cql, got \"postgres\"");
}

TEST(ConfigErrors, YamlSyntaxDuplicatesAndDocuments) {
  EXPECT_EQ(error_of("server:\n  threads: 1\nlog: [\n"),
            "YAML syntax error at line 4, column 1: end of sequence flow not found");
  EXPECT_NE(error_of("server:\n  threads: 1\n   bad: indent\n").find("at line 3"),
            std::string::npos);
  EXPECT_EQ(error_of("server:\n  threads: 1\n  threads: 2\n"), "duplicate key 'server.threads'");
  EXPECT_EQ(error_of("log: {}\n---\nlog: {}\n"), "expected one YAML document, got 2");
}

TEST(ConfigValidate, ListenAndHosts) {
  for (std::string_view ok : {"0.0.0.0:0", "localhost:65535", "[::1]:8080"})
    EXPECT_EQ(error_of("server: {listen: \"" + std::string(ok) + "\"}"), "<ok>") << ok;
  for (std::string_view bad : {"8080", ":8080", "host:", "host:65536", "host:80x", "::1:80",
                               "[::1]8080", "a b:80"})
    EXPECT_EQ(error_of("server: {listen: \"" + std::string(bad) + "\"}"),
              "'server.listen' must be host:port with port 0..65535, got \"" + std::string(bad) +
                  "\"")
        << bad;
  EXPECT_EQ(error_of("storage: {cql: {hosts: [\"db:0\"]}}"),
            "'storage.cql.hosts' entries must be host:port with port 1..65535, got \"db:0\"");
  EXPECT_EQ(error_of("storage: {backend: cql, cql: {hosts: []}}"),
            "'storage.cql.hosts' must not be empty when storage.backend is cql");
  EXPECT_EQ(error_of("storage: {backend: rocksdb, data_dir: \"\"}"),
            "'storage.data_dir' must not be empty when storage.backend is rocksdb");
  EXPECT_NE(error_of("storage: {cql: {keyspace: \"bad-name\"}}").find("'storage.cql.keyspace'"),
            std::string::npos);
}

TEST(ConfigValidate, CqlReplication) {
  EXPECT_EQ(error_of("storage: {cql: {replication: NetworkTopologyStrategy, datacenters: [\"dc1:3\", "
                     "\"eu-west.2:1\"]}}"),
            "<ok>");
  EXPECT_EQ(error_of("storage: {cql: {replication: NetworkTopologyStrategy}}"),
            "'storage.cql.datacenters' must not be empty when storage.cql.replication is "
            "NetworkTopologyStrategy");
  for (std::string_view bad : {"dc1", "dc1:", ":3", "dc1:0", "dc1:33", "dc1:3x", "d c:1"})
    EXPECT_EQ(error_of("storage: {cql: {datacenters: [\"" + std::string(bad) + "\"]}}"),
              "'storage.cql.datacenters' entries must be dc:rf with rf 1..32, got \"" +
                  std::string(bad) + "\"")
        << bad;
  EXPECT_NE(error_of("storage: {cql: {replication: Everywhere}}").find("'storage.cql.replication'"),
            std::string::npos);
}

TEST(ConfigValidate, CqlTls) {
  EXPECT_EQ(error_of("storage: {cql: {tls: {enabled: true}}}"), "<ok>");
  EXPECT_EQ(error_of("storage: {cql: {tls: {enabled: true, ca_file: /ca.pem, cert_file: /c.pem, "
                     "key_file: /k.pem}}}"),
            "<ok>");
  // A file named with TLS off would leave the operator believing it is on.
  EXPECT_EQ(error_of("storage: {cql: {tls: {ca_file: /ca.pem}}}"),
            "'storage.cql.tls.ca_file' is set but storage.cql.tls.enabled is false");
  EXPECT_EQ(error_of("storage: {cql: {tls: {enabled: false, cert_file: /c.pem, key_file: /k.pem}}}"),
            "'storage.cql.tls.cert_file' is set but storage.cql.tls.enabled is false");
  for (std::string_view half : {"cert_file: /c.pem", "key_file: /k.pem"})
    EXPECT_EQ(error_of("storage: {cql: {tls: {enabled: true, " + std::string(half) + "}}}"),
              "'storage.cql.tls.cert_file' and 'storage.cql.tls.key_file' go together: set both or neither")
        << half;
  EXPECT_NE(error_of("storage: {cql: {tls: {enabled: yes-please}}}").find("'storage.cql.tls.enabled'"),
            std::string::npos);
}

TEST(ConfigValidate, RedisTls) {
  EXPECT_EQ(error_of("redis: {enabled: true, tls: {enabled: true, ca_file: /ca.pem}}"), "<ok>");
  EXPECT_EQ(error_of("redis: {tls: {key_file: /k.pem}}"),
            "'redis.tls.key_file' is set but redis.tls.enabled is false");
  EXPECT_EQ(error_of("redis: {tls: {enabled: true, key_file: /k.pem}}"),
            "'redis.tls.cert_file' and 'redis.tls.key_file' go together: set both or neither");
  EXPECT_EQ(error_of("redis: {enabled: true, cluster_nodes: [\"r1:6380\"], tls: {enabled: true}}"), "<ok>");
}

TEST(ConfigValidate, PulsarTls) {
  EXPECT_EQ(error_of("pulsar: {enabled: true, url: \"pulsar+ssl://b:6651\", tls: {ca_file: /ca.pem}}"), "<ok>");
  EXPECT_EQ(error_of("pulsar: {enabled: true, url: \"pulsar+ssl://b:6651\"}"), "<ok>");  // the system's roots
  EXPECT_EQ(error_of("pulsar: {enabled: true, tls: {ca_file: /ca.pem}}"),
            "'pulsar.tls.ca_file' is set but neither 'pulsar.url' is pulsar+ssl:// nor 'pulsar.admin_url' https:// "
            "(the schemes turn TLS on)");
  EXPECT_EQ(error_of("pulsar: {enabled: true, admin_url: \"https://b:8443\", tls: {ca_file: /ca.pem}}"), "<ok>");
  // The scheme is the switch, and the crate presents no client certificate.
  EXPECT_EQ(error_of("pulsar: {tls: {enabled: true}}"), "unknown key 'pulsar.tls.enabled'");
  EXPECT_EQ(error_of("pulsar: {tls: {cert_file: /c.pem}}"), "unknown key 'pulsar.tls.cert_file'");
}

TEST(ConfigEnv, CqlPasswordFromTheEnvironment) {
  Config c;
  ::setenv("COMMENTD_CQL_PASSWORD", "s3cret", 1);
  apply_env(c);
  ::unsetenv("COMMENTD_CQL_PASSWORD");
  EXPECT_EQ(c.storage.cql.password, "s3cret");
}

TEST(ConfigValidate, OrderingAcrossKeys) {
  EXPECT_EQ(error_of("storage: {write_queue_capacity: 100, max_group_commit: 200}"),
            "'storage.max_group_commit' (200) must not exceed "
            "'storage.write_queue_capacity' (100)");
  // Every admitted write has a slot in the write queue.
  EXPECT_EQ(error_of("storage: {write_queue_capacity: 3000}"),
            "'server.admission.max_writes + server.admission.max_reactions' (3072) must not "
            "exceed 'storage.write_queue_capacity' (3000)");
  EXPECT_EQ(error_of("storage: {write_queue_capacity: 3000}\n"
                     "server: {admission: {max_writes: 500, max_reactions: 2500}}"),
            "<ok>");
  EXPECT_EQ(error_of("workers: {reaction_batch: {batch_size: 10, max_pending_ops: 5}}"),
            "'workers.reaction_batch.batch_size' (10) must not exceed "
            "'workers.reaction_batch.max_pending_ops' (5)");
  EXPECT_EQ(error_of("workers: {metrics_reconciliation: {realtime_interval: 1m}}"),
            "'workers.metrics_reconciliation.realtime_interval' (1m) must not exceed "
            "'workers.metrics_reconciliation.high_frequency_interval' (30s)");
  EXPECT_EQ(error_of("workers: {tiers: {normal_per_minute: 100}}"),
            "'workers.tiers.normal_per_minute' (100) must not exceed "
            "'workers.tiers.high_per_minute' (60)");
  EXPECT_EQ(error_of("redis: {enabled: true, host: \"\"}"),
            "'redis.host' must not be empty when redis.enabled is true");
  EXPECT_EQ(error_of("pulsar: {enabled: true, url: \"http://x\"}"),
            "'pulsar.url' must start with pulsar:// or pulsar+ssl://, got \"http://x\"");
  EXPECT_EQ(error_of("pulsar: {enabled: false, url: \"http://x\"}"), "<ok>");
  // The reaction owner's lease outlasts a write started with request_timeout + 2 s left.
  const std::string cluster = "storage: {backend: cql, cql: {hosts: [\"db:9042\"], request_timeout: 10s}}\n"
                              "pulsar: {enabled: true}\n";
  EXPECT_EQ(error_of(cluster),
            "'workers.reaction_batch.owner_lease' must be at least 3 x (storage.cql.request_timeout + 2s) = 36s "
            "with pulsar on cql, got 30s");
  EXPECT_EQ(error_of(cluster + "workers: {reaction_batch: {owner_lease: 36s}}"), "<ok>");
  EXPECT_EQ(error_of("storage: {backend: cql, cql: {hosts: [\"db:9042\"], request_timeout: 10s}}"), "<ok>");
}

TEST(ConfigValidate, ChecksProgrammaticConfigs) {
  Config c;
  c.server.threads = 999;
  Status st = validate_config(c);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().message, "'server.threads' must be between 0 and 256, got 999");
  c = Config{};
  c.log.level = "loud";
  EXPECT_FALSE(validate_config(c).ok());
  c = Config{};
  c.cache.page_ttl = 2h;
  EXPECT_EQ(validate_config(c).error().message,
            "'cache.page_ttl' must be between 0s and 1h, got 2h");
}

TEST(ConfigHostPort, Parses) {
  std::optional<HostPort> hp = parse_host_port("[2001:db8::1]:443");
  ASSERT_TRUE(hp.has_value());
  EXPECT_EQ(hp->host, "2001:db8::1");
  EXPECT_EQ(hp->port, 443);
  hp = parse_host_port("example.com:0");
  ASSERT_TRUE(hp.has_value());
  EXPECT_EQ(hp->host, "example.com");
  EXPECT_EQ(hp->port, 0);
  EXPECT_FALSE(parse_host_port("").has_value());
  EXPECT_FALSE(parse_host_port("[]:80").has_value());
  EXPECT_FALSE(parse_host_port("host:123456").has_value());
}

TEST(ConfigFile, ErrorsNameTheFile) {
  Result<Config> missing = load_config_file("/nonexistent/commentd.yaml");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, Errc::bad_request);
  EXPECT_NE(missing.error().message.find("/nonexistent/commentd.yaml"), std::string::npos);

  fs::path path = fs::temp_directory_path() / ("commentd_config_test_" +
                                               std::to_string(::getpid()) + ".yaml");
  { std::ofstream(path) << "server:\n  listne: x\n"; }
  Result<Config> r = load_config_file(path.string());
  fs::remove(path);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, path.string() + ": unknown key 'server.listne'");
}

TEST(ConfigEnv, JwtSecretOverride) {
  Config c;
  c.auth.jwt_secret = "from-file";
  ::unsetenv("COMMENTD_JWT_SECRET");
  apply_env(c);
  EXPECT_EQ(c.auth.jwt_secret, "from-file");
  ::setenv("COMMENTD_JWT_SECRET", "", 1);
  apply_env(c);
  EXPECT_EQ(c.auth.jwt_secret, "from-file");
  ::setenv("COMMENTD_JWT_SECRET", "from-env", 1);
  apply_env(c);
  ::unsetenv("COMMENTD_JWT_SECRET");
  EXPECT_EQ(c.auth.jwt_secret, "from-env");
}

TEST(ConfigEnv, CursorSecretOverride) {
  Config c;
  ::setenv("COMMENTD_CURSOR_SECRET", "", 1);
  apply_env(c);
  EXPECT_EQ(c.auth.cursor_secret, "");
  ::setenv("COMMENTD_CURSOR_SECRET", "from-env", 1);
  apply_env(c);
  ::unsetenv("COMMENTD_CURSOR_SECRET");
  EXPECT_EQ(c.auth.cursor_secret, "from-env");
}

TEST(ConfigDescribe, ListsEveryKeyWithBounds) {
  std::string text = describe_schema();
  for (const KeySpec& key : schema())
    EXPECT_NE(text.find(std::string(key.path) + " "), std::string::npos) << key.path;
  for (std::string_view s : {"0..256", "100ms..10m", "trace|debug|info|warn|error|off",
                             "\"127.0.0.1:8080\"", "COMMENTD_JWT_SECRET",
                             "COMMENTD_CURSOR_SECRET"})
    EXPECT_NE(text.find(s), std::string::npos) << s;
}

}  // namespace
}  // namespace commentd::config
