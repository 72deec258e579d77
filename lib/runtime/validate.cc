// Why libonnx's schemas and not a table of our own: they are the specification, version by
// version, for every op; a hand-written table would cover the ops someone thought of.
#include "runtime/validate.h"

#include <algorithm>
#include <map>
#include <set>
#include <onnx/defs/data_type_utils.h>
#include <onnx/defs/schema.h>
#include <string>

namespace asrc::runtime {

namespace {

const char* KindName(int kind) {
  switch (kind) {
    case 1: return "FLOAT";
    case 2: return "INT";
    case 3: return "STRING";
    case 4: return "TENSOR";
    case 5: return "GRAPH";
    case 6: return "FLOATS";
    case 7: return "INTS";
    case 8: return "STRINGS";
    case 9: return "TENSORS";
    case 10: return "GRAPHS";
    case 11: return "SPARSE_TENSOR";
    case 12: return "SPARSE_TENSORS";
    case 13: return "TYPE_PROTO";
    case 14: return "TYPE_PROTOS";
    default: return "UNDEFINED";
  }
}

// The highest default-domain opset libonnx has schemas for.
int64_t SchemaMaxOpset() {
  static const int64_t v = [] {
    const auto& m = onnx::OpSchemaRegistry::DomainToVersionRange::Instance().Map();
    auto it = m.find(onnx::ONNX_DOMAIN);
    return it == m.end() ? int64_t{0} : int64_t{it->second.second};
  }();
  return v;
}

// "tensor(float)" as libonnx's interned type string; nullptr for dtypes it does not know.
onnx::DataType TensorTypeOf(ir::DType dt) {
  try {
    return onnx::Utils::DataTypeUtils::ToType(
        "tensor(" + onnx::Utils::DataTypeUtils::ToDataTypeString(static_cast<int32_t>(dt)) + ")");
  } catch (const std::exception&) {
    return nullptr;
  }
}

std::string FormalName(const onnx::OpSchema& s, size_t i) {
  const auto& f = s.inputs();
  if (f.empty()) return std::to_string(i);
  const auto& p = f[std::min(i, f.size() - 1)];
  return std::to_string(i) + " (" + p.GetName() + ")";
}

bool DefaultDomain(const ir::Node& n) { return n.domain.empty() || n.domain == "ai.onnx"; }

// Ops whose inputs opsets newer than libonnx's schemas made optional (OptionalHasElement-18):
// under such an opset their missing inputs are not errors.
bool OptionalLater(const ir::Node& n) {
  static const std::set<std::string> ops = {"OptionalHasElement"};
  return ops.count(n.op_type) > 0;
}

Status CheckInputs(const ir::Node& n, const onnx::OpSchema& s, bool full,
                   const std::vector<ir::DType>& dtypes) {
  const int count = n.num_inputs();
  if (count < s.min_input() && (full || !OptionalLater(n)))
    return Error("input " + FormalName(s, count) + " is missing: the op needs at least " +
                 std::to_string(s.min_input()) + " inputs, the node has " + std::to_string(count));
  if (full && count > s.max_input())
    return Error("has " + std::to_string(count) + " inputs, the op takes at most " +
                 std::to_string(s.max_input()) + " (opset " + std::to_string(s.SinceVersion()) + ")");
  const auto& formals = s.inputs();
  std::map<std::string, ir::DType> bound;  // type parameter -> first dtype seen
  for (int i = 0; i < count && !formals.empty(); ++i) {
    const auto& f = formals[std::min<size_t>(i, formals.size() - 1)];
    const bool last = static_cast<size_t>(i) >= formals.size() - 1;
    const bool variadic = last && f.GetOption() == onnx::OpSchema::Variadic;
    if (!n.inputs[i]) {
      if (!full && OptionalLater(n)) continue;
      if (f.GetOption() == onnx::OpSchema::Single || (variadic && i < s.min_input()))
        return Error("input " + FormalName(s, i) + " is missing (an empty name where the op requires one)");
      continue;
    }
    if (!full) continue;  // newer opsets may have widened the type constraints
    const ir::DType dt = static_cast<size_t>(i) < dtypes.size() ? dtypes[i] : ir::DType::Undefined;
    if (dt == ir::DType::Undefined) continue;
    onnx::DataType t = TensorTypeOf(dt);
    if (!t || !f.GetTypes().count(t))
      return Error("input " + FormalName(s, i) + " '" + n.inputs[i]->name +
                   "' has dtype " + ir::DTypeName(dt) + ", which the op does not accept there (opset " +
                   std::to_string(s.SinceVersion()) + ")");
    if (variadic && !f.GetIsHomogeneous()) continue;
    auto [it, fresh] = bound.emplace(f.GetTypeStr(), dt);
    if (!fresh && it->second != dt)
      return Error("input " + FormalName(s, i) + " '" + n.inputs[i]->name +
                   "' has dtype " + ir::DTypeName(dt) + ", but an earlier input of type " +
                   f.GetTypeStr() + " has " + ir::DTypeName(it->second));
  }
  return Status::Ok();
}

Status CheckAttributes(const ir::Node& n, const onnx::OpSchema& s, bool full) {
  const auto& known = s.attributes();
  for (const ir::Attribute& a : n.attributes) {
    if (!a.ref_attr_name.empty()) continue;  // bound when a function body is expanded
    auto it = known.find(a.name);
    if (it == known.end() || it->second.type == onnx::AttributeProto::UNDEFINED) continue;
    if (static_cast<int>(a.kind) != static_cast<int>(it->second.type))
      return Error("attribute '" + a.name + "' must be " +
                   KindName(static_cast<int>(it->second.type)) + ", got " +
                   KindName(static_cast<int>(a.kind)));
  }
  if (!full) return Status::Ok();
  for (const auto& [name, attr] : known)
    if (attr.required && !n.attr(name))
      return Error("required attribute '" + name + "' is missing");
  return Status::Ok();
}

// Window geometry of convolutions and pools, whatever their domain (Conv, ConvTranspose, the
// pools, MaxUnpool, Col2Im, QLinearConv, FusedConv, ConvPair's "second_" attributes): kernels
// divide by strides and multiply by dilations, so strides, dilations and kernel_shape must be at
// least 1 and pads and output_padding not negative (onnx_run_fuzzer: a Conv with stride 0 divided
// by zero); each below 2^31 so that no length computed from them overflows. Pad-2's "pads"
// attribute may crop (negative) and is its kernel's to check.
Status CheckWindowAttributes(const ir::Node& n) {
  constexpr int64_t kLimit = int64_t{1} << 31;
  auto ends_with = [](const std::string& s, const std::string& tail) {
    return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
  };
  for (const ir::Attribute& a : n.attributes) {
    if (a.kind != ir::Attribute::Kind::Ints) continue;
    int64_t lo;
    if (ends_with(a.name, "strides") || ends_with(a.name, "dilations") || ends_with(a.name, "kernel_shape"))
      lo = 1;
    else if ((ends_with(a.name, "pads") && n.op_type != "Pad") || ends_with(a.name, "output_padding"))
      lo = 0;
    else
      continue;
    for (int64_t v : a.ints)
      if (v < lo || v >= kLimit)
        return Error("attribute '" + a.name + "' holds " + std::to_string(v) + ", outside [" +
                     std::to_string(lo) + ", 2^31)");
  }
  return Status::Ok();
}

}  // namespace

Status ValidateOpset(const ir::Graph& g, int64_t opset) {
  if (opset >= 1 && opset <= kMaxOpset) return Status::Ok();
  // A graph of other domains' ops only (ai.onnx.preview.training's optimizers) needs no
  // default-domain opset.
  const std::vector<ir::Node*> tree = g.TreeNodes();
  if (opset == 0 && std::none_of(tree.begin(), tree.end(), [](const ir::Node* n) { return DefaultDomain(*n); }))
    return Status::Ok();
  std::string why = "opset " + std::to_string(opset) + " of the default domain " +
                    (opset < 1 ? std::string("(or none imported) is not a valid ONNX opset")
                               : "is newer than any this runtime knows (highest " +
                                     std::to_string(kMaxOpset) + ")");
  return Error("graph '" + g.name + "': " + why);
}

Status ValidateNode(const ir::Node& n, int64_t opset, const std::vector<ir::DType>& input_dtypes) {
  if (!DefaultDomain(n)) return Status::Ok();
  bool full = opset <= SchemaMaxOpset();
  const onnx::OpSchema* s = onnx::OpSchemaRegistry::Schema(
      n.op_type, static_cast<int>(std::min(opset, SchemaMaxOpset())), onnx::ONNX_DOMAIN);
  if (!s) {
    // An op used under an opset older than the op (ConvInteger at opset 6: onnx_run_fuzzer) has
    // no schema there, but its kernel still runs: checked against the op's newest schema, the
    // lenient way (required inputs and outputs, attribute kinds), so no kernel reads a missing
    // input.
    s = onnx::OpSchemaRegistry::Schema(n.op_type, static_cast<int>(SchemaMaxOpset()), onnx::ONNX_DOMAIN);
    if (!s) return Status::Ok();
    full = false;
  }
  ASRC_RETURN_IF_ERROR(CheckInputs(n, *s, full, input_dtypes));
  const int outs = static_cast<int>(n.outputs.size());
  if (outs < s->min_output())  // a kernel writes its outputs: a node without them (onnx_run_fuzzer)
    return Error("has " + std::to_string(outs) + " outputs, the op needs at least " +
                 std::to_string(s->min_output()));
  if (full && outs > s->max_output())
    return Error("has " + std::to_string(outs) + " outputs, the op has at most " +
                 std::to_string(s->max_output()));
  return CheckAttributes(n, *s, full);
}

Status ValidateGraph(const ir::Graph& g, int64_t opset) {
  ASRC_RETURN_IF_ERROR(ValidateOpset(g, opset));
  for (const ir::Node* n : g.nodes()) {
    std::vector<ir::DType> dtypes;
    for (const ir::Value* v : n->inputs)
      dtypes.push_back(!v ? ir::DType::Undefined
                       : v->initializer ? v->initializer->dtype()
                       : v->type.has_type && v->type.opaque.empty() ? v->type.dtype
                                                                    : ir::DType::Undefined);
    Status st = ValidateNode(*n, opset, dtypes);
    if (st.ok()) st = CheckWindowAttributes(*n);
    if (!st.ok())
      return Error("node '" + n->name + "' (" + n->op_type + ") in graph '" + g.name + "': " +
                   st.message());
  }
  return Status::Ok();
}

}  // namespace asrc::runtime
