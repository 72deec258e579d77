// Parity with ONNX Runtime (onnxruntime-node, run by tests/runtime/ort_run.js) on PyTorch exports:
// the fixtures named in tests/fixtures/README.md and, when present, the teacher bundle graphs; and
// com.microsoft MatMulNBits models built here, as ONNX Runtime's 4-bit quantizer writes them.
// Tolerance: max abs error <= 1e-4 * max(1, max |ORT output|) for float outputs; integer
// outputs exact. A missing reference (node/ORT, a fixture, the teacher bundle) is a message
// outside CI and a failure under CI=true (tests/reference.h).
#include <doctest/doctest.h>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>

#include "onnx/onnx_io.h"
#include "reference.h"
#include "runtime/inputs.h"
#include "runtime/session.h"

namespace fs = std::filesystem;
using namespace asrc;

namespace {

const char* OrtType(ir::DType d) {
  switch (d) {
    case ir::DType::Float32: return "float32";
    case ir::DType::Int64: return "int64";
    case ir::DType::Int32: return "int32";
    case ir::DType::Bool: return "bool";
    case ir::DType::Float16: return "float16";
    case ir::DType::Int8: return "int8";
    case ir::DType::Uint8: return "uint8";
    default: return "";
  }
}

ir::DType FromOrtType(const std::string& s) {
  if (s == "float32") return ir::DType::Float32;
  if (s == "int64") return ir::DType::Int64;
  if (s == "int32") return ir::DType::Int32;
  if (s == "bool") return ir::DType::Bool;
  if (s == "float16") return ir::DType::Float16;
  if (s == "int8") return ir::DType::Int8;
  if (s == "uint8") return ir::DType::Uint8;
  return ir::DType::Undefined;
}

// Runs ORT on `inputs`; returns its outputs in graph order.
Result<std::vector<ir::Tensor>> RunOrt(const std::string& model, const std::vector<std::string>& names,
                                       const std::vector<ir::Tensor>& inputs, const fs::path& dir) {
  fs::create_directories(dir);
  nlohmann::json spec = nlohmann::json::array();
  for (size_t i = 0; i < inputs.size(); ++i) {
    std::string file = "in_" + std::to_string(i) + ".bin";
    std::ofstream(dir / file, std::ios::binary)
        .write(reinterpret_cast<const char*>(inputs[i].raw()), static_cast<std::streamsize>(inputs[i].nbytes()));
    spec.push_back({{"name", names[i]}, {"type", OrtType(inputs[i].dtype())}, {"dims", inputs[i].shape()}, {"file", file}});
  }
  std::ofstream(dir / "inputs.json") << spec.dump();
  std::string cmd = "node " ASRC_SOURCE_DIR "/tests/runtime/ort_run.js '" + model + "' '" + dir.string() + "' 1";
  if (std::system(cmd.c_str()) != 0) return Error("ORT failed on " + model);
  std::ifstream meta_in(dir / "outputs.json");
  nlohmann::json meta = nlohmann::json::parse(meta_in);
  std::vector<ir::Tensor> out;
  for (const auto& m : meta) {
    ir::Shape s = m["dims"].get<std::vector<int64_t>>();
    ir::Tensor t(FromOrtType(m["type"]), s);
    std::ifstream f(dir / m["file"].get<std::string>(), std::ios::binary);
    f.read(reinterpret_cast<char*>(t.raw()), static_cast<std::streamsize>(t.nbytes()));
    out.push_back(std::move(t));
  }
  return out;
}

struct Outcome {
  bool ran = false;
  double worst_ratio = 0;  // max err / tolerance over outputs
};

// Returns the number of outputs compared with ORT. 8-bit outputs may differ from ORT's by up to
// `lsb` quantization steps (ORT's fixed-point kernels round differently); other integers exactly.
int CheckModel(const std::string& path, const std::map<std::string, int64_t>& dims, int64_t default_dim, int lsb = 0) {
  int compared = 0;
  INFO("model: " << path);
  auto gf = onnx_io::LoadGraphFile(path);
  REQUIRE_MESSAGE(gf.ok(), gf.status().message());
  std::vector<ir::Tensor> first;
  for (int threads : {1, 2}) {
    auto session = runtime::Session::Create(*gf->graph, gf->opset(""), {threads});
    REQUIRE_MESSAGE(session.ok(), session.status().message());
    auto inputs = runtime::MakeInputs(*gf->graph, dims, default_dim, 1234);
    REQUIRE_MESSAGE(inputs.ok(), inputs.status().message());
    std::vector<ir::Tensor> ours;
    Status st = (*session)->Run(*inputs, &ours);
    REQUIRE_MESSAGE(st.ok(), st.message());
    if (threads == 2) {
      // Two threads must agree with one (GEMM splits change summation order only slightly).
      for (size_t i = 0; i < ours.size(); ++i)
        if (ours[i].dtype() == ir::DType::Float32)
          for (int64_t k = 0; k < ours[i].numel(); ++k)
            REQUIRE(std::abs(ours[i].data<float>()[k] - first[i].data<float>()[k]) <=
                    1e-4 * std::max(1.f, std::abs(first[i].data<float>()[k])));
      continue;
    }
    first = ours;
    fs::path dir = fs::temp_directory_path() / ("asrc_parity_" + fs::path(path).stem().string() + "_" + std::to_string(::getpid()));
    auto ort = RunOrt(path, (*session)->input_names(), *inputs, dir);
    fs::remove_all(dir);
    REQUIRE_MESSAGE(ort.ok(), ort.status().message());
    REQUIRE(ort->size() == ours.size());
    for (size_t i = 0; i < ours.size(); ++i) {
      const ir::Tensor& a = ours[i];
      const ir::Tensor& b = (*ort)[i];
      INFO("output " << (*session)->output_names()[i]);
      REQUIRE(a.shape() == b.shape());
      REQUIRE(a.dtype() == b.dtype());
      if (a.dtype() == ir::DType::Float32) {
        double maxref = 0, maxerr = 0;
        for (int64_t k = 0; k < a.numel(); ++k) {
          maxref = std::max(maxref, std::abs(static_cast<double>(b.data<float>()[k])));
          maxerr = std::max(maxerr, std::abs(static_cast<double>(a.data<float>()[k]) - b.data<float>()[k]));
        }
        double tol = 1e-4 * std::max(1.0, maxref);
        std::cout << "parity: " << fs::path(path).filename().string() << " " << (*session)->output_names()[i]
                  << " " << ir::ShapeStr(a.shape()) << " max|err| " << maxerr << " (tol " << tol << ")\n";
        CHECK(maxerr <= tol);
      } else if (lsb > 0 && (a.dtype() == ir::DType::Uint8 || a.dtype() == ir::DType::Int8)) {
        const bool s8 = a.dtype() == ir::DType::Int8;
        int worst = 0;
        int64_t differ = 0;
        for (int64_t k = 0; k < a.numel(); ++k) {
          const int x = s8 ? a.data<int8_t>()[k] : a.data<uint8_t>()[k], y = s8 ? b.data<int8_t>()[k] : b.data<uint8_t>()[k];
          worst = std::max(worst, std::abs(x - y));
          differ += x != y;
        }
        std::cout << "parity: " << fs::path(path).filename().string() << " " << (*session)->output_names()[i] << " "
                  << ir::ShapeStr(a.shape()) << " max diff " << worst << " LSB (" << differ << " of " << a.numel()
                  << " differ; budget " << lsb << ")\n";
        CHECK(worst <= lsb);
      } else {
        CHECK(std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0);
      }
      ++compared;
    }
  }
  return compared;
}

// The committed PyTorch exports: the fixtures and the teacher bundle's graphs.
std::vector<std::string> ParityModels() {
  std::vector<std::string> out;
  for (const char* f : {"conformer", "conformer_causal", "lstm_decoder", "joiner"})
    out.push_back(test::SourcePath("tests/fixtures/" + std::string(f) + ".onnx"));
  for (const char* f : {"encoder_causal", "encoder_noncausal", "decoder", "joiner"})
    out.push_back(test::SourcePath("experiments/teacher/bundle/" + std::string(f) + ".onnx"));
  return out;
}

// Saves a one-node com.microsoft model: A float [2, 3, K] fed, then `weights` as initializers in
// input order (an empty name: the input omitted), output Y float [2, 3, N]; `attrs` sets the
// node's attributes.
void SaveContribModel(const std::string& path, const std::string& op, int64_t K, int64_t N,
                      const std::vector<std::pair<std::string, ir::Tensor>>& weights,
                      const std::function<void(ir::Node&)>& attrs) {
  ir::GraphFile gf;
  gf.role = "model";
  gf.opsets = {{"", 17}, {"com.microsoft", 1}};
  gf.graph = std::make_unique<ir::Graph>(op);
  ir::Graph& g = *gf.graph;
  ir::Value* a = g.AddValue("A");
  a->type.has_type = a->type.has_shape = true;
  a->type.dtype = ir::DType::Float32;
  for (int64_t d : {int64_t{2}, int64_t{3}, K}) a->type.dims.push_back(ir::Dim{d, ""});
  g.inputs = {a};
  std::vector<ir::Value*> ins = {a};
  for (const auto& [name, t] : weights) ins.push_back(name.empty() ? nullptr : g.AddInitializer(name, t));
  while (!ins.back()) ins.pop_back();
  ir::Node* n = g.AddNode(op, ins, {"Y"}, "n", "com.microsoft");
  attrs(*n);
  n->outputs[0]->type = a->type;
  n->outputs[0]->type.dims.back() = ir::Dim{N, ""};
  g.outputs = {n->outputs[0]};
  ir::Model m;
  m.graphs.push_back(std::move(gf));
  Status st = onnx_io::SaveModel(m, path);
  REQUIRE_MESSAGE(st.ok(), st.message());
}

// A one-node com.microsoft MatMulNBits model as ONNX Runtime's quantizer writes one: A float
// [2, 3, K] fed, B / scales / zero points / bias random initializers.
struct NBitsCase {
  int64_t K, N, bits, block;
  bool zero_points, bias;
};

// Saves the model to `path`; `w` gets W [N, K] and `bias` the bias (empty without), decoded by a
// plain loop over the operator's contract (codes low bits first; zero point 2^(bits-1) when absent).
void WriteNBitsModel(const NBitsCase& c, const std::string& path, std::vector<float>* w, std::vector<float>* bias) {
  std::mt19937 rng(static_cast<uint32_t>(c.K * 131 + c.N * 7 + c.bits));
  const int64_t blocks = (c.K + c.block - 1) / c.block, blob = c.block * c.bits / 8;
  const int64_t zp_row = (blocks * c.bits + 7) / 8;
  ir::Tensor b(ir::DType::Uint8, {c.N, blocks, blob}), sc(ir::DType::Float32, {c.N * blocks});
  ir::Tensor zp(ir::DType::Uint8, {c.N * zp_row}), bs(ir::DType::Float32, {c.N});
  for (int64_t i = 0; i < b.numel(); ++i) b.data<uint8_t>()[i] = static_cast<uint8_t>(rng());
  for (int64_t i = 0; i < zp.numel(); ++i) zp.data<uint8_t>()[i] = static_cast<uint8_t>(rng());
  std::uniform_real_distribution<float> u(0.01f, 0.1f);
  for (int64_t i = 0; i < sc.numel(); ++i) sc.data<float>()[i] = u(rng);
  for (int64_t i = 0; i < bs.numel(); ++i) bs.data<float>()[i] = u(rng) - 0.05f;
  auto code = [&](const uint8_t* p, int64_t j) { return (p[j * c.bits / 8] >> (j * c.bits % 8)) & ((1 << c.bits) - 1); };
  w->assign(static_cast<size_t>(c.N * c.K), 0.f);
  for (int64_t n = 0; n < c.N; ++n)
    for (int64_t k = 0; k < c.K; ++k) {
      const int64_t kb = k / c.block;
      const int q = code(b.data<uint8_t>() + (n * blocks + kb) * blob, k % c.block);
      const int z = c.zero_points ? code(zp.data<uint8_t>() + n * zp_row, kb) : 1 << (c.bits - 1);
      (*w)[n * c.K + k] = static_cast<float>(q - z) * sc.data<float>()[n * blocks + kb];
    }
  bias->clear();
  if (c.bias) bias->assign(bs.data<float>(), bs.data<float>() + c.N);

  std::vector<std::pair<std::string, ir::Tensor>> weights = {{"B", b}, {"scales", sc}};
  weights.push_back({c.zero_points ? "zero_points" : "", zp});
  weights.push_back({"", ir::Tensor()});  // g_idx
  weights.push_back({c.bias ? "bias" : "", bs});
  SaveContribModel(path, "MatMulNBits", c.K, c.N, weights, [&](ir::Node& n) {
    n.set_attr_int("K", c.K);
    n.set_attr_int("N", c.N);
    n.set_attr_int("bits", c.bits);
    n.set_attr_int("block_size", c.block);
  });
}

const std::vector<NBitsCase> kNBitsCases = {
    {80, 24, 4, 32, true, false},   // K not a multiple of the block: a partial last block
    {64, 16, 4, 16, false, true},   // default zero point 8, bias
    {48, 8, 8, 16, true, true},     // 8-bit codes
    {96, 12, 2, 32, true, false},   // 2-bit codes
};

}  // namespace

TEST_CASE("com.microsoft MatMulNBits (2/4/8-bit block-quantized weights) matches a plain loop over its contract") {
  for (const NBitsCase& c : kNBitsCases) {
    INFO("K " << c.K << " N " << c.N << " bits " << c.bits << " block " << c.block);
    fs::path path = fs::temp_directory_path() / ("asrc_nbits_" + std::to_string(::getpid()) + ".onnx");
    std::vector<float> w, bias;
    WriteNBitsModel(c, path.string(), &w, &bias);
    auto gf = onnx_io::LoadGraphFile(path.string());
    fs::remove(path);
    REQUIRE_MESSAGE(gf.ok(), gf.status().message());
    auto session = runtime::Session::Create(*gf->graph, 17);
    REQUIRE_MESSAGE(session.ok(), session.status().message());
    auto inputs = runtime::MakeInputs(*gf->graph, {}, 1, 99);
    REQUIRE(inputs.ok());
    std::vector<ir::Tensor> y;
    REQUIRE((*session)->Run(*inputs, &y).ok());
    REQUIRE(y[0].shape() == ir::Shape{2, 3, c.N});
    const float* a = (*inputs)[0].data<float>();
    double worst = 0;
    for (int64_t r = 0; r < 6; ++r)
      for (int64_t n = 0; n < c.N; ++n) {
        double want = bias.empty() ? 0.0 : bias[n];
        for (int64_t k = 0; k < c.K; ++k) want += static_cast<double>(a[r * c.K + k]) * w[n * c.K + k];
        worst = std::max(worst, std::abs(want - y[0].data<float>()[r * c.N + n]) / std::max(1.0, std::abs(want)));
      }
    CHECK(worst < 1e-5);
  }
}

TEST_CASE("com.microsoft MatMulNBits matches ONNX Runtime") {
  if (!test::HaveReference(test::OrtAvailable(), test::kOrt)) return;
  int compared = 0;
  for (const NBitsCase& c : kNBitsCases) {
    fs::path path = fs::temp_directory_path() /
                    ("asrc_nbits_" + std::to_string(c.bits) + "_" + std::to_string(c.K) + "_" + std::to_string(::getpid()) + ".onnx");
    std::vector<float> w, bias;
    WriteNBitsModel(c, path.string(), &w, &bias);
    compared += CheckModel(path.string(), {}, 1);
    fs::remove(path);
  }
  test::RequireChecks(compared, "ONNX Runtime on MatMulNBits models");
}

TEST_CASE("com.microsoft DynamicQuantizeMatMul matches ONNX Runtime") {
  if (!test::HaveReference(test::OrtAvailable(), test::kOrt)) return;
  // int8 weights within 7 bits (as ONNX Runtime's quantizer writes them with reduce_range, so its
  // u8 x s8 products cannot saturate), per-column scales, bias; and uint8 weights with per-column
  // zero points.
  const int64_t K = 40, N = 12;
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> u(0.01f, 0.05f);
  ir::Tensor bs(ir::DType::Int8, {K, N}), bu(ir::DType::Uint8, {K, N}), zp(ir::DType::Uint8, {N});
  ir::Tensor scale(ir::DType::Float32, {N}), bias(ir::DType::Float32, {N});
  for (int64_t i = 0; i < K * N; ++i) {
    bs.data<int8_t>()[i] = static_cast<int8_t>(static_cast<int>(rng() % 128) - 64);
    bu.data<uint8_t>()[i] = static_cast<uint8_t>(rng());
  }
  for (int64_t i = 0; i < N; ++i) {
    zp.data<uint8_t>()[i] = static_cast<uint8_t>(100 + rng() % 56);
    scale.data<float>()[i] = u(rng);
    bias.data<float>()[i] = u(rng) - 0.03f;
  }
  int compared = 0;
  const std::vector<std::vector<std::pair<std::string, ir::Tensor>>> variants = {
      {{"B", bs}, {"b_scale", scale}, {"", ir::Tensor()}, {"bias", bias}},
      {{"B", bu}, {"b_scale", scale}, {"b_zero_point", zp}}};
  for (size_t v = 0; v < variants.size(); ++v) {
    fs::path path = fs::temp_directory_path() / ("asrc_dqmm_" + std::to_string(v) + "_" + std::to_string(::getpid()) + ".onnx");
    SaveContribModel(path.string(), "DynamicQuantizeMatMul", K, N, variants[v], [](ir::Node&) {});
    compared += CheckModel(path.string(), {}, 1);
    fs::remove(path);
  }
  test::RequireChecks(compared, "ONNX Runtime on DynamicQuantizeMatMul models");
}

// The com.microsoft quantized-op models written by tests/fixtures/make_qops.py.
std::vector<std::string> QopsModels() {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(test::SourcePath("tests/fixtures/qops")))
    if (e.path().extension() == ".onnx") out.push_back(e.path().string());
  std::sort(out.begin(), out.end());
  return out;
}

TEST_CASE("com.microsoft quantized ops: the byte-table paths give the formula's bytes (ASRC_QOPS=ref)") {
  int compared = 0;
  for (const std::string& path : QopsModels()) {
    INFO("model: " << path);
    auto gf = onnx_io::LoadGraphFile(path);
    REQUIRE_MESSAGE(gf.ok(), gf.status().message());
    auto inputs = runtime::MakeInputs(*gf->graph, {}, 1, 77);
    REQUIRE_MESSAGE(inputs.ok(), inputs.status().message());
    std::vector<ir::Tensor> outs[2];
    for (int ref : {0, 1}) {
      if (ref) ::setenv("ASRC_QOPS", "ref", 1);
      auto session = runtime::Session::Create(*gf->graph, gf->opset(""));
      ::unsetenv("ASRC_QOPS");
      REQUIRE_MESSAGE(session.ok(), session.status().message());
      Status st = (*session)->Run(*inputs, &outs[ref]);
      REQUIRE_MESSAGE(st.ok(), st.message());
    }
    REQUIRE(outs[0].size() == outs[1].size());
    for (size_t i = 0; i < outs[0].size(); ++i) {
      REQUIRE(outs[0][i].shape() == outs[1][i].shape());
      CHECK(std::memcmp(outs[0][i].raw(), outs[1][i].raw(), outs[0][i].nbytes()) == 0);
      ++compared;
    }
  }
  CHECK(compared >= 20);
}

TEST_CASE("com.microsoft quantized ops (QLinear*, QGemm, DynamicQuantizeLSTM) match ONNX Runtime") {
  if (!test::HaveReference(test::OrtAvailable(), test::kOrt)) return;
  int compared = 0;
  for (const std::string& path : QopsModels()) compared += CheckModel(path, {}, 1, /*lsb=*/1);
  test::RequireChecks(compared, "ONNX Runtime on the com.microsoft quantized-op models");
}

TEST_CASE("fixture outputs match PyTorch's (tests/fixtures/data)") {
  fs::path root = fs::path(ASRC_SOURCE_DIR) / "tests/fixtures";
  int checked = 0;
  for (const char* m : {"conformer", "conformer_causal", "lstm_decoder", "joiner"}) {
    fs::path model = root / (std::string(m) + ".onnx"), data = root / "data" / m;
    if (!test::HaveReference(fs::exists(model) && fs::exists(data), "fixture " + model.string() + " with data/" + m))
      continue;
    INFO("model: " << model.string());
    auto gf = onnx_io::LoadGraphFile(model.string());
    REQUIRE_MESSAGE(gf.ok(), gf.status().message());
    auto session = runtime::Session::Create(*gf->graph, gf->opset(""));
    REQUIRE_MESSAGE(session.ok(), session.status().message());
    std::vector<ir::Tensor> inputs, want, got;
    for (size_t i = 0; fs::exists(data / ("input_" + std::to_string(i) + ".pb")); ++i) {
      auto t = onnx_io::LoadTensorFile((data / ("input_" + std::to_string(i) + ".pb")).string());
      REQUIRE(t.ok());
      inputs.push_back(std::move(t).value());
    }
    for (size_t i = 0; fs::exists(data / ("output_" + std::to_string(i) + ".pb")); ++i) {
      auto t = onnx_io::LoadTensorFile((data / ("output_" + std::to_string(i) + ".pb")).string());
      REQUIRE(t.ok());
      want.push_back(std::move(t).value());
    }
    Status st = (*session)->Run(inputs, &got);
    REQUIRE_MESSAGE(st.ok(), st.message());
    REQUIRE(!want.empty());  // a data folder without outputs would compare nothing
    REQUIRE(got.size() >= want.size());
    for (size_t i = 0; i < want.size(); ++i) {
      REQUIRE(got[i].shape() == want[i].shape());
      REQUIRE(got[i].dtype() == ir::DType::Float32);
      double maxref = 0, maxerr = 0;
      for (int64_t k = 0; k < want[i].numel(); ++k) {
        maxref = std::max(maxref, std::abs(static_cast<double>(want[i].data<float>()[k])));
        maxerr = std::max(maxerr, std::abs(static_cast<double>(got[i].data<float>()[k]) - want[i].data<float>()[k]));
      }
      CHECK(maxerr <= 1e-4 * std::max(1.0, maxref));
      ++checked;
    }
  }
  test::RequireChecks(checked, "PyTorch's outputs in tests/fixtures/data");
}

TEST_CASE("outputs match ONNX Runtime on PyTorch exports") {
  if (!test::HaveReference(test::OrtAvailable(), test::kOrt)) return;
  int compared = 0;
  for (const auto& m : ParityModels())
    if (test::HaveReference(fs::exists(m), "PyTorch export " + m)) compared += CheckModel(m, {{"T", 100}, {"N", 1}}, 100);
  test::RequireChecks(compared, "ONNX Runtime on the PyTorch exports");
}
