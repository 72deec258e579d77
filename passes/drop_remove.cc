// Removing blocks found by FindBlocks (drop_layers.h): the stream is rewired around them, their
// streaming caches shrink or leave, and model.json follows.
#include <algorithm>

#include "passes/drop_layers.h"
#include "passes/util.h"

namespace asrc::passes::drop {

namespace {

int OwnerOf(const BlockStack& s, const ir::Node* n) {
  auto f = n ? s.owner.find(n) : s.owner.end();
  return f == s.owner.end() ? -1 : f->second;
}

// Gather(input, constant scalar index, axis 0): the layer index it reads, else -1.
int64_t LayerIndex(const ir::Node* n, const ir::Value* input) {
  if (n->op_type != "Gather" || !n->domain.empty() || n->input(0) != input || n->attr_int("axis", 0) != 0) return -1;
  const ir::Tensor* t = ConstantOf(n->input(1));
  if (!t || t->numel() != 1 || !input->type.has_shape || input->type.dims.empty() || !input->type.dims[0].known()) return -1;
  int64_t i = t->dtype() == ir::DType::Int64 ? t->data<int64_t>()[0]
              : t->dtype() == ir::DType::Int32 ? t->data<int32_t>()[0] : -1 - (1LL << 40);
  if (i < 0) i += input->type.dims[0].value;
  return i >= 0 && i < input->type.dims[0].value ? i : -1;
}

// What happens to the graph's inputs and outputs besides the stream ends.
struct CachePlan {
  // Stacked inputs: kept layer indices in order (old index -> new index by position).
  std::map<ir::Value*, std::vector<int64_t>> stacked_in;
  // Stacked outputs: the Concat and the positions of its inputs that stay.
  std::map<ir::Value*, std::vector<int>> stacked_out;
  std::vector<ir::Value*> drop_inputs, drop_outputs;
};

Status PlanInputs(const ir::Graph& g, const BlockStack& s, const std::set<int>& drop, CachePlan* plan) {
  for (ir::Value* in : g.inputs) {
    if (in == s.stream_in || in->uses.empty()) continue;
    std::set<int> owners;
    std::map<int64_t, std::set<int>> by_index;
    bool stacked = true;
    for (const ir::Use& u : in->uses) {
      owners.insert(OwnerOf(s, u.node));
      const int64_t i = LayerIndex(u.node, in);
      if (i < 0) stacked = false;
      else by_index[i].insert(OwnerOf(s, u.node));
    }
    const bool touched = std::any_of(owners.begin(), owners.end(), [&](int o) { return drop.count(o); });
    if (!touched) continue;
    if (owners.size() == 1) {
      plan->drop_inputs.push_back(in);
      continue;
    }
    if (!stacked) {
      return Error("drop-layers: graph '" + s.graph + "': input '" + in->name +
                   "' is read by a dropped block and by other nodes, not as one Gather(axis 0) slice per block");
    }
    std::vector<int64_t> kept;
    for (int64_t i = 0; i < in->type.dims[0].value; ++i) {
      auto f = by_index.find(i);
      if (f == by_index.end()) {
        kept.push_back(i);
        continue;
      }
      const bool dropped = drop.count(*f->second.begin()) > 0;
      if (f->second.size() != 1 && std::any_of(f->second.begin(), f->second.end(), [&](int o) { return drop.count(o); })) {
        return Error("drop-layers: graph '" + s.graph + "': slice " + std::to_string(i) + " of input '" + in->name +
                     "' is read by a dropped block and by other nodes");
      }
      if (!dropped) kept.push_back(i);
    }
    plan->stacked_in[in] = kept;
  }
  return Status::Ok();
}

Status PlanOutputs(const ir::Graph& g, const BlockStack& s, const std::set<int>& drop, CachePlan* plan) {
  for (ir::Value* out : g.outputs) {
    if (out == s.stream_out || !out->producer) continue;
    ir::Node* p = out->producer;
    const int owner = OwnerOf(s, p);
    if (drop.count(owner)) {
      plan->drop_outputs.push_back(out);
      continue;
    }
    if (p->op_type != "Concat" || !p->domain.empty() || p->attr_int("axis", 0) != 0) continue;
    std::vector<int> kept;
    for (int i = 0; i < p->num_inputs(); ++i) {
      const ir::Value* v = p->input(i);
      if (!v || !drop.count(OwnerOf(s, v->producer))) kept.push_back(i);
    }
    if (static_cast<int>(kept.size()) != p->num_inputs()) plan->stacked_out[out] = kept;
  }
  return Status::Ok();
}

// Every value a dropped block computes must be read only inside dropped blocks, or be the
// block's output (rewired), or a piece of a stacked cache output (removed).
Status CheckEscapes(const ir::Graph& g, const BlockStack& s, const std::set<int>& drop, const CachePlan& plan) {
  std::set<const ir::Value*> outs;
  for (int b : drop) outs.insert(s.blocks[b].out);
  for (ir::Node* n : g.nodes()) {
    if (drop.count(OwnerOf(s, n))) continue;
    const bool stack = n->outputs.size() == 1 && plan.stacked_out.count(n->outputs[0]);
    for (ir::Value* v : n->inputs) {
      if (!v || !v->producer || !drop.count(OwnerOf(s, v->producer)) || outs.count(v) || stack) continue;
      return Error("drop-layers: graph '" + s.graph + "': node '" + NodeLabel(n) + "' reads '" + v->name +
                   "' from inside block " + std::to_string(OwnerOf(s, v->producer)) +
                   ", which is not the block's output nor a stacked cache");
    }
  }
  return Status::Ok();
}

void SetDim0(ir::Value* v, int64_t n) {
  if (v->type.has_shape && !v->type.dims.empty()) v->type.dims[0] = ir::Dim{n, ""};
}

// Points each kept Gather of a stacked input at its new index (one constant per index and type,
// shared by all caches).
void Renumber(ir::Graph& g, ir::Value* in, const std::vector<int64_t>& kept,
              std::map<std::pair<int, int64_t>, ir::Value*>* made) {
  std::vector<ir::Node*> readers;
  for (const ir::Use& u : in->uses) readers.push_back(u.node);
  for (ir::Node* n : readers) {
    const int64_t old = LayerIndex(n, in);
    auto it = std::find(kept.begin(), kept.end(), old);
    if (old < 0 || it == kept.end()) continue;  // a dropped block's Gather: dead code below
    const int64_t now = it - kept.begin();
    const ir::Tensor& t = *ConstantOf(n->input(1));
    if ((t.dtype() == ir::DType::Int64 ? t.data<int64_t>()[0] : t.data<int32_t>()[0]) == now) continue;
    ir::Value*& c = (*made)[{static_cast<int>(t.dtype()) * 8 + t.rank(), now}];
    if (!c) {
      ir::Tensor idx(t.dtype(), t.shape());
      if (t.dtype() == ir::DType::Int64) idx.data<int64_t>()[0] = now;
      else idx.data<int32_t>()[0] = static_cast<int32_t>(now);
      c = AddConst(g, "drop_layers_index_" + std::to_string(now), std::move(idx));
    }
    g.set_input(n, 1, c);
  }
}

// model.json: streaming.cache entries (shape[0] of stacked caches, entries of removed ones),
// info.model_config layer counts and info.params.
void UpdateConfig(ir::Model& model, const std::string& role, const CachePlan& plan,
                  const std::set<std::string>& removed_inputs, int blocks, int dropped, int64_t params_removed) {
  nlohmann::json& c = model.config;
  if (role == "encoder_causal" && c.contains("streaming") && c["streaming"].is_object() &&
      c["streaming"].contains("cache") && c["streaming"]["cache"].is_array()) {
    nlohmann::json kept = nlohmann::json::array();
    for (nlohmann::json e : c["streaming"]["cache"]) {
      const std::string name = e.is_object() ? e.value("input", "") : "";
      const bool gone = removed_inputs.count(name) > 0;
      for (const auto& [v, idx] : plan.stacked_in) {
        if (v->name == name && e.contains("shape") && e["shape"].is_array() && !e["shape"].empty()) {
          e["shape"][0] = static_cast<int64_t>(idx.size());
        }
      }
      if (!gone) kept.push_back(e);
    }
    c["streaming"]["cache"] = kept;
  }
  if (!c.contains("info") || !c["info"].is_object()) return;
  nlohmann::json& info = c["info"];
  const char* key = role == "encoder_causal" ? "causal_layers" : role == "encoder_noncausal" ? "noncausal_layers" : "";
  if (*key && info.contains("model_config") && info["model_config"].is_object() &&
      info["model_config"].value(key, -1) == blocks) {
    info["model_config"][key] = blocks - dropped;
  }
  if (info.contains("params") && info["params"].is_object()) {
    for (const std::string& k : {role, std::string("total")}) {
      if (info["params"].contains(k) && info["params"][k].is_number_integer()) {
        info["params"][k] = info["params"][k].get<int64_t>() - params_removed;
      }
    }
  }
}

}  // namespace

Status DropBlocks(ir::Model& model, const std::string& role, const BlockStack& s, const std::set<int>& drop,
                  pass::PassContext* ctx) {
  ir::Graph* gp = model.graph(role);
  if (!gp) return Error("drop-layers: no graph '" + role + "'");
  ir::Graph& g = *gp;
  const int n = static_cast<int>(s.blocks.size());
  for (int b : drop) {
    if (b < 0 || b >= n) {
      return Error("drop-layers: graph '" + role + "' has " + std::to_string(n) + " blocks (0.." +
                   std::to_string(n - 1) + "); no block " + std::to_string(b));
    }
  }
  if (static_cast<int>(drop.size()) >= n) {
    return Error("drop-layers: graph '" + role + "' has " + std::to_string(n) + " blocks; dropping " +
                 std::to_string(drop.size()) + " would leave none (at least one must stay)");
  }
  if (drop.empty()) return Status::Ok();
  CachePlan plan;
  ASRC_RETURN_IF_ERROR(PlanInputs(g, s, drop, &plan));
  ASRC_RETURN_IF_ERROR(PlanOutputs(g, s, drop, &plan));
  ASRC_RETURN_IF_ERROR(CheckEscapes(g, s, drop, plan));
  const int64_t params_before = g.NumParams();

  for (auto it = drop.rbegin(); it != drop.rend(); ++it) {
    const Block& blk = s.blocks[*it];
    if (IsGraphOutput(g, blk.out)) {
      ir::Node* id = g.AddNode("Identity", {blk.in}, {g.UniqueName(blk.out->name + "_dropped")},
                                g.UniqueName("drop_layers_identity"));
      TakeOverOutput(blk.out->producer, blk.out->producer_output, id, 0);
    } else {
      g.ReplaceAllUses(blk.out, blk.in);
    }
  }
  for (auto& [out, kept] : plan.stacked_out) {
    ir::Node* cat = out->producer;
    std::vector<ir::Value*> inputs;
    for (int i : kept) inputs.push_back(cat->inputs[i]);
    cat->inputs = inputs;
    SetDim0(out, static_cast<int64_t>(kept.size()));
  }
  g.RebuildUses();
  std::map<std::pair<int, int64_t>, ir::Value*> index_consts;
  for (auto& [in, kept] : plan.stacked_in) {
    Renumber(g, in, kept, &index_consts);
    SetDim0(in, static_cast<int64_t>(kept.size()));
  }
  for (ir::Value* v : plan.drop_outputs) g.outputs.erase(std::find(g.outputs.begin(), g.outputs.end(), v));
  g.SortTopologically();
  RemoveDeadCode(g);
  std::set<std::string> removed_inputs;
  for (ir::Value* v : plan.drop_inputs) {
    removed_inputs.insert(v->name);
    if (!v->uses.empty()) return Error("drop-layers: graph '" + role + "': input '" + v->name + "' is still read");
    g.inputs.erase(std::find(g.inputs.begin(), g.inputs.end(), v));
    g.RemoveValue(v);
  }
  ASRC_RETURN_IF_ERROR(g.Verify().With("drop-layers: graph '" + role + "'"));
  const int64_t removed = params_before - g.NumParams();
  UpdateConfig(model, role, plan, removed_inputs, n, static_cast<int>(drop.size()), removed);
  if (ctx) {
    ctx->Bump("blocks_dropped", static_cast<int64_t>(drop.size()));
    ctx->Bump("params_removed", removed);
    ctx->Bump("caches_shrunk", static_cast<int64_t>(plan.stacked_in.size()));
    ctx->Bump("cache_inputs_removed", static_cast<int64_t>(plan.drop_inputs.size()));
    ctx->Bump("cache_outputs_removed", static_cast<int64_t>(plan.drop_outputs.size()));
  }
  return Status::Ok();
}

}  // namespace asrc::passes::drop
