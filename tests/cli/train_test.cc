// `asrc train` end to end: a tiny transducer with its RNN-T loss saved as one .onnx file, trained
// on 4 utterances of the demo manifest through the fbank front end; the loss falls, the
// checkpoint, the log and the trained model are written, --resume continues the step count, and
// an output folder that holds the input model is refused (so is one with a checkpoint, without
// --resume), and Ctrl-C ends in a saved checkpoint and model. With --teacher, a student with a
// TransducerKLLoss learns from a one-graph teacher.
#include <doctest/doctest.h>

#include <cctype>
#include <cstdlib>
#include <map>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "cli/train_cli.h"
#include "../asr/tiny_bundle.h"
#include "onnx/onnx_io.h"

using namespace asrc;
using namespace asrc::testing;

namespace {

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
  const ir::Tensor& tw = *trained->graphs[0].graph->FindValue("out_w")->initializer;
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

TEST_CASE("asrc train on a bundle: checkpoint, log with batch ids, dev WER, best/last, Ctrl-C, --resume") {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("asrc_train_cli_bundle_" + std::to_string(getpid()));
  fs::create_directories(dir);
  std::string cmd = "sox -D -n -r 16000 -c 1 -b 16 " + (dir / "a.wav").string() + " synth 0.4 sine 300 && " +
                    "sox -D -n -r 16000 -c 1 -b 16 " + (dir / "b.wav").string() + " synth 0.3 sine 900";
  REQUIRE(std::system(cmd.c_str()) == 0);
  const std::string data = (dir / "m.jsonl").string();
  {
    std::ofstream f(data);
    f << R"({"id": "u1", "audio_filepath": "a.wav", "text": "a b", "token_ids": [1, 2], "split": "train"})" << "\n";
    f << R"({"id": "u2", "audio_filepath": "b.wav", "text": "c", "token_ids": [3, 1, 4], "split": "train"})" << "\n";
    f << R"({"id": "d1", "audio_filepath": "a.wav", "text": "a b", "token_ids": [1, 2], "split": "dev"})" << "\n";
  }
  ir::Model m = testing::TinyBundle();
  // asrc train saves its bundles through the ONNX checker, which wants every graph input and
  // output typed: symbolic shapes, as an exporter writes them.
  const std::map<std::string, std::vector<std::string>> dims = {
      {"x", {"N", "T", "80"}}, {"x_lens", {"N"}}, {"encoder_out", {"N", "T", "80"}}, {"encoder_out_lens", {"N"}},
      {"y", {"N", "1"}},       {"decoder_out", {"N", "5"}}, {"logit", {"N", "5"}},
      {"joiner/encoder_out", {"N", "80"}}};
  for (ir::GraphFile& gf : m.graphs)
    for (auto* list : {&gf.graph->inputs, &gf.graph->outputs})
      for (ir::Value* v : *list) {
        v->type.has_type = true;
        if (v->type.dtype == ir::DType::Undefined)
          v->type.dtype = v->name.find("lens") != std::string::npos ? ir::DType::Int64 : ir::DType::Float32;
        v->type.has_shape = true;
        v->type.dims.clear();
        const auto own = dims.find(gf.role + "/" + v->name);
        for (const std::string& d : own != dims.end() ? own->second : dims.at(v->name))
          v->type.dims.push_back(std::isdigit(d[0]) ? ir::Dim{std::stoll(d), ""} : ir::Dim{-1, d});
      }
  const std::string bundle = (dir / "bundle").string();
  Status saved = onnx_io::SaveModel(m, bundle);
  REQUIRE_MESSAGE(saved.ok(), saved.message());
  const std::string bin = ASRC_BIN;
  auto train = [&](const std::string& out, const std::string& more) {
    return bin + " train --model " + bundle + " --data " + data + " --split train --out " + out +
           " --loss rnnt --lr 0.05 --warmup 0 --batch-frames 45 --dev-split dev --eval-every 2 --log-every 100 " + more;
  };
  const std::string out = (dir / "out").string();
  REQUIRE(std::system((train(out, "--steps 6 --checkpoint-every 2 --tempo 0.8,1.0,1.25")).c_str()) == 0);
  auto log = ReadLog(out + "/train_log.jsonl");
  int steps = 0, devs = 0;
  for (const auto& j : log) {
    if (j.contains("utts")) {
      ++steps;
      CHECK(j["utts"].size() == 1);  // one utterance per batch under --batch-frames 45
    }
    if (j.contains("dev_wer")) {
      ++devs;
      CHECK(j["dev_wer"].get<double>() >= 0);
    }
  }
  CHECK(steps == 6);
  CHECK(devs == 4);  // steps 0, 2, 4, 6
  for (const char* f : {"/checkpoint.ckpt", "/best/model.json", "/last/model.json"}) CHECK(fs::exists(out + f));
  CHECK(!fs::exists(out + "/checkpoint.ckpt.tmp"));
  // An existing run is not overwritten without --resume; --resume continues its step count.
  CHECK(std::system((train(out, "--steps 8") + " 2>/dev/null").c_str()) != 0);
  REQUIRE(std::system((train(out, "--steps 8 --resume")).c_str()) == 0);
  log = ReadLog(out + "/train_log.jsonl");
  CHECK(log.back()["step"].get<int>() == 8);
  // --out that is the input bundle is refused before anything is written.
  CHECK(std::system((train(bundle, "--steps 2") + " 2>/dev/null").c_str()) != 0);
  CHECK(!fs::exists(bundle + "/checkpoint.ckpt"));

  // Ctrl-C: stops after the current step, saves the checkpoint and both bundles, exits 0.
  const std::string out2 = (dir / "out2").string();
  const std::string sig = "bash -c '" + train(out2, "--steps 100000000") + " 2>/dev/null & p=$!; sleep 3; kill -INT $p; wait $p'";
  CHECK(std::system(sig.c_str()) == 0);
  log = ReadLog(out2 + "/train_log.jsonl");
  REQUIRE(!log.empty());
  int last = 0;
  for (const auto& j : log)
    if (j.contains("utts")) last = j["step"].get<int>();
  MESSAGE("bundle run after SIGINT: " << last << " steps");
  CHECK(last > 0);
  for (const char* f : {"/checkpoint.ckpt", "/best/model.json", "/last/model.json"}) CHECK(fs::exists(out2 + f));
  std::ifstream ck(out2 + "/checkpoint.ckpt", std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(ck)), std::istreambuf_iterator<char>());
  CHECK(bytes.find("\"step\":" + std::to_string(last) + ",\"tensors\"") != std::string::npos);
  fs::remove_all(dir);
}
