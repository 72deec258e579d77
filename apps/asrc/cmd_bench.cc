// asrc bench MODEL [--input NAME=FILE.pb ...] [--threads N] [--runs N] [--json] [--dim NAME=V ...]
// Times Session::Run on one graph: median and p90 latency over --runs timed runs (after
// --warmup untimed ones) and the process's peak resident memory. Inputs not given are generated
// (runtime/inputs.h): static dims as declared; symbolic dims from --dim NAME=V, else 1 on axis 0
// and for batch-like names (N, B, *batch*), and --default-dim (100) elsewhere; seeded data.
// --json prints {"median_ms", "p90_ms", "peak_rss_mb", "runs", "threads"}.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "graph_cli.h"
#include "runtime/gemm.h"
#include "runtime/inputs.h"
#include "runtime/session.h"

namespace asrc::app {

namespace {

struct BenchArgs {
  std::string model, graph;
  std::vector<std::string> inputs, dims;
  int threads = 1, runs = 20, warmup = 3;
  int64_t default_dim = 100;
  uint32_t seed = 1;
  bool json = false;
};

// Generated inputs are allocated before anything runs: refuse a --dim, --default-dim or declared
// shape whose inputs would not fit, and a --dim that names no symbolic dim of the graph.
constexpr int64_t kMaxGeneratedBytes = int64_t{1} << 30;

Status CheckGeneratedInputs(const ir::Graph& g, const std::vector<bool>& given,
                            const std::map<std::string, int64_t>& dims, int64_t default_dim) {
  std::set<std::string> names;
  for (const ir::Value* v : g.inputs)
    for (const ir::Dim& d : v->type.dims)
      if (!d.known() && !d.param.empty()) names.insert(d.param);
  for (const auto& [name, value] : dims) {
    if (names.count(name)) continue;
    std::string known;
    for (const auto& n : names) known += (known.empty() ? "" : ", ") + n;
    return Error("--dim " + name + ": graph '" + g.name + "' has no symbolic dim named '" + name +
                 "' (its symbolic dims: " + (known.empty() ? "none" : known) + ")");
  }
  int64_t total = 0;
  size_t feed = 0;
  for (const ir::Value* v : g.inputs) {
    if (v->initializer) continue;
    if (given[feed++]) continue;
    ASRC_ASSIGN_OR_RETURN(ir::Shape shape, runtime::ResolveInputShape(*v, dims, default_dim));
    int64_t bytes = std::max<int64_t>(1, static_cast<int64_t>(ir::DTypeSize(v->type.dtype)));
    for (int64_t d : shape) {
      if (d < 0 || (d > 0 && bytes > kMaxGeneratedBytes / d))
        return Error("input '" + v->name + "': generated shape " + ir::ShapeStr(shape) +
                     " is over the 1 GiB budget for generated inputs; lower --dim/--default-dim or pass it with --input");
      bytes *= d;
    }
    total += bytes;
    if (total > kMaxGeneratedBytes)
      return Error("generated inputs are over the 1 GiB budget (at input '" + v->name +
                   "'); lower --dim/--default-dim or pass inputs with --input");
  }
  return Status::Ok();
}

double PeakRssMb() {
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_maxrss) / 1024.0;  // ru_maxrss is KiB on Linux
}

int RunBench(const BenchArgs& a) {
  std::map<std::string, int64_t> dims;
  for (const auto& d : a.dims) {
    auto eq = d.find('=');
    char* end = nullptr;
    long long v = eq == std::string::npos ? -1 : std::strtoll(d.c_str() + eq + 1, &end, 10);
    if (eq == std::string::npos || eq == 0 || v < 0 || !end || *end != '\0')
      return Fail("--dim '" + d + "': expected NAME=VALUE with VALUE >= 0");
    dims[d.substr(0, eq)] = v;
  }
  auto loaded = LoadGraphForRun(a.model, a.graph, a.inputs, a.threads);
  if (!loaded.ok()) return Fail(loaded.status().message());
  const ir::Graph& g = *(*loaded)->file->graph;
  auto& session = (*loaded)->session;
  auto* named = &(*loaded)->inputs;
  // Generated inputs first, then the given ones override by name.
  std::vector<ir::Tensor> feeds(session->input_names().size());
  std::vector<bool> given(feeds.size(), false);
  for (size_t i = 0; i < feeds.size(); ++i) {
    auto it = named->find(session->input_names()[i]);
    if (it != named->end()) {
      feeds[i] = it->second;
      given[i] = true;
      named->erase(it);
    }
  }
  if (!named->empty()) return Fail(a.model + ": graph has no input named '" + named->begin()->first + "'");
  Status fits = CheckGeneratedInputs(g, given, dims, a.default_dim);
  if (!fits.ok()) return Fail(a.model + ": " + fits.message());
  if (std::find(given.begin(), given.end(), false) != given.end()) {
    auto gen = runtime::MakeInputs(g, dims, a.default_dim, a.seed);
    if (!gen.ok()) return Fail(a.model + ": " + gen.status().message());
    for (size_t i = 0; i < feeds.size(); ++i)
      if (!given[i]) feeds[i] = (*gen)[i];
  }
  std::vector<ir::Tensor> outs;
  for (int i = 0; i < a.warmup; ++i) {
    Status st = session->Run(feeds, &outs);
    if (!st.ok()) return Fail(a.model + ": " + st.message());
  }
  std::vector<double> ms;
  for (int i = 0; i < a.runs; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    Status st = session->Run(feeds, &outs);
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    if (!st.ok()) return Fail(a.model + ": " + st.message());
  }
  std::sort(ms.begin(), ms.end());
  auto q = [&](double p) { return ms[std::min(ms.size() - 1, static_cast<size_t>(p * ms.size()))]; };
  double median = ms.size() % 2 ? ms[ms.size() / 2] : 0.5 * (ms[ms.size() / 2 - 1] + ms[ms.size() / 2]);
  double p90 = q(0.9);
  if (a.json) {
    nlohmann::json j = {{"median_ms", median}, {"p90_ms", p90}, {"peak_rss_mb", PeakRssMb()},
                        {"runs", a.runs}, {"threads", a.threads}};
    std::cout << j.dump() << "\n";
  } else {
    std::cout << "model: " << a.model << " (graph '" << g.name << "')\n";
    for (size_t i = 0; i < feeds.size(); ++i)
      std::cout << "input " << session->input_names()[i] << ": " << ir::DTypeName(feeds[i].dtype()) << " "
                << ir::ShapeStr(feeds[i].shape()) << (given[i] ? " (given)" : " (generated)") << "\n";
    std::cout << "threads " << a.threads << ", runs " << a.runs << ", gemm " << runtime::GemmBackendName() << "\n";
    std::cout << "median " << median << " ms, p90 " << p90 << " ms, peak RSS " << PeakRssMb() << " MB\n";
  }
  return 0;
}

}  // namespace

void AddBenchCommand(CLI::App& root, CommandSet& set) {
  auto args = std::make_shared<BenchArgs>();
  CLI::App* sub = root.add_subcommand("bench", "Time a graph: median/p90 latency and peak memory");
  sub->add_option("model", args->model, "model .onnx file (or bundle folder with --graph)")->required();
  sub->add_option("--input", args->inputs, "graph input as NAME=FILE.pb (repeatable); others are generated");
  sub->add_option("--threads", args->threads, "intra-op threads")->check(CLI::Range(1, 64));
  sub->add_option("--runs", args->runs, "timed runs")->check(CLI::Range(1, 1000000));
  sub->add_option("--warmup", args->warmup, "untimed runs first")->check(CLI::Range(0, 1000000));
  sub->add_option("--dim", args->dims, "symbolic dim value for generated inputs, NAME=VALUE (e.g. T=300)");
  sub->add_option("--default-dim", args->default_dim, "value for other symbolic dims off the batch axis")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 30));
  sub->add_option("--seed", args->seed, "seed for generated inputs");
  sub->add_option("--graph", args->graph, "graph role when MODEL is a bundle");
  sub->add_flag("--json", args->json, "print one JSON object");
  set.add(sub, [args] { return RunBench(*args); });
}

}  // namespace asrc::app
