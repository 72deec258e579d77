// `asrc train` end to end: a tiny transducer with its RNN-T loss saved as one .onnx file, trained
// on 4 utterances of the demo manifest through the fbank front end; the loss falls, the
// checkpoint, the log and the trained model are written, --resume continues the step count, and
// an output folder that holds the input model is refused (so is one with a checkpoint, without
// --resume), and Ctrl-C ends in a saved checkpoint and model. With --teacher, a student with a
// TransducerKLLoss learns from a one-graph teacher.
#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "onnx/onnx_io.h"
#include "reference.h"
#include "train/tiny_transducer.h"

using namespace asrc;
using namespace asrc::testing;

namespace {

std::vector<nlohmann::json> ReadLog(const std::string& path) {
  std::vector<nlohmann::json> out;
  std::ifstream f(path);
  for (std::string line; std::getline(f, line);)
    if (!line.empty()) out.push_back(nlohmann::json::parse(line));
  return out;
}

struct CliSetup {
  std::filesystem::path dir;
  std::string manifest, tokens, data;
  TinyDims d;
};

// The demo manifest's first 4 lines with absolute audio paths, in a fresh temporary folder.
bool Prepare(CliSetup& c, const std::string& name) {
  namespace fs = std::filesystem;
  c.manifest = test::SourcePath("experiments/data/default_eval/manifest.jsonl");
  c.tokens = test::SourcePath("experiments/teacher/bundle/tokens.txt");
  if (!test::HaveReference(test::Exists(c.manifest) && test::Exists(c.tokens), "demo manifest and teacher tokens"))
    return false;
  c.dir = fs::temp_directory_path() / ("asrc_train_cli_" + name + "_" + std::to_string(getpid()));
  fs::create_directories(c.dir / "in");
  std::ifstream in(c.manifest);
  c.data = (c.dir / "train.jsonl").string();
  std::ofstream out(c.data);
  std::string line;
  for (int i = 0; i < 4 && std::getline(in, line); ++i) {
    auto j = nlohmann::json::parse(line);
    j["audio_filepath"] = (fs::path(c.manifest).parent_path() / j["audio_filepath"].get<std::string>()).string();
    out << j.dump() << "\n";
  }
  c.d.F = 80;
  c.d.H = c.d.J = 32;
  c.d.V = 256;
  return true;
}

// Saves the tiny transducer (weights from `seed`, the encoder scaled for log-mel inputs of ~10).
std::string SaveTiny(const CliSetup& c, const std::string& file, TinyLoss loss, uint64_t seed,
                     std::map<std::string, ir::Tensor>* weights = nullptr) {
  ir::Model model;
  model.graphs.emplace_back();
  ir::GraphFile& gf = model.graphs.back();
  gf.role = "model";
  gf.opsets = {{"", 17}, {"ai.asrc", 1}};
  gf.graph = std::make_unique<ir::Graph>("tiny");
  auto w = TinyWeights(c.d, seed);
  for (int64_t i = 0; i < w["enc_w"].numel(); ++i) w["enc_w"].data<float>()[i] *= 0.1f;
  BuildTiny(*gf.graph, w, loss);
  const std::string path = (c.dir / "in" / file).string();
  onnx_io::SaveOptions so;
  so.check = false;
  REQUIRE(onnx_io::SaveModel(model, path, so).ok());
  if (weights) *weights = w;
  return path;
}

double MeanLoss(const std::vector<nlohmann::json>& log, size_t from, size_t to) {
  double s = 0;
  for (size_t i = from; i < to; ++i) s += log[i]["loss"].get<double>();
  return s / static_cast<double>(to - from);
}

}  // namespace

TEST_CASE("asrc train: a tiny RNN-T model on 4 demo utterances") {
  CliSetup c;
  if (!Prepare(c, "rnnt")) return;
  std::map<std::string, ir::Tensor> w;
  const std::string model_path = SaveTiny(c, "tiny.onnx", TinyLoss::kRnnt, 1, &w);
  const std::string bin = ASRC_BIN;
  const std::string out = (c.dir / "out").string();
  auto train_cmd = [&](const std::string& o) {
    return bin + " train --model " + model_path + " --data " + c.data + " --tokens " + c.tokens + " --out " + o +
           " --lr 0.01 --warmup 5 --batch-frames 800 --checkpoint-every 10";
  };
  const std::string common = train_cmd(out);
  REQUIRE(std::system((common + " --steps 30").c_str()) == 0);
  auto log = ReadLog(out + "/train_log.jsonl");
  REQUIRE(log.size() == 30);
  const double first = MeanLoss(log, 0, 4), last = MeanLoss(log, 26, 30);
  MESSAGE("asrc train: mean loss of steps 1-4 " << first << ", of steps 27-30 " << last);
  CHECK(last < 0.7 * first);
  CHECK(std::filesystem::exists(out + "/checkpoint.ckpt"));
  auto trained = onnx_io::LoadModel(out + "/model.onnx");
  REQUIRE_MESSAGE(trained.ok(), trained.status().message());
  const ir::Tensor& tw = *trained->graphs[0].graph->find_value("out_w")->initializer;
  CHECK(std::memcmp(tw.raw(), w["out_w"].raw(), tw.nbytes()) != 0);

  REQUIRE(std::system((common + " --steps 35 --resume").c_str()) == 0);
  log = ReadLog(out + "/train_log.jsonl");
  REQUIRE(log.size() == 35);
  CHECK(log[30]["step"].get<int>() == 31);

  // Without --resume an existing run is not overwritten.
  CHECK(std::system((common + " --steps 40 2>/dev/null").c_str()) != 0);
  CHECK(ReadLog(out + "/train_log.jsonl").size() == 35);

  // Ctrl-C: the run stops after the current step, saves the checkpoint and the model, exits 0.
  const std::string out2 = (c.dir / "out2").string();
  const std::string sig = "bash -c '" + train_cmd(out2) + " --steps 1000000 --log-every 1000000 2>/dev/null & "
                          "p=$!; sleep 4; kill -INT $p; wait $p'";
  CHECK(std::system(sig.c_str()) == 0);
  log = ReadLog(out2 + "/train_log.jsonl");
  MESSAGE("after SIGINT: " << log.size() << " steps");
  REQUIRE(!log.empty());
  CHECK(log.back()["step"].get<size_t>() == log.size());
  CHECK(std::filesystem::exists(out2 + "/checkpoint.ckpt"));
  CHECK(std::filesystem::exists(out2 + "/model.onnx"));

  CHECK(std::system((bin + " train --model " + model_path + " --data " + c.data + " --tokens " + c.tokens +
                     " --out " + (c.dir / "in").string() + " --steps 1 2>/dev/null")
                        .c_str()) != 0);
  std::filesystem::remove_all(c.dir);
}

TEST_CASE("asrc train --teacher: the student's TransducerKLLoss to a one-graph teacher falls") {
  CliSetup c;
  if (!Prepare(c, "kd")) return;
  const std::string student = SaveTiny(c, "student.onnx", TinyLoss::kKl, 1);
  const std::string teacher = SaveTiny(c, "teacher.onnx", TinyLoss::kNone, 2);
  const std::string out = (c.dir / "out").string();
  const std::string cmd = std::string(ASRC_BIN) + " train --model " + student + " --teacher " + teacher +
                          " --data " + c.data + " --tokens " + c.tokens + " --out " + out +
                          " --lr 0.01 --warmup 5 --batch-frames 800 --steps 30 --log-every 30";
  REQUIRE(std::system(cmd.c_str()) == 0);
  auto log = ReadLog(out + "/train_log.jsonl");
  REQUIRE(log.size() == 30);
  const double first = MeanLoss(log, 0, 4), last = MeanLoss(log, 26, 30);
  MESSAGE("asrc train --teacher: mean KL of steps 1-4 " << first << ", of steps 27-30 " << last);
  CHECK(last < 0.5 * first);
  std::filesystem::remove_all(c.dir);
}
