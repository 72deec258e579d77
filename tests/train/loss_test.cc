// The ai.asrc loss kernels (runtime/kernels/loss.h) against references no one here wrote:
// torchaudio.functional.rnnt_loss, torch.nn.functional.ctc_loss, and torch autograd on the KL
// and L2 definitions (tests/train/loss_ref.py), <= 1e-4 relative for the loss and the gradient
// (max |difference| over max |reference|); RNN-T's gradient also against float64 autograd of its
// recursion, <= 1e-6 (torchaudio computes in float32). Their gradients also against central finite
// differences of the loss, and bad input against clear errors. Without PyTorch the reference
// test fails when CI=true and is skipped with a message otherwise.
#include <unistd.h>

#include <cmath>
#include <fstream>
#include <string>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "runtime/test_util.h"
#include "train/ref_util.h"

using asrc::ir::DType;
using asrc::ir::Tensor;
using asrc::testing::I64;
using asrc::testing::OneNode;
using asrc::testing::RandomTensor;
using asrc::testing::RelDiff;

namespace {

// A one-node graph running the ai.asrc loss `op` with its outputs (loss, gradient).
struct LossNode : OneNode {
  LossNode(const std::string& op, const std::vector<Tensor>& inputs, const nlohmann::json& attrs, int outputs = 2)
      : OneNode(op, inputs, outputs) {
    node->domain = "ai.asrc";
    for (auto& [k, v] : attrs.items()) {
      if (v.is_string()) node->set_attr_string(k, v.get<std::string>());
      else node->set_attr_int(k, v.get<int64_t>());
    }
  }
};

Tensor Load(const std::string& dir, const nlohmann::json& a) {
  const std::string dt = a["dtype"];
  DType d = dt == "float32" ? DType::Float32 : dt == "int64" ? DType::Int64 : DType::Int32;
  Tensor t(d, a["shape"].get<asrc::ir::Shape>());
  std::ifstream f(dir + "/" + a["file"].get<std::string>(), std::ios::binary);
  f.read(reinterpret_cast<char*>(t.raw()), static_cast<std::streamsize>(t.nbytes()));
  REQUIRE(f.gcount() == static_cast<std::streamsize>(t.nbytes()));
  return t;
}

double Sum(const Tensor& t) {
  double s = 0;
  for (int64_t i = 0; i < t.numel(); ++i) s += t.data<float>()[i];
  return s;
}

}  // namespace

TEST_CASE("losses match PyTorch and torchaudio") {
  const std::string dir = "/tmp/asrc_loss_ref_" + std::to_string(getpid());
  const std::string cmd = "/usr/bin/python3 " ASRC_SOURCE_DIR "/tests/train/loss_ref.py " + dir;
  if (!asrc::testing::RunReference(cmd, "PyTorch/torchaudio")) return;
  std::ifstream jf(dir + "/cases.json");
  const nlohmann::json cases = nlohmann::json::parse(jf);
  REQUIRE(cases.size() >= 18);
  for (const auto& c : cases) {
    const std::string name = c["name"];
    CAPTURE(name);
    std::vector<Tensor> inputs;
    for (const auto& a : c["inputs"]) inputs.push_back(Load(dir, a));
    const Tensor want_loss = Load(dir, c["loss"]), want_grad = Load(dir, c["grad"]);
    for (int threads : {1, 2}) {
      CAPTURE(threads);
      LossNode n(c["op"], inputs, c["attrs"]);
      auto out = n.Run(17, threads);
      REQUIRE_MESSAGE(out.ok(), out.status().message());
      const double dl = RelDiff(out.value()[0], want_loss);
      CHECK(dl <= 1e-4);
      if (want_grad.numel() > 0) {  // unfused cases: loss only (their gradient: finite differences)
        const double dg = RelDiff(out.value()[1], want_grad);
        CHECK(dg <= 1e-4);
        if (threads == 1) MESSAGE(name << ": loss rel diff " << dl << ", grad rel diff " << dg);
      }
      if (c.contains("grad64")) {  // RNN-T: float64 autograd, to see our error apart from torchaudio's
        const double d64 = RelDiff(out.value()[1], Load(dir, c["grad64"]));
        CHECK(d64 <= 1e-6);
        if (threads == 1) MESSAGE(name << ": grad rel diff vs float64 autograd " << d64);
      }
    }
  }
  std::system(("rm -rf " + dir).c_str());
}

namespace {

// Central finite differences of sum(output 0) against output 1, at every element of input 0.
void CheckFiniteDifferences(const std::string& op, std::vector<Tensor> inputs, const nlohmann::json& attrs) {
  LossNode n(op, inputs, attrs);
  auto base = n.Run();
  REQUIRE_MESSAGE(base.ok(), base.status().message());
  const Tensor& grad = base.value()[1];
  REQUIRE(grad.shape() == inputs[0].shape());
  Tensor x = inputs[0].Clone();
  const float eps = 1e-2f;
  double max_err = 0, max_g = 0;
  for (int64_t i = 0; i < x.numel(); ++i) {
    double f[2];
    for (int side = 0; side < 2; ++side) {
      Tensor xp = x.Clone();
      xp.data<float>()[i] += side ? -eps : eps;
      inputs[0] = xp;
      auto r = LossNode(op, inputs, attrs).Run();
      REQUIRE(r.ok());
      f[side] = Sum(r.value()[0]);
    }
    const double fd = (f[0] - f[1]) / (2 * eps);
    max_err = std::max(max_err, std::abs(fd - grad.data<float>()[i]));
    max_g = std::max(max_g, std::abs(double(grad.data<float>()[i])));
  }
  MESSAGE(op << " " << attrs.dump() << ": max |fd - grad| = " << max_err << ", max |grad| = " << max_g);
  CHECK(max_g > 1e-3);
  CHECK(max_err <= 5e-4 * std::max(1.0, max_g));
}

Tensor LogSoftmax(const Tensor& x) {
  Tensor y = x.Clone();
  const int64_t V = x.shape().back();
  for (int64_t r = 0; r < x.numel() / V; ++r) {
    float* p = y.data<float>() + r * V;
    double m = *std::max_element(p, p + V), s = 0;
    for (int64_t k = 0; k < V; ++k) s += std::exp(p[k] - m);
    for (int64_t k = 0; k < V; ++k) p[k] = static_cast<float>(p[k] - m - std::log(s));
  }
  return y;
}

}  // namespace

TEST_CASE("loss gradients match central finite differences") {
  // B = 2 with uneven lengths (the second utterance leaves padding that must get zero gradient).
  const Tensor x4 = RandomTensor({2, 3, 3, 5}, 7, -2.f, 2.f);
  const Tensor t4 = RandomTensor({2, 3, 3, 5}, 8, -2.f, 2.f);
  const Tensor targets = I64({1, 3, 4, 2}, {2, 2}), tlen = I64({3, 2}), ulen = I64({2, 1});
  for (const char* red : {"mean", "sum", "none"}) {
    CheckFiniteDifferences("RNNTLoss", {x4, targets, tlen, ulen}, {{"reduction", red}});
    CheckFiniteDifferences("TransducerKLLoss", {x4, t4, tlen, ulen}, {{"reduction", red}});
    CheckFiniteDifferences("TransducerCollapsedKLLoss", {x4, t4, targets, tlen, ulen},
                           {{"reduction", red}, {"blank", 2}});
  }
  CheckFiniteDifferences("RNNTLoss", {LogSoftmax(x4), targets, tlen, ulen}, {{"fused_log_softmax", 0}});
  const Tensor x3 = RandomTensor({2, 6, 5}, 9, -2.f, 2.f);
  const Tensor ct = I64({1, 1, 3, 4}, {2, 2}), ctl = I64({6, 4}), cul = I64({2, 1});
  CheckFiniteDifferences("CTCLoss", {x3, ct, ctl, cul}, {{"reduction", "mean"}});
  CheckFiniteDifferences("CTCLoss", {LogSoftmax(x3), ct, ctl, cul}, {{"fused_log_softmax", 0}, {"reduction", "sum"}});
  CheckFiniteDifferences("L2HintLoss", {x3, RandomTensor({2, 6, 5}, 10), I64({6, 3})}, {{"reduction", "mean"}});
}

TEST_CASE("loss kernels: padding gets zero gradient; loss without gradient output; 3-class teacher") {
  const Tensor x = RandomTensor({2, 4, 3, 6}, 11, -2.f, 2.f), t = RandomTensor({2, 4, 3, 6}, 12, -2.f, 2.f);
  const Tensor targets = I64({1, 2, 3, 0}, {2, 2}), tlen = I64({4, 2}), ulen = I64({2, 1});
  auto r = LossNode("RNNTLoss", {x, targets, tlen, ulen}, {{"blank", 5}}).Run();
  REQUIRE(r.ok());
  auto loss_only = LossNode("RNNTLoss", {x, targets, tlen, ulen}, {{"blank", 5}}, 1).Run();  // no gradient output
  REQUIRE(loss_only.ok());
  REQUIRE(loss_only.value().size() == 1);
  CHECK(loss_only.value()[0].data<float>()[0] == r.value()[0].data<float>()[0]);
  const Tensor& g = r.value()[1];
  for (int64_t ti = 0; ti < 4; ++ti)
    for (int64_t u = 0; u < 3; ++u)
      for (int64_t k = 0; k < 6; ++k) {
        const float v = g.data<float>()[((1 * 4 + ti) * 3 + u) * 6 + k];
        if (ti >= 2 || u >= 2) CHECK(v == 0.f);
      }
  // The collapsed KL with the teacher given as its three-class probabilities (u = U_b rows carry
  // their label-class mass in "rest") equals the one given the teacher's logits.
  const Tensor tgt2 = I64({1, 2, 3, 1}, {2, 2});
  auto full = LossNode("TransducerCollapsedKLLoss", {x, t, tgt2, tlen, ulen}, {{"reduction", "sum"}}).Run();
  REQUIRE(full.ok());
  Tensor q(DType::Float32, {2, 4, 3, 3});
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t node = b * 12; node < b * 12 + 12; ++node) {
      const int64_t u = node % 3, U = ulen.data<int64_t>()[b];
      const int64_t label = u < U ? tgt2.data<int64_t>()[b * 2 + u] : -1;
      const float* row = t.data<float>() + node * 6;
      double z = 0, e[3] = {0, 0, 0};
      for (int64_t k = 0; k < 6; ++k) z += std::exp(row[k]);
      for (int64_t k = 0; k < 6; ++k) e[k == label ? 0 : k == 0 ? 1 : 2] += std::exp(row[k]) / z;
      if (label < 0) e[0] = 0.25 * e[2], e[2] *= 0.75;  // split "rest" arbitrarily: it is merged back
      for (int c = 0; c < 3; ++c) q.data<float>()[node * 3 + c] = static_cast<float>(e[c]);
    }
  auto three = LossNode("TransducerCollapsedKLLoss", {x, q, tgt2, tlen, ulen}, {{"reduction", "sum"}}).Run();
  REQUIRE_MESSAGE(three.ok(), three.status().message());
  CHECK(RelDiff(three.value()[0], full.value()[0]) <= 1e-5);
  CHECK(RelDiff(three.value()[1], full.value()[1]) <= 1e-5);
}

TEST_CASE("loss kernels: bad input is a clear error naming the node") {
  const Tensor x = RandomTensor({2, 3, 3, 5}, 13);
  const Tensor targets = I64({1, 3, 4, 2}, {2, 2});
  auto msg = [](const asrc::Result<std::vector<Tensor>>& r) { return r.ok() ? std::string("ok") : r.status().message(); };
  std::string m = msg(LossNode("RNNTLoss", {x, targets, I64({4, 2}), I64({2, 1})}, {}).Run());
  CHECK(m.find("logit_lengths[0] = 4 is outside [1, 3]") != std::string::npos);
  CHECK(m.find("node 'n0'") != std::string::npos);
  m = msg(LossNode("RNNTLoss", {x, I64({1, 0, 4, 2}, {2, 2}), I64({3, 2}), I64({2, 1})}, {}).Run());
  CHECK(m.find("targets[0, 1] = 0 is the blank") != std::string::npos);
  m = msg(LossNode("RNNTLoss", {x, targets, I64({3, 2}), I64({3, 1})}, {}).Run());
  CHECK(m.find("target_lengths[0] = 3 is outside [0, 2]") != std::string::npos);
  m = msg(LossNode("RNNTLoss", {x, targets, I64({3, 2}), I64({2, 1})}, {{"reduction", "avg"}}).Run());
  CHECK(m.find("reduction='avg'") != std::string::npos);
  m = msg(LossNode("TransducerKLLoss", {x, RandomTensor({2, 3, 3, 6}, 1), I64({3, 2}), I64({2, 1})}, {}).Run());
  CHECK(m.find("does not match student") != std::string::npos);
  m = msg(LossNode("L2HintLoss", {x, x}, {{"reduction", "none"}}).Run());
  CHECK(m.find("reduction='none'") != std::string::npos);
}
