// `asrc train` end to end: a tiny transducer with its RNN-T loss saved as one .onnx file, trained
// on 4 utterances of the demo manifest through the fbank front end; the loss falls, the
// checkpoint, the log and the trained model are written, --resume continues the step count, and
// an output folder that holds the input model is refused.
#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "onnx/onnx_io.h"
#include "reference.h"
#include "tiny_transducer.h"

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

}  // namespace

TEST_CASE("asrc train: a tiny RNN-T model on 4 demo utterances") {
  const std::string manifest = test::SourcePath("experiments/data/default_eval/manifest.jsonl");
  const std::string tokens = test::SourcePath("experiments/teacher/bundle/tokens.txt");
  if (!test::HaveReference(test::Exists(manifest) && test::Exists(tokens), "demo manifest and teacher tokens")) return;
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("asrc_train_cli_" + std::to_string(getpid()));
  fs::create_directories(dir / "in");
  // The manifest's first 4 lines, with absolute audio paths.
  {
    std::ifstream in(manifest);
    std::ofstream out(dir / "train.jsonl");
    std::string line;
    for (int i = 0; i < 4 && std::getline(in, line); ++i) {
      auto j = nlohmann::json::parse(line);
      j["audio_filepath"] = (fs::path(manifest).parent_path() / j["audio_filepath"].get<std::string>()).string();
      out << j.dump() << "\n";
    }
  }
  TinyDims d;
  d.F = 80;
  d.H = d.J = 32;
  d.V = 256;
  ir::Model model;
  model.graphs.emplace_back();
  ir::GraphFile& gf = model.graphs.back();
  gf.role = "model";
  gf.opsets = {{"", 17}, {"ai.asrc", 1}};
  gf.graph = std::make_unique<ir::Graph>("tiny");
  auto w = TinyWeights(d, 1);
  for (int64_t i = 0; i < w["enc_w"].numel(); ++i) w["enc_w"].data<float>()[i] *= 0.1f;  // log-mel is ~10
  BuildTiny(*gf.graph, w, TinyLoss::kRnnt);
  const std::string model_path = (dir / "in" / "tiny.onnx").string();
  onnx_io::SaveOptions so;
  so.check = false;
  REQUIRE(onnx_io::SaveModel(model, model_path, so).ok());

  const std::string bin = ASRC_BIN;
  const std::string out = (dir / "out").string();
  const std::string common = bin + " train --model " + model_path + " --data " + (dir / "train.jsonl").string() +
                             " --tokens " + tokens + " --out " + out +
                             " --lr 0.01 --warmup 5 --batch-frames 800 --checkpoint-every 10 --log-every 10";
  REQUIRE(std::system((common + " --steps 30").c_str()) == 0);
  auto log = ReadLog(out + "/train_log.jsonl");
  REQUIRE(log.size() == 30);
  double first = 0, last = 0;
  for (int i = 0; i < 4; ++i) first += log[i]["loss"].get<double>() / 4;
  for (int i = 26; i < 30; ++i) last += log[i]["loss"].get<double>() / 4;
  MESSAGE("asrc train: mean loss of steps 1-4 " << first << ", of steps 27-30 " << last);
  CHECK(last < 0.7 * first);
  CHECK(fs::exists(out + "/checkpoint.ckpt"));
  auto trained = onnx_io::LoadModel(out + "/model.onnx");
  REQUIRE_MESSAGE(trained.ok(), trained.status().message());
  const ir::Tensor& tw = *trained->graphs[0].graph->find_value("out_w")->initializer;
  CHECK(std::memcmp(tw.raw(), w["out_w"].raw(), tw.nbytes()) != 0);

  REQUIRE(std::system((common + " --steps 35 --resume").c_str()) == 0);
  log = ReadLog(out + "/train_log.jsonl");
  REQUIRE(log.size() == 35);
  CHECK(log[30]["step"].get<int>() == 31);

  CHECK(std::system((bin + " train --model " + model_path + " --data " + (dir / "train.jsonl").string() +
                     " --tokens " + tokens + " --out " + (dir / "in").string() + " --steps 1 2>/dev/null")
                        .c_str()) != 0);
  fs::remove_all(dir);
}
