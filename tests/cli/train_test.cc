// `asrc train` end to end: a tiny transducer with its RNN-T loss saved as one .onnx file, trained
// on 4 utterances of the demo manifest through the fbank front end; the loss falls, the
// checkpoint, the log and the trained model are written, --resume continues the step count, and
// an output folder that holds the input model is refused (so is one with a checkpoint, without
// --resume), and Ctrl-C ends in a saved checkpoint and model. With --teacher, a student with a
// TransducerKLLoss learns from a one-graph teacher.
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "cli/train_cli.h"
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
