// Loss forward + backward on random logits, at 1 and 2 threads, median milliseconds side by side
// with PyTorch (bench/loss_bench_torch.py, through /usr/bin/python3): our ai.asrc RNNTLoss
// (runtime/kernels/loss.h) against torchaudio.functional.rnnt_loss, our TransducerKLLoss against
// the same KL written in torch with autograd, and our TransducerCollapsedKLLoss on a 3-class
// teacher (no PyTorch counterpart). Not a test.
//   loss_bench [B T U V] [--runs N]      (default 16 75 20 256, 20 runs)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "runtime/session.h"

using namespace asrc;

namespace {

double TorchMs(const char* kind, const std::vector<int64_t>& d, int threads, int runs) {
  std::string cmd = "/usr/bin/python3 " ASRC_SOURCE_DIR "/bench/loss_bench_torch.py " + std::string(kind);
  for (int64_t v : d) cmd += " " + std::to_string(v);
  cmd += " " + std::to_string(threads) + " " + std::to_string(runs) + " 2>/dev/null";
  FILE* p = popen(cmd.c_str(), "r");
  double ms = -1;
  if (p && std::fscanf(p, "%lf", &ms) != 1) ms = -1;
  if (p) pclose(p);
  return ms;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int64_t> d = {16, 75, 20, 256};  // B T U V
  int runs = 20;
  for (int i = 1, k = 0; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--runs") && i + 1 < argc) runs = std::atoi(argv[++i]);
    else if (k < 4) d[k++] = std::atoll(argv[i]);
  }
  const int64_t B = d[0], T = d[1], U = d[2], V = d[3];
  ir::Tensor x(ir::DType::Float32, {B, T, U + 1, V}), y(ir::DType::Int64, {B, U});
  std::mt19937 rng(0);
  std::normal_distribution<float> nd;
  for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = nd(rng);
  for (int64_t i = 0; i < y.numel(); ++i) y.data<int64_t>()[i] = 1 + static_cast<int64_t>(rng() % (V - 1));
  ir::Tensor tl = ir::Tensor::FromVector(ir::DType::Int64, {B}, std::vector<int64_t>(B, T));
  ir::Tensor ul = ir::Tensor::FromVector(ir::DType::Int64, {B}, std::vector<int64_t>(B, U));
  ir::Tensor teacher(ir::DType::Float32, x.shape()), teacher3(ir::DType::Float32, {B, T, U + 1, 3});
  for (int64_t i = 0; i < teacher.numel(); ++i) teacher.data<float>()[i] = nd(rng);
  for (int64_t i = 0; i < teacher3.numel(); ++i) teacher3.data<float>()[i] = 1.f / 3;
  struct Case {
    const char* op;
    const char* torch;  // loss_bench_torch.py kind, or nullptr
    std::vector<ir::Tensor> inputs;
  };
  const std::vector<Case> cases = {{"RNNTLoss", "rnnt", {x, y, tl, ul}},
                                   {"TransducerKLLoss", "kl", {x, teacher, tl, ul}},
                                   {"TransducerCollapsedKLLoss", nullptr, {x, teacher3, y, tl, ul}}};
  std::printf("loss forward + backward, B=%lld T=%lld U=%lld V=%lld, median of %d runs (ms)\n",
              (long long)B, (long long)T, (long long)U, (long long)V, runs);
  std::printf("%-26s threads  asrc      pytorch     ratio\n", "op");
  for (const Case& c : cases) {
    ir::Graph g("loss");
    std::vector<ir::Value*> ins;
    for (size_t i = 0; i < c.inputs.size(); ++i) {
      ins.push_back(g.AddValue("in" + std::to_string(i)));
      g.inputs.push_back(ins.back());
    }
    ir::Node* n = g.AddNode(c.op, ins, {"loss", "grad"}, "loss", "ai.asrc");
    for (auto* o : n->outputs) g.outputs.push_back(o);
    for (int threads : {1, 2}) {
      auto s = runtime::Session::Create(g, 17, {threads});
      if (!s.ok()) return std::fprintf(stderr, "%s\n", s.status().message().c_str()), 1;
      std::vector<double> ms;
      for (int r = 0; r < runs + 2; ++r) {
        std::vector<ir::Tensor> out;
        auto t0 = std::chrono::steady_clock::now();
        Status st = s.value()->Run(c.inputs, &out);
        if (!st.ok()) return std::fprintf(stderr, "%s\n", st.message().c_str()), 1;
        if (r >= 2) ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
      }
      std::sort(ms.begin(), ms.end());
      const double ours = ms[ms.size() / 2], torch = c.torch ? TorchMs(c.torch, d, threads, runs) : -1;
      std::printf("%-26s %-8d %-9.2f ", c.op, threads, ours);
      if (torch > 0) std::printf("%-11.2f %.2fx\n", torch, ours / torch);
      else std::printf("%s\n", c.torch ? "(unavailable)" : "-");
    }
  }
  return 0;
}
