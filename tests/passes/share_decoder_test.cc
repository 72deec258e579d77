// share-decoder on a two-decoder cascade made from the demo teacher in code (the look-ahead pair a
// copy of the shared one, its joiner's blank logit raised so that the look-ahead pass emits
// nothing), and lib/asr evaluating such a bundle: each pass decodes with its own pair. The
// variant trained by experiments/teacher/two_decoder.py is checked in experiments/share_decoder.
#include "passes/share_decoder.h"

#include "asr/eval.h"
#include "passes/pass_test_util.h"

namespace asrc {
namespace {

const std::string kBundle = ASRC_SOURCE_DIR "/experiments/teacher/bundle";
const std::string kEval = ASRC_SOURCE_DIR "/experiments/data/default_eval/manifest.jsonl";

ir::Model Teacher() {
  auto m = onnx_io::LoadModel(kBundle);
  REQUIRE_MESSAGE(m.ok(), m.status().message());
  return m.value();
}

// The joiner's output bias: C of the Gemm that makes `logit`, or the constant added to it.
ir::Value* OutputBias(ir::Graph& g) {
  ir::Node* add = g.outputs[0]->producer;
  if (add->op_type == "Gemm") return add->input(2);
  REQUIRE(add->op_type == "Add");
  for (ir::Value* v : add->inputs) {
    if (v->initializer) return v;
  }
  FAIL("joiner: no output bias");
  return nullptr;
}

float BlankBias(const ir::Model& m, const std::string& role) {
  ir::Model c = m;
  return OutputBias(*c.graph(role))->initializer->data<float>()[0];
}

// The teacher with a second pair for the look-ahead pass: copies, the joiner's blank bias + boost.
ir::Model TwoDecoder(float boost) {
  ir::Model m = Teacher();
  for (const char* role : {"decoder", "joiner"}) {
    ir::GraphFile f = *m.find(role);
    f.role = std::string(role) + "_lookahead";
    f.file = f.role + ".onnx";
    m.graphs.push_back(std::move(f));
  }
  ir::Value* b = OutputBias(*m.graph("joiner_lookahead"));
  ir::Tensor t = b->initializer->Clone();
  t.data<float>()[0] += boost;
  b->initializer = std::move(t);
  return m;
}

Result<bool> Run(ir::Model& m, const nlohmann::json& options, pass::WerProbe probe = nullptr,
                 std::map<std::string, int64_t>* counters = nullptr, std::vector<std::string>* notes = nullptr) {
  passes::ShareDecoderPass p;
  return test::RunPassResult(p, m, options, std::move(probe), counters, notes);
}

std::vector<std::string> Hyps(const ir::Model& m, bool lookahead) {
  asr::EvalOptions o;
  o.limit = 3;
  o.streaming = !lookahead;
  o.lookahead = lookahead;
  auto r = asr::Evaluate(m, kEval, o);
  REQUIRE_MESSAGE(r.ok(), r.status().message());
  std::vector<std::string> out;
  for (const auto& u : (lookahead ? *r.value().lookahead : *r.value().streaming).per_utterance) {
    out.push_back(u.hypothesis);
  }
  return out;
}

TEST_CASE("share-decoder: a bundle with one pair is an error naming the missing graph") {
  ir::Model m = Teacher();
  const uint64_t h = ir::ContentHash(m);
  auto r = Run(m, {{"choose", "streaming"}});
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().message().find("no graph 'decoder_lookahead'") != std::string::npos);
  CHECK(ir::ContentHash(m) == h);
}

TEST_CASE("share-decoder: lib/asr decodes each pass with its own pair; the shared pair serves both") {
  ir::Model teacher = Teacher();
  ir::Model two = TwoDecoder(1000.f);
  // Saved and loaded: model.json names all six graphs.
  const std::string dir = test::TempDir("two_decoder");
  REQUIRE(onnx_io::SaveModel(two, dir).ok());
  auto back = onnx_io::LoadModel(dir);
  REQUIRE_MESSAGE(back.ok(), back.status().message());
  CHECK(back.value().graphs.size() == 6);
  const auto teacher_la = Hyps(teacher, true);
  CHECK(Hyps(two, false) == Hyps(teacher, false));
  for (const std::string& h : Hyps(two, true)) CHECK(h.empty());  // the look-ahead joiner says blank
  REQUIRE(!teacher_la.empty());
  CHECK(!teacher_la[0].empty());

  ir::Model s = back.value();
  std::map<std::string, int64_t> counters;
  auto r = Run(s, {{"choose", "streaming"}}, nullptr, &counters);
  REQUIRE_MESSAGE(r.ok(), r.status().message());
  CHECK(s.graphs.size() == 4);
  CHECK_FALSE(s.find("decoder_lookahead"));
  // The copies share their buffers with the streaming pair (counted once); only the look-ahead
  // joiner's output bias (vocab entries) is a buffer of its own.
  CHECK(counters["params_removed"] == 256);
  CHECK(Hyps(s, true) == teacher_la);
  CHECK(s.BytesUnique() == teacher.BytesUnique());
}

TEST_CASE("share-decoder: lookahead keeps that pair; average takes the mean of the weights") {
  ir::Model la = TwoDecoder(8.f);
  REQUIRE(Run(la, {{"choose", "lookahead"}}).ok());
  CHECK(la.graphs.size() == 4);
  CHECK(la.find("joiner")->file == "joiner.onnx");
  CHECK(BlankBias(la, "joiner") == doctest::Approx(BlankBias(Teacher(), "joiner") + 8.f));

  ir::Model avg = TwoDecoder(8.f);
  REQUIRE(Run(avg, {{"choose", "average"}}).ok());
  CHECK(BlankBias(avg, "joiner") == doctest::Approx(BlankBias(Teacher(), "joiner") + 4.f));
  ir::Model t = Teacher();
  CHECK(avg.graph("decoder")->initializers.size() == t.graph("decoder")->initializers.size());
  for (size_t i = 0; i < t.graph("decoder")->initializers.size(); ++i) {
    CHECK(test::BitEqual(*avg.graph("decoder")->initializers[i]->initializer, *t.graph("decoder")->initializers[i]->initializer));
  }

  ir::Model bad = TwoDecoder(8.f);
  bad.graph("joiner_lookahead")->AddInitializer("extra", ir::Tensor::Scalar(1.f));
  auto r = Run(bad, {{"choose", "average"}});
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().message().find("cannot be averaged") != std::string::npos);
}

TEST_CASE("share-decoder: dev keeps the candidate with the lowest WER sum") {
  ir::Model m = TwoDecoder(8.f);
  const float base = BlankBias(Teacher(), "joiner");
  // A stand-in for dev WER that prefers a blank bias 4 above the teacher's: the average.
  pass::WerProbe probe = [&](const ir::Model& x, const std::string&, const std::string&, int)
      -> Result<std::map<std::string, double>> {
    CHECK_FALSE(x.find("decoder_lookahead"));
    const double w = 50 + std::abs(BlankBias(x, "joiner") - base - 4.f);
    return std::map<std::string, double>{{"streaming", w}, {"lookahead", w}};
  };
  std::map<std::string, int64_t> counters;
  std::vector<std::string> notes;
  auto r = Run(m, {{"choose", "dev"}}, probe, &counters, &notes);
  REQUIRE_MESSAGE(r.ok(), r.status().message());
  CHECK(counters["dev_probes"] == 3);
  CHECK(BlankBias(m, "joiner") == doctest::Approx(base + 4.f));
  REQUIRE(!notes.empty());
  CHECK(notes.back().find("averaged pair") != std::string::npos);

  ir::Model n = TwoDecoder(8.f);
  auto no_probe = Run(n, {{"choose", "dev"}});
  REQUIRE_FALSE(no_probe.ok());
  CHECK(no_probe.status().message().find("cannot") != std::string::npos);
}

}  // namespace
}  // namespace asrc
