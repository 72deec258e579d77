// Helpers shared by lib/asr/stream.cc and lib/asr/recognize.cc (not installed; not an interface).
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>

#include "asr/stream.h"

namespace asrc::asr::internal {

using Clock = std::chrono::steady_clock;
inline double MsSince(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}
// Process CPU time (all threads), in ms: RTF on a shared machine without the waiting.
inline double CpuMs() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

// Seconds of audio as encoder frames (frame shift x subsampling), rounded, at least 1; <= 0 stays 0 (off).
inline int64_t SecondsToEncoderFrames(const BundleConfig& c, double seconds) {
  const double frame_s = c.frontend.frame_shift_ms * std::max(1, c.subsampling_factor) / 1000.0;
  if (!(seconds > 0) || !(frame_s > 0)) return 0;
  return std::max<int64_t>(1, std::llround(std::min(seconds / frame_s, 1e12)));
}

}  // namespace asrc::asr::internal
