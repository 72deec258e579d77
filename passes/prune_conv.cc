// Structured pruning of depthwise-conv channels in the conformer convolution module (pattern,
// rewrite and why it is approximate in prune.h).
#include <algorithm>
#include <cmath>

#include "passes/prune_rules.h"

namespace asrc::passes::prune {

namespace {

struct ConvBlock {
  Linear pw1, pw2;  // pw1: [d, 2C] (GLU halves), pw2: [C, n]
  ir::Node* dw = nullptr;
  ir::Node* ln = nullptr;
  char act = 'i';  // activation between the norm and pw2: 's' SiLU, 'r' Relu, 'i' none
  int64_t C = 0;
  std::vector<std::pair<ir::Node*, int>> bounds;  // Slice starts/ends constants equal to C
  std::vector<CacheLink> caches;                  // depthwise-conv input history, when streaming
};

// `bound` is computed at run time from Shape(p) alone (e.g. Shape(p)[2] / 2): it follows p's width.
bool DerivedFromShapeOf(const ir::Value* bound, const ir::Value* p) {
  const ir::Value* cur = bound;
  for (int step = 0; step < 10 && cur; ++step) {
    const ir::Node* n = cur->producer;
    if (!n || !n->domain.empty()) return false;
    if (n->op_type == "Shape") return n->input(0) == p;
    const ir::Value* next = nullptr;
    for (const ir::Value* in : n->inputs) {
      if (!in || ConstantOf(in)) continue;
      if (next) return false;
      next = in;
    }
    cur = next;
  }
  return false;
}

// GLU: Mul(Slice(p, first half), Sigmoid(Slice(p, second half))) in either order and either
// half for the gate. Records the constant bounds equal to C and returns p, else null.
ir::Value* MatchGlu(const ir::Graph& g, const ir::Node* mul, ConvBlock* b) {
  if (!mul || mul->op_type != "Mul" || !mul->domain.empty() || mul->num_inputs() != 2) return nullptr;
  for (int i = 0; i < 2; ++i) {
    ir::Node* value = Prod(mul->input(i), "Slice");
    ir::Node* sig = Prod(mul->input(1 - i), "Sigmoid");
    ir::Node* gate = sig ? Prod(sig->input(0), "Slice") : nullptr;
    if (!value || !gate || value->input(0) != gate->input(0)) continue;
    if (mul->input(i)->uses.size() != 1 || mul->input(1 - i)->uses.size() != 1 ||
        sig->input(0)->uses.size() != 1) {
      return nullptr;
    }
    ir::Value* p = value->input(0);
    std::vector<std::pair<ir::Node*, int>> bounds;
    int first = 0, second = 0;
    for (ir::Node* sl : {value, gate}) {
      auto axes = IntsOf(sl->input(3));
      auto steps = sl->input(4) ? IntsOf(sl->input(4)) : std::vector<int64_t>{1};
      if (!axes || axes->size() != 1 || ((*axes)[0] != -1 && (*axes)[0] != 2) || steps != std::vector<int64_t>{1}) {
        return nullptr;
      }
      auto st = IntOf(sl->input(1)), en = IntOf(sl->input(2));
      const bool st_half = (st && *st == b->C) || (!st && DerivedFromShapeOf(sl->input(1), p));
      const bool en_half = (en && *en == b->C) || (!en && DerivedFromShapeOf(sl->input(2), p));
      const bool en_end = (en && *en >= 2 * b->C) || (!en && DerivedFromShapeOf(sl->input(2), p));
      if (st && *st == 0 && en_half) {
        ++first;
        if (en) bounds.push_back({sl, 2});
      } else if (st_half && en_end) {
        ++second;
        if (st) bounds.push_back({sl, 1});
      } else {
        return nullptr;
      }
    }
    if (first != 1 || second != 1) return nullptr;
    b->bounds = bounds;
    return p;
  }
  return nullptr;
}

// The conformer convolution module around depthwise Conv `dw` (pattern in prune.h).
bool MatchConv(const ir::Graph& g, ir::Node* dw, ConvBlock* b) {
  if (dw->op_type != "Conv" || !dw->domain.empty() || !IsFloatConstant(dw->input(1), 3)) return false;
  const ir::Tensor& w = *ConstantOf(dw->input(1));
  b->C = w.dim(0);
  if (w.dim(1) != 1 || dw->attr_int("group", 1) != b->C || b->C < 2) return false;
  if (dw->input(2) && !(IsFloatConstant(dw->input(2), 1) && ConstantOf(dw->input(2))->dim(0) == b->C)) return false;
  b->dw = dw;
  // Forward: Transpose(0,2,1) -> LayerNormalization over C -> activation -> MatMul(W2) + b2.
  ir::Node* t2 = SoleUse(g, dw->outputs[0], "Transpose", 0);
  b->ln = HasPerm(t2, {0, 2, 1}) ? SoleUse(g, t2->outputs[0], "LayerNormalization", 0) : nullptr;
  if (!b->ln || NormAxis(b->ln->attr_int("axis", -1), 3) != 2 || b->ln->num_inputs() < 3) return false;
  for (int i : {1, 2}) {
    if (!IsFloatConstant(b->ln->input(i), 1) || ConstantOf(b->ln->input(i))->dim(0) != b->C) return false;
  }
  for (size_t i = 1; i < b->ln->outputs.size(); ++i) {
    const ir::Value* o = b->ln->outputs[i];
    if (o && (!o->uses.empty() || IsGraphOutput(g, o))) return false;
  }
  ir::Value* y = b->ln->outputs[0];
  ir::Value* a = nullptr;
  if (IsGraphOutput(g, y)) return false;
  if (y->uses.size() == 1 && y->uses[0].node->op_type == "MatMul") {
    b->act = 'i';
    a = y;
  } else if (ir::Node* relu = SoleUse(g, y, "Relu")) {
    b->act = 'r';
    a = relu->outputs[0];
  } else if (y->uses.size() == 2) {
    ir::Node* sig = nullptr;
    ir::Node* mul = nullptr;
    for (const ir::Use& u : y->uses) {
      if (u.node->op_type == "Sigmoid" && u.node->domain.empty()) sig = u.node;
      if (u.node->op_type == "Mul" && u.node->domain.empty()) mul = u.node;
    }
    if (!sig || !mul || SoleUse(g, sig->outputs[0], "Mul") != mul) return false;
    b->act = 's';
    a = mul->outputs[0];
  } else {
    return false;
  }
  ir::Node* mm2 = SoleUse(g, a, "MatMul", 0);
  if (!IsWeightMatMul(mm2)) return false;
  b->pw2 = LinearAt(g, mm2);
  if (!b->pw2.add || b->pw2.w().dim(0) != b->C) return false;
  // Backward: [Pad on time | Concat(cache, .) on time] <- Transpose(0,2,1) <- [mask Mul] <- GLU <- pw1.
  ir::Node* reader = dw;
  ir::Value* x = dw->input(0);
  b->caches.clear();
  if (ir::Node* pad = Prod(x, "Pad")) {
    auto pads = IntsOf(pad->input(1));
    if (x->uses.size() != 1 || !pads || pads->size() != 6 || (*pads)[1] != 0 || (*pads)[4] != 0) return false;
    if (pad->attr_string("mode", "constant") != "constant" || (pad->num_inputs() > 3 && pad->input(3))) return false;
    reader = pad;
    x = pad->input(0);
  }
  ir::Node* t1 = nullptr;
  if (ir::Node* cat = Prod(x, "Concat")) {
    CacheLink c;
    t1 = cat->input(1) ? Prod(cat->input(1), "Transpose") : nullptr;
    if (!t1 || !MatchCache(g, cat, cat->input(1), 1, reader, &c)) return false;
    b->caches.push_back(c);
  } else {
    t1 = Prod(x, "Transpose");
    if (x->uses.size() != 1 || IsGraphOutput(g, x)) return false;
  }
  if (!HasPerm(t1, {0, 2, 1})) return false;
  ir::Value* gl = t1->input(0);
  if (gl->uses.size() != 1 || IsGraphOutput(g, gl)) return false;
  ir::Node* mul = Prod(gl, "Mul");
  ir::Value* p = MatchGlu(g, mul, b);
  if (!p && mul) {  // GLU output times a mask that broadcasts over channels
    for (int i = 0; i < 2 && !p; ++i) {
      if (mul->input(i)->uses.size() == 1 && Broadcasts(mul->input(1 - i), -1)) {
        p = MatchGlu(g, Prod(mul->input(i), "Mul"), b);
      }
    }
  }
  if (!p || !MatchLinearOut(g, p, &b->pw1) || b->pw1.w().dim(1) != 2 * b->C || IsGraphOutput(g, p)) return false;
  for (const ir::Use& u : p->uses) {
    if (u.node->op_type != "Slice" && u.node->op_type != "Shape") return false;
  }
  for (const auto& [sl, idx] : b->bounds) {
    if (sl->owner != &g) return false;  // rewritten below
  }
  return true;
}

// Score of channel j: |gamma_j| * ||W2[j, :]||, how far the channel can move the output when its
// normalized value leaves 0 (the value pruning assumes for it).
double ChannelScore(const ConvBlock& b, int64_t j) {
  return std::fabs(ConstantOf(b.ln->input(1))->data<float>()[j]) * std::sqrt(RowNorm2(b.pw2.w(), j));
}

float Activate(char act, float x) {
  if (act == 's') return x / (1.f + std::exp(-x));
  if (act == 'r') return std::max(0.f, x);
  return x;
}

bool PruneConvs(GraphSite& site, const pass::StatsMap*, pass::PassContext& ctx) {
  ir::Graph& g = site.graph;
  ir::GraphFile& gf = site.file;
  const double sparsity = ctx.GetFloat("conv_sparsity");
  const int64_t multiple = ctx.GetInt("multiple_of");
  const auto nodes = ctx.GetStrings("nodes"), exclude = ctx.GetStrings("exclude_nodes");
  std::vector<ConvBlock> blocks;
  std::vector<std::vector<CacheLink>> caches;
  std::vector<int64_t> widths;
  for (ir::Node* n : g.nodes()) {
    ConvBlock b;
    if (n->op_type != "Conv" || !MatchConv(g, n, &b)) continue;
    if (!NameSelected(b.pw1.mm, nodes, exclude) || !NameSelected(b.dw, nodes, exclude) ||
        !NameSelected(b.pw2.mm, nodes, exclude)) {
      continue;
    }
    widths.push_back(KeepCount(b.C, sparsity, multiple, 1));
    caches.push_back(b.caches);
    blocks.push_back(std::move(b));
  }
  const std::vector<bool> ok = CacheSafe(caches, widths, ctx.GetBool("resize_caches"), ctx, "conv");
  bool changed = false;
  std::set<const ir::Value*> resized;
  for (size_t i = 0; i < blocks.size(); ++i) {
    const ConvBlock& b = blocks[i];
    const int64_t C = b.C, k = widths[i];
    if (!ok[i]) continue;
    if (k >= C) {
      ctx.Bump("skipped_nothing_to_remove");
      continue;
    }
    std::vector<double> score(C);
    for (int64_t j = 0; j < C; ++j) score[j] = ChannelScore(b, j);
    const std::vector<int64_t> keep = TopK(score, k);
    std::vector<int64_t> keep2 = keep;  // both GLU halves
    for (int64_t j : keep) keep2.push_back(C + j);
    // pw2 bias absorbs the removed channels at their assumed normalized value 0: act(beta_j) W2[j].
    const ir::Tensor& w2 = b.pw2.w();
    const ir::Tensor& beta = *ConstantOf(b.ln->input(2));
    ir::Tensor b2 = ConstantOf(b.pw2.add->input(b.pw2.bias_input))->Clone();
    std::vector<bool> kept(C, false);
    for (int64_t j : keep) kept[j] = true;
    for (int64_t j = 0; j < C; ++j) {
      if (kept[j]) continue;
      const float a = Activate(b.act, beta.data<float>()[j]);
      for (int64_t c = 0; c < w2.dim(1); ++c) b2.data<float>()[c] += a * w2.data<float>()[j * w2.dim(1) + c];
    }
    ReplaceInput(g, b.pw2.add, b.pw2.bias_input, std::move(b2));
    SliceLinearIn(g, b.pw2, keep);
    SliceLinearOut(g, b.pw1, keep2);
    for (const auto& [sl, idx] : b.bounds) {
      ReplaceInput(g, sl, idx, ir::Tensor::FromVector(ir::DType::Int64, {1}, std::vector<int64_t>{k}));
    }
    ReplaceInput(g, b.dw, 1, SliceAxis0(*ConstantOf(b.dw->input(1)), keep));
    if (b.dw->input(2)) ReplaceInput(g, b.dw, 2, SliceAxis0(*ConstantOf(b.dw->input(2)), keep));
    b.dw->set_attr_int("group", k);
    // LayerNorm over the kept channels, rescaled as if each removed channel sat at the mean.
    const double ratio = static_cast<double>(C) / static_cast<double>(k);
    ir::Tensor gamma = SliceAxis0(*ConstantOf(b.ln->input(1)), keep);
    for (int64_t j = 0; j < k; ++j) gamma.data<float>()[j] *= static_cast<float>(std::sqrt(ratio));
    ReplaceInput(g, b.ln, 1, std::move(gamma));
    ReplaceInput(g, b.ln, 2, SliceAxis0(beta, keep));
    b.ln->set_attr_float("epsilon", static_cast<float>(b.ln->attr_float("epsilon", 1e-5f) * ratio));
    ResizeCaches(site.model, gf.role, b.caches, k, &resized);
    ctx.Bump("conv_pruned");
    ctx.Bump("conv_channels_removed", C - k);
    const int64_t K = ConstantOf(b.dw->input(1))->dim(2);
    ctx.Bump("params_removed", (C - k) * (2 * (b.pw1.w().dim(0) + (b.pw1.add ? 1 : 0)) + K +
                                          (b.dw->input(2) ? 1 : 0) + 2 + w2.dim(1)));
    changed = true;
  }
  NoteResizedCaches(ctx, "conv", gf.role, resized.size(), "convolution", "channels");
  return changed;
}

}  // namespace

// Conv channels are scored from weights alone (prune.h says why): no data_aware taps.
const PruneRule kConvRule = {"conv", nullptr, PruneConvs};

}  // namespace asrc::passes::prune
