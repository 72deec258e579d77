#include "asr/segment.h"

#include <algorithm>

namespace asrc::asr {

std::vector<LookaheadSegment> PlanLookaheadSegments(int64_t frames, int64_t segment, int64_t context) {
  if (segment <= 0 || frames <= segment) return {{0, frames, 0, frames}};
  context = std::max<int64_t>(0, context);
  const int64_t n = (frames + segment - 1) / segment;
  std::vector<LookaheadSegment> plan;
  for (int64_t i = 0; i < n; ++i) {
    LookaheadSegment s;
    s.keep_begin = frames * i / n;  // n nearly equal pieces: no short last segment
    s.keep_end = frames * (i + 1) / n;
    s.window_begin = std::max<int64_t>(0, s.keep_begin - context);
    s.window_end = std::min(frames, s.keep_end + context);
    plan.push_back(s);
  }
  return plan;
}

std::vector<FeatureSegment> PlanFeatureSegments(int64_t frames, int64_t out_frames, int64_t factor,
                                                int64_t segment, int64_t context, int64_t lag) {
  factor = std::max<int64_t>(1, factor);
  lag = std::max<int64_t>(0, lag);
  std::vector<FeatureSegment> plan;
  for (const LookaheadSegment& s : PlanLookaheadSegments(out_frames, segment, context)) {
    FeatureSegment f;
    f.keep_begin = s.keep_begin;
    f.keep_end = s.keep_end;
    f.first_output = s.window_begin;
    f.window_begin = std::min(frames, s.window_begin * factor);
    // The window that reaches the end of the output takes the rest of the features: the whole
    // input's last output frames may depend on feature frames past out_frames * factor.
    f.window_end = s.window_end >= out_frames ? frames : std::min(frames, (s.window_end + lag) * factor);
    plan.push_back(f);
  }
  return plan;
}

}  // namespace asrc::asr
