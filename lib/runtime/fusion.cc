#include "runtime/fusion.h"

#include <algorithm>
#include <cstdint>
#include <unordered_map>
#include <unordered_set>

namespace asrc::runtime {

namespace {

bool IsOp(const ir::Node* n, const char* op) {
  return n && (n->domain.empty() || n->domain == "ai.onnx") && n->op_type == op;
}

// The other input of a two-input node, given one of them; nullptr when `v` is not an input.
ir::Value* OtherInput(const ir::Node* n, const ir::Value* v) {
  if (n->num_inputs() != 2) return nullptr;
  if (n->inputs[0] == v && n->inputs[1] != v) return n->inputs[1];
  if (n->inputs[1] == v && n->inputs[0] != v) return n->inputs[0];
  return nullptr;
}

class Matcher {
 public:
  Matcher(const std::vector<ir::Node*>& order, const FusionInputs& in) : in_(in) {
    for (ir::Node* n : order) {
      in_order_.insert(n);
      for (ir::Value* v : n->inputs)
        if (v) readers_[v].push_back(n);
    }
  }

  // The one node of this order that reads `v`, when `v` is read exactly once (counting
  // subgraphs) and is not a graph output; else nullptr.
  ir::Node* SoleReader(const ir::Value* v) const {
    if (!v || in_.is_graph_output(v) || in_.uses(v) != 1) return nullptr;
    auto it = readers_.find(v);
    return it != readers_.end() && it->second.size() == 1 ? it->second[0] : nullptr;
  }
  bool ReadOnlyBy(const ir::Value* v, const ir::Node* n, int times) const {
    if (!v || in_.is_graph_output(v) || in_.uses(v) != times) return false;
    auto it = readers_.find(v);
    if (it == readers_.end()) return false;
    for (const ir::Node* r : it->second)
      if (r != n) return false;
    return static_cast<int>(it->second.size()) == times;
  }
  bool Planned(const ir::Node* n) const { return in_order_.count(n) > 0; }
  const ir::Tensor* Const(const ir::Value* v) const { return v ? in_.constant(v) : nullptr; }

  // A float32 constant of at most one dimension with 1 or `n` entries (`allow_one`) or n.
  const ir::Tensor* VectorConst(const ir::Value* v, int64_t n, bool allow_one) const {
    const ir::Tensor* t = Const(v);
    if (!t || t->dtype() != ir::DType::Float32 || t->rank() > 1) return nullptr;
    return t->numel() == n || (allow_one && t->numel() == 1) ? t : nullptr;
  }

  // A float32 constant holding one value per output channel of a convolution output of rank
  // `rank` ([C, 1, ..., 1] or [1, C, 1, ..., 1]), or one value (`allow_one`), broadcasting to
  // that output without changing its shape.
  const ir::Tensor* ChannelConst(const ir::Value* v, int64_t c, int rank, bool allow_one) const {
    const ir::Tensor* t = Const(v);
    if (!t || t->dtype() != ir::DType::Float32 || t->rank() > rank) return nullptr;
    if (allow_one && t->numel() == 1) return t;
    if (t->numel() != c) return nullptr;
    const ir::Shape& s = t->shape();
    int ch = -1;
    for (int i = 0; i < static_cast<int>(s.size()); ++i)
      if (s[i] != 1) ch = i;
    if (c == 1) return t;
    // The channel axis is 1 of the output: rank - 1 - ch trailing dims after it.
    return ch >= 0 && static_cast<int>(s.size()) - 1 - ch == rank - 2 ? t : nullptr;
  }

  struct Chain {
    std::vector<ir::Node*> nodes;  // absorbed, in execution order
    std::unique_ptr<ir::Node> fused;
  };

  // The DynamicQuantizeLinear that feeds integer op `op` its x_q (input 0) and x_zp (input 2),
  // with a constant 8-bit weight (input 1) of rank `rank_lo`..`rank_hi` and a constant or absent
  // weight zero point (input 3); nullptr when they do not match.
  ir::Node* QuantizedHead(const ir::Node* op, int rank_lo, int rank_hi) const {
    if (op->num_inputs() < 3 || op->outputs.size() != 1) return nullptr;
    ir::Value *xq = op->input(0), *xzp = op->input(2), *wzp = op->input(3);
    if (!xq || !xzp || !xq->producer) return nullptr;
    ir::Node* dql = xq->producer;
    if (!IsOp(dql, "DynamicQuantizeLinear") || !Planned(dql) || dql->outputs.size() != 3 ||
        dql->output(0) != xq || dql->output(2) != xzp || !dql->output(1))
      return nullptr;
    const ir::Tensor* wt = Const(op->input(1));
    if (!wt || wt->rank() < rank_lo || wt->rank() > rank_hi ||
        (wt->dtype() != ir::DType::Int8 && wt->dtype() != ir::DType::Uint8))
      return nullptr;
    if (wzp && !Const(wzp)) return nullptr;
    return dql;
  }

  // The float tail after an integer op's int32 output: Cast(float) -> Mul(., scale) with
  // scale = Mul(x_scale, w_scale) read only there, then an optional Add(., bias). `fits` says
  // whether a constant is a valid w_scale (allow_one) or bias for this op.
  struct Tail {
    ir::Node *cast = nullptr, *smul = nullptr, *mul = nullptr, *add = nullptr;
    ir::Value *ws = nullptr, *bias = nullptr;
    ir::Node* last() const { return add ? add : mul; }
    std::vector<ir::Node*> nodes(ir::Node* op) const {
      std::vector<ir::Node*> v = {op, cast, smul, mul};
      if (add) v.push_back(add);
      return v;
    }
  };
  template <class Fits>
  bool ScaledTail(const ir::Node* op, ir::Value* xs, Fits fits, Tail* t) const {
    t->cast = SoleReader(op->output(0));
    if (!IsOp(t->cast, "Cast") ||
        t->cast->attr_int("to", 0) != static_cast<int64_t>(ir::DType::Float32))
      return false;
    t->mul = SoleReader(t->cast->output(0));
    if (!IsOp(t->mul, "Mul")) return false;
    ir::Value* scale = OtherInput(t->mul, t->cast->output(0));
    if (!scale || !scale->producer) return false;
    t->smul = scale->producer;
    if (!IsOp(t->smul, "Mul") || !Planned(t->smul) || SoleReader(scale) != t->mul) return false;
    t->ws = OtherInput(t->smul, xs);
    if (!t->ws || !fits(t->ws, true)) return false;
    if (ir::Node* add = SoleReader(t->mul->output(0)); IsOp(add, "Add")) {
      ir::Value* b = OtherInput(add, t->mul->output(0));
      if (b && fits(b, false)) {
        t->bias = b;
        t->add = add;
      }
    }
    return true;
  }

  // The quantized-product chain whose MatMulInteger is `mm`, if it matches (see fusion.h).
  bool MatchQuantMatMul(ir::Node* mm, Chain* chain) const {
    if (!IsOp(mm, "MatMulInteger")) return false;
    ir::Node* dql = QuantizedHead(mm, 2, 2);
    if (!dql) return false;
    ir::Value *xq = mm->input(0), *w = mm->input(1), *xzp = mm->input(2), *wzp = mm->input(3);
    ir::Value* xs = dql->output(1);
    const int64_t N = Const(w)->dim(1);
    Tail t;
    if (!ScaledTail(mm, xs, [&](const ir::Value* v, bool one) { return VectorConst(v, N, one); }, &t))
      return false;
    ir::Value *ws = t.ws, *bias = t.bias;
    const bool own_dql = ReadOnlyBy(xq, mm, 1) && ReadOnlyBy(xzp, mm, 1) && ReadOnlyBy(xs, t.smul, 1);
    auto f = std::make_unique<ir::Node>();
    f->domain = "com.microsoft";
    f->owner = mm->owner;
    if (own_dql) {
      f->op_type = "DynamicQuantizeMatMul";
      f->inputs = {dql->input(0), w, ws, wzp, bias};
      chain->nodes = {dql};
    } else {
      f->op_type = "MatMulIntegerToFloat";
      f->inputs = {xq, w, xs, ws, xzp, wzp, bias};
      chain->nodes = {};
    }
    while (!f->inputs.empty() && !f->inputs.back()) f->inputs.pop_back();
    f->outputs = {t.last()->output(0)};
    f->name = mm->name + (own_dql ? "+dql" : "") + "+cast+mul" + (bias ? "+add" : "");
    for (ir::Node* n : t.nodes(mm)) chain->nodes.push_back(n);
    chain->fused = std::move(f);
    return true;
  }

  // ConvInteger(x_q, w, x_zp[, w_zp]) -> Cast -> Mul(., Mul(x_scale, w_scale)) [-> Add(bias)]
  // [-> Relu], x_q and x_zp from a DynamicQuantizeLinear (which stays), w_scale and bias per
  // output channel: ai.asrc ConvIntegerToFloat (kernels/conv_integer.cc).
  bool MatchQuantConv(ir::Node* ci, Chain* chain) const {
    if (!IsOp(ci, "ConvInteger")) return false;
    ir::Node* dql = QuantizedHead(ci, 3, 4);
    if (!dql) return false;
    ir::Value *xq = ci->input(0), *w = ci->input(1), *xzp = ci->input(2), *wzp = ci->input(3);
    ir::Value* xs = dql->output(1);
    const ir::Tensor* wt = Const(w);
    const int64_t M = wt->dim(0);
    const int rank = static_cast<int>(wt->rank());
    Tail t;
    if (!ScaledTail(ci, xs, [&](const ir::Value* v, bool one) { return ChannelConst(v, M, rank, one); }, &t))
      return false;
    ir::Value *ws = t.ws, *bias = t.bias;
    ir::Node* last = t.last();
    chain->nodes = t.nodes(ci);
    ir::Node* r = SoleReader(last->output(0));
    const bool relu = IsOp(r, "Relu") && r->num_inputs() == 1;
    if (relu) {
      last = r;
      chain->nodes.push_back(r);
    }
    auto f = std::make_unique<ir::Node>();
    f->domain = "ai.asrc";
    f->op_type = "ConvIntegerToFloat";
    f->owner = ci->owner;
    f->attributes = ci->attributes;
    if (relu) f->set_attr_string("activation", "Relu");
    f->inputs = {xq, w, xs, ws, xzp, wzp, bias};
    while (!f->inputs.empty() && !f->inputs.back()) f->inputs.pop_back();
    f->outputs = {last->output(0)};
    f->name = ci->name + "+cast+mul" + (bias ? "+add" : "") + (relu ? "+relu" : "");
    chain->fused = std::move(f);
    return true;
  }

  // Conv [-> Relu] -> Conv [-> Relu] where the first is 2-D with a constant weight of small K
  // (C * KH * KW <= 32: a subsampling front end's first layer) and the second is 2-D with a
  // constant weight: ai.asrc ConvPair(x, w1, b1, w2, b2) (kernels/nn.cc), the first's
  // attributes as they are, the second's prefixed "second_", ReLUs as "activation".
  bool MatchConvPair(ir::Node* conv, Chain* chain) const {
    auto conv2d = [&](const ir::Node* n, int64_t max_k) {
      if (!IsOp(n, "Conv") || n->outputs.size() != 1 || n->num_inputs() < 2) return false;
      const ir::Tensor* w = Const(n->input(1));
      return w && w->rank() == 4 && w->dim(1) * w->dim(2) * w->dim(3) <= max_k;
    };
    if (!conv2d(conv, 32)) return false;
    std::vector<ir::Node*> nodes = {conv};
    auto relu_after = [&](ir::Node* n) {
      ir::Node* r = SoleReader(n->output(0));
      if (!IsOp(r, "Relu") || r->num_inputs() != 1 || r->outputs.size() != 1) return n;
      nodes.push_back(r);
      return r;
    };
    ir::Node* last1 = relu_after(conv);
    ir::Node* conv2 = SoleReader(last1->output(0));
    if (!conv2d(conv2, INT64_MAX) || conv2->input(0) != last1->output(0)) return false;
    nodes.push_back(conv2);
    ir::Node* last2 = relu_after(conv2);
    auto f = std::make_unique<ir::Node>();
    f->domain = "ai.asrc";
    f->op_type = "ConvPair";
    f->owner = conv->owner;
    f->attributes = conv->attributes;
    if (last1 != conv) f->set_attr_string("activation", "Relu");
    for (ir::Attribute a : conv2->attributes) {
      a.name = "second_" + a.name;
      f->attributes.push_back(std::move(a));
    }
    if (last2 != conv2) f->set_attr_string("second_activation", "Relu");
    f->inputs = {conv->input(0), conv->input(1), conv->input(2), conv2->input(1), conv2->input(2)};
    while (!f->inputs.empty() && !f->inputs.back()) f->inputs.pop_back();
    f->outputs = last2->outputs;
    f->name = conv->name + (last1 != conv ? "+relu" : "") + "+" + conv2->name +
              (last2 != conv2 ? "+relu" : "");
    chain->nodes = nodes;
    chain->fused = std::move(f);
    return true;
  }

  // MatMul(x, W) -> Add(., bias) with W a constant 2-D float32 [K, N] and bias a constant
  // float32 row of N: ai.asrc MatMulBias(x, W, bias) (kernels/nn.cc).
  bool MatchMatMulBias(ir::Node* mm, Chain* chain) const {
    if (!IsOp(mm, "MatMul") || mm->num_inputs() != 2 || mm->outputs.size() != 1) return false;
    const ir::Tensor* w = Const(mm->input(1));
    if (!w || w->rank() != 2 || w->dtype() != ir::DType::Float32) return false;
    ir::Node* add = SoleReader(mm->output(0));
    if (!IsOp(add, "Add") || add->outputs.size() != 1) return false;
    ir::Value* bias = OtherInput(add, mm->output(0));
    if (!bias || !VectorConst(bias, w->dim(1), false)) return false;
    auto f = std::make_unique<ir::Node>();
    f->domain = "ai.asrc";
    f->op_type = "MatMulBias";
    f->owner = mm->owner;
    f->inputs = {mm->input(0), mm->input(1), bias};
    f->outputs = add->outputs;
    f->name = mm->name + "+add";
    chain->nodes = {mm, add};
    chain->fused = std::move(f);
    return true;
  }

  // Conv -> Relu: com.microsoft FusedConv with activation "Relu" (kernels/nn.cc).
  bool MatchConvRelu(ir::Node* conv, Chain* chain) const {
    if (!IsOp(conv, "Conv") || conv->outputs.size() != 1) return false;
    ir::Node* r = SoleReader(conv->output(0));
    if (!IsOp(r, "Relu") || r->num_inputs() != 1 || r->outputs.size() != 1) return false;
    auto f = std::make_unique<ir::Node>();
    f->domain = "com.microsoft";
    f->op_type = "FusedConv";
    f->owner = conv->owner;
    f->attributes = conv->attributes;
    f->set_attr_string("activation", "Relu");
    f->inputs = conv->inputs;
    f->outputs = r->outputs;
    f->name = conv->name + "+relu";
    chain->nodes = {conv, r};
    chain->fused = std::move(f);
    return true;
  }

  // Sigmoid(x) -> Mul(x, .): ai.asrc Silu (kernels/elementwise.cc; vectorized for float32,
  // the unfused arithmetic for other dtypes, which are often not known at plan time).
  bool MatchSilu(ir::Node* sig, Chain* chain) const {
    if (!IsOp(sig, "Sigmoid") || sig->num_inputs() != 1 || sig->outputs.size() != 1) return false;
    ir::Value* x = sig->input(0);
    if (!x) return false;
    ir::Node* mul = SoleReader(sig->output(0));
    if (!IsOp(mul, "Mul") || OtherInput(mul, sig->output(0)) != x || mul->outputs.size() != 1)
      return false;
    auto f = std::make_unique<ir::Node>();
    f->domain = "ai.asrc";
    f->op_type = "Silu";
    f->owner = sig->owner;
    f->inputs = {x};
    f->outputs = mul->outputs;
    f->name = sig->name + "+mul";
    chain->nodes = {sig, mul};
    chain->fused = std::move(f);
    return true;
  }

  // Div(x, d) -> Erf -> Add(., a) -> Mul(x, .) -> Mul(., h) with d, a, h float32 scalar
  // constants (PyTorch's exact GELU): ai.asrc GeluErf(x, d, a, h) (kernels/activation.cc).
  bool MatchGeluErf(ir::Node* div, Chain* chain) const {
    // An initializer or a Constant node's output (PyTorch writes these scalars as Constant nodes,
    // which stay in the plan and feed the fused node).
    auto scalar = [&](const ir::Value* v) {
      const ir::Tensor* t = Const(v);
      if (!t && v && IsOp(v->producer, "Constant")) {
        const ir::Attribute* a = v->producer->attr("value");
        if (a && a->kind == ir::Attribute::Kind::Tensor) t = &a->t;
      }
      return t && t->dtype() == ir::DType::Float32 && t->numel() == 1;
    };
    if (!IsOp(div, "Div") || div->num_inputs() != 2 || div->outputs.size() != 1 || !scalar(div->input(1))) return false;
    ir::Value* x = div->input(0);
    ir::Node* erf = SoleReader(div->output(0));
    if (!x || !IsOp(erf, "Erf") || erf->outputs.size() != 1) return false;
    ir::Node* add = SoleReader(erf->output(0));
    if (!IsOp(add, "Add") || add->outputs.size() != 1) return false;
    ir::Value* a = OtherInput(add, erf->output(0));
    ir::Node* mul = SoleReader(add->output(0));
    if (!scalar(a) || !IsOp(mul, "Mul") || OtherInput(mul, add->output(0)) != x || mul->outputs.size() != 1) return false;
    ir::Node* half = SoleReader(mul->output(0));
    if (!IsOp(half, "Mul") || half->outputs.size() != 1) return false;
    ir::Value* h = OtherInput(half, mul->output(0));
    if (!scalar(h)) return false;
    auto f = std::make_unique<ir::Node>();
    f->domain = "ai.asrc";
    f->op_type = "GeluErf";
    f->owner = div->owner;
    f->inputs = {x, div->input(1), a, h};
    f->outputs = half->outputs;
    f->name = div->name + "+erf+add+mul+mul";
    chain->nodes = {div, erf, add, mul, half};
    chain->fused = std::move(f);
    return true;
  }

 private:
  const FusionInputs& in_;
  std::unordered_set<const ir::Node*> in_order_;
  std::unordered_map<const ir::Value*, std::vector<ir::Node*>> readers_;
};

}  // namespace

FusionResult FuseNodes(const std::vector<ir::Node*>& order, const FusionInputs& in) {
  FusionResult r;
  Matcher m(order, in);
  std::unordered_map<const ir::Node*, size_t> pos;
  for (size_t i = 0; i < order.size(); ++i) pos[order[i]] = i;
  std::unordered_set<const ir::Node*> absorbed;
  std::unordered_map<const ir::Node*, ir::Node*> replace_last;  // chain's last node -> fused
  for (ir::Node* n : order) {
    Matcher::Chain c;
    if (!m.MatchQuantMatMul(n, &c) && !m.MatchQuantConv(n, &c) && !m.MatchConvPair(n, &c) &&
        !m.MatchConvRelu(n, &c) && !m.MatchSilu(n, &c) && !m.MatchMatMulBias(n, &c) &&
        !m.MatchGeluErf(n, &c))
      continue;
    bool taken = false;
    for (ir::Node* a : c.nodes) taken |= absorbed.count(a) > 0;
    if (taken) continue;
    // The chain's last node in execution order is where the fused node goes.
    ir::Node* last = c.nodes[0];
    for (ir::Node* a : c.nodes) {
      absorbed.insert(a);
      if (pos[a] > pos[last]) last = a;
    }
    replace_last[last] = c.fused.get();
    r.owned.push_back(std::move(c.fused));
    ++r.fused_chains;
  }
  for (ir::Node* n : order) {
    auto it = replace_last.find(n);
    if (it != replace_last.end()) r.order.push_back(it->second);
    else if (!absorbed.count(n)) r.order.push_back(n);
  }
  return r;
}

}  // namespace asrc::runtime
