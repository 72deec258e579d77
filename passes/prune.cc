#include "passes/prune.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <optional>
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

// --- small matchers -------------------------------------------------------------------------

// The default-domain node of type `op` producing `v`, else null.
ir::Node* Prod(const ir::Value* v, const char* op) {
  if (!v || !v->producer || !v->producer->domain.empty() || v->producer->op_type != op) return nullptr;
  return v->producer;
}

// The only reader of `v` when it is a default-domain `op` reading it at `index` (any index when
// < 0) and `v` is no graph output; else null.
ir::Node* SoleUse(const ir::Graph& g, const ir::Value* v, const char* op, int index = -1) {
  if (!v || v->uses.size() != 1 || IsGraphOutput(g, v)) return nullptr;
  const ir::Use& u = v->uses[0];
  if (!u.node->domain.empty() || u.node->op_type != op || (index >= 0 && u.input_index != index)) return nullptr;
  return u.node;
}

bool HasPerm(const ir::Node* n, const std::vector<int64_t>& perm) {
  return n && n->attr_ints("perm") == perm;
}

// Values of an int64 constant, or nullopt.
std::optional<std::vector<int64_t>> IntsOf(const ir::Value* v) {
  const ir::Tensor* t = ConstantOf(v);
  if (!t || t->dtype() != ir::DType::Int64 || t->rank() > 1) return std::nullopt;
  return std::vector<int64_t>(t->data<int64_t>(), t->data<int64_t>() + t->numel());
}

std::optional<int64_t> IntOf(const ir::Value* v) {
  auto x = IntsOf(v);
  if (!x || x->size() != 1) return std::nullopt;
  return (*x)[0];
}

std::string UniqueNodeName(const ir::Graph& g, const std::string& base) {
  std::set<std::string> names;
  for (const ir::Node* n : g.nodes()) names.insert(n->name);
  std::string name = base;
  for (int i = 1; names.count(name); ++i) name = base + "_" + std::to_string(i);
  return name;
}

// A linear layer: MatMul(x, W [K, N]) optionally followed by Add(b [N]) (either operand order).
struct Linear {
  ir::Node* mm = nullptr;
  ir::Node* add = nullptr;  // may be null
  int bias_input = -1;      // which input of `add` is b
  ir::Value* out() const { return add ? add->outputs[0] : mm->outputs[0]; }
  const ir::Tensor& w() const { return *ConstantOf(mm->input(1)); }
};

bool IsWeightMatMul(const ir::Node* n) {
  return n && n->op_type == "MatMul" && n->domain.empty() && IsFloatConstant(n->input(1), 2) &&
         !ConstantOf(n->input(0));
}

// The bias Add reading `mm`'s output, when it is the only reader and adds a [N] constant.
void FindBias(const ir::Graph& g, Linear* l) {
  ir::Value* h = l->mm->outputs[0];
  ir::Node* add = SoleUse(g, h, "Add");
  if (!add) return;
  const int other = 1 - h->uses[0].input_index;
  const ir::Tensor* b = ConstantOf(add->input(other));
  if (b && b->dtype() == ir::DType::Float32 && b->rank() == 1 && b->dim(0) == l->w().dim(1)) {
    l->add = add;
    l->bias_input = other;
  }
}

// `v` is the output of a Linear (its bias Add, or its MatMul when there is no bias).
bool MatchLinearOut(const ir::Graph& g, ir::Value* v, Linear* l) {
  Linear r;
  if (ir::Node* add = Prod(v, "Add")) {
    for (int i = 0; i < 2; ++i) {
      ir::Node* mm = Prod(add->input(i), "MatMul");
      if (!IsWeightMatMul(mm)) continue;
      r.mm = mm;
      FindBias(g, &r);
      if (r.add == add) break;
      r = Linear{};
    }
  } else if (ir::Node* mm = Prod(v, "MatMul"); IsWeightMatMul(mm)) {
    r.mm = mm;
  }
  if (!r.mm) return false;
  *l = r;
  return true;
}

// `n` as the MatMul of a Linear whose bias (if any) follows it.
Linear LinearAt(const ir::Graph& g, ir::Node* mm) {
  Linear l;
  l.mm = mm;
  FindBias(g, &l);
  return l;
}

// Keeps the `keep` entries of axis 0 of `w` (any rank): rows of a matrix, channels of a weight.
ir::Tensor SliceAxis0(const ir::Tensor& w, const std::vector<int64_t>& keep) {
  const int64_t inner = w.dim(0) ? w.numel() / w.dim(0) : 0;
  ir::Shape shape = w.shape();
  shape[0] = static_cast<int64_t>(keep.size());
  ir::Tensor t(ir::DType::Float32, shape);
  for (size_t j = 0; j < keep.size(); ++j)
    std::copy(w.data<float>() + keep[j] * inner, w.data<float>() + (keep[j] + 1) * inner,
              t.data<float>() + j * inner);
  return t;
}

ir::Tensor SliceColumns(const ir::Tensor& w, const std::vector<int64_t>& keep) {  // [K, F] -> [K, k]
  const int64_t K = w.dim(0), F = w.dim(1), k = static_cast<int64_t>(keep.size());
  ir::Tensor t(ir::DType::Float32, {K, k});
  for (int64_t r = 0; r < K; ++r)
    for (int64_t j = 0; j < k; ++j) t.data<float>()[r * k + j] = w.data<float>()[r * F + keep[j]];
  return t;
}

void ReplaceInput(ir::Graph& g, ir::Node* n, int index, ir::Tensor t) {
  g.set_input(n, index, AddConst(g, n->input(index)->name + "_pruned", std::move(t)));
}

// Keeps output features `keep` of `l` (columns of W, entries of b).
void SliceLinearOut(ir::Graph& g, const Linear& l, const std::vector<int64_t>& keep) {
  ReplaceInput(g, l.mm, 1, SliceColumns(l.w(), keep));
  if (l.add) ReplaceInput(g, l.add, l.bias_input, SliceAxis0(*ConstantOf(l.add->input(l.bias_input)), keep));
}

// Keeps input features `keep` of `l` (rows of W).
void SliceLinearIn(ir::Graph& g, const Linear& l, const std::vector<int64_t>& keep) {
  ReplaceInput(g, l.mm, 1, SliceAxis0(l.w(), keep));
}

// How many of `n` units to keep when removing the fraction `sparsity`, rounded up to a multiple
// of `multiple`, at least `min_keep`, at most n.
int64_t KeepCount(int64_t n, double sparsity, int64_t multiple, int64_t min_keep) {
  int64_t k = static_cast<int64_t>(std::llround((1.0 - sparsity) * n));
  k = (k + multiple - 1) / multiple * multiple;
  return std::clamp<int64_t>(k, std::min(min_keep, n), n);
}

// Indices of the `k` largest scores, in increasing index order (ties: the lower index wins).
std::vector<int64_t> TopK(const std::vector<double>& score, int64_t k) {
  std::vector<int64_t> idx(score.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::stable_sort(idx.begin(), idx.end(), [&](int64_t a, int64_t b) { return score[a] > score[b]; });
  idx.resize(k);
  std::sort(idx.begin(), idx.end());
  return idx;
}

double ColNorm2(const ir::Tensor& w, int64_t j) {  // ||W[:, j]||^2 of a 2-D weight
  double s = 0;
  for (int64_t r = 0; r < w.dim(0); ++r) s += std::pow(w.data<float>()[r * w.dim(1) + j], 2);
  return s;
}

double RowNorm2(const ir::Tensor& w, int64_t j) {  // ||W[j, ...]||^2, any rank
  const int64_t inner = w.numel() / w.dim(0);
  double s = 0;
  for (int64_t c = 0; c < inner; ++c) s += std::pow(w.data<float>()[j * inner + c], 2);
  return s;
}

// --- streaming caches -----------------------------------------------------------------------

// One layer's slice of a stacked streaming cache: graph input `input` [layers, ...], read as
// Gather(input, i, axis 0) and concatenated with the fresh tensor; the tail of the concatenation
// goes back through Slice -> Unsqueeze(0) -> Concat(axis 0) to graph output `output`. Pruning
// changes axis `axis` of both (the per-layer channel axis + 1).
struct CacheLink {
  ir::Value* input = nullptr;
  ir::Value* output = nullptr;
  int axis = -1;
};

int NormAxis(int64_t axis, int64_t rank) { return static_cast<int>(axis < 0 ? axis + rank : axis); }

// `cat` = Concat([Gather(cache, i), fresh]) along a non-channel axis; every reader of it except
// `main_user` is the cache update chain. `chan` is the channel axis of the per-layer tensor.
bool MatchCache(const ir::Graph& g, ir::Node* cat, const ir::Value* fresh, int chan,
                const ir::Node* main_user, CacheLink* link) {
  if (!cat || cat->num_inputs() != 2 || cat->input(1) != fresh) return false;
  ir::Node* gather = Prod(cat->input(0), "Gather");
  if (!gather || gather->attr_int("axis", 0) != 0 || !IntOf(gather->input(1))) return false;
  ir::Value* in = gather->input(0);
  if (std::find(g.inputs.begin(), g.inputs.end(), in) == g.inputs.end()) return false;
  if (!in->type.has_shape) return false;
  const int64_t rank = static_cast<int64_t>(in->type.dims.size()) - 1;
  chan = NormAxis(chan, rank);
  if (chan < 0 || chan >= rank || NormAxis(cat->attr_int("axis", 0), rank) == chan) return false;
  if (fresh->uses.size() != 1 || IsGraphOutput(g, fresh) || IsGraphOutput(g, cat->outputs[0])) return false;
  ir::Value* out = nullptr;
  for (const ir::Use& u : cat->outputs[0]->uses) {
    if (u.node == main_user) continue;
    ir::Node* sl = u.node;
    if (sl->op_type != "Slice" || !sl->domain.empty() || u.input_index != 0) return false;
    auto axes = IntsOf(sl->input(3));
    if (!axes) return false;
    for (int64_t a : *axes) {
      if (NormAxis(a, rank) == chan) return false;
    }
    ir::Node* un = SoleUse(g, sl->outputs[0], "Unsqueeze", 0);
    if (!un || IntsOf(un->input(1)) != std::vector<int64_t>{0}) return false;
    ir::Node* stack = SoleUse(g, un->outputs[0], "Concat");
    if (!stack || stack->attr_int("axis", 0) != 0 || !IsGraphOutput(g, stack->outputs[0])) return false;
    if (out && out != stack->outputs[0]) return false;
    out = stack->outputs[0];
  }
  if (!out || !out->type.has_shape || out->type.dims.size() != in->type.dims.size()) return false;
  *link = CacheLink{in, out, chan + 1};
  return true;
}

// Sets the cache's channel width on the graph input/output types and, for the streaming encoder,
// in model.json's `streaming.cache` (the runner allocates the caches from there).
void ResizeCache(ir::Model& model, const std::string& role, const CacheLink& c, int64_t width) {
  c.input->type.dims[c.axis] = ir::Dim{width, ""};
  c.output->type.dims[c.axis] = ir::Dim{width, ""};
  if (role != "encoder_causal" || !model.config.contains("streaming")) return;
  auto& s = model.config["streaming"];
  if (!s.is_object() || !s.contains("cache") || !s["cache"].is_array()) return;
  for (auto& e : s["cache"]) {
    if (e.is_object() && e.value("input", "") == c.input->name && e.contains("shape") &&
        e["shape"].is_array() && static_cast<int>(e["shape"].size()) > c.axis) {
      e["shape"][c.axis] = width;
    }
  }
}

// A candidate rewrite that reads streaming caches: all layers reading one cache must be pruned
// to the same width, or none may be (the layers' slices are stacked into one tensor).
struct CacheUse {
  CacheLink link;
  int64_t width;
};

// Drops candidates (sets `ok[i] = false`) until every cache is read only by kept candidates that
// agree on its width; each Gather of a cache input is one reader.
void CheckCacheGroups(const std::vector<std::vector<CacheUse>>& uses, std::vector<bool>& ok) {
  for (bool again = true; again;) {
    again = false;
    std::map<const ir::Value*, std::vector<size_t>> by_input;
    for (size_t i = 0; i < uses.size(); ++i) {
      for (const CacheUse& u : uses[i]) by_input[u.link.input].push_back(i);
    }
    for (const auto& [in, idx] : by_input) {
      bool good = in->uses.size() == idx.size();
      std::set<int64_t> widths;
      for (size_t i : idx) {
        good = good && ok[i];
        for (const CacheUse& u : uses[i]) {
          if (u.link.input == in) widths.insert(u.width);
        }
      }
      good = good && widths.size() == 1;
      for (size_t i : idx) {
        if (!good && ok[i]) {
          ok[i] = false;
          again = true;
        }
      }
    }
  }
}

// --- reshape shapes -------------------------------------------------------------------------

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
  ir::Node* nc = g.insert_node_before(r, "Concat", pieces, {g.unique_name(s->name + "_pruned")},
                                      UniqueNodeName(g, NodeLabel(cat) + "_pruned"));
  nc->set_attr_int("axis", 0);
  g.set_input(r, 1, nc->outputs[0]);
}

// True when `v`, a side input of a [.., C] (or [N, h, Tq, Tk]) computation, cannot differ along
// axis `from_end` counted from the end (-1: channels, -3: heads): a constant with size 1 there,
// or a value whose recorded static shape says 1 there; unknown shapes are assumed to broadcast.
bool Broadcasts(const ir::Value* v, int from_end) {
  if (const ir::Tensor* t = ConstantOf(v)) return t->rank() + from_end < 0 || t->dim(from_end) == 1;
  if (!v->type.has_shape) return true;
  const int r = static_cast<int>(v->type.dims.size());
  if (r + from_end < 0) return true;
  const ir::Dim& d = v->type.dims[r + from_end];
  return !d.known() || d.value == 1;
}

// Every reader of `v` is `main` or a Shape node (dynamic reshapes read the width at run time).
bool OnlyShapeReaders(const ir::Graph& g, const ir::Value* v, const ir::Node* main) {
  if (IsGraphOutput(g, v)) return false;
  for (const ir::Use& u : v->uses) {
    if (u.node != main && u.node->op_type != "Shape") return false;
  }
  return true;
}

// --- attention heads ------------------------------------------------------------------------

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

// --- depthwise-convolution channels ---------------------------------------------------------

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

// --- data-aware scores ---------------------------------------------------------------------

// Per-channel RMS of `v` (last axis, `n` channels) on calibration data; empty without data.
std::vector<float> CalibrationRms(const pass::StatsMap* stats, const ir::Value* v, int64_t n,
                                  pass::PassContext& ctx) {
  if (!stats) return {};
  auto it = stats->find(v->name);
  std::vector<float> rms = it == stats->end() ? std::vector<float>{} : it->second.ChannelRms();
  if (static_cast<int64_t>(rms.size()) != n) {
    ctx.Bump("skipped_data_aware_no_stats");
    return {};
  }
  ctx.Bump("data_aware_scored");
  return rms;
}

// --- feed-forward hidden units --------------------------------------------------------------

struct FfnMatch {
  Linear l1;  // [d, ff] (+ b1)
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
    if (!IsWeightMatMul(mm1) || !NameSelected(mm1, nodes, exclude)) continue;
    FfnMatch m{LinearAt(g, mm1), nullptr};
    ir::Value* h = m.l1.out();
    if (IsGraphOutput(g, h)) continue;
    if (!m.l1.add && h->uses.size() == 1 && h->uses[0].node->op_type == "MatMul") continue;  // low-rank pair, no activation
    m.mm2 = FindSecondMatMul(g, h);
    if (!m.mm2 || m.mm2 == mm1) continue;
    if (ConstantOf(m.mm2->input(1))->dim(0) != m.l1.w().dim(1)) continue;
    if (!NameSelected(m.mm2, nodes, exclude)) continue;
    out.push_back(m);
  }
  return out;
}

bool PruneFfns(ir::Graph& g, const pass::StatsMap* stats, pass::PassContext& ctx) {
  const double sparsity = ctx.GetFloat("sparsity");
  const int64_t multiple = ctx.GetInt("multiple_of");
  bool changed = false;
  for (const FfnMatch& m : FindFfns(g, ctx.GetStrings("nodes"), ctx.GetStrings("exclude_nodes"))) {
    const Linear l2 = LinearAt(g, m.mm2);
    const ir::Tensor& w1 = m.l1.w();
    const ir::Tensor& w2 = l2.w();
    const int64_t d = w1.dim(0), ff = w1.dim(1), n2 = w2.dim(1);
    const int64_t keep_n = KeepCount(ff, sparsity, multiple, 1);
    if (keep_n >= ff) {
      ctx.Bump("skipped_nothing_to_remove");
      continue;
    }
    std::vector<double> score(ff);
    const std::vector<float> rms = CalibrationRms(stats, m.mm2->input(0), ff, ctx);
    for (int64_t j = 0; j < ff; ++j) {
      score[j] = (rms.empty() ? std::sqrt(ColNorm2(w1, j)) : rms[j]) * std::sqrt(RowNorm2(w2, j));
    }
    const std::vector<int64_t> keep = TopK(score, keep_n);
    SliceLinearOut(g, m.l1, keep);
    SliceLinearIn(g, l2, keep);
    ctx.Bump("ffn_pruned");
    ctx.Bump("hidden_units_removed", ff - keep_n);
    ctx.Bump("params_removed", (ff - keep_n) * (d + n2 + (m.l1.add ? 1 : 0)));
    changed = true;
  }
  return changed;
}

// Cache bookkeeping shared by heads and conv: which candidates may be rewritten. `widths[i]` is
// candidate i's new cache width; candidates with caches are dropped when resize_caches is off.
std::vector<bool> CacheSafe(const std::vector<std::vector<CacheLink>>& caches,
                            const std::vector<int64_t>& widths, bool resize, pass::PassContext& ctx,
                            const std::string& what) {
  std::vector<bool> ok(caches.size(), true);
  std::vector<std::vector<CacheUse>> uses(caches.size());
  for (size_t i = 0; i < caches.size(); ++i) {
    for (const CacheLink& c : caches[i]) uses[i].push_back({c, widths[i]});
    if (!resize && !caches[i].empty()) {
      ok[i] = false;
      ctx.Bump("skipped_" + what + "_cache_resize_off");
    }
  }
  std::vector<bool> before = ok;
  CheckCacheGroups(uses, ok);
  for (size_t i = 0; i < ok.size(); ++i) {
    if (before[i] && !ok[i]) ctx.Bump("skipped_" + what + "_cache_mismatch");
  }
  return ok;
}

void ResizeCaches(ir::Model& model, const std::string& role, const std::vector<CacheLink>& caches,
                  int64_t width, std::set<const ir::Value*>* resized) {
  for (const CacheLink& c : caches) {
    if (resized->insert(c.input).second) ResizeCache(model, role, c, width);
  }
}

bool PruneHeads(ir::Model& model, ir::GraphFile& gf, const pass::StatsMap* stats, pass::PassContext& ctx) {
  ir::Graph& g = *gf.graph;
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
    ResizeCaches(model, gf.role, b.caches, widths[i], &resized);
    ctx.Bump("attention_pruned");
    ctx.Bump("heads_removed", b.h - keep_h[i]);
    ctx.Bump("params_removed", params);
    changed = true;
  }
  if (!resized.empty()) {
    ctx.Note("structured heads: " + gf.role + ": " + std::to_string(resized.size()) +
             " streaming attention cache(s) narrowed to the kept heads (graph inputs/outputs and "
             "model.json streaming.cache shapes updated)");
  }
  return changed;
}

bool PruneConvs(ir::Model& model, ir::GraphFile& gf, pass::PassContext& ctx) {
  ir::Graph& g = *gf.graph;
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
    ResizeCaches(model, gf.role, b.caches, k, &resized);
    ctx.Bump("conv_pruned");
    ctx.Bump("conv_channels_removed", C - k);
    const int64_t K = ConstantOf(b.dw->input(1))->dim(2);
    ctx.Bump("params_removed", (C - k) * (2 * (b.pw1.w().dim(0) + (b.pw1.add ? 1 : 0)) + K +
                                          (b.dw->input(2) ? 1 : 0) + 2 + w2.dim(1)));
    changed = true;
  }
  if (!resized.empty()) {
    ctx.Note("structured conv: " + gf.role + ": " + std::to_string(resized.size()) +
             " streaming convolution cache(s) narrowed to the kept channels (graph inputs/outputs "
             "and model.json streaming.cache shapes updated)");
  }
  return changed;
}

Result<bool> Structured(ir::Model& model, pass::PassContext& ctx) {
  std::set<std::string> targets;
  for (const std::string& t : ctx.GetStrings("targets")) {
    if (t != "ffn" && t != "heads" && t != "conv") {
      return Error("prune: option 'targets': unknown target '" + t + "' (ffn, heads, conv)");
    }
    targets.insert(t);
  }
  const auto graphs = ctx.GetStrings("graphs");
  // data_aware: one calibration run over the unmodified model, tapping the input of each closing
  // projection (FFN W2, attention Wo); rewrites keep those value names.
  pass::ModelStats stats;
  const bool data_aware = ctx.GetBool("data_aware");
  if (data_aware) {
    pass::Taps taps;
    const auto nodes = ctx.GetStrings("nodes"), exclude = ctx.GetStrings("exclude_nodes");
    for (auto& gf : model.graphs) {
      if (!gf.graph || !pass::AnyGlobMatch(graphs, gf.role)) continue;
      ir::Graph& g = *gf.graph;
      if (targets.count("ffn")) {
        for (const FfnMatch& m : FindFfns(g, nodes, exclude)) taps[gf.role].push_back(m.mm2->input(0)->name);
      }
      for (ir::Node* n : g.nodes()) {
        HeadsBlock b;
        if (targets.count("heads") && MatchHeads(g, gf.opset(""), n, &b)) taps[gf.role].push_back(b.o.mm->input(0)->name);
      }
    }
    if (!taps.empty()) {
      if (!ctx.calibrate) {
        return Error("prune: data_aware=true needs calibration data (pipeline \"calibration\" or the eval set)");
      }
      ASRC_ASSIGN_OR_RETURN(stats, ctx.calibrate(model, taps));
    }
  }
  bool changed = false;
  for (auto& gf : model.graphs) {
    if (!gf.graph || !pass::AnyGlobMatch(graphs, gf.role)) continue;
    ir::Graph& g = *gf.graph;
    const pass::StatsMap* st = data_aware && stats.count(gf.role) ? &stats[gf.role] : nullptr;
    bool g_changed = false;
    if (targets.count("ffn")) g_changed |= PruneFfns(g, st, ctx);
    if (targets.count("heads")) g_changed |= PruneHeads(model, gf, st, ctx);
    if (targets.count("conv")) g_changed |= PruneConvs(model, gf, ctx);
    if (!g_changed) continue;
    changed = true;
    RemoveDeadCode(g);
    // Intermediate value_info may record old widths: drop it (graph inputs/outputs are exact).
    for (const auto& v : g.values()) {
      if (v->producer && !v->initializer && v->has_value_info && !IsGraphOutput(g, v.get())) {
        v->has_value_info = false;
        v->type = ir::TypeInfo{};
      }
    }
  }
  const auto& c = ctx.counters();
  auto count = [&](const char* k) { return c.count(k) ? c.at(k) : int64_t{0}; };
  if (targets.count("ffn")) {
    ctx.Note(count("ffn_pruned") ? "structured ffn: hidden units removed physically (params, bytes and compute shrink)"
                                 : "structured ffn: no FFN pattern MatMul -> activation -> MatMul found");
  }
  if (targets.count("heads")) {
    ctx.Note(count("attention_pruned")
                 ? "structured heads: whole heads removed from Q/K/V/output projections and head-count "
                   "reshapes; exact for heads whose value or output weights are zero, otherwise lossy"
                 : "structured heads: no prunable multi-head attention found");
  }
  if (targets.count("conv")) {
    ctx.Note(count("conv_pruned")
                 ? "structured conv: depthwise channels removed (GLU halves, depthwise weights, norm, "
                   "pw2 rows); approximate: the inner LayerNorm is rescaled as if each removed channel "
                   "sat at the per-frame mean, and its activation at that point is folded into the pw2 bias"
                 : "structured conv: no conformer convolution module found");
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
       "remove FFN hidden units, attention heads and/or depthwise-conv channels physically",
       {"magnitude", "structured"}},
      {"sparsity", 0.3, "magnitude: fraction of weights zeroed; structured: fraction of FFN hidden units removed",
       {}, 0, 0.99},
      {"targets", json::array({"ffn"}),
       "structured: what to remove, any of \"ffn\" (hidden units), \"heads\" (attention heads), "
       "\"conv\" (depthwise-conv channels of the conformer conv module)", {}},
      {"heads_sparsity", 0.25,
       "structured heads: fraction of each attention's heads removed (rounded to whole heads)", {}, 0, 0.99},
      {"min_heads", int64_t{1}, "structured heads: never keep fewer heads than this", {}, 1, 4096},
      {"conv_sparsity", 0.25,
       "structured conv: fraction of depthwise-conv channels removed (lossy: see prune.h)", {}, 0, 0.99},
      {"data_aware", false,
       "structured ffn/heads: score units by their calibration activation RMS at the closing "
       "projection's input times its row norms (FFN W2, attention Wo) instead of weights alone; "
       "needs calibration data. Conv channels are always scored from weights (see prune.h)", {}},
      {"resize_caches", true,
       "structured heads/conv: narrow streaming caches (graph inputs/outputs and model.json "
       "streaming.cache shapes) with the pruned layers; false leaves cached layers alone", {}},
      {"scope", "per-layer", "magnitude: one threshold per layer or one global threshold",
       {"per-layer", "global"}},
      {"multiple_of", int64_t{8}, "structured ffn/conv: keep a multiple of this many units or channels",
       {}, 1, 4096},
      {"min_elements", int64_t{1024}, "magnitude: leave smaller weights alone", {}, 0, 1e12},
      {"graphs", json::array({"*"}), "graph roles (glob patterns)", {}},
      {"nodes", json::array({"*"}),
       "node names (glob patterns); structured: every MatMul/Conv of a unit must match", {}},
      {"exclude_nodes", json::array(), "node names to leave alone (glob patterns)", {}},
  };
}

Result<bool> PrunePass::Run(ir::Model& model, pass::PassContext& ctx) {
  if (ctx.GetString("method") == "structured") return Structured(model, ctx);
  return Magnitude(model, ctx);
}

}  // namespace asrc::passes
