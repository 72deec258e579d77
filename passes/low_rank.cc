#include "passes/low_rank.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <sstream>
#include <string>

#include <Eigen/Dense>
#include <Eigen/SVD>

#include "passes/driver.h"
#include "passes/util.h"

namespace asrc::passes {

namespace {

using Mat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

struct Candidate {
  ir::Node* node;
  bool gemm, trans_b;
};

struct FactorOptions {
  double ratio, energy;
  int64_t multiple;
  bool data_aware, jacobi;
};

// Factors already made in one graph, by (weight, transB): readers of one shared initializer (an
// exporter keeps one copy of equal weights, e.g. nn.TransformerEncoder's deep-copied layers) reuse
// them instead of each adding its own pair. nullptr factors: the weight was left alone.
using FactorCache = std::map<std::pair<const ir::Value*, bool>, std::pair<ir::Value*, ir::Value*>>;

// MatMul(x, W) -> MatMul(MatMul(x, A), B) on node n.
void Rewire(ir::Graph& g, ir::Node* n, ir::Value* va, ir::Value* vb) {
  const std::string base = n->name.empty() ? g.UniqueName(n->op_type) : n->name;
  ir::Node* first = g.InsertNodeBefore(n, "MatMul", {n->input(0), va},
                                         {g.UniqueName(base + "_lowrank")},
                                         g.UniqueName(base + "_lowrank_a"));
  g.set_input(n, 0, first->outputs[0]);
  g.set_input(n, 1, vb);
}

// Factorizes candidate `c` of `g` (stats: calibration statistics of its role, from the first
// reader of a shared weight); false, counted, where the factors would not be smaller than W.
bool Factorize(ir::Graph& g, const Candidate& c, pass::StatsMap& stats, const FactorOptions& opt,
               FactorCache& cache, pass::PassContext& ctx) {
  ir::Node* n = c.node;
  const auto key = std::make_pair(static_cast<const ir::Value*>(n->input(1)), c.trans_b);
  if (auto it = cache.find(key); it != cache.end()) {
    if (!it->second.first) return false;
    Rewire(g, n, it->second.first, it->second.second);
    ctx.Bump("shared_weight_reused");
    return true;
  }
  const ir::Tensor& wt = *ConstantOf(n->input(1));
  // Work on W as [K, N] (input features x output features).
  const int64_t rows = wt.dim(0), cols = wt.dim(1);
  Mat W = Eigen::Map<const Mat>(wt.data<float>(), rows, cols);
  if (c.trans_b) W.transposeInPlace();
  const int64_t K = W.rows(), N = W.cols();
  Eigen::VectorXf d = Eigen::VectorXf::Ones(K);
  if (opt.data_aware) {
    auto rms = stats[n->input(0)->name].ChannelRms();
    if (static_cast<int64_t>(rms.size()) == K) {
      float mean = 0;
      for (float v : rms) mean += v / K;
      for (int64_t k = 0; k < K; ++k) d[k] = std::max(rms[k], 1e-3f * mean + 1e-12f);
      ctx.Bump("data_aware_weighted");
    } else {
      ctx.Bump("skipped_data_aware_no_stats");
    }
  }
  Mat DW = d.asDiagonal() * W;
  Mat U, V;
  Eigen::VectorXf S;
  if (opt.jacobi) {
    Eigen::JacobiSVD<Mat> svd(DW, Eigen::ComputeThinU | Eigen::ComputeThinV);
    U = svd.matrixU(); V = svd.matrixV(); S = svd.singularValues();
  } else {
    Eigen::BDCSVD<Mat> svd(DW, Eigen::ComputeThinU | Eigen::ComputeThinV);
    U = svd.matrixU(); V = svd.matrixV(); S = svd.singularValues();
  }
  const int64_t full = std::min(K, N);
  int64_t r;
  if (opt.energy > 0) {
    double total = S.squaredNorm(), acc = 0;
    r = full;
    for (int64_t i = 0; i < full; ++i) {
      acc += static_cast<double>(S[i]) * S[i];
      if (acc >= opt.energy * total) {
        r = i + 1;
        break;
      }
    }
  } else {
    r = std::max<int64_t>(1, static_cast<int64_t>(std::llround(opt.ratio * full)));
  }
  r = std::min(full, (r + opt.multiple - 1) / opt.multiple * opt.multiple);
  if (r * (K + N) >= K * N) {
    ctx.Bump("skipped_no_saving");
    cache[key] = {nullptr, nullptr};
    return false;
  }
  Eigen::VectorXf sq = S.head(r).cwiseSqrt();
  Mat A = d.cwiseInverse().asDiagonal() * U.leftCols(r) * sq.asDiagonal();  // [K, r]
  Mat B = sq.asDiagonal() * V.leftCols(r).transpose();                       // [r, N]
  ir::Tensor ta(ir::DType::Float32, {K, r});
  Eigen::Map<Mat>(ta.data<float>(), K, r) = A;
  ir::Tensor tb;
  if (c.trans_b) {
    tb = ir::Tensor(ir::DType::Float32, {N, r});
    Eigen::Map<Mat>(tb.data<float>(), N, r) = B.transpose();
  } else {
    tb = ir::Tensor(ir::DType::Float32, {r, N});
    Eigen::Map<Mat>(tb.data<float>(), r, N) = B;
  }
  const std::string wname = n->input(1)->name;
  ir::Value* va = AddConst(g, wname + "_lowrank_a", std::move(ta));
  ir::Value* vb = AddConst(g, wname + "_lowrank_b", std::move(tb));
  cache[key] = {va, vb};
  Rewire(g, n, va, vb);
  ctx.Bump("factorized");
  ctx.Bump("params_before", K * N);
  ctx.Bump("params_after", r * (K + N));
  return true;
}

// A weight-bearing node this pass does not factor: Conv/ConvTranspose/RNN/GRU/LSTM with a float
// constant weight, Gather from a float constant table (an embedding).
bool HasOtherWeight(const ir::Node* n) {
  static const std::set<std::string> kWeightSecond = {"Conv", "ConvTranspose", "RNN", "GRU", "LSTM"};
  if (n->num_inputs() < 2) return false;
  if (kWeightSecond.count(n->op_type)) return IsFloatConstant(n->input(1));
  return n->op_type == "Gather" && IsFloatConstant(n->input(0), 2);
}

std::string Num(double v) {
  std::ostringstream o;
  o << v;
  return o.str();
}

// Says why a run factorized nothing: no candidate (and which weighted ops were there instead), or
// every candidate skipped because the factors would not be smaller.
std::string NothingNote(const std::map<const ir::Graph*, std::vector<Candidate>>& cands,
                        const std::map<std::string, int64_t>& not_factored, const pass::PassContext& ctx) {
  size_t n = 0;
  for (const auto& [g, v] : cands) n += v.size();
  std::string s = "low-rank: nothing factorized: ";
  if (n > 0) {
    s += std::to_string(n) + " MatMul/Gemm weight(s) found, none where rank " +
         Num(ctx.GetFloat("ratio")) + " * min(K, N) (energy " + Num(ctx.GetFloat("energy")) +
         ", multiple_of " + std::to_string(ctx.GetInt("multiple_of")) + ") would store fewer numbers than W";
    return s;
  }
  s += "no MatMul/Gemm with a 2-D float constant weight of >= " + std::to_string(ctx.GetInt("min_elements")) +
       " elements in the selected graphs/nodes";
  if (!not_factored.empty()) {
    s += "; weighted nodes left alone:";
    for (const auto& [op, count] : not_factored) s += " " + op + " x" + std::to_string(count);
    s += " (this pass factors MatMul/Gemm weights only)";
  }
  return s;
}

}  // namespace

std::vector<pass::OptionSpec> LowRankPass::options() const {
  using nlohmann::json;
  return {
      {"ratio", 0.25, "rank = ratio * min(K, N) (used when energy is 0)", {}, 0, 1},
      {"energy", 0.0, "when > 0: smallest rank keeping this fraction of sum(s^2)", {}, 0, 1},
      {"multiple_of", int64_t{8}, "round the rank up to a multiple of this", {}, 1, 4096},
      {"min_elements", int64_t{16384}, "leave smaller weights alone", {}, 0, 1e12},
      {"graphs", json::array({"*"}), "graph roles (glob patterns)", {}},
      {"nodes", json::array({"*"}), "node names (glob patterns)", {}},
      {"exclude_nodes", json::array(), "node names to leave alone (glob patterns)", {}},
      {"data_aware", false,
       "weight the factorization by input-channel RMS from calibration audio", {}},
      {"svd", "bdc", "Eigen SVD: bdc (BDCSVD, fast) or jacobi (JacobiSVD, exact)",
       {"bdc", "jacobi"}},
  };
}

Result<bool> LowRankPass::Run(ir::Model& model, pass::PassContext& ctx) {
  const FactorOptions opt{ctx.GetFloat("ratio"), ctx.GetFloat("energy"), ctx.GetInt("multiple_of"),
                          ctx.GetBool("data_aware"), ctx.GetString("svd") == "jacobi"};
  const int64_t min_elements = ctx.GetInt("min_elements");
  const auto graphs = ctx.GetStrings("graphs"), nodes = ctx.GetStrings("nodes"),
             exclude = ctx.GetStrings("exclude_nodes");
  const bool data_aware = opt.data_aware;

  std::map<const ir::Graph*, std::vector<Candidate>> cands;
  std::map<std::string, int64_t> not_factored;  // weighted ops this pass leaves alone, for the note
  pass::Taps taps;
  for (const GraphSite& site : SelectGraphs(model, graphs)) {
    for (ir::Node* n : site.graph.nodes()) {
      if (!n->domain.empty() || !NameSelected(n, nodes, exclude)) continue;
      bool gemm = n->op_type == "Gemm";
      if (n->op_type != "MatMul" && !gemm) {
        if (HasOtherWeight(n)) ++not_factored[n->op_type];
        continue;
      }
      if (n->num_inputs() < 2 || !IsFloatConstant(n->input(1), 2) || ConstantOf(n->input(0))) continue;
      if (gemm && (n->attr_int("transA", 0) != 0 || n->attr_float("alpha", 1.f) != 1.f)) continue;
      if (ConstantOf(n->input(1))->numel() < min_elements) {
        ++not_factored[n->op_type + " below min_elements"];
        continue;
      }
      cands[&site.graph].push_back({n, gemm, gemm && n->attr_int("transB", 0) != 0});
      // Calibration runs the top-level graphs; a subgraph's candidates go unweighted (counted).
      if (data_aware && !site.is_subgraph()) taps[site.file.role].push_back(n->input(0)->name);
    }
  }
  pass::ModelStats stats;
  if (data_aware && !taps.empty()) {
    if (!ctx.calibrate) {
      return Error("data_aware=true needs calibration data (pipeline \"calibration\" or the eval set)");
    }
    ASRC_ASSIGN_OR_RETURN(stats, ctx.calibrate(model, taps));
  }

  ASRC_ASSIGN_OR_RETURN(const bool changed, RewriteGraphs(model, graphs, [&](GraphSite& site) -> Result<bool> {
    auto it = cands.find(&site.graph);
    if (it == cands.end()) return false;
    bool any = false;
    FactorCache cache;
    for (const Candidate& c : it->second) {
      if (Factorize(site.graph, c, stats[site.file.role], opt, cache, ctx)) any = true;
    }
    return any;
  }));
  if (!changed) ctx.Note(NothingNote(cands, not_factored, ctx));
  return changed;
}

}  // namespace asrc::passes
