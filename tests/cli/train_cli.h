// Helpers of the `asrc train` CLI tests (train_test.cc, train_mpi_test.cc): a few demo
// utterances in a temporary folder and the tiny transducer of tests/train/tiny_transducer.h
// saved as one .onnx file that computes its loss.
#pragma once

#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "onnx/onnx_io.h"
#include "reference.h"
#include "train/tiny_transducer.h"

namespace asrc::testing {

inline std::vector<nlohmann::json> ReadLog(const std::string& path) {
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

// The demo manifest's first `lines` lines with absolute audio paths, in a fresh temporary folder.
inline bool Prepare(CliSetup& c, const std::string& name, int lines = 4) {
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
  for (int i = 0; i < lines && std::getline(in, line); ++i) {
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
inline std::string SaveTiny(const CliSetup& c, const std::string& file, TinyLoss loss, uint64_t seed,
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

}  // namespace asrc::testing
