// Whole small models: the gradient graph's results against PyTorch autograd (float64) on the same
// weights and inputs (tests/grad/torch_reference.py): max |ours - torch| / max |torch| <= 1e-3
// per parameter tensor. Without PyTorch the test fails when CI=true and says so otherwise.
#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include "grad_util.h"
#include "reference.h"

using namespace asrc;
using asrc::testing::Ints;
using asrc::testing::Net;
using asrc::testing::Rand;

namespace {

bool HaveTorch() {
  return std::system("/usr/bin/python3 -c 'import torch, numpy' > /dev/null 2>&1") == 0;
}

bool RequireTorch() {
  return test::HaveReference(HaveTorch(), "PyTorch (/usr/bin/python3 with torch and numpy)");
}

void WriteRaw(const std::string& path, const ir::Tensor& t) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(t.raw()), static_cast<std::streamsize>(t.nbytes()));
}

std::vector<double> ReadF64(const std::string& path, size_t n) {
  std::vector<double> v(n);
  std::ifstream f(path, std::ios::binary);
  f.read(reinterpret_cast<char*>(v.data()), static_cast<std::streamsize>(n * sizeof(double)));
  REQUIRE_MESSAGE(f.gcount() == static_cast<std::streamsize>(n * sizeof(double)), "short read: " << path);
  return v;
}

// Builds the gradient of `loss` w.r.t. every weight of `net`, runs it, runs the PyTorch model on
// the same tensors and compares.
void CompareWithTorch(const std::string& model, Net& net, ir::Value* loss) {
  if (!RequireTorch()) return;
  std::string dir = "/tmp/asrc_grad_" + model + "_" + std::to_string(getpid());
  REQUIRE(std::system(("mkdir -p " + dir).c_str()) == 0);
  {
    std::ofstream spec(dir + "/spec.txt");
    auto line = [&](const std::string& name, const ir::Tensor& t, bool weight) {
      spec << (weight ? "w:" : "") << name << (t.dtype() == ir::DType::Int64 ? " i64" : " f32");
      for (int64_t d : t.shape()) spec << " " << d;
      spec << "\n";
      WriteRaw(dir + "/" + name + ".bin", t);
    };
    for (const auto& [name, t] : net.feeds) line(name, t, false);
    for (const auto& [name, t] : net.weights) line(name, t, true);
  }
  std::vector<std::string> names;
  for (const auto& [name, t] : net.weights) names.push_back(name);
  net.g.outputs = {loss};
  auto gg = grad::BuildGradient(net.g, loss->name, names);
  REQUIRE_MESSAGE(gg.ok(), gg.status().message());
  REQUIRE(net.g.Verify().ok());
  auto out = asrc::testing::RunGraph(net.g, net.feeds);
  REQUIRE_MESSAGE(out.ok(), out.status().message());

  std::string cmd = "OMP_NUM_THREADS=1 /usr/bin/python3 " ASRC_SOURCE_DIR "/tests/grad/torch_reference.py " +
                    model + " " + dir;
  REQUIRE(std::system(cmd.c_str()) == 0);
  double torch_loss = ReadF64(dir + "/loss.bin", 1)[0];
  CHECK((*out)[0].data<float>()[0] == doctest::Approx(torch_loss).epsilon(1e-5));
  for (size_t k = 0; k < names.size(); ++k) {
    const ir::Tensor& ours = (*out)[1 + k];
    REQUIRE(ours.shape() == net.weights[names[k]].shape());
    std::vector<double> ref = ReadF64(dir + "/" + names[k] + ".grad.bin", static_cast<size_t>(ours.numel()));
    double max_ref = 0, max_diff = 0;
    for (int64_t i = 0; i < ours.numel(); ++i) {
      max_ref = std::max(max_ref, std::abs(ref[i]));
      max_diff = std::max(max_diff, std::abs(ref[i] - ours.data<float>()[i]));
    }
    double rel = max_diff / std::max(max_ref, 1e-12);
    MESSAGE(model << ": '" << names[k] << "' max |grad| " << max_ref << ", relative error vs PyTorch " << rel);
    CHECK(max_ref > 0);
    CHECK(rel <= 1e-3);
  }
  std::system(("rm -rf " + dir).c_str());
}

}  // namespace

TEST_CASE("2-layer MLP (Gemm, Relu, MatMul, LogSoftmax, NLL) against PyTorch autograd") {
  Net n(false);
  ir::Tensor onehot(ir::DType::Float32, {8, 4});
  for (int64_t i = 0; i < 8; ++i) onehot.data<float>()[i * 4 + (i * 3) % 4] = 1.f;
  ir::Value* x = n.Input("x", Rand({8, 6}, 1));
  ir::Value* target = n.Input("onehot", onehot);
  ir::Node* fc1 = n.Node("Gemm", {x, n.Weight("w1t", Rand({16, 6}, 2, -0.5f, 0.5f)), n.Weight("b1", Rand({16}, 3))});
  fc1->set_attr_int("transB", 1);
  ir::Value* h = n.Op("Relu", {fc1->outputs[0]});
  ir::Value* z = n.Op("Add", {n.Op("MatMul", {h, n.Weight("w2", Rand({16, 4}, 4))}), n.Weight("b2", Rand({4}, 5))});
  ir::Value* logp = n.Op("LogSoftmax", {z});
  ir::Node* nll = n.Node("ReduceSum", {n.Op("Mul", {logp, target}), n.Const(Ints({1}))});
  nll->set_attr_int("keepdims", 0);
  ir::Node* mean = n.Node("ReduceMean", {nll->outputs[0]});
  mean->set_attr_int("keepdims", 0);
  CompareWithTorch("mlp", n, n.Op("Neg", {mean->outputs[0]}));
}

TEST_CASE("trainables as inputs: one session, weights fed each run, same gradients") {
  auto build = [](bool as_inputs, std::vector<ir::Tensor>* weights) {
    auto n = std::make_unique<Net>(false);
    ir::Value* x = n->Input("x", Rand({5, 3}, 1));
    ir::Value* h = n->Op("Tanh", {n->Op("MatMul", {x, n->Weight("w1", Rand({3, 4}, 2))})});
    ir::Value* y = n->Op("MatMul", {h, n->Weight("w2", Rand({4, 2}, 3))});
    ir::Node* loss = n->Node("ReduceSum", {n->Op("Mul", {y, y})});
    loss->set_attr_int("keepdims", 0);
    n->g.outputs = {loss->outputs[0]};
    grad::GradientOptions opt;
    opt.trainables_as_inputs = as_inputs;
    auto gg = grad::BuildGradient(n->g, loss->outputs[0]->name, {"w1", "w2"}, opt);
    REQUIRE(gg.ok());
    if (weights) *weights = gg->trainable_values;
    return n;
  };
  std::vector<ir::Tensor> w;
  auto fed = build(true, &w);
  REQUIRE(w.size() == 2);
  CHECK(fed->g.initializers.size() + 2 == build(false, nullptr)->g.initializers.size());
  auto session = runtime::Session::Create(fed->g, 17);
  REQUIRE(session.ok());
  CHECK((*session)->input_names() == std::vector<std::string>{"x", "w1", "w2"});
  for (int step = 0; step < 2; ++step) {
    if (step == 1) w[0].data<float>()[0] += 0.5f;  // a weight update between steps
    auto out = (*session)->Run({{"x", fed->feeds[0].second}, {"w1", w[0]}, {"w2", w[1]}});
    REQUIRE(out.ok());
    // Reference: the initializer form, built fresh with the same weight values.
    auto ref = build(false, nullptr);
    ref->g.FindValue("w1")->initializer = w[0].Clone();
    auto ro = asrc::testing::RunGraph(ref->g, ref->feeds);
    REQUIRE(ro.ok());
    for (size_t k = 0; k < 3; ++k)
      for (int64_t i = 0; i < (*out)[k].numel(); ++i)
        CHECK((*out)[k].data<float>()[i] == doctest::Approx((*ro)[k].data<float>()[i]).epsilon(1e-5));
  }
}

TEST_CASE("attention block (Gather, multi-head MatMul/Softmax, LayerNorm, FFN) against PyTorch autograd") {
  const int64_t B = 2, T = 5, D = 8;
  Net n(false);
  ir::Value* tokens = n.Input("tokens", Ints({1, 4, 4, 0, 9, 3, 3, 3, 7, 1}, {B, T}));
  ir::Value* r = n.Input("r", Rand({B, T, D}, 50));
  ir::Value* x = n.Op("Gather", {n.Weight("emb", Rand({11, D}, 1)), tokens});
  auto heads = [&](ir::Value* v, std::vector<int64_t> perm) {
    ir::Value* s = n.Op("Reshape", {v, n.Const(Ints({0, 0, 2, D / 2}))});
    ir::Node* t = n.Node("Transpose", {s});
    t->set_attr_ints("perm", std::move(perm));
    return t->outputs[0];
  };
  auto proj = [&](const std::string& w, uint32_t seed) { return n.Op("MatMul", {x, n.Weight(w, Rand({D, D}, seed, -0.5f, 0.5f))}); };
  ir::Value* q = heads(n.Op("Add", {proj("wq", 2), n.Weight("bq", Rand({D}, 3))}), {0, 2, 1, 3});
  ir::Value* k = heads(proj("wk", 4), {0, 2, 3, 1});
  ir::Value* v = heads(proj("wv", 5), {0, 2, 1, 3});
  ir::Value* scores = n.Op("Mul", {n.Op("MatMul", {q, k}), n.Const(ir::Tensor::Scalar(0.5f))});
  ir::Value* att = n.Op("Softmax", {scores});
  ir::Node* back = n.Node("Transpose", {n.Op("MatMul", {att, v})});
  back->set_attr_ints("perm", {0, 2, 1, 3});
  ir::Value* merged = n.Op("Reshape", {back->outputs[0], n.Const(Ints({0, 0, D}))});
  ir::Value* o = n.Op("MatMul", {merged, n.Weight("wo", Rand({D, D}, 6, -0.5f, 0.5f))});
  ir::Node* ln = n.Node("LayerNormalization", {n.Op("Add", {x, o}), n.Weight("gamma", Rand({D}, 7, 0.5f, 1.5f)),
                                               n.Weight("beta", Rand({D}, 8))});
  ln->set_attr_float("epsilon", 1e-5f);
  ir::Value* y = ln->outputs[0];
  ir::Value* f1 = n.Op("Relu", {n.Op("Add", {n.Op("MatMul", {y, n.Weight("f1", Rand({D, 16}, 9, -0.5f, 0.5f))}),
                                            n.Weight("fb1", Rand({16}, 10))})});
  ir::Value* out = n.Op("Add", {y, n.Op("MatMul", {f1, n.Weight("f2", Rand({16, D}, 11, -0.5f, 0.5f))})});
  ir::Node* loss = n.Node("ReduceSum", {n.Op("Mul", {out, r})});
  loss->set_attr_int("keepdims", 0);
  CompareWithTorch("attention", n, loss->outputs[0]);
}
