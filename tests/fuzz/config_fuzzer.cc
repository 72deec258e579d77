// libFuzzer target for the two JSON files a user writes: a bundle's model.json and a pipeline.
// The first byte picks which; the rest is the file. model.json: the bundle check the importer
// runs, then asr's reading of it (front end, decoding, streaming caches) against the demo
// teacher bundle's graphs, and a recognizer built from it. Pipeline: parsed against the built-in
// passes, then run on a small one-graph model. Any bytes: an error Status or a result — never a
// crash, a sanitizer report or an uncaught exception. Memory is capped by the memory budget.
#include <cstddef>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "asr/stream.h"
#include "ir/tensor.h"
#include "onnx/onnx_io.h"
#include "pass/instruments.h"
#include "pass/manager.h"
#include "pass/pipeline.h"
#include "passes/registry.h"

#ifndef ASRC_SOURCE_DIR
#define ASRC_SOURCE_DIR "."
#endif

namespace {
asrc::ir::Model* g_bundle = nullptr;  // the teacher bundle (model.json replaced per input)
asrc::ir::Model* g_small = nullptr;   // tests/fixtures/joiner.onnx, the pipelines' model

void FuzzModelJson(const nlohmann::json& j) {
  asrc::ir::Model& m = *g_bundle;
  const nlohmann::json saved = m.config;
  m.config = j;
  auto cfg = asrc::asr::BundleConfig::FromModel(m);
  if (cfg.ok()) {
    asrc::asr::RecognizerOptions options;
    auto rec = asrc::asr::Recognizer::Create(m, options);
    if (rec.ok()) (void)(*rec)->Recognize(std::vector<float>(3200, 0.01f), true, true);
  }
  m.config = saved;
}

void FuzzPipeline(const nlohmann::json& j) {
  auto pipeline = asrc::pass::ParsePipeline(j, asrc::passes::BuiltinPasses());
  if (!pipeline.ok()) return;
  (void)pipeline->Canonical();
  asrc::ir::Model model = *g_small;
  asrc::pass::PassManager manager(asrc::passes::BuiltinPasses(), *pipeline);
  manager.AddInstrument(asrc::pass::MakeVerifyInstrument());
  (void)manager.Run(model);
}
}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  asrc::ir::SetMemoryBudget(size_t{1} << 30);
  auto bundle = asrc::onnx_io::LoadModel(ASRC_SOURCE_DIR "/experiments/teacher/bundle");
  auto small = asrc::onnx_io::LoadModel(ASRC_SOURCE_DIR "/tests/fixtures/joiner.onnx");
  if (!bundle.ok() || !small.ok()) __builtin_trap();  // the fuzzer needs both
  g_bundle = new asrc::ir::Model(std::move(bundle).value());
  g_small = new asrc::ir::Model(std::move(small).value());
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  nlohmann::json j = nlohmann::json::parse(data + 1, data + size, nullptr, false);
  if (j.is_discarded()) return 0;
  if (data[0] & 1) FuzzPipeline(j);
  else FuzzModelJson(j);
  return 0;
}
