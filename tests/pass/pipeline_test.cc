// Pipeline JSON validation (errors name the JSON path), canonical text, option validation, globs.
#include "doctest/doctest.h"
#include "pass/pipeline.h"
#include "passes/registry.h"

using namespace asrc;
using nlohmann::json;

namespace {

std::string ParseError(const json& j) {
  auto p = pass::ParsePipeline(j, passes::BuiltinPasses());
  REQUIRE_FALSE(p.ok());
  return p.status().message();
}

bool Contains(const std::string& s, const std::string& sub) { return s.find(sub) != std::string::npos; }

}  // namespace

TEST_CASE("pipeline: valid forms parse; defaults filled; canonical text is stable") {
  json a = json::parse(R"({"passes": ["cleanup", {"pass": "quantize-int8", "options": {"mode": "dynamic"}}]})");
  json b = json::parse(R"({"seed": 0, "passes": [{"pass": "cleanup"}, {"pass": "quantize-int8"}]})");
  auto pa = pass::ParsePipeline(a, passes::BuiltinPasses());
  auto pb = pass::ParsePipeline(b, passes::BuiltinPasses());
  REQUIRE(pa.ok());
  REQUIRE(pb.ok());
  CHECK(pa->steps.size() == 2);
  CHECK(pa->steps[1].options["per_channel"] == true);
  CHECK(pa->Canonical() == pb->Canonical());
  const std::string c = pa->Canonical();
  CHECK(c.find('\n') == std::string::npos);
  CHECK(Contains(c, "seed=0;"));
  CHECK(Contains(c, "quantize-int8{"));
  CHECK(Contains(c, "mode=dynamic"));
  CHECK(Contains(c, "ops=[MatMul,Gemm,Conv,ConvTranspose,LSTM,GRU,RNN,Gather]"));
  json d = json::parse(R"({"passes": [{"pass": "quantize-int8", "options": {"mode": "static"}}]})");
  CHECK(pass::ParsePipeline(d, passes::BuiltinPasses())->Canonical() != c);
}

TEST_CASE("pipeline: eval, calibration and gates sections") {
  json j = json::parse(R"({
    "name": "x", "description": "y", "seed": 3,
    "eval": {"manifest": "m.jsonl", "split": "test", "limit": 10, "modes": ["lookahead"], "threads": 2, "beam": 4},
    "calibration": {"manifest": "c.jsonl", "limit": 3},
    "gates": {"max_rel_increase_per_pass": 2, "max_rel_increase_total": 5, "on_fail": "rollback"},
    "passes": [{"pass": "prune", "options": {"sparsity": 0.5}, "gate": {"on_fail": "stop"}}]})");
  auto p = pass::ParsePipeline(j, passes::BuiltinPasses());
  REQUIRE_MESSAGE(p.ok(), p.status().message());
  CHECK(p->seed == 3);
  CHECK(p->eval.limit == 10);
  CHECK(p->eval.modes == std::vector<std::string>{"lookahead"});
  CHECK(p->calibration.limit == 3);
  CHECK(*p->gate.max_rel_increase_per_pass == 2);
  CHECK(p->gate.on_fail == "rollback");
  REQUIRE(p->steps[0].gate);
  CHECK(p->steps[0].gate->on_fail == "stop");
  CHECK(*p->steps[0].gate->max_rel_increase_total == 5);  // inherited from the pipeline's gate
  CHECK(Contains(p->Canonical(), "on_fail=stop"));
}

TEST_CASE("pipeline: errors name the JSON path and the problem") {
  CHECK(Contains(ParseError(json::parse(R"({"passes": ["quantise-int8"]})")),
                 "$.passes[0]: unknown pass 'quantise-int8'"));
  CHECK(Contains(ParseError(json::parse(R"({"passes": [{"pass": "nope"}]})")),
                 "$.passes[0].pass: unknown pass 'nope'"));
  CHECK(Contains(ParseError(json::parse(R"({"passes": [{"pass": "quantize-int8", "options": {"bits": 4}}]})")),
                 "$.passes[0].options.bits: unknown option"));
  CHECK(Contains(ParseError(json::parse(R"({"passes": ["cleanup", {"pass": "quantize-int8", "options": {"mode": "int4"}}]})")),
                 "$.passes[1].options.mode: 'int4' is not one of"));
  CHECK(Contains(ParseError(json::parse(R"({"passes": [{"pass": "quantize-int8", "options": {"per_channel": "yes"}}]})")),
                 "$.passes[0].options.per_channel: expected a boolean"));
  CHECK(Contains(ParseError(json::parse(R"({"passes": [{"pass": "prune", "options": {"sparsity": 1.5}}]})")),
                 "$.passes[0].options.sparsity: 1.5 is out of range"));
  CHECK(Contains(ParseError(json::parse(R"({"passes": [{"pass": "low-rank", "options": {"multiple_of": 2.5}}]})")),
                 "$.passes[0].options.multiple_of: expected an integer"));
  CHECK(Contains(ParseError(json::parse(R"({"passes": [{"pass": "cleanup", "option": {}}]})")),
                 "$.passes[0].option: unknown key"));
  CHECK(Contains(ParseError(json::parse(R"({"pases": []})")), "$.pases: unknown key"));
  CHECK(Contains(ParseError(json::parse(R"({"name": "x"})")), "$.passes: missing"));
  CHECK(Contains(ParseError(json::parse(R"({"passes": "cleanup"})")), "$.passes: expected an array"));
  CHECK(Contains(ParseError(json::parse(R"({"passes": [3]})")), "$.passes[0]: expected a pass name"));
  CHECK(Contains(ParseError(json::parse(R"({"eval": {"limit": -1}, "passes": []})")), "$.eval.limit"));
  CHECK(Contains(ParseError(json::parse(R"({"eval": {"modes": ["offline"]}, "passes": []})")),
                 "$.eval.modes[0]: 'offline'"));
  CHECK(Contains(ParseError(json::parse(R"({"gates": {"on_fail": "explode"}, "passes": []})")),
                 "$.gates.on_fail"));
  CHECK(Contains(ParseError(json::parse(R"({"gates": {"max_rel_increase_per_pass": "2%"}, "passes": []})")),
                 "$.gates.max_rel_increase_per_pass: expected a number"));
}

TEST_CASE("pipeline files: missing file and bad JSON are one-line errors naming the file") {
  auto p = pass::LoadPipelineFile("/nonexistent/p.json", passes::BuiltinPasses());
  REQUIRE_FALSE(p.ok());
  CHECK(Contains(p.status().message(), "/nonexistent/p.json"));
}

TEST_CASE("every registered pass declares described options whose defaults validate") {
  const auto& reg = passes::BuiltinPasses();
  CHECK(reg.Names().size() >= 4);
  for (const auto& name : reg.Names()) {
    auto p = reg.Create(name);
    REQUIRE(p);
    CHECK(p->name() == name);
    CHECK_FALSE(p->description().empty());
    for (const auto& o : p->options()) {
      INFO(name << "." << o.name);
      CHECK_FALSE(o.description.empty());
    }
    CHECK(pass::ValidateOptions(p->options(), json::object(), "$").ok());
  }
}

TEST_CASE("glob patterns") {
  CHECK(pass::GlobMatch("*", ""));
  CHECK(pass::GlobMatch("encoder*", "encoder_causal"));
  CHECK_FALSE(pass::GlobMatch("encoder*", "decoder"));
  CHECK(pass::GlobMatch("*.ffn?.*", "layers.3.ffn1.l1"));
  CHECK_FALSE(pass::GlobMatch("a?c", "ac"));
  CHECK(pass::AnyGlobMatch({"x", "dec*"}, "decoder"));
}
