#include "train/joiner_rows.h"

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace asrc::train {
namespace {

// Which joiner inputs a value reads: none (constants), the encoder rows, the decoder rows, both.
enum Side { kNone = 0, kEnc = 1, kDec = 2, kBoth = 3 };

const std::set<std::string> kUnary = {"Tanh", "Relu", "Sigmoid", "Identity", "Neg", "Exp", "Log", "Erf",
                                      "Abs", "Sqrt", "Softplus", "LeakyRelu", "Elu", "HardSigmoid", "Gelu"};
const std::set<std::string> kBinary = {"Add", "Sub", "Mul", "Div"};

// The shape of a constant value (an initializer, or a value whose type records its dims); false
// when unknown.
bool ConstShape(const ir::Value* v, std::vector<int64_t>* shape) {
  if (v->initializer) {
    *shape = v->initializer->shape();
    return true;
  }
  if (!v->type.has_shape) return false;
  shape->clear();
  for (const ir::Dim& d : v->type.dims) {
    if (!d.known()) return false;
    shape->push_back(d.value);
  }
  return true;
}

// Whether a node that reads one side (input `sides`) computes row r of its output from row r of
// that side alone, so that it can run on the T (or U1) rows before they are paired.
bool RowWise(const ir::Node& n, const std::vector<Side>& sides) {
  for (const ir::Attribute& a : n.attributes)
    if (a.kind == ir::Attribute::Kind::Graph || a.kind == ir::Attribute::Kind::Graphs) return false;
  const auto none_from = [&](size_t k) {
    for (size_t i = k; i < sides.size(); ++i)
      if (sides[i] != kNone) return false;
    return true;
  };
  if (kUnary.count(n.op_type)) return n.inputs.size() == 1;
  if (n.op_type == "Gemm") return n.attr_int("transA", 0) == 0 && sides[0] != kNone && none_from(1);
  std::vector<int64_t> shape;
  if (n.op_type == "MatMul")
    return sides.size() == 2 && sides[0] != kNone && sides[1] == kNone && ConstShape(n.inputs[1], &shape) &&
           shape.size() == 2;
  if (kBinary.count(n.op_type) && sides.size() == 2) {
    const size_t c = sides[0] == kNone ? 0 : 1;  // the constant operand
    if (sides[c] != kNone || !ConstShape(n.inputs[c], &shape)) return false;
    return shape.size() <= 1 || (shape.size() == 2 && shape[0] == 1);
  }
  return false;
}

ir::Value* WithRank(ir::Value* v, int rank) {
  v->type.has_type = true;
  v->type.dtype = ir::DType::Float32;
  v->type.has_shape = true;
  v->type.dims.assign(rank, ir::Dim{});
  return v;
}

// Builds the factored graph node by node.
class Factor {
 public:
  Factor(ir::Graph& dst, int64_t batch) : g_(dst), batch_(batch) {}

  ir::Value* Op(const std::string& op, const std::vector<ir::Value*>& in, int rank) {
    const std::string name = g_.UniqueName("joiner_rows/" + op);
    return WithRank(g_.AddNode(op, in, {name}, name)->outputs[0], rank);
  }
  ir::Value* Ints(const std::vector<int64_t>& v) {
    return g_.AddInitializer(g_.UniqueName("joiner_rows/const"),
                              ir::Tensor::FromVector(ir::DType::Int64, {static_cast<int64_t>(v.size())}, v));
  }
  // [1]: dimension `axis` of `x`.
  ir::Value* Dim(ir::Value* x, int64_t axis) {
    ir::Value* s = Op("Shape", {x}, 1);
    s->type.dtype = ir::DType::Int64;
    ir::Value* r = Op("Slice", {s, Ints({axis}), Ints({axis + 1}), Ints({0})}, 1);
    r->type.dtype = ir::DType::Int64;
    return r;
  }
  ir::Value* Concat(const std::vector<ir::Value*>& in) {
    ir::Value* c = Op("Concat", in, 1);
    c->producer->set_attr_int("axis", 0);
    c->type.dtype = ir::DType::Int64;
    return c;
  }
  // One side's rows [B * R, J] as [B, R, 1, J] (encoder) or [B, 1, R, J] (decoder).
  ir::Value* Grid(ir::Value* x, Side side) {
    ir::Value* j = Dim(x, 1);
    std::vector<ir::Value*> dims = side == kEnc ? std::vector<ir::Value*>{Ints({batch_}), Ints({-1}), Ints({1}), j}
                                                : std::vector<ir::Value*>{Ints({batch_}), Ints({1}), Ints({-1}), j};
    return Op("Reshape", {x, Concat(dims)}, 4);
  }
  ir::Value* Rows(ir::Value* grid, const std::string& out) {  // [B, T, U1, J] -> [B * T * U1, J]
    ir::Node* f = g_.AddNode("Flatten", {grid}, {out}, g_.UniqueName("joiner_rows/Flatten"));
    f->set_attr_int("axis", 3);
    return WithRank(f->outputs[0], 2);
  }
  // A one-sided [B * R, J] value as the B * T * U1 pairs [B * T * U1, J] (T and U1 from the
  // graph inputs `enc` and `dec`).
  ir::Value* Pairs(ir::Value* x, Side side, ir::Value* enc, ir::Value* dec) {
    ir::Value* one = Ints({1});
    ir::Value* shape = side == kEnc ? Concat({one, one, Dim(Grid(dec, kDec), 2), one})
                                    : Concat({one, Dim(Grid(enc, kEnc), 1), one, one});
    return Rows(Op("Expand", {Grid(x, side), shape}, 4), g_.UniqueName("joiner_rows/pairs"));
  }

 private:
  ir::Graph& g_;
  int64_t batch_;
};

}  // namespace

Result<std::unique_ptr<ir::Graph>> FactorJoiner(const ir::Graph& joiner, int64_t batch) {
  auto dst = std::make_unique<ir::Graph>(joiner.name + "_rows");
  Factor f(*dst, batch);
  std::map<const ir::Value*, ir::Value*> vmap;
  std::map<const ir::Value*, Side> side;
  for (const ir::Value* w : joiner.initializers) {
    ir::Value* v = dst->AddInitializer(w->name, *w->initializer);
    v->type = w->type;
    vmap[w] = v;
    side[w] = kNone;
  }
  ir::Value *enc = nullptr, *dec = nullptr;
  for (const ir::Value* in : joiner.inputs) {
    if (vmap.count(in)) continue;
    if (in->name != "encoder_out" && in->name != "decoder_out") return std::unique_ptr<ir::Graph>();
    ir::Value* v = dst->AddValue(in->name);
    v->type = in->type;
    dst->inputs.push_back(v);
    vmap[in] = v;
    side[in] = in->name == "encoder_out" ? kEnc : kDec;
    (side[in] == kEnc ? enc : dec) = v;
  }
  if (!enc || !dec) return std::unique_ptr<ir::Graph>();
  ASRC_ASSIGN_OR_RETURN(std::vector<ir::Node*> order, joiner.TopoOrder());
  for (ir::Node* n : order) {
    std::vector<Side> sides;
    int s = kNone;
    for (const ir::Value* v : n->inputs) {
      sides.push_back(v ? side.at(v) : kNone);
      s |= sides.back();
    }
    if ((s == kEnc || s == kDec) && !RowWise(*n, sides)) return std::unique_ptr<ir::Graph>();
    std::vector<ir::Value*> ins;
    for (const ir::Value* v : n->inputs) ins.push_back(v ? vmap.at(v) : nullptr);
    std::vector<std::string> outs;
    for (const ir::Value* o : n->outputs) outs.push_back(o ? o->name : "");
    const bool joins = s == kBoth && std::find(sides.begin(), sides.end(), kBoth) == sides.end();
    if (joins && kBinary.count(n->op_type) && n->inputs.size() == 2 && n->outputs.size() == 1) {
      // [B, T, 1, J] op [B, 1, U1, J] -> [B, T, U1, J] -> rows [B * T * U1, J]
      ir::Value* grid = f.Op(n->op_type, {f.Grid(ins[0], sides[0]), f.Grid(ins[1], sides[1])}, 4);
      ir::Value* rows = f.Rows(grid, outs[0]);
      vmap[n->outputs[0]] = rows;
      side[n->outputs[0]] = kBoth;
      continue;
    }
    if (s == kBoth)
      for (size_t i = 0; i < ins.size(); ++i)
        if (sides[i] == kEnc || sides[i] == kDec) ins[i] = f.Pairs(ins[i], sides[i], enc, dec);
    ir::Node* c = dst->AddNode(n->op_type, ins, outs, n->name, n->domain);
    c->attributes = n->attributes;
    for (size_t i = 0; i < n->outputs.size(); ++i) {
      if (!n->outputs[i]) continue;
      c->outputs[i]->type = n->outputs[i]->type;
      vmap[n->outputs[i]] = c->outputs[i];
      side[n->outputs[i]] = static_cast<Side>(s);
    }
  }
  for (const ir::Value* o : joiner.outputs) {
    if (side.at(o) != kBoth) return std::unique_ptr<ir::Graph>();
    dst->outputs.push_back(vmap.at(o));
  }
  ASRC_RETURN_IF_ERROR(dst->Verify().With("joiner rows"));
  return dst;
}

}  // namespace asrc::train
