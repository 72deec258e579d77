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

namespace {
constexpr sf_count_t kBlockFrames = 4096;
SNDFILE* File(void* f) { return static_cast<SNDFILE*>(f); }
soxr_t Soxr(void* s) { return static_cast<soxr_t>(s); }
}  // namespace

Result<std::unique_ptr<AudioSource>> AudioSource::Open(const std::string& path, int target_rate) {
  ASRC_RETURN_IF_ERROR(CheckAudioFile(path));
  if (target_rate <= 0) return Error(path + ": bad target sample rate");
  SF_INFO info{};
  SNDFILE* f = sf_open(path.c_str(), SFM_READ, &info);
  if (!f) return Error(path + ": cannot read audio (" + sf_strerror(nullptr) + ")");
  std::unique_ptr<AudioSource> a(new AudioSource());
  a->file_ = f;
  a->path_ = path;
  a->rate_ = target_rate;
  a->source_rate_ = info.samplerate;
  a->channels_ = info.channels;
  if (info.channels <= 0 || info.samplerate <= 0) return Error(path + ": no channels or no sample rate");
  if (info.frames > 0 && info.frames < SF_COUNT_MAX) {
    // libsoxr ends a flushed stream at round(input * out_rate / in_rate) samples.
    a->expected_ = info.samplerate == target_rate
                       ? static_cast<int64_t>(info.frames)
                       : static_cast<int64_t>(double(info.frames) * target_rate / info.samplerate + .5);
  }
  if (info.samplerate != target_rate) {
    soxr_error_t err = nullptr;
    soxr_io_spec_t io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
    soxr_quality_spec_t q = soxr_quality_spec(SOXR_HQ, 0);
    a->soxr_ = soxr_create(info.samplerate, target_rate, 1, &err, &io, &q, nullptr);
    if (err || !a->soxr_) return Error(path + ": resample: " + (err ? err : "cannot create a resampler"));
  }
  return a;
}

AudioSource::~AudioSource() {
  if (file_) sf_close(File(file_));
  if (soxr_) soxr_delete(Soxr(soxr_));
}

Status AudioSource::Read(std::vector<float>* out) {
  out->clear();
  // A block may give no output yet (the resampler's delay): read on until it does or the end.
  while (out->empty() && !flushed_) ASRC_RETURN_IF_ERROR(ReadBlock(out));
  done_ += static_cast<int64_t>(out->size());
  if (flushed_ && out->empty() && done_ == 0) return Error(path_ + ": empty audio after resampling");
  return Status::Ok();
}

Status AudioSource::ReadBlock(std::vector<float>* out) {
  if (!eof_) {
    inter_.resize(static_cast<size_t>(kBlockFrames) * channels_);
    const sf_count_t got = sf_readf_float(File(file_), inter_.data(), kBlockFrames);
    if (got > 0) {
      const size_t n = static_cast<size_t>(got);
      for (size_t i = 0; i < n * channels_; ++i)
        if (!std::isfinite(inter_[i])) return Error(path_ + ": audio has non-finite samples (NaN or Inf)");
      mono_.resize(n);
      if (channels_ == 1) {
        std::copy(inter_.begin(), inter_.begin() + n, mono_.begin());
      } else {
        for (size_t i = 0; i < n; ++i) {
          float s = 0;
          for (int c = 0; c < channels_; ++c) s += inter_[i * channels_ + c];
          mono_[i] = s / channels_;
        }
      }
      read_frames_ += got;
      if (!soxr_) {
        out->insert(out->end(), mono_.begin(), mono_.end());
        return Status::Ok();
      }
      size_t used = 0;
      while (used < n) {
        const size_t base = out->size();
        const size_t room = static_cast<size_t>(std::ceil(double(n - used) * rate_ / source_rate_)) + 64;
        out->resize(base + room);
        size_t idone = 0, odone = 0;
        soxr_error_t err = soxr_process(Soxr(soxr_), mono_.data() + used, n - used, &idone,
                                        out->data() + base, room, &odone);
        out->resize(base + odone);
        if (err) return Error(path_ + ": resample: " + err);
        if (idone == 0 && odone == 0) return Error(path_ + ": resample: the resampler made no progress");
        used += idone;
      }
      return Status::Ok();
    }
    if (sf_error(File(file_))) return Error(path_ + ": error while decoding audio (" + sf_strerror(File(file_)) + ")");
    eof_ = true;
    if (read_frames_ == 0) return Error(path_ + ": empty audio (no samples)");
  }
  if (!soxr_) {
    flushed_ = true;
    return Status::Ok();
  }
  // End of input: the resampler's tail, as soxr_oneshot gives it.
  const size_t base = out->size();
  out->resize(base + kBlockFrames);
  size_t odone = 0;
  soxr_error_t err = soxr_process(Soxr(soxr_), nullptr, 0, nullptr, out->data() + base, kBlockFrames, &odone);
  out->resize(base + odone);
  if (err) return Error(path_ + ": resample: " + err);
  if (odone == 0) flushed_ = true;
  return Status::Ok();
}

Result<Audio> LoadAudio(const std::string& path, int target_rate) {
  ASRC_ASSIGN_OR_RETURN(auto src, AudioSource::Open(path, target_rate));
  Audio a;
  a.source_rate = src->source_rate();
  a.source_channels = src->source_channels();
  a.sample_rate = target_rate;
  // Sized from the header up front (capped: a corrupt header may claim anything), so a long
  // recording is not held twice while the vector grows.
  constexpr int64_t kReserveCap = int64_t{1} << 28;
  if (src->expected_samples() > 0)
    a.samples.reserve(static_cast<size_t>(std::min(src->expected_samples() + 64, kReserveCap)));
  std::vector<float> block;
  do {
    ASRC_RETURN_IF_ERROR(src->Read(&block));
    a.samples.insert(a.samples.end(), block.begin(), block.end());
  } while (!block.empty());
  return a;
}

}  // namespace asrc::asr
