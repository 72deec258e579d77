// Compress() end to end on a single-pass transducer (one encoder, sherpa-onnx style roles
// encoder/decoder/joiner): the bundle's one mode (look-ahead) is evaluated, gated and reported;
// modes it lacks are dropped from eval.modes and refused in gates.
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "asr/tiny_bundle.h"
#include "doctest/doctest.h"
#include "onnx/onnx_io.h"
#include "pass/compress.h"
#include "passes/registry.h"

namespace fs = std::filesystem;
using namespace asrc;
using nlohmann::json;

namespace {

// 16 kHz mono 16-bit PCM: a 300 Hz tone of `seconds`.
void WriteWav(const fs::path& path, double seconds) {
  const int rate = 16000;
  const uint32_t n = static_cast<uint32_t>(seconds * rate), bytes = n * 2;
  std::ofstream f(path, std::ios::binary);
  auto u32 = [&](uint32_t v) { f.write(reinterpret_cast<const char*>(&v), 4); };
  auto u16 = [&](uint16_t v) { f.write(reinterpret_cast<const char*>(&v), 2); };
  f.write("RIFF", 4);
  u32(36 + bytes);
  f.write("WAVEfmt ", 8);
  u32(16);  // fmt chunk: PCM, mono, rate, byte rate, block align, bits
  u16(1);
  u16(1);
  u32(rate);
  u32(rate * 2);
  u16(2);
  u16(16);
  f.write("data", 4);
  u32(bytes);
  for (uint32_t i = 0; i < n; ++i) u16(static_cast<uint16_t>(static_cast<int16_t>(8000 * std::sin(i * 0.1178))));
}

struct Fixture {
  fs::path dir = fs::temp_directory_path() / ("asrc_compress_test_" + std::to_string(getpid()));
  Fixture() {
    fs::remove_all(dir);
    fs::create_directories(dir);
    ir::Model m = testing::TinyBundle();
    // ONNX files need a type and shape on every graph input and output: the rank of the bundle
    // contract, sizes symbolic.
    auto declare = [](ir::Value* v, int rank) {
      v->type.has_type = true;
      if (v->type.dtype == ir::DType::Undefined)
        v->type.dtype = v->name == "encoder_out_lens" ? ir::DType::Int64 : ir::DType::Float32;
      v->type.has_shape = true;
      for (int d = 0; d < rank; ++d) v->type.dims.push_back(ir::Dim{-1, "d" + std::to_string(d)});
    };
    const std::map<std::string, int> in_rank = {{"x", 3}, {"x_lens", 1}, {"y", 2}, {"encoder_out", 2}, {"decoder_out", 2}};
    const std::map<std::string, int> out_rank = {{"encoder_out", 3}, {"encoder_out_lens", 1}, {"decoder_out", 2}, {"logit", 2}};
    for (auto& gf : m.graphs) {
      for (ir::Value* v : gf.graph->inputs) declare(v, in_rank.at(v->name));
      for (ir::Value* v : gf.graph->outputs) declare(v, out_rank.at(v->name));
    }
    Status st = onnx_io::SaveModel(m, (dir / "bundle").string());
    REQUIRE_MESSAGE(st.ok(), st.message());
    WriteWav(dir / "a.wav", 0.5);
    std::ofstream f(dir / "m.jsonl");
    f << R"({"id": "u1", "audio_filepath": "a.wav", "text": "a b c"})" << "\n";
    f << R"({"id": "u2", "audio_filepath": "a.wav", "text": "a b c d"})" << "\n";
  }
  ~Fixture() { fs::remove_all(dir); }
  pass::CompressRequest Request(const std::string& pipeline, const std::string& out) {
    auto p = pass::ParsePipeline(json::parse(pipeline), passes::BuiltinPasses());
    REQUIRE_MESSAGE(p.ok(), p.status().message());
    pass::CompressRequest r;
    r.pipeline = p.value();
    r.registry = &passes::BuiltinPasses();
    r.model = (dir / "bundle").string();
    r.eval_manifest = (dir / "m.jsonl").string();
    r.out = (dir / out).string();
    return r;
  }
};

std::string Read(const fs::path& p) {
  std::stringstream s;
  s << std::ifstream(p).rdbuf();
  return s.str();
}

}  // namespace

TEST_CASE("Compress: a single-encoder transducer compresses, evaluates and reports its one mode") {
  Fixture fx;
  auto r = pass::Compress(fx.Request(R"({"name": "tiny-int8",
      "eval": {"modes": ["streaming", "lookahead"]},
      "gates": {"max_rel_increase_total": 1000, "on_fail": "report"},
      "passes": ["cleanup", {"pass": "quantize-int8", "options": {"min_elements": 16}}]})", "out"));
  REQUIRE_MESSAGE(r.ok(), r.status().message());
  const pass::CompressReport& rep = r->report;
  CHECK(rep.modes == std::vector<std::string>{"lookahead"});
  REQUIRE(rep.eval);
  CHECK(rep.eval->modes == std::vector<std::string>{"lookahead"});  // streaming dropped: no causal encoder
  CHECK(rep.pipeline.find("gate{wer.lookahead,") != std::string::npos);  // the final mode
  REQUIRE(rep.records.size() == 3);
  for (const pass::PassRecord& rec : rep.records) {
    REQUIRE(rec.eval);
    CHECK(rec.eval->modes.size() == 1);
    REQUIRE(rec.eval->mode("lookahead"));
    CHECK(rec.eval->mode("lookahead")->words == 7);
    CHECK(rec.eval->mode("lookahead")->utt_word_errors.size() == 2);
  }
  CHECK(rep.records[0].eval->mode("lookahead")->wer == doctest::Approx(100.0 / 7));
  CHECK(rep.records[2].counters.at("matmul_integer") >= 1);
  CHECK(rep.records[2].size->bytes < rep.records[0].size->bytes);
  REQUIRE(rep.records[2].gate);
  CHECK(rep.records[2].gate->passed);
  CHECK(rep.records[2].significance.count("lookahead") == 1);

  const json j = json::parse(Read(fx.dir / "out" / "report.json"));
  CHECK(j["rows"][2].contains("lookahead"));
  CHECK_FALSE(j["rows"][2].contains("streaming"));
  CHECK(j["rows"][2]["lookahead"].contains("final_ms_p90"));
  const std::string md = Read(fx.dir / "out" / "report.md");
  CHECK(md.find("| WER la | dWER la vs input | dWER la 95% CI, p | CER la | RTF la |") != std::string::npos);
  CHECK(md.find("WER str") == std::string::npos);
  auto back = onnx_io::LoadModel((fx.dir / "out" / "model").string());
  REQUIRE_MESSAGE(back.ok(), back.status().message());
  CHECK(back->find("encoder"));
  CHECK(back->config.value("model_type", "") == "transducer");
}

TEST_CASE("Compress: a gate on a mode the bundle lacks fails before anything is written") {
  Fixture fx;
  auto r = pass::Compress(fx.Request(R"({"gates": {"mode": "streaming", "max_abs_increase_per_pass": 1},
      "passes": ["cleanup"]})", "out"));
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().message() == "$.gates.mode: this model has no streaming mode (its modes: lookahead)");
  CHECK_FALSE(fs::exists(fx.dir / "out"));
}

TEST_CASE("Compress: missing inputs and an output over the input are errors naming them") {
  Fixture fx;
  pass::CompressRequest r = fx.Request(R"({"passes": ["cleanup"]})", "out");
  r.eval_manifest = (fx.dir / "nope.jsonl").string();
  auto e = pass::Compress(r);
  REQUIRE_FALSE(e.ok());
  CHECK(e.status().message() == "eval manifest '" + r.eval_manifest + "' does not exist");
  r = fx.Request(R"({"passes": ["cleanup"]})", "bundle");
  e = pass::Compress(r);
  REQUIRE_FALSE(e.ok());
  CHECK(e.status().message().find("would write over the input model") != std::string::npos);
}
