// Kernels for the wider ONNX op set where the ONNX conformance data (tests/conformance) has no
// case: the speech front end checked against NumPy's FFT (values printed by numpy.fft and pasted
// here, with the command beside them), activations against PyTorch, normalizations and pools
// against other kernels or plain loops, and the errors a user sees for unsupported ops/dtypes.
#include <doctest/doctest.h>

#include <cmath>
#include <complex>
#include <filesystem>
#include <memory>

#include "onnx/onnx_io.h"
#include "runtime/kernel.h"
#include "test_util.h"

using namespace asrc;
using namespace asrc::testing;  // test_util.h: tensors, one-node graphs, comparisons

namespace {

ir::Tensor F32(std::vector<float> v, ir::Shape shape) { return ir::Tensor::FromVector(ir::DType::Float32, shape, v); }

// Checks a [..., 2] complex output against expected complex values.
void CheckComplex(const ir::Tensor& y, const std::vector<std::complex<double>>& want, double tol = 1e-5) {
  REQUIRE(y.numel() == static_cast<int64_t>(2 * want.size()));
  for (size_t i = 0; i < want.size(); ++i) {
    CHECK(y.data<float>()[2 * i] == doctest::Approx(want[i].real()).epsilon(tol).scale(1.0));
    CHECK(y.data<float>()[2 * i + 1] == doctest::Approx(want[i].imag()).epsilon(tol).scale(1.0));
  }
}

const std::vector<float> kSignal7 = {0.5f, -1.25f, 2.0f, 0.75f, -0.5f, 1.5f, -2.0f};

}  // namespace

TEST_CASE("DFT matches numpy.fft: odd length, zero-padded onesided, inverse, opset-20 axis input") {
  // numpy: x = [0.5, -1.25, 2.0, 0.75, -0.5, 1.5, -2.0]; np.fft.fft(x)
  OneNode full("DFT", {F32(kSignal7, {1, 7, 1})}, 1);
  auto a = full.Run(17);
  REQUIRE(a.ok());
  CheckComplex((*a)[0], {{1.0, 0.0}, {-2.5304073, -1.6161922}, {-1.7743256, 0.4630353}, {5.5547329, -1.153157},
                         {5.5547329, 1.153157}, {-1.7743256, -0.4630353}, {-2.5304073, 1.6161922}});
  // np.fft.rfft(x, 10): dft_length pads with zeros; onesided keeps 10 / 2 + 1 bins.
  OneNode half("DFT", {F32(kSignal7, {1, 7, 1}), I64({10})}, 1);
  half.node->set_attr_int("onesided", 1);
  auto b = half.Run(17);
  REQUIRE(b.ok());
  CheckComplex((*b)[0], {{1.0, 0.0}, {0.3975425, -2.7623517}, {-1.3836105, 1.8806739}, {-2.3975425, 1.3786453},
                         {5.8836105, 2.8052301}, {-1.0, 0.0}});
  // np.fft.ifft(x[:6] + 1j * [1, 0, -1, 0.5, 2, -0.25])
  std::vector<float> z = {0.5f, 1.f, -1.25f, 0.f, 2.f, -1.f, 0.75f, 0.5f, -0.5f, 2.f, 1.5f, -0.25f};
  OneNode inv("DFT", {F32(z, {1, 6, 2})}, 1);
  inv.node->set_attr_int("inverse", 1);
  auto c = inv.Run(17);
  REQUIRE(c.ok());
  CheckComplex((*c)[0], {{0.5, 0.375}, {0.251095, -0.0569177}, {-0.4065971, -0.5702722}, {0.1666667, 0.2916667},
                         {0.5315971, 0.9452722}, {-0.5427616, 0.0152511}});
  // Opset 20: the axis is input 2 (here the signal axis of a [7, 1, 1] tensor, counted from 0).
  OneNode ax("DFT", {F32(kSignal7, {7, 1, 1}), ir::Tensor(), I64({0})}, 1);
  auto d = ax.Run(20);
  REQUIRE(d.ok());
  CHECK((*d)[0].shape() == ir::Shape{7, 1, 2});
  CHECK((*d)[0].data<float>()[6] == doctest::Approx(5.5547329).epsilon(1e-5));
}

TEST_CASE("STFT with a periodic Hann window matches numpy.fft.rfft of the windowed frames") {
  // numpy: s = [0.1*i*i - 0.7*i + sin(i) for i in range(12)]; w = np.hanning(7)[:6]
  //        [np.fft.rfft(s[f*3:f*3+6] * w) for f in range(3)]
  std::vector<float> s(12);
  for (int i = 0; i < 12; ++i) s[i] = static_cast<float>(0.1 * i * i - 0.7 * i + std::sin(i));
  OneNode win("HannWindow", {I64({6})}, 1);
  auto w = win.Run(17);
  REQUIRE(w.ok());
  std::vector<float> hann = {0.f, 0.25f, 0.75f, 1.f, 0.75f, 0.25f};
  for (int i = 0; i < 6; ++i) CHECK((*w)[0].data<float>()[i] == doctest::Approx(hann[i]).epsilon(1e-6));
  OneNode stft("STFT", {F32(s, {1, 12, 1}), I64({3}), (*w)[0]}, 1);
  auto y = stft.Run(17);
  REQUIRE(y.ok());
  CHECK((*y)[0].shape() == ir::Shape{1, 3, 4, 2});
  CheckComplex((*y)[0], {{-3.0238721, 0}, {1.6120127, -1.688467}, {-0.0763839, 0.7356679}, {-0.0473855, 0},
                         {-1.8977298, 0}, {1.3467116, 2.5101515}, {-0.3702583, -0.8880164}, {-0.0551767, 0},
                         {6.4103704, 0}, {-3.2969954, 1.0268648}, {0.1129925, 0.1608991}, {-0.0423647, 0}}, 1e-4);
}

TEST_CASE("a front end inside the graph (Pad, HannWindow, STFT, mel MatMul, Log) matches torchaudio's MelSpectrogram") {
  // tests/fixtures/make_frontend.py: the waveform and PyTorch's log-mel features of it.
  std::filesystem::path root = std::filesystem::path(ASRC_SOURCE_DIR) / "tests/fixtures";
  auto gf = onnx_io::LoadGraphFile((root / "frontend_mel.onnx").string());
  REQUIRE(gf.ok());
  auto wav = onnx_io::LoadTensorFile((root / "data/frontend_mel/input_0.pb").string());
  auto want = onnx_io::LoadTensorFile((root / "data/frontend_mel/output_0.pb").string());
  REQUIRE((wav.ok() && want.ok()));
  auto s = runtime::Session::Create(*gf->graph, gf->opset(""));
  REQUIRE(s.ok());
  std::vector<ir::Tensor> out;
  REQUIRE((*s)->Run({*wav}, &out).ok());
  REQUIRE(out[0].shape() == want->shape());
  // Log-mel values: an absolute error of 1e-3 is a relative error of 0.1% in mel power.
  CHECK(MaxAbsDiff(out[0], *want) < 1e-3f);
}

TEST_CASE("BlackmanWindow symmetric matches numpy.blackman") {
  OneNode win("BlackmanWindow", {I64({8})}, 1);
  win.node->set_attr_int("periodic", 0);
  auto w = win.Run(17);
  REQUIRE(w.ok());
  // np.blackman(8)
  std::vector<double> want = {0, 0.090453424, 0.45918296, 0.92036362, 0.92036362, 0.45918296, 0.090453424, 0};
  for (int i = 0; i < 8; ++i) CHECK((*w)[0].data<float>()[i] == doctest::Approx(want[i]).scale(1.0).epsilon(1e-6));
}

TEST_CASE("Gelu (exact and tanh) and Mish match PyTorch") {
  ir::Tensor x = F32({-3.f, -1.f, -0.25f, 0.f, 0.5f, 2.f}, {6});
  // torch.nn.functional.gelu(x), gelu(x, approximate='tanh'), mish(x)
  std::vector<float> exact = {-0.0040499f, -0.1586553f, -0.1003234f, 0.f, 0.3457312f, 1.9545f};
  std::vector<float> tanh = {-0.0036374f, -0.158808f, -0.1003246f, 0.f, 0.345714f, 1.9545977f};
  std::vector<float> mish = {-0.1456475f, -0.3034014f, -0.129927f, 0.f, 0.3752452f, 1.943959f};
  OneNode g1("Gelu", {x}, 1), g2("Gelu", {x}, 1), m("Mish", {x}, 1);
  g2.node->set_attr_string("approximate", "tanh");
  auto y1 = g1.Run(20), y2 = g2.Run(20), y3 = m.Run(18);
  REQUIRE((y1.ok() && y2.ok() && y3.ok()));
  for (int i = 0; i < 6; ++i) {
    CHECK((*y1)[0].data<float>()[i] == doctest::Approx(exact[i]).epsilon(1e-5).scale(1.0));
    CHECK((*y2)[0].data<float>()[i] == doctest::Approx(tanh[i]).epsilon(1e-5).scale(1.0));
    CHECK((*y3)[0].data<float>()[i] == doctest::Approx(mish[i]).epsilon(1e-5).scale(1.0));
  }
}

TEST_CASE("GroupNormalization: one group per channel is InstanceNormalization; one group is LayerNorm over C,H,W") {
  ir::Tensor x = RandomTensor({2, 4, 3, 5}, 11);
  ir::Tensor scale = RandomTensor({4}, 12, 0.5f, 1.5f), bias = RandomTensor({4}, 13);
  OneNode gn("GroupNormalization", {x, scale, bias}, 1, {false, true, true});
  gn.node->set_attr_int("num_groups", 4);
  OneNode in("InstanceNormalization", {x, scale, bias}, 1, {false, true, true});
  auto a = gn.Run(21), b = in.Run(17);
  REQUIRE((a.ok() && b.ok()));
  CHECK(MaxAbsDiff((*a)[0], (*b)[0]) < 1e-5f);
  // One group, unit scale, zero bias: LayerNormalization over axes 1.. with unit scale.
  ir::Tensor ones = F32({1, 1, 1, 1}, {4}), zeros = F32({0, 0, 0, 0}, {4});
  OneNode g1("GroupNormalization", {x, ones, zeros}, 1, {false, true, true});
  g1.node->set_attr_int("num_groups", 1);
  ir::Tensor ln_scale(ir::DType::Float32, {4, 3, 5});
  for (int64_t i = 0; i < ln_scale.numel(); ++i) ln_scale.data<float>()[i] = 1.f;
  OneNode ln("LayerNormalization", {x, ln_scale}, 1, {false, true});
  ln.node->set_attr_int("axis", 1);
  auto c = g1.Run(21), d = ln.Run(17);
  REQUIRE((c.ok() && d.ok()));
  CHECK(MaxAbsDiff((*c)[0], (*d)[0]) < 1e-5f);
  // Per-group scale (opset 18 form): 2 groups, 2 values.
  OneNode g2("GroupNormalization", {x, F32({2.f, 3.f}, {2}), F32({0.f, 1.f}, {2})}, 1, {false, true, true});
  g2.node->set_attr_int("num_groups", 2);
  auto e = g2.Run(18);
  REQUIRE(e.ok());
  CHECK((*e)[0].shape() == x.shape());
}

TEST_CASE("LpNormalization and LpPool / GlobalLpPool against plain loops") {
  ir::Tensor x = RandomTensor({2, 3, 4}, 21);
  for (int p : {1, 2}) {
    OneNode n("LpNormalization", {x}, 1);
    n.node->set_attr_int("p", p);
    n.node->set_attr_int("axis", 1);
    auto y = n.Run();
    REQUIRE(y.ok());
    for (int64_t a = 0; a < 2; ++a)
      for (int64_t c = 0; c < 4; ++c) {
        double norm = 0;
        for (int64_t k = 0; k < 3; ++k) {
          double v = x.data<float>()[(a * 3 + k) * 4 + c];
          norm += p == 1 ? std::abs(v) : v * v;
        }
        if (p == 2) norm = std::sqrt(norm);
        for (int64_t k = 0; k < 3; ++k)
          CHECK((*y)[0].data<float>()[(a * 3 + k) * 4 + c] ==
                doctest::Approx(x.data<float>()[(a * 3 + k) * 4 + c] / norm).epsilon(1e-5));
      }
  }
  ir::Tensor img = RandomTensor({1, 2, 4, 4}, 22);
  OneNode lp("LpPool", {img}, 1);
  lp.node->set_attr_ints("kernel_shape", {2, 2});
  lp.node->set_attr_ints("strides", {2, 2});
  OneNode glp("GlobalLpPool", {img}, 1);
  auto a = lp.Run(), b = glp.Run();
  REQUIRE((a.ok() && b.ok()));
  CHECK((*a)[0].shape() == ir::Shape{1, 2, 2, 2});
  CHECK((*b)[0].shape() == ir::Shape{1, 2, 1, 1});
  for (int64_t c = 0; c < 2; ++c) {
    double all = 0;
    for (int64_t i = 0; i < 16; ++i) all += std::pow(img.data<float>()[c * 16 + i], 2);
    CHECK((*b)[0].data<float>()[c] == doctest::Approx(std::sqrt(all)).epsilon(1e-5));
    double win = 0;  // top-left 2x2 window
    for (int64_t i : {0, 1, 4, 5}) win += std::pow(img.data<float>()[c * 16 + i], 2);
    CHECK((*a)[0].data<float>()[c * 4] == doctest::Approx(std::sqrt(win)).epsilon(1e-5));
  }
}

TEST_CASE("Resize opset 18: axes with keep_aspect_ratio_policy not_larger") {
  OneNode n("Resize", {RandomTensor({1, 1, 4, 6}, 31), ir::Tensor(), ir::Tensor(), I64({2, 2})}, 1);
  n.node->set_attr_ints("axes", {2, 3});
  n.node->set_attr_string("keep_aspect_ratio_policy", "not_larger");
  auto y = n.Run(18);
  REQUIRE(y.ok());
  // scale = min(2/4, 2/6) = 1/3: 4 -> 1 and 6 -> 2.
  CHECK((*y)[0].shape() == ir::Shape{1, 1, 1, 2});
}

TEST_CASE("errors name the op, domain, opset, node and graph; dtype errors name the supported types") {
  OneNode n("NoSuchOp", {RandomTensor({2}, 1)}, 1);
  auto y = n.Run(17);
  REQUIRE(!y.ok());
  std::string m = y.status().message();
  CHECK(m.find("NoSuchOp") != std::string::npos);
  CHECK(m.find("opset 17") != std::string::npos);
  CHECK(m.find("'n0'") != std::string::npos);
  CHECK(m.find("'one'") != std::string::npos);
  OneNode g("Gelu", {I64({1, 2})}, 1);
  auto z = g.Run(20);
  REQUIRE(!z.ok());
  CHECK(z.status().message().find("int64") != std::string::npos);
  CHECK(z.status().message().find("float32") != std::string::npos);
  CHECK(z.status().message().find("Gelu") != std::string::npos);
}

TEST_CASE("bitwise ops on signed and unsigned integers; floats refused with the supported types") {
  ir::Tensor a = ir::Tensor::FromVector(ir::DType::Int32, {4}, std::vector<int32_t>{12, -1, 0, 5});
  ir::Tensor b = ir::Tensor::FromVector(ir::DType::Int32, {4}, std::vector<int32_t>{10, 7, -3, 5});
  std::vector<std::pair<const char*, std::vector<int32_t>>> cases = {
      {"BitwiseAnd", {8, 7, 0, 5}}, {"BitwiseOr", {14, -1, -3, 5}}, {"BitwiseXor", {6, -8, -3, 0}}};
  for (const auto& [op, want] : cases) {
    OneNode n(op, {a, b}, 1);
    auto y = n.Run(18);
    REQUIRE(y.ok());
    for (int i = 0; i < 4; ++i) CHECK((*y)[0].data<int32_t>()[i] == want[i]);
  }
  OneNode nt("BitwiseNot", {ir::Tensor::FromVector(ir::DType::Uint8, {2}, std::vector<uint8_t>{0, 0x0f})}, 1);
  auto y = nt.Run(18);
  REQUIRE(y.ok());
  CHECK((*y)[0].data<uint8_t>()[0] == 0xff);
  CHECK((*y)[0].data<uint8_t>()[1] == 0xf0);
  OneNode bad("BitwiseAnd", {RandomTensor({2}, 1), RandomTensor({2}, 2)}, 1);
  auto z = bad.Run(18);
  REQUIRE(!z.ok());
  CHECK(z.status().message().find("integers") != std::string::npos);
}

TEST_CASE("random ops: seeded sessions repeat, runs continue the sequence (never folded), moments fit") {
  auto make = [](float seed) {
    auto n = std::make_unique<OneNode>("RandomNormal", std::vector<ir::Tensor>{}, 1);
    n->node->set_attr_ints("shape", {4000});
    n->node->set_attr_float("mean", 2.f);
    n->node->set_attr_float("scale", 0.5f);
    n->node->set_attr_float("seed", seed);
    return n;
  };
  auto n1 = make(7.f), n2 = make(7.f);
  auto s1 = runtime::Session::Create(n1->g, 17), s2 = runtime::Session::Create(n2->g, 17);
  REQUIRE((s1.ok() && s2.ok()));
  std::vector<ir::Tensor> a, b, c;
  REQUIRE((*s1)->Run({}, &a).ok());
  REQUIRE((*s2)->Run({}, &b).ok());
  REQUIRE((*s1)->Run({}, &c).ok());
  CHECK(MaxAbsDiff(a[0], b[0]) == 0.f);  // same seed, same first draw
  CHECK(MaxAbsDiff(a[0], c[0]) > 0.f);   // a second run draws again
  double mean = 0, var = 0;
  for (int64_t i = 0; i < 4000; ++i) mean += a[0].data<float>()[i] / 4000.0;
  for (int64_t i = 0; i < 4000; ++i) var += std::pow(a[0].data<float>()[i] - mean, 2) / 4000.0;
  CHECK(mean == doctest::Approx(2.0).epsilon(0.02));
  CHECK(std::sqrt(var) == doctest::Approx(0.5).epsilon(0.05));
  // Bernoulli: p = 0 and p = 1 are certain; Multinomial with one dominant class picks it.
  OneNode bern("Bernoulli", {F32({0.f, 1.f, 0.f, 1.f}, {4})}, 1);
  auto y = bern.Run(17);
  REQUIRE(y.ok());
  for (int i = 0; i < 4; ++i) CHECK((*y)[0].data<float>()[i] == (i % 2 ? 1.f : 0.f));
  OneNode multi("Multinomial", {F32({0.f, 50.f, 0.f}, {1, 3})}, 1);
  multi.node->set_attr_int("sample_size", 5);
  auto m = multi.Run(17);
  REQUIRE(m.ok());
  CHECK((*m)[0].dtype() == ir::DType::Int32);
  for (int i = 0; i < 5; ++i) CHECK((*m)[0].data<int32_t>()[i] == 1);
}

TEST_CASE("Col2Im matches torch.nn.functional.fold; CenterCropPad crops and pads about the centre") {
  // torch: x = arange(64).reshape(1, 8, 8) * 0.5 - 3; fold(x, (3, 4), (2, 2), padding=(1, 0), stride=(1, 2))
  std::vector<float> xv(64);
  for (int i = 0; i < 64; ++i) xv[i] = i * 0.5f - 3.f;
  OneNode n("Col2Im", {F32(xv, {1, 8, 8}), I64({3, 4}), I64({2, 2})}, 1);
  n.node->set_attr_ints("pads", {1, 0, 1, 0});
  n.node->set_attr_ints("strides", {1, 2});
  auto y = n.Run(18);
  REQUIRE(y.ok());
  std::vector<float> want = {3, 11, 4, 12, 5, 13, 6, 14, 7, 15, 8, 16, 35, 43, 36, 44, 37, 45, 38, 46, 39, 47, 40, 48};
  REQUIRE((*y)[0].shape() == ir::Shape{1, 2, 3, 4});
  for (int i = 0; i < 24; ++i) CHECK((*y)[0].data<float>()[i] == want[i]);
  // [3, 5] -> [5, 3]: rows padded 1 before and 1 after; columns 1..3 kept.
  std::vector<float> cv(15);
  for (int i = 0; i < 15; ++i) cv[i] = static_cast<float>(i + 1);
  OneNode cc("CenterCropPad", {F32(cv, {3, 5}), I64({5, 3})}, 1);
  auto z = cc.Run(18);
  REQUIRE(z.ok());
  std::vector<float> cw = {0, 0, 0, 2, 3, 4, 7, 8, 9, 12, 13, 14, 0, 0, 0};
  REQUIRE((*z)[0].shape() == ir::Shape{5, 3});
  for (int i = 0; i < 15; ++i) CHECK((*z)[0].data<float>()[i] == cw[i]);
}

TEST_CASE("MaxRoiPool: whole-pixel boxes split into floor/ceil bins") {
  std::vector<float> img(16);
  for (int i = 0; i < 16; ++i) img[i] = static_cast<float>(i);  // v[h][w] = 4h + w
  OneNode n("MaxRoiPool", {F32(img, {1, 1, 4, 4}), F32({0, 0, 0, 3, 3, 0, 1, 1, 2, 2}, {2, 5})}, 1);
  n.node->set_attr_ints("pooled_shape", {2, 2});
  auto y = n.Run(17);
  REQUIRE(y.ok());
  // Box 1 (4x4): quadrant maxima. Box 2 (rows/cols 1..2, 2x2 bins of one pixel each).
  std::vector<float> want = {5, 7, 13, 15, 5, 6, 9, 10};
  for (int i = 0; i < 8; ++i) CHECK((*y)[0].data<float>()[i] == want[i]);
}

TEST_CASE("Concat skips a legacy empty 1-D input beside rank-3 ones (torch.cat in torchaudio's Emformer)") {
  ir::Tensor a = RandomTensor({2, 1, 3}, 41), b = RandomTensor({1, 1, 3}, 42);
  ir::Tensor empty(ir::DType::Float32, {0});
  OneNode n("Concat", {empty, a, b}, 1);
  n.node->set_attr_int("axis", 0);
  auto y = n.Run(17);
  REQUIRE(y.ok());
  REQUIRE((*y)[0].shape() == ir::Shape{3, 1, 3});
  for (int i = 0; i < 6; ++i) CHECK((*y)[0].data<float>()[i] == a.data<float>()[i]);
  for (int i = 0; i < 3; ++i) CHECK((*y)[0].data<float>()[6 + i] == b.data<float>()[i]);
  OneNode bad("Concat", {RandomTensor({2, 3}, 43), a}, 1);  // non-empty ranks still must agree
  bad.node->set_attr_int("axis", 0);
  CHECK(!bad.Run(17).ok());
}

TEST_CASE("Cast to and from bfloat16 (round to nearest even) and string (shortest round-trip text)") {
  OneNode to_bf("Cast", {F32({0.48033667f, 1.f, -2.5f}, {3})}, 1);
  to_bf.node->set_attr_int("to", static_cast<int64_t>(ir::DType::BFloat16));
  auto b = to_bf.Run(17);
  REQUIRE(b.ok());
  REQUIRE((*b)[0].dtype() == ir::DType::BFloat16);
  // 0x3EF5EEB0: the dropped half 0xEEB0 is above 0x8000, so it rounds up to 0x3EF6.
  CHECK((*b)[0].data<uint16_t>()[0] == 0x3EF6);
  CHECK((*b)[0].data<uint16_t>()[1] == 0x3F80);
  CHECK((*b)[0].data<uint16_t>()[2] == 0xC020);
  OneNode back("Cast", {(*b)[0]}, 1);
  back.node->set_attr_int("to", static_cast<int64_t>(ir::DType::Float32));
  auto f = back.Run(17);
  REQUIRE(f.ok());
  CHECK((*f)[0].data<float>()[0] == 0.48046875f);  // 0x3EF60000
  OneNode to_s("Cast", {F32({1.f / 3.f, 100.f, -0.f}, {3})}, 1);
  to_s.node->set_attr_int("to", static_cast<int64_t>(ir::DType::String));
  auto s = to_s.Run(17);
  REQUIRE(s.ok());
  CHECK((*s)[0].strings == std::vector<std::string>{"0.33333334", "100", "-0"});
  ir::Tensor txt(ir::DType::String, {3});
  txt.strings = {"1e3", "-INF", "x1"};
  OneNode from_s("Cast", {txt}, 1);
  from_s.node->set_attr_int("to", static_cast<int64_t>(ir::DType::Float32));
  auto bad = from_s.Run(17);
  REQUIRE(!bad.ok());
  CHECK(bad.status().message().find("'x1'") != std::string::npos);
  txt.strings[2] = "0.5";
  OneNode ok_s("Cast", {txt}, 1);
  ok_s.node->set_attr_int("to", static_cast<int64_t>(ir::DType::Float32));
  auto v = ok_s.Run(17);
  REQUIRE(v.ok());
  CHECK((*v)[0].data<float>()[0] == 1000.f);
  CHECK(std::isinf((*v)[0].data<float>()[1]));
  CHECK((*v)[0].data<float>()[2] == 0.5f);
}

TEST_CASE("a node without a required input fails at planning, naming the input") {
  ir::Tensor x = RandomTensor({2, 3}, 51);
  OneNode n("PRelu", {x}, 1);
  auto y = n.Run(17);
  REQUIRE(!y.ok());
  CHECK(y.status().message().find("input 1 (slope) is missing") != std::string::npos);
  CHECK(y.status().message().find("'n0'") != std::string::npos);
}
