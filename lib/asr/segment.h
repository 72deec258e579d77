// Overlap-and-discard plans for encoding long audio in segments (look-ahead mode): each segment's
// output frames come from an encoder run on a window holding the segment and some context on both
// sides; only the segment's own frames are kept, so the encoder's memory is bounded by the window
// instead of growing with the square of the audio length. Pure arithmetic; Recognizer
// (asr/stream.h) runs the plans.
#pragma once

#include <cstdint>
#include <vector>

namespace asrc::asr {

// One piece of a segmented look-ahead pass, in encoder frames: the non-causal encoder runs on
// [window_begin, window_end) and its outputs for [keep_begin, keep_end) are kept.
struct LookaheadSegment {
  int64_t window_begin = 0, window_end = 0, keep_begin = 0, keep_end = 0;
};

// Splits `frames` encoder frames into ceil(frames / segment) kept pieces of nearly equal length
// (consecutive, covering [0, frames) once), each inside a window with at least `context` frames
// of left and right context where the audio has them. All windows have one length (the longest
// piece + 2 x context, at most the audio): the first and last take more context on their inner
// side. Windows start and end in non-decreasing order. segment <= 0 or frames <= segment: one
// piece, the whole input.
std::vector<LookaheadSegment> PlanLookaheadSegments(int64_t frames, int64_t segment, int64_t context);

// One piece of a segmented single-encoder pass (a `transducer` bundle: features in, subsampled
// frames out). The encoder runs on feature frames [window_begin, window_end); of its output, the
// frames numbered [keep_begin, keep_end) in the whole input's output are kept, and its output
// frame 0 is the whole input's frame `first_output` (= window_begin / factor).
struct FeatureSegment {
  int64_t window_begin = 0, window_end = 0;
  int64_t keep_begin = 0, keep_end = 0, first_output = 0;
};

// The plan for an encoder that subsamples `frames` feature frames by `factor` into `out_frames`
// output frames, translation-equivariantly: a window starting at feature frame b, a multiple of
// `factor`, gives as its output frame j the whole input's frame b / factor + j (true of strided
// convolution or pooling stacks, whatever their padding: out(L) = floor((L + c) / factor)).
// The output frames are planned as PlanLookaheadSegments(out_frames, segment, context) plans
// encoder frames: the kept pieces tile [0, out_frames) once, in order, with no gap. Each window
// starts at a multiple of `factor` and, unless it reaches the end of the output (then it ends at
// `frames`), ends `lag` output frames past its right context: an encoder that drops frames at the
// edges (out(m * factor) = m - lag; icefall's Conv2dSubsampling drops one or two) still returns
// every kept frame. segment <= 0 or out_frames <= segment: one piece, the whole input.
std::vector<FeatureSegment> PlanFeatureSegments(int64_t frames, int64_t out_frames, int64_t factor,
                                                int64_t segment, int64_t context, int64_t lag);

}  // namespace asrc::asr
