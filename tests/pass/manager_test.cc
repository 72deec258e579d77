// PassManager: instruments (verify, size, eval cache by content), gates with rollback/stop, the
// report writer, model clone/hash.
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "doctest/doctest.h"
#include "pass/manager.h"
#include "pass/model_util.h"
#include "pass/report.h"
#include "passes/registry.h"

using namespace asrc;
using nlohmann::json;

namespace {

// x [3,8] -> MatMul(W [8,8]) -> Identity -> y
ir::Model Tiny() {
  auto g = std::make_unique<ir::Graph>("tiny");
  ir::Value* x = g->add_value("x");
  x->type.has_type = true;
  x->type.dtype = ir::DType::Float32;
  x->type.has_shape = true;
  x->type.dims = {ir::Dim{3, ""}, ir::Dim{8, ""}};
  g->inputs.push_back(x);
  std::mt19937 rng(1);
  std::normal_distribution<float> d;
  std::vector<float> w(64);
  for (auto& v : w) v = d(rng);
  ir::Value* vw = g->add_initializer("W", ir::Tensor::FromVector(ir::DType::Float32, {8, 8}, w));
  ir::Node* mm = g->add_node("MatMul", {x, vw}, {"h"}, "mm");
  ir::Node* id = g->add_node("Identity", {mm->outputs[0]}, {"h2"}, "id");
  ir::Node* relu = g->add_node("Relu", {id->outputs[0]}, {"y"}, "relu");
  g->outputs.push_back(relu->outputs[0]);
  ir::Model m;
  ir::GraphFile f;
  f.role = "model";
  f.file = "model.onnx";
  f.opsets = {{"", 17}};
  f.graph = std::move(g);
  m.graphs.push_back(std::move(f));
  return m;
}

pass::Pipeline Parse(const std::string& text) {
  auto p = pass::ParsePipeline(json::parse(text), passes::BuiltinPasses());
  REQUIRE_MESSAGE(p.ok(), p.status().message());
  return p.value();
}

// A fake evaluator: "WER" grows with the number of 8-bit weights (values and zero points), so
// quantization "costs".
struct FakeEval {
  int calls = 0;
  pass::Evaluator fn() {
    return [this](const ir::Model& m) -> Result<json> {
      ++calls;
      int int8 = 0;
      for (const auto* v : m.graphs[0].graph->initializers) {
        int8 += v->initializer->dtype() == ir::DType::Int8 || v->initializer->dtype() == ir::DType::Uint8;
      }
      double wer = 10.0 + 5.0 * int8;
      return json{{"streaming", {{"wer", wer + 1}, {"cer", 1.0}, {"rtf", 0.1}, {"chunk_ms_p50", 1.0}, {"chunk_ms_p90", 2.0}}},
                  {"lookahead", {{"wer", wer}, {"cer", 1.0}, {"rtf", 0.2}, {"final_ms_p50", 3.0}, {"final_ms_p90", 4.0}}}};
    };
  }
};

}  // namespace

TEST_CASE("clone and content hash") {
  ir::Model m = Tiny();
  ir::Model c = pass::CloneModel(m);
  CHECK(pass::ModelHash(m) == pass::ModelHash(c));
  CHECK(c.graphs[0].graph->verify().ok());
  CHECK(c.graphs[0].graph->num_nodes() == m.graphs[0].graph->num_nodes());
  CHECK(c.graphs[0].graph->initializers[0]->initializer->shares_buffer_with(
      *m.graphs[0].graph->initializers[0]->initializer));
  c.graphs[0].graph->nodes()[2]->op_type = "Sigmoid";
  CHECK(pass::ModelHash(m) != pass::ModelHash(c));
  json s = pass::SizeJson(m);
  CHECK(s["params"] == 64);
  CHECK(s["bytes"] == 256);
  CHECK(s["graphs"]["model"]["nodes"] == 3);
}

TEST_CASE("manager: rows per pass, sizes, verify, eval cached by content") {
  ir::Model m = Tiny();
  FakeEval fake;
  pass::PassManager pm(passes::BuiltinPasses(),
                       Parse(R"({"passes": ["cleanup", "cleanup", {"pass": "quantize-int8", "options": {"min_elements": 1}}]})"));
  pm.AddInstrument(pass::MakeVerifyInstrument());
  pm.AddInstrument(pass::MakeSizeInstrument());
  auto* eval = new pass::EvalInstrument(fake.fn());
  pm.AddInstrument(std::unique_ptr<pass::Instrument>(eval));
  auto r = pm.Run(m);
  REQUIRE_MESSAGE(r.ok(), r.status().message());
  const json& rows = r->rows;
  REQUIRE(rows.size() == 4);
  CHECK(rows[0]["pass"] == "input");
  CHECK(rows[1]["pass"] == "cleanup");
  CHECK(rows[1]["changed"] == true);
  CHECK(rows[2]["changed"] == false);
  CHECK(rows[2]["eval_cached"] == true);  // the second cleanup changed nothing
  CHECK(rows[1]["counters"]["identities_removed"] == 1);
  CHECK(rows[3]["bytes"].get<int64_t>() < rows[0]["bytes"].get<int64_t>());
  CHECK(rows[3]["lookahead"]["wer"].get<double>() > 10.0);
  CHECK(rows[3].contains("streaming"));
  CHECK(rows[3]["step"].get<std::string>().rfind("quantize-int8{", 0) == 0);
  CHECK(eval->evaluations() == 3);  // input, cleanup, quantize (second cleanup hit the cache)
  CHECK(fake.calls == 3);
}

TEST_CASE("manager: gate rollback restores the model and the run goes on; stop ends it") {
  {
    ir::Model m = Tiny();
    FakeEval fake;
    pass::PassManager pm(passes::BuiltinPasses(),
                         Parse(R"({"gates": {"max_rel_increase_per_pass": 2, "on_fail": "rollback"},
                                   "passes": [{"pass": "quantize-int8", "options": {"min_elements": 1}}, "cleanup"]})"));
    pm.AddInstrument(pass::MakeSizeInstrument());
    pm.AddInstrument(std::make_unique<pass::EvalInstrument>(fake.fn()));
    const uint64_t h = pass::ModelHash(m);
    auto r = pm.Run(m);
    REQUIRE(r.ok());
    CHECK_FALSE(r->stopped);
    REQUIRE(r->rows.size() == 3);
    CHECK(r->rows[1]["gate"]["passed"] == false);
    CHECK(r->rows[1]["rolled_back"] == true);
    CHECK(r->rows[2]["gate"]["passed"] == true);  // judged against the input, not the rolled-back row
    CHECK(pass::ModelHash(m) != h);                // cleanup still ran
    for (const auto* v : m.graphs[0].graph->initializers) CHECK(v->initializer->dtype() == ir::DType::Float32);
  }
  {
    ir::Model m = Tiny();
    FakeEval fake;
    pass::PassManager pm(passes::BuiltinPasses(),
                         Parse(R"({"passes": [{"pass": "quantize-int8", "options": {"min_elements": 1},
                                               "gate": {"max_abs_increase_per_pass": 1, "on_fail": "stop"}}, "cleanup"]})"));
    pm.AddInstrument(std::make_unique<pass::EvalInstrument>(fake.fn()));
    auto r = pm.Run(m);
    REQUIRE(r.ok());
    CHECK(r->stopped);
    CHECK(r->rows.size() == 2);
    CHECK(r->stop_reason.find("quantize-int8") != std::string::npos);
  }
}

TEST_CASE("gate arithmetic") {
  pass::Gate g;
  g.max_rel_increase_per_pass = 3.0;
  json in = {{"lookahead", {{"wer", 10.0}}}};
  CHECK(pass::CheckGate(g, in, in, json{{"lookahead", {{"wer", 10.29}}}}).empty());
  CHECK_FALSE(pass::CheckGate(g, in, in, json{{"lookahead", {{"wer", 10.31}}}}).empty());
  g.mode = "streaming";
  CHECK(pass::CheckGate(g, in, in, in).find("not measured") != std::string::npos);
}

TEST_CASE("report: json, markdown table and self-contained html with svg plots") {
  ir::Model m = Tiny();
  FakeEval fake;
  pass::Pipeline p = Parse(R"({"passes": ["cleanup", {"pass": "quantize-int8", "options": {"min_elements": 1}}]})");
  pass::PassManager pm(passes::BuiltinPasses(), p);
  pm.AddInstrument(pass::MakeSizeInstrument());
  pm.AddInstrument(std::make_unique<pass::EvalInstrument>(fake.fn()));
  auto r = pm.Run(m);
  REQUIRE(r.ok());
  json report = {{"pipeline", p.Canonical()}, {"name", "t"}, {"model", "in"}, {"output", "out"}, {"rows", r->rows}};
  auto dir = std::filesystem::temp_directory_path() / "asrc_report_test";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  REQUIRE(pass::WriteReport(dir.string(), report).ok());
  std::stringstream md, html;
  md << std::ifstream(dir / "report.md").rdbuf();
  html << std::ifstream(dir / "report.html").rdbuf();
  json back = json::parse(std::ifstream(dir / "report.json"));
  CHECK(back["pipeline"] == p.Canonical());
  CHECK(back["rows"].size() == 3);
  CHECK(md.str().find("| 2 | quantize-int8 |") != std::string::npos);
  CHECK(md.str().find("| 10.00 |") != std::string::npos);
  const std::string h = html.str();
  CHECK(h.find("<svg") != std::string::npos);
  CHECK(h.find("<circle") != std::string::npos);
  CHECK(h.find("<rect") != std::string::npos);
  CHECK(h.find("<script") == std::string::npos);
  // No network: the only URL is the SVG namespace.
  size_t pos = 0;
  while ((pos = h.find("http", pos)) != std::string::npos) {
    CHECK(h.compare(pos, 26, "http://www.w3.org/2000/svg") == 0);
    ++pos;
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE("eval instrument: repeat keeps the fastest run; cache by content") {
  int calls = 0;
  pass::EvalInstrument ev([&](const ir::Model&) -> Result<json> {
    ++calls;
    double rtf = calls == 2 ? 0.1 : 0.3;  // the second run is the fastest
    return json{{"streaming", {{"wer", 5.0}, {"rtf", rtf}}}, {"lookahead", {{"wer", 4.0}, {"rtf", rtf}}}};
  }, 3);
  ir::Model m = Tiny();
  json row;
  REQUIRE(ev.AfterPass("input", m, false, row).ok());
  CHECK(calls == 3);
  CHECK(row["streaming"]["rtf"] == 0.1);
  CHECK(row["eval_repeat"] == 3);
  json again;
  REQUIRE(ev.AfterPass("cleanup", m, false, again).ok());
  CHECK(calls == 3);
  CHECK(again["eval_cached"] == true);
}

namespace {
// Breaks the IR on purpose: a node reads a value nothing defines.
class BreakerPass : public pass::Pass {
 public:
  std::string name() const override { return "breaker"; }
  std::string description() const override { return "test: makes the graph invalid"; }
  std::vector<pass::OptionSpec> options() const override { return {}; }
  Result<bool> Run(ir::Model& m, pass::PassContext&) override {
    ir::Graph& g = *m.graphs[0].graph;
    g.add_node("Relu", {g.add_value("ghost")}, {"ghost_out"}, "bad");
    return true;
  }
};
}  // namespace

TEST_CASE("verify instrument: an invalid graph after a pass is an error naming the pass") {
  pass::PassRegistry reg;
  reg.Register("breaker", [] { return std::make_unique<BreakerPass>(); });
  auto p = pass::ParsePipeline(json::parse(R"({"passes": ["breaker"]})"), reg);
  REQUIRE(p.ok());
  pass::PassManager pm(reg, p.value());
  pm.AddInstrument(pass::MakeVerifyInstrument());
  ir::Model m = Tiny();
  auto r = pm.Run(m);
  REQUIRE_FALSE(r.ok());
  MESSAGE(r.status().message());
  CHECK(r.status().message().rfind("after pass breaker: graph 'model': ", 0) == 0);
}
