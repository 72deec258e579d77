// Plan-time fusion (runtime/fusion.h): which chains fuse (structure: the planned step ops) and
// that fused plans give bit-identical outputs to unfused ones (SessionOptions::fuse = false), on
// int8 graphs built in code and on the benchmark models that bench/make_models.py writes
// (tests/run.sh makes them; missing: a message, or a failure under CI=true — tests/reference.h).
#include <doctest/doctest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <map>
#include <random>

#include "onnx/onnx_io.h"
#include "reference.h"
#include "runtime/inputs.h"
#include "runtime/session_impl.h"
#include "test_util.h"

using namespace asrc;
using asrc::testing::RandomTensor;
using asrc::testing::SameBytes;

namespace {

ir::Value* Input(ir::Graph& g, const std::string& name) {
  ir::Value* v = g.AddValue(name);
  v->type.has_type = true;
  v->type.dtype = ir::DType::Float32;
  g.inputs.push_back(v);
  return v;
}

ir::Tensor Int8Weight(int64_t K, int64_t N, uint32_t seed, int qmax) {
  ir::Tensor t(ir::DType::Int8, {K, N});
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> d(-qmax, qmax);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<int8_t>()[i] = static_cast<int8_t>(d(rng));
  return t;
}

struct Quantized {
  ir::Value *xq, *xs, *xzp;
};

Quantized Dql(ir::Graph& g, ir::Value* x, const std::string& p) {
  auto* n = g.AddNode("DynamicQuantizeLinear", {x}, {p + "_xq", p + "_xs", p + "_xzp"}, p + "_dql");
  return {n->outputs[0], n->outputs[1], n->outputs[2]};
}

// ORT's dynamic-quantizer chain after a DynamicQuantizeLinear: MatMulInteger -> Cast -> Mul by
// Mul(x_scale, W_scale) [-> Add bias]; returns the chain's output.
ir::Value* QuantProduct(ir::Graph& g, const Quantized& q, int64_t K, int64_t N, const std::string& p,
                        uint32_t seed, bool bias, int qmax = 127, bool per_column_scale = true) {
  auto* w = g.AddInitializer(p + "_W", Int8Weight(K, N, seed, qmax));
  auto* wzp = g.AddInitializer(p + "_Wzp", ir::Tensor(ir::DType::Int8, {N}));
  std::memset(wzp->initializer->raw(), 0, static_cast<size_t>(N));
  auto* ws = g.AddInitializer(
      p + "_Ws", per_column_scale ? RandomTensor({N}, seed + 1, 0.001f, 0.01f)
                                  : RandomTensor({}, seed + 1, 0.001f, 0.01f));
  auto* acc = g.AddNode("MatMulInteger", {q.xq, w, q.xzp, wzp}, {p + "_acc"}, p + "_mmi")->outputs[0];
  auto* accf = g.AddNode("Cast", {acc}, {p + "_accf"}, p + "_cast");
  accf->set_attr_int("to", static_cast<int64_t>(ir::DType::Float32));
  auto* scale = g.AddNode("Mul", {q.xs, ws}, {p + "_scale"}, p + "_s")->outputs[0];
  auto* y = g.AddNode("Mul", {accf->outputs[0], scale}, {p + "_y"}, p + "_mul")->outputs[0];
  if (!bias) return y;
  auto* b = g.AddInitializer(p + "_b", RandomTensor({N}, seed + 2));
  return g.AddNode("Add", {b, y}, {p + "_yb"}, p + "_add")->outputs[0];
}

std::vector<std::string> StepOps(const ir::Graph& g, bool fuse) {
  runtime::SessionOptions o;
  o.fuse = fuse;
  auto s = runtime::SessionImpl::Create(g, 17, o, {});
  REQUIRE_MESSAGE(s.ok(), s.status().message());
  return (*s)->step_ops();
}

int Count(const std::vector<std::string>& ops, const std::string& op) {
  return static_cast<int>(std::count(ops.begin(), ops.end(), op));
}

// Runs g fused and unfused at 1 and 2 threads on the same inputs; every output must be equal
// byte for byte.
void CheckBitIdentical(const ir::Graph& g, const std::vector<ir::Tensor>& inputs) {
  for (int threads : {1, 2}) {
    std::vector<ir::Tensor> out[2];
    for (int fuse = 0; fuse < 2; ++fuse) {
      runtime::SessionOptions o;
      o.threads = threads;
      o.fuse = fuse == 1;
      auto s = runtime::Session::Create(g, 17, o);
      REQUIRE_MESSAGE(s.ok(), s.status().message());
      for (int run = 0; run < 2; ++run) {  // a second run reuses pooled buffers
        Status st = (*s)->Run(inputs, &out[fuse]);
        REQUIRE_MESSAGE(st.ok(), st.message());
      }
    }
    REQUIRE(out[0].size() == out[1].size());
    for (size_t i = 0; i < out[0].size(); ++i) {
      INFO("output " << i << ", threads " << threads);
      REQUIRE(out[0][i].shape() == out[1][i].shape());
      REQUIRE(out[0][i].dtype() == out[1][i].dtype());
      CHECK(std::memcmp(out[0][i].raw(), out[1][i].raw(), out[0][i].nbytes()) == 0);
    }
  }
}

}  // namespace

TEST_CASE("DynamicQuantizeLinear -> MatMulInteger -> Cast -> Mul [-> Add] fuses, bit-identical") {
  for (int qmax : {63, 127}) {
    for (bool bias : {false, true}) {
      for (bool per_col : {false, true}) {
        CAPTURE(qmax);
        CAPTURE(bias);
        CAPTURE(per_col);
        ir::Graph g("q");
        ir::Value* x = Input(g, "x");
        ir::Value* y = QuantProduct(g, Dql(g, x, "a"), 48, 37, "a", 7, bias, qmax, per_col);
        g.outputs.push_back(y);
        auto fused = StepOps(g, true);
        CHECK(fused == std::vector<std::string>{"DynamicQuantizeMatMul"});
        CHECK(StepOps(g, false).size() == (bias ? 6u : 5u));
        for (int64_t T : {1, 5, 75})
          CheckBitIdentical(g, {RandomTensor({1, T, 48}, static_cast<uint32_t>(T), -3.f, 2.f)});
      }
    }
  }
}

TEST_CASE("a DynamicQuantizeLinear shared by several products stays; they fuse to MatMulIntegerToFloat") {
  ir::Graph g("qkv");
  ir::Value* x = Input(g, "x");
  Quantized q = Dql(g, x, "x");
  g.outputs.push_back(QuantProduct(g, q, 32, 32, "q", 1, true));
  g.outputs.push_back(QuantProduct(g, q, 32, 32, "k", 2, false));
  g.outputs.push_back(QuantProduct(g, q, 32, 20, "v", 3, true));
  auto ops = StepOps(g, true);
  CHECK(Count(ops, "DynamicQuantizeLinear") == 1);
  CHECK(Count(ops, "MatMulIntegerToFloat") == 3);
  CHECK(ops.size() == 4);
  CheckBitIdentical(g, {RandomTensor({2, 9, 32}, 11)});
}

TEST_CASE("chains whose intermediates are read elsewhere or are graph outputs are not fused") {
  ir::Graph g("q");
  ir::Value* x = Input(g, "x");
  ir::Value* y1 = QuantProduct(g, Dql(g, x, "a"), 16, 8, "a", 1, true);
  g.outputs.push_back(y1);
  // The second chain's Mul output is also a graph output: its Add cannot be absorbed, but the
  // chain up to the Mul still fuses.
  ir::Value* y2 = QuantProduct(g, Dql(g, x, "b"), 16, 8, "b", 2, true);
  g.outputs.push_back(y2);
  for (ir::Node* n : g.nodes())
    if (n->name == "b_mul") g.outputs.push_back(n->outputs[0]);
  // The third chain's Cast output is read by another node: no fusion of that MatMulInteger.
  ir::Value* y3 = QuantProduct(g, Dql(g, x, "c"), 16, 8, "c", 3, false);
  for (ir::Node* n : g.nodes())
    if (n->name == "c_cast")
      g.outputs.push_back(g.AddNode("Relu", {n->outputs[0]}, {"c_relu"}, "c_relu")->outputs[0]);
  g.outputs.push_back(y3);
  auto ops = StepOps(g, true);
  CHECK(Count(ops, "DynamicQuantizeMatMul") == 2);
  CHECK(Count(ops, "MatMulInteger") == 1);
  CHECK(Count(ops, "Add") == 1);  // b's bias Add stays
  CheckBitIdentical(g, {RandomTensor({3, 16}, 5)});
}

TEST_CASE("DynamicQuantizeLinear -> ConvInteger -> Cast -> Mul [-> Add] [-> Relu] fuses, bit-identical") {
  for (int variant = 0; variant < 4; ++variant) {
    const bool bias = variant & 1, relu = variant & 2;
    CAPTURE(variant);
    ir::Graph g("conv");
    ir::Value* x = Input(g, "x");
    Quantized q = Dql(g, x, "x");
    const int64_t M = 6, C = 3;
    ir::Tensor w(ir::DType::Int8, {M, C, 3, 3});
    std::mt19937 rng(3);
    std::uniform_int_distribution<int> d(-127, 127);
    for (int64_t i = 0; i < w.numel(); ++i) w.data<int8_t>()[i] = static_cast<int8_t>(d(rng));
    auto* wv = g.AddInitializer("W", w);
    ir::Tensor wzp(ir::DType::Int8, {});
    wzp.data<int8_t>()[0] = 0;
    auto* wzpv = g.AddInitializer("Wzp", wzp);
    auto* ws = g.AddInitializer("Ws", RandomTensor({M, 1, 1}, 4, 0.001f, 0.01f));
    ir::Node* conv = g.AddNode("ConvInteger", {q.xq, wv, q.xzp, wzpv}, {"acc"}, "conv");
    conv->set_attr_ints("strides", {2, 2});
    conv->set_attr_ints("pads", {1, 0, 1, 2});
    auto* accf = g.AddNode("Cast", {conv->outputs[0]}, {"accf"}, "cast");
    accf->set_attr_int("to", static_cast<int64_t>(ir::DType::Float32));
    auto* scale = g.AddNode("Mul", {q.xs, ws}, {"scale"}, "s")->outputs[0];
    ir::Value* y = g.AddNode("Mul", {accf->outputs[0], scale}, {"y"}, "mul")->outputs[0];
    if (bias) {
      auto* b = g.AddInitializer("b", RandomTensor({M, 1, 1}, 5));
      y = g.AddNode("Add", {y, b}, {"yb"}, "add")->outputs[0];
    }
    if (relu) y = g.AddNode("Relu", {y}, {"yr"}, "relu")->outputs[0];
    g.outputs.push_back(y);
    CHECK(StepOps(g, true) == std::vector<std::string>{"DynamicQuantizeLinear", "ConvIntegerToFloat"});
    CheckBitIdentical(g, {RandomTensor({2, C, 9, 11}, 6, -2.f, 3.f)});
  }
}

TEST_CASE("Conv -> Relu fuses to FusedConv and x * Sigmoid(x) to Silu, bit-identical") {
  ir::Graph g("float");
  ir::Value* x = Input(g, "x");
  auto* w = g.AddInitializer("w", RandomTensor({4, 3, 3, 3}, 1));
  auto* b = g.AddInitializer("b", RandomTensor({4}, 2));
  ir::Node* conv = g.AddNode("Conv", {x, w, b}, {"c"}, "conv");
  conv->set_attr_ints("strides", {2, 2});
  ir::Value* r = g.AddNode("Relu", {conv->outputs[0]}, {"r"}, "relu")->outputs[0];
  r->type.has_type = true;
  r->type.dtype = ir::DType::Float32;
  ir::Value* s = g.AddNode("Sigmoid", {r}, {"s"}, "sig")->outputs[0];
  ir::Value* y = g.AddNode("Mul", {s, r}, {"y"}, "mul")->outputs[0];
  // A depthwise Conv -> Relu and a Sigmoid whose Mul takes another operand (GLU-like): the
  // latter does not fuse.
  auto* wd = g.AddInitializer("wd", RandomTensor({4, 1, 3, 3}, 3));
  ir::Node* dw = g.AddNode("Conv", {y, wd}, {"d"}, "dw");
  dw->set_attr_int("group", 4);
  dw->set_attr_ints("pads", {1, 1, 1, 1});
  ir::Value* rd = g.AddNode("Relu", {dw->outputs[0]}, {"rd"}, "relu2")->outputs[0];
  ir::Value* s2 = g.AddNode("Sigmoid", {rd}, {"s2"}, "sig2")->outputs[0];
  g.outputs.push_back(g.AddNode("Mul", {s2, y}, {"z"}, "glu")->outputs[0]);
  CHECK(StepOps(g, true) ==
        std::vector<std::string>{"FusedConv", "Silu", "FusedConv", "Sigmoid", "Mul"});
  CheckBitIdentical(g, {RandomTensor({2, 3, 13, 9}, 4, -2.f, 2.f)});
}

TEST_CASE("Conv [-> Relu] -> Conv [-> Relu] after a small-K first conv fuses to ConvPair, bit-identical") {
  struct Case {
    ir::Shape x;
    int64_t m;
    bool relus, biases;
  };
  // The first large enough for the second conv's direct (oneDNN) path, channels-last input; the
  // second too small for it (the fallback hands it an NCHW intermediate).
  for (const Case& c : {Case{{2, 1, 121, 80}, 64, true, true}, Case{{1, 1, 61, 40}, 32, false, false}}) {
    CAPTURE(c.x);
    ir::Graph g("subsampling");
    ir::Value* x = Input(g, "x");
    auto* w1 = g.AddInitializer("w1", RandomTensor({c.m, 1, 3, 3}, 1));
    auto* w2 = g.AddInitializer("w2", RandomTensor({c.m, c.m, 3, 3}, 2, -0.1f, 0.1f));
    ir::Value* b1 = c.biases ? g.AddInitializer("b1", RandomTensor({c.m}, 3)) : nullptr;
    ir::Value* b2 = c.biases ? g.AddInitializer("b2", RandomTensor({c.m}, 4)) : nullptr;
    ir::Node* conv1 = g.AddNode("Conv", {x, w1, b1}, {"c1"}, "conv1");
    conv1->set_attr_ints("strides", {2, 2});
    ir::Value* h = conv1->outputs[0];
    if (c.relus) h = g.AddNode("Relu", {h}, {"r1"}, "relu1")->outputs[0];
    ir::Node* conv2 = g.AddNode("Conv", {h, w2, b2}, {"c2"}, "conv2");
    conv2->set_attr_ints("strides", {2, 2});
    conv2->set_attr_ints("pads", {1, 0, 0, 1});
    ir::Value* y = conv2->outputs[0];
    if (c.relus) y = g.AddNode("Relu", {y}, {"r2"}, "relu2")->outputs[0];
    g.outputs.push_back(y);
    CHECK(StepOps(g, true) == std::vector<std::string>{"ConvPair"});
    CheckBitIdentical(g, {RandomTensor(c.x, 5, -2.f, 2.f)});
  }
}

TEST_CASE("MatMul by a constant -> Add of a constant row fuses to MatMulBias, bit-identical") {
  for (int variant = 0; variant < 2; ++variant) {
    CAPTURE(variant);
    ir::Graph g("linear");
    ir::Value* x = Input(g, "x");
    auto* w = g.AddInitializer("w", RandomTensor({64, 200}, 1));
    auto* b = g.AddInitializer("b", RandomTensor({200}, 2));
    ir::Value* h = g.AddNode("MatMul", {x, w}, {"h"}, "mm")->outputs[0];
    // variant 1: bias as the first operand, as torch.onnx.export writes nn.Linear
    ir::Value* y = g.AddNode("Add", variant ? std::vector<ir::Value*>{b, h} : std::vector<ir::Value*>{h, b},
                              {"y"}, "add")->outputs[0];
    // A product by a graph input does not fuse.
    ir::Value* w2 = Input(g, "w2");
    ir::Value* z = g.AddNode("MatMul", {y, w2}, {"z"}, "mm2")->outputs[0];
    ir::Value* bz = g.AddInitializer("bz", RandomTensor({8}, 3));
    g.outputs.push_back(g.AddNode("Add", {z, bz}, {"out"}, "add2")->outputs[0]);
    CHECK(StepOps(g, true) == std::vector<std::string>{"MatMulBias", "MatMul", "Add"});
    CheckBitIdentical(g, {RandomTensor({2, 75, 64}, 4), RandomTensor({200, 8}, 5)});
  }
  // An empty inner dimension: the output is the bias on every row.
  ir::Graph g("empty_k");
  ir::Value* x = Input(g, "x");
  auto* w = g.AddInitializer("w", ir::Tensor(ir::DType::Float32, {0, 5}));
  auto* b = g.AddInitializer("b", RandomTensor({5}, 6));
  ir::Value* h = g.AddNode("MatMul", {x, w}, {"h"}, "mm")->outputs[0];
  g.outputs.push_back(g.AddNode("Add", {h, b}, {"y"}, "add")->outputs[0]);
  CHECK(StepOps(g, true) == std::vector<std::string>{"MatMulBias"});
  CheckBitIdentical(g, {ir::Tensor(ir::DType::Float32, {2, 3, 0})});
}

TEST_CASE("Silu on untyped float16 and float64 values computes what Sigmoid and Mul do") {
  for (ir::DType dt : {ir::DType::Float16, ir::DType::Float64}) {
    ir::Graph g("silu");
    ir::Value* x = g.AddValue("x");  // no static type: the fusion cannot see the dtype
    g.inputs.push_back(x);
    ir::Value* s = g.AddNode("Sigmoid", {x}, {"s"}, "sig")->outputs[0];
    g.outputs.push_back(g.AddNode("Mul", {x, s}, {"y"}, "mul")->outputs[0]);
    CHECK(StepOps(g, true) == std::vector<std::string>{"Silu"});
    ir::Tensor xf = RandomTensor({3, 37}, 9, -6.f, 6.f);
    ir::Tensor in(dt, {3, 37});
    for (int64_t i = 0; i < xf.numel(); ++i) {
      if (dt == ir::DType::Float64) in.data<double>()[i] = xf.data<float>()[i];
      else in.data<uint16_t>()[i] = ir::FloatToHalf(xf.data<float>()[i]);
    }
    CheckBitIdentical(g, {in});
  }
}

TEST_CASE("fused and unfused plans agree bit for bit on the benchmark models") {
  namespace fs = std::filesystem;
  fs::path dir = fs::path(ASRC_SOURCE_DIR) / "bench/models";
  if (!test::HaveReference(fs::exists(dir), dir.string() + " (/usr/bin/python3 bench/make_models.py)")) return;
  int checked = 0;
  for (const char* m : {"conformer_4m_int8", "joiner_step_int8", "decoder_step_int8", "conformer_4m",
                        "joiner_step"}) {
    fs::path p = dir / (std::string(m) + ".onnx");
    if (!test::HaveReference(fs::exists(p), p.string())) continue;
    INFO("model: " << p.string());
    auto gf = onnx_io::LoadGraphFile(p.string());
    REQUIRE_MESSAGE(gf.ok(), gf.status().message());
    auto ops = StepOps(*gf->graph, true);
    CHECK(Count(ops, "MatMulInteger") == 0);
    CHECK(Count(ops, "ConvInteger") == 0);
    auto inputs = runtime::MakeInputs(*gf->graph, {{"T", 100}}, 1, 42);
    REQUIRE_MESSAGE(inputs.ok(), inputs.status().message());
    CheckBitIdentical(*gf->graph, *inputs);
    ++checked;
  }
  test::RequireChecks(checked, "the benchmark models in bench/models");
}

namespace {
// The planned step ops of `g` with `taps` tapped, and what the observer saw in one run.
std::vector<std::string> TappedRun(const ir::Graph& g, const std::vector<std::string>& taps,
                                   const std::vector<ir::Tensor>& inputs,
                                   std::map<std::string, ir::Tensor>* seen,
                                   std::vector<ir::Tensor>* outputs) {
  runtime::SessionOptions o;
  o.taps = taps;
  o.observer = [seen](const std::string& name, const ir::Tensor& t) {
    CHECK(seen->count(name) == 0);
    (*seen)[name] = t;
  };
  auto s = runtime::SessionImpl::Create(g, 17, o, {});
  REQUIRE_MESSAGE(s.ok(), s.status().message());
  std::vector<const ir::Tensor*> feeds;
  for (const auto& t : inputs) feeds.push_back(&t);
  Status st = (*s)->Run(feeds, outputs);
  REQUIRE_MESSAGE(st.ok(), st.message());
  return (*s)->step_ops();
}

// Runs g unfused with `names` as extra graph outputs: the values a tap must show.
std::map<std::string, ir::Tensor> UnfusedValues(ir::Graph& g, const std::vector<std::string>& names,
                                                const std::vector<ir::Tensor>& inputs) {
  const size_t n_out = g.outputs.size();
  for (const auto& n : names) g.outputs.push_back(g.FindValue(n));
  runtime::SessionOptions o;
  o.fuse = false;
  auto s = runtime::Session::Create(g, 17, o);
  REQUIRE_MESSAGE(s.ok(), s.status().message());
  std::vector<ir::Tensor> out;
  Status st = (*s)->Run(inputs, &out);
  REQUIRE_MESSAGE(st.ok(), st.message());
  g.outputs.resize(n_out);
  std::map<std::string, ir::Tensor> m;
  for (size_t i = 0; i < names.size(); ++i) m[names[i]] = out[n_out + i];
  return m;
}
}  // namespace

TEST_CASE("a tapped value is not fused away; the tap shows the unfused numbers") {
  ir::Graph g("taps");
  ir::Value* x = Input(g, "x");
  auto* w = g.AddInitializer("w", RandomTensor({64, 40}, 1));
  auto* b = g.AddInitializer("b", RandomTensor({40}, 2));
  ir::Value* h = g.AddNode("MatMul", {x, w}, {"h"}, "mm")->outputs[0];
  ir::Value* y = g.AddNode("Add", {h, b}, {"y"}, "add")->outputs[0];
  Quantized q = Dql(g, y, "q");
  g.outputs.push_back(QuantProduct(g, q, 40, 24, "q", 3, true));
  const std::vector<ir::Tensor> in = {RandomTensor({3, 5, 64}, 4)};
  std::vector<ir::Tensor> plain_out;
  std::map<std::string, ir::Tensor> none;
  CHECK(TappedRun(g, {}, in, &none, &plain_out) ==
        std::vector<std::string>{"MatMulBias", "DynamicQuantizeMatMul"});

  struct Case {
    std::vector<std::string> taps, ops;
  };
  const std::vector<Case> cases = {
      // The fused chains' own outputs: fusion unchanged.
      {{"y", "q_yb"}, {"MatMulBias", "DynamicQuantizeMatMul"}},
      // Interior values: the chain around them stays unfused (the rest still fuses).
      {{"h"}, {"MatMul", "Add", "DynamicQuantizeMatMul"}},
      {{"q_xs"}, {"MatMulBias", "DynamicQuantizeLinear", "MatMulIntegerToFloat"}},
      {{"q_accf", "w", "x"}, {"MatMulBias", "DynamicQuantizeLinear", "MatMulInteger", "Cast", "Mul", "Mul", "Add"}},
  };
  for (const Case& c : cases) {
    CAPTURE(c.taps.size());
    CAPTURE(c.taps[0]);
    std::map<std::string, ir::Tensor> seen;
    std::vector<ir::Tensor> out;
    auto ops = TappedRun(g, c.taps, in, &seen, &out);
    CHECK(ops == c.ops);
    REQUIRE(out.size() == 1);
    CHECK(SameBytes(out[0], plain_out[0]));
    auto want = UnfusedValues(g, c.taps, in);
    for (const auto& name : c.taps) {
      INFO("tap " << name);
      REQUIRE(seen.count(name));
      CHECK(SameBytes(seen[name], want[name]));
    }
  }
}

TEST_CASE("PyTorch's exact GELU (Div -> Erf -> Add -> Mul(x, .) -> Mul by 0.5) fuses to GeluErf, bit-identical") {
  ir::Graph g("gelu");
  ir::Value* x = Input(g, "x");
  // The scalars as PyTorch writes them: Constant nodes, except the divisor as an initializer.
  auto constant = [&](const std::string& name, float v) {
    ir::Node* c = g.AddNode("Constant", {}, {name}, name + "_node");
    ir::Attribute a;
    a.name = "value";
    a.kind = ir::Attribute::Kind::Tensor;
    a.t = ir::Tensor::FromVector(ir::DType::Float32, {}, std::vector<float>{v});
    c->attributes.push_back(a);
    return c->outputs[0];
  };
  auto* d = g.AddInitializer("sqrt2", ir::Tensor::FromVector(ir::DType::Float32, {}, std::vector<float>{1.41421354f}));
  ir::Value* one = constant("one", 1.f);
  ir::Value* half = constant("half", 0.5f);
  ir::Value* v = g.AddNode("Div", {x, d}, {"v"}, "div")->outputs[0];
  ir::Value* e = g.AddNode("Erf", {v}, {"e"}, "erf")->outputs[0];
  ir::Value* a = g.AddNode("Add", {e, one}, {"a"}, "add")->outputs[0];
  ir::Value* m = g.AddNode("Mul", {x, a}, {"m"}, "mul")->outputs[0];
  ir::Value* y = g.AddNode("Mul", {m, half}, {"y"}, "mul_half")->outputs[0];
  // A second GELU-like chain whose Erf is also a graph output: not fused.
  ir::Value* v2 = g.AddNode("Div", {y, d}, {"v2"}, "div2")->outputs[0];
  ir::Value* e2 = g.AddNode("Erf", {v2}, {"e2"}, "erf2")->outputs[0];
  ir::Value* a2 = g.AddNode("Add", {e2, one}, {"a2"}, "add2")->outputs[0];
  ir::Value* m2 = g.AddNode("Mul", {y, a2}, {"m2"}, "mul2")->outputs[0];
  g.outputs = {g.AddNode("Mul", {m2, half}, {"z"}, "mul_half2")->outputs[0], e2};
  const std::vector<std::string> ops = StepOps(g, true);
  CHECK(Count(ops, "GeluErf") == 1);
  CHECK(Count(ops, "Erf") == 1);
  CheckBitIdentical(g, {RandomTensor({3, 1000}, 9, -5.f, 5.f)});
}
