// Helpers for the pass tests: tiny models built in code, running a graph in asrc's runtime and in
// ONNX Runtime (node + onnxruntime-node), comparing outputs.
#pragma once

#include <unistd.h>

#include <cmath>
#include <cstring>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "doctest/doctest.h"
#include "ir/model.h"
#include "onnx/onnx_io.h"
#include "pass/pass.h"
#include "reference.h"
#include "runtime/session.h"

namespace asrc::test {

inline ir::Tensor RandomTensor(ir::Shape shape, std::mt19937_64& rng, float stddev = 1.f) {
  ir::Tensor t(ir::DType::Float32, std::move(shape));
  std::normal_distribution<float> d(0.f, stddev);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = d(rng);
  return t;
}

inline ir::Value* Input(ir::Graph& g, const std::string& name, ir::DType dt, ir::Shape shape) {
  ir::Value* v = g.AddValue(name);
  v->type.has_type = true;
  v->type.dtype = dt;
  v->type.has_shape = true;
  for (int64_t d : shape) v->type.dims.push_back(ir::Dim{d, ""});
  g.inputs.push_back(v);
  return v;
}

// Marks `v` a float32 graph output (ONNX needs a type on graph outputs).
inline void Output(ir::Graph& g, ir::Value* v, ir::Shape shape) {
  v->type.has_type = true;
  v->type.dtype = ir::DType::Float32;
  v->type.has_shape = true;
  for (int64_t d : shape) v->type.dims.push_back(ir::Dim{d, ""});
  g.outputs.push_back(v);
}

// A one-graph model ("model" role, opset 17).
inline ir::Model SingleGraphModel(std::unique_ptr<ir::Graph> g) {
  ir::Model m;
  ir::GraphFile f;
  f.role = "model";
  f.file = "model.onnx";
  f.ir_version = 8;
  f.opsets = {{"", 17}};
  f.producer_name = "asrc-test";
  f.graph = std::move(g);
  m.graphs.push_back(std::move(f));
  return m;
}

// A bundle of two graphs, roles "decoder" and "joiner" (decoder.onnx, joiner.onnx; opset 17).
inline ir::Model DecoderJoinerModel(std::unique_ptr<ir::Graph> decoder, std::unique_ptr<ir::Graph> joiner) {
  ir::Model m = SingleGraphModel(std::move(decoder));
  m.graphs[0].role = "decoder";
  m.graphs[0].file = "decoder.onnx";
  ir::Model other = SingleGraphModel(std::move(joiner));
  other.graphs[0].role = "joiner";
  other.graphs[0].file = "joiner.onnx";
  m.graphs.push_back(std::move(other.graphs[0]));
  m.is_bundle = true;
  return m;
}

inline int CountOps(const ir::Graph& g, const std::string& op) {
  int n = 0;
  for (const ir::Node* node : g.nodes()) n += node->op_type == op;
  return n;
}

inline std::vector<ir::Tensor> RunAsrc(const ir::Graph& g, const std::vector<ir::Tensor>& inputs) {
  auto s = runtime::Session::Create(g, 17);
  REQUIRE_MESSAGE(s.ok(), s.status().message());
  std::vector<ir::Tensor> outs;
  Status st = s.value()->Run(inputs, &outs);
  REQUIRE_MESSAGE(st.ok(), st.message());
  return outs;
}

// max |a - b| / max(1e-6, max |a|)
inline double RelError(const ir::Tensor& a, const ir::Tensor& b) {
  REQUIRE(a.numel() == b.numel());
  double m = 0, e = 0;
  for (int64_t i = 0; i < a.numel(); ++i) {
    m = std::max(m, static_cast<double>(std::fabs(a.data<float>()[i])));
    e = std::max(e, static_cast<double>(std::fabs(a.data<float>()[i] - b.data<float>()[i])));
  }
  return e / std::max(1e-6, m);
}

inline bool BitEqual(const ir::Tensor& a, const ir::Tensor& b) {
  return a.nbytes() == b.nbytes() && std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
}

inline std::string TempDir(const std::string& tag) {
  auto p = std::filesystem::temp_directory_path() /
           ("asrc_pass_test_" + tag + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(p);
  std::filesystem::create_directories(p);
  return p.string();
}

// Saves `model` (one graph) and runs it in ONNX Runtime on `inputs` (float32/int64).
inline std::vector<ir::Tensor> RunOrt(const ir::Model& model, const std::vector<ir::Tensor>& inputs,
                                      const std::string& tag) {
  std::string dir = TempDir(tag);
  std::string path = dir + "/model.onnx";
  Status st = onnx_io::SaveModel(model, path);
  REQUIRE_MESSAGE(st.ok(), st.message());
  const ir::Graph& g = *model.graphs[0].graph;
  nlohmann::json spec = nlohmann::json::array();
  size_t k = 0;
  for (const ir::Value* v : g.inputs) {
    if (v->initializer) continue;
    const ir::Tensor& t = inputs.at(k);
    std::string file = "in_" + std::to_string(k++) + ".bin";
    std::ofstream(dir + "/" + file, std::ios::binary)
        .write(reinterpret_cast<const char*>(t.raw()), static_cast<std::streamsize>(t.nbytes()));
    spec.push_back({{"name", v->name}, {"type", ir::DTypeName(t.dtype())}, {"dims", t.shape()}, {"file", file}});
  }
  std::ofstream(dir + "/inputs.json") << spec.dump();
  std::string cmd = "node " ASRC_SOURCE_DIR "/tests/passes/ort_eval.js '" + path + "' '" + dir + "'";
  REQUIRE_MESSAGE(std::system(cmd.c_str()) == 0, (std::string("ONNX Runtime failed on ") + path));
  nlohmann::json meta = nlohmann::json::parse(std::ifstream(dir + "/outputs.json"));
  std::vector<ir::Tensor> outs;
  for (const auto& m : meta) {
    REQUIRE(m["type"] == "float32");
    ir::Tensor t(ir::DType::Float32, m["dims"].get<std::vector<int64_t>>());
    std::ifstream(dir + "/" + m["file"].get<std::string>(), std::ios::binary)
        .read(reinterpret_cast<char*>(t.raw()), static_cast<std::streamsize>(t.nbytes()));
    outs.push_back(std::move(t));
  }
  std::filesystem::remove_all(dir);
  return outs;
}

// Runs `m` in ONNX Runtime on `inputs` and checks each output against `ours` (relative error <=
// tol); with `ref`, also prints how far ORT is from that reference (e.g. the float original).
// Where node/onnxruntime-node is missing: a message, or a failure under CI=true (reference.h).
inline void CheckOrt(const ir::Model& m, const std::vector<ir::Tensor>& inputs,
                     const std::vector<ir::Tensor>& ours, double tol, const std::string& tag,
                     const std::vector<ir::Tensor>* ref = nullptr) {
  if (!HaveReference(OrtAvailable(), kOrt)) return;
  auto ort = RunOrt(m, inputs, tag);
  REQUIRE(!ours.empty());  // something to compare
  REQUIRE(ort.size() == ours.size());
  for (size_t i = 0; i < ours.size(); ++i) {
    INFO(tag << " output " << i);
    if (ref) MESSAGE(tag << ": ORT vs the float original: " << RelError((*ref)[i], ort[i]));
    CHECK(RelError(ort[i], ours[i]) <= tol);
  }
}

// Runs `pass` with `options` (validated against its declaration).
inline bool RunPass(pass::Pass& p, ir::Model& m, const nlohmann::json& options,
                    pass::PassContext** keep = nullptr, pass::Calibrator calib = nullptr) {
  auto opts = pass::ValidateOptions(p.options(), options, "$.options");
  REQUIRE_MESSAGE(opts.ok(), opts.status().message());
  static std::unique_ptr<pass::PassContext> holder;  // keeps the last context for `keep`
  holder = std::make_unique<pass::PassContext>(opts.value(), 0);
  pass::PassContext* last = holder.get();
  last->calibrate = calib;
  auto r = p.Run(m, *last);
  REQUIRE_MESSAGE(r.ok(), r.status().message());
  for (const auto& gf : m.graphs) {
    std::set<std::string> names;
    for (const ir::Node* n : gf.graph->nodes()) {
      if (!n->name.empty()) CHECK_MESSAGE(names.insert(n->name).second, ("duplicate node name " + n->name));
    }
    Status v = gf.graph->Verify();
    REQUIRE_MESSAGE(v.ok(), (std::string("after pass ") + p.name() + ": " + v.message()));
  }
  if (keep) *keep = last;
  return r.value();
}

// Runs `pass` with `options` and an optional WER probe; returns its result (errors included) and
// its counters and notes.
inline Result<bool> RunPassResult(pass::Pass& p, ir::Model& m, const nlohmann::json& options,
                                  pass::WerProbe probe = nullptr, std::map<std::string, int64_t>* counters = nullptr,
                                  std::vector<std::string>* notes = nullptr) {
  auto opts = pass::ValidateOptions(p.options(), options, "$.options");
  REQUIRE_MESSAGE(opts.ok(), opts.status().message());
  pass::PassContext ctx(opts.value(), 0);
  ctx.probe_wer = std::move(probe);
  Result<bool> r = p.Run(m, ctx);
  if (counters) *counters = ctx.counters();
  if (notes) *notes = ctx.notes();
  return r;
}

}  // namespace asrc::test
