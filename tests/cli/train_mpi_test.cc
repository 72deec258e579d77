// `mpirun -np 2 asrc train` (data-parallel, train/mpi.h) against one process: two ranks with
// --batch-frames F each form the same global batches as one process with 2F, shard them, sum
// their gradients, and so reach the same weights after K steps (within float tolerance: the
// sums run in another order); one process with F (other batches) does not. Only rank 0 writes
// the log and the model. Two batch caps on 5 demo utterances: 2F = 800 makes buckets of 3 and 2
// utterances (the ranks' shares are 2/3 and 1/3 of a mean loss), 2F = 400 makes buckets of one
// (rank 1's shard is empty); the same with a one-graph teacher feeding a KL loss (the teacher
// runs on each rank's shard). The whole-bundle mode (the distill pass's trainer) on the demo
// teacher (SpecAugment and tempo perturbation on: each rank draws them for the whole batch and
// applies them to its shard only): two ranks against one over 2 steps of RNN-T fine-tuning;
// and with a dev split, a checkpoint after step 1 and --resume to step 2 (rank 0 alone logs, prints and writes; every
// rank resumes from its checkpoint; the dev WER is rank 0's on every rank); SIGTERM to rank 1
// alone stops both after the same step (AnyRank), with the checkpoint and both bundles written.
// Needs mpirun (openmpi-bin) and an asrc built with MPI: missing is a skip, a failure under CI=true.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <tuple>

#include "cli/train_cli.h"
#include "train/mpi.h"

using namespace asrc;
using namespace asrc::testing;

namespace {

// Root in a container, 2 ranks on however few cores, shared memory only.
const char* const kMpirun =
    "mpirun --allow-run-as-root --oversubscribe --bind-to none --mca btl self,vader "
    "--mca btl_vader_single_copy_mechanism none -np 2 ";

bool HaveMpi() {
  const bool mpirun = std::system("command -v mpirun >/dev/null 2>&1") == 0;
  return test::HaveReference(mpirun, "mpirun (Debian openmpi-bin)") &&
         test::HaveReference(train::BuiltWithMpi(), "asrc built with MPI (Debian libopenmpi-dev)");
}

// Largest |a - b| over the initializers named `names` of two saved models; `scale` gets the
// largest |a|.
double MaxDiff(const std::string& a_path, const std::string& b_path, const std::vector<std::string>& names,
               double* scale = nullptr) {
  auto a = onnx_io::LoadModel(a_path), b = onnx_io::LoadModel(b_path);
  REQUIRE_MESSAGE(a.ok(), a.status().message());
  REQUIRE_MESSAGE(b.ok(), b.status().message());
  double diff = 0, big = 0;
  for (const std::string& full : names) {
    // "ROLE/name" for a bundle's graph, a plain name for a one-graph model.
    const size_t slash = full.find('/');
    const std::string role = slash == std::string::npos ? "" : full.substr(0, slash);
    const std::string name = slash == std::string::npos ? full : full.substr(slash + 1);
    const ir::Graph* ga = role.empty() ? a->graphs[0].graph.get() : a->graph(role);
    const ir::Graph* gb = role.empty() ? b->graphs[0].graph.get() : b->graph(role);
    REQUIRE(ga);
    REQUIRE(gb);
    const ir::Value* va = ga->FindValue(name);
    const ir::Value* vb = gb->FindValue(name);
    REQUIRE_MESSAGE((va && va->initializer && vb && vb->initializer), "no initializer " << full);
    const ir::Tensor& ta = *va->initializer;
    const ir::Tensor& tb = *vb->initializer;
    REQUIRE(ta.numel() == tb.numel());
    for (int64_t i = 0; i < ta.numel(); ++i) {
      diff = std::max(diff, static_cast<double>(std::fabs(ta.data<float>()[i] - tb.data<float>()[i])));
      big = std::max(big, static_cast<double>(std::fabs(ta.data<float>()[i])));
    }
  }
  if (scale) *scale = big;
  return diff;
}

// Every float initializer (more than one element) of the joiner and the decoder of `bundle`, as
// "ROLE/name".
std::vector<std::string> BundleTrainables(const std::string& bundle) {
  auto before = onnx_io::LoadModel(bundle);
  REQUIRE(before.ok());
  std::vector<std::string> names;
  for (const char* role : {"joiner", "decoder"})
    if (const ir::Graph* g = before->graph(role))
      for (const ir::Value* v : g->initializers)
        if (v->initializer->dtype() == ir::DType::Float32 && v->initializer->numel() > 1)
          names.push_back(std::string(role) + "/" + v->name);
  REQUIRE(!names.empty());
  return names;
}

// mpirun, the demo data (`lines` utterances) and the demo teacher bundle, whose path it returns;
// "" (a skip) when one is missing.
std::string PrepareBundle(CliSetup& c, const std::string& name, int lines) {
  if (!HaveMpi() || !Prepare(c, name, lines)) return "";
  const std::string bundle = test::SourcePath("experiments/teacher/bundle");
  return test::HaveReference(test::Exists(bundle + "/model.json"), "demo teacher bundle") ? bundle : "";
}

// How often `text` occurs in the file at `path`.
int Count(const std::string& path, const std::string& text) {
  std::ifstream f(path);
  const std::string all((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  int n = 0;
  for (size_t at = all.find(text); at != std::string::npos; at = all.find(text, at + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("mpirun -np 2 asrc train: the weights of one process with twice the batch") {
  if (!HaveMpi()) return;
  CliSetup c;
  if (!Prepare(c, "mpi", 5)) return;
  std::map<std::string, ir::Tensor> w0;
  const std::string model = SaveTiny(c, "tiny.onnx", TinyLoss::kRnnt, 1, &w0);
  const int64_t steps = 6;
  auto cmd = [&](const std::string& out, int64_t frames) {
    return std::string(ASRC_BIN) + " train --model " + model + " --data " + c.data + " --tokens " + c.tokens +
           " --out " + (c.dir / out).string() + " --lr 0.01 --warmup 2 --log-every 100 --steps " +
           std::to_string(steps) + " --batch-frames " + std::to_string(frames) + " 2>" + (c.dir / out).string() +
           ".err";
  };
  for (int64_t cap : {400, 200}) {
    CAPTURE(cap);
    const std::string tag = std::to_string(cap);
    REQUIRE(std::system((kMpirun + cmd("np2_" + tag, cap)).c_str()) == 0);
    REQUIRE(std::system(cmd("np1_" + tag, 2 * cap).c_str()) == 0);
    REQUIRE(std::system(cmd("np1_small_" + tag, cap).c_str()) == 0);
    const std::string two = (c.dir / ("np2_" + tag) / "model.onnx").string();
    const std::string one = (c.dir / ("np1_" + tag) / "model.onnx").string();
    const std::string other = (c.dir / ("np1_small_" + tag) / "model.onnx").string();
    double scale = 0;
    const double same = MaxDiff(two, one, TinyTrainables(), &scale);
    const double control = MaxDiff(one, other, TinyTrainables());
    MESSAGE("batch cap " << cap << " x 2 ranks vs " << 2 * cap << " x 1: max |dw| " << same << " (|w| up to "
                         << scale << "); vs " << cap << " x 1 (other batches): " << control);
    CHECK(same <= 1e-5 * std::max(1.0, scale));
    CHECK(control > 100 * std::max(same, 1e-7));  // the comparison can tell other training apart

    // Rank 0 alone logs: one line per step, the losses of the one-process run.
    auto log2 = ReadLog((c.dir / ("np2_" + tag) / "train_log.jsonl").string());
    auto log1 = ReadLog((c.dir / ("np1_" + tag) / "train_log.jsonl").string());
    REQUIRE(log2.size() == static_cast<size_t>(steps));
    REQUIRE(log1.size() == static_cast<size_t>(steps));
    for (size_t k = 0; k < log1.size(); ++k) {
      const double l1 = log1[k]["loss"].get<double>(), l2 = log2[k]["loss"].get<double>();
      CHECK(std::fabs(l1 - l2) <= 1e-4 * std::max(1.0, std::fabs(l1)));
    }
  }
  // The weights moved at all (the runs trained).
  auto trained = onnx_io::LoadModel((c.dir / "np2_400" / "model.onnx").string());
  REQUIRE(trained.ok());
  const ir::Tensor& tw = *trained->graphs[0].graph->FindValue("out_w")->initializer;
  CHECK(std::memcmp(tw.raw(), w0["out_w"].raw(), tw.nbytes()) != 0);
  std::filesystem::remove_all(c.dir);
}

TEST_CASE("mpirun -np 2 asrc train --teacher: each rank runs the teacher on its shard (empty ones too)") {
  if (!HaveMpi()) return;
  CliSetup c;
  if (!Prepare(c, "mpi_kd", 5)) return;
  const std::string student = SaveTiny(c, "student.onnx", TinyLoss::kKl, 1);
  const std::string teacher = SaveTiny(c, "teacher.onnx", TinyLoss::kNone, 2);
  auto cmd = [&](const std::string& out, int64_t frames) {
    return std::string(ASRC_BIN) + " train --model " + student + " --teacher " + teacher + " --data " + c.data +
           " --tokens " + c.tokens + " --out " + (c.dir / out).string() +
           " --lr 0.01 --warmup 2 --steps 5 --log-every 100 --batch-frames " + std::to_string(frames) + " 2>" +
           (c.dir / out).string() + ".err";
  };
  // 200 frames per rank: batches of one utterance, so rank 1 often has nothing to run.
  REQUIRE(std::system((kMpirun + cmd("np2", 200)).c_str()) == 0);
  REQUIRE(std::system(cmd("np1", 400).c_str()) == 0);
  double scale = 0;
  const double same = MaxDiff((c.dir / "np2" / "model.onnx").string(), (c.dir / "np1" / "model.onnx").string(),
                              TinyTrainables(), &scale);
  MESSAGE("--teacher: 2 ranks vs 1 process, max |dw| " << same << " (|w| up to " << scale << ")");
  CHECK(same <= 1e-5 * std::max(1.0, scale));
  std::filesystem::remove_all(c.dir);
}

TEST_CASE("mpirun -np 2 asrc train --model BUNDLE: the demo teacher fine-tuned as by one process") {
  CliSetup c;
  const std::string bundle = PrepareBundle(c, "mpi_bundle", 4);
  if (bundle.empty()) return;
  auto cmd = [&](const std::string& out, int64_t frames) {
    return std::string(ASRC_BIN) + " train --model " + bundle + " --data " + c.data + " --out " +
           (c.dir / out).string() + " --loss rnnt --lr 1e-3 --warmup 0 --steps 2 --tempo 0.9,1.0,1.1 --batch-frames " +
           std::to_string(frames) + " 2>" + (c.dir / out).string() + ".err";
  };
  // 4 utterances of 156..209 frames: one bucket under 1000 frames, two shards of 2.
  REQUIRE(std::system((kMpirun + cmd("np2", 500)).c_str()) == 0);
  REQUIRE(std::system(cmd("np1", 1000).c_str()) == 0);
  const std::vector<std::string> names = BundleTrainables(bundle);
  double scale = 0;
  const double same = MaxDiff((c.dir / "np2" / "last").string(), (c.dir / "np1" / "last").string(), names, &scale);
  const double moved = MaxDiff((c.dir / "np1" / "last").string(), bundle, names);
  MESSAGE("bundle: 2 ranks vs 1 process, max |dw| " << same << " (|w| up to " << scale << "); moved by training "
                                                    << moved);
  CHECK(moved > 1e-4);
  CHECK(same <= 1e-5 * std::max(1.0, scale));
  CHECK(same * 100 < moved);
  std::filesystem::remove_all(c.dir);
}

TEST_CASE("mpirun -np 2 asrc train --model BUNDLE: dev WER, checkpoint and --resume as by one process") {
  CliSetup c;
  const std::string bundle = PrepareBundle(c, "mpi_bundle_resume", 6);
  if (bundle.empty()) return;
  {  // 4 training utterances, 2 dev ones
    auto lines = ReadLog(c.data);
    REQUIRE(lines.size() == 6);
    std::ofstream out(c.data);
    for (size_t k = 0; k < lines.size(); ++k) {
      lines[k]["split"] = k < 4 ? "train" : "dev";
      out << lines[k].dump() << "\n";
    }
  }
  auto cmd = [&](const std::string& out, int64_t frames, int64_t steps, const std::string& more) {
    return std::string(ASRC_BIN) + " train --model " + bundle + " --data " + c.data + " --split train --out " +
           (c.dir / out).string() + " --loss rnnt --lr 1e-3 --warmup 0 --tempo 0.9,1.0,1.1 --dev-split dev" +
           " --eval-every 1 --best-by loss" +
           " --checkpoint-every 1 --batch-frames " + std::to_string(frames) + " --steps " + std::to_string(steps) + " " +
           more + " 2>>" + (c.dir / out).string() + ".err";
  };
  // Step 1, then --resume to step 2: two ranks (cap 500 each) against one process (cap 1000).
  for (const auto& [out, frames, mpi] : {std::tuple<std::string, int64_t, bool>{"np2", 500, true}, {"np1", 1000, false}}) {
    const std::string pre = mpi ? kMpirun : "";
    REQUIRE(std::system((pre + cmd(out, frames, 1, "")).c_str()) == 0);
    // An existing run is refused without --resume on every rank, and left as it was.
    const auto size = std::filesystem::file_size(c.dir / out / "checkpoint.ckpt");
    CHECK(std::system((pre + cmd(out, frames, 2, "")).c_str()) != 0);
    CHECK(std::filesystem::file_size(c.dir / out / "checkpoint.ckpt") == size);
    REQUIRE(std::system((pre + cmd(out, frames, 2, "--resume")).c_str()) == 0);
    CHECK(!std::filesystem::exists(c.dir / out / "checkpoint.ckpt.tmp"));
  }
  const std::vector<std::string> names = BundleTrainables(bundle);
  double scale = 0;
  const double same = MaxDiff((c.dir / "np2" / "last").string(), (c.dir / "np1" / "last").string(), names, &scale);
  const double moved = MaxDiff((c.dir / "np1" / "last").string(), bundle, names);
  MESSAGE("bundle, resumed: 2 ranks vs 1 process, max |dw| " << same << " (|w| up to " << scale << "); moved " << moved);
  CHECK(moved > 1e-4);
  CHECK(same <= 1e-5 * std::max(1.0, scale));
  // Rank 0 alone logs (a second writer would double the lines) and prints; the dev scores are
  // those of the one process.
  auto log2 = ReadLog((c.dir / "np2" / "train_log.jsonl").string());
  auto log1 = ReadLog((c.dir / "np1" / "train_log.jsonl").string());
  REQUIRE(log1.size() == 5);  // dev at step 0, step 1, dev 1, step 2, dev 2
  REQUIRE(log2.size() == log1.size());
  for (size_t k = 0; k < log1.size(); ++k) {
    CHECK(log2[k]["step"] == log1[k]["step"]);
    for (const char* key : {"loss", "dev_loss"})
      if (log1[k].contains(key))
        CHECK(std::fabs(log2[k][key].get<double>() - log1[k][key].get<double>()) <=
              1e-4 * std::max(1.0, std::fabs(log1[k][key].get<double>())));
    if (log1[k].contains("dev_wer")) {
      CHECK(log1[k]["dev_wer"].get<double>() >= 0);
      CHECK(log2[k]["dev_wer"].get<double>() == log1[k]["dev_wer"].get<double>());
    }
  }
  const std::string err2 = (c.dir / "np2.err").string();
  CHECK(Count(err2, "train: step 0 dev loss") == 1);
  CHECK(Count(err2, "train: step 2/2 ") == 1);
  for (const char* dir : {"best", "last"}) CHECK(std::filesystem::exists(c.dir / "np2" / dir / "model.json"));
  std::filesystem::remove_all(c.dir);
}

TEST_CASE("mpirun -np 2 asrc train --model BUNDLE: SIGTERM on rank 1 alone stops both ranks after the same step") {
  CliSetup c;
  const std::string bundle = PrepareBundle(c, "mpi_bundle_stop", 4);
  if (bundle.empty()) return;
  const std::string dir = c.dir.string(), out = dir + "/out";
  {  // rank 1 leaves its pid for the signal
    std::ofstream sh(dir + "/rank.sh");
    sh << "if [ \"$OMPI_COMM_WORLD_RANK\" = 1 ]; then echo $$ > " << dir << "/rank1.pid; fi\n"
       << "exec " << ASRC_BIN << " train --model " << bundle << " --data " << c.data << " --out " << out
       << " --loss rnnt --lr 1e-3 --warmup 0 --steps 100000000 --batch-frames 500 --log-every 1\n";
  }
  // A rank that stopped alone would leave the other waiting in its next Allreduce: `timeout` fails.
  const std::string run = "timeout 300 bash -c '" + std::string(kMpirun) + "sh " + dir + "/rank.sh 2>" + dir +
                          "/stop.err & p=$!; while [ ! -s " + dir + "/rank1.pid ]; do sleep 0.2; done; sleep 4; " +
                          "kill -TERM $(cat " + dir + "/rank1.pid); wait $p'";
  CHECK(std::system(run.c_str()) == 0);
  auto log = ReadLog(out + "/train_log.jsonl");
  REQUIRE(!log.empty());
  const int64_t last = log.back()["step"].get<int64_t>();
  MESSAGE("stopped after step " << last);
  CHECK(last >= 1);
  CHECK(last < 100000000);
  CHECK(Count(dir + "/stop.err", "(interrupted)") == 1);
  for (const char* f : {"/checkpoint.ckpt", "/last/model.json", "/best/model.json"})
    CHECK(std::filesystem::exists(out + f));
  std::filesystem::remove_all(c.dir);
}
