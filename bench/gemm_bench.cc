// GEMM micro-benchmark on the shapes of our speech models: fp32 Eigen vs OpenBLAS vs oneDNN,
// and the int8 kernel (plus oneDNN's u8s8s32 for comparison), at 1 and 2 threads.
// Prints a markdown table: median microseconds and GFLOP/s (GOP/s for int8) per shape.
//
//   gemm_bench [--quick] [--threads 1,2]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "runtime/gemm.h"
#ifdef ASRC_HAVE_DNNL
#include <oneapi/dnnl/dnnl.h>
#endif

using namespace asrc::runtime;

namespace {

double MedianUs(const std::function<void()>& fn, double budget_ms) {
  fn();  // warm-up (packing, thread start)
  std::vector<double> t;
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 200; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    fn();
    auto t1 = std::chrono::steady_clock::now();
    t.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
    if (i >= 4 && std::chrono::duration<double, std::milli>(t1 - start).count() > budget_ms) break;
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

struct ShapeMNK {
  int64_t M, K, N;
};

}  // namespace

int main(int argc, char** argv) {
  bool quick = false;
  std::vector<int> thread_list = {1, 2};
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--quick")) quick = true;
    else if (!std::strcmp(argv[i], "--threads") && i + 1 < argc) {
      thread_list.clear();
      for (char* s = std::strtok(argv[++i], ","); s; s = std::strtok(nullptr, ","))
        thread_list.push_back(std::atoi(s));
    }
  }
  std::vector<std::pair<int64_t, int64_t>> kn = {{144, 144}, {144, 576}, {576, 144},
                                                 {256, 256}, {256, 1024}, {1024, 256},
                                                 {256, 1536}, {1536, 256}};
  std::vector<int64_t> ms = {1, 75, 300};
  if (quick) {
    kn = {{144, 576}, {256, 1024}, {1024, 256}};
    ms = {1, 75};
  }
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> uf(-1.f, 1.f);
  std::uniform_int_distribution<int> ui(-128, 127), uu(0, 255);
  const double budget = quick ? 60 : 150;

  std::printf("backend in use by default: %s\n\n", GemmBackendName());
  std::printf("| M | K | N | thr | eigen us | openblas us | dnnl us | best fp32 | fp32 GFLOP/s "
              "| int8 (ours) us | int8 GOP/s | int8 7-bit w (ours) us | 7-bit GOP/s | dnnl u8s8 us "
              "| int8/fp32 | 7-bit/fp32 |\n");
  std::printf("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  for (int64_t M : ms)
    for (auto [K, N] : kn)
      for (int thr : thread_list) {
        std::vector<float> A(M * K), B(K * N), C(M * N);
        for (auto& v : A) v = uf(rng);
        for (auto& v : B) v = uf(rng);
        double us[3] = {-1, -1, -1};
        GemmBackend backends[3] = {GemmBackend::Eigen, GemmBackend::OpenBlas, GemmBackend::Dnnl};
        for (int b = 0; b < 3; ++b) {
          if (!SetGemmBackend(backends[b])) continue;
          us[b] = MedianUs([&] {
            Sgemm(false, false, M, N, K, 1.f, A.data(), K, B.data(), N, 0.f, C.data(), N, thr);
          }, budget);
        }
        SetGemmBackend(GemmBackend::Auto);
        int best = 0;
        for (int b = 1; b < 3; ++b)
          if (us[b] > 0 && us[b] < us[best]) best = b;
        const char* names[3] = {"eigen", "openblas", "dnnl"};
        double flops = 2.0 * M * N * K;

        std::vector<uint8_t> A8(M * K);
        std::vector<int8_t> B8(K * N);
        std::vector<int32_t> C32(M * N);
        for (auto& v : A8) v = static_cast<uint8_t>(uu(rng));
        for (auto& v : B8) v = static_cast<int8_t>(ui(rng));
        int32_t bz = 0;
        PackedIgemmB packed = PackIgemmB(K, N, B8.data(), true, &bz, false);
        double i8 = MedianUs([&] {
          IgemmPacked(M, A8.data(), false, 128, packed, C32.data(), N, thr);
        }, budget);
        // 7-bit weights ([-63, 63], reduce_range): the exact u8 x s8 path.
        std::vector<int8_t> B7(K * N);
        for (size_t i = 0; i < B7.size(); ++i) B7[i] = static_cast<int8_t>(B8[i] / 2);
        PackedIgemmB packed7 = PackIgemmB(K, N, B7.data(), true, &bz, false);
        double i7 = MedianUs([&] {
          IgemmPacked(M, A8.data(), false, 128, packed7, C32.data(), N, thr);
        }, budget);
        double dn8 = -1;
#ifdef ASRC_HAVE_DNNL
        dn8 = MedianUs([&] {
          int32_t co = 0;
          dnnl_gemm_u8s8s32('N', 'N', 'F', M, N, K, 1.f, A8.data(), K, 128, B8.data(), N, 0, 0.f,
                            C32.data(), N, &co);
        }, budget);
#endif
        auto cell = [](double v) { return v < 0 ? std::string("-") : std::to_string(v).substr(0, std::to_string(v).find('.') + 2); };
        std::printf("| %lld | %lld | %lld | %d | %s | %s | %s | %s | %.1f | %s | %.1f | %s | %.1f "
                    "| %s | %.2f | %.2f |\n",
                    (long long)M, (long long)K, (long long)N, thr, cell(us[0]).c_str(),
                    cell(us[1]).c_str(), cell(us[2]).c_str(), names[best],
                    flops / us[best] / 1e3, cell(i8).c_str(), flops / i8 / 1e3,
                    cell(i7).c_str(), flops / i7 / 1e3, cell(dn8).c_str(), i8 / us[best],
                    i7 / us[best]);
        std::fflush(stdout);
      }
  return 0;
}
