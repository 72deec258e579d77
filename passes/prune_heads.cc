// Structured pruning of attention heads (pattern and rewrite in prune.h).
#include <algorithm>
#include <cmath>
#include <set>

#include "passes/prune_rules.h"

namespace asrc::passes::prune {

namespace {

// The shape operand of a Reshape: a constant, or Concat(axis 0) of 1-element pieces (constants,
// or Unsqueeze(Gather(Shape(x), i)) read at run time).
struct ShapeEntry {
  enum Kind { kConst, kRuntime, kUnknown } kind = kUnknown;
  int64_t value = 0;             // kConst
  const ir::Value* of = nullptr;  // kRuntime: dim `axis` of `of`
  int64_t axis = 0;
};

ShapeEntry EntryOfPiece(const ir::Value* piece) {
  ShapeEntry e;
  if (auto c = IntOf(piece)) {
    e.kind = ShapeEntry::kConst;
    e.value = *c;
    return e;
  }
  ir::Node* un = Prod(piece, "Unsqueeze");
  ir::Node* ga = un ? Prod(un->input(0), "Gather") : nullptr;
  ir::Node* sh = ga ? Prod(ga->input(0), "Shape") : nullptr;
  auto idx = ga ? IntOf(ga->input(1)) : std::nullopt;
  if (sh && idx && !sh->attr("start") && !sh->attr("end")) {
    e.kind = ShapeEntry::kRuntime;
    e.of = sh->input(0);
    e.axis = *idx;
  }
  return e;
}

// Entries of Reshape `r`'s shape operand; empty when its form is not one of the above.
std::vector<ShapeEntry> ShapeEntries(const ir::Node* r) {
  std::vector<ShapeEntry> out;
  if (auto c = IntsOf(r->input(1))) {
    for (int64_t v : *c) out.push_back(ShapeEntry{ShapeEntry::kConst, v, nullptr, 0});
    return out;
  }
  ir::Node* cat = Prod(r->input(1), "Concat");
  if (!cat) return {};
  for (const ir::Value* in : cat->inputs) {
    if (auto c = IntsOf(in)) {
      for (int64_t v : *c) out.push_back(ShapeEntry{ShapeEntry::kConst, v, nullptr, 0});
      continue;
    }
    ShapeEntry e = EntryOfPiece(in);
    if (e.kind == ShapeEntry::kUnknown) return {};
    out.push_back(e);
  }
  return out;
}

// Sets constant entry `pos` of Reshape `r`'s shape to `value`: a new constant, or a new Concat
// with a new constant piece (the old operand may be shared with other reshapes).
void SetShapeEntry(ir::Graph& g, ir::Node* r, int pos, int64_t value) {
  ir::Value* s = r->input(1);
  if (auto c = IntsOf(s)) {
    (*c)[pos] = value;
    ReplaceInput(g, r, 1, ir::Tensor::FromVector(ir::DType::Int64, {static_cast<int64_t>(c->size())}, *c));
    return;
  }
  ir::Node* cat = Prod(s, "Concat");
  std::vector<ir::Value*> pieces = cat->inputs;
  int at = 0;
  for (ir::Value*& in : pieces) {
    auto c = IntsOf(in);
    const int len = c ? static_cast<int>(c->size()) : 1;
    if (c && pos < at + len) {
      (*c)[pos - at] = value;
      in = AddConst(g, in->name + "_pruned", ir::Tensor::FromVector(ir::DType::Int64, {len}, *c));
      break;
    }
    at += len;
  }
  ir::Node* nc = g.InsertNodeBefore(r, "Concat", pieces, {g.UniqueName(s->name + "_pruned")},
                                      UniqueNodeName(g, NodeLabel(cat) + "_pruned"));
  nc->set_attr_int("axis", 0);
  g.set_input(r, 1, nc->outputs[0]);
}

// Every reader of `v` is `main` or a Shape node (dynamic reshapes read the width at run time).
bool OnlyShapeReaders(const ir::Graph& g, const ir::Value* v, const ir::Node* main) {
  if (IsGraphOutput(g, v)) return false;
  for (const ir::Use& u : v->uses) {
    if (u.node != main && u.node->op_type != "Shape") return false;
  }
  return true;
}

struct HeadsBlock {
  Linear q, k, v, o;
  int64_t h = 0, dk = 0;
  std::vector<std::pair<ir::Node*, int>> head_entries;   // Reshape shape entries equal to h
  std::vector<std::pair<ir::Node*, int>> width_entries;  // Reshape shape entries equal to h * dk
  std::vector<CacheLink> caches;                         // K and V caches, when streaming
};

// The K or V operand: a Linear's output, or Concat([cache slice, Linear output]) (streaming).
bool MatchKv(const ir::Graph& g, ir::Value* src, const ir::Node* reshape, Linear* l,
             std::vector<CacheLink>* caches) {
  if (ir::Node* cat = Prod(src, "Concat")) {
    CacheLink c;
    if (!cat->input(1) || !MatchLinearOut(g, cat->input(1), l)) return false;
    if (!MatchCache(g, cat, cat->input(1), -1, reshape, &c)) return false;
    caches->push_back(c);
    return true;
  }
  return MatchLinearOut(g, src, l) && OnlyShapeReaders(g, src, reshape);
}

// Multi-head attention around Softmax `sm` (pattern in prune.h).
bool MatchHeads(const ir::Graph& g, int64_t opset, ir::Node* sm, HeadsBlock* b) {
  if (sm->op_type != "Softmax" || !sm->domain.empty()) return false;
  if (opset < 13 && !sm->attr("axis")) return false;  // before opset 13 the default is axis 1 (flattening)
  const int64_t sm_axis = sm->attr_int("axis", -1);
  if (sm_axis != -1 && sm_axis != 3) return false;
  // P @ Vh -> Transpose(0,2,1,3) -> Reshape [N, T, h*dk] -> MatMul(Wo)
  ir::Node* pv = SoleUse(g, sm->outputs[0], "MatMul", 0);
  if (!pv) return false;
  ir::Node* tv = SoleUse(g, pv->input(1), "MatMul") ? Prod(pv->input(1), "Transpose") : nullptr;
  ir::Node* rv = tv ? Prod(tv->input(0), "Reshape") : nullptr;
  if (!HasPerm(tv, {0, 2, 1, 3}) || !rv || !SoleUse(g, tv->input(0), "Transpose")) return false;
  ir::Node* to = SoleUse(g, pv->outputs[0], "Transpose");
  ir::Node* ro = to ? SoleUse(g, to->outputs[0], "Reshape", 0) : nullptr;
  ir::Node* mo = ro ? SoleUse(g, ro->outputs[0], "MatMul", 0) : nullptr;
  if (!HasPerm(to, {0, 2, 1, 3}) || !IsWeightMatMul(mo)) return false;
  // Back from the Softmax along the score path (scaling, masking) to Qh @ KhT.
  static const std::set<std::string> path = {"Mul", "Div", "Add", "Sub", "Where"};
  ir::Value* cur = sm->input(0);
  ir::Node* s = nullptr;
  for (int step = 0; step < 8 && !s; ++step) {
    ir::Node* n = cur->producer;
    if (cur->uses.size() != 1 || IsGraphOutput(g, cur) || !n || !n->domain.empty()) return false;
    if (n->op_type == "MatMul") {
      s = n;
      break;
    }
    if (!path.count(n->op_type)) return false;
    ir::Value* next = nullptr;
    for (int i = 0; i < n->num_inputs(); ++i) {
      ir::Value* in = n->input(i);
      const ir::Node* p = in->producer;
      const bool on_path = !(n->op_type == "Where" && i == 0) && !ConstantOf(in) && p &&
                           p->domain.empty() && (p->op_type == "MatMul" || path.count(p->op_type));
      if (!on_path) {
        if (!Broadcasts(in, -3)) return false;  // a per-head bias or mask: heads are not independent
        continue;
      }
      if (next) return false;
      next = in;
    }
    if (!next) return false;
    cur = next;
  }
  if (!s) return false;
  ir::Node* tq = Prod(s->input(0), "Transpose");
  ir::Node* tk = Prod(s->input(1), "Transpose");
  ir::Node* rq = tq ? Prod(tq->input(0), "Reshape") : nullptr;
  ir::Node* rk = tk ? Prod(tk->input(0), "Reshape") : nullptr;
  if (!HasPerm(tq, {0, 2, 1, 3}) || !HasPerm(tk, {0, 2, 3, 1}) || !rq || !rk) return false;
  if (rq->owner != &g || rk->owner != &g || rv->owner != &g) return false;  // rewritten below
  for (const ir::Value* v : {s->input(0), s->input(1), tq->input(0), tk->input(0)}) {
    if (v->uses.size() != 1 || IsGraphOutput(g, v)) return false;
  }
  b->caches.clear();
  if (!MatchLinearOut(g, rq->input(0), &b->q) || !OnlyShapeReaders(g, rq->input(0), rq)) return false;
  if (!MatchKv(g, rk->input(0), rk, &b->k, &b->caches) || !MatchKv(g, rv->input(0), rv, &b->v, &b->caches)) {
    return false;
  }
  b->o = LinearAt(g, mo);
  const int64_t width = b->q.w().dim(1);
  if (b->k.w().dim(1) != width || b->v.w().dim(1) != width || b->o.w().dim(0) != width) return false;
  // [N, T, h, dk] on Q, K and V; h may be -1 (inferred).
  b->head_entries.clear();
  b->width_entries.clear();
  b->dk = 0;
  for (ir::Node* r : {rq, rk, rv}) {
    std::vector<ShapeEntry> e = ShapeEntries(r);
    if (e.size() != 4 || e[2].kind != ShapeEntry::kConst || e[3].kind != ShapeEntry::kConst) return false;
    if (e[3].value <= 0 || width % e[3].value != 0 || (b->dk && e[3].value != b->dk)) return false;
    b->dk = e[3].value;
    if (e[2].value == width / b->dk) {
      b->head_entries.push_back({r, 2});
    } else if (e[2].value != -1) {
      return false;
    }
  }
  b->h = width / b->dk;
  // [N, T, h*dk] after the heads: a constant, -1, or read from a projection's run-time shape.
  std::vector<ShapeEntry> e = ShapeEntries(ro);
  if (e.size() != 3) return false;
  if (e[2].kind == ShapeEntry::kConst && e[2].value == width) {
    b->width_entries.push_back({ro, 2});
  } else if (e[2].kind == ShapeEntry::kRuntime) {
    const std::set<const ir::Value*> proj = {b->q.out(), b->k.out(), b->v.out()};
    if (!proj.count(e[2].of) || (e[2].axis != 2 && e[2].axis != -1)) return false;
  } else if (!(e[2].kind == ShapeEntry::kConst && e[2].value == -1)) {
    return false;
  }
  return true;
}

// Score of head `hh`. Weights only: ||V-projection slice (weights and bias)|| * ||output-projection
// rows||, the largest contribution the head can make (zero when either is zero). With `rms` (the
// calibration RMS of each channel entering the output projection): sqrt(sum_c rms_c^2 ||Wo[c]||^2),
// the energy the head adds to the output on that data (cross-channel terms ignored).
double HeadScore(const HeadsBlock& b, int64_t hh, const std::vector<float>& rms) {
  const ir::Tensor* bv = b.v.add ? ConstantOf(b.v.add->input(b.v.bias_input)) : nullptr;
  double v = 0, o = 0, e = 0;
  for (int64_t c = hh * b.dk; c < (hh + 1) * b.dk; ++c) {
    v += ColNorm2(b.v.w(), c) + (bv ? std::pow(bv->data<float>()[c], 2) : 0.0);
    o += RowNorm2(b.o.w(), c);
    if (!rms.empty()) e += static_cast<double>(rms[c]) * rms[c] * RowNorm2(b.o.w(), c);
  }
  return rms.empty() ? std::sqrt(v) * std::sqrt(o) : std::sqrt(e);
}

// data_aware taps: the input of each output projection Wo.
void HeadsTaps(const GraphSite& site, pass::PassContext&, std::vector<std::string>* taps) {
  for (ir::Node* n : site.graph.nodes()) {
    HeadsBlock b;
    if (MatchHeads(site.graph, site.file.opset(""), n, &b)) taps->push_back(b.o.mm->input(0)->name);
  }
}

bool PruneHeads(GraphSite& site, const pass::StatsMap* stats, pass::PassContext& ctx) {
  ir::Graph& g = site.graph;
  ir::GraphFile& gf = site.file;
  const double sparsity = ctx.GetFloat("heads_sparsity");
  const int64_t min_heads = ctx.GetInt("min_heads");
  const auto nodes = ctx.GetStrings("nodes"), exclude = ctx.GetStrings("exclude_nodes");
  std::vector<HeadsBlock> blocks;
  std::vector<std::vector<CacheLink>> caches;
  std::vector<int64_t> keep_h, widths;
  for (ir::Node* n : g.nodes()) {
    HeadsBlock b;
    if (n->op_type != "Softmax" || !MatchHeads(g, gf.opset(""), n, &b)) continue;
    bool selected = true;
    for (const Linear* l : {&b.q, &b.k, &b.v, &b.o}) selected = selected && NameSelected(l->mm, nodes, exclude);
    if (!selected) continue;
    const int64_t remove = std::llround(sparsity * b.h);
    keep_h.push_back(std::clamp<int64_t>(b.h - remove, std::min(min_heads, b.h), b.h));
    widths.push_back(keep_h.back() * b.dk);
    caches.push_back(b.caches);
    blocks.push_back(std::move(b));
  }
  const std::vector<bool> ok = CacheSafe(caches, widths, ctx.GetBool("resize_caches"), ctx, "heads");
  bool changed = false;
  std::set<const ir::Value*> resized;
  for (size_t i = 0; i < blocks.size(); ++i) {
    const HeadsBlock& b = blocks[i];
    if (!ok[i]) continue;
    if (keep_h[i] >= b.h) {
      ctx.Bump("skipped_nothing_to_remove");
      continue;
    }
    std::vector<double> score(b.h);
    const std::vector<float> rms = CalibrationRms(stats, b.o.mm->input(0), b.h * b.dk, ctx);
    for (int64_t hh = 0; hh < b.h; ++hh) score[hh] = HeadScore(b, hh, rms);
    std::vector<int64_t> cols;
    for (int64_t hh : TopK(score, keep_h[i])) {
      for (int64_t c = hh * b.dk; c < (hh + 1) * b.dk; ++c) cols.push_back(c);
    }
    const int64_t removed = (b.h - keep_h[i]) * b.dk;
    const int64_t params = removed * (b.q.w().dim(0) + b.k.w().dim(0) + b.v.w().dim(0) + b.o.w().dim(1)) +
                           removed * ((b.q.add ? 1 : 0) + (b.k.add ? 1 : 0) + (b.v.add ? 1 : 0));
    for (const Linear* l : {&b.q, &b.k, &b.v}) SliceLinearOut(g, *l, cols);
    SliceLinearIn(g, b.o, cols);
    for (const auto& [r, pos] : b.head_entries) SetShapeEntry(g, r, pos, keep_h[i]);
    for (const auto& [r, pos] : b.width_entries) SetShapeEntry(g, r, pos, widths[i]);
    ResizeCaches(site.model, gf.role, b.caches, widths[i], &resized);
    ctx.Bump("attention_pruned");
    ctx.Bump("heads_removed", b.h - keep_h[i]);
    ctx.Bump("params_removed", params);
    changed = true;
  }
  NoteResizedCaches(ctx, "heads", gf.role, resized.size(), "attention", "heads");
  return changed;
}

}  // namespace

const PruneRule kHeadsRule = {"heads", HeadsTaps, PruneHeads};

}  // namespace asrc::passes::prune
