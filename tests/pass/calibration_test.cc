// Calibration through runtime::Session taps (pass/calibration.h): a StatsCollector fed by a
// session's observer accumulates exactly what it accumulates from the same values taken as extra
// graph outputs, whatever order the session computes them in; MakeAsrCalibrator runs the lib/asr
// recognizer on real audio with the requested values of each graph tapped.
#include <unistd.h>

#include <cstdlib>
#include <fstream>

#include <doctest/doctest.h>

#include "pass/calibration.h"
#include "pass/eval_asr.h"
#include "../asr/tiny_bundle.h"

using namespace asrc;

namespace {

ir::Tensor Random(ir::Shape shape, uint32_t seed) {
  ir::Tensor t(ir::DType::Float32, std::move(shape));
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.f, 1.f);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = d(rng);
  return t;
}

// x [T, 16] -> MatMul -> Relu -> MatMul -> y.
std::unique_ptr<ir::Graph> Mlp() {
  auto g = std::make_unique<ir::Graph>("mlp");
  ir::Value* x = g->AddValue("x");
  x->type.has_type = true;
  x->type.dtype = ir::DType::Float32;
  g->inputs.push_back(x);
  auto* a = g->AddNode("MatMul", {x, g->AddInitializer("w1", Random({16, 24}, 1))}, {"a"})->outputs[0];
  auto* r = g->AddNode("Relu", {a}, {"r"})->outputs[0];
  g->outputs.push_back(g->AddNode("MatMul", {r, g->AddInitializer("w2", Random({24, 8}, 2))}, {"y"})->outputs[0]);
  return g;
}

void CheckSame(const pass::StatsMap& a, const pass::StatsMap& b) {
  REQUIRE(a.size() == b.size());
  for (const auto& [name, s] : a) {
    INFO("tap " << name);
    REQUIRE(b.count(name));
    const pass::ActivationStats& t = b.at(name);
    CHECK(s.min == t.min);
    CHECK(s.max == t.max);
    CHECK(s.count == t.count);
    CHECK(s.rows == t.rows);
    CHECK(s.sample == t.sample);
    CHECK(s.sum_sq == t.sum_sq);
  }
}

}  // namespace

TEST_CASE("StatsCollector: taps give the stats of the same values taken as graph outputs") {
  // Taps listed against execution order, a reservoir smaller than what one run shows: the seeded
  // draws must still go to the taps in list order, as when the values were graph outputs.
  const std::vector<std::string> taps = {"y", "r", "x", "a", "r"};
  auto g = Mlp();
  pass::StatsCollector tapped(taps, 7, 50);
  auto s = runtime::Session::Create(*g, 17, tapped.Tap());
  REQUIRE_MESSAGE(s.ok(), s.status().message());

  auto ref_graph = Mlp();
  pass::StatsCollector direct(taps, 7, 50);
  CHECK(direct.taps() == std::vector<std::string>{"y", "r", "x", "a"});
  for (const auto& n : direct.taps()) ref_graph->outputs.push_back(ref_graph->FindValue(n));
  auto ref = runtime::Session::Create(*ref_graph, 17);
  REQUIRE(ref.ok());
  for (uint32_t run = 0; run < 3; ++run) {
    std::vector<ir::Tensor> in = {Random({5 + run, 16}, 10 + run)}, out, ref_out;
    REQUIRE((*s)->Run(in, &out).ok());
    REQUIRE((*ref)->Run(in, &ref_out).ok());
    direct.Add(std::vector<ir::Tensor>(ref_out.begin() + 1, ref_out.end()));
  }
  CheckSame(tapped.stats(), direct.stats());
  const pass::ActivationStats& r = tapped.stats().at("r");
  CHECK(r.count == (5 + 6 + 7) * 24);
  CHECK(r.sample.size() == 50);
  CHECK(r.min == 0.f);
  CHECK(r.ChannelRms().size() == 24);
}

TEST_CASE("MakeAsrCalibrator: the recognizer's graphs tapped on real audio") {
  ir::Model m = asrc::testing::TinyBundle();
  const std::string dir = "/tmp/asrc_test_calib_" + std::to_string(getpid());
  std::string cmd = "mkdir -p " + dir + " && sox -n -r 16000 -c 1 -b 16 " + dir +
                    "/a.wav synth 0.5 sine 300 && sox -n -r 16000 -c 1 -b 16 " + dir +
                    "/b.wav synth 0.3 sine 500";
  REQUIRE(std::system(cmd.c_str()) == 0);
  {
    std::ofstream f(dir + "/m.jsonl");
    f << R"({"id": "u1", "audio_filepath": "a.wav", "text": "a"})" << "\n";
    f << R"({"id": "u3", "audio_filepath": "b.wav", "text": "a"})" << "\n";
    f << R"({"id": "u4", "audio_filepath": "a.wav", "text": "a"})" << "\n";
  }
  pass::CalibrationSource src;
  src.manifest = dir + "/m.jsonl";
  src.limit = 2;  // a.wav (50 frames), b.wav (30 frames)
  pass::Taps taps = {{"encoder", {"encoder_out"}}, {"decoder", {"emb"}}, {"joiner", {"dw", "eu"}}};
  auto stats = pass::MakeAsrCalibrator(src, 1)(m, taps);
  REQUIRE_MESSAGE(stats.ok(), stats.status().message());
  CHECK(stats->size() == 3);
  const auto& enc = stats->at("encoder").at("encoder_out");
  CHECK(enc.count == (50 + 30) * 80);
  CHECK(enc.rows == 50 + 30);
  CHECK(enc.min < enc.max);
  // Per utterance: the decoder runs for the start context and each of "a b c"; the joiner once
  // per frame and once per label.
  CHECK(stats->at("decoder").at("emb").rows == 2 * 4);
  CHECK(stats->at("joiner").at("dw").rows == 50 + 30 + 2 * 3);
  CHECK(stats->at("joiner").at("eu").rows == 50 + 30 + 2 * 3);

  taps["joiner"] = {"nope"};
  auto bad = pass::MakeAsrCalibrator(src, 1)(m, taps);
  REQUIRE(!bad.ok());
  CHECK(bad.status().message().find("tap 'nope'") != std::string::npos);

  src.limit = 1;
  std::ofstream(dir + "/m.jsonl") << R"({"audio_filepath": "missing.wav", "text": "a"})" << "\n";
  auto none = pass::MakeAsrCalibrator(src, 1)(m, {});
  REQUIRE(!none.ok());
  // Unreadable calibration audio is an error naming the file, never silently skipped.
  CHECK(none.status().message().find("missing.wav") != std::string::npos);
  std::system(("rm -rf " + dir).c_str());
}
