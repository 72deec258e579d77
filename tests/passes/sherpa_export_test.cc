// asrc export --format sherpa-onnx (passes/sherpa_export.h): the merged look-ahead encoder against
// the cascade run chunk by chunk (asr::Recognizer, lib/asr/stream.cc) on real speech — in our
// runtime and in ONNX Runtime — for lengths on and off chunk boundaries; the decoder/joiner
// protocol (metadata, input/output order); and the refusals (LSTM decoder, front end sherpa-onnx
// cannot reproduce, bad context size). The sherpa-onnx decode itself is tests/cli/sherpa_export_test.sh.
#include <doctest/doctest.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "asr/audio.h"
#include "asr/stream.h"
#include "onnx/onnx_io.h"
#include "passes/sherpa_export.h"
#include "reference.h"
#include "test_io.h"
#include "asr/tiny_bundle.h"
#include "passes/stateless_teacher.h"
#include "runtime/session.h"

namespace asrc {
namespace {

const char* kTeacher = ASRC_SOURCE_DIR "/experiments/teacher/bundle";
using testing::StatelessTeacher;

Result<std::vector<float>> RunEncoder(const ir::GraphFile& gf, const std::vector<float>& x, int64_t T,
                                      int64_t F, int64_t* frames, int64_t* lens) {
  ASRC_ASSIGN_OR_RETURN(auto s, runtime::Session::Create(*gf.graph, gf.opset(""), {}));
  ir::Tensor xt(ir::DType::Float32, {1, T, F}), lt(ir::DType::Int64, {1});
  std::memcpy(xt.data<float>(), x.data(), T * F * sizeof(float));
  lt.data<int64_t>()[0] = T;
  std::vector<ir::Tensor> out;
  ASRC_RETURN_IF_ERROR(s->Run({xt, lt}, &out));
  *frames = out[0].dim(1);
  *lens = out[1].data<int64_t>()[0];
  return std::vector<float>(out[0].data<float>(), out[0].data<float>() + out[0].numel());
}

using test::MaxDiff;
using test::ReadF32;

TEST_CASE("sherpa export: the merged encoder equals the cascade in look-ahead mode") {
  ir::Model bundle = StatelessTeacher();
  auto e = passes::ExportSherpaOnnx(bundle);
  REQUIRE_MESSAGE(e.ok(), e.status().message());
  const ir::GraphFile* enc = e->model.find("encoder");
  REQUIRE(enc);
  CHECK(e->feature_offset == doctest::Approx(2 * std::log(32768.0)));
  int loops = 0;
  for (ir::Node* n : enc->graph->nodes()) loops += n->op_type == "Loop";
  CHECK(loops == 1);
  CHECK(enc->graph->inputs.size() == 2);
  CHECK(enc->graph->outputs[0]->name == "encoder_out");
  CHECK(enc->graph->outputs[1]->name == "encoder_out_lens");

  asr::RecognizerOptions ro;
  auto rec = asr::Recognizer::Create(bundle, ro);
  REQUIRE_MESSAGE(rec.ok(), rec.status().message());
  asr::Recognizer& r = *rec.value();
  auto audio = asr::LoadAudio(ASRC_SOURCE_DIR "/experiments/data/default_eval/flac/synth_test_00003.flac", 16000);
  REQUIRE_MESSAGE(audio.ok(), audio.status().message());
  const int64_t T_all = r.fbank().NumFrames(audio->samples.size());
  const std::vector<float> feats_all = r.fbank().Compute(audio->samples.data(), audio->samples.size());
  const int64_t F = 80;
  auto noncausal = runtime::Session::Create(*bundle.graph("encoder_noncausal"), 17, {});
  REQUIRE(noncausal.ok());
  const bool ort = test::HaveReference(test::OrtAvailable(), test::kOrt);
  const std::string tmp = "/tmp/asrc_test_sherpa_" + std::to_string(getpid());
  if (ort) REQUIRE(onnx_io::SaveModel(e->model, tmp + ".model").ok());
  int ort_checks = 0;
  for (int64_t T : {T_all, int64_t{96}, int64_t{97}, int64_t{5}}) {
    CAPTURE(T);
    REQUIRE(T <= T_all);
    std::vector<float> feats(feats_all.begin(), feats_all.begin() + T * F);
    // Reference: the chunk protocol, then the non-causal encoder.
    int64_t dim = 0;
    auto causal = r.CausalEncode(feats, T, 0, &dim);
    REQUIRE(causal.ok());
    const int64_t t_out = static_cast<int64_t>(causal->size()) / dim;
    CHECK(t_out == (T + 3) / 4);
    ir::Tensor cx(ir::DType::Float32, {1, t_out, dim}), cl(ir::DType::Int64, {1});
    std::memcpy(cx.data<float>(), causal->data(), causal->size() * sizeof(float));
    cl.data<int64_t>()[0] = t_out;
    std::vector<ir::Tensor> ref;
    REQUIRE((*noncausal)->Run({cx, cl}, &ref).ok());
    std::vector<float> want(ref[0].data<float>(), ref[0].data<float>() + ref[0].numel());
    // The export takes sherpa-onnx's features: asrc's minus 2 ln(32768).
    std::vector<float> x(feats);
    for (float& v : x) v -= e->feature_offset;
    int64_t frames = 0, lens = 0;
    auto got = RunEncoder(*enc, x, T, F, &frames, &lens);
    REQUIRE_MESSAGE(got.ok(), got.status().message());
    CHECK(frames == t_out);
    CHECK(lens == t_out);
    const double d = MaxDiff(got.value(), want);
    MESSAGE("T=" << T << ": merged encoder max |asrc - cascade| = " << d);
    CHECK(d < 1e-3);
    if (!ort) continue;
    test::WriteF32(tmp + ".x.f32", x);
    const nlohmann::json j =
        test::RunForJson("node " ASRC_SOURCE_DIR "/tests/passes/ort_encoder.js " + tmp + ".model/encoder.onnx " +
                             tmp + ".x.f32 " + std::to_string(T) + " " + tmp + ".out.f32",
                         tmp + ".json");
    CHECK(j["lens"].get<int64_t>() == t_out);
    const double od = MaxDiff(ReadF32(tmp + ".out.f32"), want);
    MESSAGE("T=" << T << ": merged encoder max |ORT - cascade| = " << od);
    CHECK(od < 1e-3);
    ++ort_checks;
  }
  if (ort) {
    test::RequireChecks(ort_checks, test::kOrt);
    std::filesystem::remove_all(tmp + ".model");
    for (const char* s : {".x.f32", ".out.f32", ".json"}) std::remove((tmp + s).c_str());
  }
}

TEST_CASE("sherpa export: decoder and joiner protocol, model.json") {
  auto e = passes::ExportSherpaOnnx(StatelessTeacher());
  REQUIRE_MESSAGE(e.ok(), e.status().message());
  const ir::GraphFile* dec = e->model.find("decoder");
  const ir::GraphFile* join = e->model.find("joiner");
  REQUIRE(dec);
  REQUIRE(join);
  CHECK(dec->file == "decoder.onnx");
  std::map<std::string, std::string> meta(dec->metadata_props.begin(), dec->metadata_props.end());
  CHECK(meta["vocab_size"] == "256");
  CHECK(meta["context_size"] == "1");
  CHECK(dec->graph->outputs[0]->name == "decoder_out");
  CHECK(join->graph->inputs[0]->name == "encoder_out");
  CHECK(join->graph->inputs[1]->name == "decoder_out");
  CHECK(join->graph->outputs[0]->name == "logit");
  std::map<std::string, std::string> emeta(e->model.find("encoder")->metadata_props.begin(),
                                           e->model.find("encoder")->metadata_props.end());
  CHECK(emeta["model_type"] == "conformer");
  CHECK(e->model.config["model_type"] == "transducer");
  CHECK(e->model.config["frontend"]["waveform_scale"] == 1.0);
  CHECK(!e->model.config.contains("streaming"));
  // The export is an asrc transducer bundle.
  auto cfg = asr::BundleConfig::FromModel(e->model);
  REQUIRE_MESSAGE(cfg.ok(), cfg.status().message());
  CHECK(!cfg->streaming());
}

TEST_CASE("sherpa export: context_size 2 — sherpa-onnx's start context [-1, blank] decodes as asrc's [blank, blank]") {
  ir::Model m = StatelessTeacher(2);
  auto e = passes::ExportSherpaOnnx(m);
  REQUIRE_MESSAGE(e.ok(), e.status().message());
  const ir::GraphFile* dec = e->model.find("decoder");
  CHECK(dec->graph->nodes().front()->op_type == "Max");
  auto s = runtime::Session::Create(*dec->graph, dec->opset(""), {});
  auto src = runtime::Session::Create(*m.graph("decoder"), 17, {});
  REQUIRE(s.ok());
  REQUIRE(src.ok());
  auto run = [](runtime::Session& sess, std::vector<int64_t> y) {
    std::vector<ir::Tensor> out;
    REQUIRE(sess.Run({ir::Tensor::FromVector(ir::DType::Int64, {1, 2}, y)}, &out).ok());
    return std::vector<float>(out[0].data<float>(), out[0].data<float>() + out[0].numel());
  };
  const std::vector<float> asrc_start = run(**src, {0, 0});
  CHECK(run(**s, {-1, 0}) == asrc_start);
  CHECK(run(**s, {0, 0}) == asrc_start);
  CHECK(run(**s, {7, 9}) == run(**src, {7, 9}));
  CHECK(run(**src, {-1, 0}) != asrc_start);  // without the clamp: the last embedding row
}

TEST_CASE("sherpa export: an offline transducer keeps its encoder, the front-end offset in front") {
  auto e = passes::ExportSherpaOnnx(testing::TinyBundle());  // encoder = identity, waveform_scale 32768
  REQUIRE_MESSAGE(e.ok(), e.status().message());
  CHECK(e->chunk_frames == 0);
  const ir::GraphFile* enc = e->model.find("encoder");
  REQUIRE(enc);
  CHECK(enc->graph->nodes().front()->op_type == "Add");
  std::vector<float> x(3 * testing::kFeat, -1.5f);
  int64_t frames = 0, lens = 0;
  auto got = RunEncoder(*enc, x, 3, testing::kFeat, &frames, &lens);
  REQUIRE_MESSAGE(got.ok(), got.status().message());
  CHECK(frames == 3);
  CHECK(lens == 3);
  CHECK(got->at(0) == doctest::Approx(-1.5 + 2 * std::log(32768.0)));
  // Exporting the export again adds nothing to x (its model.json says waveform_scale 1).
  auto again = passes::ExportSherpaOnnx(e->model);
  REQUIRE_MESSAGE(again.ok(), again.status().message());
  CHECK(again->feature_offset == 0);
}

TEST_CASE("sherpa export: refusals name the problem") {
  auto teacher = onnx_io::LoadModel(kTeacher);
  REQUIRE(teacher.ok());
  auto lstm = passes::ExportSherpaOnnx(teacher.value());
  REQUIRE(!lstm.ok());
  CHECK(lstm.status().message().find("decoder_type is 'lstm'") != std::string::npos);
  CHECK(lstm.status().message().find("stateless") != std::string::npos);

  ir::Model m = StatelessTeacher();
  m.config["frontend"]["window_type"] = "hamming";
  auto fe = passes::ExportSherpaOnnx(m);
  REQUIRE(!fe.ok());
  CHECK(fe.status().message().find("frontend.window_type") != std::string::npos);

  m = StatelessTeacher(1);
  m.config["decoding"]["context_size"] = 2;  // the decoder declares y [N, 1]
  auto ctx = passes::ExportSherpaOnnx(m);
  REQUIRE(!ctx.ok());
  CHECK(ctx.status().message().find("context_size") != std::string::npos);

  // A joiner whose inputs come in the other order is exported in sherpa-onnx's order.
  m = StatelessTeacher();
  auto& ji = m.graph("joiner")->inputs;
  std::swap(ji[0], ji[1]);
  auto swapped = passes::ExportSherpaOnnx(m);
  REQUIRE_MESSAGE(swapped.ok(), swapped.status().message());
  CHECK(swapped->model.find("joiner")->graph->inputs[0]->name == "encoder_out");
}

}  // namespace
}  // namespace asrc
