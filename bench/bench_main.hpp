// The main() shared by the benchmark programs: Google Benchmark's usual command line, and when the
// output is the console (no --benchmark_format other than console), a ConsoleReporter subclass that
// prints the program's summary of targets after the usual table.
#pragma once

#include <benchmark/benchmark.h>
#include <unistd.h>

#include <string_view>

namespace tgbench {

/// False when --benchmark_format asks for something other than the console table.
inline bool wants_console(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a.starts_with("--benchmark_format=") && a != "--benchmark_format=console") return false;
  }
  return true;
}

/// Initialises Google Benchmark from the command line, calls register_all() to register the
/// program's benchmarks, runs them (with a Reporter, constructed from the console's colour
/// setting, when the output is the console) and returns main()'s exit code.
template <class Reporter, class Register>
int benchmark_main(int argc, char** argv, Register register_all) {
  const bool console = wants_console(argc, argv);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  register_all();
  if (console) {
    Reporter reporter(isatty(STDOUT_FILENO) != 0 ? benchmark::ConsoleReporter::OO_Color
                                                 : benchmark::ConsoleReporter::OO_None);
    benchmark::RunSpecifiedBenchmarks(&reporter);
  } else {
    benchmark::RunSpecifiedBenchmarks();
  }
  benchmark::Shutdown();
  return 0;
}

}  // namespace tgbench
