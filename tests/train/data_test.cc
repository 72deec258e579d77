// Training data: tokenization against the model's tokens, length buckets under a frame cap,
// padding and SpecAugment masks, a real manifest through the fbank front end, and batches that
// depend only on the step and the trainer's RNG (so a resume sees the same data).
#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "onnx/onnx_io.h"
#include "reference.h"
#include "train/data.h"

using namespace asrc;

namespace {

train::Utterance Utt(const std::string& id, int64_t frames, int64_t dim, std::vector<int32_t> labels) {
  train::Utterance u;
  u.id = id;
  u.frames = frames;
  u.features.assign(static_cast<size_t>(frames * dim), 1.f);
  u.labels = std::move(labels);
  return u;
}

}  // namespace

TEST_CASE("Tokenize: greedy longest match of normalized words with the word-boundary mark") {
  std::vector<std::string> tokens = {"<blk>", "<unk>", "\xE2\x96\x81the", "\xE2\x96\x81", "c", "a", "t", "\xE2\x96\x81" "ca"};
  auto ids = train::Tokenize("The cat!", tokens);
  REQUIRE_MESSAGE(ids.ok(), ids.status().message());
  CHECK(*ids == std::vector<int32_t>{2, 7, 6});
  auto unk = train::Tokenize("caz", tokens);
  REQUIRE(unk.ok());
  CHECK(*unk == std::vector<int32_t>{7, 1});
  auto bad = train::Tokenize("zebra", {"<blk>", "\xE2\x96\x81", "a"});  // no <unk>
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().message().find("'z'") != std::string::npos);
}

TEST_CASE("MakeBuckets: every utterance once, padded frames within the cap, sorted by length inside") {
  std::vector<train::Utterance> utts;
  for (int i = 0; i < 20; ++i) utts.push_back(Utt("u" + std::to_string(i), 10 + (i * 37) % 90, 2, {1}));
  utts.push_back(Utt("long", 500, 2, {1}));
  std::mt19937_64 rng(3);
  auto buckets = train::MakeBuckets(utts, 200, rng);
  std::vector<int> seen(utts.size(), 0);
  for (const auto& b : buckets) {
    int64_t longest = 0;
    for (size_t i : b) {
      seen[i]++;
      longest = std::max(longest, utts[i].frames);
    }
    CHECK((static_cast<int64_t>(b.size()) * longest <= 200 || b.size() == 1));
  }
  for (int s : seen) CHECK(s == 1);
  std::mt19937_64 rng2(4);
  auto other = train::MakeBuckets(utts, 200, rng2);
  CHECK(other.size() == buckets.size());
}

TEST_CASE("Collate: padding, the feed names, SpecAugment masks within each utterance's frames") {
  std::vector<train::Utterance> utts = {Utt("a", 40, 20, {3, 4}), Utt("b", 60, 20, {5})};
  std::mt19937_64 rng(1);
  train::Batch plain = train::Collate(utts, {0, 1}, 20, train::SpecAugmentOptions::None(), rng);
  CHECK(plain.id == "a,b");
  REQUIRE(plain.feeds.size() == 5);
  const ir::Tensor& f = plain.feeds[0].second;
  CHECK(f.shape() == ir::Shape{2, 60, 20});
  double sum = 0;
  for (int64_t i = 0; i < f.numel(); ++i) sum += f.data<float>()[i];
  CHECK(sum == 100 * 20);  // ones inside, zeros in the padding
  CHECK(plain.feeds[4].second.data<int64_t>()[0] == 0);
  CHECK(plain.feeds[4].second.data<int64_t>()[1] == 3);
  CHECK(plain.feeds[2].second.data<int32_t>()[2] == 5);
  train::SpecAugmentOptions sa;
  sa.freq_masks = 1;
  sa.freq_width = 5;
  sa.time_masks = 1;
  sa.time_width = 0.2;
  double masked = 0;
  for (int rep = 0; rep < 20; ++rep) {
    train::Batch aug = train::Collate(utts, {0, 1}, 20, sa, rng);
    const ir::Tensor& g = aug.feeds[0].second;
    double s = 0;
    for (int64_t i = 0; i < g.numel(); ++i) s += g.data<float>()[i];
    CHECK(s <= sum);
    // utterance a: at most 5 bins x 40 frames + 8 frames x 20 bins masked
    double sa_sum = 0;
    for (int64_t i = 0; i < 60 * 20; ++i) sa_sum += g.data<float>()[i];
    CHECK(sa_sum >= 40 * 20 - 5 * 40 - 8 * 20);
    masked += sum - s;
  }
  CHECK(masked > 0);
}

TEST_CASE("LoadUtterances: a NeMo manifest through the fbank front end; a missing file names its line") {
  const std::string manifest = test::SourcePath("experiments/data/default_eval/manifest.jsonl");
  const std::string bundle = test::SourcePath("experiments/teacher/bundle");
  if (!test::HaveReference(test::Exists(manifest) && test::Exists(bundle), "demo data and teacher bundle")) return;
  auto model = onnx_io::LoadModel(bundle);
  REQUIRE(model.ok());
  auto fb = asr::FbankOptions::FromJson(model->config["frontend"]);
  REQUIRE(fb.ok());
  auto utts = train::LoadUtterances(manifest, "", *fb, model->tokens, 3);
  REQUIRE_MESSAGE(utts.ok(), utts.status().message());
  REQUIRE(utts->size() == 3);
  for (const auto& u : *utts) {
    CHECK(u.frames > 50);
    CHECK(u.features.size() == static_cast<size_t>(u.frames * 80));
    CHECK(u.labels.size() > 2);
    for (int32_t l : u.labels) CHECK((l > 0 && l < 256));
  }
  const std::string dir = (std::filesystem::temp_directory_path() / ("asrc_data_" + std::to_string(getpid()))).string();
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/m.jsonl") << "{\"audio_filepath\": \"nope.flac\", \"text\": \"hi\", \"id\": \"x1\"}\n";
  auto bad = train::LoadUtterances(dir + "/m.jsonl", "", *fb, model->tokens);
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().message().find("'x1'") != std::string::npos);
  std::filesystem::remove_all(dir);
}

TEST_CASE("EpochBatches: the batch of a step depends only on the step and the RNG state") {
  std::vector<train::Utterance> utts;
  for (int i = 0; i < 12; ++i) utts.push_back(Utt("u" + std::to_string(i), 10 + i * 5, 4, {1, 2}));
  train::BatchFn fn = train::EpochBatches(utts, 120, 4, train::SpecAugmentOptions{}, 9);
  std::mt19937_64 r1(5);
  std::vector<std::string> ids;
  for (int s = 1; s <= 12; ++s) ids.push_back(fn(s, r1)->id);
  // A fresh function asked for step 7 with the RNG as it was before step 7 gives the same batch.
  std::mt19937_64 r2(5);
  for (int s = 1; s <= 6; ++s) (void)fn(s, r2);
  train::BatchFn fresh = train::EpochBatches(utts, 120, 4, train::SpecAugmentOptions{}, 9);
  std::mt19937_64 r3 = r2;
  auto b7 = fresh(7, r3);
  auto again = fn(7, r2);
  CHECK(b7->id == ids[6]);
  const ir::Tensor& x = b7->feeds[0].second;
  const ir::Tensor& y = again->feeds[0].second;
  CHECK(std::equal(x.data<float>(), x.data<float>() + x.numel(), y.data<float>()));
}
