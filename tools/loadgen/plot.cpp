#include "plot.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace commentd::loadgen {

namespace {

bool on_path(const std::string& program) {
  const char* path = std::getenv("PATH");
  if (path == nullptr) return false;
  std::stringstream dirs(path);
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    if (!dir.empty() && ::access((dir + "/" + program).c_str(), X_OK) == 0) return true;
  }
  return false;
}

std::string quoted(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'')
      out += "''";
    else
      out += c;
  }
  return out + "'";
}

}  // namespace

std::string write_plot(const EngineResult& result, const std::string& png,
                       const std::string& title) {
  if (!on_path("gnuplot")) return "gnuplot is not on PATH";
  namespace fs = std::filesystem;
  const fs::path data = fs::path(png).concat(".dat");
  const fs::path script = fs::path(png).concat(".gp");
  std::vector<size_t> ops;
  {
    std::ofstream out(data);
    // One gnuplot data block per op: t p50_ms p99_ms max_ms completed errors.
    for (size_t op = 0; op < result.stats.op_count(); ++op) {
      const OpStats& s = result.stats.op(op);
      if (s.count == 0) continue;
      ops.push_back(op);
      out << "# " << result.op_names[op] << "\n";
      for (size_t t = 0; t < s.series.size(); ++t) {
        const SecondStats& sec = s.series[t];
        if (sec.latency.count() == 0) {
          out << t << " NaN NaN NaN " << sec.completed << ' ' << sec.errors << "\n";
          continue;
        }
        out << t << ' ' << sec.latency.percentile(50) / 1000.0 << ' '
            << sec.latency.percentile(99) / 1000.0 << ' ' << sec.latency.max() / 1000.0 << ' '
            << sec.completed << ' ' << sec.errors << "\n";
      }
      out << "\n\n";
    }
    if (!out) return "cannot write " + data.string();
  }
  if (ops.empty()) return "nothing to plot";
  {
    std::ofstream gp(script);
    gp << "set terminal pngcairo size 1200,800 noenhanced\n"
       << "set output " << quoted(png) << "\n"
       << "set multiplot layout 2,1 title " << quoted(title) << "\n"
       << "set grid\nset key outside right\nset lmargin 12\nset rmargin 30\nset logscale y\n"
       << "set ylabel 'latency ms'\nset xlabel ''\n"
       << "plot ";
    for (size_t i = 0; i < ops.size(); ++i) {
      const std::string name = result.op_names[ops[i]];
      gp << (i ? ", " : "") << quoted(data.string()) << " index " << i
         << " using 1:3 with lines lw 2 lc " << i + 1 << " title " << quoted(name + " p99") << ", "
         << quoted(data.string()) << " index " << i << " using 1:2 with lines dt 2 lc " << i + 1
         << " title " << quoted(name + " p50");
    }
    gp << "\nunset logscale y\nset yrange [0:*]\nset ylabel 'completed/s'\nset xlabel "
          "'seconds'\nplot ";
    for (size_t i = 0; i < ops.size(); ++i) {
      const std::string name = result.op_names[ops[i]];
      gp << (i ? ", " : "") << quoted(data.string()) << " index " << i
         << " using 1:5 with lines lc " << i + 1 << " title " << quoted(name) << ", "
         << quoted(data.string()) << " index " << i
         << " using 1:($6 > 0 ? $6 : NaN) with points pt 7 ps 0.5 lc " << i + 1 << " title "
         << quoted(name + " errors");
    }
    gp << "\nunset multiplot\n";
    if (!gp) return "cannot write " + script.string();
  }
  const std::string cmd = "gnuplot " + quoted(script.string()) + " 2>&1";
  // `quoted` makes gnuplot-style quotes; for the shell the same single quotes work as long as
  // the path has no quote, which the check below guarantees.
  if (script.string().find('\'') != std::string::npos) return "plot path must not contain a quote";
  const int rc = std::system(cmd.c_str());
  std::error_code ec;
  fs::remove(script, ec);
  fs::remove(data, ec);
  if (rc != 0) return "gnuplot failed (exit " + std::to_string(rc) + ")";
  return {};
}

}  // namespace commentd::loadgen
