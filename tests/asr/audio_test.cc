// Audio loading: resampling and downmixing (libsndfile + libsoxr), and per-file errors.
#include <sndfile.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <vector>

#include <doctest/doctest.h>

#include "asr/audio.h"
#include "wav_writer.h"

using namespace asrc::asr;
using asrc::test::WriteWav;

namespace {
std::string Tmp(const std::string& name) {
  return "/tmp/asrc_test_audio_" + std::to_string(getpid()) + "_" + name;
}

}  // namespace

TEST_CASE("8 kHz stereo is downmixed and resampled to 16 kHz") {
  const int rate = 8000;
  const double f0 = 440.0;
  const int n = rate;  // one second
  std::vector<float> inter(2 * n);
  for (int i = 0; i < n; ++i) {
    inter[2 * i] = 0.5f * std::sin(2 * M_PI * f0 * i / rate);  // left: tone
    inter[2 * i + 1] = 0.0f;                                  // right: silence
  }
  std::string path = Tmp("stereo8k.wav");
  WriteWav(path, rate, 2, inter);
  auto a = LoadAudio(path, 16000);
  REQUIRE(a.ok());
  CHECK(a->sample_rate == 16000);
  CHECK(a->source_rate == 8000);
  CHECK(a->source_channels == 2);
  CHECK(std::abs(static_cast<long>(a->samples.size()) - 16000) <= 2);
  // Mean of the channels: a 0.25 amplitude tone at the new rate, no delay (soxr compensates).
  double max_err = 0;
  for (int i = 800; i < 15200; ++i)
    max_err = std::max(max_err, std::fabs(a->samples[i] - 0.25 * std::sin(2 * M_PI * f0 * i / 16000.0)));
  CHECK(max_err < 2e-3);
  std::remove(path.c_str());
}

TEST_CASE("same rate and mono: samples pass through") {
  std::vector<float> s(1600);
  for (size_t i = 0; i < s.size(); ++i) s[i] = static_cast<float>(i % 100) / 200.0f - 0.25f;
  std::string path = Tmp("mono16k.wav");
  WriteWav(path, 16000, 1, s);
  auto a = LoadAudio(path, 16000);
  REQUIRE(a.ok());
  REQUIRE(a->samples.size() == s.size());
  for (size_t i = 0; i < s.size(); ++i) CHECK(std::fabs(a->samples[i] - s[i]) <= 1.0 / 32768);
  std::remove(path.c_str());
}

TEST_CASE("unreadable, missing and empty files are errors naming the file") {
  std::string junk = Tmp("junk.wav");
  { std::ofstream(junk) << "this is not audio"; }
  auto a = LoadAudio(junk, 16000);
  REQUIRE(!a.ok());
  CHECK(a.status().message().find(junk) == 0);
  CHECK(a.status().message().find("cannot read audio") != std::string::npos);
  std::remove(junk.c_str());

  auto m = LoadAudio(Tmp("missing.flac"), 16000);
  REQUIRE(!m.ok());
  CHECK(m.status().message().find("missing.flac") != std::string::npos);

  std::string empty = Tmp("empty.wav");
  WriteWav(empty, 16000, 1, {});
  auto e = LoadAudio(empty, 16000);
  REQUIRE(!e.ok());
  CHECK(e.status().message() == empty + ": empty audio (no samples)");
  std::remove(empty.c_str());
}

namespace {
// What LoadAudio did before AudioSource: the whole file read at once, downmixed, and resampled
// in one libsoxr call.
std::vector<float> WholeFileReference(const std::string& path, int target_rate) {
  SF_INFO info{};
  SNDFILE* f = sf_open(path.c_str(), SFM_READ, &info);
  REQUIRE(f != nullptr);
  std::vector<float> inter(static_cast<size_t>(info.frames) * info.channels);
  REQUIRE(sf_readf_float(f, inter.data(), info.frames) == info.frames);
  sf_close(f);
  std::vector<float> mono(info.frames);
  for (sf_count_t i = 0; i < info.frames; ++i) {
    float s = 0;
    for (int c = 0; c < info.channels; ++c) s += inter[i * info.channels + c];
    mono[i] = s / info.channels;
  }
  auto r = Resample(mono, info.samplerate, target_rate);
  REQUIRE(r.ok());
  return r.value();
}
}  // namespace

TEST_CASE("AudioSource gives, block by block, the samples of a whole-file read and resample") {
  struct Case {
    int rate, channels;
    int frames;
  } cases[] = {{22050, 2, 72811}, {44100, 2, 145001}, {44100, 1, 4095}, {16000, 1, 52000},
               {16000, 2, 9000},  {8000, 1, 12345},   {48000, 3, 100000}};
  for (const Case& c : cases) {
    CAPTURE(c.rate);
    CAPTURE(c.channels);
    CAPTURE(c.frames);
    std::vector<float> inter(static_cast<size_t>(c.frames) * c.channels);
    for (int i = 0; i < c.frames; ++i)
      for (int ch = 0; ch < c.channels; ++ch)
        inter[i * c.channels + ch] = 0.3f * std::sin(2 * M_PI * (300.0 + 170 * ch) * i / c.rate) +
                                     0.1f * std::sin(0.37 * i * (ch + 1));
    std::string path = Tmp("src_" + std::to_string(c.rate) + "_" + std::to_string(c.channels) + ".wav");
    WriteWav(path, c.rate, c.channels, inter);
    const std::vector<float> ref = WholeFileReference(path, 16000);
    auto src = AudioSource::Open(path, 16000);
    REQUIRE(src.ok());
    CHECK((*src)->expected_samples() == static_cast<int64_t>(ref.size()));
    std::vector<float> got, block;
    int reads = 0;
    do {
      REQUIRE((*src)->Read(&block).ok());
      got.insert(got.end(), block.begin(), block.end());
      ++reads;
    } while (!block.empty());
    CHECK(reads > 2);
    CHECK((*src)->samples_read() == static_cast<int64_t>(got.size()));
    REQUIRE(got.size() == ref.size());
    CHECK(std::memcmp(got.data(), ref.data(), got.size() * sizeof(float)) == 0);
    auto whole = LoadAudio(path, 16000);
    REQUIRE(whole.ok());
    CHECK(whole->samples == got);
    std::remove(path.c_str());
  }
}

TEST_CASE("AudioSource: non-finite samples are an error naming the file") {
  std::string path = Tmp("nan.wav");
  std::vector<float> s(20000, 0.1f);
  s[15000] = NAN;
  WriteWav(path, 22050, 1, s, SF_FORMAT_FLOAT);
  auto src = AudioSource::Open(path, 16000);
  REQUIRE(src.ok());
  std::vector<float> block;
  asrc::Status st;
  do st = (*src)->Read(&block);
  while (st.ok() && !block.empty());
  REQUIRE(!st.ok());
  CHECK(st.message() == path + ": audio has non-finite samples (NaN or Inf)");
  std::remove(path.c_str());
}
