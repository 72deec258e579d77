// The whole tiny transducer (tests/train/tiny_transducer.h) against PyTorch autograd: the same
// weights and batch go to tests/train/transducer_ref.py through files; the loss and the gradient
// of every weight, as train::Trainer computes them (grad::BuildGradient + runtime::Session), must
// match torchaudio's rnnt_loss (and a torch transducer KL) with max |ours - torch| / max |torch|
// <= 1e-3 per parameter tensor. Without PyTorch: a message, or a failure under CI=true.
#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "reference.h"
#include "runtime/session.h"
#include "tiny_transducer.h"

using namespace asrc;
using namespace asrc::testing;

namespace {

void Write(const std::string& dir, std::ofstream& spec, const std::string& name, const ir::Tensor& t) {
  const char* dt = t.dtype() == ir::DType::Float32 ? "f32" : t.dtype() == ir::DType::Int32 ? "i32" : "i64";
  spec << name << " " << dt;
  for (int64_t d : t.shape()) spec << " " << d;
  spec << "\n";
  std::ofstream f(dir + "/" + name + ".bin", std::ios::binary);
  f.write(reinterpret_cast<const char*>(t.raw()), static_cast<std::streamsize>(t.nbytes()));
}

// A text file of n numbers, one a line (numpy's savetxt with %.17g).
std::vector<double> ReadNumbers(const std::string& path, size_t n) {
  std::vector<double> v;
  std::ifstream f(path);
  for (double x; v.size() < n && f >> x;) v.push_back(x);
  REQUIRE_MESSAGE(v.size() == n, path << ": " << v.size() << " numbers, expected " << n);
  return v;
}

// Trains 5 steps first (so the weights are not the initial ones), then compares.
void Compare(TinyLoss loss, const std::string& mode) {
  if (!test::HaveReference(test::TorchAvailable(), test::kTorch)) return;
  TinyDims d;
  TinyData data = MakeTinyData(d, 6, 50);
  train::Batch batch = TinyBatch(data, loss == TinyLoss::kRnnt);
  if (loss == TinyLoss::kKl) {
    ir::Graph tg("teacher");
    BuildTiny(tg, TinyWeights(d, 98), TinyLoss::kNone);
    auto ts = runtime::Session::Create(tg, 17);
    REQUIRE(ts.ok());
    auto tl = (*ts)->Run({{"features", data.feats}, {"decoder_input", data.dec_in}});
    REQUIRE(tl.ok());
    batch.feeds.emplace_back("teacher_logits", (*tl)[0]);
  }
  ir::Graph g("tiny");
  BuildTiny(g, TinyWeights(d, 3), loss);
  train::TrainerOptions opt;
  opt.schedule = train::Schedule::Constant(0.01);
  auto trainer = train::Trainer::Create(g, "loss", TinyTrainables(), opt);
  REQUIRE_MESSAGE(trainer.ok(), trainer.status().message());
  for (int i = 0; i < 5; ++i) REQUIRE((*trainer)->Step(batch).ok());
  auto grads = (*trainer)->Gradients(batch);
  REQUIRE_MESSAGE(grads.ok(), grads.status().message());

  const std::string dir = (std::filesystem::temp_directory_path() /
                           ("asrc_transducer_" + mode + "_" + std::to_string(getpid()))).string();
  std::filesystem::create_directories(dir);
  {
    std::ofstream spec(dir + "/spec.txt");
    for (const auto& [name, t] : batch.feeds) Write(dir, spec, name, t);
    for (const auto& [name, t] : WeightsOf(**trainer)) Write(dir, spec, name, t);
  }
  const std::string cmd = "OMP_NUM_THREADS=1 /usr/bin/python3 " + test::SourcePath("tests/train/transducer_ref.py") +
                          " " + mode + " " + dir;
  REQUIRE(std::system(cmd.c_str()) == 0);
  const double torch_loss = ReadNumbers(dir + "/loss.txt", 1)[0];
  MESSAGE(mode << ": loss " << (*grads)[0].data<float>()[0] << ", PyTorch " << torch_loss);
  CHECK((*grads)[0].data<float>()[0] == doctest::Approx(torch_loss).epsilon(1e-5));
  int checks = 0;
  const auto& names = (*trainer)->trainable_names();
  for (size_t k = 0; k < names.size(); ++k) {
    const ir::Tensor& ours = (*grads)[1 + k];
    auto ref = ReadNumbers(dir + "/" + names[k] + ".grad.txt", static_cast<size_t>(ours.numel()));
    double max_ref = 0, max_diff = 0;
    for (int64_t i = 0; i < ours.numel(); ++i) {
      max_ref = std::max(max_ref, std::abs(ref[i]));
      max_diff = std::max(max_diff, std::abs(ref[i] - ours.data<float>()[i]));
    }
    const double rel = max_diff / std::max(max_ref, 1e-12);
    MESSAGE(mode << ": '" << names[k] << "' max |grad| " << max_ref << ", relative error vs PyTorch " << rel);
    CHECK(max_ref > 0);
    CHECK(rel <= 1e-3);
    ++checks;
  }
  test::RequireChecks(checks, test::kTorch);
  std::filesystem::remove_all(dir);
}

}  // namespace

TEST_CASE("tiny transducer + RNNTLoss: loss and every weight's gradient against torchaudio + autograd") {
  Compare(TinyLoss::kRnnt, "rnnt");
}

TEST_CASE("tiny transducer + TransducerKLLoss: loss and every weight's gradient against torch autograd") {
  Compare(TinyLoss::kKl, "kl");
}
