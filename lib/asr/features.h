// Kaldi-compatible log-mel filterbank: the same computation as torchaudio.compliance.kaldi.fbank,
// done in double precision (FFTW3),
// with the arguments of a bundle's model.json "frontend" object (docs/bundle.md). Samples go in as
// floats in [-1, 1); they are multiplied by waveform_scale first. No dither is applied (a nonzero
// dither is rejected: evaluation must be deterministic).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"

namespace asrc::asr {

struct FbankOptions {
  int sample_rate = 16000;
  int num_mel_bins = 80;
  double frame_length_ms = 25.0;
  double frame_shift_ms = 10.0;
  std::string window_type = "povey";  // povey | hanning | hamming | rectangular | blackman
  double blackman_coeff = 0.42;
  double low_freq = 20.0;
  double high_freq = -400.0;  // <= 0: offset from Nyquist
  double dither = 0.0;
  bool snip_edges = false;
  double preemphasis_coefficient = 0.97;
  bool remove_dc_offset = true;
  bool round_to_power_of_two = true;
  bool use_energy = false;
  bool use_log_fbank = true;
  bool use_power = true;
  double energy_floor = 1.0;
  bool raw_energy = true;
  double waveform_scale = 32768.0;

  // Parses a model.json "frontend" object; unknown keys and a type other than "kaldi_fbank" are
  // errors naming the key ("frontend.foo: unknown key").
  static Result<FbankOptions> FromJson(const nlohmann::json& j);
  int window_size() const;   // samples per frame
  int window_shift() const;  // samples between frames
  int feature_dim() const { return num_mel_bins + (use_energy ? 1 : 0); }
};

class Fbank {
 public:
  static Result<std::unique_ptr<Fbank>> Create(const FbankOptions& options);
  ~Fbank();
  Fbank(const Fbank&) = delete;
  Fbank& operator=(const Fbank&) = delete;

  // Number of frames for `num_samples` samples (0 when too short for one frame).
  int64_t NumFrames(int64_t num_samples) const;
  // Features of a whole utterance, row-major [NumFrames(n), feature_dim()].
  std::vector<float> Compute(const float* samples, int64_t n) const;
  const FbankOptions& options() const { return opt_; }

 private:
  friend class FbankStream;
  struct Work;  // FFT buffers of one frame computation
  // Frame t of a signal of n samples, read through `sample(i)` (0 <= i < n), into `row`.
  template <class SampleFn>
  void Frame(int64_t t, int64_t n, const SampleFn& sample, Work& w, float* row) const;
  // Reflected samples before the signal (`head`) and the first sample used (`body_first`), for
  // a signal of n samples; `lead`: from this many samples on, neither depends on n.
  void Edges(int64_t n, int64_t* head, int64_t* body_first) const;
  int64_t lead() const;
  Fbank() = default;
  FbankOptions opt_;
  int window_ = 0, shift_ = 0, padded_ = 0;
  std::vector<double> window_fn_;
  std::vector<std::vector<double>> mel_;  // [bin][fft bin], nonzero in [mel_first_, mel_last_]
  std::vector<int> mel_first_, mel_last_;
  struct Fft;
  std::unique_ptr<Fft> fft_;
};

// The features of a signal that arrives in pieces: frame by frame exactly (bit for bit) what
// Fbank::Compute gives over the whole signal. A frame is computed as soon as all its samples are
// known; the frames that reach past the end (into Kaldi's reflection of the last samples) when
// Finish says where the end is. Holds about two frames of samples, whatever the length.
class FbankStream {
 public:
  explicit FbankStream(const Fbank& fbank);
  ~FbankStream();
  // Appends `n` samples; appends the rows of every frame now complete to *out.
  void Accept(const float* samples, int64_t n, std::vector<float>* out);
  // End of the signal: appends the remaining rows (NumFrames(samples()) in all).
  void Finish(std::vector<float>* out);
  int64_t samples() const { return received_; }
  int64_t frames() const { return next_; }

 private:
  void Emit(int64_t upto, int64_t n, std::vector<float>* out);
  const Fbank& fb_;
  std::unique_ptr<Fbank::Work> work_;
  std::vector<float> start_;  // the first lead() samples (the start's reflection)
  std::vector<float> buf_;    // samples from buf_first_ on
  int64_t buf_first_ = 0, received_ = 0, next_ = 0;
};

}  // namespace asrc::asr
