#include "passes/low_rank.h"

#include <algorithm>
#include <cmath>

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

// Factorizes candidate `c` of `g` (stats: calibration statistics of its role); false, counted,
// where the factors would not be smaller than W.
bool Factorize(ir::Graph& g, const Candidate& c, pass::StatsMap& stats, const FactorOptions& opt,
               pass::PassContext& ctx) {
  ir::Node* n = c.node;
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
  const std::string base = n->name.empty() ? g.unique_name(n->op_type) : n->name;
  ir::Node* first = g.insert_node_before(n, "MatMul", {n->input(0), va},
                                         {g.unique_name(base + "_lowrank")},
                                         g.unique_name(base + "_lowrank_a"));
  g.set_input(n, 0, first->outputs[0]);
  g.set_input(n, 1, vb);
  ctx.Bump("factorized");
  ctx.Bump("params_before", K * N);
  ctx.Bump("params_after", r * (K + N));
  return true;
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
  pass::Taps taps;
  for (const GraphSite& site : SelectGraphs(model, graphs)) {
    for (ir::Node* n : site.graph.nodes()) {
      if (!n->domain.empty() || !NameSelected(n, nodes, exclude)) continue;
      bool gemm = n->op_type == "Gemm";
      if (n->op_type != "MatMul" && !gemm) continue;
      if (n->num_inputs() < 2 || !IsFloatConstant(n->input(1), 2) || ConstantOf(n->input(0))) continue;
      if (gemm && (n->attr_int("transA", 0) != 0 || n->attr_float("alpha", 1.f) != 1.f)) continue;
      if (ConstantOf(n->input(1))->numel() < min_elements) continue;
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

  return RewriteGraphs(model, graphs, [&](GraphSite& site) -> Result<bool> {
    auto it = cands.find(&site.graph);
    if (it == cands.end()) return false;
    bool changed = false;
    for (const Candidate& c : it->second) {
      if (Factorize(site.graph, c, stats[site.file.role], opt, ctx)) changed = true;
    }
    return changed;
  });
}

}  // namespace asrc::passes
