// `asrc passes` and `asrc compress` end to end: bad pipelines fail before any work naming the
// problem; a small compress run writes the model and the three reports; on the teacher bundle, a
// short evaluated run fills the WER/latency columns.
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "doctest/doctest.h"
#include "ir/model.h"
#include "onnx/onnx_io.h"
#include "passes/pass_test_util.h"
#include "reference.h"
#include "test_io.h"

namespace fs = std::filesystem;
using namespace asrc;

namespace {

using Out = test::CommandOut;

Out Run(const std::string& args) { return test::RunCommand(std::string(ASRC_BIN) + " " + args); }

fs::path Tmp() {
  auto p = fs::temp_directory_path() / ("asrc_cli_compress_test_" + std::to_string(getpid()));
  fs::create_directories(p);
  return p;
}

void Write(const fs::path& p, const std::string& s) { std::ofstream(p) << s; }

// x [4,32] -> MatMul(W [32,32]) -> Identity -> Relu -> y, saved as a lone .onnx
std::string TinyOnnx(const fs::path& dir) {
  auto g = std::make_unique<ir::Graph>("tiny");
  ir::Value* x = test::Input(*g, "x", ir::DType::Float32, {4, 32});
  std::mt19937 rng(1);
  std::normal_distribution<float> d;
  std::vector<float> w(32 * 32);
  for (auto& v : w) v = d(rng);
  ir::Value* vw = g->AddInitializer("W", ir::Tensor::FromVector(ir::DType::Float32, {32, 32}, w));
  ir::Node* mm = g->AddNode("MatMul", {x, vw}, {"h"}, "mm");
  ir::Node* id = g->AddNode("Identity", {mm->outputs[0]}, {"h2"}, "id");
  ir::Node* r = g->AddNode("Relu", {id->outputs[0]}, {"y"}, "relu");
  test::Output(*g, r->outputs[0], {4, 32});
  ir::Model m = test::SingleGraphModel(std::move(g));
  m.graphs[0].file = "tiny.onnx";
  std::string path = (dir / "tiny.onnx").string();
  Status st = onnx_io::SaveModel(m, path);
  REQUIRE_MESSAGE(st.ok(), st.message());
  return path;
}

}  // namespace

TEST_CASE("asrc passes lists every pass with options and defaults") {
  Out o = Run("passes");
  CHECK(o.code == 0);
  for (const char* s : {"cleanup", "quantize-int8", "low-rank", "prune", "reduce_range", "per_channel",
                        "sparsity", "energy", "data_aware"}) {
    CHECK_MESSAGE(o.text.find(s) != std::string::npos, s);
  }
}

TEST_CASE("asrc compress: bad pipeline, model or eval data fail before any work") {
  fs::path dir = Tmp();
  std::string tiny = TinyOnnx(dir);
  Write(dir / "bad_pass.json", R"({"passes": ["cleanup", "quantize-int4"]})");
  Write(dir / "bad_opt.json", R"({"passes": [{"pass": "prune", "options": {"sparsity": "lots"}}]})");
  Write(dir / "bad_json.json", R"({"passes": [)");
  Write(dir / "ok.json", R"({"passes": ["cleanup"]})");
  Out o = Run("compress --pipeline " + (dir / "bad_pass.json").string() + " --model " + tiny + " --out " + (dir / "o1").string());
  CHECK(o.code == 1);
  CHECK(o.text.find("$.passes[1]: unknown pass 'quantize-int4'") != std::string::npos);
  CHECK_FALSE(fs::exists(dir / "o1"));
  o = Run("compress --pipeline " + (dir / "bad_opt.json").string() + " --model " + tiny + " --out " + (dir / "o2").string());
  CHECK(o.code == 1);
  CHECK(o.text.find("$.passes[0].options.sparsity: expected a number") != std::string::npos);
  o = Run("compress --pipeline " + (dir / "bad_json.json").string() + " --model " + tiny + " --out " + (dir / "o3").string());
  CHECK(o.code == 1);
  CHECK(o.text.find("not valid JSON") != std::string::npos);
  o = Run("compress --pipeline " + (dir / "ok.json").string() + " --model " + (dir / "nope").string() + " --out " + (dir / "o4").string());
  CHECK(o.code == 1);
  CHECK(o.text.find("does not exist") != std::string::npos);
  o = Run("compress --pipeline " + (dir / "ok.json").string() + " --model " + tiny + " --eval " + (dir / "missing.jsonl").string() + " --out " + (dir / "o5").string());
  CHECK(o.code == 1);
  CHECK(o.text.find("missing.jsonl") != std::string::npos);
  CHECK_FALSE(fs::exists(dir / "o5"));
  fs::remove_all(dir);
}

TEST_CASE("asrc compress on a tiny model writes model and reports") {
  fs::path dir = Tmp();
  std::string tiny = TinyOnnx(dir);
  Write(dir / "p.json", R"({"name": "tiny", "passes": ["cleanup", {"pass": "quantize-int8", "options": {"min_elements": 16}}]})");
  Out o = Run("compress --quiet --no-eval --pipeline " + (dir / "p.json").string() + " --model " + tiny + " --out " + (dir / "out").string());
  INFO(o.text);
  REQUIRE(o.code == 0);
  CHECK(fs::exists(dir / "out" / "model.onnx"));
  CHECK(fs::exists(dir / "out" / "report.md"));
  CHECK(fs::exists(dir / "out" / "report.html"));
  auto report = nlohmann::json::parse(std::ifstream(dir / "out" / "report.json"));
  CHECK(report["pipeline"].get<std::string>().find("cleanup{") != std::string::npos);
  REQUIRE(report["rows"].size() == 3);
  CHECK(report["rows"][0]["pass"] == "input");
  CHECK(report["rows"][2]["pass"] == "quantize-int8");
  CHECK(report["rows"][2]["bytes"].get<int64_t>() * 3 < report["rows"][0]["bytes"].get<int64_t>());
  auto back = onnx_io::LoadModel((dir / "out" / "model.onnx").string());
  REQUIRE_MESSAGE(back.ok(), back.status().message());
  int mmi = 0;
  for (const ir::Node* n : back->graphs[0].graph->nodes()) mmi += n->op_type == "MatMulInteger";
  CHECK(mmi == 1);
  // Never over the input: the output model would replace the model being read.
  o = Run("compress --quiet --no-eval --pipeline " + (dir / "p.json").string() + " --model " +
          (dir / "out" / "model.onnx").string() + " --out " + (dir / "out").string());
  CHECK(o.code == 1);
  CHECK(o.text.find("would write over the input") != std::string::npos);
  fs::remove_all(dir);
}

TEST_CASE("asrc compress with evaluation on the teacher bundle") {
  const std::string bundle = ASRC_SOURCE_DIR "/experiments/teacher/bundle";
  const std::string data = ASRC_SOURCE_DIR "/experiments/data/default_eval/manifest.jsonl";
  if (!test::HaveReference(fs::exists(bundle + "/model.json"), "the committed teacher bundle " + bundle)) return;
  if (!test::HaveReference(fs::exists(data), "the committed default eval set " + data)) return;
  fs::path dir = Tmp();
  Write(dir / "p.json", R"({"passes": [{"pass": "quantize-int8", "options": {"graphs": ["joiner"]}}]})");
  Out o = Run("compress --quiet --eval-limit 2 --pipeline " + (dir / "p.json").string() + " --model " + bundle +
              " --eval " + data + " --out " + (dir / "out").string());
  INFO(o.text);
  REQUIRE(o.code == 0);
  auto report = nlohmann::json::parse(std::ifstream(dir / "out" / "report.json"));
  REQUIRE(report["rows"].size() == 2);
  for (const auto& row : report["rows"]) {
    CHECK(row["streaming"]["utterances"] == 2);
    CHECK(row["lookahead"].contains("wer"));
    CHECK(row["lookahead"].contains("final_ms_p50"));
    CHECK(row["streaming"].contains("chunk_ms_p90"));
  }
  CHECK(fs::exists(dir / "out" / "model" / "model.json"));
  fs::remove_all(dir);
}
