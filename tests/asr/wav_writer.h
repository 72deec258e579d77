// Writes test audio with libsndfile (tests that link PkgConfig::SNDFILE).
#pragma once

#include <sndfile.h>

#include <string>
#include <vector>

#include <doctest/doctest.h>

namespace asrc::test {

// Interleaved `inter` (frames x channels) as a WAV file; `format`: SF_FORMAT_PCM_16, SF_FORMAT_FLOAT, ...
inline void WriteWav(const std::string& path, int rate, int channels, const std::vector<float>& inter,
                     int format = SF_FORMAT_PCM_16) {
  SF_INFO info{};
  info.samplerate = rate;
  info.channels = channels;
  info.format = SF_FORMAT_WAV | format;
  SNDFILE* f = sf_open(path.c_str(), SFM_WRITE, &info);
  REQUIRE(f != nullptr);
  if (!inter.empty()) sf_writef_float(f, inter.data(), static_cast<sf_count_t>(inter.size() / channels));
  sf_close(f);
}

}  // namespace asrc::test
