#include "passes/prune.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <set>

#include "passes/util.h"

namespace asrc::passes {

namespace {

bool IsGraphOutput(const ir::Graph& g, const ir::Value* v) {
  return std::find(g.outputs.begin(), g.outputs.end(), v) != g.outputs.end();
}

bool NameSelected(const ir::Node* n, const std::vector<std::string>& nodes,
                  const std::vector<std::string>& exclude) {
  return pass::AnyGlobMatch(nodes, n->name) && !pass::AnyGlobMatch(exclude, n->name);
}

// Elementwise ops that act on each channel independently (other inputs must be scalar constants).
bool ElementwiseOp(const std::string& op) {
  static const std::set<std::string> ops = {"Sigmoid", "Mul", "Relu", "Tanh", "Erf", "Add", "Div",
                                            "Sub", "Gelu", "LeakyRelu", "Elu", "Softplus",
                                            "HardSigmoid", "HardSwish", "Clip", "Identity", "Neg"};
  return ops.count(op) > 0;
}

struct FfnMatch {
  ir::Node* mm1;
  ir::Node* bias_add;  // may be null
  int bias_input;      // which input of bias_add is b1
  ir::Node* mm2;
};

// Follows the activation region from `h` (the [.., ff] hidden value) to the single MatMul that
// consumes it; every node in between must be elementwise with scalar-constant side inputs.
ir::Node* FindSecondMatMul(const ir::Graph& g, ir::Value* h) {
  std::set<const ir::Value*> region = {h};
  std::vector<ir::Value*> work = {h};
  ir::Node* mm2 = nullptr;
  std::set<const ir::Node*> seen;
  while (!work.empty()) {
    ir::Value* v = work.back();
    work.pop_back();
    if (IsGraphOutput(g, v)) return nullptr;
    for (const ir::Use& u : v->uses) {
      ir::Node* c = u.node;
      if (c->owner != &g) return nullptr;
      if (c->op_type == "MatMul" && u.input_index == 0 && IsFloatConstant(c->input(1), 2)) {
        if (mm2 && mm2 != c) return nullptr;
        mm2 = c;
        continue;
      }
      if (!c->domain.empty() || !ElementwiseOp(c->op_type) || c->outputs.size() != 1) return nullptr;
      if (!seen.insert(c).second) continue;
      for (ir::Value* in : c->inputs) {
        if (!in || region.count(in)) continue;
        const ir::Tensor* t = ConstantOf(in);
        if (!t || t->numel() != 1) return nullptr;  // a non-scalar side input would need slicing
      }
      region.insert(c->outputs[0]);
      work.push_back(c->outputs[0]);
    }
  }
  return mm2;
}

std::vector<FfnMatch> FindFfns(ir::Graph& g, const std::vector<std::string>& nodes,
                               const std::vector<std::string>& exclude) {
  std::vector<FfnMatch> out;
  for (ir::Node* mm1 : g.nodes()) {
    if (mm1->op_type != "MatMul" || !mm1->domain.empty() || !NameSelected(mm1, nodes, exclude)) continue;
    if (!IsFloatConstant(mm1->input(1), 2) || ConstantOf(mm1->input(0))) continue;
    const int64_t ff = ConstantOf(mm1->input(1))->dim(1);
    ir::Value* h = mm1->outputs[0];
    if (IsGraphOutput(g, h)) continue;
    FfnMatch m{mm1, nullptr, -1, nullptr};
    if (h->uses.size() == 1 && h->uses[0].node->op_type == "Add") {
      ir::Node* add = h->uses[0].node;
      int other = 1 - h->uses[0].input_index;
      const ir::Tensor* b = ConstantOf(add->input(other));
      if (b && b->dtype() == ir::DType::Float32 && b->rank() == 1 && b->dim(0) == ff) {
        m.bias_add = add;
        m.bias_input = other;
        h = add->outputs[0];
      }
    }
    if (!m.bias_add && h->uses.size() == 1 && h->uses[0].node->op_type == "MatMul") continue;  // low-rank pair, no activation
    m.mm2 = FindSecondMatMul(g, h);
    if (!m.mm2 || m.mm2 == mm1) continue;
    if (ConstantOf(m.mm2->input(1))->dim(0) != ff) continue;
    if (!NameSelected(m.mm2, nodes, exclude)) continue;
    out.push_back(m);
  }
  return out;
}

ir::Tensor SliceColumns(const ir::Tensor& w, const std::vector<int64_t>& keep) {  // [K, F] -> [K, k]
  const int64_t K = w.dim(0), F = w.dim(1), k = static_cast<int64_t>(keep.size());
  ir::Tensor t(ir::DType::Float32, {K, k});
  for (int64_t r = 0; r < K; ++r)
    for (int64_t j = 0; j < k; ++j) t.data<float>()[r * k + j] = w.data<float>()[r * F + keep[j]];
  return t;
}

ir::Tensor SliceRows(const ir::Tensor& w, const std::vector<int64_t>& keep) {  // [F, N] -> [k, N]
  const int64_t N = w.dim(1), k = static_cast<int64_t>(keep.size());
  ir::Tensor t(ir::DType::Float32, {k, N});
  for (int64_t j = 0; j < k; ++j)
    std::copy(w.data<float>() + keep[j] * N, w.data<float>() + (keep[j] + 1) * N,
              t.data<float>() + j * N);
  return t;
}

ir::Tensor Slice1D(const ir::Tensor& b, const std::vector<int64_t>& keep) {
  ir::Tensor t(ir::DType::Float32, {static_cast<int64_t>(keep.size())});
  for (size_t j = 0; j < keep.size(); ++j) t.data<float>()[j] = b.data<float>()[keep[j]];
  return t;
}

Result<bool> Structured(ir::Model& model, pass::PassContext& ctx) {
  const double sparsity = ctx.GetFloat("sparsity");
  const int64_t multiple = ctx.GetInt("multiple_of");
  const auto graphs = ctx.GetStrings("graphs"), nodes = ctx.GetStrings("nodes"),
             exclude = ctx.GetStrings("exclude_nodes");
  bool changed = false;
  for (auto& gf : model.graphs) {
    if (!gf.graph || !pass::AnyGlobMatch(graphs, gf.role)) continue;
    ir::Graph& g = *gf.graph;
    for (const FfnMatch& m : FindFfns(g, nodes, exclude)) {
      const ir::Tensor& w1 = *ConstantOf(m.mm1->input(1));
      const ir::Tensor& w2 = *ConstantOf(m.mm2->input(1));
      const int64_t d = w1.dim(0), ff = w1.dim(1), n2 = w2.dim(1);
      int64_t keep_n = static_cast<int64_t>(std::llround((1.0 - sparsity) * ff));
      keep_n = std::clamp<int64_t>((keep_n + multiple - 1) / multiple * multiple, 1, ff);
      if (keep_n >= ff) {
        ctx.Bump("skipped_nothing_to_remove");
        continue;
      }
      std::vector<double> score(ff, 0.0);
      for (int64_t j = 0; j < ff; ++j) {
        double a = 0, b = 0;
        for (int64_t r = 0; r < d; ++r) a += std::pow(w1.data<float>()[r * ff + j], 2);
        for (int64_t c = 0; c < n2; ++c) b += std::pow(w2.data<float>()[j * n2 + c], 2);
        score[j] = std::sqrt(a) * std::sqrt(b);
      }
      std::vector<int64_t> idx(ff);
      std::iota(idx.begin(), idx.end(), 0);
      std::stable_sort(idx.begin(), idx.end(), [&](int64_t a, int64_t b) { return score[a] > score[b]; });
      std::vector<int64_t> keep(idx.begin(), idx.begin() + keep_n);
      std::sort(keep.begin(), keep.end());
      g.set_input(m.mm1, 1, AddConst(g, m.mm1->input(1)->name + "_pruned", SliceColumns(w1, keep)));
      if (m.bias_add) {
        const ir::Tensor& b1 = *ConstantOf(m.bias_add->input(m.bias_input));
        g.set_input(m.bias_add, m.bias_input,
                    AddConst(g, m.bias_add->input(m.bias_input)->name + "_pruned", Slice1D(b1, keep)));
      }
      g.set_input(m.mm2, 1, AddConst(g, m.mm2->input(1)->name + "_pruned", SliceRows(w2, keep)));
      // Static types along the region name the old width; drop the hidden dim where recorded.
      ctx.Bump("ffn_pruned");
      ctx.Bump("hidden_units_removed", ff - keep_n);
      ctx.Bump("params_removed", (ff - keep_n) * (d + n2 + (m.bias_add ? 1 : 0)));
      changed = true;
    }
    if (changed) {
      RemoveDeadCode(g);
      // Intermediate value_info may record the old hidden width: drop it (not graph outputs).
      for (const auto& v : g.values()) {
        if (v->producer && !v->initializer && v->has_value_info && !IsGraphOutput(g, v.get())) {
          v->has_value_info = false;
          v->type = ir::TypeInfo{};
        }
      }
    }
  }
  if (changed) {
    ctx.Note("structured: FFN hidden units removed physically (params, bytes and compute shrink)");
  } else {
    ctx.Note("structured: no FFN pattern MatMul -> activation -> MatMul found");
  }
  return changed;
}

Result<bool> Magnitude(ir::Model& model, pass::PassContext& ctx) {
  const double sparsity = ctx.GetFloat("sparsity");
  const bool global = ctx.GetString("scope") == "global";
  const int64_t min_elements = ctx.GetInt("min_elements");
  const auto graphs = ctx.GetStrings("graphs"), nodes = ctx.GetStrings("nodes"),
             exclude = ctx.GetStrings("exclude_nodes");
  struct Target {
    ir::Graph* g;
    ir::Node* n;
    int input;
  };
  std::vector<Target> targets;
  for (auto& gf : model.graphs) {
    if (!gf.graph || !pass::AnyGlobMatch(graphs, gf.role)) continue;
    for (ir::Node* n : gf.graph->nodes()) {
      if (!n->domain.empty() || !NameSelected(n, nodes, exclude)) continue;
      if (n->op_type != "MatMul" && n->op_type != "Gemm" && n->op_type != "Conv") continue;
      if (!IsFloatConstant(n->input(1)) || ConstantOf(n->input(1))->numel() < min_elements) continue;
      targets.push_back({gf.graph.get(), n, 1});
    }
  }
  if (targets.empty()) return false;
  float global_threshold = 0;
  if (global) {
    std::vector<float> all;
    for (const auto& t : targets) {
      const ir::Tensor& w = *ConstantOf(t.n->input(1));
      for (int64_t k = 0; k < w.numel(); ++k) all.push_back(std::fabs(w.data<float>()[k]));
    }
    size_t k = static_cast<size_t>(sparsity * all.size());
    if (k == 0) return false;
    std::nth_element(all.begin(), all.begin() + (k - 1), all.end());
    global_threshold = all[k - 1];
  }
  int64_t zeroed = 0, total = 0;
  std::map<const ir::Value*, ir::Value*> done;
  for (const auto& t : targets) {
    ir::Value* wv = t.n->input(1);
    auto it = done.find(wv);
    if (it != done.end()) {
      t.g->set_input(t.n, 1, it->second);
      continue;
    }
    const ir::Tensor& w = *ConstantOf(wv);
    float threshold = global_threshold;
    size_t k = static_cast<size_t>(sparsity * w.numel());
    if (!global) {
      if (k == 0) continue;
      std::vector<float> mags(w.numel());
      for (int64_t i = 0; i < w.numel(); ++i) mags[i] = std::fabs(w.data<float>()[i]);
      std::nth_element(mags.begin(), mags.begin() + (k - 1), mags.end());
      threshold = mags[k - 1];
    }
    ir::Tensor out = w.Clone();
    int64_t z = 0;
    float* p = out.data<float>();
    for (int64_t i = 0; i < out.numel(); ++i) {
      // Ties at the threshold: stop at exactly k zeros per layer.
      if (std::fabs(p[i]) <= threshold && (global || z < static_cast<int64_t>(k))) {
        if (p[i] != 0) p[i] = 0;
        ++z;
      }
    }
    zeroed += z;
    total += out.numel();
    ir::Value* nv = AddConst(*t.g, wv->name + "_pruned", std::move(out));
    t.g->set_input(t.n, 1, nv);
    done[wv] = nv;
  }
  for (auto& gf : model.graphs) {
    if (gf.graph) RemoveDeadCode(*gf.graph);
  }
  ctx.Bump("weights_zeroed", zeroed);
  ctx.Bump("weights_considered", total);
  ctx.Note("magnitude pruning: " + std::to_string(zeroed) + " of " + std::to_string(total) +
           " weights are zero, but they are still stored and multiplied densely: bytes on disk "
           "and latency do not change (only a compressor or sparse kernels would gain)");
  return true;
}

}  // namespace

std::vector<pass::OptionSpec> PrunePass::options() const {
  using nlohmann::json;
  return {
      {"method", "magnitude",
       "magnitude: unstructured zeros (saves nothing unless stored/run sparse); structured: "
       "remove FFN hidden units physically",
       {"magnitude", "structured"}},
      {"sparsity", 0.3, "fraction of weights (magnitude) or hidden units (structured) removed", {}, 0, 0.99},
      {"scope", "per-layer", "magnitude: one threshold per layer or one global threshold",
       {"per-layer", "global"}},
      {"multiple_of", int64_t{8}, "structured: keep a multiple of this many units", {}, 1, 4096},
      {"min_elements", int64_t{1024}, "magnitude: leave smaller weights alone", {}, 0, 1e12},
      {"graphs", json::array({"*"}), "graph roles (glob patterns)", {}},
      {"nodes", json::array({"*"}), "node names (glob patterns)", {}},
      {"exclude_nodes", json::array(), "node names to leave alone (glob patterns)", {}},
  };
}

Result<bool> PrunePass::Run(ir::Model& model, pass::PassContext& ctx) {
  if (ctx.GetString("method") == "structured") return Structured(model, ctx);
  return Magnitude(model, ctx);
}

}  // namespace asrc::passes
