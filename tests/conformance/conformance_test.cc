// Runs every ONNX node conformance case whose ops all have kernels and compares with the expected
// outputs (rtol 1e-3, atol 1e-5; integers and bools exact; sequences and optionals element by element). A case counts as unsupported when an
// op has no kernel, or when planning rejects it (a kernel refusing an attribute combination or
// dtype, with its error). Any failure of a supported case fails the test.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <map>
#include <set>

#include "onnx/onnx_io.h"
#include "reference.h"
#include "runtime/kernel.h"
#include "runtime/session.h"

namespace fs = std::filesystem;
using namespace asrc;

namespace {

const std::string kRoot = test::OnnxNodeTests();

// Cases whose stored expected outputs do not follow from their own model, with the evidence;
// reported as "bad reference" and counted neither as supported nor as passed.
const std::map<std::string, std::string> kBadReference = {
    {"test_adam_multiple",
     "expected outputs were computed with epsilon=1e-2, but the node carries no epsilon "
     "attribute (spec default 1e-6); X1_new = 1 - 0.1*1.85005/(sqrt(0.5747)+eps) is 0.75914 "
     "only with 1e-2"},
    {"test_cast_FLOAT_to_BFLOAT16",
     "expected bfloat16 values are float32 bits truncated to 16 (the generator takes the uint16 "
     "view [1::2]); Cast (its opset 19 text) and ONNX Runtime round to nearest even: 0.48033667 "
     "(0x3EF5EEB0) truncates to 16117, rounds to 16118"},
    {"test_castlike_BFLOAT16_to_FLOAT",
     "the model declares input 'like' as float[3,4] but its data file holds shape [1]"},
    {"test_castlike_BFLOAT16_to_FLOAT_expanded",
     "the model declares input 'like' as float[3,4] but its data file holds shape [1]"},
    {"test_castlike_FLOAT_to_BFLOAT16", "the same truncated bfloat16 reference as test_cast_FLOAT_to_BFLOAT16"},
    {"test_castlike_FLOAT_to_BFLOAT16_expanded", "the same truncated bfloat16 reference as test_cast_FLOAT_to_BFLOAT16"},
};

void CollectOps(const ir::Graph& g, std::vector<std::pair<std::string, std::string>>& ops) {
  for (ir::Node* n : g.nodes()) {
    ops.emplace_back(n->domain == "ai.onnx" ? "" : n->domain, n->op_type);
    for (const auto& a : n->attributes) {
      if (a.g) CollectOps(*a.g, ops);
      for (const auto& sg : a.graphs) CollectOps(*sg, ops);
    }
  }
}

double AsDouble(const ir::Tensor& t, int64_t i) {
  switch (t.dtype()) {
    case ir::DType::Float32: return t.data<float>()[i];
    case ir::DType::Float64: return t.data<double>()[i];
    case ir::DType::Float16: return ir::HalfToFloat(t.data<uint16_t>()[i]);
    default: return 0;
  }
}

// Empty string when equal within tolerance; else a description of the first mismatch.
std::string Compare(const ir::Tensor& got, const ir::Tensor& want) {
  if (got.kind() != want.kind())
    return std::string("a ") + ir::ValueKindName(got.kind()) + ", expected a " + ir::ValueKindName(want.kind());
  if (!want.is_tensor()) {  // sequence or optional: element by element
    if (got.elements().size() != want.elements().size())
      return std::to_string(got.elements().size()) + " elements, expected " + std::to_string(want.elements().size());
    for (size_t i = 0; i < want.elements().size(); ++i) {
      std::string d = Compare(got.elements()[i], want.elements()[i]);
      if (!d.empty()) return "element " + std::to_string(i) + ": " + d;
    }
    return "";
  }
  if (got.dtype() != want.dtype())
    return std::string("dtype ") + ir::DTypeName(got.dtype()) + " != " + ir::DTypeName(want.dtype());
  if (got.shape() != want.shape()) return "shape " + ir::ShapeStr(got.shape()) + " != " + ir::ShapeStr(want.shape());
  ir::DType d = want.dtype();
  if (d == ir::DType::String) return got.strings == want.strings ? "" : "strings differ";
  if (d == ir::DType::Float32 || d == ir::DType::Float64 || d == ir::DType::Float16) {
    for (int64_t i = 0; i < want.numel(); ++i) {
      double a = AsDouble(got, i), b = AsDouble(want, i);
      if (std::isnan(a) && std::isnan(b)) continue;
      if (std::isinf(b) && a == b) continue;
      if (!(std::abs(a - b) <= 1e-5 + 1e-3 * std::abs(b)))
        return "element " + std::to_string(i) + ": got " + std::to_string(a) + ", want " + std::to_string(b);
    }
    return "";
  }
  if (std::memcmp(got.raw(), want.raw(), want.nbytes()) != 0) return "integer/bool values differ";
  return "";
}

// ONNX 1.12's data files store bfloat16 tensors as uint16 (data_type 4, the same bits); read
// them as the bfloat16 the model declares (inputs) or produces (outputs).
ir::Tensor AsBf16IfUint16(const ir::Tensor& t, bool want_bf16) {
  if (!want_bf16 || t.dtype() != ir::DType::Uint16) return t;
  return ir::Tensor::Wrap(ir::DType::BFloat16, t.shape(), t.buffer(), t.offset());
}

// Ops whose outputs are random draws: our generator is not NumPy's, so their cases are checked
// for output dtype and shape only, and counted apart from PASS/TOTAL.
const std::set<std::string> kRandomOps = {"Bernoulli", "Multinomial", "RandomNormal", "RandomNormalLike",
                                          "RandomUniform", "RandomUniformLike"};

std::vector<fs::path> SortedFiles(const fs::path& dir, const std::string& prefix) {
  std::vector<fs::path> v;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().filename().string().rfind(prefix, 0) == 0) v.push_back(e.path());
  std::sort(v.begin(), v.end(), [&](const fs::path& a, const fs::path& b) {
    auto num = [&](const fs::path& p) {
      std::string s = p.stem().string().substr(prefix.size());
      return std::atoi(s.c_str());
    };
    return num(a) < num(b);
  });
  return v;
}

// Training-mode Dropout draws its mask at random: every output element must be 0 or
// x / (1 - ratio), the mask (output 1, when present) must say which, and about 1 - ratio of the
// elements must be kept. Empty when it holds.
std::string CheckDropoutDraw(const std::vector<ir::Tensor>& in, const std::vector<ir::Tensor>& out) {
  const ir::Tensor& x = in[0];
  if (x.dtype() != ir::DType::Float32) return "expected float32 data";
  double ratio = in.size() > 1 && in[1].numel() == 1 ? in[1].data<float>()[0] : 0.5;
  const double scale = 1.0 / (1.0 - ratio);
  int64_t kept = 0;
  for (int64_t i = 0; i < x.numel(); ++i) {
    float y = out[0].data<float>()[i], want = static_cast<float>(x.data<float>()[i] * scale);
    bool k = y != 0.f;
    if (k && std::abs(y - want) > 1e-5f * std::abs(want)) return "element " + std::to_string(i) + " is neither 0 nor x / (1 - ratio)";
    if (out.size() > 1 && out[1].data<bool>()[i] != k && x.data<float>()[i] != 0.f) return "mask disagrees at " + std::to_string(i);
    kept += k;
  }
  const double expect = (1.0 - ratio) * static_cast<double>(x.numel());
  if (std::abs(static_cast<double>(kept) - expect) > 5 * std::sqrt(expect * ratio + 1))
    return std::to_string(kept) + " of " + std::to_string(x.numel()) + " kept, expected about " + std::to_string(expect);
  return "";
}

// Runs every test_data_set_* folder of one case; empty when all match, else the first failure.
std::string RunCase(const fs::path& dir, const ir::Graph& g, runtime::Session& session, bool random) {
  const std::string name = dir.filename().string();
  for (const auto& e : fs::directory_iterator(dir)) {
    if (!e.is_directory() || e.path().filename().string().rfind("test_data_set_", 0) != 0) continue;
    std::vector<ir::Tensor> inputs, expected;
    for (const auto& p : SortedFiles(e.path(), "input_")) {
      size_t k = inputs.size();
      auto t = onnx_io::LoadValueFile(p.string(), k < g.inputs.size() ? g.inputs[k]->type.kind : ir::ValueKind::Tensor);
      if (!t.ok()) return t.status().message();
      bool bf16 = k < g.inputs.size() && g.inputs[k]->type.dtype == ir::DType::BFloat16;
      inputs.push_back(AsBf16IfUint16(*t, bf16));
    }
    for (const auto& p : SortedFiles(e.path(), "output_")) {
      size_t k = expected.size();
      auto t = onnx_io::LoadValueFile(p.string(), k < g.outputs.size() ? g.outputs[k]->type.kind : ir::ValueKind::Tensor);
      if (!t.ok()) return t.status().message();
      expected.push_back(std::move(t).value());
    }
    std::vector<ir::Tensor> outputs;
    Status st = session.Run(inputs, &outputs);
    if (!st.ok()) return st.message();
    if (outputs.size() < expected.size())
      return std::to_string(outputs.size()) + " outputs, expected " + std::to_string(expected.size());
    if (name.rfind("test_training_dropout", 0) == 0) {
      // The expected outputs are one draw of numpy's generator; check the draw's properties.
      std::string diff = CheckDropoutDraw(inputs, outputs);
      if (!diff.empty()) return diff;
      continue;
    }
    for (size_t i = 0; i < expected.size(); ++i) {
      expected[i] = AsBf16IfUint16(expected[i], outputs[i].dtype() == ir::DType::BFloat16);
      std::string diff = Compare(outputs[i], expected[i]);
      if (random) {
        diff.clear();
        if (outputs[i].dtype() != expected[i].dtype() || outputs[i].shape() != expected[i].shape())
          diff = "random output: dtype/shape " + std::string(ir::DTypeName(outputs[i].dtype())) +
                 ir::ShapeStr(outputs[i].shape()) + " != " + ir::DTypeName(expected[i].dtype()) +
                 ir::ShapeStr(expected[i].shape());
      }
      if (!diff.empty()) return "output " + std::to_string(i) + ": " + diff;
    }
  }
  return "";
}

struct Tally {
  int supported = 0, passed = 0, load_failed = 0, random_cases = 0, random_ok = 0;
  size_t total = 0;
  // Cases whose graph inputs and outputs are all tensors and none bfloat16 (what a harness over
  // ONNX Runtime's Node.js API can feed: ort_conformance.py), and how many of them pass.
  int tensor_io_total = 0, tensor_io_passed = 0;
  std::map<std::string, int> missing;           // op -> cases
  std::map<std::string, std::string> rejected;  // case -> planning error
  std::vector<std::string> failures;
};

// Runs every case folder (with a model.onnx) under `root`; prints the figures, each line
// starting with `label`.
Tally RunSuite(const std::string& root, const std::string& label) {
  Tally t;
  std::vector<fs::path> cases;
  for (const auto& e : fs::directory_iterator(root))
    if (fs::exists(e.path() / "model.onnx")) cases.push_back(e.path());
  std::sort(cases.begin(), cases.end());
  t.total = cases.size();
  const auto& reg = runtime::KernelRegistry::Global();
  for (const auto& dir : cases) {
    std::string name = dir.filename().string();
    if (kBadReference.count(name)) continue;
    auto gf = onnx_io::LoadGraphFile((dir / "model.onnx").string());
    if (!gf.ok()) {
      ++t.load_failed;
      continue;
    }
    bool tensor_io = true;
    for (const auto* list : {&gf->graph->inputs, &gf->graph->outputs})
      for (const ir::Value* v : *list)
        tensor_io = tensor_io && v->type.kind == ir::ValueKind::Tensor && v->type.dtype != ir::DType::BFloat16;
    t.tensor_io_total += tensor_io;
    std::vector<std::pair<std::string, std::string>> ops;
    CollectOps(*gf->graph, ops);
    std::set<std::string> miss;
    for (const auto& [domain, op] : ops)
      if (!reg.Has(domain, op)) miss.insert(domain.empty() ? op : domain + "::" + op);
    if (!miss.empty()) {
      for (const auto& m : miss) ++t.missing[m];
      continue;
    }
    auto session = runtime::Session::Create(*gf->graph, gf->opset(""));
    if (!session.ok()) {
      t.rejected[name] = session.status().message();
      continue;
    }
    bool random = false;
    for (const auto& [domain, op] : ops) random = random || (domain.empty() && kRandomOps.count(op));
    // Training-mode Dropout is a random draw too (its mask): checked by CheckDropoutDraw and
    // counted with the random cases, not in PASS, so PASS compares with runtimes that match
    // NumPy's draws no better than we do.
    random = random || name.rfind("test_training_dropout", 0) == 0;
    (random ? t.random_cases : t.supported) += 1;
    std::string why = RunCase(dir, *gf->graph, **session, random);
    if (why.empty() && !random) t.tensor_io_passed += tensor_io;
    if (why.empty()) (random ? t.random_ok : t.passed) += 1;
    else t.failures.push_back(name + ": " + why);
  }
  std::vector<std::pair<int, std::string>> by_freq;
  for (const auto& [op, n] : t.missing) by_freq.emplace_back(-n, op);
  std::sort(by_freq.begin(), by_freq.end());
  std::cout << label << ": passed " << t.passed << " of " << t.supported << " supported cases (" << t.total
            << " total cases; " << t.load_failed << " did not load; " << t.rejected.size() << " rejected at planning)\n";
  std::cout << label << ": PASS/TOTAL " << t.passed << "/" << t.total << "\n";
  std::cout << label << ": PASS over the cases a tensor-only harness can run (graph inputs and outputs all "
            << "tensors, none bfloat16; bad references left out) " << t.tensor_io_passed << "/" << t.tensor_io_total << "\n";
  std::cout << label << ": random-output cases (dtype and shape, or Dropout's draw, checked; not in PASS): "
            << t.random_ok << " of " << t.random_cases << "\n";
  std::cout << label << ": unsupported ops by case count:";
  for (const auto& [n, op] : by_freq) std::cout << " " << op << "(" << -n << ")";
  std::cout << "\n";
  for (const auto& [c, why] : t.rejected) std::cout << label << ": rejected " << c << ": " << why << "\n";
  for (const auto& [c, why] : kBadReference)
    if (fs::exists(fs::path(root) / c)) std::cout << label << ": bad reference " << c << ": " << why << "\n";
  for (const auto& f : t.failures) std::cout << label << ": FAIL " << f << "\n";
  return t;
}

}  // namespace

TEST_CASE("ONNX node conformance cases pass for every supported op") {
  if (!test::HaveReference(test::OnnxTestdataAvailable(), test::OnnxTestdataWhat())) return;
  Tally t = RunSuite(kRoot, "conformance");
  CHECK(t.failures.empty());
  CHECK(t.passed == t.supported);
  CHECK(t.random_ok == t.random_cases);
  CHECK(t.supported > 0);
}

// The small whole models of the same data (data/simple: the sequence models built from
// SplitToSequence, SequenceErase, ConcatFromSequence, which no node case uses; Expand, Shrink,
// Sign, StringNormalizer), reported on their own line so the node figure stays comparable.
TEST_CASE("ONNX simple-model conformance cases pass for every supported op") {
  if (!test::HaveReference(test::OnnxTestdataAvailable(), test::OnnxTestdataWhat())) return;
  const std::string root = test::OnnxTestdataRoot() + "/simple";
  if (!fs::exists(root)) return;
  Tally t = RunSuite(root, "conformance (simple)");
  CHECK(t.failures.empty());
  CHECK(t.passed == t.supported);
  CHECK(t.supported > 0);
}
