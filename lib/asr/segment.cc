#include "asr/segment.h"

#include <algorithm>

namespace asrc::asr {

std::vector<LookaheadSegment> PlanLookaheadSegments(int64_t frames, int64_t segment, int64_t context) {
  if (segment <= 0 || frames <= segment) return {{0, frames, 0, frames}};
  context = std::max<int64_t>(0, context);
  const int64_t n = (frames + segment - 1) / segment;
  // Every window has one length: the longest piece with its context on both sides. The first and
  // last windows take the context they lack on one side from the other, so the encoder always
  // sees one input shape and the session's pooled buffers (sized by shape) fit every window.
  const int64_t longest = (frames + n - 1) / n;
  const int64_t width = std::min(frames, longest + 2 * context);
  std::vector<LookaheadSegment> plan;
  for (int64_t i = 0; i < n; ++i) {
    LookaheadSegment s;
    s.keep_begin = frames * i / n;  // n nearly equal pieces: no short last segment
    s.keep_end = frames * (i + 1) / n;
    s.window_begin = std::clamp<int64_t>(s.keep_begin - context, 0, frames - width);
    s.window_end = s.window_begin + width;
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
