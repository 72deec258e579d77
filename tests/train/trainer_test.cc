// The training engine on a tiny transducer built in code (tests/train/tiny_transducer.h):
// it overfits 8 synthetic utterances (RNN-T loss and greedy decoding), distills from a fixed
// random teacher (TransducerKLLoss), resumes from a checkpoint bit for bit, and stops on a NaN
// loss or gradient naming the step and batch while keeping the last good checkpoint.
#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>

#include "runtime/session.h"
#include "tiny_transducer.h"

using namespace asrc;
using namespace asrc::testing;

namespace {

struct Setup {
  ir::Graph graph{"tiny"};
  std::unique_ptr<train::Trainer> trainer;
};

std::unique_ptr<Setup> MakeTrainer(const TinyDims& d, TinyLoss loss, const train::TrainerOptions& opt,
                                   uint64_t weight_seed = 1) {
  auto s = std::make_unique<Setup>();
  BuildTiny(s->graph, TinyWeights(d, weight_seed), loss);
  auto t = train::Trainer::Create(s->graph, "loss", TinyTrainables(), opt);
  REQUIRE_MESSAGE(t.ok(), t.status().message());
  s->trainer = std::move(*t);
  return s;
}

std::string TempPath(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("asrc_trainer_" + std::to_string(getpid()) + "_" + name))
      .string();
}

train::TrainerOptions Options(double lr) {
  train::TrainerOptions o;
  o.schedule = train::Schedule::Constant(lr);
  o.clip_norm = 5.0;
  o.seed = 7;
  return o;
}

}  // namespace

TEST_CASE("overfit: RNN-T loss on 8 utterances falls below 0.1 within 400 steps; greedy decoding recovers the labels") {
  TinyDims d;
  TinyData data = MakeTinyData(d, 8, 42);
  auto s = MakeTrainer(d, TinyLoss::kRnnt, Options(0.02));
  train::Batch batch = TinyBatch(data);
  double first = 0, last = 0;
  int64_t reached = -1;
  for (int step = 1; step <= 400; ++step) {
    auto r = s->trainer->Step(batch);
    REQUIRE_MESSAGE(r.ok(), r.status().message());
    if (step == 1) first = r->loss;
    last = r->loss;
    if (reached < 0 && r->loss < 0.1) reached = step;
    if (step % 50 == 0) MESSAGE("step " << step << " loss " << r->loss << " |g| " << r->grad_norm);
  }
  MESSAGE("RNN-T loss: first " << first << ", last " << last << ", below 0.1 at step " << reached);
  CHECK(first > 5.0);
  CHECK(reached > 0);
  auto w = WeightsOf(*s->trainer);
  for (int b = 0; b < 8; ++b) {
    INFO("utterance " << b);
    CHECK(TinyGreedy(d, w, data, b) == data.labels[b]);
  }
}

TEST_CASE("distillation: TransducerKLLoss to a fixed random teacher falls below a fifth of its start") {
  TinyDims d;
  TinyData data = MakeTinyData(d, 8, 43);
  // The teacher: the same architecture with other random weights (and sharper logits), run on
  // every batch through WithTeacher.
  auto tw = TinyWeights(d, 99);
  for (int64_t i = 0; i < tw["out_w"].numel(); ++i) tw["out_w"].data<float>()[i] *= 3.f;
  ir::Graph tg("teacher");
  BuildTiny(tg, tw, TinyLoss::kNone);
  auto ts = runtime::Session::Create(tg, 17);
  REQUIRE(ts.ok());
  auto s = MakeTrainer(d, TinyLoss::kKl, Options(0.02));
  train::BatchFn batches = train::WithTeacher(
      [&](int64_t, std::mt19937_64&) -> Result<train::Batch> { return TinyBatch(data, false); }, **ts);
  double first = 0, last = 0;
  train::LoopOptions loop;
  loop.steps = 300;
  loop.on_step = [&](const train::StepStats& st) { (st.step == 1 ? first : last) = st.loss; };
  Status st = s->trainer->Train(batches, loop);
  REQUIRE_MESSAGE(st.ok(), st.message());
  MESSAGE("KL: first " << first << ", after 300 steps " << last);
  CHECK(first > 0.5);
  CHECK(last < first / 5);
}

namespace {

// Batches whose features carry noise drawn from the trainer's RNG, so a resume must restore it.
train::BatchFn NoisyBatches(const TinyData& data, int nan_at_step = -1) {
  return [&data, nan_at_step](int64_t step, std::mt19937_64& rng) -> Result<train::Batch> {
    train::Batch b = TinyBatch(data);
    b.id = "noisy-" + std::to_string(step);
    ir::Tensor f = data.feats.Clone();
    std::normal_distribution<float> n(0.f, 0.05f);
    for (int64_t i = 0; i < f.numel(); ++i) f.data<float>()[i] += n(rng);
    if (step == nan_at_step) f.data<float>()[3] = std::nanf("");
    b.feeds[0].second = f;
    return b;
  };
}

bool BitEqual(const std::vector<ir::Tensor>& a, const std::vector<ir::Tensor>& b) {
  if (a.size() != b.size()) return false;
  for (size_t k = 0; k < a.size(); ++k)
    if (a[k].shape() != b[k].shape() || std::memcmp(a[k].raw(), b[k].raw(), a[k].nbytes()) != 0) return false;
  return true;
}

}  // namespace

TEST_CASE("resume: K steps + checkpoint + resume + K steps == 2K uninterrupted steps, bit for bit") {
  TinyDims d;
  TinyData data = MakeTinyData(d, 8, 44);
  train::TrainerOptions opt = Options(0.01);
  opt.schedule = train::Schedule::WarmupCosine(0.02, 5, 40, 0.001);
  const std::string ckpt = TempPath("resume.ckpt");

  auto straight = MakeTrainer(d, TinyLoss::kRnnt, opt);
  train::LoopOptions all;
  all.steps = 20;
  REQUIRE(straight->trainer->Train(NoisyBatches(data), all).ok());

  auto first = MakeTrainer(d, TinyLoss::kRnnt, opt);
  train::LoopOptions half;
  half.steps = 10;
  half.checkpoint = ckpt;
  Status st = first->trainer->Train(NoisyBatches(data), half);
  REQUIRE_MESSAGE(st.ok(), st.message());
  CHECK_FALSE(BitEqual(first->trainer->weights(), straight->trainer->weights()));

  auto resumed = MakeTrainer(d, TinyLoss::kRnnt, opt, /*weight_seed=*/5);  // other initial weights
  st = resumed->trainer->LoadCheckpoint(ckpt);
  REQUIRE_MESSAGE(st.ok(), st.message());
  CHECK(resumed->trainer->step() == 10);
  CHECK(BitEqual(resumed->trainer->weights(), first->trainer->weights()));
  REQUIRE(resumed->trainer->Train(NoisyBatches(data), all).ok());
  CHECK(resumed->trainer->step() == 20);
  CHECK(BitEqual(resumed->trainer->weights(), straight->trainer->weights()));

  // A checkpoint of another model is refused with the tensor named.
  TinyDims other = d;
  other.H = 12;
  auto wrong = MakeTrainer(other, TinyLoss::kRnnt, opt);
  st = wrong->trainer->LoadCheckpoint(ckpt);
  CHECK_FALSE(st.ok());
  CHECK(st.message().find("'enc_w' has shape") != std::string::npos);
  // A truncated checkpoint is refused and changes nothing.
  std::filesystem::resize_file(ckpt, std::filesystem::file_size(ckpt) - 100);
  std::vector<ir::Tensor> kept;
  for (const ir::Tensor& w : resumed->trainer->weights()) kept.push_back(w.Clone());
  st = resumed->trainer->LoadCheckpoint(ckpt);
  CHECK_FALSE(st.ok());
  CHECK(st.message().find("truncated") != std::string::npos);
  CHECK(resumed->trainer->step() == 20);
  CHECK(BitEqual(resumed->trainer->weights(), kept));
  std::remove(ckpt.c_str());
}

// A NaN feature: the runtime's Relu maps NaN to 0 (max(x, 0) as the vector instruction does), so
// the loss stays finite and the NaN shows in the gradient (enc_w's gradient is feats^T . dh).
TEST_CASE("a NaN in a batch stops training: the error names the step and batch, the last checkpoint is kept") {
  TinyDims d;
  TinyData data = MakeTinyData(d, 8, 45);
  const std::string ckpt = TempPath("nan.ckpt");
  auto s = MakeTrainer(d, TinyLoss::kRnnt, Options(0.01));
  train::LoopOptions loop;
  loop.steps = 10;
  loop.checkpoint = ckpt;
  loop.checkpoint_every = 2;
  std::vector<ir::Tensor> before;
  loop.on_step = [&](const train::StepStats& st) {
    if (st.step == 4)
      for (const ir::Tensor& w : s->trainer->weights()) before.push_back(w.Clone());
  };
  Status st = s->trainer->Train(NoisyBatches(data, /*nan_at_step=*/5), loop);
  REQUIRE_FALSE(st.ok());
  MESSAGE(st.message());
  CHECK(st.message().find("step 5") != std::string::npos);
  CHECK(st.message().find("noisy-5") != std::string::npos);
  CHECK(st.message().find("is nan; weights not updated") != std::string::npos);
  CHECK(s->trainer->step() == 4);
  CHECK(BitEqual(s->trainer->weights(), before));  // the failing step changed nothing
  auto fresh = MakeTrainer(d, TinyLoss::kRnnt, Options(0.01));
  REQUIRE(fresh->trainer->LoadCheckpoint(ckpt).ok());
  CHECK(fresh->trainer->step() == 4);
  CHECK(BitEqual(fresh->trainer->weights(), before));
  CHECK_FALSE(std::filesystem::exists(ckpt + ".tmp"));
  std::remove(ckpt.c_str());
}

TEST_CASE("bad input: a missing feed, an unknown loss, a trainable the loss does not use") {
  TinyDims d;
  TinyData data = MakeTinyData(d, 2, 46);
  auto s = MakeTrainer(d, TinyLoss::kRnnt, Options(0.01));
  train::Batch b = TinyBatch(data, /*with_targets=*/false);
  auto r = s->trainer->Step(b);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().message().find("input 'targets' is not fed") != std::string::npos);
  ir::Graph g("tiny");
  BuildTiny(g, TinyWeights(d, 1), TinyLoss::kRnnt);
  CHECK_FALSE(train::Trainer::Create(g, "no_such_loss", TinyTrainables()).ok());
  ir::Graph g2("tiny");
  BuildTiny(g2, TinyWeights(d, 1), TinyLoss::kRnnt);
  g2.AddInitializer("unused", ir::Tensor(ir::DType::Float32, {3}));
  auto t = train::Trainer::Create(g2, "loss", {"enc_w", "unused"});
  REQUIRE_FALSE(t.ok());
  CHECK(t.status().message().find("unused") != std::string::npos);
}

TEST_CASE("two threads: the same training within float tolerance of one thread") {
  TinyDims d;
  TinyData data = MakeTinyData(d, 8, 47);
  train::TrainerOptions one = Options(0.01), two = Options(0.01);
  two.threads = 2;
  auto a = MakeTrainer(d, TinyLoss::kRnnt, one);
  auto b = MakeTrainer(d, TinyLoss::kRnnt, two);
  for (int step = 0; step < 10; ++step) {
    auto ra = a->trainer->Step(TinyBatch(data));
    auto rb = b->trainer->Step(TinyBatch(data));
    REQUIRE(ra.ok());
    REQUIRE_MESSAGE(rb.ok(), rb.status().message());
    CHECK(rb->loss == doctest::Approx(ra->loss).epsilon(1e-4));
  }
  for (size_t k = 0; k < a->trainer->weights().size(); ++k) {
    const ir::Tensor& x = a->trainer->weights()[k];
    const ir::Tensor& y = b->trainer->weights()[k];
    double diff = 0;
    for (int64_t i = 0; i < x.numel(); ++i) diff = std::max(diff, double(std::abs(x.data<float>()[i] - y.data<float>()[i])));
    CHECK(diff < 1e-3);
  }
}
