#include "passes/cleanup.h"

#include <algorithm>

#include "passes/driver.h"
#include "passes/util.h"
#include "runtime/kernel.h"
#include "runtime/session.h"

namespace asrc::passes {

namespace {

bool HasSubgraph(const ir::Node* n) {
  for (const auto& a : n->attributes) {
    if (a.g || !a.graphs.empty()) return true;
  }
  return false;
}

bool IsRandom(const std::string& op) {
  return op.rfind("Random", 0) == 0 || op == "Multinomial" || op == "Bernoulli";
}

// Constant node -> initializer. Only the "value" form (value_float etc. are rare in exports).
int ConstantsToInitializers(ir::Graph& g) {
  int n = 0;
  for (ir::Node* node : g.nodes()) {
    if (node->op_type != "Constant" || !node->domain.empty()) continue;
    const ir::Attribute* a = node->attr("value");
    if (!a || a->kind != ir::Attribute::Kind::Tensor || node->outputs.size() != 1) continue;
    ir::Value* out = node->outputs[0];
    if (!out || IsGraphOutput(g, out)) continue;
    ir::Value* init = AddConst(g, out->name, a->t);
    g.ReplaceAllUses(out, init);
    g.RemoveNode(node);
    ++n;
  }
  return n;
}

int RemoveIdentities(ir::Graph& g, pass::PassContext& ctx) {
  int n = 0;
  for (ir::Node* node : g.nodes()) {
    if (!node->domain.empty() || node->inputs.empty() || !node->input(0)) continue;
    bool identity = false;
    if (node->op_type == "Identity") identity = true;
    if (node->op_type == "Dropout") {
      bool mask_used = node->output(1) && (!node->output(1)->uses.empty() ||
                                            IsGraphOutput(g, node->output(1)));
      // training_mode input (opset 12+) must be absent or a constant false.
      bool training = false;
      if (node->input(2)) {
        const ir::Tensor* t = ConstantOf(node->input(2));
        training = !t || (t->numel() > 0 && t->raw()[0] != 0);
      }
      identity = !mask_used && !training;
    }
    if (node->op_type == "Cast") {
      const ir::Value* in = node->input(0);
      identity = in->type.has_type && in->type.dtype != ir::DType::Undefined &&
                 static_cast<int64_t>(in->type.dtype) == node->attr_int("to", -1);
    }
    if (!identity) continue;
    ir::Value* out = node->output(0);
    if (!out) continue;
    if (IsGraphOutput(g, out)) {
      ctx.Bump("skipped_identity_graph_output");
      continue;
    }
    g.ReplaceAllUses(out, node->input(0));
    g.RemoveNode(node);
    ++n;
  }
  return n;
}

// Folded results up to this many bytes more than the inputs they free are always fine (shape
// arithmetic, scalars).
constexpr size_t kFoldGrowthAllowance = 1024;

// Bytes of the initializers that only `node` reads: what folding it removes from the model.
size_t FreedBytes(const ir::Graph& g, const ir::Node* node) {
  size_t freed = 0;
  std::vector<const ir::Value*> seen;
  for (const ir::Value* in : node->inputs) {
    if (!in || !in->initializer || in->owner != &g || IsGraphOutput(g, in) ||
        std::find(seen.begin(), seen.end(), in) != seen.end() ||
        std::find(g.inputs.begin(), g.inputs.end(), in) != g.inputs.end())
      continue;
    seen.push_back(in);
    bool only_here = true;
    for (const ir::Use& u : in->uses) only_here &= u.node == node;
    if (only_here) freed += in->initializer->nbytes();
  }
  return freed;
}

Result<int> FoldConstants(ir::Graph& g, int64_t opset, size_t max_bytes, pass::PassContext& ctx) {
  int folded = 0;
  ASRC_ASSIGN_OR_RETURN(std::vector<ir::Node*> order, g.TopoOrder());
  const auto& registry = runtime::KernelRegistry::Global();
  for (ir::Node* node : order) {
    if (!node->domain.empty() || node->op_type == "Constant" || HasSubgraph(node) ||
        IsRandom(node->op_type) || node->outputs.empty()) {
      continue;
    }
    bool any_graph_output = false;
    for (ir::Value* o : node->outputs) any_graph_output |= o && IsGraphOutput(g, o);
    if (any_graph_output) continue;

    std::vector<ir::Tensor> results;
    if ((node->op_type == "Shape" || node->op_type == "Size") && node->input(0) &&
        !ConstantOf(node->input(0))) {
      // Static shape known in full (value_info from the exporter's shape inference).
      const ir::TypeInfo& t = node->input(0)->type;
      if (!t.has_shape || !t.opaque.empty()) continue;
      std::vector<int64_t> dims;
      bool known = true;
      for (const auto& d : t.dims) {
        known &= d.known();
        dims.push_back(d.value);
      }
      if (!known) continue;
      if (node->op_type == "Size") {
        int64_t n = 1;
        for (int64_t d : dims) n *= d;
        results.push_back(ir::Tensor::ScalarInt64(n));
      } else {
        int64_t r = static_cast<int64_t>(dims.size());
        int64_t start = node->attr_int("start", 0), end = node->attr_int("end", r);
        if (start < 0) start += r;
        if (end < 0) end += r;
        start = std::clamp<int64_t>(start, 0, r);
        end = std::clamp<int64_t>(end, start, r);
        std::vector<int64_t> sl(dims.begin() + start, dims.begin() + end);
        results.push_back(ir::Tensor::FromVector(ir::DType::Int64,
                                                 {static_cast<int64_t>(sl.size())}, sl));
      }
      ctx.Bump("shapes_folded");
    } else {
      bool all_const = true;
      for (ir::Value* in : node->inputs) all_const &= !in || ConstantOf(in) != nullptr;
      if (!all_const || !registry.Has("", node->op_type)) continue;
      ir::Graph tmp("fold");
      std::vector<ir::Value*> ins;
      for (ir::Value* in : node->inputs) {
        ins.push_back(in ? tmp.AddInitializer(in->name, *ConstantOf(in)) : nullptr);
      }
      std::vector<std::string> outs;
      for (ir::Value* o : node->outputs) outs.push_back(o ? o->name : "");
      ir::Node* copy = tmp.AddNode(node->op_type, ins, outs, node->name, "");
      copy->attributes = node->attributes;
      for (ir::Value* o : copy->outputs) {
        if (o) tmp.outputs.push_back(o);
      }
      auto session = runtime::Session::Create(tmp, opset);
      if (!session.ok()) {
        ctx.Bump("skipped_fold_unsupported");
        continue;
      }
      Status st = session.value()->Run({}, &results);
      if (!st.ok()) {
        ctx.Bump("skipped_fold_failed");
        continue;
      }
    }
    size_t bytes = 0;
    for (const auto& t : results) bytes += t.nbytes();
    if (bytes > max_bytes) {
      ctx.Bump("skipped_fold_too_large");
      continue;
    }
    // Folding must not make the model larger: a Transpose of a weight that another node also
    // reads would store it twice, a Cast of float16 weights would store them as float32.
    if (bytes > FreedBytes(g, node) + kFoldGrowthAllowance) {
      ctx.Bump("skipped_fold_grows_model");
      continue;
    }
    size_t k = 0;
    for (ir::Value* o : node->outputs) {
      if (!o) continue;
      if (k >= results.size()) break;
      ir::Value* init = AddConst(g, o->name, std::move(results[k++]));
      g.ReplaceAllUses(o, init);
    }
    g.RemoveNode(node);
    ++folded;
  }
  return folded;
}

}  // namespace

std::vector<pass::OptionSpec> CleanupPass::options() const {
  return {
      {"dead_code", true, "remove nodes and initializers nobody reads", {}},
      {"identity", true, "remove Identity, inference Dropout and same-type Cast", {}},
      {"fold_constants", true,
       "evaluate nodes whose inputs are all constant (and Shape/Size of fully known static "
       "shapes) once, and store the results as initializers", {}},
      {"max_folded_mb", 16.0, "do not fold a node whose results exceed this many MB", {}, 0, 1e6},
  };
}

Result<bool> CleanupPass::Run(ir::Model& model, pass::PassContext& ctx) {
  const size_t max_bytes = static_cast<size_t>(ctx.GetFloat("max_folded_mb") * 1e6);
  RewriteOptions sweep_here;
  sweep_here.remove_dead_code = false;  // counted below, and optional
  return RewriteGraphs(
      model, {"*"},
      [&](GraphSite& site) -> Result<bool> {
        ir::Graph& g = site.graph;
        int n = ConstantsToInitializers(g);
        ctx.Bump("constants_to_initializers", n);
        bool changed = n > 0;
        if (ctx.GetBool("identity")) {
          n = RemoveIdentities(g, ctx);
          ctx.Bump("identities_removed", n);
          changed |= n > 0;
        }
        if (ctx.GetBool("fold_constants")) {
          auto r = FoldConstants(g, site.file.opset(""), max_bytes, ctx);
          if (!r.ok()) return r.status().With("graph '" + site.file.role + "'");
          ctx.Bump("nodes_folded", r.value());
          changed |= r.value() > 0;
        }
        if (ctx.GetBool("dead_code")) {
          n = RemoveDeadCode(g);
          ctx.Bump("dead_removed", n);
          changed |= n > 0;
        }
        return changed;
      },
      sweep_here);
}

}  // namespace asrc::passes
