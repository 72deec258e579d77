// Kernel families: each fast path against a plain loop written here (or the kernel's own
// reference loop), on seeded random data. ONNX conformance data checks the same kernels against
// outside references (tests/conformance).
#include <doctest/doctest.h>

#include <atomic>
#include <functional>
#include <chrono>
#include <thread>

#include "runtime/gemm.h"
#include "runtime/kernels/nn.h"
#include "runtime/kernels/util.h"
#include "runtime/thread_pool.h"
#include "test_util.h"

using namespace asrc;
using namespace asrc::testing;  // test_util.h: tensors, one-node graphs, comparisons

namespace {
// Naive numpy-style broadcast index of `in` for flat output index o.
int64_t BIndex(const ir::Shape& in, const ir::Shape& out, int64_t o) {
  int64_t idx = 0, mul = 1;
  for (int d = static_cast<int>(out.size()) - 1; d >= 0; --d) {
    int64_t c = o % out[d];
    o /= out[d];
    int id = d - static_cast<int>(out.size() - in.size());
    if (id >= 0) {
      if (in[id] != 1) idx += c * mul;
      mul *= in[id];
    }
  }
  return idx;
}
}  // namespace

TEST_CASE("binary ops broadcast like numpy") {
  struct Case { ir::Shape a, b, out; };
  std::vector<Case> cases = {{{2, 3, 4}, {4}, {2, 3, 4}}, {{2, 3, 4}, {3, 1}, {2, 3, 4}},
                             {{1, 3, 1}, {2, 1, 5}, {2, 3, 5}}, {{}, {2, 2}, {2, 2}},
                             {{5}, {}, {5}}, {{2, 1, 4}, {2, 3, 4}, {2, 3, 4}}};
  const char* ops[] = {"Add", "Sub", "Mul", "Div"};
  for (const auto& c : cases)
    for (const char* op : ops) {
      ir::Tensor a = RandomTensor(c.a, 1), b = RandomTensor(c.b, 2, 0.5f, 2.f);
      OneNode n(op, {a, b}, 1);
      auto out = n.Run();
      REQUIRE(out.ok());
      const ir::Tensor& y = (*out)[0];
      REQUIRE(y.shape() == c.out);
      for (int64_t i = 0; i < y.numel(); ++i) {
        float x1 = a.data<float>()[BIndex(c.a, c.out, i)], x2 = b.data<float>()[BIndex(c.b, c.out, i)];
        float want = std::string(op) == "Add" ? x1 + x2 : std::string(op) == "Sub" ? x1 - x2
                   : std::string(op) == "Mul" ? x1 * x2 : x1 / x2;
        CHECK(y.data<float>()[i] == doctest::Approx(want).epsilon(1e-6));
      }
    }
}

TEST_CASE("integer and comparison ops") {
  ir::Tensor a = I64({7, -7, 5, 0}), b = I64({3, 3, -2, 4});
  OneNode mod("Mod", {a, b}, 1);
  auto m = mod.Run();
  REQUIRE(m.ok());
  std::vector<int64_t> want = {1, 2, -1, 0};  // Python-style sign of the divisor
  for (int i = 0; i < 4; ++i) CHECK((*m)[0].data<int64_t>()[i] == want[i]);
  OneNode div("Div", {a, b}, 1);
  auto d = div.Run();
  REQUIRE(d.ok());
  CHECK((*d)[0].data<int64_t>()[1] == -2);  // truncation like C/ONNX Runtime
  OneNode gt("Greater", {a, b}, 1);
  auto g = gt.Run();
  REQUIRE(g.ok());
  CHECK((*g)[0].dtype() == ir::DType::Bool);
  CHECK((*g)[0].data<bool>()[0]);
  CHECK(!(*g)[0].data<bool>()[1]);
}

TEST_CASE("Where broadcasts three inputs") {
  ir::Tensor c(ir::DType::Bool, {2, 1});
  c.data<bool>()[0] = true;
  ir::Tensor x = RandomTensor({2, 3}, 3), y = RandomTensor({3}, 4);
  OneNode n("Where", {c, x, y}, 1);
  auto out = n.Run();
  REQUIRE(out.ok());
  for (int i = 0; i < 3; ++i) {
    CHECK((*out)[0].data<float>()[i] == x.data<float>()[i]);
    CHECK((*out)[0].data<float>()[3 + i] == y.data<float>()[i]);
  }
}

TEST_CASE("Cast float16 round trip and float to int saturation-free values") {
  ir::Tensor x = ir::Tensor::FromVector<float>(ir::DType::Float32, {4}, {0.5f, -2.25f, 1024.f, 3.f});
  OneNode to16("Cast", {x}, 1);
  to16.node->set_attr_int("to", static_cast<int64_t>(ir::DType::Float16));
  auto h = to16.Run();
  REQUIRE(h.ok());
  CHECK((*h)[0].dtype() == ir::DType::Float16);
  OneNode back("Cast", {(*h)[0]}, 1);
  back.node->set_attr_int("to", static_cast<int64_t>(ir::DType::Float32));
  auto f = back.Run();
  REQUIRE(f.ok());
  CHECK(MaxAbsDiff((*f)[0], x) == 0.f);
  OneNode toi("Cast", {x}, 1);
  toi.node->set_attr_int("to", static_cast<int64_t>(ir::DType::Int64));
  auto i = toi.Run();
  REQUIRE(i.ok());
  CHECK((*i)[0].data<int64_t>()[1] == -2);
}

TEST_CASE("MatMul batched with broadcasting matches a plain loop, threads 1 and 2") {
  struct Case { ir::Shape a, b; };
  std::vector<Case> cases = {{{3, 5}, {5, 4}},       {{2, 3, 7, 5}, {5, 6}}, {{2, 1, 4, 5}, {3, 5, 2}},
                             {{5}, {2, 5, 3}},        {{2, 4, 5}, {5}},       {{64, 96}, {96, 80}},
                             {{4, 33, 17}, {4, 17, 65}}};
  for (const auto& c : cases) {
    ir::Tensor a = RandomTensor(c.a, 5), b = RandomTensor(c.b, 6);
    OneNode n("MatMul", {a, b}, 1);
    auto o1 = n.Run(17, 1);
    auto o2 = n.Run(17, 2);
    REQUIRE(o1.ok());
    REQUIRE(o2.ok());
    CHECK(MaxAbsDiff((*o1)[0], (*o2)[0]) < 1e-5f);
    // Reference: promote vectors, broadcast batches.
    ir::Shape as = c.a, bs = c.b;
    if (as.size() == 1) as.insert(as.begin(), 1);
    if (bs.size() == 1) bs.push_back(1);
    int64_t M = as[as.size() - 2], K = as.back(), N = bs.back();
    ir::Shape ab(as.begin(), as.end() - 2), bb(bs.begin(), bs.end() - 2);
    size_t r = std::max(ab.size(), bb.size());
    ir::Shape batch(r);
    for (size_t i = 0; i < r; ++i) {
      int64_t x = i < r - ab.size() ? 1 : ab[i - (r - ab.size())];
      int64_t y = i < r - bb.size() ? 1 : bb[i - (r - bb.size())];
      batch[i] = std::max(x, y);
    }
    int64_t nb = ir::ShapeNumel(batch);
    const ir::Tensor& y = (*o1)[0];
    REQUIRE(y.numel() == nb * M * N);
    for (int64_t bi = 0; bi < nb; ++bi) {
      int64_t ao = BIndex(ab, batch, bi), bo = BIndex(bb, batch, bi);
      for (int64_t m = 0; m < M; ++m)
        for (int64_t nn = 0; nn < N; ++nn) {
          double acc = 0;
          for (int64_t k = 0; k < K; ++k)
            acc += a.data<float>()[ao * M * K + m * K + k] * b.data<float>()[bo * K * N + k * N + nn];
          CHECK(y.data<float>()[(bi * M + m) * N + nn] == doctest::Approx(acc).epsilon(1e-4));
        }
    }
  }
}

TEST_CASE("Gemm with transposes, alpha, beta and broadcast C") {
  ir::Tensor a = RandomTensor({6, 4}, 7), b = RandomTensor({5, 6}, 8), c = RandomTensor({5}, 9);
  OneNode n("Gemm", {a, b, c}, 1);
  n.node->set_attr_int("transA", 1);
  n.node->set_attr_int("transB", 1);
  n.node->set_attr_float("alpha", 0.5f);
  n.node->set_attr_float("beta", 2.f);
  auto o = n.Run();
  REQUIRE(o.ok());
  for (int m = 0; m < 4; ++m)
    for (int j = 0; j < 5; ++j) {
      double acc = 0;
      for (int k = 0; k < 6; ++k) acc += a.data<float>()[k * 4 + m] * b.data<float>()[j * 6 + k];
      CHECK((*o)[0].data<float>()[m * 5 + j] == doctest::Approx(0.5 * acc + 2 * c.data<float>()[j]).epsilon(1e-5));
    }
}

TEST_CASE("Conv fast paths (im2col, small-K, pointwise, depthwise, direct) match the reference loop") {
  struct Case { ir::Shape x, w; int64_t group; std::vector<int64_t> strides, dil, pads; std::string auto_pad; };
  std::vector<Case> cases = {
      {{2, 4, 9, 11}, {6, 4, 3, 3}, 1, {2, 2}, {}, {1, 1, 1, 1}, "NOTSET"},
      {{1, 1, 20, 16}, {8, 1, 3, 3}, 1, {2, 2}, {}, {}, "NOTSET"},
      {{1, 6, 10, 10}, {6, 2, 3, 3}, 3, {1, 1}, {2, 2}, {2, 1, 2, 1}, "NOTSET"},
      {{1, 8, 30}, {8, 1, 7}, 8, {1}, {}, {3, 3}, "NOTSET"},        // depthwise 1-D
      {{2, 8, 30}, {16, 8, 1}, 1, {}, {}, {}, "NOTSET"},           // pointwise
      {{1, 5, 17}, {4, 5, 4}, 1, {3}, {2}, {}, "SAME_UPPER"},
      {{1, 5, 17}, {4, 5, 4}, 1, {2}, {}, {}, "SAME_LOWER"},
      {{1, 4, 8, 8}, {4, 1, 3, 3}, 4, {2, 1}, {}, {}, "VALID"},    // depthwise 2-D
      {{1, 3, 7, 13}, {5, 3, 2, 5}, 1, {1, 3}, {1, 2}, {0, 9, 1, 11}, "NOTSET"},  // pads > W
      // Large enough for the direct (oneDNN) path where the build has it: stride, dilation,
      // asymmetric pads.
      {{1, 16, 80, 41}, {24, 16, 3, 3}, 1, {1, 2}, {2, 1}, {1, 0, 2, 3}, "NOTSET"},
      {{2, 32, 61, 59}, {32, 32, 3, 3}, 1, {2, 2}, {}, {}, "NOTSET"},
      {{1, 2, 5, 4, 4}, {3, 2, 2, 2, 2}, 1, {}, {}, {}, "NOTSET"}, // 3-D (reference path)
      // A first subsampling layer (one input channel: the small-K path) and the direct path
      // split into output-row bands at 2 threads, padded at the top and the bottom.
      {{1, 1, 299, 80}, {64, 1, 3, 3}, 1, {2, 2}, {}, {}, "NOTSET"},
      {{1, 24, 75, 39}, {32, 24, 3, 3}, 1, {2, 2}, {}, {1, 1, 1, 1}, "NOTSET"},
      // Long outputs: im2col in output tiles, the tiles split over 2 threads. wav2vec2's
      // feature extractor (1-D, small K then K = 48), its grouped positional convolution, and
      // a grouped 2-D one whose rows are longer than a tile.
      {{1, 1, 4000}, {16, 1, 10}, 1, {5}, {}, {}, "NOTSET"},
      {{2, 16, 2001}, {16, 16, 3}, 1, {2}, {}, {}, "NOTSET"},
      {{1, 48, 149}, {48, 12, 16}, 4, {1}, {}, {8, 8}, "NOTSET"},
      {{1, 4, 5, 1100}, {6, 2, 3, 3}, 2, {1, 1}, {}, {1, 1, 1, 1}, "NOTSET"},
  };
  int seed = 10;
  for (const auto& c : cases) {
    ir::Tensor x = RandomTensor(c.x, seed++), w = RandomTensor(c.w, seed++), b = RandomTensor({c.w[0]}, seed++);
    runtime::ConvGeometry g;
    g.group = c.group;
    g.strides = c.strides;
    g.dilations = c.dil;
    g.pads = c.pads;
    g.auto_pad = c.auto_pad;
    REQUIRE(g.Resolve(c.x, c.w).ok());
    ir::Shape out{g.N, g.M};
    out.insert(out.end(), g.out.begin(), g.out.end());
    ir::Tensor ref(ir::DType::Float32, out);
    runtime::ConvReference(g, x.data<float>(), w.data<float>(), b.data<float>(), ref.data<float>());
    ir::Tensor ref_relu = ref.Clone();
    for (int64_t i = 0; i < ref_relu.numel(); ++i) ref_relu.data<float>()[i] = std::max(0.f, ref_relu.data<float>()[i]);
    // Threads 1 and 2; weights as an initializer (packed once) and as a graph input; Conv and
    // FusedConv(Relu); each session run twice (the second run reuses what the first planned).
    for (int threads : {1, 2})
      for (bool w_const : {true, false})
        for (bool relu : {false, true}) {
          CAPTURE(c.x);
          CAPTURE(threads);
          CAPTURE(w_const);
          CAPTURE(relu);
          OneNode n(relu ? "FusedConv" : "Conv", {x, w, b}, 1, {false, w_const, true});
          if (relu) {
            n.node->domain = "com.microsoft";
            n.node->set_attr_string("activation", "Relu");
          }
          n.node->set_attr_int("group", c.group);
          if (!c.strides.empty()) n.node->set_attr_ints("strides", c.strides);
          if (!c.dil.empty()) n.node->set_attr_ints("dilations", c.dil);
          if (!c.pads.empty()) n.node->set_attr_ints("pads", c.pads);
          n.node->set_attr_string("auto_pad", c.auto_pad);
          auto s = runtime::Session::Create(n.g, 17, {threads});
          REQUIRE(s.ok());
          for (int run = 0; run < 2; ++run) {
            std::vector<ir::Tensor> o;
            REQUIRE((*s)->Run(n.feeds, &o).ok());
            CHECK(MaxAbsDiff(o[0], relu ? ref_relu : ref) < 1e-4f);
          }
        }
  }
}

TEST_CASE("Conv's direct path across many input lengths in one session (its plans start over)") {
  ir::Tensor w = RandomTensor({32, 24, 3, 3}, 31), b = RandomTensor({32}, 32);
  ir::Graph g("conv");
  ir::Value* x = g.AddValue("x");
  g.inputs.push_back(x);
  ir::Node* conv = g.AddNode("Conv", {x, g.AddInitializer("w", w), g.AddInitializer("b", b)}, {"y"}, "conv");
  conv->set_attr_ints("strides", {2, 2});
  conv->set_attr_ints("pads", {1, 1, 1, 1});
  g.outputs.push_back(conv->outputs[0]);
  for (int threads : {1, 2}) {
    auto s = runtime::Session::Create(g, 17, {threads});
    REQUIRE(s.ok());
    for (int64_t h = 60; h < 60 + 2 * 11; h += 2) {  // 11 lengths: more than the plans kept
      CAPTURE(h);
      ir::Tensor xin = RandomTensor({1, 24, h, 39}, static_cast<int>(h));
      std::vector<ir::Tensor> o;
      REQUIRE((*s)->Run({xin}, &o).ok());
      runtime::ConvGeometry geo;
      geo.strides = {2, 2};
      geo.pads = {1, 1, 1, 1};
      REQUIRE(geo.Resolve(xin.shape(), w.shape()).ok());
      ir::Tensor ref(ir::DType::Float32, {1, 32, geo.out[0], geo.out[1]});
      runtime::ConvReference(geo, xin.data<float>(), w.data<float>(), b.data<float>(), ref.data<float>());
      CHECK(MaxAbsDiff(o[0], ref) < 1e-4f);
    }
  }
}

TEST_CASE("Softmax: opset 13 axis vs opset 11 flattening") {
  ir::Tensor x = RandomTensor({2, 3, 4}, 20, -3, 3);
  OneNode n13("Softmax", {x}, 1);
  n13.node->set_attr_int("axis", 1);
  auto a = n13.Run(13);
  REQUIRE(a.ok());
  for (int i = 0; i < 2; ++i)
    for (int k = 0; k < 4; ++k) {
      double s = 0;
      for (int j = 0; j < 3; ++j) s += std::exp(x.data<float>()[(i * 3 + j) * 4 + k]);
      for (int j = 0; j < 3; ++j)
        CHECK((*a)[0].data<float>()[(i * 3 + j) * 4 + k] == doctest::Approx(std::exp(x.data<float>()[(i * 3 + j) * 4 + k]) / s).epsilon(1e-5));
    }
  OneNode n11("LogSoftmax", {x}, 1);
  n11.node->set_attr_int("axis", 1);
  auto b = n11.Run(11);
  REQUIRE(b.ok());
  for (int i = 0; i < 2; ++i) {
    double s = 0;
    for (int j = 0; j < 12; ++j) s += std::exp(x.data<float>()[i * 12 + j]);
    for (int j = 0; j < 12; ++j)
      CHECK((*b)[0].data<float>()[i * 12 + j] == doctest::Approx(x.data<float>()[i * 12 + j] - std::log(s)).epsilon(1e-5));
  }
}

TEST_CASE("LayerNormalization over the last axes") {
  ir::Tensor x = RandomTensor({3, 2, 5}, 30), s = RandomTensor({2, 5}, 31), b = RandomTensor({2, 5}, 32);
  OneNode n("LayerNormalization", {x, s, b}, 1);
  n.node->set_attr_int("axis", 1);
  auto o = n.Run();
  REQUIRE(o.ok());
  for (int i = 0; i < 3; ++i) {
    double mean = 0, var = 0;
    for (int j = 0; j < 10; ++j) mean += x.data<float>()[i * 10 + j];
    mean /= 10;
    for (int j = 0; j < 10; ++j) var += std::pow(x.data<float>()[i * 10 + j] - mean, 2);
    var /= 10;
    for (int j = 0; j < 10; ++j) {
      double want = (x.data<float>()[i * 10 + j] - mean) / std::sqrt(var + 1e-5) * s.data<float>()[j] + b.data<float>()[j];
      CHECK((*o)[0].data<float>()[i * 10 + j] == doctest::Approx(want).epsilon(1e-4));
    }
  }
}

TEST_CASE("reductions: axes attribute vs input, keepdims, noop_with_empty_axes") {
  ir::Tensor x = RandomTensor({2, 3, 4}, 40);
  OneNode mean("ReduceMean", {x}, 1);
  mean.node->set_attr_ints("axes", {-1});
  mean.node->set_attr_int("keepdims", 0);
  auto a = mean.Run(13);
  REQUIRE(a.ok());
  CHECK((*a)[0].shape() == ir::Shape{2, 3});
  double s = 0;
  for (int k = 0; k < 4; ++k) s += x.data<float>()[4 + k];
  CHECK((*a)[0].data<float>()[1] == doctest::Approx(s / 4).epsilon(1e-6));
  OneNode sum("ReduceSum", {x, I64({0, 2})}, 1);
  auto b = sum.Run(13);
  REQUIRE(b.ok());
  CHECK((*b)[0].shape() == ir::Shape{1, 3, 1});
  OneNode noop("ReduceSum", {x, ir::Tensor(ir::DType::Int64, {0})}, 1);
  noop.node->set_attr_int("noop_with_empty_axes", 1);
  auto c = noop.Run(13);
  REQUIRE(c.ok());
  CHECK(MaxAbsDiff((*c)[0], x) == 0.f);
  OneNode mx("ReduceMax", {x}, 1);
  auto d = mx.Run(13);  // no axes: all
  REQUIRE(d.ok());
  CHECK((*d)[0].shape() == ir::Shape{1, 1, 1});
  CHECK((*d)[0].data<float>()[0] == *std::max_element(x.data<float>(), x.data<float>() + x.numel()));
}

TEST_CASE("shape ops: Slice, Gather, Concat, Transpose, Split, Unsqueeze, Squeeze, Expand, Tile, Pad") {
  ir::Tensor x = RandomTensor({3, 4, 5}, 50);
  auto at = [&](int i, int j, int k) { return x.data<float>()[(i * 4 + j) * 5 + k]; };
  {
    OneNode n("Slice", {x, I64({1, -1}), I64({3, 0}), I64({0, 2}), I64({1, -2})}, 1);
    auto o = n.Run();
    REQUIRE(o.ok());
    REQUIRE((*o)[0].shape() == ir::Shape{2, 4, 2});  // k = 4, 2
    CHECK((*o)[0].data<float>()[1] == at(1, 0, 2));
  }
  {
    OneNode n("Gather", {x, I64({2, 0, -1}, {3})}, 1);
    n.node->set_attr_int("axis", 1);
    auto o = n.Run();
    REQUIRE(o.ok());
    REQUIRE((*o)[0].shape() == ir::Shape{3, 3, 5});
    CHECK((*o)[0].data<float>()[(1 * 3 + 2) * 5 + 4] == at(1, 3, 4));
  }
  {
    OneNode n("Transpose", {x}, 1);
    n.node->set_attr_ints("perm", {2, 0, 1});
    auto o = n.Run();
    REQUIRE(o.ok());
    REQUIRE((*o)[0].shape() == ir::Shape{5, 3, 4});
    CHECK((*o)[0].data<float>()[(4 * 3 + 1) * 4 + 2] == at(1, 2, 4));
    OneNode t2("Transpose", {x}, 1);
    t2.node->set_attr_ints("perm", {0, 2, 1});
    auto p = t2.Run();
    REQUIRE(p.ok());
    CHECK((*p)[0].data<float>()[(2 * 5 + 3) * 4 + 1] == at(2, 1, 3));
  }
  {
    // Large enough to split its rows over 2 threads (attention's (2, 0, 3, 1, 4) on
    // [1, 300, 3, 4, 64]), against an index loop.
    ir::Tensor big = RandomTensor({1, 300, 3, 4, 64}, 77);
    for (int threads : {1, 2}) {
      OneNode n("Transpose", {big}, 1);
      n.node->set_attr_ints("perm", {2, 0, 3, 1, 4});
      auto o = n.Run(17, threads);
      REQUIRE(o.ok());
      REQUIRE((*o)[0].shape() == ir::Shape{3, 1, 4, 300, 64});
      bool same = true;
      for (int64_t t = 0; t < 300; ++t)
        for (int64_t q = 0; q < 3; ++q)
          for (int64_t h = 0; h < 4; ++h)
            for (int64_t d = 0; d < 64; ++d)
              same = same && (*o)[0].data<float>()[((q * 4 + h) * 300 + t) * 64 + d] ==
                                 big.data<float>()[((t * 3 + q) * 4 + h) * 64 + d];
      CHECK(same);
    }
    // The blocked last-two-axes path, bands of rows split over 2 threads (odd sizes: partial
    // bands and blocks).
    ir::Tensor m = RandomTensor({3, 70, 701}, 78);
    for (int threads : {1, 2}) {
      OneNode n("Transpose", {m}, 1);
      n.node->set_attr_ints("perm", {0, 2, 1});
      auto o = n.Run(17, threads);
      REQUIRE(o.ok());
      bool same = true;
      for (int64_t b = 0; b < 3; ++b)
        for (int64_t i = 0; i < 70; ++i)
          for (int64_t j = 0; j < 701; ++j)
            same = same && (*o)[0].data<float>()[(b * 701 + j) * 70 + i] == m.data<float>()[(b * 70 + i) * 701 + j];
      CHECK(same);
    }
  }
  {
    OneNode n("Concat", {x, x}, 1);
    n.node->set_attr_int("axis", 1);
    auto o = n.Run();
    REQUIRE(o.ok());
    REQUIRE((*o)[0].shape() == ir::Shape{3, 8, 5});
    CHECK((*o)[0].data<float>()[(2 * 8 + 6) * 5 + 1] == at(2, 2, 1));
  }
  {
    OneNode n("Split", {x, I64({1, 4})}, 2);
    n.node->set_attr_int("axis", 2);
    auto o = n.Run(13);
    REQUIRE(o.ok());
    CHECK((*o)[1].shape() == ir::Shape{3, 4, 4});
    CHECK((*o)[1].data<float>()[0] == at(0, 0, 1));
  }
  {
    OneNode n("Unsqueeze", {x, I64({0, -1})}, 1);
    auto o = n.Run(13);
    REQUIRE(o.ok());
    CHECK((*o)[0].shape() == ir::Shape{1, 3, 4, 5, 1});
    CHECK((*o)[0].SharesBufferWith(x));
    OneNode s("Squeeze", {(*o)[0]}, 1);
    s.node->set_attr_ints("axes", {0, 4});
    auto q = s.Run(11);
    REQUIRE(q.ok());
    CHECK((*q)[0].shape() == x.shape());
  }
  {
    ir::Tensor v = RandomTensor({3, 1}, 51);
    OneNode n("Expand", {v, I64({2, 3, 4})}, 1);
    auto o = n.Run();
    REQUIRE(o.ok());
    REQUIRE((*o)[0].shape() == ir::Shape{2, 3, 4});
    CHECK((*o)[0].data<float>()[(1 * 3 + 2) * 4 + 3] == v.data<float>()[2]);
    OneNode t("Tile", {v, I64({2, 3})}, 1);
    auto p = t.Run();
    REQUIRE(p.ok());
    REQUIRE((*p)[0].shape() == ir::Shape{6, 3});
    CHECK((*p)[0].data<float>()[4 * 3 + 2] == v.data<float>()[1]);
  }
  {
    ir::Tensor v = ir::Tensor::FromVector<float>(ir::DType::Float32, {1, 4}, {1, 2, 3, 4});
    for (std::string mode : {"constant", "reflect", "edge"}) {
      OneNode n("Pad", {v, I64({0, 2, 0, 1}), ir::Tensor::Scalar(9.f)}, 1);
      n.node->set_attr_string("mode", mode);
      auto o = n.Run();
      REQUIRE(o.ok());
      std::vector<float> want = mode == "constant" ? std::vector<float>{9, 9, 1, 2, 3, 4, 9}
                              : mode == "reflect" ? std::vector<float>{3, 2, 1, 2, 3, 4, 3}
                                                  : std::vector<float>{1, 1, 1, 2, 3, 4, 4};
      REQUIRE((*o)[0].numel() == 7);
      for (int i = 0; i < 7; ++i) CHECK((*o)[0].data<float>()[i] == want[i]);
    }
  }
}

TEST_CASE("Range, ConstantOfShape, Trilu, CumSum") {
  OneNode r("Range", {I64({2}), I64({11}), I64({3})}, 1);
  auto o = r.Run();
  REQUIRE(o.ok());
  REQUIRE((*o)[0].numel() == 3);
  CHECK((*o)[0].data<int64_t>()[2] == 8);
  OneNode c("ConstantOfShape", {I64({2, 3})}, 1);
  c.node->set_attr_tensor("value", ir::Tensor::ScalarInt64(7).Reshaped({1}));
  auto p = c.Run();
  REQUIRE(p.ok());
  CHECK((*p)[0].shape() == ir::Shape{2, 3});
  CHECK((*p)[0].data<int64_t>()[5] == 7);
  ir::Tensor m = RandomTensor({3, 3}, 60);
  OneNode t("Trilu", {m, I64({1})}, 1);
  t.node->set_attr_int("upper", 0);
  auto q = t.Run();
  REQUIRE(q.ok());
  CHECK((*q)[0].data<float>()[1] == m.data<float>()[1]);
  CHECK((*q)[0].data<float>()[2] == 0.f);
  ir::Tensor v = ir::Tensor::FromVector<float>(ir::DType::Float32, {4}, {1, 2, 3, 4});
  OneNode cs("CumSum", {v, I64({0})}, 1);
  cs.node->set_attr_int("exclusive", 1);
  cs.node->set_attr_int("reverse", 1);
  auto s = cs.Run();
  REQUIRE(s.ok());
  std::vector<float> want = {9, 7, 4, 0};
  for (int i = 0; i < 4; ++i) CHECK((*s)[0].data<float>()[i] == want[i]);
}

TEST_CASE("LSTM: one step by hand") {
  // H=2, I=1, batch 1, seq 1, zero recurrent weights: gates come from W x + b only.
  int64_t H = 2;
  ir::Tensor x = ir::Tensor::FromVector<float>(ir::DType::Float32, {1, 1, 1}, {0.5f});
  ir::Tensor W = RandomTensor({1, 4 * H, 1}, 70), R = RandomTensor({1, 4 * H, H}, 71), B = RandomTensor({1, 8 * H}, 72);
  ir::Tensor h0 = RandomTensor({1, 1, H}, 73), c0 = RandomTensor({1, 1, H}, 74);
  OneNode n("LSTM", {x, W, R, B, ir::Tensor(), h0, c0}, 3);
  n.node->set_attr_int("hidden_size", H);
  auto o = n.Run();
  REQUIRE(o.ok());
  auto sig = [](double v) { return 1 / (1 + std::exp(-v)); };
  for (int j = 0; j < H; ++j) {
    double g[4];
    for (int k = 0; k < 4; ++k) {
      g[k] = W.data<float>()[k * H + j] * 0.5 + B.data<float>()[k * H + j] + B.data<float>()[4 * H + k * H + j];
      for (int m = 0; m < H; ++m) g[k] += R.data<float>()[(k * H + j) * H + m] * h0.data<float>()[m];
    }
    double c = sig(g[2]) * c0.data<float>()[j] + sig(g[0]) * std::tanh(g[3]);  // iofc
    double h = sig(g[1]) * std::tanh(c);
    CHECK((*o)[0].data<float>()[j] == doctest::Approx(h).epsilon(1e-5));
    CHECK((*o)[1].data<float>()[j] == doctest::Approx(h).epsilon(1e-5));
    CHECK((*o)[2].data<float>()[j] == doctest::Approx(c).epsilon(1e-5));
  }
}

TEST_CASE("RNN, GRU, LSTM bidirectional: two threads give one thread's bits; the per-step product matches the GEMM") {
  // Hidden 70: the step product's 64-column blocks plus a tail. Batch 9 multiplies each step's
  // state on the GEMM; each of its rows run alone (batch 1) takes the packed step product.
  const int64_t H = 70, I = 5, S = 23;
  struct Cell { const char* op; int gates; bool lbr; };
  for (Cell cell : {Cell{"RNN", 1, false}, Cell{"GRU", 3, false}, Cell{"GRU", 3, true}, Cell{"LSTM", 4, false}}) {
    CAPTURE(cell.op);
    CAPTURE(cell.lbr);
    uint32_t seed = 500;
    ir::Tensor W = RandomTensor({2, cell.gates * H, I}, seed++, -0.3f, 0.3f);
    ir::Tensor R = RandomTensor({2, cell.gates * H, H}, seed++, -0.3f, 0.3f);
    ir::Tensor B = RandomTensor({2, 2 * cell.gates * H}, seed++, -0.3f, 0.3f);
    auto run = [&](const ir::Tensor& x, int threads) {
      OneNode n(cell.op, {x, W, R, B}, 2, {false, true, true, true});
      n.node->set_attr_int("hidden_size", H);
      n.node->set_attr_string("direction", "bidirectional");
      if (cell.lbr) n.node->set_attr_int("linear_before_reset", 1);
      auto o = n.Run(17, threads);
      REQUIRE(o.ok());
      return *o;
    };
    ir::Tensor x = RandomTensor({S, 9, I}, seed++);
    auto one = run(x, 1), two = run(x, 2);
    CHECK(MaxAbsDiff(one[0], two[0]) == 0.f);
    CHECK(MaxAbsDiff(one[1], two[1]) == 0.f);
    for (int64_t b : {0, 4, 8}) {
      ir::Tensor xb(ir::DType::Float32, {S, 1, I});
      for (int64_t t = 0; t < S; ++t)
        for (int64_t i = 0; i < I; ++i) xb.data<float>()[t * I + i] = x.data<float>()[(t * 9 + b) * I + i];
      auto alone = run(xb, 1);
      float worst = 0;
      for (int64_t t = 0; t < S; ++t)
        for (int64_t d = 0; d < 2; ++d)
          for (int64_t j = 0; j < H; ++j)
            worst = std::max(worst, std::abs(alone[0].data<float>()[(t * 2 + d) * H + j] -
                                             one[0].data<float>()[((t * 2 + d) * 9 + b) * H + j]));
      CHECK(worst < 1e-5f);
    }
  }
}

TEST_CASE("thread pool covers every index exactly once") {
  runtime::ThreadPool pool(2);
  for (int64_t n : {1, 7, 100, 10000}) {
    std::vector<int> hits(n, 0);
    pool.ParallelFor(n, 3, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) ++hits[i];
    });
    for (int64_t i = 0; i < n; ++i) CHECK(hits[i] == 1);
  }
}

TEST_CASE("thread pool: many short calls of 2 and 3 parts, each part exactly once") {
  // Parts are claimed by whichever thread gets there first (the caller included); a worker that
  // wakes after its call ended must claim nothing of the next one.
  runtime::ThreadPool two(2), three(3);
  std::vector<std::atomic<int>> hits(3);
  for (int call = 0; call < 20000; ++call) {
    const runtime::ThreadPool& pool = call % 3 == 0 ? three : two;
    const int parts = pool.threads();
    for (auto& h : hits) h.store(0);
    pool.ParallelFor(parts, 1, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) hits[i].fetch_add(1);
      if (call % 1000 == 0) std::this_thread::sleep_for(std::chrono::microseconds(200));  // workers fall asleep
    });
    for (int i = 0; i < 3; ++i) REQUIRE(hits[i].load() == (i < parts ? 1 : 0));
  }
}

#include "runtime/kernels/vmath.h"

TEST_CASE("vectorized exp, sigmoid, tanh, erf, softmax helpers match <cmath>") {
  std::vector<float> x;
  for (float v = -100.f; v <= 100.f; v += 0.0137f) x.push_back(v);
  for (float v = -0.1f; v <= 0.1f; v += 1e-4f) x.push_back(v);
  int64_t n = static_cast<int64_t>(x.size());
  std::vector<float> y(n);
  runtime::vm::Exp(x.data(), y.data(), n);
  for (int64_t i = 0; i < n; ++i)
    if (x[i] > -87.f && x[i] < 88.f) CHECK(std::abs(y[i] - std::exp(x[i])) <= 3e-7f * std::exp(x[i]));
  runtime::vm::Sigmoid(x.data(), y.data(), n);
  for (int64_t i = 0; i < n; ++i) CHECK(std::abs(y[i] - 1.0 / (1.0 + std::exp(-static_cast<double>(x[i])))) <= 2e-7);
  runtime::vm::Tanh(x.data(), y.data(), n);
  for (int64_t i = 0; i < n; ++i) {
    double want = std::tanh(static_cast<double>(x[i]));
    CHECK(std::abs(y[i] - want) <= 2e-7 + 1e-6 * std::abs(want));
  }
  runtime::vm::Erf(x.data(), y.data(), n);
  double worst_abs = 0, worst_rel = 0;
  for (int64_t i = 0; i < n; ++i) {
    double want = std::erf(static_cast<double>(x[i]));
    worst_abs = std::max(worst_abs, std::abs(y[i] - want));
    if (want != 0) worst_rel = std::max(worst_rel, std::abs(y[i] - want) / std::abs(want));
  }
  CHECK(worst_abs <= 3e-7);
  CHECK(worst_rel <= 1e-6);
  double s = 0;
  for (int64_t i = 0; i < 1000; ++i) s += std::exp(static_cast<double>(x[i + 7000]) - 3.0);
  CHECK(runtime::vm::ExpShiftSum(x.data() + 7000, y.data(), 1000, 3.f) == doctest::Approx(s).epsilon(1e-5));
  CHECK(runtime::vm::Max(x.data(), 1001) == x[1000]);
}

TEST_CASE("Exp, Sigmoid, Tanh, Erf, Relu keep NaN and infinities as <cmath> does (vectorized and tail)") {
  // Eight specials fill one vector; the same three again in the scalar tail.
  const float nan = NAN, inf = INFINITY;
  std::vector<float> x = {nan, 1.f, -inf, inf, -100.f, 100.f, 88.8f, -88.f, nan, -inf, inf};
  const int64_t n = static_cast<int64_t>(x.size());
  std::vector<float> y(n);
  auto same = [](float got, double want) {
    if (std::isnan(want)) return std::isnan(got);
    if (std::isinf(want)) return got == want;
    return std::abs(got - want) <= 1e-6 * std::max(1.0, std::abs(want)) + 1e-37;
  };
  using F = void (*)(const float*, float*, int64_t);
  const std::vector<std::pair<F, double (*)(double)>> fs = {
      {runtime::vm::Exp, [](double v) { return std::exp(v); }},
      {runtime::vm::Sigmoid, [](double v) { return 1.0 / (1.0 + std::exp(-v)); }},
      {runtime::vm::Tanh, [](double v) { return std::tanh(v); }},
      {runtime::vm::Erf, [](double v) { return std::erf(v); }}};
  for (size_t k = 0; k < fs.size(); ++k) {
    fs[k].first(x.data(), y.data(), n);
    for (int64_t i = 0; i < n; ++i) {
      // exp overflows float above ln(FLT_MAX) = 88.72: inf, as expf.
      const double want = k == 0 && x[i] > 88.7228f ? INFINITY : fs[k].second(x[i]);
      CAPTURE(k);
      CAPTURE(x[i]);
      CHECK(same(y[i], want));
    }
  }
  ir::Tensor t(ir::DType::Float32, {n});
  std::copy(x.begin(), x.end(), t.data<float>());
  OneNode relu("Relu", {t}, 1);
  auto out = relu.Run();
  REQUIRE(out.ok());
  for (int64_t i = 0; i < n; ++i) CHECK(same((*out)[0].data<float>()[i], std::isnan(x[i]) ? x[i] : std::max(x[i], 0.f)));
}

#include <random>

TEST_CASE("int8 product with full-range symmetric int8 weights is exact (the VNNI byte path)") {
  // Weights in [-127, 127] with A at 255 are the sums that saturate vpmaddubsw's int16 pairs;
  // where the build has AVX-512 VNNI they take the byte layout (vpdpbusd, int32 sums) and must
  // still equal the reference loop.
  std::mt19937 rng(5);
  std::uniform_int_distribution<int> w(-127, 127), a(0, 255);
  for (int64_t M : {1, 7, 12, 13, 75})
    for (int64_t N : {1, 16, 17, 40})
      for (int64_t K : {1, 5, 64, 257})
        for (int fill = 0; fill < 2; ++fill) {
          std::vector<uint8_t> A(M * K);
          std::vector<int8_t> B(K * N);
          for (auto& v : A) v = static_cast<uint8_t>(fill ? 255 : a(rng));
          for (size_t i = 0; i < B.size(); ++i)
            B[i] = static_cast<int8_t>(fill ? (i % 3 ? 127 : -127) : w(rng));
          const int32_t a_zero = fill ? 0 : a(rng), b_zero = 0;
          std::vector<int32_t> ref(M * N), got(M * N, -7);
          runtime::IgemmReference(M, N, K, A.data(), false, a_zero, B.data(), true, &b_zero,
                                  false, ref.data());
          auto packed = runtime::PackIgemmB(K, N, B.data(), true, &b_zero, false);
#if defined(__AVX512VNNI__) && defined(__AVX512F__)
          CHECK(packed.u8s8);
#endif
          runtime::IgemmPacked(M, A.data(), false, a_zero, packed, got.data(), N, 1 + (M % 2));
          INFO("M=" << M << " N=" << N << " K=" << K << " fill=" << fill);
          CHECK(got == ref);
        }
}

TEST_CASE("ConvTranspose: the GEMM + col2im path matches the scatter reference loop (ASRC_CONVT=ref)") {
  struct Case {
    ir::Shape x, w;
    int64_t group;
    std::vector<int64_t> strides, dil, pads, out_pad;
  };
  const std::vector<Case> cases = {
      {{1, 16, 30}, {16, 8, 4}, 1, {2}, {}, {1, 1}, {}},                  // upsample_decoder's 1-D shape
      {{2, 6, 5, 7}, {6, 2, 3, 3}, 3, {2, 1}, {1, 2}, {1, 0, 0, 1}, {1, 0}},  // groups, dilation, output_padding
      {{1, 4, 9}, {4, 5, 1}, 1, {3}, {}, {}, {}},                         // 1x1 kernel, gaps between outputs
  };
  for (const Case& c : cases) {
    ir::Tensor y[2];
    for (int ref : {0, 1}) {
      testing::OneNode n("ConvTranspose", {testing::RandomTensor(c.x, 3), testing::RandomTensor(c.w, 4),
                                           testing::RandomTensor({c.w[1] * c.group}, 5)}, 1, {false, true, true});
      n.node->set_attr_int("group", c.group);
      if (!c.strides.empty()) n.node->set_attr_ints("strides", c.strides);
      if (!c.dil.empty()) n.node->set_attr_ints("dilations", c.dil);
      if (!c.pads.empty()) n.node->set_attr_ints("pads", c.pads);
      if (!c.out_pad.empty()) n.node->set_attr_ints("output_padding", c.out_pad);
      if (ref) ::setenv("ASRC_CONVT", "ref", 1);
      auto out = n.Run(17, 1);
      ::unsetenv("ASRC_CONVT");
      REQUIRE_MESSAGE(out.ok(), out.status().message());
      y[ref] = (*out)[0];
    }
    INFO("x " << ir::ShapeStr(c.x) << " w " << ir::ShapeStr(c.w));
    CHECK(y[0].numel() > 0);
    CHECK(testing::MaxAbsDiff(y[0], y[1]) <= 1e-5f);
  }
}

TEST_CASE("com.microsoft quantized ops reject bad inputs with errors naming the op and what is wrong") {
  auto u8 = [](std::vector<uint8_t> v, ir::Shape s) { return ir::Tensor::FromVector(ir::DType::Uint8, s, v); };
  auto f32 = [](std::vector<float> v, ir::Shape s) { return ir::Tensor::FromVector(ir::DType::Float32, s, v); };
  auto error_of = [](testing::OneNode& n) {
    n.node->domain = "com.microsoft";
    auto out = n.Run(17, 1);
    return out.ok() ? std::string("ok") : out.status().message();
  };
  {  // QLinearAdd on float data
    testing::OneNode n("QLinearAdd", {f32({1, 2}, {2}), f32({0.1f}, {}), u8({0}, {}), f32({1, 2}, {2}), f32({0.1f}, {}),
                                      u8({0}, {}), f32({0.1f}, {}), u8({0}, {})}, 1);
    std::string e = error_of(n);
    CHECK(e.find("QLinearAdd") != std::string::npos);
    CHECK(e.find("float32") != std::string::npos);
    CHECK(e.find("supported: uint8, int8") != std::string::npos);
  }
  {  // QGemm with a per-row a_scale
    testing::OneNode n("QGemm", {u8({1, 2, 3, 4}, {2, 2}), f32({0.1f, 0.2f}, {2}), u8({0}, {}), u8({1, 2, 3, 4}, {2, 2}),
                                 f32({0.1f}, {}), u8({0}, {})}, 1);
    std::string e = error_of(n);
    CHECK(e.find("QGemm") != std::string::npos);
    CHECK(e.find("a scale must be a scalar") != std::string::npos);
  }
  {  // DynamicQuantizeLSTM with W of the wrong shape
    testing::OneNode n("DynamicQuantizeLSTM",
                       {f32(std::vector<float>(6, 0.f), {1, 2, 3}), u8(std::vector<uint8_t>(12, 1), {1, 4, 3}),
                        u8(std::vector<uint8_t>(4, 1), {1, 1, 4}), ir::Tensor(), ir::Tensor(), ir::Tensor(), ir::Tensor(),
                        ir::Tensor(), f32({0.1f}, {1}), u8({0}, {1}), f32({0.1f}, {1}), u8({0}, {1})}, 3,
                       {false, true, true, false, false, false, false, false, true, true, true, true});
    n.node->set_attr_int("hidden_size", 1);
    std::string e = error_of(n);
    INFO(e);
    CHECK(e.find("DynamicQuantizeLSTM: W shape [1,4,3], expected [1,4,4]") != std::string::npos);
  }
}

TEST_CASE("an axis on a scalar (rank-0) input is an error, never a read of its empty shape") {
  // onnx_run_fuzzer found Concat, Slice and ArgMax indexing shape()[0] of a scalar; every kernel
  // that normalizes an axis now gets an error for a scalar from NormAxis.
  struct Case { const char* op; std::vector<ir::Tensor> extra; const char* attr; int64_t opset; };
  const std::vector<Case> cases = {
      {"Squeeze", {I64({0}, {1})}, nullptr, 13},   {"CumSum", {I64({0})}, nullptr, 14},
      {"Split", {}, "axis", 13},                   {"ReduceSum", {I64({0}, {1})}, nullptr, 13},
      {"TopK", {I64({1}, {1})}, "axis", 11},       {"GatherElements", {I64({0})}, "axis", 13},
      {"Concat", {}, "axis", 13},                  {"ArgMax", {}, "axis", 13},
      {"Unique", {}, "axis", 11},                  {"Flatten", {}, "axis", 13}};
  for (const Case& c : cases) {
    INFO(std::string(c.op));
    std::vector<ir::Tensor> ins = {RandomTensor({}, 10)};
    ins.insert(ins.end(), c.extra.begin(), c.extra.end());
    std::vector<bool> constant(ins.size(), true);
    constant[0] = false;
    OneNode n(c.op, ins, std::string(c.op) == "TopK" ? 2 : 1, constant);
    if (c.attr) n.node->set_attr_int(c.attr, 0);
    auto out = n.Run(c.opset);
    if (std::string(c.op) == "Flatten") {  // axis 0 of a scalar is allowed: [1, 1]
      REQUIRE(out.ok());
      CHECK((*out)[0].shape() == ir::Shape{1, 1});
      continue;
    }
    REQUIRE(!out.ok());
    CHECK(out.status().message().find("scalar") != std::string::npos);
  }
  // Softmax, LayerNormalization and friends treat a scalar as one element: Softmax(x) = 1.
  OneNode softmax("Softmax", {RandomTensor({}, 11)}, 1);
  auto y = softmax.Run(13);
  REQUIRE(y.ok());
  CHECK((*y)[0].data<float>()[0] == doctest::Approx(1.f));
}

TEST_CASE("integer arithmetic wraps in two's complement (no signed-overflow UB), like ONNX Runtime") {
  // onnx_run_fuzzer: Mul of int64 initializers overflowed under UBSan.
  const int64_t lo = std::numeric_limits<int64_t>::lowest(), hi = std::numeric_limits<int64_t>::max();
  struct Case { const char* op; std::vector<int64_t> a, b, want; };
  const Case cases[] = {{"Mul", {3, hi}, {7585190972561030918, 2}, {static_cast<int64_t>(3 * uint64_t{7585190972561030918}), -2}},
                        {"Add", {hi, lo}, {1, -1}, {lo, hi}},
                        {"Sub", {lo, 5}, {1, 7}, {hi, -2}},
                        {"Div", {lo, 7}, {-1, 0}, {lo, 0}},
                        {"Mod", {lo, -7}, {-1, 3}, {0, 2}}};
  for (const Case& c : cases) {
    INFO(std::string(c.op));
    OneNode n(c.op, {I64(c.a, {2}), I64(c.b, {2})}, 1);
    auto y = n.Run(13);
    REQUIRE(y.ok());
    CHECK(std::vector<int64_t>((*y)[0].data<int64_t>(), (*y)[0].data<int64_t>() + 2) == c.want);
  }
  for (const char* op : {"Neg", "Abs"}) {
    OneNode n(op, {I64({lo, -3}, {2})}, 1);
    auto y = n.Run(13);
    REQUIRE(y.ok());
    CHECK((*y)[0].data<int64_t>()[0] == lo);
    CHECK((*y)[0].data<int64_t>()[1] == 3);
  }
  OneNode sum("ReduceSum", {I64({hi, hi}, {2})}, 1);  // accumulated in double: saturates
  auto s = sum.Run(13);
  REQUIRE(s.ok());
  CHECK(s->at(0).data<int64_t>()[0] == hi);
}

// The classes onnx_run_fuzzer kept finding one site at a time (issue 17), each checked across the
// kernels it reaches: float -> integer casts of tensor/attribute values, signed int64 overflow in
// shape arithmetic, indices used unchecked.
namespace {
ir::Tensor F32(std::vector<float> v, ir::Shape shape) { return ir::Tensor::FromVector(ir::DType::Float32, shape, v); }
Result<std::vector<ir::Tensor>> RunConst(const char* op, const std::vector<ir::Tensor>& ins, int n_out = 1,
                                         int64_t opset = 18, void (*attrs)(ir::Node*) = nullptr) {
  std::vector<bool> constant(ins.size(), true);
  constant[0] = false;
  OneNode n(op, ins, n_out, constant);
  if (attrs) attrs(n.node);
  return n.Run(opset);
}
const float kNaN = std::numeric_limits<float>::quiet_NaN(), kInf = std::numeric_limits<float>::infinity();
}  // namespace

TEST_CASE("float values used as sizes, depths, lengths or zero points: NaN, inf and huge are errors") {
  struct Case { const char* op; std::vector<ir::Tensor> ins; const char* says; };
  const std::vector<Case> cases = {
      {"OneHot", {I64({0, 1}), F32({kNaN}, {}), F32({0, 1}, {2})}, "depth is NaN"},
      {"OneHot", {I64({0, 1}), F32({1e30f}, {}), F32({0, 1}, {2})}, "not an integer in int64's range"},
      {"Range", {F32({0}, {}), F32({kInf}, {}), F32({1}, {})}, "Range: the length"},
      {"Range", {F32({0}, {}), F32({1}, {}), F32({kNaN}, {})}, "Range: the length"},
      {"Resize", {RandomTensor({1, 1, 2, 2}, 1), ir::Tensor(), F32({1, 1, kNaN, 2}, {4})}, "scales must be positive"},
      {"Resize", {RandomTensor({1, 1, 2, 2}, 1), ir::Tensor(), F32({1, 1, 1e30f, 2}, {4})}, "Resize: output size"},
      {"QuantizeLinear", {F32({1, 2}, {2}), F32({1}, {}), F32({kNaN}, {})}, "zero point has unsupported dtype"},
  };
  for (const Case& c : cases) {
    INFO((std::string(c.op) + " " + c.says));
    auto y = RunConst(c.op, c.ins);
    REQUIRE(!y.ok());
    CHECK(y.status().message().find(c.says) != std::string::npos);
  }
  // Out-of-range float OneHot indices are "all off", not an undefined cast.
  auto oh = RunConst("OneHot", {F32({kNaN, 1e30f, -kInf, 1}, {4}), F32({2}, {}), F32({0, 1}, {2})});
  REQUIRE(oh.ok());
  CHECK(std::vector<float>((*oh)[0].data<float>(), (*oh)[0].data<float>() + 8) == std::vector<float>{0, 0, 0, 0, 0, 0, 0, 1});
  // NaN and huge grid coordinates sample outside (zeros), in every mode.
  for (const char* mode : {"bilinear", "nearest", "bicubic"}) {
    INFO(mode);
    OneNode n("GridSample", {RandomTensor({1, 1, 2, 2}, 2), F32({kNaN, 0, 1e30f, -1e30f}, {1, 1, 2, 2})}, 1, {false, true});
    n.node->set_attr_string("mode", mode);
    auto y = n.Run(16);
    REQUIRE(y.ok());
    CHECK((*y)[0].data<float>()[0] == 0.f);
    CHECK((*y)[0].data<float>()[1] == 0.f);
  }
  // MaxRoiPool with NaN / huge corners: a defined result; RoiAlign with an infinite roi: an error.
  OneNode mrp("MaxRoiPool", {RandomTensor({1, 1, 4, 4}, 3), F32({0, kNaN, 1e30f, -1e30f, kInf}, {1, 5})}, 1, {false, true});
  mrp.node->set_attr_ints("pooled_shape", {2, 2});
  CHECK(mrp.Run(16).ok());
  OneNode ra("RoiAlign", {RandomTensor({1, 1, 4, 4}, 3), F32({0, 0, kInf, 2}, {1, 4}), I64({0}, {1})}, 1, {false, true, true});
  auto ry = ra.Run(16);
  REQUIRE(!ry.ok());
  CHECK(ry.status().message().find("samples per bin") != std::string::npos);
}

TEST_CASE("shape arithmetic from tensor values never overflows int64") {
  const int64_t lo = std::numeric_limits<int64_t>::lowest(), hi = std::numeric_limits<int64_t>::max();
  // Slice steps of INT64_MIN / INT64_MAX take one element (and their strides do not overflow).
  for (int64_t step : {lo, hi}) {
    INFO(step);
    auto y = RunConst("Slice", {I64({10, 11, 12, 13}, {4}), I64({step > 0 ? 1 : 2}), I64({step > 0 ? hi : lo}), I64({0}),
                                 I64({step})});
    REQUIRE(y.ok());
    REQUIRE((*y)[0].numel() == 1);
    CHECK((*y)[0].data<int64_t>()[0] == (step > 0 ? 11 : 12));
  }
  // A step after the last element of an int64 Range would overflow: it wraps, unused.
  auto r = RunConst("Range", {I64({hi - 4096}), I64({hi}), I64({8192})});
  REQUIRE(r.ok());
  REQUIRE((*r)[0].numel() == 1);
  CHECK((*r)[0].data<int64_t>()[0] == hi - 4096);
  struct Case { const char* op; std::vector<ir::Tensor> ins; const char* says; void (*attrs)(ir::Node*); };
  const std::vector<Case> cases = {
      {"Split", {I64({1, 2, 3}, {3}), I64({hi, 2}, {2})}, "sum to more than", nullptr},
      {"Split", {I64({1, 2, 3}, {3}), I64({-1, 4}, {2})}, "is negative", nullptr},
      {"Pad", {I64({1, 2}, {2}), I64({hi, 1}, {2})}, "beyond +-2^62", nullptr},
      // The product of the nonzero dims is over int64 although the tensor would be empty.
      {"ConstantOfShape", {I64({0, int64_t{1} << 40, int64_t{1} << 40}, {3})}, "more elements than int64", nullptr},
      {"SpaceToDepth", {RandomTensor({1, 1, 2, 2}, 4)}, "too large", [](ir::Node* n) { n->set_attr_int("blocksize", int64_t{1} << 40); }},
      {"Col2Im", {RandomTensor({1, 4, 1}, 5), I64({2, 2}, {2}), I64({0, 2}, {2})}, "block_shape 0", nullptr},
  };
  for (const Case& c : cases) {
    INFO((std::string(c.op) + " " + c.says));
    auto y = RunConst(c.op, c.ins, c.op == std::string("Split") ? 2 : 1, 18, c.attrs);
    REQUIRE(!y.ok());
    CHECK(y.status().message().find(c.says) != std::string::npos);
  }
  // EyeLike with a k beyond the matrix: all zeros (i + k would overflow).
  OneNode eye("EyeLike", {RandomTensor({2, 2}, 6)}, 1);
  eye.node->set_attr_int("k", hi);
  auto e = eye.Run(17);
  REQUIRE(e.ok());
  CHECK(std::vector<float>((*e)[0].data<float>(), (*e)[0].data<float>() + 4) == std::vector<float>{0, 0, 0, 0});
  // Integer MatMul and scatter reductions wrap like Mul and Add.
  auto mm = RunConst("MatMul", {I64({hi, 2}, {1, 2}), I64({2, hi}, {2, 1})});
  REQUIRE(mm.ok());
  CHECK((*mm)[0].data<int64_t>()[0] == static_cast<int64_t>(uint64_t(hi) * 2 + 2 * uint64_t(hi)));
  OneNode sc("ScatterElements", {I64({hi, 0}, {2}), I64({0}, {1}), I64({1}, {1})}, 1, {false, true, true});
  sc.node->set_attr_string("reduction", "add");
  auto s = sc.Run(18);
  REQUIRE(s.ok());
  CHECK((*s)[0].data<int64_t>()[0] == lo);
}

TEST_CASE("indices shapes that do not fit the data are errors, not reads or writes past it") {
  // ScatterElements, like GatherElements: indices wider than the data off the scatter axis.
  auto y = RunConst("ScatterElements", {RandomTensor({2, 1}, 7), I64({0, 0, 0, 0}, {2, 2}), RandomTensor({2, 2}, 8)});
  REQUIRE(!y.ok());
  CHECK(y.status().message().find("exceeds data shape") != std::string::npos);
  // GatherND with batch_dims: the indices' batch axes must be the data's.
  OneNode g("GatherND", {RandomTensor({4, 5}, 9), I64({0}, {1, 1})}, 1, {false, true});
  g.node->set_attr_int("batch_dims", 1);
  auto gy = g.Run(13);
  REQUIRE(!gy.ok());
  CHECK(gy.status().message().find("batch axis") != std::string::npos);
}

TEST_CASE("window attribute lists shorter than the spatial rank are errors, not reads past them") {
  // onnx_run_fuzzer: MaxUnpool with kernel_shape [2, 2] and strides [2].
  OneNode mu("MaxUnpool", {RandomTensor({1, 1, 2, 2}, 10), I64({0, 1, 2, 3}, {1, 1, 2, 2})}, 1, {false, true});
  mu.node->set_attr_ints("kernel_shape", {2, 2});
  mu.node->set_attr_ints("strides", {2});
  auto y = mu.Run(11);
  REQUIRE(!y.ok());
  CHECK(y.status().message().find("strides/pads lengths") != std::string::npos);
  OneNode ci("ConvInteger", {ir::Tensor::FromVector(ir::DType::Uint8, {1, 1, 2, 2}, std::vector<uint8_t>{1, 2, 3, 4}),
                             ir::Tensor::FromVector(ir::DType::Uint8, {1, 1, 1, 1}, std::vector<uint8_t>{1})},
             1, {false, true});
  ci.node->set_attr_ints("strides", {1});
  y = ci.Run(11);
  REQUIRE(!y.ok());
  CHECK(y.status().message().find("strides/dilations hold 1 values for 2") != std::string::npos);
  OneNode c2i("Col2Im", {RandomTensor({1, 4, 1}, 11), I64({2, 2}, {2}), I64({2, 2}, {2})}, 1, {false, true, true});
  c2i.node->set_attr_ints("pads", {0, 0});
  y = c2i.Run(18);
  REQUIRE(!y.ok());
  CHECK(y.status().message().find("lengths do not match") != std::string::npos);
}

TEST_CASE("an integer convolution with an empty kernel sums nothing: zeros, not a division by K = 0") {
  // onnx_run_fuzzer: ConvInteger with w [1, 1, 2, 0] divided by K when sizing GEMM panel groups.
  OneNode ci("ConvInteger", {ir::Tensor::FromVector(ir::DType::Uint8, {1, 1, 3, 3}, std::vector<uint8_t>(9, 7)),
                             ir::Tensor(ir::DType::Uint8, {1, 1, 2, 0})},
             1, {false, true});
  ci.node->set_attr_ints("pads", {0, 1, 0, 1});
  auto y = ci.Run(10);
  REQUIRE(y.ok());
  REQUIRE((*y)[0].numel() > 0);
  for (int64_t i = 0; i < (*y)[0].numel(); ++i) CHECK((*y)[0].data<int32_t>()[i] == 0);
}

TEST_CASE("ku::AsFloat: float32 shared, float16/float64 converted, any other dtype an error naming the op") {
  ir::Tensor f = RandomTensor({3}, 1);
  auto same = runtime::ku::AsFloat(f, "Op");
  REQUIRE(same.ok());
  CHECK(same->raw() == f.raw());  // shared, not copied
  ir::Tensor d = ir::Tensor::FromVector(ir::DType::Float64, {2}, std::vector<double>{0.5, -2});
  auto conv = runtime::ku::AsFloat(d, "Op");
  REQUIRE(conv.ok());
  REQUIRE(conv->dtype() == ir::DType::Float32);
  CHECK(conv->data<float>()[0] == 0.5f);
  CHECK(conv->data<float>()[1] == -2.f);
  for (ir::DType dt : {ir::DType::Int64, ir::DType::Int32, ir::DType::Uint8, ir::DType::Bool, ir::DType::String}) {
    auto bad = runtime::ku::AsFloat(ir::Tensor(dt, {2}), "SomeOp");
    REQUIRE(!bad.ok());
    CHECK(bad.status().message() == std::string("unsupported dtype ") + ir::DTypeName(dt) +
                                        " for op 'SomeOp' (supported: float32, float16, float64)");
  }
}

TEST_CASE("a non-float tensor where a float kernel converts its inputs is an error naming the op") {
  // ku::AsFloat passed other dtypes through unconverted and kernels read a null data<float>()
  // (NonMaxSuppression's int boxes under opset 6, where no schema types its inputs, in session
  // 7). Ops run below the opset that introduced them are not type-checked by the session: each
  // kernel's own check is all there is.
  const ir::Tensor i2x2 = I64({1, 2, 3, 4}, {2, 2}), i2 = I64({1, 2}, {2});
  struct Case { const char* op; std::vector<ir::Tensor> ins; };
  const std::vector<Case> cases = {
      {"LayerNormalization", {RandomTensor({2, 2}, 1), i2}},
      {"LayerNormalization", {RandomTensor({2, 2}, 1), RandomTensor({2}, 2), i2}},
      {"NonMaxSuppression", {RandomTensor({1, 1, 4}, 1), I64({1}, {1, 1, 1})}},
      {"GridSample", {RandomTensor({1, 1, 2, 2}, 1), I64({0, 0}, {1, 1, 1, 2})}},
      {"RoiAlign", {RandomTensor({1, 1, 2, 2}, 1), I64({0, 0, 1, 1}, {1, 4}), I64({0}, {1})}},
  };
  for (const Case& c : cases) {
    INFO((std::string(c.op) + " with " + std::to_string(c.ins.size()) + " inputs"));
    auto y = RunConst(c.op, c.ins, 1, 6);
    REQUIRE(!y.ok());
    const std::string& m = y.status().message();
    INFO((m));
    CHECK(m.find(std::string("unsupported dtype int64 for op '") + c.op + "'") != std::string::npos);
    CHECK(m.find('\n') == std::string::npos);
  }
}

TEST_CASE("kernels over an empty tensor with a 2^40 axis return at once (an empty result, no spin)") {
  // A shape like [2^40, 0] is allowed (its nonzero dims fit in int64); kernels that looped over
  // the outer dims of such a tensor spun for hours (tests/fuzz/RESULTS.md "Not done").
  const int64_t H = int64_t{1} << 40;
  const ir::Shape X = {H, 0}, X3 = {H, 0, 3};
  auto empty = [](ir::Shape s) { return ir::Tensor(ir::DType::Float32, std::move(s)); };
  auto axis = [](int64_t a) { return [a](ir::Node* n) { n->set_attr_int("axis", a); }; };
  struct Case { const char* op; std::vector<ir::Tensor> ins; int64_t opset; std::function<void(ir::Node*)> attrs; ir::Shape out; int n_out; };
  const std::vector<Case> cases = {
      {"ReduceSum", {empty(X), I64({0})}, 13, nullptr, {1, 0}, 1},
      {"ReduceMax", {empty(X3)}, 11, [](ir::Node* n) { n->set_attr_ints("axes", {2}); n->set_attr_int("keepdims", 0); }, {H, 0}, 1},
      {"Concat", {empty(X), empty(X)}, 13, axis(1), {H, 0}, 1},
      {"CumSum", {empty(X), I64({1})}, 14, nullptr, X, 1},
      {"Softmax", {empty(X)}, 13, nullptr, X, 1},
      {"LogSoftmax", {empty(X)}, 13, axis(1), X, 1},
      {"Hardmax", {empty(X)}, 13, nullptr, X, 1},
      {"TopK", {empty(X), I64({0}, {1})}, 11, nullptr, X, 2},
      {"Gather", {empty(X), I64({}, {0})}, 13, axis(1), X, 1},
      {"Compress", {empty(X), ir::Tensor(ir::DType::Bool, {0})}, 13, axis(1), X, 1},
      {"Unique", {empty(X3)}, 11, axis(1), X3, 1},
      {"LayerNormalization", {empty(X), empty({0})}, 17, nullptr, X, 1},
      {"MeanVarianceNormalization", {empty(X)}, 13, [](ir::Node* n) { n->set_attr_ints("axes", {1}); }, X, 1},
      {"LpNormalization", {empty(X)}, 13, nullptr, X, 1},
      {"GroupNormalization", {empty({H, 0, 3}), empty({0}), empty({0})}, 18, [](ir::Node* n) { n->set_attr_int("num_groups", 1); }, {H, 0, 3}, 1},
      {"LRN", {empty({H, 0, 2})}, 13, [](ir::Node* n) { n->set_attr_int("size", 1); }, {H, 0, 2}, 1},
      {"Col2Im", {empty({H, 0, 1}), I64({1}), I64({1})}, 18, nullptr, {H, 0, 1}, 1},
  };
  for (const Case& c : cases) {
    INFO(c.op);
    std::vector<bool> constant(c.ins.size(), true);
    constant[0] = false;
    OneNode n(c.op, c.ins, c.n_out, constant);
    if (c.attrs) c.attrs(n.node);
    auto y = n.Run(c.opset);
    REQUIRE(y.ok());
    CHECK((*y)[0].shape() == c.out);
  }
}

TEST_CASE("scratch sized from values or from the dims of an empty tensor goes through the memory budget") {
  // std::vectors sized from [2^40, 1] (the reduction of an empty [2^40, 0]) or one sequence item
  // per index of a 2^40 axis threw std::bad_alloc (libFuzzer: out-of-memory) before any check.
  const int64_t H = int64_t{1} << 40;
  auto empty = [](ir::Shape s, ir::DType d = ir::DType::Float32) { return ir::Tensor(d, std::move(s)); };
  struct Case { const char* op; std::vector<ir::Tensor> ins; int64_t opset; const char* says; };
  const std::vector<Case> over = {
      {"ReduceSum", {empty({H, 0}), I64({1})}, 13, "ReduceSum: the accumulators: 1099511627776 items"},
      {"SplitToSequence", {empty({H, 0})}, 13, "SplitToSequence: the items"},
      {"Unique", {empty({0, H})}, 11, "Unique: the slices"},
  };
  for (const Case& c : over) {
    INFO(c.op);
    OneNode n(c.op, c.ins, 1, {false, true});
    if (std::string(c.op) == "Unique") n.node->set_attr_int("axis", 1);
    auto y = n.Run(c.opset);
    REQUIRE(!y.ok());
    INFO((y.status().message()));
    CHECK(y.status().message().find(c.says) != std::string::npos);
    CHECK(y.status().message().find("memory budget") != std::string::npos);
  }
  // Empty results: no scratch, no loop over the 2^40 outer items.
  OneNode mm("MatMul", {empty({H, 0, 3}, ir::DType::Int32), empty({3, 2}, ir::DType::Int32)}, 1, {false, true});
  auto y = mm.Run(13);
  REQUIRE(y.ok());
  CHECK((*y)[0].shape() == ir::Shape{H, 0, 2});
  OneNode nms("NonMaxSuppression", {empty({H, 0, 4}), empty({H, 1, 0}), I64({5})}, 1, {false, true, true});
  auto sel = nms.Run(11);
  REQUIRE(sel.ok());
  CHECK((*sel)[0].shape() == ir::Shape{0, 3});
}

TEST_CASE("pooling pads at least the kernel are an error (as ONNX Runtime), not 2^21 windows of padding") {
  // onnx_run_fuzzer (timeout under ASan): AveragePool, kernel 5x5, pads [2, 2, 2, 2^21 - 1].
  for (const char* op : {"AveragePool", "MaxPool", "LpPool"}) {
    INFO(op);
    OneNode n(op, {RandomTensor({1, 1, 5, 5}, 1)}, 1);
    n.node->set_attr_ints("kernel_shape", {5, 5});
    n.node->set_attr_ints("pads", {2, 2, 2, 2097151});
    auto y = n.Run(11);
    REQUIRE(!y.ok());
    CHECK(y.status().message().find("must be smaller than the kernel 5") != std::string::npos);
    n.node->set_attr_ints("pads", {2, 2, 2, 4});
    CHECK(n.Run(11).ok());
  }
}
