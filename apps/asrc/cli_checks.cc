#include "cli_checks.h"

#include <iostream>
#include <thread>

namespace asrc::app {

Status CheckDecodeFlags(const std::string& cmd, int beam, int max_symbols, int* threads) {
  if (beam < 0 || beam > kMaxBeam)
    return Error(cmd + ": --beam " + std::to_string(beam) + ": expected 0..." + std::to_string(kMaxBeam) +
                 " (0 or 1: greedy)");
  if (max_symbols < 1 || max_symbols > kMaxSymbols)
    return Error(cmd + ": --max-symbols " + std::to_string(max_symbols) + ": expected 1..." +
                 std::to_string(kMaxSymbols));
  if (*threads < 1) return Error(cmd + ": --threads " + std::to_string(*threads) + ": expected >= 1");
  int cores = static_cast<int>(std::thread::hardware_concurrency());
  if (cores <= 0 || cores > kMaxThreads) cores = kMaxThreads;
  if (*threads > cores) {
    std::cerr << "asrc: " << cmd << ": --threads " << *threads << " lowered to " << cores
              << " (the cores of this machine, at most " << kMaxThreads << ")\n";
    *threads = cores;
  }
  return Status::Ok();
}

}  // namespace asrc::app
