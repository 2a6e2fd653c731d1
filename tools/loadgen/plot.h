// Latency-over-time PNG through gnuplot.
#pragma once

#include <string>

#include "engine.h"

namespace commentd::loadgen {

// Writes `png`: per-second p50 and p99 (log scale, by due second) of each operation that ran,
// and below it the requests completed and the errors per second. Needs `gnuplot` on PATH. Returns
// an empty string on success, else why not (gnuplot missing, gnuplot failed); the caller warns and
// carries on.
std::string write_plot(const EngineResult& result, const std::string& png,
                       const std::string& title);

}  // namespace commentd::loadgen
