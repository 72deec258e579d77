// Fallback model timer for bench/run_benchmarks.sh when the `asrc bench` subcommand is not
// built: loads one ONNX file, feeds TensorProto inputs, runs a Session and prints the same JSON
// as `asrc bench --json`, plus the GEMM kernel that ran and the median process CPU time per run
// (cpu_ms: all threads; on a shared machine it moves less than wall time).
//   model_bench MODEL.onnx [--input NAME=FILE.pb ...] [--threads N] [--runs N] [--warmup N]
//               [--output-dir DIR]   (writes DIR/<output name>.pb after the runs, like asrc run)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "onnx/onnx_io.h"
#include "runtime/gemm.h"
#include "runtime/session.h"

namespace {
double PeakRssMb() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  return 0;
}
int Fail(const std::string& m) {
  std::fprintf(stderr, "model_bench: %s\n", m.c_str());
  return 1;
}
}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return Fail("usage: model_bench MODEL.onnx [--input NAME=FILE.pb] [--threads N] [--runs N]");
  std::string model = argv[1];
  int threads = 1, runs = 20, warmup = 3;
  std::string output_dir;
  std::vector<std::pair<std::string, std::string>> input_files;
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    if (i + 1 >= argc) return Fail("missing value after " + a);
    std::string v = argv[++i];
    if (a == "--threads") threads = std::atoi(v.c_str());
    else if (a == "--runs") runs = std::max(1, std::atoi(v.c_str()));
    else if (a == "--warmup") warmup = std::atoi(v.c_str());
    else if (a == "--output-dir") output_dir = v;
    else if (a == "--input") {
      auto eq = v.find('=');
      if (eq == std::string::npos) return Fail("--input wants NAME=FILE.pb, got " + v);
      input_files.emplace_back(v.substr(0, eq), v.substr(eq + 1));
    } else {
      return Fail("unknown option " + a);
    }
  }
  auto file = asrc::onnx_io::LoadGraphFile(model);
  if (!file.ok()) return Fail(file.status().message());
  asrc::runtime::SessionOptions opt;
  opt.threads = threads;
  auto session = asrc::runtime::Session::Create(*file->graph, file->opset(""), opt);
  if (!session.ok()) return Fail(model + ": " + session.status().message());
  std::vector<std::pair<std::string, asrc::ir::Tensor>> feeds;
  for (const auto& [name, path] : input_files) {
    auto t = asrc::onnx_io::LoadTensorFile(path);
    if (!t.ok()) return Fail(t.status().message());
    feeds.emplace_back(name, std::move(t.value()));
  }
  std::vector<double> ms, cpu;
  std::vector<asrc::ir::Tensor> last;
  auto cpu_ms = [] {
    timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
  };
  for (int i = 0; i < warmup + runs; ++i) {
    double c0 = cpu_ms();
    auto t0 = std::chrono::steady_clock::now();
    auto out = (*session)->Run(feeds);
    auto t1 = std::chrono::steady_clock::now();
    double c1 = cpu_ms();
    if (!out.ok()) return Fail(model + ": " + out.status().message());
    if (i >= warmup) {
      ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
      cpu.push_back(c1 - c0);
    }
    last = std::move(out.value());
  }
  if (!output_dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(output_dir, ec);
    const auto& names = (*session)->output_names();
    for (size_t i = 0; i < names.size() && i < last.size(); ++i) {
      auto st = asrc::onnx_io::SaveTensorFile(last[i], names[i], output_dir + "/" + names[i] + ".pb");
      if (!st.ok()) return Fail(st.message());
    }
  }
  std::sort(ms.begin(), ms.end());
  std::sort(cpu.begin(), cpu.end());
  double median = ms[ms.size() / 2];
  double p90 = ms[std::min(ms.size() - 1, ms.size() * 9 / 10)];
  std::printf("{\"median_ms\": %.4f, \"p90_ms\": %.4f, \"peak_rss_mb\": %.1f, \"runs\": %d, "
              "\"threads\": %d, \"cpu_ms\": %.4f, \"gemm\": \"%s\"}\n",
              median, p90, PeakRssMb(), runs, threads, cpu[cpu.size() / 2],
              asrc::runtime::GemmBackendName());
  return 0;
}
