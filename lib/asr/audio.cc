#include "asr/audio.h"

#include <sndfile.h>
#include <soxr.h>

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>

namespace asrc::asr {

Result<std::vector<float>> Resample(const std::vector<float>& in, int from_rate, int to_rate) {
  if (from_rate <= 0 || to_rate <= 0) return Error("resample: bad sample rate");
  if (from_rate == to_rate || in.empty()) return in;
  size_t out_len = static_cast<size_t>(std::ceil(double(in.size()) * to_rate / from_rate)) + 16;
  std::vector<float> out(out_len);
  size_t done = 0;
  soxr_io_spec_t io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
  soxr_quality_spec_t q = soxr_quality_spec(SOXR_HQ, 0);
  soxr_error_t err = soxr_oneshot(from_rate, to_rate, 1, in.data(), in.size(), nullptr,
                                  out.data(), out.size(), &done, &io, &q, nullptr);
  if (err) return Error(std::string("resample: ") + err);
  out.resize(done);
  return out;
}

Status CheckAudioFile(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return Error(path + ": cannot read audio (" + std::strerror(errno) + ")");
  // Opening a FIFO or a device would block or read forever; a folder is not audio.
  if (S_ISDIR(st.st_mode)) return Error(path + ": is a directory, not an audio file");
  if (!S_ISREG(st.st_mode)) return Error(path + ": not a regular file (FIFO, device or socket)");
  if (st.st_size == 0) return Error(path + ": empty file");
  return Status::Ok();
}

Status ProbeAudio(const std::string& path) {
  ASRC_RETURN_IF_ERROR(CheckAudioFile(path));
  SF_INFO info{};
  SNDFILE* f = sf_open(path.c_str(), SFM_READ, &info);
  if (!f) return Error(path + ": cannot read audio (" + sf_strerror(nullptr) + ")");
  sf_close(f);
  if (info.channels <= 0 || info.samplerate <= 0) return Error(path + ": no channels or no sample rate");
  if (info.frames == 0) return Error(path + ": empty audio (no samples)");
  return Status::Ok();
}

Result<Audio> LoadAudio(const std::string& path, int target_rate) {
  ASRC_RETURN_IF_ERROR(CheckAudioFile(path));
  SF_INFO info{};
  SNDFILE* f = sf_open(path.c_str(), SFM_READ, &info);
  if (!f) return Error(path + ": cannot read audio (" + sf_strerror(nullptr) + ")");
  Audio a;
  a.source_rate = info.samplerate;
  a.source_channels = info.channels;
  if (info.channels <= 0 || info.samplerate <= 0) {
    sf_close(f);
    return Error(path + ": no channels or no sample rate");
  }
  std::vector<float> inter;
  // Sized from the header up front (capped: a corrupt header may claim anything), so a long
  // recording is not held twice while the vector grows; one copy is the peak.
  constexpr sf_count_t kReserveCap = sf_count_t{1} << 28;
  if (info.frames > 0)
    inter.reserve(static_cast<size_t>(std::min<sf_count_t>(info.frames * info.channels, kReserveCap)));
  std::vector<float> block(4096 * static_cast<size_t>(info.channels));
  sf_count_t got;
  while ((got = sf_readf_float(f, block.data(), 4096)) > 0)
    inter.insert(inter.end(), block.begin(), block.begin() + got * info.channels);
  int err = sf_error(f);
  std::string why = err ? sf_strerror(f) : "";
  sf_close(f);
  if (err) return Error(path + ": error while decoding audio (" + why + ")");
  const size_t frames = inter.size() / info.channels;
  if (frames == 0) return Error(path + ": empty audio (no samples)");
  for (float v : inter)
    if (!std::isfinite(v)) return Error(path + ": audio has non-finite samples (NaN or Inf)");
  std::vector<float> mono;
  if (info.channels == 1) {
    mono.swap(inter);
  } else {
    mono.resize(frames);
    for (size_t i = 0; i < frames; ++i) {
      float s = 0;
      for (int c = 0; c < info.channels; ++c) s += inter[i * info.channels + c];
      mono[i] = s / info.channels;
    }
  }
  if (info.samplerate == target_rate) {
    a.samples = std::move(mono);  // what Resample would return, without its copy
  } else {
    auto res = Resample(mono, info.samplerate, target_rate);
    if (!res.ok()) return res.status().With(path);
    a.samples = std::move(res).value();
  }
  a.sample_rate = target_rate;
  if (a.samples.empty()) return Error(path + ": empty audio after resampling");
  return a;
}

}  // namespace asrc::asr
