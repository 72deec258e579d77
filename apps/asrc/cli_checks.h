// Flags and range checks shared by the commands: the decoding flags of eval and transcribe, the
// evaluation flags of compress and ablate. A flag out of range is a one-line error naming the
// flag, never a hang or a silent clamp.
#pragma once

#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "asr/stream.h"
#include "core/status.h"

namespace asrc::pass {
struct CompressRequest;
}

namespace asrc::app {

constexpr int kMaxBeam = 64;         // modified beam search keeps `beam` hypotheses per frame
constexpr int kMaxSymbols = 100;     // greedy: labels per encoder frame
constexpr int kMaxThreads = 256;     // a cap when the machine's core count is unknown or larger

// Checks --beam (0..kMaxBeam), --max-symbols (1..kMaxSymbols) and --threads (>= 1); a --threads
// above the machine's cores (or kMaxThreads) is lowered to them, with a note on stderr. `cmd` prefixes
// the messages.
Status CheckDecodeFlags(const std::string& cmd, int beam, int max_symbols, int* threads);

// Adds --lookahead-segment and --lookahead-context (asr::RecognizerOptions) to a decoding command.
void AddLookaheadOptions(CLI::App* sub, double* segment_s, double* context_s);

constexpr double kMinLookaheadSegment = 1.0;  // seconds; shorter segments are refused

// Checks --lookahead-segment and --lookahead-context (seconds, finite, >= 0; segment 0: never
// segment, else at least kMinLookaheadSegment).
Status CheckLookaheadFlags(const std::string& cmd, double segment_s, double context_s);

// The decoding flags of eval and transcribe (mode's default is the command's).
struct DecodeFlags {
  std::string mode;  // streaming | lookahead | both
  int beam = 0, max_symbols = 5, threads = 1;
  double segment_s = asr::RecognizerOptions{}.lookahead_segment_s;
  double context_s = asr::RecognizerOptions{}.lookahead_context_s;
};

// Adds --mode, --beam, --max-symbols, --threads, --lookahead-segment and --lookahead-context.
void AddDecodeOptions(CLI::App* sub, DecodeFlags* flags);

// CheckDecodeFlags, then CheckLookaheadFlags, on `flags` (threads may be lowered).
Status CheckDecodeFlags(const std::string& cmd, DecodeFlags* flags);

// Adds the evaluation flags compress and ablate share: --eval-limit, --threads, --calibration
// (pass::CompressRequest's eval_limit, threads, calibration).
void AddEvalRequestOptions(CLI::App* sub, pass::CompressRequest* request);

// Checks those flags where given (left out, the pipeline's values apply): --eval-limit >= 0,
// --threads >= 1 and lowered to the machine's cores as CheckDecodeFlags does.
Status CheckEvalRequestFlags(const std::string& cmd, CLI::App* sub, pass::CompressRequest* request);

// A numeric flag and its allowed range (inclusive); NaN and infinities are always out of range.
struct FlagRange {
  std::string flag;
  double value, min, max;
};

// The first flag out of its range as "<cmd>: <flag> <value>: expected <min>..<max>".
Status CheckFlagRanges(const std::string& cmd, const std::vector<FlagRange>& flags);

// An error naming the first of `given` that `command_kind` does not use (e.g. a one-graph flag
// given for a bundle): a flag that would be ignored silently is refused instead. `unused` lists
// the flags this kind ignores; `why` ends the message ("applies to one-graph models only").
Status RefuseUnusedFlags(const std::string& cmd, const std::vector<std::string>& given,
                         const std::vector<std::string>& unused, const std::string& why);

// An input must be a regular file (or, with `folder_ok`, a folder): reading a FIFO or a device
// would block or never end. `what` names it in the message ("manifest", "model").
Status CheckInputPath(const std::string& path, const std::string& what, bool folder_ok);

}  // namespace asrc::app
