// The bundle training loop (train/bundle_loop.h) on the tiny bundle (tests/asr/tiny_bundle.h):
// a run stopped at step 4 (as Ctrl-C stops it) and resumed from its checkpoint gives, at one
// thread, the same losses, weights and best dev weights as an uninterrupted run, with SpecAugment
// and tempo perturbation on (so the RNG state must come back); a NaN loss names step and batch
// and keeps the last checkpoint; tempo perturbation resamples frames as documented; a checkpoint
// of other data is refused; an op without a gradient rule on the loss path is named.
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include <doctest/doctest.h>

#include "../asr/tiny_bundle.h"
#include "train/bundle_loop.h"
#include "train/checkpoint.h"
#include "train/data.h"
#include "train/transducer.h"

namespace asrc {
namespace {

// Four short sine utterances (train) and one dev utterance, with token ids.
struct Data {
  std::string dir, manifest;
  Data() {
    dir = "/tmp/asrc_test_bundle_loop_" + std::to_string(getpid());
    std::string cmd = "mkdir -p " + dir;
    const char* tones[] = {"0.40 sine 300", "0.30 sine 900", "0.35 sine 500", "0.25 sine 1500"};
    for (int i = 0; i < 4; ++i)
      cmd += " && sox -D -n -r 16000 -c 1 -b 16 " + dir + "/" + std::to_string(i) + ".wav synth " + tones[i];
    REQUIRE(std::system(cmd.c_str()) == 0);
    manifest = dir + "/m.jsonl";
    std::ofstream f(manifest);
    const char* labels[] = {"[1, 2]", "[3, 1, 4]", "[2, 3]", "[4]"};
    for (int i = 0; i < 4; ++i)
      f << R"({"id": "u)" << i << R"(", "audio_filepath": ")" << i << R"(.wav", "text": "a b", "token_ids": )"
        << labels[i] << R"(, "split": "train"})" << "\n";
    f << R"({"id": "d1", "audio_filepath": "0.wav", "text": "a b c", "token_ids": [1, 2, 3], "split": "dev"})" << "\n";
  }
  ~Data() { std::system(("rm -rf " + dir).c_str()); }
};

ir::Model Tiny() {
  ir::Model m = testing::TinyBundle();
  m.config["frontend"]["dither"] = 0.0;
  return m;
}

std::unique_ptr<train::TransducerTrainer> MakeTrainer(const ir::Model& m, int64_t steps) {
  train::TransducerTrainOptions o;
  o.schedule = train::Schedule::WarmupCosine(0.05, 2, steps, 0.005);
  auto t = train::TransducerTrainer::Create(m, nullptr, o);
  REQUIRE_MESSAGE(t.ok(), t.status().message());
  return std::move(t).value();
}

struct Run {
  std::vector<double> losses;  // by step, from the log
  std::vector<std::vector<std::string>> utts;
  train::BundleLoopResult result;
  std::vector<ir::Tensor> weights;
};

// Trains `steps` (stopping after step `stop_at` when > 0), optionally resuming first.
Run Train(const ir::Model& m, const Data& d, const std::vector<train::Utterance>& utts,
          const std::vector<train::Utterance>& dev, const std::string& ckpt, int64_t steps, bool resume,
          int64_t stop_at = 0) {
  auto t = MakeTrainer(m, 8);
  std::atomic<bool> stop{false};
  train::BundleLoopOptions lo;
  lo.steps = steps;
  lo.max_frames = 45;  // one utterance per batch (25-40 frames each): four batches per epoch
  lo.seed = 7;
  lo.augment.spec = train::SpecAugmentOptions{};
  lo.augment.tempo = {0.8, 1.0, 1.25};
  lo.checkpoint = ckpt;
  lo.checkpoint_every = 3;
  lo.resume = resume;
  lo.stop = &stop;
  for (const auto& u : dev) lo.dev.push_back(&u);
  lo.model = &m;
  lo.dev_manifest = d.manifest;
  lo.dev_split = "dev";
  lo.eval_every = 2;
  lo.best_by = "loss";
  lo.log_every = 0;
  Run r;
  lo.on_log = [&](const nlohmann::json& j) {
    if (!j.contains("loss")) return;
    r.losses.push_back(j["loss"].get<double>());
    r.utts.push_back(j["utts"].get<std::vector<std::string>>());
    if (stop_at > 0 && j["step"].get<int64_t>() == stop_at) stop = true;
  };
  auto res = train::RunBundleLoop(*t, utts, lo);
  REQUIRE_MESSAGE(res.ok(), res.status().message());
  r.result = *res;
  for (const ir::Tensor& w : t->weights()) r.weights.push_back(w.Clone());
  return r;
}

bool SameBytes(const std::vector<ir::Tensor>& a, const std::vector<ir::Tensor>& b) {
  if (a.size() != b.size()) return false;
  for (size_t k = 0; k < a.size(); ++k)
    if (a[k].nbytes() != b[k].nbytes() || std::memcmp(a[k].raw(), b[k].raw(), a[k].nbytes()) != 0) return false;
  return true;
}

TEST_CASE("bundle loop: stop at step 4 + resume = an uninterrupted run, bit for bit (augmentation on)") {
  Data d;
  const ir::Model m = Tiny();
  auto cfg = asr::BundleConfig::FromModel(m);
  REQUIRE(cfg.ok());
  auto utts = train::LoadUtterances(d.manifest, "train", cfg->frontend, cfg->tokens);
  auto dev = train::LoadUtterances(d.manifest, "dev", cfg->frontend, cfg->tokens);
  REQUIRE_MESSAGE(utts.ok(), utts.status().message());
  REQUIRE(dev.ok());

  const Run full = Train(m, d, *utts, *dev, d.dir + "/full.ckpt", 8, false);
  REQUIRE(full.losses.size() == 8);
  CHECK(full.result.last_step == 8);
  CHECK(!full.result.interrupted);
  CHECK(full.losses.back() < full.losses.front());
  // dev at steps 0, 2, 4, 6, 8, with a greedy WER from asr::Evaluate
  REQUIRE(full.result.dev.size() == 5);
  CHECK(full.result.dev[0].wer >= 0);
  CHECK(full.result.best_index >= 0);

  const std::string ckpt = d.dir + "/part.ckpt";
  const Run first = Train(m, d, *utts, *dev, ckpt, 8, false, 4);
  CHECK(first.result.interrupted);
  CHECK(first.result.last_step == 4);
  auto file = train::ReadCheckpoint(ckpt);
  REQUIRE(file.ok());
  CHECK(file->header["step"] == 4);
  CHECK(file->header["epoch"] == 1);
  CHECK(file->header["batch_index"] == 0);

  const Run second = Train(m, d, *utts, *dev, ckpt, 8, true);
  CHECK(second.result.first_step == 5);
  REQUIRE(second.losses.size() == 4);
  for (int s = 0; s < 8; ++s) {
    const Run& part = s < 4 ? first : second;
    const size_t i = static_cast<size_t>(s < 4 ? s : s - 4);
    CAPTURE(s + 1);
    CHECK(part.losses[i] == full.losses[s]);  // exact: same float operations
    CHECK(part.utts[i] == full.utts[s]);
  }
  CHECK(SameBytes(second.weights, full.weights));
  CHECK(second.result.best_index == full.result.best_index);
  CHECK(SameBytes(second.result.best, full.result.best));
  REQUIRE(second.result.dev.size() == full.result.dev.size());
  for (size_t k = 0; k < full.result.dev.size(); ++k) CHECK(second.result.dev[k].loss == full.result.dev[k].loss);

  // The checkpoint of other data (another seed) is refused and named.
  auto t = MakeTrainer(m, 8);
  train::BundleLoopOptions lo;
  lo.steps = 8;
  lo.max_frames = 45;
  lo.seed = 8;
  lo.checkpoint = ckpt;
  lo.resume = true;
  lo.log_every = 0;
  auto bad = train::RunBundleLoop(*t, *utts, lo);
  REQUIRE(!bad.ok());
  CHECK(bad.status().message().find("seed") != std::string::npos);
  CHECK(bad.status().message().find(ckpt) != std::string::npos);
}

TEST_CASE("bundle loop: a NaN loss names step and batch and keeps the last checkpoint") {
  Data d;
  const ir::Model m = Tiny();
  auto cfg = asr::BundleConfig::FromModel(m);
  auto utts = train::LoadUtterances(d.manifest, "train", cfg->frontend, cfg->tokens);
  REQUIRE(utts.ok());
  (*utts)[2].features[5] = std::nanf("");  // u2 poisons whichever step draws it
  auto t = MakeTrainer(m, 8);
  train::BundleLoopOptions lo;
  lo.steps = 8;
  lo.max_frames = 45;
  lo.seed = 7;
  lo.checkpoint = d.dir + "/nan.ckpt";
  lo.checkpoint_every = 1;
  lo.log_every = 0;
  int64_t good = 0;
  lo.on_log = [&](const nlohmann::json& j) { good = j["step"].get<int64_t>(); };
  auto r = train::RunBundleLoop(*t, *utts, lo);
  REQUIRE(!r.ok());
  const std::string msg = r.status().message();
  MESSAGE(msg);
  CHECK(msg.find("step " + std::to_string(good + 1) + " (batch epoch 0 #") != std::string::npos);
  CHECK(msg.find("u2") != std::string::npos);
  CHECK(msg.find("nan") != std::string::npos);
  CHECK(msg.find("the last checkpoint '" + lo.checkpoint + "' (step " + std::to_string(good) + ") is kept") !=
        std::string::npos);
  auto file = train::ReadCheckpoint(lo.checkpoint);
  REQUIRE(file.ok());
  CHECK(file->header["step"] == good);
  CHECK(good < 4);  // u2 comes within the first epoch
}

TEST_CASE("tempo perturbation resamples the frames in time; SpecAugment zeroes bands; both seeded") {
  train::Utterance u;
  u.id = "x";
  u.frames = 10;
  const int64_t F = 3;
  for (int64_t t = 0; t < u.frames; ++t)
    for (int64_t f = 0; f < F; ++f) u.features.push_back(static_cast<float>(10 * t + f));
  train::AugmentOptions a;
  a.tempo = {1.25};
  std::mt19937_64 rng(1);
  train::Utterance v = train::AugmentUtterance(u, F, a, rng);
  REQUIRE(v.frames == 8);  // 10 / 1.25
  for (int64_t i = 0; i < v.frames; ++i) CHECK(v.features[i * F + 1] == doctest::Approx(10 * 1.25 * i + 1));
  a.tempo = {0.8};
  v = train::AugmentUtterance(u, F, a, rng);
  REQUIRE(v.frames == 13);  // 10 / 0.8 (rounded); the last frames hold the last input frame
  CHECK(v.features[1 * F] == doctest::Approx(8.0));
  CHECK(v.features[12 * F] == doctest::Approx(90.0));

  a.tempo.clear();
  a.spec = train::SpecAugmentOptions{1, 2, 0, 0};
  std::mt19937_64 r1(5), r2(5);
  train::Utterance s1 = train::AugmentUtterance(u, F, a, r1), s2 = train::AugmentUtterance(u, F, a, r2);
  CHECK(s1.features == s2.features);
  CHECK(s1.frames == u.frames);

  // What a data-parallel rank does for another rank's row: draw only. The RNG ends where
  // augmenting leaves it, and applying the draw gives the same utterance.
  a.tempo = {0.8, 1.0, 1.25};
  a.spec = train::SpecAugmentOptions{2, 2, 2, 0.2};
  std::mt19937_64 full(9), drawn(9);
  for (int k = 0; k < 20; ++k) {
    CAPTURE(k);
    const train::Utterance want = train::AugmentUtterance(u, F, a, full);
    const train::AugmentDraw d = train::DrawAugment(u, F, a, drawn);
    CHECK(full == drawn);
    const train::Utterance got = train::ApplyAugment(u, F, d);
    CHECK(got.frames == want.frames);
    CHECK(got.features == want.features);
  }
  CHECK(train::ParseTempo("0.9,1.0,1.1").value() == std::vector<double>{0.9, 1.0, 1.1});
  CHECK(!train::ParseTempo("0.9,x").ok());
  CHECK(!train::ParseTempo("3").ok());
}

TEST_CASE("an op without a gradient rule on the loss path is an error naming the node") {
  Data d;
  ir::Model m = Tiny();
  ir::Graph& g = *m.graph("joiner");
  ir::Node* mm = g.FindValue("dw")->producer;
  ir::Value* cw = g.AddNode("Cos", {g.FindValue("W")}, {"cos_w"})->outputs[0];
  g.set_input(mm, 1, cw);
  g.SortTopologically();
  REQUIRE(g.Verify().ok());
  auto cfg = asr::BundleConfig::FromModel(m);
  auto utts = train::LoadUtterances(d.manifest, "train", cfg->frontend, cfg->tokens);
  REQUIRE(utts.ok());
  auto t = MakeTrainer(m, 2);
  auto s = t->Step({&(*utts)[0]}, "b");
  REQUIRE(!s.ok());
  MESSAGE(s.status().message());
  CHECK(s.status().message().find("Cos") != std::string::npos);
  CHECK(s.status().message().find("no gradient rule") != std::string::npos);
}

}  // namespace
}  // namespace asrc
