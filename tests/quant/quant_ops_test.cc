// Quantized operators: the ONNX conformance cases for them (external reference), and one-node
// graphs against plain loops written here from the ONNX operator definitions (broadcast batches,
// per-row / per-column zero points, grouped/strided/padded/dilated ConvInteger, constant
// weights packed at plan time vs weights fed at run time).
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "ir/graph.h"
#include "onnx/onnx_io.h"
#include "reference.h"
#include "runtime/session.h"

using asrc::ir::DType;
using asrc::ir::Shape;
using asrc::ir::Tensor;
namespace fs = std::filesystem;
namespace rt = asrc::runtime;

namespace {

// ---------------------------------------------------------------------------------------------
// ONNX conformance data.

const std::string kConformanceRoot = asrc::test::OnnxNodeTests();

bool Close(const Tensor& got, const Tensor& want, std::string* why) {
  if (got.dtype() != want.dtype() || got.shape() != want.shape()) {
    *why = std::string("dtype/shape ") + asrc::ir::DTypeName(got.dtype()) +
           asrc::ir::ShapeStr(got.shape()) + " vs " + asrc::ir::DTypeName(want.dtype()) +
           asrc::ir::ShapeStr(want.shape());
    return false;
  }
  if (got.dtype() == DType::Float32) {
    for (int64_t i = 0; i < got.numel(); ++i) {
      float a = got.data<float>()[i], b = want.data<float>()[i];
      if (!(std::fabs(a - b) <= 1e-5 + 1e-3 * std::fabs(b))) {
        *why = "element " + std::to_string(i) + ": " + std::to_string(a) + " vs " +
               std::to_string(b);
        return false;
      }
    }
    return true;
  }
  if (std::memcmp(got.raw(), want.raw(), got.nbytes()) != 0) {
    *why = "integer contents differ";
    return false;
  }
  return true;
}

}  // namespace

TEST_CASE("quantized operators pass the ONNX conformance cases") {
  const char* cases[] = {
      "test_quantizelinear", "test_quantizelinear_axis", "test_dequantizelinear",
      "test_dequantizelinear_axis", "test_dynamicquantizelinear",
      "test_dynamicquantizelinear_max_adjusted", "test_dynamicquantizelinear_min_adjusted",
      "test_matmulinteger", "test_qlinearmatmul_2D", "test_qlinearmatmul_3D",
      "test_basic_convinteger", "test_convinteger_with_padding",
      "test_convinteger_without_padding"};
  if (!asrc::test::HaveReference(asrc::test::OnnxTestdataAvailable(), asrc::test::OnnxTestdataWhat())) return;
  int run = 0, total = 0;
  for (const char* name : cases) {
    fs::path dir = fs::path(kConformanceRoot) / name;
    if (!fs::exists(dir / "model.onnx")) continue;
    ++total;
    INFO(name);
    auto file = asrc::onnx_io::LoadGraphFile((dir / "model.onnx").string());
    REQUIRE_MESSAGE(file.ok(), file.status().message());
    auto session = rt::Session::Create(*file->graph, file->opset(""));
    REQUIRE_MESSAGE(session.ok(), session.status().message());
    for (const auto& set : fs::directory_iterator(dir)) {
      if (!set.is_directory()) continue;
      std::vector<std::pair<std::string, Tensor>> feeds;
      const auto& names = (*session)->input_names();
      for (size_t i = 0; i < names.size(); ++i) {
        auto t = asrc::onnx_io::LoadTensorFile(
            (set.path() / ("input_" + std::to_string(i) + ".pb")).string());
        REQUIRE_MESSAGE(t.ok(), t.status().message());
        feeds.emplace_back(names[i], std::move(t.value()));
      }
      auto outs = (*session)->Run(feeds);
      REQUIRE_MESSAGE(outs.ok(), outs.status().message());
      for (size_t i = 0; i < outs->size(); ++i) {
        auto want = asrc::onnx_io::LoadTensorFile(
            (set.path() / ("output_" + std::to_string(i) + ".pb")).string());
        REQUIRE(want.ok());
        std::string why;
        CHECK_MESSAGE(Close((*outs)[i], *want, &why), name << " output " << i << ": " << why);
      }
    }
    ++run;
  }
  MESSAGE("quantized conformance cases run: " << run << " of " << total);
  CHECK(total >= 10);
  CHECK(run == total);
}

namespace {

// ---------------------------------------------------------------------------------------------
// One-node graphs.

struct In {
  Tensor t;
  bool constant = false;  // initializer (plan-time packing) vs fed at run time
  bool omitted = false;
};

std::vector<Tensor> RunOne(const std::string& op, std::vector<In> ins, int n_out,
                           const std::function<void(asrc::ir::Node*)>& attrs = {},
                           const std::string& domain = "", int threads = 1,
                           std::string* error = nullptr) {
  asrc::ir::Graph g("t");
  std::vector<asrc::ir::Value*> vals;
  std::vector<std::pair<std::string, Tensor>> feeds;
  for (size_t i = 0; i < ins.size(); ++i) {
    std::string name = "in" + std::to_string(i);
    if (ins[i].omitted) {
      vals.push_back(nullptr);
    } else if (ins[i].constant) {
      vals.push_back(g.AddInitializer(name, ins[i].t));
    } else {
      auto* v = g.AddValue(name);
      v->type.has_type = true;
      v->type.dtype = ins[i].t.dtype();
      g.inputs.push_back(v);
      vals.push_back(v);
      feeds.emplace_back(name, ins[i].t);
    }
  }
  std::vector<std::string> outs;
  for (int i = 0; i < n_out; ++i) outs.push_back("out" + std::to_string(i));
  auto* node = g.AddNode(op, vals, outs, "n0", domain);
  if (attrs) attrs(node);
  for (auto* o : node->outputs) g.outputs.push_back(o);
  rt::SessionOptions opt;
  opt.threads = threads;
  auto s = rt::Session::Create(g, domain.empty() ? 17 : 1, opt);
  if (!s.ok()) {
    if (error) *error = s.status().message();
    else FAIL(s.status().message());
    return {};
  }
  auto r = (*s)->Run(feeds);
  if (!r.ok()) {
    if (error) *error = r.status().message();
    else FAIL(r.status().message());
    return {};
  }
  return std::move(r.value());
}

template <class T>
Tensor Rand(DType dt, Shape shape, std::mt19937& rng, int lo, int hi) {
  Tensor t(dt, shape);
  std::uniform_int_distribution<int> u(lo, hi);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<T>()[i] = static_cast<T>(u(rng));
  return t;
}

int32_t At8(const Tensor& t, int64_t i) {
  return t.dtype() == DType::Int8 ? t.data<int8_t>()[i] : t.data<uint8_t>()[i];
}

}  // namespace

TEST_CASE("MatMulInteger: broadcast batches, per-row and per-column zero points") {
  std::mt19937 rng(5);
  // A [2,1,5,7] (uint8, per-row zp [5]) x B [3,7,9] (int8, per-column zp [9]) -> [2,3,5,9].
  Tensor a = Rand<uint8_t>(DType::Uint8, {2, 1, 5, 7}, rng, 0, 255);
  Tensor b = Rand<int8_t>(DType::Int8, {3, 7, 9}, rng, -128, 127);
  Tensor azp = Rand<uint8_t>(DType::Uint8, {5}, rng, 0, 255);
  Tensor bzp = Rand<int8_t>(DType::Int8, {9}, rng, -128, 127);
  for (bool constant : {false, true})
    for (int threads : {1, 2}) {
      auto out = RunOne("MatMulInteger", {{a}, {b, constant}, {azp}, {bzp, constant}}, 1, {}, "",
                        threads);
      REQUIRE(out.size() == 1);
      REQUIRE(out[0].shape() == Shape{2, 3, 5, 9});
      REQUIRE(out[0].dtype() == DType::Int32);
      for (int i = 0; i < 2; ++i)
        for (int j = 0; j < 3; ++j)
          for (int m = 0; m < 5; ++m)
            for (int n = 0; n < 9; ++n) {
              int32_t acc = 0;
              for (int k = 0; k < 7; ++k)
                acc += (At8(a, (i * 5 + m) * 7 + k) - At8(azp, m)) *
                       (At8(b, (j * 7 + k) * 9 + n) - At8(bzp, n));
              REQUIRE(out[0].data<int32_t>()[((i * 3 + j) * 5 + m) * 9 + n] == acc);
            }
    }
}

TEST_CASE("MatMulInteger: [1,T,K] x constant [K,N] (the quantized-linear form), 1-D operands") {
  std::mt19937 rng(6);
  Tensor a = Rand<uint8_t>(DType::Uint8, {1, 75, 144}, rng, 0, 255);
  Tensor b = Rand<int8_t>(DType::Int8, {144, 40}, rng, -128, 127);
  Tensor azp = Rand<uint8_t>(DType::Uint8, {}, rng, 0, 255);
  auto out = RunOne("MatMulInteger", {{a}, {b, true}, {azp}}, 1);
  REQUIRE(out[0].shape() == Shape{1, 75, 40});
  for (int m = 0; m < 75; ++m)
    for (int n = 0; n < 40; ++n) {
      int32_t acc = 0;
      for (int k = 0; k < 144; ++k) acc += (At8(a, m * 144 + k) - At8(azp, 0)) * At8(b, k * 40 + n);
      REQUIRE(out[0].data<int32_t>()[m * 40 + n] == acc);
    }
  // 1-D x 2-D and 2-D x 1-D drop the promoted dimension, as numpy's matmul.
  Tensor v = Rand<int8_t>(DType::Int8, {144}, rng, -128, 127);
  Tensor a2 = Rand<int8_t>(DType::Int8, {3, 144}, rng, -128, 127);
  auto o1 = RunOne("MatMulInteger", {{v}, {b}}, 1);
  CHECK(o1[0].shape() == Shape{40});
  auto o2 = RunOne("MatMulInteger", {{a2}, {v}}, 1);
  CHECK(o2[0].shape() == Shape{3});
  int32_t acc = 0;
  for (int k = 0; k < 144; ++k) acc += At8(a2, 144 + k) * At8(v, k);
  CHECK(o2[0].data<int32_t>()[1] == acc);
}

TEST_CASE("MatMulInteger rejects bad inputs with an error, not a crash") {
  std::string err;
  Tensor af(DType::Float32, {2, 3});
  Tensor b(DType::Int8, {3, 4});
  RunOne("MatMulInteger", {{af}, {b}}, 1, {}, "", 1, &err);
  CHECK(err.find("MatMulInteger") != std::string::npos);
  err.clear();
  Tensor a(DType::Uint8, {2, 5});
  RunOne("MatMulInteger", {{a}, {b}}, 1, {}, "", 1, &err);
  CHECK(err.find("inner dimensions") != std::string::npos);
}

TEST_CASE("QuantizeLinear / DequantizeLinear per axis follow the ONNX formulas") {
  std::mt19937 rng(8);
  std::normal_distribution<float> nd(0.f, 3.f);
  Tensor x(DType::Float32, {2, 3, 4});
  for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = nd(rng);
  x.data<float>()[0] = 2.5f * 0.5f;  // exact tie: rounds half to even
  Tensor scale = Tensor::FromVector<float>(DType::Float32, {3}, {0.5f, 0.02f, 1.5f});
  Tensor zp = Tensor::FromVector<int8_t>(DType::Int8, {3}, {0, -10, 100});
  auto q = RunOne("QuantizeLinear", {{x}, {scale}, {zp}}, 1, [](asrc::ir::Node* n) {
    n->set_attr_int("axis", 1);
  });
  REQUIRE(q[0].dtype() == DType::Int8);
  for (int64_t i = 0; i < x.numel(); ++i) {
    int c = static_cast<int>((i / 4) % 3);
    float v = std::nearbyint(x.data<float>()[i] / scale.data<float>()[c]) + zp.data<int8_t>()[c];
    v = std::min(127.f, std::max(-128.f, v));
    REQUIRE(q[0].data<int8_t>()[i] == static_cast<int8_t>(v));
  }
  CHECK(q[0].data<int8_t>()[0] == 2);
  auto d = RunOne("DequantizeLinear", {{q[0]}, {scale}, {zp}}, 1, [](asrc::ir::Node* n) {
    n->set_attr_int("axis", -2);
  });
  for (int64_t i = 0; i < x.numel(); ++i) {
    int c = static_cast<int>((i / 4) % 3);
    float want = static_cast<float>(q[0].data<int8_t>()[i] - zp.data<int8_t>()[c]) *
                 scale.data<float>()[c];
    REQUIRE(d[0].data<float>()[i] == want);
  }
  // int32 input without a zero point (bias dequantization).
  Tensor xi = Tensor::FromVector<int32_t>(DType::Int32, {3}, {-70000, 0, 123456});
  auto di = RunOne("DequantizeLinear", {{xi}, {Tensor::Scalar(0.25f)}}, 1);
  CHECK(di[0].data<float>()[0] == -17500.f);
  CHECK(di[0].data<float>()[2] == 30864.f);
  std::string err;
  Tensor bad_scale = Tensor::FromVector<float>(DType::Float32, {2}, {1.f, 2.f});
  RunOne("QuantizeLinear", {{x}, {bad_scale}}, 1, {}, "", 1, &err);
  CHECK(err.find("per-axis") != std::string::npos);
}

TEST_CASE("DynamicQuantizeLinear: range includes zero, empty range gives scale 1") {
  std::mt19937 rng(9);
  std::uniform_real_distribution<float> u(0.5f, 4.f);
  Tensor x(DType::Float32, {3, 37});  // not a multiple of the vector width
  for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = u(rng);
  auto o = RunOne("DynamicQuantizeLinear", {{x}}, 3);
  float mx = 0.f;
  for (int64_t i = 0; i < x.numel(); ++i) mx = std::max(mx, x.data<float>()[i]);
  float scale = mx / 255.f;  // min is 0 because the range must include it
  CHECK(o[1].data<float>()[0] == scale);
  CHECK(o[2].data<uint8_t>()[0] == 0);
  for (int64_t i = 0; i < x.numel(); ++i) {
    float v = std::min(255.f, std::max(0.f, std::nearbyint(x.data<float>()[i] / scale)));
    REQUIRE(o[0].data<uint8_t>()[i] == static_cast<uint8_t>(v));
  }
  // Large enough that 2 threads split the min/max and the rounding: the same as the scalar rule,
  // with the extremes in different halves and a negative minimum.
  Tensor big(DType::Float32, {3, 20001});
  std::uniform_real_distribution<float> v(-1.f, 1.f);
  for (int64_t i = 0; i < big.numel(); ++i) big.data<float>()[i] = v(rng);
  big.data<float>()[17] = -3.f;
  big.data<float>()[big.numel() - 5] = 5.f;
  const float bs = 8.f / 255.f;
  const float bz = std::nearbyint(3.f / bs);
  for (int threads : {1, 2}) {
    auto ob = RunOne("DynamicQuantizeLinear", {{big}}, 3, {}, "", threads);
    CHECK(ob[1].data<float>()[0] == bs);
    CHECK(ob[2].data<uint8_t>()[0] == static_cast<uint8_t>(bz));
    for (int64_t i = 0; i < big.numel(); ++i) {
      float q = std::min(255.f, std::max(0.f, std::nearbyint(big.data<float>()[i] / bs) + bz));
      REQUIRE(ob[0].data<uint8_t>()[i] == static_cast<uint8_t>(q));
    }
  }
  Tensor z(DType::Float32, {5});
  auto oz = RunOne("DynamicQuantizeLinear", {{z}}, 3);
  CHECK(oz[1].data<float>()[0] == 1.f);
  CHECK(oz[2].data<uint8_t>()[0] == 0);
}

TEST_CASE("QLinearMatMul and DynamicQuantizeMatMul against loops") {
  std::mt19937 rng(10);
  Tensor a = Rand<uint8_t>(DType::Uint8, {4, 33}, rng, 0, 255);
  Tensor b = Rand<int8_t>(DType::Int8, {33, 18}, rng, -128, 127);
  Tensor azp = Tensor::FromVector<uint8_t>(DType::Uint8, {}, {113});
  Tensor bzp = Tensor::FromVector<int8_t>(DType::Int8, {}, {-3});
  Tensor yzp = Tensor::FromVector<uint8_t>(DType::Uint8, {}, {120});
  const float as = 0.013f, bs = 0.007f, ys = 0.05f;
  auto o = RunOne("QLinearMatMul", {{a}, {Tensor::Scalar(as)}, {azp}, {b, true},
                                    {Tensor::Scalar(bs)}, {bzp}, {Tensor::Scalar(ys)}, {yzp}},
                  1);
  REQUIRE(o[0].dtype() == DType::Uint8);
  const float mult = as * bs / ys;
  for (int m = 0; m < 4; ++m)
    for (int n = 0; n < 18; ++n) {
      int32_t acc = 0;
      for (int k = 0; k < 33; ++k) acc += (At8(a, m * 33 + k) - 113) * (At8(b, k * 18 + n) + 3);
      double v = std::nearbyint(static_cast<double>(acc) * mult) + 120;
      v = std::min(255.0, std::max(0.0, v));
      REQUIRE(o[0].data<uint8_t>()[m * 18 + n] == static_cast<uint8_t>(v));
    }

  // DynamicQuantizeMatMul == DynamicQuantizeLinear -> MatMulInteger -> scale (+ bias).
  std::normal_distribution<float> nd(0.f, 1.f);
  Tensor x(DType::Float32, {2, 6, 33});
  for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = nd(rng);
  Tensor bsc(DType::Float32, {18});
  Tensor bias(DType::Float32, {18});
  for (int i = 0; i < 18; ++i) {
    bsc.data<float>()[i] = 0.01f * (i + 1);
    bias.data<float>()[i] = nd(rng);
  }
  auto y = RunOne("DynamicQuantizeMatMul", {{x}, {b, true}, {bsc, true}, {bzp}, {bias, true}}, 1,
                  {}, "com.microsoft");
  auto q = RunOne("DynamicQuantizeLinear", {{x}}, 3);
  REQUIRE(y[0].shape() == Shape{2, 6, 18});
  for (int r = 0; r < 12; ++r)
    for (int n = 0; n < 18; ++n) {
      int32_t acc = 0;
      for (int k = 0; k < 33; ++k)
        acc += (q[0].data<uint8_t>()[r * 33 + k] - q[2].data<uint8_t>()[0]) *
               (At8(b, k * 18 + n) + 3);
      float want = static_cast<float>(acc) * (q[1].data<float>()[0] * bsc.data<float>()[n]) +
                   bias.data<float>()[n];
      REQUIRE(y[0].data<float>()[r * 18 + n] == doctest::Approx(want).epsilon(1e-6));
    }
}

namespace {

// Direct-loop ConvInteger reference (NCHW, explicit pads).
std::vector<int32_t> ConvRef(const Tensor& x, const Tensor& w, int32_t xz,
                             const std::vector<int32_t>& wz, int64_t group, int64_t sh,
                             int64_t sw, int64_t dh, int64_t dw, int64_t pt, int64_t pl,
                             int64_t pb, int64_t pr, Shape* out_shape) {
  bool is1d = x.rank() == 3;
  int64_t N = x.dim(0), C = x.dim(1), H = is1d ? 1 : x.dim(2), W = x.dim(-1);
  int64_t M = w.dim(0), Cg = w.dim(1), KH = is1d ? 1 : w.dim(2), KW = w.dim(-1);
  int64_t OH = (H + pt + pb - ((KH - 1) * dh + 1)) / sh + 1;
  int64_t OW = (W + pl + pr - ((KW - 1) * dw + 1)) / sw + 1;
  *out_shape = is1d ? Shape{N, M, OW} : Shape{N, M, OH, OW};
  std::vector<int32_t> y(N * M * OH * OW);
  int64_t Mg = M / group;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t m = 0; m < M; ++m)
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) {
          int32_t acc = 0;
          int64_t g = m / Mg;
          for (int64_t c = 0; c < Cg; ++c)
            for (int64_t kh = 0; kh < KH; ++kh)
              for (int64_t kw = 0; kw < KW; ++kw) {
                int64_t ih = oh * sh - pt + kh * dh, iw = ow * sw - pl + kw * dw;
                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                int32_t xv = At8(x, ((n * C + g * Cg + c) * H + ih) * W + iw) - xz;
                int32_t wv = At8(w, ((m * Cg + c) * KH + kh) * KW + kw) -
                             wz[wz.size() == 1 ? 0 : m];
                acc += xv * wv;
              }
          y[((n * M + m) * OH + oh) * OW + ow] = acc;
        }
  return y;
}

}  // namespace

TEST_CASE("ConvInteger: 2-D grouped, strided, padded, dilated; 1-D; per-channel zero points") {
  std::mt19937 rng(12);
  struct Case {
    Shape x, w;
    int64_t group, sh, sw, dh, dw, pt, pl, pb, pr;
    bool per_channel, constant;
  };
  const Case cases[] = {
      {{1, 4, 9, 11}, {6, 2, 3, 3}, 2, 2, 1, 1, 2, 1, 0, 2, 1, true, true},
      {{2, 3, 7, 7}, {5, 3, 3, 3}, 1, 1, 1, 1, 1, 1, 1, 1, 1, false, false},
      {{1, 8, 5, 6}, {8, 1, 3, 3}, 8, 1, 1, 1, 1, 1, 1, 1, 1, true, false},  // depthwise
      {{1, 4, 20}, {4, 1, 5}, 4, 1, 1, 1, 1, 0, 2, 0, 2, true, true},       // 1-D depthwise
      {{1, 3, 17}, {7, 3, 3}, 1, 1, 2, 1, 1, 0, 1, 0, 0, false, true},      // 1-D strided
      // Large enough that 2 threads split the channels-last copy, the im2row rows, the product
      // and the output transpose.
      {{2, 16, 40, 30}, {24, 16, 3, 3}, 1, 2, 2, 1, 1, 1, 1, 1, 0, true, true},
  };
  for (const Case& c : cases)
  for (int threads : {1, 2}) {
    Tensor x = Rand<uint8_t>(DType::Uint8, c.x, rng, 0, 255);
    Tensor w = Rand<int8_t>(DType::Int8, c.w, rng, -128, 127);
    int32_t xz = 37;
    std::vector<int32_t> wz(c.per_channel ? c.w[0] : 1);
    Tensor wzt(DType::Int8, c.per_channel ? Shape{c.w[0]} : Shape{});
    for (size_t i = 0; i < wz.size(); ++i) {
      wz[i] = static_cast<int32_t>(i % 5) - 2;
      wzt.data<int8_t>()[i] = static_cast<int8_t>(wz[i]);
    }
    Tensor xzt = Tensor::FromVector<uint8_t>(DType::Uint8, {}, {37});
    bool is1d = c.x.size() == 3;
    auto out = RunOne("ConvInteger", {{x}, {w, c.constant}, {xzt}, {wzt, c.constant}}, 1,
                      [&](asrc::ir::Node* n) {
                        n->set_attr_int("group", c.group);
                        if (is1d) {
                          n->set_attr_ints("strides", {c.sw});
                          n->set_attr_ints("dilations", {c.dw});
                          n->set_attr_ints("pads", {c.pl, c.pr});
                        } else {
                          n->set_attr_ints("strides", {c.sh, c.sw});
                          n->set_attr_ints("dilations", {c.dh, c.dw});
                          n->set_attr_ints("pads", {c.pt, c.pl, c.pb, c.pr});
                        }
                      },
                      "", threads);
    Shape want_shape;
    auto want = ConvRef(x, w, xz, wz, c.group, is1d ? 1 : c.sh, c.sw, is1d ? 1 : c.dh, c.dw,
                        is1d ? 0 : c.pt, c.pl, is1d ? 0 : c.pb, c.pr, &want_shape);
    INFO("x " << asrc::ir::ShapeStr(c.x) << " w " << asrc::ir::ShapeStr(c.w) << " threads " << threads);
    REQUIRE(out[0].shape() == want_shape);
    CHECK(std::vector<int32_t>(out[0].data<int32_t>(), out[0].data<int32_t>() + out[0].numel()) ==
          want);
  }
}
