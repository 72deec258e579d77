#include "cli_checks.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <iostream>
#include <sstream>
#include <thread>
#include <utility>

#include "pass/compress.h"

namespace asrc::app {

namespace {
// --threads >= 1, lowered to the machine's cores (at most kMaxThreads) with a note on stderr.
Status LowerThreads(const std::string& cmd, int* threads) {
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
}  // namespace

Status CheckDecodeFlags(const std::string& cmd, int beam, int max_symbols, int* threads) {
  if (beam < 0 || beam > kMaxBeam)
    return Error(cmd + ": --beam " + std::to_string(beam) + ": expected 0..." + std::to_string(kMaxBeam) +
                 " (0 or 1: greedy)");
  if (max_symbols < 1 || max_symbols > kMaxSymbols)
    return Error(cmd + ": --max-symbols " + std::to_string(max_symbols) + ": expected 1..." +
                 std::to_string(kMaxSymbols));
  return LowerThreads(cmd, threads);
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
  // A segment of a few encoder frames decodes nonsense without a word of warning ("then" for a
  // 4-second sentence at 0.001 s): a segment is at least kMinLookaheadSegment seconds.
  if (segment_s > 0 && segment_s < kMinLookaheadSegment)
    return Error(cmd + ": --lookahead-segment " + std::to_string(segment_s) + ": expected 0 (never segment) or at least " +
                 std::to_string(static_cast<int>(kMinLookaheadSegment)) + " second");
  return Status::Ok();
}

Status CheckFlagRanges(const std::string& cmd, const std::vector<FlagRange>& flags) {
  auto num = [](double v) {
    std::ostringstream os;
    os << v;
    return os.str();
  };
  for (const FlagRange& f : flags)
    if (!std::isfinite(f.value) || f.value < f.min || f.value > f.max)
      return Error(cmd + ": " + f.flag + " " + num(f.value) + ": expected " + num(f.min) + ".." + num(f.max));
  return Status::Ok();
}

Status RefuseUnusedFlags(const std::string& cmd, const std::vector<std::string>& given,
                         const std::vector<std::string>& unused, const std::string& why) {
  for (const std::string& g : given)
    if (std::find(unused.begin(), unused.end(), g) != unused.end())
      return Error(cmd + ": " + g + " " + why + "; it would be ignored here");
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

Status CheckEvalRequestFlags(const std::string& cmd, CLI::App* sub, pass::CompressRequest* r) {
  if (sub->get_option("--eval-limit")->count() > 0 && r->eval_limit < 0)
    return Error(cmd + ": --eval-limit " + std::to_string(r->eval_limit) + ": expected >= 0 (0: all)");
  if (sub->get_option("--threads")->count() > 0) return LowerThreads(cmd, &r->threads);
  return Status::Ok();
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
