// One training step of a transducer bundle (RNN-T loss) or one KD step (teacher forward + student
// forward/backward + AdamW) through train::TransducerTrainer, timed, with the process's peak RSS.
// The PyTorch side is bench/train_bench_torch.py; bench/train_bench.sh runs both and writes the
// table of BENCHMARKS.md. Not a test.
//   train_bench --bundle DIR --manifest JSONL --mode rnnt|kd|grads --threads N [--steps N]
//               [--batch 16] [--min-frames 250] [--max-frames 350] [--max-plans 4] [--max-batch 8] [--ids-out FILE]
// The batch: the first `batch` utterances of split train (manifest order) with min..max feature
// frames. --ids-out writes them (id and labels, one JSON line each) for the PyTorch side;
// --steps 0 only writes them.
// Prints one JSON line: cold step (composition + planning + run), the median warm step and how it
// splits into composing/planning, running the graphs and the rest (gradient sum, AdamW), plans
// built per warm step, and peak RSS. --mode grads: instead, the RNN-T loss of the batch's first
// utterance and the L2 norm of each trainable's gradient (name, elements, norm; one line each).
#include <sys/resource.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "asr/stream.h"
#include "onnx/onnx_io.h"
#include "train/data.h"
#include "train/transducer.h"

using namespace asrc;

namespace {

struct Args {
  std::string bundle, manifest, mode = "rnnt", ids_out;
  int threads = 1, steps = 3, batch = 16;
  int64_t min_frames = 250, max_frames = 350, max_plans = 4, max_batch = 8;
};

int Fail(const std::string& m) {
  std::fprintf(stderr, "train_bench: %s\n", m.c_str());
  return 1;
}

// CPU seconds of the process, all threads.
double CpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

double PeakRssMiB() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss / 1024.0;  // Linux: KiB
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--bundle") a.bundle = v;
    else if (k == "--manifest") a.manifest = v;
    else if (k == "--mode") a.mode = v;
    else if (k == "--ids-out") a.ids_out = v;
    else if (k == "--threads") a.threads = std::atoi(v.c_str());
    else if (k == "--steps") a.steps = std::atoi(v.c_str());
    else if (k == "--batch") a.batch = std::atoi(v.c_str());
    else if (k == "--min-frames") a.min_frames = std::atoll(v.c_str());
    else if (k == "--max-frames") a.max_frames = std::atoll(v.c_str());
    else if (k == "--max-plans") a.max_plans = std::atoll(v.c_str());
    else if (k == "--max-batch") a.max_batch = std::atoll(v.c_str());
    else return Fail("unknown option " + k);
  }
  if (a.bundle.empty() || a.manifest.empty()) return Fail("--bundle and --manifest are required");
  if (a.mode != "rnnt" && a.mode != "kd" && a.mode != "grads") return Fail("--mode must be rnnt, kd or grads");
  if (a.steps == 1 || a.steps < 0) return Fail("--steps must be >= 2 (one cold step, then warm ones), or 0 (--ids-out only)");
  auto model = onnx_io::LoadModel(a.bundle);
  if (!model.ok()) return Fail(model.status().message());
  auto cfg = asr::BundleConfig::FromModel(*model);
  if (!cfg.ok()) return Fail(a.bundle + ": " + cfg.status().message());
  auto all = train::LoadUtterances(a.manifest, "train", cfg->frontend, cfg->tokens, 8 * a.batch);
  if (!all.ok()) return Fail(all.status().message());
  std::vector<const train::Utterance*> batch;
  for (const auto& u : *all)
    if (u.frames >= a.min_frames && u.frames <= a.max_frames && static_cast<int>(batch.size()) < a.batch)
      batch.push_back(&u);
  if (static_cast<int>(batch.size()) < a.batch)
    return Fail("only " + std::to_string(batch.size()) + " utterances of " + std::to_string(a.min_frames) + ".." +
                std::to_string(a.max_frames) + " frames among the first " + std::to_string(all->size()));
  int64_t frames = 0, tokens = 0;
  for (const auto* u : batch) frames += u->frames, tokens += static_cast<int64_t>(u->labels.size());
  if (!a.ids_out.empty()) {
    std::ofstream f(a.ids_out);
    for (const auto* u : batch) {
      f << "{\"id\": \"" << u->id << "\", \"frames\": " << u->frames << ", \"labels\": [";
      for (size_t i = 0; i < u->labels.size(); ++i) f << (i ? ", " : "") << u->labels[i];
      f << "]}\n";
    }
  }
  if (a.steps == 0) return 0;
  const double rss_data = PeakRssMiB();
  train::TransducerTrainOptions opt;
  auto loss = train::TransducerLoss::Parse(a.mode == "kd" ? "kd" : "rnnt", "full", 1.0);
  if (!loss.ok()) return Fail(loss.status().message());
  opt.loss = *loss;
  opt.threads = a.threads;
  opt.max_plans = static_cast<size_t>(a.max_plans);
  opt.max_batch = a.max_batch;
  opt.schedule = train::Schedule::Constant(1e-4);
  // KD: the student is a copy of the same bundle (the demo teacher's architecture).
  auto trainer = train::TransducerTrainer::Create(*model, a.mode == "kd" ? &*model : nullptr, opt);
  if (!trainer.ok()) return Fail(trainer.status().message());
  auto& t = **trainer;
  if (a.mode == "grads") {  // per-tensor gradient norms of the first utterance (loss_scale 1)
    auto g = t.Gradients(*batch[0]);
    if (!g.ok()) return Fail(g.status().message());
    std::printf("loss %.6f\n", (*g)[0].data<float>()[0]);
    for (size_t i = 0; i < t.trainable_names().size(); ++i) {
      const ir::Tensor& x = (*g)[i + 1];
      double ss = 0;
      for (int64_t k = 0; k < x.numel(); ++k) ss += double(x.data<float>()[k]) * x.data<float>()[k];
      std::printf("%s %lld %.6g\n", t.trainable_names()[i].c_str(), (long long)x.numel(), std::sqrt(ss));
    }
    return 0;
  }
  std::vector<double> warm, warm_plan, warm_run, warm_plans, warm_cpu;
  double cold = 0, cold_plan = 0, first_loss = 0;
  for (int s = 0; s < a.steps; ++s) {
    const double p0 = t.plan_seconds(), r0 = t.run_seconds();
    const int64_t n0 = t.plans_built();
    const auto t0 = std::chrono::steady_clock::now();
    const double c0 = CpuSeconds();
    auto st = t.Step(batch, "bench");
    const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double cpu = CpuSeconds() - c0;
    if (!st.ok()) return Fail(st.status().message());
    if (s == 0) {
      cold = sec, cold_plan = t.plan_seconds() - p0, first_loss = st->loss;
      continue;
    }
    warm.push_back(sec);
    warm_cpu.push_back(cpu);
    warm_plan.push_back(t.plan_seconds() - p0);
    warm_run.push_back(t.run_seconds() - r0);
    warm_plans.push_back(static_cast<double>(t.plans_built() - n0));
  }
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  // The warm step whose time is the median, so that its parts add up; its CPU time (all threads)
  // too, which a loaded machine inflates less than the wall clock.
  size_t mi = 0;
  const double med = median(warm);
  for (size_t i = 0; i < warm.size(); ++i)
    if (warm[i] == med) mi = i;
  int64_t params = 0;
  for (const auto& w : t.weights()) params += w.numel();
  std::printf(
      "{\"impl\": \"asrc\", \"mode\": \"%s\", \"threads\": %d, \"utts\": %zu, \"frames\": %lld, \"tokens\": %lld, "
      "\"params\": %lld, \"loss_per_token\": %.5f, \"cold_s\": %.4f, \"cold_plan_s\": %.4f, \"step_s\": %.4f, "
      "\"step_plan_s\": %.4f, \"step_run_s\": %.4f, \"step_other_s\": %.4f, \"plans_per_step\": %.1f, "
      "\"plans_total\": %lld, \"warm_steps\": %zu, \"step_cpu_s\": %.4f, \"rss_after_data_mib\": %.1f, \"peak_rss_mib\": %.1f}\n",
      a.mode.c_str(), a.threads, batch.size(), (long long)frames, (long long)tokens, (long long)params, first_loss, cold,
      cold_plan, med, warm_plan[mi], warm_run[mi], med - warm_plan[mi] - warm_run[mi], warm_plans[mi],
      (long long)t.plans_built(), warm.size(), warm_cpu[mi], rss_data, PeakRssMiB());
  return 0;
}
