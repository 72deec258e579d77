// The demo teacher's exported graphs (experiments/teacher/bundle): BuildGradient over every
// float weight, run through runtime::Session, and checked against central finite differences
// on the weight elements with the largest gradients of a few weights per graph. These are
// PyTorch exports, so the rules meet the shape arithmetic, masks and Pad/Slice/Where chains
// that real models have, not just graphs written for the tests.
#include <algorithm>

#include "grad_util.h"
#include "onnx/onnx_io.h"

using namespace asrc;
using asrc::testing::Ints;
using asrc::testing::Rand;

namespace {

const std::string kBundle = ASRC_SOURCE_DIR "/experiments/teacher/bundle/";

struct Feeds {
  std::vector<std::pair<std::string, ir::Tensor>> inputs;
};

// loss = sum(output0 * R), R fixed random of output0's shape.
void CheckTeacherGraph(const std::string& file, const Feeds& feeds, int weights_to_check) {
  CAPTURE(file);
  auto gf = onnx_io::LoadGraphFile(kBundle + file);
  REQUIRE_MESSAGE(gf.ok(), gf.status().message());
  const int64_t opset = gf->opset();
  ir::Graph& g = *gf->graph;
  auto first = asrc::testing::RunGraph(g, feeds.inputs, opset);
  REQUIRE_MESSAGE(first.ok(), first.status().message());
  ir::Value* out0 = g.outputs[0];
  ir::Value* r = g.AddInitializer("grad_test_r", Rand((*first)[0].shape(), 77));
  ir::Value* prod = g.AddNode("Mul", {out0, r}, {"grad_test_prod"})->outputs[0];
  ir::Node* red = g.AddNode("ReduceSum", {prod}, {"grad_test_loss"});
  red->set_attr_int("keepdims", 0);
  g.outputs = {red->outputs[0]};

  std::vector<std::string> names;
  for (ir::Value* v : g.initializers)
    if (v->initializer->dtype() == ir::DType::Float32 && v->initializer->numel() > 1 && v->name != "grad_test_r")
      names.push_back(v->name);
  grad::GradientOptions opt;
  opt.opset = opset;
  auto gg = grad::BuildGradient(g, "grad_test_loss", names, opt);
  REQUIRE_MESSAGE(gg.ok(), gg.status().message());
  REQUIRE(g.Verify().ok());
  auto outs = asrc::testing::RunGraph(g, feeds.inputs, opset);
  REQUIRE_MESSAGE(outs.ok(), outs.status().message());
  MESSAGE(file << ": " << names.size() << " weights, " << gg->num_backward_nodes << " backward nodes");

  // The forward graph alone again (gradient outputs dropped) for the differences.
  g.outputs.resize(1);
  auto loss_now = [&]() -> double {
    auto o = asrc::testing::RunGraph(g, feeds.inputs, opset);
    REQUIRE_MESSAGE(o.ok(), o.status().message());
    return (*o)[0].data<float>()[0];
  };
  // Weights spread over the graph; in each, the 3 elements with the largest gradients.
  double worst = 0;
  for (int k = 0; k < weights_to_check; ++k) {
    size_t wi = (names.size() - 1) * k / std::max(1, weights_to_check - 1);
    ir::Tensor& w = *g.FindValue(names[wi])->initializer;
    const ir::Tensor& analytic = (*outs)[1 + wi];
    REQUIRE(analytic.shape() == w.shape());
    std::vector<int64_t> idx(static_cast<size_t>(w.numel()));
    for (int64_t i = 0; i < w.numel(); ++i) idx[i] = i;
    std::partial_sort(idx.begin(), idx.begin() + 3, idx.end(), [&](int64_t a, int64_t b) {
      return std::abs(analytic.data<float>()[a]) > std::abs(analytic.data<float>()[b]);
    });
    for (int j = 0; j < 3; ++j) {
      int64_t i = idx[j];
      float* p = w.data<float>() + i;
      const float keep = *p, eps = 1e-2f;
      *p = keep + eps;
      const double up = *p - keep, lp = loss_now();
      *p = keep - eps;
      const double down = *p - keep, lm = loss_now();
      *p = keep;
      double num = (lp - lm) / (up - down), ana = analytic.data<float>()[i];
      INFO(names[wi] << "[" << i << "]: analytic " << ana << ", numeric " << num);
      CHECK(std::abs(num - ana) <= 2e-2 * std::abs(ana) + 1e-3);
      worst = std::max(worst, std::abs(num - ana) / std::max(std::abs(ana), 1e-3));
    }
  }
  MESSAGE(file << ": largest relative difference from finite differences " << worst);
}

}  // namespace

TEST_CASE("teacher joiner: gradients of every weight, finite differences on a sample") {
  Feeds f;
  f.inputs = {{"encoder_out", Rand({3, 144}, 1)}, {"decoder_out", Rand({3, 256}, 2)}};
  CheckTeacherGraph("joiner.onnx", f, 4);
}

TEST_CASE("teacher decoder (embedding + LSTM): gradients, finite differences on a sample") {
  Feeds f;
  f.inputs = {{"y", Ints({3, 17, 0}, {3, 1})}, {"h", Rand({1, 3, 256}, 2, -0.5f, 0.5f)},
              {"c", Rand({1, 3, 256}, 3, -0.5f, 0.5f)}};
  CheckTeacherGraph("decoder.onnx", f, 3);
}

TEST_CASE("teacher causal encoder (one streaming chunk): gradients, finite differences on a sample") {
  Feeds f;
  f.inputs = {{"x", Rand({1, 35, 80}, 1, -1.f, 1.f)},
              {"cache_0", Rand({7, 1, 64, 144}, 2, -0.5f, 0.5f)},
              {"cache_1", Rand({7, 1, 64, 144}, 3, -0.5f, 0.5f)},
              {"cache_2", Rand({7, 1, 144, 14}, 4, -0.5f, 0.5f)},
              {"offset", Ints({64})}};
  CheckTeacherGraph("encoder_causal.onnx", f, 6);
}

TEST_CASE("teacher non-causal encoder (uneven lengths): gradients, finite differences on a sample") {
  Feeds f;
  f.inputs = {{"x", Rand({2, 12, 144}, 1)}, {"x_lens", Ints({12, 9})}};
  CheckTeacherGraph("encoder_noncausal.onnx", f, 6);
}
