// commentd: the comment service. With no config it runs embedded (RocksDB in ./data).
#include <spdlog/spdlog.h>

#include <cstdio>
#include <csignal>
#include <cstring>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "app/application.h"
#include "store/cql/backfill.h"
#include "store/cql/migrate.h"
#include "store/cql/verify.h"

namespace {

void usage() {
  std::puts(
      "usage: commentd [--config FILE] [--listen HOST:PORT] [--data-dir DIR] [--port-file FILE]\n"
      "                [--print-routes] [--help-config] [--help]\n"
      "       commentd migrate --config FILE\n"
      "       commentd backfill --config FILE [--concurrency N] [--ranges N] [--page-size N]\n"
      "                         [--max-rate ROWS_PER_S] [--job NAME] [--restart]\n"
      "  migrate           create or upgrade the CQL keyspace and tables of storage.cql.*\n"
      "                    (docs/cluster.md \"Schema and migration\"); exit 0 once the schema\n"
      "                    is at the latest version, 1 with the reason otherwise\n"
      "  backfill          bring V1 data on CQL up to V2 (docs/operations.md section 3);\n"
      "                    resumable: run it again after a stop\n"
      "  --config FILE     YAML config (docs/config-schema.md); none = embedded defaults\n"
      "  --listen H:P      overrides server.listen (port 0 = any free port)\n"
      "  --data-dir DIR    overrides storage.data_dir\n"
      "  --port-file FILE  write the bound port there once listening\n"
      "  --print-routes    print every served route and exit\n"
      "  --verify          offline check (server stopped): recount every comment's and video's\n"
      "                    counters from their source of truth; exit 1 if any has drifted\n"
      "                    (on CQL also [--repair] [--concurrency N])\n"
      "  --help-config     print every config key with its default and bounds, and exit");
}

}  // namespace

int main(int argc, char** argv) {
  using namespace commentd;
  std::string config_path, listen, data_dir, port_file;
  bool print_routes = false, verify = false, migrate = false, backfill = false;
  std::vector<std::string> tool_args;  // backfill's flags, and --verify's on CQL
  int first = 1;
  if (argc > 1 && std::strcmp(argv[1], "migrate") == 0) {
    migrate = true;
    first = 2;
  } else if (argc > 1 && std::strcmp(argv[1], "backfill") == 0) {
    backfill = true;
    first = 2;
  }
  for (int i = first; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](const char* name) -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "commentd: %s needs a value\n", name);
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--config") config_path = value("--config");
    else if (a == "--listen") listen = value("--listen");
    else if (a == "--data-dir") data_dir = value("--data-dir");
    else if (a == "--port-file") port_file = value("--port-file");
    else if (a == "--print-routes") print_routes = true;
    else if (a == "--verify") verify = true;
    else if (a == "--help-config") { std::cout << config::describe_schema(); return 0; }
    else if (a == "--help" || a == "-h") { usage(); return 0; }
    else if (backfill || (a == "--repair" || a == "--concurrency")) {
      tool_args.push_back(a);
      if ((a == "--concurrency" || a == "--ranges" || a == "--page-size" || a == "--max-rate" || a == "--job") &&
          i + 1 < argc)
        tool_args.push_back(argv[++i]);
    } else {
      std::fprintf(stderr, "commentd: unknown argument '%s' (see --help)\n", a.c_str());
      return 2;
    }
  }

  auto cfg = config_path.empty() ? config::parse_config_yaml("") : config::load_config_file(config_path);
  if (!cfg) {
    std::fprintf(stderr, "commentd: config: %s\n", cfg.error().message.c_str());
    return 2;
  }
  config::apply_env(*cfg);
  if (!listen.empty()) cfg->server.listen = listen;
  if (!data_dir.empty()) cfg->storage.data_dir = data_dir;
  if (auto v = config::validate_config(*cfg); !v) {
    std::fprintf(stderr, "commentd: config: %s\n", v.error().message.c_str());
    return 2;
  }
  spdlog::set_level(spdlog::level::from_str(cfg->log.level));
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");

  if (print_routes) {
    for (auto& r : app::describe_routes()) std::cout << r << "\n";
    return 0;
  }

  if (!tool_args.empty() && !backfill && !(verify && cfg->storage.backend == "cql")) {
    std::fprintf(stderr, "commentd: %s is a flag of `backfill` and of --verify on CQL only\n", tool_args[0].c_str());
    return 2;
  }
  if (verify && cfg->storage.backend == "cql") return store::cql::run_verify_command(*cfg, tool_args);
  if (verify) return app::verify_counts(*cfg);
  if (migrate) return store::cql::run_migrate_command(*cfg);
  if (backfill) return store::cql::run_backfill_command(*cfg, tool_args);

  // A server never dies of a peer that closed its socket: every write reports EPIPE instead
  // (Asio sends with MSG_NOSIGNAL already; the Rust drivers write with writev).
  std::signal(SIGPIPE, SIG_IGN);
  app::Application application(std::move(*cfg));
  auto port = application.start();
  if (!port) {
    spdlog::error("start-up failed: {}", port.error().message);
    application.stop();
    return 1;
  }
  if (!port_file.empty()) {
    std::string tmp = port_file + ".tmp";
    std::ofstream(tmp) << *port << "\n";
    std::rename(tmp.c_str(), port_file.c_str());
  }
  application.run_until_signal();
  return 0;
}
