// Planning: slots, topological order, kernels, constant folding, lifetimes. Running: a flat loop
// over prebuilt steps (no name lookups, no allocation beyond what kernels need).
#include "runtime/session.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <map>
#include <new>
#include <stdexcept>
#include <unordered_map>
#include <unordered_set>

#include "runtime/fusion.h"
#include "runtime/session_impl.h"
#include "runtime/validate.h"

namespace asrc::runtime {

namespace {

void CollectGraphs(const ir::Graph& g, std::unordered_set<const ir::Graph*>& out) {
  out.insert(&g);
  for (ir::Node* n : g.nodes())
    for (const auto& a : n->attributes) {
      if (a.g) CollectGraphs(*a.g, out);
      for (const auto& sg : a.graphs)
        if (sg) CollectGraphs(*sg, out);
    }
}

void CollectReads(const ir::Graph& g, const std::unordered_set<const ir::Graph*>& inside,
                  std::unordered_set<const ir::Value*>& seen,
                  std::vector<const ir::Value*>& out) {
  auto visit = [&](const ir::Value* v) {
    if (v && !inside.count(v->owner) && seen.insert(v).second) out.push_back(v);
  };
  for (ir::Node* n : g.nodes()) {
    for (const ir::Value* v : n->inputs) visit(v);
    for (const auto& a : n->attributes) {
      if (a.g) CollectReads(*a.g, inside, seen, out);
      for (const auto& sg : a.graphs)
        if (sg) CollectReads(*sg, inside, seen, out);
    }
  }
  for (const ir::Value* v : g.outputs) visit(v);
}

bool HasSubgraphs(const ir::Node& n) {
  for (const auto& a : n.attributes)
    if (a.g || !a.graphs.empty()) return true;
  return false;
}

std::string NodeLabel(const ir::Node& n) {
  return "node '" + n.name + "' (" + n.op_type + ")";
}

// Kernels allocate through ir::Tensor and ir::Buffer, which throw over the memory budget
// (ir/tensor.h) or when the system has no memory left: an error here, which the caller prefixes
// with the node, instead of an uncaught exception.
template <class F>
auto Guarded(F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const std::bad_alloc& e) {
    return Error(std::string("out of memory: ") + e.what());
  } catch (const std::length_error& e) {
    return Error(std::string("out of memory: ") + e.what());
  }
}

// The profiler's clock in ms: steady wall time, or the process's CPU time (all threads).
double ProfileClockMs(bool cpu) {
  if (cpu) {
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
  }
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Runs a kernel chosen per call by the actual dtype of input 0, for ops registered only for
// specific dtypes when the static dtype is unknown at plan time.
class DeferredKernel : public Kernel {
 public:
  DeferredKernel(KernelInit init, std::string domain)
      : init_(std::move(init)), domain_(std::move(domain)) {}
  Status Run(KernelContext& ctx) override {
    ir::DType dt = ctx.in(0) ? ctx.in(0)->dtype() : ir::DType::Undefined;
    if (dt != last_dtype_ || !last_) {
      auto it = cache_.find(dt);
      if (it == cache_.end()) {
        const KernelFactory* f =
            KernelRegistry::Global().Find(domain_, init_.node->op_type, dt);
        if (!f)
          return Error(std::string("unsupported dtype ") + ir::DTypeName(dt) + " for op '" +
                       init_.node->op_type + "'");
        ASRC_ASSIGN_OR_RETURN(auto k, (*f)(init_));
        it = cache_.emplace(dt, std::move(k)).first;
      }
      last_ = it->second.get();
      last_dtype_ = dt;
    }
    return last_->Run(ctx);
  }

 private:
  KernelInit init_;
  std::string domain_;
  std::map<ir::DType, std::unique_ptr<Kernel>> cache_;
  Kernel* last_ = nullptr;
  ir::DType last_dtype_ = ir::DType::Undefined;
};

}  // namespace

std::vector<const ir::Value*> OuterReads(const ir::Graph& g) {
  std::unordered_set<const ir::Graph*> inside;
  CollectGraphs(g, inside);
  std::unordered_set<const ir::Value*> seen;
  std::vector<const ir::Value*> out;
  CollectReads(g, inside, seen, out);
  return out;
}

std::vector<const ir::Value*> NodeOuterReads(const ir::Node& n) {
  std::unordered_set<const ir::Value*> seen;
  std::vector<const ir::Value*> out;
  for (const auto& a : n.attributes) {
    std::vector<const ir::Graph*> gs;
    if (a.g) gs.push_back(a.g.get());
    for (const auto& sg : a.graphs)
      if (sg) gs.push_back(sg.get());
    for (const ir::Graph* g : gs)
      for (const ir::Value* v : OuterReads(*g))
        if (seen.insert(v).second) out.push_back(v);
  }
  return out;
}

// Plans one graph into a SessionImpl: each phase a method over the planner's shared state (the
// slot of every value, the constants, the subgraph reads of control-flow nodes).
class SessionPlanner {
 public:
  static Result<std::unique_ptr<SessionImpl>> Plan(const ir::Graph& g, int64_t opset,
                                                   const SessionOptions& options,
                                                   const std::vector<const ir::Value*>& outer);

 private:
  SessionPlanner(const ir::Graph& g, int64_t opset, const SessionOptions& options)
      : g_(g), opset_(opset), options_(options), gname_("graph '" + g.name + "'"),
        s_(new SessionImpl()) {}

  Status CheckValueKinds() const;
  // SessionOptions::taps as values of g (repeats dropped); fills s's tap names and observer.
  Result<std::vector<const ir::Value*>> ResolveTaps();
  // One slot per value: feeds (graph inputs, then `outer`), constants, node outputs.
  void AssignSlots(const std::vector<const ir::Value*>& outer);
  int AddSlot(const ir::Value* v);
  // A node's inputs followed by the outer-scope values its subgraphs read.
  std::vector<const ir::Value*> AllInputs(const ir::Node* n) const;
  // Node inputs and graph outputs must be a feed, a constant or a node output of this graph.
  Status CheckDefined() const;
  // Fuses chains of `order` (fusion.h) unless disabled by options or ASRC_NO_FUSE.
  std::vector<ir::Node*> Fuse(std::vector<ir::Node*> order,
                              const std::vector<const ir::Value*>& tapped);
  // A kernel for node n, or an error naming the op, domain, opset and node.
  Result<std::unique_ptr<Kernel>> MakeKernel(ir::Node* n, KernelInit& init, bool& all_const);
  // Appends a step for n, or runs it now when all its inputs are constant (constant folding).
  Status PlanNode(ir::Node* n);
  Status FoldStep(SessionImpl::Step& step, const std::vector<const ir::Value*>& ins);
  // Each slot released after its last reader; graph outputs and constants are kept.
  void PlanLifetimes();
  // Lists each tap to be shown at the start of a run (feeds, constants) or after its step.
  Status PlaceTaps(const std::vector<const ir::Value*>& tapped);

  const ir::Graph& g_;
  const int64_t opset_;
  const SessionOptions& options_;
  const std::string gname_;
  std::unique_ptr<SessionImpl> s_;
  std::unordered_map<const ir::Value*, int> slot_of_;
  std::vector<const ir::Value*> slot_value_;
  std::vector<std::pair<int, const ir::Tensor*>> consts_;
  std::unordered_map<const ir::Node*, std::vector<const ir::Value*>> implicit_;
};

Result<std::unique_ptr<SessionImpl>> SessionImpl::Create(
    const ir::Graph& g, int64_t opset, const SessionOptions& options,
    const std::vector<const ir::Value*>& outer) {
  return SessionPlanner::Plan(g, opset, options, outer);
}

Result<std::unique_ptr<SessionImpl>> SessionPlanner::Plan(
    const ir::Graph& g, int64_t opset, const SessionOptions& options,
    const std::vector<const ir::Value*>& outer) {
  SessionPlanner p(g, opset, options);
  SessionImpl& s = *p.s_;
  s.graph_ = &g;
  s.threads_ = std::max(1, options.threads);
  const char* prof = std::getenv("ASRC_PROFILE");
  s.profile_ = prof && *prof && std::string(prof) != "0";
  s.profile_level_ = s.profile_ ? std::atoi(prof) : 0;
  const char* clock = std::getenv("ASRC_PROFILE_CLOCK");
  s.profile_cpu_ = s.profile_ && clock && std::string(clock) == "cpu";
  if (s.threads_ > 1) s.own_pool_ = std::make_unique<ThreadPool>(s.threads_);

  ASRC_RETURN_IF_ERROR(p.CheckValueKinds());
  // Taps are planned as graph outputs are (never fused away), then shown to the observer.
  ASRC_ASSIGN_OR_RETURN(std::vector<const ir::Value*> tapped, p.ResolveTaps());
  p.AssignSlots(outer);
  ASRC_RETURN_IF_ERROR(p.CheckDefined());
  // Every node as its ONNX schema says, before any kernel sees it (runtime/validate.h).
  ASRC_RETURN_IF_ERROR(ValidateGraph(g, opset));
  // The IR's topological order: stable, storage order where valid.
  ASRC_ASSIGN_OR_RETURN(std::vector<ir::Node*> order, g.TopoOrder());
  order = p.Fuse(std::move(order), tapped);

  s.slots_.assign(p.slot_value_.size(), ir::Tensor());
  s.is_const_.assign(p.slot_value_.size(), false);
  for (auto& [id, t] : p.consts_) {
    s.slots_[id] = *t;
    s.is_const_[id] = true;
  }
  for (ir::Node* n : order) ASRC_RETURN_IF_ERROR(p.PlanNode(n));
  // Fix the outputs pointer after the moves of PlanNode.
  for (auto& st : s.steps_) st.ctx.outputs = &st.outs;
  s.step_ms_.assign(s.steps_.size(), 0.0);
  p.PlanLifetimes();
  ASRC_RETURN_IF_ERROR(p.PlaceTaps(tapped));
  return std::move(p.s_);
}

Status SessionPlanner::CheckValueKinds() const {
  for (const auto* list : {&g_.inputs, &g_.outputs})
    for (const ir::Value* v : *list)
      if (v && v->type.kind == ir::ValueKind::Other)
        return Error(gname_ + ": value '" + v->name +
                     "' has a map or sparse tensor type, which the runtime does not run "
                     "(tensors, sequences and optionals run)");
  return Status::Ok();
}

int SessionPlanner::AddSlot(const ir::Value* v) {
  auto it = slot_of_.find(v);
  if (it != slot_of_.end()) return it->second;
  int id = static_cast<int>(slot_value_.size());
  slot_of_.emplace(v, id);
  slot_value_.push_back(v);
  return id;
}

void SessionPlanner::AssignSlots(const std::vector<const ir::Value*>& outer) {
  for (const ir::Value* v : g_.inputs) {
    if (v->initializer) continue;
    s_->feed_slots_.push_back(AddSlot(v));
    s_->feed_values_.push_back(v);
    s_->input_names_.push_back(v->name);
  }
  for (const ir::Value* v : outer) {
    s_->feed_slots_.push_back(AddSlot(v));
    s_->feed_values_.push_back(v);
  }
  for (const ir::Value* v : g_.initializers)
    if (v->initializer) consts_.emplace_back(AddSlot(v), &*v->initializer);
  for (const ir::Value* v : g_.inputs)
    if (v->initializer && !slot_of_.count(v)) consts_.emplace_back(AddSlot(v), &*v->initializer);
  for (ir::Node* n : g_.nodes()) {
    for (const ir::Value* v : n->outputs)
      if (v) AddSlot(v);
    if (HasSubgraphs(*n)) implicit_[n] = NodeOuterReads(*n);
  }
}

std::vector<const ir::Value*> SessionPlanner::AllInputs(const ir::Node* n) const {
  std::vector<const ir::Value*> in(n->inputs.begin(), n->inputs.end());
  auto it = implicit_.find(n);
  if (it != implicit_.end()) in.insert(in.end(), it->second.begin(), it->second.end());
  return in;
}

Status SessionPlanner::CheckDefined() const {
  for (ir::Node* n : g_.nodes())
    for (const ir::Value* v : AllInputs(n))
      if (v && !slot_of_.count(v))
        return Error(NodeLabel(*n) + " in " + gname_ + ": input '" + v->name +
                     "' is not defined in this graph or its enclosing scope");
  for (const ir::Value* v : g_.outputs)
    if (!v || !slot_of_.count(v))
      return Error(gname_ + ": output '" + (v ? v->name : std::string("?")) +
                   "' is not defined");
  return Status::Ok();
}

std::vector<ir::Node*> SessionPlanner::Fuse(std::vector<ir::Node*> order,
                                            const std::vector<const ir::Value*>& tapped) {
  const char* no_fuse = std::getenv("ASRC_NO_FUSE");
  if (!options_.fuse || (no_fuse && *no_fuse && std::string(no_fuse) != "0")) return order;
  std::unordered_map<const ir::Value*, int> uses;
  for (ir::Node* n : order)
    for (const ir::Value* v : AllInputs(n))
      if (v) ++uses[v];
  std::unordered_set<const ir::Value*> graph_outputs(g_.outputs.begin(), g_.outputs.end());
  graph_outputs.insert(tapped.begin(), tapped.end());
  std::unordered_map<int, const ir::Tensor*> const_of(consts_.begin(), consts_.end());
  FusionInputs fi;
  fi.uses = [&](const ir::Value* v) {
    auto it = uses.find(v);
    return it == uses.end() ? 0 : it->second;
  };
  fi.is_graph_output = [&](const ir::Value* v) { return graph_outputs.count(v) > 0; };
  fi.constant = [&](const ir::Value* v) -> const ir::Tensor* {
    auto it = slot_of_.find(v);
    if (it == slot_of_.end()) return nullptr;
    auto c = const_of.find(it->second);
    return c == const_of.end() ? nullptr : c->second;
  };
  FusionResult fr = FuseNodes(order, fi);
  s_->fused_nodes_ = std::move(fr.owned);
  return std::move(fr.order);
}

Result<std::unique_ptr<Kernel>> SessionPlanner::MakeKernel(ir::Node* n, KernelInit& init,
                                                           bool& all_const) {
  const std::string domain = n->domain == "ai.onnx" ? "" : n->domain;
  init.node = n;
  init.opset = domain.empty() ? opset_ : 1;
  // Dropout draws a new mask on every run in training mode: never folded.
  all_const = !HasSubgraphs(*n) && !(n->op_type == "Dropout" && domain.empty());
  for (const ir::Value* v : n->inputs) {
    const ir::Tensor* c = nullptr;
    ir::DType dt = ir::DType::Undefined;
    if (v) {
      int id = slot_of_.at(v);
      if (s_->is_const_[id]) {
        c = &s_->slots_[id];
        dt = c->dtype();
      } else {
        all_const = false;
        if (v->type.has_type && v->type.opaque.empty()) dt = v->type.dtype;
      }
    }
    init.constant_inputs.push_back(c);
    init.input_dtypes.push_back(dt);
  }
  const KernelRegistry& reg = KernelRegistry::Global();
  const ir::DType key = init.input_dtypes.empty() ? ir::DType::Undefined : init.input_dtypes[0];
  if (const KernelFactory* f = reg.Find(domain, n->op_type, key)) {
    auto k = Guarded([&] { return (*f)(init); });
    if (!k.ok()) return k.status().With(NodeLabel(*n) + " in " + gname_);
    return std::move(k).value();
  }
  if (key == ir::DType::Undefined && reg.Has(domain, n->op_type))
    return std::unique_ptr<Kernel>(std::make_unique<DeferredKernel>(init, domain));
  const std::string where = " (domain '" + domain + "', opset " + std::to_string(init.opset) +
                            ") at node '" + n->name + "' in graph '" + g_.name + "'";
  if (reg.Has(domain, n->op_type))
    return Error(std::string("unsupported dtype ") + ir::DTypeName(key) + " for op '" +
                 n->op_type + "'" + where +
                 " (kernels exist for: " + reg.DTypeNames(domain, n->op_type) + ")");
  return Error("unsupported op '" + n->op_type + "'" + where);
}

Status SessionPlanner::PlanNode(ir::Node* n) {
  KernelInit init;
  bool all_const = false;
  ASRC_ASSIGN_OR_RETURN(std::unique_ptr<Kernel> kernel, MakeKernel(n, init, all_const));
  const std::vector<const ir::Value*> ins = AllInputs(n);
  SessionImpl::Step step;
  step.node = n;
  step.kernel = std::move(kernel);
  step.takes_non_tensors = step.kernel->TakesNonTensors();
  for (const ir::Value* v : ins) step.in_slots.push_back(v ? slot_of_.at(v) : -1);
  for (const ir::Value* v : n->outputs) step.out_slots.push_back(v ? slot_of_.at(v) : -1);
  step.outs.resize(n->outputs.size());
  step.ctx.node = n;
  step.ctx.inputs.assign(ins.size(), nullptr);
  step.ctx.outputs = &step.outs;
  if (all_const && step.kernel->Deterministic()) return FoldStep(step, ins);
  s_->steps_.push_back(std::move(step));
  return Status::Ok();
}

Status SessionPlanner::FoldStep(SessionImpl::Step& step,
                                const std::vector<const ir::Value*>& ins) {
  // Run once now; the outputs become constants of the plan.
  const ir::Node& n = *step.node;
  for (size_t j = 0; j < ins.size(); ++j) {
    step.ctx.inputs[j] = step.in_slots[j] >= 0 ? &s_->slots_[step.in_slots[j]] : nullptr;
    if (step.ctx.inputs[j] && !step.ctx.inputs[j]->is_tensor() && !step.takes_non_tensors)
      return Error(NodeLabel(n) + " in " + gname_ + ": input '" + ins[j]->name + "' is a " +
                   ir::ValueKindName(step.ctx.inputs[j]->kind()) +
                   "; the op takes tensors only");
  }
  Status st = Guarded([&] { return step.kernel->Run(step.ctx); });
  if (!st.ok()) return st.With(NodeLabel(n) + " in " + gname_);
  for (size_t k = 0; k < step.out_slots.size(); ++k) {
    if (step.out_slots[k] < 0) continue;
    s_->slots_[step.out_slots[k]] = std::move(step.outs[k]);
    s_->is_const_[step.out_slots[k]] = true;
  }
  return Status::Ok();
}

void SessionPlanner::PlanLifetimes() {
  SessionImpl& s = *s_;
  std::vector<int> last_use(slot_value_.size(), -1);
  std::vector<bool> keep(slot_value_.size(), false);
  for (const ir::Value* v : g_.outputs) {
    int id = slot_of_.at(v);
    keep[id] = true;
    s.output_slots_.push_back(id);
    s.output_names_.push_back(v->name);
  }
  for (size_t i = 0; i < s.steps_.size(); ++i) {
    for (int id : s.steps_[i].in_slots)
      if (id >= 0) last_use[id] = static_cast<int>(i);
    for (int id : s.steps_[i].out_slots)
      if (id >= 0 && last_use[id] < static_cast<int>(i)) last_use[id] = static_cast<int>(i);
  }
  for (size_t id = 0; id < slot_value_.size(); ++id)
    if (!keep[id] && !s.is_const_[id] && last_use[id] >= 0)
      s.steps_[last_use[id]].release.push_back(static_cast<int>(id));
}

Result<std::vector<const ir::Value*>> SessionPlanner::ResolveTaps() {
  std::vector<const ir::Value*> tapped;
  if (!options_.taps.empty() && !options_.observer)
    return Error(gname_ + ": taps without an observer");
  for (const std::string& name : options_.taps) {
    const ir::Value* v = g_.FindValue(name);
    if (!v)
      return Error(gname_ + ": tap '" + name + "': the graph has no value of that name");
    if (std::find(tapped.begin(), tapped.end(), v) != tapped.end()) continue;
    tapped.push_back(v);
    s_->tap_names_.push_back(name);
  }
  if (!tapped.empty()) s_->observer_ = options_.observer;
  return tapped;
}

Status SessionPlanner::PlaceTaps(const std::vector<const ir::Value*>& tapped) {
  SessionImpl& s = *s_;
  std::unordered_map<int, int> step_of_slot;
  for (size_t i = 0; i < s.steps_.size(); ++i)
    for (int id : s.steps_[i].out_slots)
      if (id >= 0) step_of_slot[id] = static_cast<int>(i);
  for (size_t t = 0; t < tapped.size(); ++t) {
    auto it = slot_of_.find(tapped[t]);
    if (it == slot_of_.end())
      return Error(gname_ + ": tap '" + s.tap_names_[t] +
                   "': no node of the graph computes it and it is no input or initializer");
    const int id = it->second;
    s.tap_slots_.push_back(id);
    auto step = step_of_slot.find(id);
    if (s.is_const_[id] ||
        std::find(s.feed_slots_.begin(), s.feed_slots_.end(), id) != s.feed_slots_.end())
      s.start_taps_.push_back(static_cast<int>(t));
    else if (step != step_of_slot.end())
      s.steps_[step->second].taps.push_back(static_cast<int>(t));
    else
      return Error(gname_ + ": tap '" + s.tap_names_[t] + "' is computed by no planned step");
  }
  return Status::Ok();
}

Status SessionImpl::CheckFeed(const ir::Value& v, const ir::Tensor& feed) const {
  if (!v.type.has_type) return Status::Ok();
  const std::string input = "graph '" + graph_->name + "': input '" + v.name + "'";
  if (v.type.kind != feed.kind())
    return Error(input + " must be a " + ir::ValueKindName(v.type.kind) + ", got a " +
                 ir::ValueKindName(feed.kind()));
  if (!v.type.opaque.empty()) return Status::Ok();
  if (v.type.dtype != ir::DType::Undefined && v.type.dtype != feed.dtype())
    return Error(input + " must be " + ir::DTypeName(v.type.dtype) + ", got " +
                 ir::DTypeName(feed.dtype()));
  if (!v.type.has_shape) return Status::Ok();
  const auto& dims = v.type.dims;
  bool bad = dims.size() != feed.shape().size();
  for (size_t d = 0; !bad && d < dims.size(); ++d)
    bad = dims[d].known() && dims[d].value != feed.shape()[d];
  if (!bad) return Status::Ok();
  std::string want = "[";
  for (size_t d = 0; d < dims.size(); ++d)
    want += (d ? "," : "") + (dims[d].known()        ? std::to_string(dims[d].value)
                              : dims[d].param.empty() ? std::string("?")
                                                      : dims[d].param);
  want += "]";
  return Error(input + " must have shape " + want + ", got " + ir::ShapeStr(feed.shape()));
}

Status SessionImpl::BindFeeds(const std::vector<const ir::Tensor*>& feeds) {
  if (feeds.size() != feed_slots_.size())
    return Error("graph '" + graph_->name + "': expected " + std::to_string(feed_slots_.size()) +
                 " inputs, got " + std::to_string(feeds.size()));
  for (size_t i = 0; i < feeds.size(); ++i) {
    const ir::Value* v = feed_values_[i];
    if (!feeds[i] || !feeds[i]->defined())
      return Error("graph '" + graph_->name + "': input '" + v->name + "' is not set");
    // Outer-scope values (after the graph inputs) are not checked against a declared type.
    const bool declared = i < input_names_.size();
    // A tensor or sequence fed where an optional is declared is that optional holding it (ONNX
    // Runtime does the same; the conformance Loop case test_loop16_seq_none relies on it).
    const bool wrap = declared && v->type.has_type &&
                      v->type.kind == ir::ValueKind::Optional &&
                      (feeds[i]->kind() == ir::ValueKind::Tensor ||
                       feeds[i]->kind() == ir::ValueKind::Sequence);
    if (wrap) {
      slots_[feed_slots_[i]] = ir::Tensor::Optional(feeds[i]->dtype(), feeds[i]);
      continue;
    }
    if (declared) ASRC_RETURN_IF_ERROR(CheckFeed(*v, *feeds[i]));
    slots_[feed_slots_[i]] = *feeds[i];
  }
  return Status::Ok();
}

Status SessionImpl::RunStep(Step& st, ThreadPool* pool, int threads) {
  KernelContext& ctx = st.ctx;
  for (size_t j = 0; j < st.in_slots.size(); ++j) {
    int id = st.in_slots[j];
    if (id < 0) {
      ctx.inputs[j] = nullptr;
      continue;
    }
    ir::Tensor* t = &slots_[id];
    auto input_error = [&](const std::string& what) {
      const ir::Value* v = j < st.node->inputs.size() ? st.node->inputs[j] : nullptr;
      return Error(NodeLabel(*st.node) + " in graph '" + graph_->name + "': input " +
                   (v ? "'" + v->name + "'" : std::to_string(j)) + what);
    };
    if (!t->defined()) return input_error(" has no value");
    if (!t->is_tensor() && !st.takes_non_tensors)
      return input_error(std::string(" is a ") + ir::ValueKindName(t->kind()) +
                         "; the op takes tensors only");
    ctx.inputs[j] = t;
  }
  ctx.pool = pool;
  ctx.threads = threads;
  ctx.buffers = &buffers_;
  Status status;
  if (profile_) {
    const double t0 = ProfileClockMs(profile_cpu_);
    status = Guarded([&] { return st.kernel->Run(ctx); });
    step_ms_[&st - steps_.data()] += ProfileClockMs(profile_cpu_) - t0;
  } else {
    status = Guarded([&] { return st.kernel->Run(ctx); });
  }
  if (!status.ok()) return status.With(NodeLabel(*st.node) + " in graph '" + graph_->name + "'");
  for (size_t k = 0; k < st.out_slots.size(); ++k) {
    int id = st.out_slots[k];
    if (id >= 0) slots_[id] = std::move(st.outs[k]);
    else buffers_.Put(st.outs[k]);
  }
  for (int t : st.taps) observer_(tap_names_[t], slots_[tap_slots_[t]]);
  for (int id : st.release) buffers_.Put(slots_[id]);
  return Status::Ok();
}

Status SessionImpl::Run(const std::vector<const ir::Tensor*>& feeds,
                        std::vector<ir::Tensor>* outputs, ThreadPool* pool, int threads) {
  ASRC_RETURN_IF_ERROR(BindFeeds(feeds));
  for (int t : start_taps_) observer_(tap_names_[t], slots_[tap_slots_[t]]);
  Status status;
  if (profile_) ++profiled_runs_;
  for (Step& st : steps_) {
    status = RunStep(st, pool, threads);
    if (!status.ok()) break;
  }
  if (status.ok()) {
    outputs->resize(output_slots_.size());
    for (size_t i = 0; i < output_slots_.size(); ++i) {
      (*outputs)[i] = slots_[output_slots_[i]];
      if (!(*outputs)[i].defined())
        status = Error("graph '" + graph_->name + "': output '" + output_names_[i] +
                       "' was not produced");
    }
  }
  // Drop everything but constants (outputs handed out keep their buffers alive).
  for (size_t id = 0; id < slots_.size(); ++id)
    if (!is_const_[id] && slots_[id].defined()) buffers_.Put(slots_[id]);
  for (Step& st : steps_)
    for (auto& t : st.outs) t = ir::Tensor();
  return status;
}

std::vector<std::string> SessionImpl::step_ops() const {
  std::vector<std::string> ops;
  for (const Step& st : steps_) ops.push_back(st.node->op_type);
  return ops;
}

SessionImpl::~SessionImpl() {
  if (!profile_ || profiled_runs_ == 0) return;
  std::map<std::string, std::pair<double, int>> by_op;
  double total = 0;
  for (size_t i = 0; i < steps_.size(); ++i) {
    auto& e = by_op[steps_[i].node->op_type];
    e.first += step_ms_[i];
    e.second += 1;
    total += step_ms_[i];
  }
  std::vector<std::pair<double, std::string>> rows;
  for (const auto& [op, e] : by_op) rows.emplace_back(e.first, op);
  std::sort(rows.rbegin(), rows.rend());
  std::fprintf(stderr, "profile: graph '%s', %lld runs, %.3f ms%s per run in kernels; buffer pool %lld hits, %lld misses\n",
               graph_->name.c_str(), static_cast<long long>(profiled_runs_), total / profiled_runs_,
               profile_cpu_ ? " (process CPU)" : "",
               static_cast<long long>(buffers_.hits()), static_cast<long long>(buffers_.misses()));
  for (const auto& [ms, op] : rows)
    std::fprintf(stderr, "profile: %-24s %5d nodes %9.3f ms/run %5.1f%%\n", op.c_str(), by_op[op].second,
                 ms / profiled_runs_, total > 0 ? 100 * ms / total : 0.0);
  if (profile_level_ < 2) return;
  // ASRC_PROFILE=2: the 20 slowest single steps too; ASRC_PROFILE=3: every step.
  std::vector<std::pair<double, size_t>> steps;
  for (size_t i = 0; i < steps_.size(); ++i) steps.emplace_back(step_ms_[i], i);
  std::sort(steps.rbegin(), steps.rend());
  const size_t shown = profile_level_ >= 3 ? steps.size() : std::min<size_t>(steps.size(), 20);
  for (size_t k = 0; k < shown; ++k) {
    const Step& st = steps_[steps[k].second];
    std::fprintf(stderr, "profile: step %-40s %-22s %9.3f ms/run\n", st.node->name.c_str(),
                 st.node->op_type.c_str(), steps[k].first / profiled_runs_);
  }
}

// --- public Session ---

Session::Session(std::unique_ptr<SessionImpl> impl) : impl_(std::move(impl)) {}
Session::~Session() = default;

Result<std::unique_ptr<Session>> Session::Create(const ir::Graph& graph, int64_t opset,
                                                 const SessionOptions& options) {
  ASRC_ASSIGN_OR_RETURN(auto impl, SessionImpl::Create(graph, opset, options, {}));
  return std::unique_ptr<Session>(new Session(std::move(impl)));
}

const std::vector<std::string>& Session::input_names() const { return impl_->input_names(); }
const std::vector<std::string>& Session::output_names() const { return impl_->output_names(); }

Status Session::Run(const std::vector<ir::Tensor>& inputs, std::vector<ir::Tensor>* outputs) {
  std::vector<const ir::Tensor*> feeds;
  feeds.reserve(inputs.size());
  for (const auto& t : inputs) feeds.push_back(&t);
  return impl_->Run(feeds, outputs);
}

Result<std::vector<int>> Session::InputIndices(const std::vector<std::string>& names) const {
  const auto& inputs = impl_->input_names();
  std::vector<int> out;
  for (const std::string& name : names) {
    auto it = std::find(inputs.begin(), inputs.end(), name);
    if (it == inputs.end())
      return Error("graph '" + impl_->graph().name + "' has no input named '" + name + "'");
    out.push_back(static_cast<int>(it - inputs.begin()));
  }
  return out;
}

Result<std::vector<ir::Tensor>> Session::Run(
    const std::vector<std::pair<std::string, ir::Tensor>>& named_inputs) {
  const auto& names = impl_->input_names();
  std::vector<std::string> given;
  for (const auto& named : named_inputs) given.push_back(named.first);
  ASRC_ASSIGN_OR_RETURN(std::vector<int> at, InputIndices(given));
  std::vector<const ir::Tensor*> feeds(names.size(), nullptr);
  for (size_t k = 0; k < at.size(); ++k) feeds[at[k]] = &named_inputs[k].second;
  for (size_t i = 0; i < names.size(); ++i)
    if (!feeds[i])
      return Error("graph '" + impl_->graph().name + "': missing input '" + names[i] + "'");
  std::vector<ir::Tensor> outs;
  ASRC_RETURN_IF_ERROR(impl_->Run(feeds, &outs));
  return outs;
}

}  // namespace asrc::runtime
