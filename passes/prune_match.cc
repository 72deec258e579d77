// The matcher pieces the structured-pruning rules share (prune_rules.h).
#include <algorithm>
#include <cmath>
#include <numeric>

#include "passes/prune_rules.h"

namespace asrc::passes::prune {

ir::Node* Prod(const ir::Value* v, const char* op) {
  if (!v || !v->producer || !v->producer->domain.empty() || v->producer->op_type != op) return nullptr;
  return v->producer;
}

ir::Node* SoleUse(const ir::Graph& g, const ir::Value* v, const char* op, int index) {
  if (!v || v->uses.size() != 1 || IsGraphOutput(g, v)) return nullptr;
  const ir::Use& u = v->uses[0];
  if (u.node->owner != &g || !u.node->domain.empty() || u.node->op_type != op || (index >= 0 && u.input_index != index)) return nullptr;
  return u.node;
}

bool HasPerm(const ir::Node* n, const std::vector<int64_t>& perm) {
  return n && n->attr_ints("perm") == perm;
}

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

bool IsWeightMatMul(const ir::Node* n) {
  return n && n->op_type == "MatMul" && n->domain.empty() && IsFloatConstant(n->input(1), 2) &&
         !ConstantOf(n->input(0));
}

namespace {

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

}  // namespace

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
  if (!r.mm || r.mm->owner != &g) return false;
  *l = r;
  return true;
}

Linear LinearAt(const ir::Graph& g, ir::Node* mm) {
  Linear l;
  l.mm = mm;
  FindBias(g, &l);
  return l;
}

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

namespace {

ir::Tensor SliceColumns(const ir::Tensor& w, const std::vector<int64_t>& keep) {  // [K, F] -> [K, k]
  const int64_t K = w.dim(0), F = w.dim(1), k = static_cast<int64_t>(keep.size());
  ir::Tensor t(ir::DType::Float32, {K, k});
  for (int64_t r = 0; r < K; ++r)
    for (int64_t j = 0; j < k; ++j) t.data<float>()[r * k + j] = w.data<float>()[r * F + keep[j]];
  return t;
}

}  // namespace

void ReplaceInput(ir::Graph& g, ir::Node* n, int index, ir::Tensor t) {
  g.set_input(n, index, AddConst(g, n->input(index)->name + "_pruned", std::move(t)));
}

void SliceLinearOut(ir::Graph& g, const Linear& l, const std::vector<int64_t>& keep) {
  ReplaceInput(g, l.mm, 1, SliceColumns(l.w(), keep));
  if (l.add) ReplaceInput(g, l.add, l.bias_input, SliceAxis0(*ConstantOf(l.add->input(l.bias_input)), keep));
}

void SliceLinearIn(ir::Graph& g, const Linear& l, const std::vector<int64_t>& keep) {
  ReplaceInput(g, l.mm, 1, SliceAxis0(l.w(), keep));
}

int64_t KeepCount(int64_t n, double sparsity, int64_t multiple, int64_t min_keep) {
  int64_t k = static_cast<int64_t>(std::llround((1.0 - sparsity) * n));
  k = (k + multiple - 1) / multiple * multiple;
  return std::clamp<int64_t>(k, std::min(min_keep, n), n);
}

std::vector<int64_t> TopK(const std::vector<double>& score, int64_t k) {
  std::vector<int64_t> idx(score.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::stable_sort(idx.begin(), idx.end(), [&](int64_t a, int64_t b) { return score[a] > score[b]; });
  idx.resize(k);
  std::sort(idx.begin(), idx.end());
  return idx;
}

double ColNorm2(const ir::Tensor& w, int64_t j) {
  double s = 0;
  for (int64_t r = 0; r < w.dim(0); ++r) s += std::pow(w.data<float>()[r * w.dim(1) + j], 2);
  return s;
}

double RowNorm2(const ir::Tensor& w, int64_t j) {
  const int64_t inner = w.numel() / w.dim(0);
  double s = 0;
  for (int64_t c = 0; c < inner; ++c) s += std::pow(w.data<float>()[j * inner + c], 2);
  return s;
}

int NormAxis(int64_t axis, int64_t rank) { return static_cast<int>(axis < 0 ? axis + rank : axis); }

bool Broadcasts(const ir::Value* v, int from_end) {
  if (const ir::Tensor* t = ConstantOf(v)) return t->rank() + from_end < 0 || t->dim(from_end) == 1;
  if (!v->type.has_shape) return true;
  const int r = static_cast<int>(v->type.dims.size());
  if (r + from_end < 0) return true;
  const ir::Dim& d = v->type.dims[r + from_end];
  return !d.known() || d.value == 1;
}

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

}  // namespace asrc::passes::prune
