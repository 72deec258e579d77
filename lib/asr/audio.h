// Audio input: any file libsndfile reads (WAV, FLAC, OGG, ...), downmixed to mono (mean of the
// channels) and resampled to the model's rate with libsoxr (high quality). Samples come back as
// floats in [-1, 1) — libsndfile's normalization, the same as torchaudio.load.
// AudioSource reads a file block by block (memory flat in its length: long recordings);
// LoadAudio reads it whole through the same source, so both give the same samples.
#pragma once

#include <cstdint>
#include <memory>
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

// A file's samples on demand: libsndfile block reads, downmix, libsoxr in its streaming mode.
// The samples are those that reading the whole file, downmixing it and resampling it in one
// call (Resample) gives, bit for bit.
class AudioSource {
 public:
  // Opens `path` (after CheckAudioFile) for mono samples at `target_rate`.
  static Result<std::unique_ptr<AudioSource>> Open(const std::string& path, int target_rate);
  ~AudioSource();
  AudioSource(const AudioSource&) = delete;
  AudioSource& operator=(const AudioSource&) = delete;

  // Replaces *out with the next samples (a few thousand); empty only at the end of the audio.
  // Errors (one line, naming the file): decoding error, non-finite samples, no samples at all.
  Status Read(std::vector<float>* out);
  // The number of samples the header promises after resampling (what Read will give in all when
  // the header is right), or -1 when the header does not say.
  int64_t expected_samples() const { return expected_; }
  int64_t samples_read() const { return done_; }
  int sample_rate() const { return rate_; }
  int source_rate() const { return source_rate_; }
  int source_channels() const { return channels_; }
  const std::string& path() const { return path_; }

 private:
  AudioSource() = default;
  Status ReadBlock(std::vector<float>* out);
  std::string path_;
  void* file_ = nullptr;   // SNDFILE*
  void* soxr_ = nullptr;   // soxr_t; null at the same rate
  int rate_ = 0, source_rate_ = 0, channels_ = 0;
  int64_t expected_ = -1, done_ = 0, read_frames_ = 0;
  bool eof_ = false, flushed_ = false;
  std::vector<float> inter_, mono_;
};

// Reads `path` (after CheckAudioFile) and converts it to mono at `target_rate` (AudioSource).
// Errors (one line, naming the file): unreadable or unsupported file, no samples, non-finite samples.
Result<Audio> LoadAudio(const std::string& path, int target_rate);

// Resamples mono `in` from `from_rate` to `to_rate` (libsoxr, high quality, in one call).
Result<std::vector<float>> Resample(const std::vector<float>& in, int from_rate, int to_rate);

}  // namespace asrc::asr
