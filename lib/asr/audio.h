// Audio input: any file libsndfile reads (WAV, FLAC, OGG, ...), downmixed to mono (mean of the
// channels) and resampled to the model's rate with libsoxr (high quality). Samples come back as
// floats in [-1, 1) — libsndfile's normalization, the same as torchaudio.load.
#pragma once

#include <string>
#include <vector>

#include "core/status.h"

namespace asrc::asr {

struct Audio {
  std::vector<float> samples;  // mono, at `sample_rate`
  int sample_rate = 0;
  int source_rate = 0, source_channels = 0;
  double seconds() const { return sample_rate > 0 ? double(samples.size()) / sample_rate : 0.0; }
};

// OK when `path` is a non-empty regular file (never opens it, so a FIFO cannot block); errors name
// the file and say what it is instead.
Status CheckAudioFile(const std::string& path);

// CheckAudioFile, then the header: a format libsndfile reads, with channels, a rate and samples.
// Cheap (no decoding); corrupt data after the header is found only by LoadAudio.
Status ProbeAudio(const std::string& path);

// Reads `path` (after CheckAudioFile) and converts it to mono at `target_rate`. Errors (one line, naming the file):
// unreadable or unsupported file, no samples, non-finite samples.
Result<Audio> LoadAudio(const std::string& path, int target_rate);

// Resamples mono `in` from `from_rate` to `to_rate` (libsoxr, high quality).
Result<std::vector<float>> Resample(const std::vector<float>& in, int from_rate, int to_rate);

}  // namespace asrc::asr
