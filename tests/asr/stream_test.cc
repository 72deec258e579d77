// A real bundle end to end: $ASRC_TEST_BUNDLE, else the teacher bundle (experiments/teacher/bundle)
// when it exists, else a randomly initialised demo bundle exported by the recipe's export.py. Checks
//  - the chunk protocol fed in pieces of any size equals it fed all at once;
//  - our causal and non-causal encoder outputs and greedy hypotheses equal ONNX Runtime's running
//    the same protocol (tests/asr/ort_stream_ref.js);
//  - Evaluate(): unreadable and missing audio are counted, not fatal; shards merge into the
//    unsharded report.
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "asr/audio.h"
#include "asr/eval.h"
#include "asr/stream.h"
#include "onnx/onnx_io.h"
#include "reference.h"
#include "test_io.h"
#include "wav_writer.h"

using namespace asrc;
using namespace asrc::asr;

namespace {

bool Exists(const std::string& p) { return access(p.c_str(), R_OK) == 0; }

// The bundles to run: $ASRC_TEST_BUNDLE if set; else the teacher bundle when it exists, and always
// a random-weight demo bundle (its greedy output is long and non-trivial, unlike an early teacher
// that still emits nothing).
std::vector<std::string> BundlePaths() {
  static std::vector<std::string> paths = [] {
    std::vector<std::string> p;
    if (const char* env = std::getenv("ASRC_TEST_BUNDLE"); env && *env) return std::vector<std::string>{env};
    std::string real = ASRC_SOURCE_DIR "/experiments/teacher/bundle";
    if (test::HaveReference(Exists(real + "/model.json"), "the committed teacher bundle " + real)) p.push_back(real);
    if (!test::HaveReference(test::TorchAvailable(), std::string(test::kTorch) + ", for the random demo bundle"))
      return p;
    std::string tmp = "/tmp/asrc_test_random_bundle_" + std::to_string(getpid());
    std::string cmd = "OMP_NUM_THREADS=1 /usr/bin/python3 " ASRC_SOURCE_DIR
                      "/experiments/teacher/export.py --random demo --out " + tmp + " > /dev/null 2>&1";
    REQUIRE(std::system(cmd.c_str()) == 0);
    p.push_back(tmp);
    static std::string cleanup = "rm -rf " + tmp;
    std::atexit([] { (void)!std::system(cleanup.c_str()); });
    return p;
  }();
  return paths;
}

std::string SpeechFile() {
  std::string f = ASRC_SOURCE_DIR "/experiments/data/default_eval/flac/synth_test_00003.flac";
  if (Exists(f)) return f;
  std::string tmp = "/tmp/asrc_test_stream_speech_" + std::to_string(getpid());
  std::string cmd = "espeak-ng -w " + tmp + ".raw.wav 'so that their field might be plowed' && sox " + tmp +
                    ".raw.wav -r 16000 -b 16 " + tmp + ".wav";
  REQUIRE(std::system(cmd.c_str()) == 0);
  return tmp + ".wav";
}

using test::MaxDiff;
using test::ReadF32;

}  // namespace

void CheckAgainstOrt(const std::string& bundle) {
  MESSAGE("bundle: " << bundle);
  auto model = onnx_io::LoadModel(bundle);
  REQUIRE_MESSAGE(model.ok(), model.status().message());
  RecognizerOptions ro;
  auto rec = Recognizer::Create(model.value(), ro);
  REQUIRE_MESSAGE(rec.ok(), rec.status().message());
  Recognizer& r = *rec.value();
  auto audio = LoadAudio(SpeechFile(), r.config().frontend.sample_rate);
  REQUIRE(audio.ok());
  const int64_t T = r.fbank().NumFrames(audio->samples.size());
  std::vector<float> feats = r.fbank().Compute(audio->samples.data(), audio->samples.size());

  int64_t dim = 0;
  auto whole = r.CausalEncode(feats, T, 0, &dim);
  REQUIRE_MESSAGE(whole.ok(), whole.status().message());
  const int64_t t_out = (T + r.config().subsampling_factor - 1) / r.config().subsampling_factor;
  REQUIRE(dim > 0);
  CHECK(static_cast<int64_t>(whole->size()) == t_out * dim);
  for (int64_t piece : {1, 7, 32, 100}) {
    CAPTURE(piece);
    int64_t d2 = 0;
    auto part = r.CausalEncode(feats, T, piece, &d2);
    REQUIRE(part.ok());
    CHECK(part.value() == whole.value());  // the same chunks run: bit-identical
  }

  // ONNX Runtime on the same features.
  if (!test::HaveReference(test::OrtAvailable(), test::kOrt)) return;
  const std::string tmp = "/tmp/asrc_test_stream_" + std::to_string(getpid());
  test::WriteF32(tmp + ".feats.f32", feats);
  const nlohmann::json ref =
      test::RunForJson("node " ASRC_SOURCE_DIR "/tests/asr/ort_stream_ref.js " + bundle + " " + tmp +
                           ".feats.f32 " + std::to_string(T) + " " + tmp + " 5",
                       tmp + ".json");
  REQUIRE(ref["frames"].get<int64_t>() == t_out);
  double causal_diff = MaxDiff(whole.value(), ReadF32(tmp + ".causal.f32"));
  MESSAGE("causal encoder_out max |asrc - ORT| = " << causal_diff);
  CHECK(causal_diff < 1e-3);

  auto res = r.Recognize(audio->samples, true, true);
  REQUIRE_MESSAGE(res.ok(), res.status().message());
  CHECK(res->streaming_ids == ref["streaming"].get<std::vector<int>>());
  CHECK(res->lookahead_ids == ref["lookahead"].get<std::vector<int>>());
  MESSAGE("streaming: '" << res->streaming_text.substr(0, 80) << "'  look-ahead: '"
                         << res->lookahead_text.substr(0, 80) << "'");
  CHECK(res->encoder_frames == t_out);
  CHECK(static_cast<int64_t>(res->chunk_ms.size()) ==
        (T + r.config().chunk_frames - 1) / r.config().chunk_frames);
  CHECK(res->final_ms > 0);
  for (const char* s : {".feats.f32", ".json", ".causal.f32", ".noncausal.f32"}) std::remove((tmp + s).c_str());
}

TEST_CASE("streaming protocol: any feeding equals whole-utterance, and equals ONNX Runtime") {
  for (const std::string& bundle : BundlePaths()) {
    CAPTURE(bundle);
    CheckAgainstOrt(bundle);
  }
}

TEST_CASE("Evaluate: bad audio fails the run, or with skip_unreadable is counted; shards merge into the unsharded report") {
  if (BundlePaths().empty()) return;  // HaveReference() said why
  const std::string bundle = BundlePaths().back();
  auto model = onnx_io::LoadModel(bundle);
  REQUIRE(model.ok());
  const std::string dir = "/tmp/asrc_test_eval_" + std::to_string(getpid());
  mkdir(dir.c_str(), 0755);
  { std::ofstream(dir + "/junk.wav") << "not audio"; }
  const std::string speech = SpeechFile();
  {
    std::ofstream m(dir + "/manifest.jsonl");
    m << nlohmann::json{{"audio_filepath", speech}, {"text", "So that their field might be plowed."}, {"split", "test"}}.dump() << "\n";
    m << nlohmann::json{{"audio_filepath", "junk.wav"}, {"text", "junk"}, {"split", "test"}}.dump() << "\n";
    m << nlohmann::json{{"audio_filepath", "missing.flac"}, {"text", "gone"}, {"split", "test"}}.dump() << "\n";
    m << "\n";
    m << nlohmann::json{{"audio_filepath", speech}, {"text", "other split"}, {"split", "train"}}.dump() << "\n";
    m << nlohmann::json{{"id", "again"}, {"audio_filepath", speech}, {"text", "so that their field"}, {"split", "test"}}.dump() << "\n";
  }
  EvalOptions o;
  o.split = "test";
  auto refused = Evaluate(model.value(), dir + "/manifest.jsonl", o);
  REQUIRE(!refused.ok());
  CHECK(refused.status().message().find("2 of 4 utterances unreadable") != std::string::npos);
  CHECK(refused.status().message().find("junk.wav") != std::string::npos);
  CHECK(refused.status().message().find("missing.flac") != std::string::npos);
  o.skip_unreadable = true;
  auto full = Evaluate(model.value(), dir + "/manifest.jsonl", o);
  REQUIRE_MESSAGE(full.ok(), full.status().message());
  REQUIRE(full->streaming.has_value());
  REQUIRE(full->lookahead.has_value());
  for (const ModeReport* m : {&*full->streaming, &*full->lookahead}) {
    CHECK(m->utterances == 4);
    CHECK(m->failed_utterances == 2);
    CHECK(m->words == 7 + 4);
    REQUIRE(m->per_utterance.size() == 4);
    CHECK(m->per_utterance[1].failed);
    CHECK(m->per_utterance[1].error.find("junk.wav") != std::string::npos);
    CHECK(m->per_utterance[2].error.find("missing.flac") != std::string::npos);
    CHECK(m->per_utterance[3].id == "again");
    CHECK(m->rtf > 0);
  }
  nlohmann::json j = full->ToJson();
  for (const char* k : {"wer", "cer", "words", "substitutions", "deletions", "insertions", "utterances",
                        "failed_utterances", "rtf", "chunk_ms_p50", "chunk_ms_p90", "per_utterance"})
    CHECK_MESSAGE(j["streaming"].contains(k), k);
  for (const char* k : {"final_ms_p50", "final_ms_p90"}) CHECK_MESSAGE(j["lookahead"].contains(k), k);

  std::vector<EvalReport> parts;
  for (int i = 0; i < 3; ++i) {
    EvalOptions s = o;
    s.shard_index = i;
    s.shard_count = 3;
    auto p = Evaluate(model.value(), dir + "/manifest.jsonl", s);
    REQUIRE(p.ok());
    // Through JSON, as eval-merge reads them.
    auto back = EvalReport::FromJson(p->ToJson());
    REQUIRE_MESSAGE(back.ok(), back.status().message());
    parts.push_back(std::move(back).value());
  }
  std::swap(parts[0], parts[2]);  // order of the files does not matter
  auto merged = MergeReports(parts);
  REQUIRE_MESSAGE(merged.ok(), merged.status().message());
  for (auto [a, b] : {std::make_pair(&*merged->streaming, &*full->streaming),
                      std::make_pair(&*merged->lookahead, &*full->lookahead)}) {
    CHECK(a->words == b->words);
    CHECK(a->substitutions == b->substitutions);
    CHECK(a->deletions == b->deletions);
    CHECK(a->insertions == b->insertions);
    CHECK(a->wer == doctest::Approx(b->wer));
    CHECK(a->utterances == b->utterances);
    CHECK(a->failed_utterances == b->failed_utterances);
    CHECK(a->chunk_ms.size() == b->chunk_ms.size());
    REQUIRE(a->per_utterance.size() == b->per_utterance.size());
    for (size_t i = 0; i < a->per_utterance.size(); ++i) {
      CHECK(a->per_utterance[i].id == b->per_utterance[i].id);
      CHECK(a->per_utterance[i].hypothesis == b->per_utterance[i].hypothesis);
    }
  }
  parts.pop_back();
  CHECK(!MergeReports(parts).ok());  // a missing shard is an error

  auto bad = Evaluate(model.value(), dir + "/nope.jsonl", o);
  REQUIRE(!bad.ok());
  CHECK(bad.status().message().find("nope.jsonl") != std::string::npos);
  std::system(("rm -rf " + dir).c_str());
}

TEST_CASE("PlanLookaheadSegments: consecutive nearly equal pieces cover the input once, windows add the context") {
  for (int64_t segment : {0, -3})  // off
    CHECK(PlanLookaheadSegments(50, segment, 4).size() == 1);
  for (int64_t frames : {1, 9, 10, 11, 99, 100, 101, 1003}) {
    for (int64_t segment : {1, 7, 10, 100}) {
      for (int64_t context : {0, 3, 50}) {
        CAPTURE(frames);
        CAPTURE(segment);
        CAPTURE(context);
        auto plan = PlanLookaheadSegments(frames, segment, context);
        if (frames <= segment) {
          REQUIRE(plan.size() == 1);
          CHECK((plan[0].window_begin == 0 && plan[0].window_end == frames && plan[0].keep_begin == 0 &&
                 plan[0].keep_end == frames));
          continue;
        }
        REQUIRE(static_cast<int64_t>(plan.size()) == (frames + segment - 1) / segment);
        int64_t next = 0, shortest = frames, longest = 0, last_begin = 0, last_end = 0;
        for (const auto& s : plan) {
          CHECK(s.keep_begin == next);
          next = s.keep_end;
          shortest = std::min(shortest, s.keep_end - s.keep_begin);
          longest = std::max(longest, s.keep_end - s.keep_begin);
          // Context where the audio has it; windows in order; one window length for all.
          CHECK(s.window_begin <= std::max<int64_t>(0, s.keep_begin - context));
          CHECK(s.window_end >= std::min(frames, s.keep_end + context));
          CHECK((s.window_begin >= 0 && s.window_end <= frames));
          CHECK((s.window_begin >= last_begin && s.window_end >= last_end));
          last_begin = s.window_begin, last_end = s.window_end;
          CHECK(s.window_end - s.window_begin == plan[0].window_end - plan[0].window_begin);
        }
        CHECK(plan[0].window_end - plan[0].window_begin == std::min(frames, longest + 2 * context));
        CHECK(next == frames);
        CHECK(longest <= segment);
        CHECK(longest - shortest <= 1);
      }
    }
  }
}

// The look-ahead pass in segments: up to one segment it is the whole-input pass (bit-identical);
// beyond, every kept piece equals the encoder run on its window alone, sliced; windows that span
// the input give the whole-input result again.
TEST_CASE("segmented look-ahead: pieces are the windows' outputs, short audio is unchanged") {
  for (const std::string& bundle : BundlePaths()) {
    CAPTURE(bundle);
    auto model = onnx_io::LoadModel(bundle);
    REQUIRE_MESSAGE(model.ok(), model.status().message());
    auto make = [&](double segment_s, double context_s) {
      RecognizerOptions ro;
      ro.lookahead_segment_s = segment_s;
      ro.lookahead_context_s = context_s;
      auto r = Recognizer::Create(model.value(), ro);
      REQUIRE_MESSAGE(r.ok(), r.status().message());
      return std::move(r).value();
    };
    auto whole = make(0, 0), by_default = make(RecognizerOptions{}.lookahead_segment_s,
                                                   RecognizerOptions{}.lookahead_context_s);
    auto audio = LoadAudio(SpeechFile(), whole->config().frontend.sample_rate);
    REQUIRE(audio.ok());
    auto w = whole->Recognize(audio->samples, false, true);
    auto d = by_default->Recognize(audio->samples, false, true);
    REQUIRE((w.ok() && d.ok()));
    CHECK(w->lookahead_ids == d->lookahead_ids);
    CHECK((w->lookahead_segments == 1 && d->lookahead_segments == 1));

    const int64_t T = whole->fbank().NumFrames(audio->samples.size());
    std::vector<float> feats = whole->fbank().Compute(audio->samples.data(), audio->samples.size());
    int64_t dim = 0;
    auto causal = whole->CausalEncode(feats, T, 0, &dim);
    REQUIRE(causal.ok());
    const int64_t frames = static_cast<int64_t>(causal->size()) / dim;
    // 0.4 s and 0.2 s: 10 and 5 encoder frames (10 ms shift, subsampling 4).
    REQUIRE(whole->config().subsampling_factor == 4);
    auto seg = make(0.4, 0.2);
    std::vector<std::vector<float>> pieces;
    int64_t runs = 0;
    auto keep = [&](const float* e, int64_t n, int64_t dd) {
      pieces.emplace_back(e, e + n * dd);
      return Status::Ok();
    };
    REQUIRE(seg->EncodeLookahead(causal.value(), frames, dim, keep, &runs).ok());
    auto plan = PlanLookaheadSegments(frames, 10, 5);
    REQUIRE(plan.size() > 2);
    REQUIRE(runs == static_cast<int64_t>(plan.size()));
    REQUIRE(pieces.size() == plan.size());
    for (size_t i = 0; i < plan.size(); ++i) {
      CAPTURE(i);
      const auto& s = plan[i];
      std::vector<float> window(causal->begin() + s.window_begin * dim, causal->begin() + s.window_end * dim);
      std::vector<float> ref;
      REQUIRE(whole->EncodeLookahead(window, s.window_end - s.window_begin, dim,
                                     [&](const float* e, int64_t n, int64_t dd) {
                                       ref.assign(e + (s.keep_begin - s.window_begin) * dd,
                                                  e + (s.keep_end - s.window_begin) * dd);
                                       return Status::Ok();
                                     }, nullptr).ok());
      CHECK(pieces[i] == ref);
    }
    auto spanning = make(0.4, 1000);  // every window is the whole input
    auto sp = spanning->Recognize(audio->samples, false, true);
    REQUIRE(sp.ok());
    CHECK(sp->lookahead_segments == static_cast<int64_t>(plan.size()));
    CHECK(sp->lookahead_ids == w->lookahead_ids);
    CHECK(sp->encoder_frames == w->encoder_frames);
  }
}

TEST_CASE("audio pulled as it is read: any block size, the plan made up front, a wrong length read again") {
  for (const std::string& bundle : BundlePaths()) {
    CAPTURE(bundle);
    auto model = onnx_io::LoadModel(bundle);
    REQUIRE_MESSAGE(model.ok(), model.status().message());
    RecognizerOptions ro;
    ro.lookahead_segment_s = 0.4;  // several segments on a few seconds of speech
    ro.lookahead_context_s = 0.2;
    auto made = Recognizer::Create(model.value(), ro);
    REQUIRE_MESSAGE(made.ok(), made.status().message());
    Recognizer& r = *made.value();
    auto audio = LoadAudio(SpeechFile(), r.config().frontend.sample_rate);
    REQUIRE(audio.ok());
    const std::vector<float>& x = audio->samples;
    const int64_t n = static_cast<int64_t>(x.size());
    int opened = 0;
    auto opener = [&](size_t block) {
      return SampleOpener([&, block]() -> Result<SampleReader> {
        ++opened;
        auto at = std::make_shared<size_t>(0);
        return SampleReader([&, block, at](std::vector<float>* out) {
          const size_t k = std::min(block, x.size() - *at);
          out->assign(x.begin() + *at, x.begin() + *at + k);
          *at += k;
          return Status::Ok();
        });
      });
    };
    // Length unknown: the causal output is kept whole and planned at the end (as before audio was pulled).
    auto ref = r.Recognize(opener(16000), -1, true, true);
    REQUIRE_MESSAGE(ref.ok(), ref.status().message());
    CHECK(ref->lookahead_segments > 2);
    CHECK(!ref->reread);
    CHECK(ref->samples == n);
    for (int64_t expected : {n, int64_t{-1}, n / 2, n + 8000, 3 * n}) {
      for (size_t block : {size_t{160}, size_t{1000}, size_t{7777}}) {
        CAPTURE(expected);
        CAPTURE(block);
        opened = 0;
        auto got = r.Recognize(opener(block), expected, true, true);
        REQUIRE_MESSAGE(got.ok(), got.status().message());
        CHECK(got->streaming_ids == ref->streaming_ids);
        CHECK(got->lookahead_ids == ref->lookahead_ids);
        CHECK(got->lookahead_segments == ref->lookahead_segments);
        CHECK(got->encoder_frames == ref->encoder_frames);
        CHECK(got->feature_frames == ref->feature_frames);
        const bool wrong = expected >= 0 && expected != n;
        CHECK(got->reread == wrong);
        CHECK(opened == (wrong ? 2 : 1));
      }
    }
    auto look_only = r.Recognize(opener(4000), n, false, true);
    REQUIRE(look_only.ok());
    CHECK(look_only->lookahead_ids == ref->lookahead_ids);
    CHECK(look_only->streaming_ids.empty());
    auto whole = r.Recognize(x, true, true);
    REQUIRE(whole.ok());
    CHECK(whole->lookahead_ids == ref->lookahead_ids);
    CHECK(whole->streaming_ids == ref->streaming_ids);

    // A file at another rate, in stereo: read in blocks, as LoadAudio reads it whole.
    auto resampled = Resample(x, r.config().frontend.sample_rate, 22050);
    REQUIRE(resampled.ok());
    const std::string wav = "/tmp/asrc_test_pull_" + std::to_string(getpid()) + ".wav";
    std::vector<float> inter;
    for (float v : resampled.value()) inter.insert(inter.end(), {v, 0.5f * v});
    test::WriteWav(wav, 22050, 2, inter, SF_FORMAT_FLOAT);
    auto loaded = LoadAudio(wav, r.config().frontend.sample_rate);
    REQUIRE(loaded.ok());
    auto from_samples = r.Recognize(loaded->samples, true, true);
    auto from_file = r.RecognizeFile(wav, true, true);
    REQUIRE(from_samples.ok());
    REQUIRE_MESSAGE(from_file.ok(), from_file.status().message());
    CHECK(from_file->streaming_ids == from_samples->streaming_ids);
    CHECK(from_file->lookahead_ids == from_samples->lookahead_ids);
    CHECK(from_file->samples == static_cast<int64_t>(loaded->samples.size()));
    CHECK(!from_file->reread);
    std::remove(wav.c_str());
    auto missing = r.RecognizeFile(wav, true, true);
    REQUIRE(!missing.ok());
    CHECK(missing.status().message().rfind(wav + ": ", 0) == 0);
  }
}
