// RuleContext (what a rule sees and emits), static facts about forward values (constant inputs,
// static shapes, ranks propagated through common ops), and the rule table.
#include <algorithm>
#include <set>

#include "grad/builder.h"
#include "ir/constant.h"

namespace asrc::grad {

namespace {

std::optional<std::vector<int64_t>> TensorInts(const ir::Tensor* t) {
  if (!t) return std::nullopt;
  std::vector<int64_t> out;
  if (t->dtype() == ir::DType::Int64) out.assign(t->data<int64_t>(), t->data<int64_t>() + t->numel());
  else if (t->dtype() == ir::DType::Int32) out.assign(t->data<int32_t>(), t->data<int32_t>() + t->numel());
  else return std::nullopt;
  return out;
}

std::optional<ir::Shape> ShapeFacts(const ir::Value* v) {
  if (!v) return std::nullopt;
  if (v->initializer) return v->initializer->shape();
  if (const ir::Tensor* t = ir::ConstantOf(v)) return t->shape();
  if (!v->type.has_shape || !v->type.opaque.empty()) return std::nullopt;
  ir::Shape s;
  for (const ir::Dim& d : v->type.dims) {
    if (!d.known()) return std::nullopt;
    s.push_back(d.value);
  }
  return s;
}

const std::set<std::string>& SameRankOps() {
  static const std::set<std::string> ops = {
      "Relu", "Sigmoid", "Tanh", "Exp", "Log", "Sqrt", "Erf", "Neg", "Abs", "Softmax",
      "LogSoftmax", "LayerNormalization", "Identity", "Dropout", "Cast", "Silu", "Clip", "Pad",
      "Slice", "Concat", "Split", "CumSum", "Transpose", "Reciprocal", "LeakyRelu", "Softplus", "Not",
      "Sign", "Floor", "Ceil", "Round", "Conv", "Trilu", "IsNaN"};
  return ops;
}

const std::set<std::string>& BroadcastOps() {
  static const std::set<std::string> ops = {
      "Add", "Sub", "Mul", "Div", "Pow", "Where", "Sum", "Max", "Min", "Mean", "Equal", "Less",
      "Greater", "LessOrEqual", "GreaterOrEqual", "And", "Or", "Xor", "Mod"};
  return ops;
}

}  // namespace

// --- Builder: shapes and ranks ---

ir::Value* Builder::ShapeOf(ir::Value* v) {
  auto it = shapes_.find(v);
  if (it != shapes_.end()) return it->second;
  ir::Value* s;
  if (auto shape = ShapeFacts(v)) {
    s = Constant("ints" + ir::ShapeStr(*shape),
                 ir::Tensor::FromVector(ir::DType::Int64, {static_cast<int64_t>(shape->size())}, *shape));
  } else {
    s = Emit("grad/" + v->name, "Shape", {v}, 1, "")->outputs[0];
  }
  shapes_[v] = s;
  return s;
}

std::optional<int> Builder::Rank(ir::Value* v) {
  if (!v) return std::nullopt;
  if (auto s = ShapeFacts(v)) return static_cast<int>(s->size());
  if (v->type.has_shape && v->type.opaque.empty()) return static_cast<int>(v->type.dims.size());
  auto memo = ranks_.find(v);
  if (memo != ranks_.end()) return memo->second;
  ranks_[v] = std::nullopt;  // cycle guard
  std::optional<int> r;
  const ir::Node* n = v->producer;
  if (n && n->domain.empty()) {
    const std::string& op = n->op_type;
    auto in = [&](int i) { return Rank(n->input(i)); };
    auto ints = [&](int i) { return TensorInts(ir::ConstantOf(n->input(i))); };
    if (SameRankOps().count(op)) {
      r = in(0);
    } else if (BroadcastOps().count(op)) {
      int m = 0;
      for (int i = 0; i < n->num_inputs(); ++i) {
        auto ri = in(i);
        if (!ri) return std::nullopt;
        m = std::max(m, *ri);
      }
      r = m;
    } else if (op == "MatMul") {
      auto ra = in(0), rb = in(1);
      if (ra && rb) r = *ra == 1 ? *rb - 1 : *rb == 1 ? *ra - 1 : std::max(*ra, *rb);
    } else if (op == "Gemm" || op == "Flatten") {
      r = 2;
    } else if (op == "Reshape" || op == "ConstantOfShape") {
      if (auto len = Length1D(n->input(op == "Reshape" ? 1 : 0))) r = static_cast<int>(*len);
    } else if (op == "Expand") {
      auto rx = in(0);
      auto len = Length1D(n->input(1));
      if (rx && len) r = std::max<int>(*rx, static_cast<int>(*len));
    } else if (op == "Unsqueeze" || op == "Squeeze") {
      auto axes = n->input(1) ? ints(1) : std::optional<std::vector<int64_t>>(n->attr_ints("axes"));
      auto rx = in(0);
      if (rx && axes && !(op == "Squeeze" && axes->empty()))
        r = *rx + (op == "Unsqueeze" ? 1 : -1) * static_cast<int>(axes->size());
    } else if (op == "Gather") {
      auto rd = in(0), ri = in(1);
      if (rd && ri) r = *rd - 1 + *ri;
    } else if (op.rfind("Reduce", 0) == 0) {
      auto rx = in(0);
      auto axes = n->input(1) ? ints(1) : std::optional<std::vector<int64_t>>(n->attr_ints("axes"));
      if (rx && n->attr_int("keepdims", 1)) r = rx;
      else if (rx && axes) r = axes->empty() ? 0 : *rx - static_cast<int>(axes->size());
    } else if (op == "Shape" || op == "Range") {
      r = 1;
    } else if (op == "Size") {
      r = 0;
    }
  }
  ranks_[v] = r;
  return r;
}

std::optional<int64_t> Builder::Length1D(ir::Value* v) {
  if (!v) return std::nullopt;
  if (auto s = ShapeFacts(v)) return s->size() == 1 ? std::optional<int64_t>((*s)[0]) : std::nullopt;
  const ir::Node* n = v->producer;
  if (!n || !n->domain.empty()) return std::nullopt;
  const std::string& op = n->op_type;
  if (op == "Shape") {
    auto r = Rank(n->input(0));
    if (!r) return std::nullopt;
    auto clampd = [&](int64_t a) { return std::clamp<int64_t>(a < 0 ? a + *r : a, 0, *r); };
    const ir::Attribute* end = n->attr("end");
    return std::max<int64_t>(0, (end ? clampd(end->i) : *r) - clampd(n->attr_int("start", 0)));
  }
  if (op == "Concat") {
    int64_t total = 0;
    for (ir::Value* in : n->inputs) {
      auto len = Length1D(in);
      if (!len) return std::nullopt;
      total += *len;
    }
    return total;
  }
  if (op == "Unsqueeze") {  // a scalar made 1-D
    auto r = Rank(n->input(0));
    return r && *r == 0 ? std::optional<int64_t>(1) : std::nullopt;
  }
  if (op == "Cast" || op == "Identity" || op == "Neg" || op == "Abs") return Length1D(n->input(0));
  if (op == "Add" || op == "Sub" || op == "Mul" || op == "Div" || op == "Max" || op == "Min") {
    auto a = Length1D(n->input(0)), b = Length1D(n->input(1));
    if (a && b && (*a == *b || *b == 1)) return a;
    if (a && b && *a == 1) return b;
  }
  return std::nullopt;
}

// --- RuleContext ---

int64_t RuleContext::opset() const { return b_.options().opset; }
ir::DType RuleContext::dtype() const { return b_.dtype(); }

ir::Value* RuleContext::G(int i) {
  ir::Value* y = node_.output(i);
  return y ? b_.Accumulated(y) : nullptr;
}

ir::Value* RuleContext::GOrZeros(int i) {
  if (ir::Value* g = G(i)) return g;
  ir::Node* z = Emit("ConstantOfShape", {ShapeOf(Y(i))});
  z->set_attr_tensor("value", ScalarTensor(dtype(), 0.0).Reshaped({1}));
  return z->outputs[0];
}

bool RuleContext::Needs(int i) const { return b_.Needed(node_.input(i)); }

void RuleContext::SetGrad(int i, ir::Value* g) {
  if (g && Needs(i)) b_.AddContribution(node_.input(i), g);
}

Status RuleContext::Fail(const std::string& message) const {
  return Error("grad: " + Builder::Label(node_) + ": " + message);
}

ir::Node* RuleContext::Emit(const std::string& op, const std::vector<ir::Value*>& inputs,
                            int num_outputs, const std::string& domain) {
  std::string base = node_.name.empty() ? node_.op_type : node_.name;
  return b_.Emit("grad/" + base, op, inputs, num_outputs, domain);
}

ir::Value* RuleContext::Scalar(double v) {
  return b_.Constant(std::string("scalar:") + ir::DTypeName(dtype()) + ":" + std::to_string(v),
                     ScalarTensor(dtype(), v));
}

ir::Value* RuleContext::Ints(const std::vector<int64_t>& v) {
  return b_.Constant("ints" + ir::ShapeStr(v),
                     ir::Tensor::FromVector(ir::DType::Int64, {static_cast<int64_t>(v.size())}, v));
}

ir::Value* RuleContext::ShapeOf(ir::Value* v) { return b_.ShapeOf(v); }

ir::Value* RuleContext::SumToShape(ir::Value* g, ir::Value* like, ir::Value* x) {
  auto sl = StaticShape(like), sx = StaticShape(x);
  if (sl && sx && *sl == *sx) return g;
  return Op("ReduceSumToShape", {g, ShapeOf(x)}, "ai.asrc");
}

ir::Value* RuleContext::ReduceSum(ir::Value* x, const std::vector<int64_t>& axes, bool keepdims) {
  std::vector<ir::Value*> in = {x};
  if (!axes.empty()) in.push_back(Ints(axes));
  ir::Node* n = Emit("ReduceSum", in);
  n->set_attr_int("keepdims", keepdims ? 1 : 0);
  return n->outputs[0];
}

ir::Value* RuleContext::ReduceMean(ir::Value* x, const std::vector<int64_t>& axes, bool keepdims) {
  bool as_input = opset() >= 18;
  std::vector<ir::Value*> in = {x};
  if (as_input && !axes.empty()) in.push_back(Ints(axes));
  ir::Node* n = Emit("ReduceMean", in);
  if (!as_input && !axes.empty()) n->set_attr_ints("axes", axes);
  n->set_attr_int("keepdims", keepdims ? 1 : 0);
  return n->outputs[0];
}

ir::Value* RuleContext::Unsqueeze(ir::Value* x, const std::vector<int64_t>& axes) {
  return Op("Unsqueeze", {x, Ints(axes)});
}

ir::Value* RuleContext::Transpose(ir::Value* x, const std::vector<int64_t>& perm) {
  ir::Node* n = Emit("Transpose", {x});
  n->set_attr_ints("perm", perm);
  return n->outputs[0];
}

std::optional<int> RuleContext::Rank(ir::Value* v) const { return b_.Rank(v); }
std::optional<ir::Shape> RuleContext::StaticShape(ir::Value* v) const { return ShapeFacts(v); }

std::optional<std::vector<int64_t>> RuleContext::ConstInts(ir::Value* v) const {
  return TensorInts(ir::ConstantOf(v));
}

std::optional<double> RuleContext::ConstScalar(ir::Value* v) const {
  const ir::Tensor* t = ir::ConstantOf(v);
  if (!t || t->numel() != 1) return std::nullopt;
  switch (t->dtype()) {
    case ir::DType::Float32: return t->data<float>()[0];
    case ir::DType::Float64: return t->data<double>()[0];
    case ir::DType::Float16: return ir::HalfToFloat(t->data<uint16_t>()[0]);
    default: return std::nullopt;
  }
}

// --- the table ---

void RuleTable::Add(const std::string& domain, const std::string& op, GradRule rule) {
  table_[{domain, op}] = std::move(rule);
}

const GradRule* RuleTable::Find(const std::string& domain, const std::string& op) const {
  auto it = table_.find({domain, op});
  return it == table_.end() ? nullptr : &it->second;
}

std::vector<std::string> RuleTable::Ops() const {
  std::vector<std::string> out;
  for (const auto& [key, rule] : table_) out.push_back(key.first + "::" + key.second);
  return out;
}

const RuleTable& RuleTable::Global() {
  static const RuleTable* table = [] {
    auto* t = new RuleTable();
    RegisterAllRules(*t);
    return t;
  }();
  return *table;
}

bool OnlyInput0(const ir::Node&, int input) { return input == 0; }

}  // namespace asrc::grad
