// PassManager: instruments (verify, size, eval cache by content, honest "changed", should-run),
// gates with rollback/stop, the report writer, model copy/hash.
#include <filesystem>
#include <functional>
#include <fstream>
#include <random>
#include <sstream>

#include "doctest/doctest.h"
#include "pass/instruments.h"
#include "pass/manager.h"
#include "pass/report.h"
#include "passes/registry.h"

using namespace asrc;
using nlohmann::json;

namespace {

// x [3,8] -> MatMul(W [8,8]) -> Identity -> y
ir::Model Tiny() {
  auto g = std::make_unique<ir::Graph>("tiny");
  ir::Value* x = g->AddValue("x");
  x->type.has_type = true;
  x->type.dtype = ir::DType::Float32;
  x->type.has_shape = true;
  x->type.dims = {ir::Dim{3, ""}, ir::Dim{8, ""}};
  g->inputs.push_back(x);
  std::mt19937 rng(1);
  std::normal_distribution<float> d;
  std::vector<float> w(64);
  for (auto& v : w) v = d(rng);
  ir::Value* vw = g->AddInitializer("W", ir::Tensor::FromVector(ir::DType::Float32, {8, 8}, w));
  ir::Node* mm = g->AddNode("MatMul", {x, vw}, {"h"}, "mm");
  ir::Node* id = g->AddNode("Identity", {mm->outputs[0]}, {"h2"}, "id");
  ir::Node* relu = g->AddNode("Relu", {id->outputs[0]}, {"y"}, "relu");
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

pass::ModeEval Scores(double wer, double rtf, double p50, double p90) {
  pass::ModeEval m;
  m.wer = wer;
  m.cer = 1.0;
  m.rtf = rtf;
  m.latency_ms_p50 = p50;
  m.latency_ms_p90 = p90;
  return m;
}

// A fake evaluator: "WER" grows with the number of 8-bit weights (values and zero points), so
// quantization "costs".
struct FakeEval {
  int calls = 0;
  pass::Evaluator fn() {
    return [this](const ir::Model& m) -> Result<pass::EvalSummary> {
      ++calls;
      int int8 = 0;
      for (const auto* v : m.graphs[0].graph->initializers) {
        int8 += v->initializer->dtype() == ir::DType::Int8 || v->initializer->dtype() == ir::DType::Uint8;
      }
      double wer = 10.0 + 5.0 * int8;
      pass::EvalSummary s;
      s.modes["streaming"] = Scores(wer + 1, 0.1, 1.0, 2.0);
      s.modes["lookahead"] = Scores(wer, 0.2, 3.0, 4.0);
      return s;
    };
  }
};

// The instruments Compress() uses, in its order, with `eval` (may be null).
void AddStandard(pass::PassManager& pm, const pass::Pipeline& p, std::unique_ptr<pass::Instrument> eval) {
  pm.AddInstrument(pass::MakeGateInstrument(p));
  if (eval) pm.AddInstrument(std::move(eval));
  pm.AddInstrument(pass::MakeSizeInstrument());
  pm.AddInstrument(pass::MakeVerifyInstrument());
  pm.AddInstrument(pass::MakeChangeCheckInstrument());
  pm.AddInstrument(pass::MakeTimingInstrument());
}

}  // namespace

TEST_CASE("a copy of a model is deep, hashes equal and shares weight buffers") {
  ir::Model m = Tiny();
  ir::Model c = m;
  CHECK(ir::ContentHash(m) == ir::ContentHash(c));
  CHECK(c.graphs[0].graph->Verify().ok());
  CHECK(c.graphs[0].graph.get() != m.graphs[0].graph.get());
  CHECK(c.graphs[0].graph->num_nodes() == m.graphs[0].graph->num_nodes());
  CHECK(c.graphs[0].graph->initializers[0]->initializer->SharesBufferWith(
      *m.graphs[0].graph->initializers[0]->initializer));
  c.graphs[0].graph->nodes()[2]->op_type = "Sigmoid";
  CHECK(ir::ContentHash(m) != ir::ContentHash(c));
  CHECK(m.graphs[0].graph->nodes()[2]->op_type == "Relu");
}

TEST_CASE("size instrument: params, unique bytes and nodes per graph, as inspect counts them") {
  ir::Model m = Tiny();
  pass::PassRecord r;
  REQUIRE(pass::MakeSizeInstrument()->After(r, m).ok());
  REQUIRE(r.size);
  CHECK(r.size->params == 64);
  CHECK(r.size->bytes == 256);
  CHECK(r.size->graphs.at("model").nodes == 3);
  CHECK(r.size->graphs.at("model").bytes == ir::UniqueWeightBytes({m.graphs[0].graph.get()}));
}

TEST_CASE("manager: records per pass, sizes, verify, eval cached by content") {
  ir::Model m = Tiny();
  FakeEval fake;
  pass::Pipeline p = Parse(R"({"passes": ["cleanup", "cleanup", {"pass": "quantize-int8", "options": {"min_elements": 1}}]})");
  pass::PassManager pm(passes::BuiltinPasses(), p);
  auto* eval = new pass::EvalInstrument(fake.fn());
  AddStandard(pm, p, std::unique_ptr<pass::Instrument>(eval));
  auto r = pm.Run(m);
  REQUIRE_MESSAGE(r.ok(), r.status().message());
  const auto& rec = r->records;
  REQUIRE(rec.size() == 4);
  CHECK(rec[0].is_input());
  CHECK(rec[0].pass == "input");
  CHECK(rec[1].pass == "cleanup");
  CHECK(rec[1].changed);
  CHECK_FALSE(rec[2].changed);
  CHECK(rec[2].eval->cached);  // the second cleanup changed nothing
  CHECK(rec[2].hash == rec[1].hash);
  CHECK(rec[1].counters.at("identities_removed") == 1);
  CHECK(rec[3].size->bytes < rec[0].size->bytes);
  CHECK(rec[3].eval->mode("lookahead")->wer > 10.0);
  CHECK(rec[3].eval->mode("streaming"));
  CHECK(rec[3].step.rfind("quantize-int8{", 0) == 0);
  CHECK(rec[3].wall_s > 0);
  CHECK(eval->evaluations() == 3);  // input, cleanup, quantize (second cleanup hit the cache)
  CHECK(fake.calls == 3);
}

TEST_CASE("manager: gate rollback restores the model and the run goes on; stop ends it") {
  {
    ir::Model m = Tiny();
    FakeEval fake;
    pass::Pipeline p = Parse(R"({"gates": {"max_rel_increase_per_pass": 2, "on_fail": "rollback"},
                                  "passes": [{"pass": "quantize-int8", "options": {"min_elements": 1}}, "cleanup"]})");
    pass::PassManager pm(passes::BuiltinPasses(), p);
    AddStandard(pm, p, std::make_unique<pass::EvalInstrument>(fake.fn()));
    const uint64_t h = ir::ContentHash(m);
    auto r = pm.Run(m);
    REQUIRE(r.ok());
    CHECK_FALSE(r->stopped);
    REQUIRE(r->records.size() == 3);
    REQUIRE(r->records[1].gate);
    CHECK_FALSE(r->records[1].gate->passed);
    CHECK(r->records[1].gate->reason.rfind("lookahead wer", 0) == 0);  // no mode: the final one
    CHECK(r->records[1].rolled_back);
    CHECK(r->records[2].gate->passed);  // judged against the input, not the rolled-back record
    CHECK(ir::ContentHash(m) != h);    // cleanup still ran
    for (const auto* v : m.graphs[0].graph->initializers) CHECK(v->initializer->dtype() == ir::DType::Float32);
  }
  {
    ir::Model m = Tiny();
    FakeEval fake;
    pass::Pipeline p = Parse(R"({"passes": [{"pass": "quantize-int8", "options": {"min_elements": 1},
                                              "gate": {"max_abs_increase_per_pass": 1, "on_fail": "stop"}}, "cleanup"]})");
    pass::PassManager pm(passes::BuiltinPasses(), p);
    AddStandard(pm, p, std::make_unique<pass::EvalInstrument>(fake.fn()));
    auto r = pm.Run(m);
    REQUIRE(r.ok());
    CHECK(r->stopped);
    CHECK(r->records.size() == 2);
    CHECK(r->stop_reason.find("quantize-int8") != std::string::npos);
  }
}

TEST_CASE("gate arithmetic") {
  pass::Gate g;
  g.max_rel_increase_per_pass = 3.0;
  auto la = [](double wer) {
    pass::EvalSummary s;
    s.modes["lookahead"].wer = wer;
    return s;
  };
  pass::EvalSummary in = la(10.0), ok = la(10.29), bad = la(10.31);
  CHECK(pass::CheckGate(g, &in, &in, &ok).empty());
  CHECK_FALSE(pass::CheckGate(g, &in, &in, &bad).empty());
  CHECK(pass::CheckGate(g, &in, &in, nullptr).empty());  // not evaluated: nothing to judge
  g.mode = "streaming";
  CHECK(pass::CheckGate(g, &in, &in, &in).find("not measured") != std::string::npos);
}

TEST_CASE("report: json, markdown table and self-contained html with svg plots") {
  ir::Model m = Tiny();
  FakeEval fake;
  pass::Pipeline p = Parse(R"({"passes": ["cleanup", {"pass": "quantize-int8", "options": {"min_elements": 1}}]})");
  pass::PassManager pm(passes::BuiltinPasses(), p);
  AddStandard(pm, p, std::make_unique<pass::EvalInstrument>(fake.fn()));
  auto r = pm.Run(m);
  REQUIRE(r.ok());
  pass::CompressReport report;
  report.pipeline = p.Canonical();
  report.name = "t";
  report.model = "in";
  report.output = "out";
  report.modes = {"streaming", "lookahead"};
  report.records = r->records;
  auto dir = std::filesystem::temp_directory_path() / "asrc_report_test";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  REQUIRE(pass::WriteReport(dir.string(), report).ok());
  std::stringstream md, html;
  md << std::ifstream(dir / "report.md").rdbuf();
  html << std::ifstream(dir / "report.html").rdbuf();
  json back = json::parse(std::ifstream(dir / "report.json"));
  CHECK(back["pipeline"] == p.Canonical());
  REQUIRE(back["rows"].size() == 3);
  CHECK(back["rows"][2]["lookahead"]["wer"].get<double>() > 10.0);
  CHECK(back["rows"][2]["streaming"]["chunk_ms_p90"] == 2.0);
  CHECK(back["rows"][2]["lookahead"]["final_ms_p50"] == 3.0);
  CHECK(back["rows"][2]["counters"].contains("matmul_integer"));
  CHECK(back["rows"][0]["hash"].get<std::string>().size() == 16);
  CHECK(md.str().find("| WER str | WER la | dWER la vs input |") != std::string::npos);
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
  pass::EvalInstrument ev([&](const ir::Model&) -> Result<pass::EvalSummary> {
    ++calls;
    double rtf = calls == 2 ? 0.1 : 0.3;  // the second run is the fastest
    pass::EvalSummary s;
    s.modes["streaming"] = Scores(5.0, rtf, 1, 2);
    s.modes["lookahead"] = Scores(4.0, rtf, 1, 2);
    return s;
  }, 3);
  ir::Model m = Tiny();
  pass::PassRecord input;
  REQUIRE(ev.After(input, m).ok());
  CHECK(calls == 3);
  CHECK(input.eval->mode("streaming")->rtf == 0.1);
  CHECK(input.eval->repeat == 3);
  CHECK_FALSE(input.eval->cached);
  pass::PassRecord again;
  again.index = 1;
  REQUIRE(ev.After(again, m).ok());
  CHECK(calls == 3);
  CHECK(again.eval->cached);
}

namespace {
// A test pass: `run` is its body.
class FnPass : public pass::Pass {
 public:
  FnPass(std::string name, std::function<bool(ir::Model&)> run) : name_(std::move(name)), run_(std::move(run)) {}
  std::string name() const override { return name_; }
  std::string description() const override { return "test pass"; }
  std::vector<pass::OptionSpec> options() const override { return {}; }
  Result<bool> Run(ir::Model& m, pass::PassContext&) override { return run_(m); }

 private:
  std::string name_;
  std::function<bool(ir::Model&)> run_;
};

// Skips every step of one pass.
class SkipInstrument : public pass::Instrument {
 public:
  explicit SkipInstrument(std::string pass) : pass_(std::move(pass)) {}
  std::string name() const override { return "skip"; }
  bool ShouldRun(const pass::PassRecord& r, const ir::Model&) override { return r.pass != pass_; }
  std::string pass_;
};

pass::PassRegistry TestRegistry() {
  pass::PassRegistry reg;
  reg.Register("breaker", [] {  // breaks the IR: a node reads a value nothing defines
    return std::make_unique<FnPass>("breaker", [](ir::Model& m) {
      ir::Graph& g = *m.graphs[0].graph;
      g.AddNode("Relu", {g.AddValue("ghost")}, {"ghost_out"}, "bad");
      return true;
    });
  });
  reg.Register("liar", [] {  // changes the model but says it did not
    return std::make_unique<FnPass>("liar", [](ir::Model& m) {
      m.graphs[0].graph->nodes().back()->op_type = "Sigmoid";
      return false;
    });
  });
  reg.Register("cleanup", [] { return passes::BuiltinPasses().Create("cleanup"); });
  return reg;
}
}  // namespace

// Runs `pipeline` (over TestRegistry) on Tiny() with `instrument`; returns the run's error.
std::string RunError(const std::string& pipeline, std::unique_ptr<pass::Instrument> instrument) {
  pass::PassRegistry reg = TestRegistry();
  auto p = pass::ParsePipeline(json::parse(pipeline), reg);
  REQUIRE(p.ok());
  pass::PassManager pm(reg, p.value());
  pm.AddInstrument(std::move(instrument));
  ir::Model m = Tiny();
  auto r = pm.Run(m);
  REQUIRE_FALSE(r.ok());
  MESSAGE(r.status().message());
  return r.status().message();
}

TEST_CASE("verify instrument: an invalid graph after a pass is an error naming the pass") {
  CHECK(RunError(R"({"passes": ["breaker"]})", pass::MakeVerifyInstrument())
            .rfind("after pass breaker: graph 'model': ", 0) == 0);
}

TEST_CASE("change check: a pass that says 'unchanged' but changed the model is an error naming it") {
  CHECK(RunError(R"({"passes": ["cleanup", "liar"]})", pass::MakeChangeCheckInstrument())
            .rfind("after pass liar: the pass reported no change but changed the model", 0) == 0);
}

TEST_CASE("should-run: an instrument that declines a step skips it; the run goes on") {
  pass::PassRegistry reg = TestRegistry();
  auto p = pass::ParsePipeline(json::parse(R"({"passes": ["liar", "cleanup"]})"), reg);
  REQUIRE(p.ok());
  pass::PassManager pm(reg, p.value());
  pm.AddInstrument(std::make_unique<SkipInstrument>("liar"));
  pm.AddInstrument(pass::MakeChangeCheckInstrument());
  ir::Model m = Tiny();
  auto r = pm.Run(m);
  REQUIRE_MESSAGE(r.ok(), r.status().message());
  REQUIRE(r->records.size() == 2);
  CHECK(r->records[1].pass == "cleanup");
  CHECK(r->records[1].index == 2);
  CHECK(m.graphs[0].graph->nodes().back()->op_type == "Relu");
}

TEST_CASE("manager: a pass whose graphs option matches no graph of the model is an error") {
  ir::Model m = Tiny();  // one graph, role "model"
  pass::Pipeline p = Parse(R"({"passes": [{"pass": "quantize-int8", "options": {"graphs": ["encoder", "joiner"]}}]})");
  pass::PassManager pm(passes::BuiltinPasses(), p);
  auto r = pm.Run(m);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().message().find("$.passes[0].options.graphs") != std::string::npos);
  CHECK(r.status().message().find("its graphs: model") != std::string::npos);
  // One pattern matching is enough; the one that matches nothing is noted in the report.
  pass::Pipeline p2 = Parse(R"({"passes": [{"pass": "quantize-int8", "options": {"graphs": ["joiner", "mod*"], "min_elements": 1}}]})");
  pass::PassManager pm2(passes::BuiltinPasses(), p2);
  auto r2 = pm2.Run(m);
  REQUIRE_MESSAGE(r2.ok(), r2.status().message());
  REQUIRE(r2->records.size() == 2);
  CHECK(r2->records[1].changed);
  bool noted = false;
  for (const auto& n : r2->records[1].notes) noted |= n.find("graphs joiner") != std::string::npos;
  CHECK(noted);
}
