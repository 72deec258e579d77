// drop-layers on the demo teacher bundle: blocks found with and without the exporter's names,
// caches and model.json after a drop, the greedy importance order, and bad input. Numerics
// against PyTorch without the block: drop_layers_torch_test (experiments/drop_layers/torch_check.py).
#include "passes/drop_layers.h"

#include "passes/pass_test_util.h"

namespace asrc {
namespace {

const std::string kBundle = ASRC_SOURCE_DIR "/experiments/teacher/bundle";

ir::Model Teacher() {
  auto m = onnx_io::LoadModel(kBundle);
  REQUIRE_MESSAGE(m.ok(), m.status().message());
  return m.value();
}

Result<bool> Run(ir::Model& m, const nlohmann::json& options, pass::WerProbe probe = nullptr,
                 std::map<std::string, int64_t>* counters = nullptr, std::vector<std::string>* notes = nullptr) {
  passes::DropLayersPass p;
  return test::RunPassResult(p, m, options, std::move(probe), counters, notes);
}

// Seeded inputs of one chunk of the causal encoder: features and caches N(0,1), offset 16.
std::vector<ir::Tensor> ChunkInputs(const ir::Graph& g) {
  std::mt19937_64 rng(7);
  std::vector<ir::Tensor> in;
  for (const ir::Value* v : g.inputs) {
    ir::Shape shape;
    for (const ir::Dim& d : v->type.dims) shape.push_back(d.value);
    if (v->type.dtype == ir::DType::Int64) {
      in.push_back(ir::Tensor::FromVector<int64_t>(ir::DType::Int64, shape, {16}));
    } else {
      in.push_back(test::RandomTensor(shape, rng));
    }
  }
  return in;
}

std::vector<ir::Tensor> RunChunk(const ir::Graph& g) { return test::RunAsrc(g, ChunkInputs(g)); }

// The stacked slices of layers `keep` of each cache input, for a model with fewer layers.
std::vector<ir::Tensor> KeepSlices(const std::vector<ir::Tensor>& t, const std::vector<int>& keep) {
  std::vector<ir::Tensor> out;
  for (const ir::Tensor& x : t) {
    if (x.rank() != 4) {
      out.push_back(x);
      continue;
    }
    ir::Shape s = x.shape();
    const int64_t per = x.numel() / s[0];
    s[0] = static_cast<int64_t>(keep.size());
    ir::Tensor y(ir::DType::Float32, s);
    for (size_t i = 0; i < keep.size(); ++i) {
      std::copy(x.data<float>() + keep[i] * per, x.data<float>() + (keep[i] + 1) * per, y.data<float>() + i * per);
    }
    out.push_back(y);
  }
  return out;
}

TEST_CASE("drop-layers: dropping nothing changes nothing") {
  ir::Model m = Teacher();
  const uint64_t h = ir::ContentHash(m);
  auto r = Run(m, {{"count", 0}});
  REQUIRE_MESSAGE(r.ok(), r.status().message());
  CHECK_FALSE(r.value());
  CHECK(ir::ContentHash(m) == h);
}

TEST_CASE("drop-layers: the teacher's blocks, and block 3 dropped with its cache slices") {
  ir::Model m = Teacher();
  auto s = passes::drop::FindBlocks(*m.graph("encoder_causal"), "encoder_causal", "", "");
  REQUIRE_MESSAGE(s.ok(), s.status().message());
  REQUIRE(s.value().blocks.size() == 7);
  CHECK(s.value().found_by == "repetition+names");
  for (int b = 0; b < 7; ++b) CHECK(s.value().blocks[b].label == "layers." + std::to_string(b));
  auto nc = passes::drop::FindBlocks(*m.graph("encoder_noncausal"), "encoder_noncausal", "", "");
  REQUIRE_MESSAGE(nc.ok(), nc.status().message());
  CHECK(nc.value().blocks.size() == 2);

  const int64_t params = m.graph("encoder_causal")->NumParams();
  std::map<std::string, int64_t> counters;
  auto r = Run(m, {{"method", "index"}, {"blocks", "3"}}, nullptr, &counters);
  REQUIRE_MESSAGE(r.ok(), r.status().message());
  CHECK(r.value());
  // One conformer layer of model.py (d 144, ff 576, kernel 15): two FFNs, attention, conv module,
  // final norm; plus the three new index constants of layers 4..6.
  const int64_t d = 144, ff = 576, k = 15;
  const int64_t layer = 2 * (2 * d * ff + ff + d + 2 * d) + (4 * (d * d + d) + 2 * d) +
                        (2 * d * d + 2 * d + d * k + d + 4 * d + d * d + d) + 2 * d;
  CHECK(params - m.graph("encoder_causal")->NumParams() == layer - 3);
  CHECK(counters["blocks_dropped"] == 1);
  CHECK(counters["caches_shrunk"] == 3);
  const ir::Graph& g = *m.graph("encoder_causal");
  for (int i = 1; i <= 3; ++i) {
    CHECK(g.inputs[i]->type.dims[0].value == 6);
    CHECK(g.outputs[i]->type.dims[0].value == 6);
    CHECK(m.config["streaming"]["cache"][i - 1]["shape"][0] == 6);
  }
  CHECK(m.config["info"]["model_config"]["causal_layers"] == 6);
  CHECK(test::CountOps(g, "LayerNormalization") == 1 + 6 * 6);  // front end + 6 layers of 6 norms

  // Layers 0..2 are untouched: fed the teacher's cache slices without slice 3, they write the
  // teacher's new slices 0..2 (the renumbered Gathers of layers 4..6 read slices 3..5).
  ir::Model t = Teacher();
  const std::vector<ir::Tensor> in = ChunkInputs(*t.graph("encoder_causal"));
  auto full = test::RunAsrc(*t.graph("encoder_causal"), in);
  auto dropped = test::RunAsrc(g, KeepSlices(in, {0, 1, 2, 4, 5, 6}));
  auto want = KeepSlices({full[1], full[2], full[3]}, {0, 1, 2});
  auto got = KeepSlices({dropped[1], dropped[2], dropped[3]}, {0, 1, 2});
  for (int i = 0; i < 3; ++i) CHECK(test::BitEqual(got[i], want[i]));
}

// Every node and weight renamed: what is left is structure.
ir::Model Anonymous(const ir::Model& teacher, const std::string& dir) {
  ir::Model m = teacher;
  for (auto& gf : m.graphs) {
    int i = 0;
    for (ir::Node* n : gf.graph->nodes()) n->name = "n" + std::to_string(i++);
    for (ir::Value* v : gf.graph->initializers) v->name = "w" + std::to_string(i++);
  }
  const std::string path = m.is_bundle ? dir : dir + "/model.onnx";
  REQUIRE(onnx_io::SaveModel(m, path).ok());
  auto back = onnx_io::LoadModel(path);
  REQUIRE_MESSAGE(back.ok(), back.status().message());
  return back.value();
}

TEST_CASE("drop-layers: without names the blocks are found by structure alone, same cut") {
  ir::Model named = Teacher();
  ir::Model anon = Anonymous(named, test::TempDir("drop_anon"));
  auto s = passes::drop::FindBlocks(*anon.graph("encoder_causal"), "encoder_causal", "", "");
  REQUIRE_MESSAGE(s.ok(), s.status().message());
  CHECK(s.value().blocks.size() == 7);
  CHECK(s.value().found_by == "repetition");
  for (const std::string blocks : {"0", "3", "6", "0,2,4,5"}) {
    ir::Model a = anon, b = named;
    REQUIRE(Run(a, {{"method", "index"}, {"blocks", blocks}}).ok());
    REQUIRE(Run(b, {{"method", "index"}, {"blocks", blocks}}).ok());
    auto oa = RunChunk(*a.graph("encoder_causal"));
    auto ob = RunChunk(*b.graph("encoder_causal"));
    REQUIRE(oa.size() == ob.size());
    for (size_t i = 0; i < oa.size(); ++i) CHECK_MESSAGE(test::BitEqual(oa[i], ob[i]), blocks);
    CHECK(a.graph("encoder_causal")->NumParams() == b.graph("encoder_causal")->NumParams());
  }
}

TEST_CASE("drop-layers: another exporter's conformers (tests/fixtures): weights behind Identity copies") {
  for (const char* f : {"conformer.onnx", "conformer_causal.onnx"}) {
    auto m = onnx_io::LoadModel(std::string(ASRC_SOURCE_DIR "/tests/fixtures/") + f);
    REQUIRE_MESSAGE(m.ok(), m.status().message());
    ir::Model anon = Anonymous(m.value(), test::TempDir("drop_fixture"));
    auto s = passes::drop::FindBlocks(*anon.graph("model"), "model", "", "");
    REQUIRE_MESSAGE(s.ok(), s.status().message());
    CHECK_MESSAGE(s.value().blocks.size() == 2, f);
    CHECK(s.value().found_by == "repetition");
    ir::Model named = m.value();
    REQUIRE(Run(named, {{"method", "index"}, {"blocks", "1"}, {"graphs", {"model"}}}).ok());
    REQUIRE(Run(anon, {{"method", "index"}, {"blocks", "1"}, {"graphs", {"model"}}}).ok());
    CHECK(named.graph("model")->NumParams() == anon.graph("model")->NumParams());
    CHECK(named.graph("model")->NumParams() < m.value().graph("model")->NumParams());
  }
}

TEST_CASE("drop-layers: importance drops, round by round, the block whose removal costs least") {
  ir::Model m = Teacher();
  // A stand-in for dev WER: 10 plus the cost of each missing layer.
  const std::vector<double> cost = {5, 1, 7, 3, 9, 2, 8};
  pass::WerProbe probe = [&](const ir::Model& x, const std::string&, const std::string& split, int limit)
      -> Result<std::map<std::string, double>> {
    CHECK(split == "dev");
    CHECK(limit == 4);
    double wer = 10;
    for (int k = 0; k < 7; ++k) {
      if (!x.find("encoder_causal")->graph->FindValue("enc.layers." + std::to_string(k) + ".norm.weight")) wer += cost[k];
    }
    return std::map<std::string, double>{{"streaming", wer}, {"lookahead", wer}};
  };
  std::map<std::string, int64_t> counters;
  std::vector<std::string> notes;
  auto r = Run(m, {{"method", "importance"}, {"keep", 4}, {"dev_limit", 4}}, probe, &counters, &notes);
  REQUIRE_MESSAGE(r.ok(), r.status().message());
  CHECK(counters["dev_probes"] == 7 + 6 + 5);
  const ir::Graph& g = *m.graph("encoder_causal");
  for (int k = 0; k < 7; ++k) {
    const bool gone = k == 1 || k == 3 || k == 5;
    CHECK_MESSAGE((g.FindValue("enc.layers." + std::to_string(k) + ".norm.weight") == nullptr) == gone, k);
  }
  REQUIRE(notes.size() == 4);
  CHECK(notes[0].find("round 1 drops block 1") != std::string::npos);
  CHECK(notes[2].find("round 3 drops block 3") != std::string::npos);
}

TEST_CASE("drop-layers: bad input is an error naming the graph, before anything changes") {
  ir::Model m = Teacher();
  const uint64_t h = ir::ContentHash(m);
  auto expect = [&](const nlohmann::json& opts, const std::vector<std::string>& parts) {
    auto r = Run(m, opts);
    REQUIRE_FALSE(r.ok());
    for (const std::string& p : parts) CHECK_MESSAGE(r.status().message().find(p) != std::string::npos, r.status().message());
    CHECK(ir::ContentHash(m) == h);
  };
  expect({{"count", 7}}, {"graph 'encoder_causal' has 7 blocks", "asked to drop 7"});
  expect({{"keep", 0}}, {"graph 'encoder_causal' has 7 blocks"});
  expect({{"method", "index"}, {"blocks", "2,9"}}, {"encoder_causal", "no block 9"});
  expect({{"method", "index"}, {"blocks", "x"}}, {"option 'blocks'"});
  expect({{"graphs", {"joiner"}}}, {"graph 'joiner'", "no block structure found"});
  expect({{"graphs", {"decoder"}}}, {"graph 'decoder'", "no block structure found"});
  expect({{"graphs", {"encoder_*"}}, {"count", 2}}, {"graph 'encoder_noncausal' has 2 blocks"});
  expect({{"output", "nope"}}, {"graph 'encoder_causal' has no output 'nope'"});
  expect({{"method", "importance"}}, {"importance", "cannot"});
}

}  // namespace
}  // namespace asrc
