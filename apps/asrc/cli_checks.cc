#include "cli_checks.h"

#include <sys/stat.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <iostream>
#include <thread>
#include <utility>

#include "pass/compress.h"

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

void AddLookaheadOptions(CLI::App* sub, double* segment_s, double* context_s) {
  sub->add_option("--lookahead-segment", *segment_s,
                  "Look-ahead: encode audio longer than this many seconds in segments (0: never)")
      ->capture_default_str();
  sub->add_option("--lookahead-context", *context_s,
                  "Look-ahead: seconds of left and right context around each segment")
      ->capture_default_str();
}

Status CheckLookaheadFlags(const std::string& cmd, double segment_s, double context_s) {
  for (auto [flag, v] : {std::pair{"--lookahead-segment", segment_s}, std::pair{"--lookahead-context", context_s}})
    if (!std::isfinite(v) || v < 0)
      return Error(cmd + ": " + flag + " " + std::to_string(v) + ": expected seconds >= 0");
  return Status::Ok();
}

void AddDecodeOptions(CLI::App* sub, DecodeFlags* f) {
  sub->add_option("--mode", f->mode, "streaming | lookahead | both")
      ->check(CLI::IsMember({"streaming", "lookahead", "both"}));
  sub->add_option("--beam", f->beam, "Modified beam search with this beam (0/1: greedy)");
  sub->add_option("--max-symbols", f->max_symbols, "Greedy: max labels per encoder frame");
  sub->add_option("--threads", f->threads, "Threads per graph run");
  AddLookaheadOptions(sub, &f->segment_s, &f->context_s);
}

Status CheckDecodeFlags(const std::string& cmd, DecodeFlags* f) {
  ASRC_RETURN_IF_ERROR(CheckDecodeFlags(cmd, f->beam, f->max_symbols, &f->threads));
  return CheckLookaheadFlags(cmd, f->segment_s, f->context_s);
}

void AddEvalRequestOptions(CLI::App* sub, pass::CompressRequest* r) {
  sub->add_option("--eval-limit", r->eval_limit, "Evaluate only the first N utterances (0: all)");
  sub->add_option("--threads", r->threads, "Threads per graph run in evaluation");
  sub->add_option("--calibration", r->calibration, "Calibration manifest (default: the pipeline's, else the eval manifest)");
}

Status CheckInputPath(const std::string& path, const std::string& what, bool folder_ok) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0)
    return Error(path + ": " + what + " not found (" + std::strerror(errno) + ")");
  if (S_ISREG(st.st_mode) || (folder_ok && S_ISDIR(st.st_mode))) return Status::Ok();
  return Error(path + ": " + what + " is " + (S_ISDIR(st.st_mode) ? "a folder" : "not a regular file") +
               (folder_ok ? "; expected a file or a bundle folder" : "; expected a file"));
}

}  // namespace asrc::app
