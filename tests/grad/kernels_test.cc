// The ai.asrc backward helper kernels on their own: the float32 GEMM path of the convolution
// gradients against the float64 plain loop, and the errors bad inputs get.
#include "grad_util.h"

using namespace asrc;
using asrc::testing::Ints;
using asrc::testing::OneNode;
using asrc::testing::Rand;

namespace {

ir::Tensor ToF64(const ir::Tensor& t) {
  ir::Tensor d(ir::DType::Float64, t.shape());
  for (int64_t i = 0; i < t.numel(); ++i) d.data<double>()[i] = t.data<float>()[i];
  return d;
}

Result<ir::Tensor> RunAsrcOp(const std::string& op, const std::vector<ir::Tensor>& in,
                             const std::function<void(ir::Node*)>& attrs = nullptr) {
  OneNode n(op, in, 1);
  n.node->domain = "ai.asrc";
  if (attrs) attrs(n.node);
  ASRC_ASSIGN_OR_RETURN(auto out, n.Run());
  return out[0];
}

}  // namespace

TEST_CASE("ConvGradData/ConvGradWeight: float32 GEMM path equals the float64 tap loop") {
  struct Case { ir::Shape x, w; int64_t group; std::vector<int64_t> strides, dil, pads; };
  std::vector<Case> cases = {{{2, 3, 9}, {4, 3, 3}, 1, {}, {}, {1, 1}},
                             {{2, 6, 17}, {6, 1, 5}, 6, {}, {}, {4, 0}},
                             {{1, 4, 13}, {6, 2, 3}, 2, {2}, {2}, {2, 1}},
                             {{2, 2, 9, 8}, {3, 2, 3, 3}, 1, {2, 2}, {}, {1, 1, 0, 1}},
                             {{1, 4, 6, 5}, {4, 2, 2, 3}, 2, {1, 2}, {2, 1}, {0, 1, 1, 0}}};
  for (const Case& k : cases) {
    CAPTURE(ir::ShapeStr(k.x));
    CAPTURE(ir::ShapeStr(k.w));
    auto attrs = [&](ir::Node* n) {
      n->set_attr_int("group", k.group);
      if (!k.strides.empty()) n->set_attr_ints("strides", k.strides);
      if (!k.dil.empty()) n->set_attr_ints("dilations", k.dil);
      n->set_attr_ints("pads", k.pads);
    };
    ir::Tensor x = Rand(k.x, 1), w = Rand(k.w, 2);
    OneNode fwd("Conv", {x, w}, 1);
    attrs(fwd.node);
    auto y = fwd.Run();
    REQUIRE(y.ok());
    ir::Tensor g = Rand((*y)[0].shape(), 3);
    for (bool data : {true, false}) {
      const char* op = data ? "ConvGradData" : "ConvGradWeight";
      CAPTURE(op);
      ir::Tensor other = data ? w : x, shape = Ints(data ? k.x : k.w);
      auto f32 = RunAsrcOp(op, {g, other, shape}, attrs);
      auto f64 = RunAsrcOp(op, {ToF64(g), ToF64(other), shape}, attrs);
      REQUIRE_MESSAGE(f32.ok(), f32.status().message());
      REQUIRE_MESSAGE(f64.ok(), f64.status().message());
      REQUIRE(f32->shape() == f64->shape());
      double max_ref = 0, max_diff = 0;
      for (int64_t i = 0; i < f32->numel(); ++i) {
        max_ref = std::max(max_ref, std::abs(f64->data<double>()[i]));
        max_diff = std::max(max_diff, std::abs(f64->data<double>()[i] - f32->data<float>()[i]));
      }
      CHECK(max_ref > 0);
      CHECK(max_diff <= 1e-5 * max_ref);
    }
  }
}

TEST_CASE("helper kernels: results and errors on bad input") {
  // ReduceSumToShape: [2,3,4] -> [3,1] sums axes 0 and 2.
  ir::Tensor x = Rand({2, 3, 4}, 1);
  auto r = RunAsrcOp("ReduceSumToShape", {x, Ints({3, 1})});
  REQUIRE(r.ok());
  REQUIRE(r->shape() == ir::Shape{3, 1});
  for (int64_t c = 0; c < 3; ++c) {
    double s = 0;
    for (int64_t a = 0; a < 2; ++a)
      for (int64_t b = 0; b < 4; ++b) s += x.data<float>()[(a * 3 + c) * 4 + b];
    CHECK(r->data<float>()[c] == doctest::Approx(s).epsilon(1e-6));
  }
  auto bad = RunAsrcOp("ReduceSumToShape", {x, Ints({5})});
  REQUIRE(!bad.ok());
  CHECK(bad.status().message().find("is not a broadcast of [5]") != std::string::npos);

  // GatherGrad: repeated indices accumulate; out-of-range ones are an error.
  ir::Tensor g = Rand({3, 2}, 2);
  auto gg = RunAsrcOp("GatherGrad", {g, Ints({1, 1, -1}), Ints({4, 2})});
  REQUIRE(gg.ok());
  CHECK(gg->data<float>()[2] == doctest::Approx(g.data<float>()[0] + g.data<float>()[2]));
  CHECK(gg->data<float>()[6] == doctest::Approx(g.data<float>()[4]));
  CHECK(gg->data<float>()[0] == 0.f);
  auto oob = RunAsrcOp("GatherGrad", {g, Ints({1, 4, 0}), Ints({4, 2})});
  REQUIRE(!oob.ok());
  CHECK(oob.status().message().find("index 4 out of range") != std::string::npos);

  // SliceGrad: a gradient that is not the slice's shape is an error.
  auto sg = RunAsrcOp("SliceGrad", {Rand({2, 2}, 3), Ints({4, 4}), Ints({0}), Ints({3})});
  REQUIRE(!sg.ok());
  CHECK(sg.status().message().find("is not the slice's [3,4]") != std::string::npos);

  // LSTMGrad: weights that do not match hidden_size.
  OneNode l("LSTMGrad", {Rand({2, 1, 3}, 1), Rand({1, 8, 3}, 2), Rand({1, 8, 2}, 3)}, 6);
  l.node->domain = "ai.asrc";
  l.node->set_attr_int("hidden_size", 3);
  auto lr = l.Run();
  REQUIRE(!lr.ok());
  CHECK(lr.status().message().find("do not match hidden_size 3") != std::string::npos);
}

TEST_CASE("Sum: same-shape float32 inputs in one blocked pass, the bits of a chain of Adds; broadcasting still works") {
  std::vector<ir::Tensor> in;
  for (int k = 0; k < 5; ++k) in.push_back(Rand({3, 5000}, 10 + k));  // 15000: three 4096-blocks and a rest
  OneNode sum("Sum", in, 1);
  auto r = sum.Run();
  REQUIRE_MESSAGE(r.ok(), r.status().message());
  const ir::Tensor& s = (*r)[0];
  REQUIRE(s.shape() == in[0].shape());
  int64_t same = 0;
  for (int64_t i = 0; i < s.numel(); ++i) {
    float chain = in[0].data<float>()[i] + in[1].data<float>()[i];
    for (int k = 2; k < 5; ++k) chain += in[k].data<float>()[i];
    same += s.data<float>()[i] == chain;
  }
  CHECK(same == s.numel());
  OneNode mixed("Sum", {in[0], Rand({5000}, 20), in[1]}, 1);  // the general path
  auto m = mixed.Run();
  REQUIRE(m.ok());
  ir::Tensor row = Rand({5000}, 20);
  CHECK((*m)[0].data<float>()[5000 + 7] == (in[0].data<float>()[5000 + 7] + row.data<float>()[7]) + in[1].data<float>()[5000 + 7]);
}
