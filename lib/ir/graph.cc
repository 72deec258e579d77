#include "ir/graph.h"

#include <algorithm>
#include <cassert>
#include <functional>
#include <queue>
#include <set>
#include <unordered_map>
#include <unordered_set>

namespace asrc::ir {

// ---------------------------------------------------------------------------------------------
// Node attributes

const Attribute* Node::attr(const std::string& n) const {
  for (const auto& a : attributes)
    if (a.name == n) return &a;
  return nullptr;
}

Attribute* Node::attr(const std::string& n) {
  for (auto& a : attributes)
    if (a.name == n) return &a;
  return nullptr;
}

int64_t Node::attr_int(const std::string& n, int64_t def) const {
  const Attribute* a = attr(n);
  return a && a->kind == Attribute::Kind::Int ? a->i : def;
}

float Node::attr_float(const std::string& n, float def) const {
  const Attribute* a = attr(n);
  return a && a->kind == Attribute::Kind::Float ? a->f : def;
}

std::string Node::attr_string(const std::string& n, const std::string& def) const {
  const Attribute* a = attr(n);
  return a && a->kind == Attribute::Kind::String ? a->s : def;
}

std::vector<int64_t> Node::attr_ints(const std::string& n) const {
  const Attribute* a = attr(n);
  return a && a->kind == Attribute::Kind::Ints ? a->ints : std::vector<int64_t>{};
}

std::vector<float> Node::attr_floats(const std::string& n) const {
  const Attribute* a = attr(n);
  return a && a->kind == Attribute::Kind::Floats ? a->floats : std::vector<float>{};
}

namespace {
// Returns the attribute named `n`, reset to a fresh one of `kind` (appended when absent).
Attribute& FreshAttr(Node& node, const std::string& n, Attribute::Kind kind) {
  Attribute* a = node.attr(n);
  if (!a) {
    node.attributes.emplace_back();
    a = &node.attributes.back();
  }
  *a = Attribute();
  a->name = n;
  a->kind = kind;
  return *a;
}

template <class Fn>
void ForEachSubgraph(const Node* n, Fn&& fn) {
  for (const auto& a : n->attributes) {
    if (a.g) fn(a.g.get());
    for (const auto& g : a.graphs)
      if (g) fn(g.get());
  }
}

// Every node of `g` and of its nested subgraphs, depth first.
void CollectTreeNodes(const Graph* g, std::vector<Node*>* out) {
  for (Node* n : g->nodes()) {
    out->push_back(n);
    ForEachSubgraph(n, [&](const Graph* sub) { CollectTreeNodes(sub, out); });
  }
}

void CollectTreeGraphs(const Graph* g, std::unordered_set<const Graph*>* out) {
  out->insert(g);
  for (Node* n : g->nodes())
    ForEachSubgraph(n, [&](const Graph* sub) { CollectTreeGraphs(sub, out); });
}

void EraseUse(Value* v, Node* n, int index) {
  auto& u = v->uses;
  for (auto it = u.begin(); it != u.end(); ++it) {
    if (it->node == n && it->input_index == index) {
      u.erase(it);
      return;
    }
  }
}

std::string NodeLabel(const Node* n) {
  return "node '" + n->name + "' (" + n->op_type + ")";
}
}  // namespace

void Node::set_attr_int(const std::string& n, int64_t v) { FreshAttr(*this, n, Attribute::Kind::Int).i = v; }
void Node::set_attr_ints(const std::string& n, std::vector<int64_t> v) {
  FreshAttr(*this, n, Attribute::Kind::Ints).ints = std::move(v);
}
void Node::set_attr_float(const std::string& n, float v) { FreshAttr(*this, n, Attribute::Kind::Float).f = v; }
void Node::set_attr_string(const std::string& n, std::string v) {
  FreshAttr(*this, n, Attribute::Kind::String).s = std::move(v);
}
void Node::set_attr_tensor(const std::string& n, Tensor v) {
  FreshAttr(*this, n, Attribute::Kind::Tensor).t = std::move(v);
}

// ---------------------------------------------------------------------------------------------
// Graph construction and mutation

Value* Graph::AddValue(const std::string& name) {
  std::string nm = name.empty() ? UniqueName("v") : name;
  assert(by_name_.find(nm) == by_name_.end() && "Graph::AddValue: duplicate value name");
  auto v = std::make_unique<Value>();
  v->name = nm;
  v->owner = this;
  Value* raw = v.get();
  values_.push_back(std::move(v));
  by_name_[nm] = raw;
  return raw;
}

Value* Graph::AddInitializer(const std::string& name, Tensor t) {
  Value* v = AddValue(name);
  v->type.has_type = true;
  v->type.dtype = t.dtype();
  v->type.has_shape = true;
  for (int64_t d : t.shape()) v->type.dims.push_back(Dim{d, ""});
  v->initializer = std::move(t);
  initializers.push_back(v);
  return v;
}

namespace {
std::unique_ptr<Node> MakeNode(Graph* g, const std::string& op_type,
                                const std::vector<Value*>& inputs,
                                const std::vector<std::string>& output_names,
                                const std::string& name, const std::string& domain) {
  auto n = std::make_unique<Node>();
  n->op_type = op_type;
  n->name = name;
  n->domain = domain;
  n->owner = g;
  n->inputs = inputs;
  for (int i = 0; i < static_cast<int>(inputs.size()); ++i)
    if (inputs[i]) inputs[i]->uses.push_back(Use{n.get(), i});
  for (int i = 0; i < static_cast<int>(output_names.size()); ++i) {
    if (output_names[i].empty()) {
      n->outputs.push_back(nullptr);
      continue;
    }
    Value* v = g->AddValue(output_names[i]);
    v->producer = n.get();
    v->producer_output = i;
    n->outputs.push_back(v);
  }
  return n;
}
}  // namespace

Node* Graph::AddNode(const std::string& op_type, const std::vector<Value*>& inputs,
                      const std::vector<std::string>& output_names, const std::string& name,
                      const std::string& domain) {
  nodes_.push_back(MakeNode(this, op_type, inputs, output_names, name, domain));
  return nodes_.back().get();
}

Node* Graph::InsertNodeBefore(Node* before, const std::string& op_type,
                                const std::vector<Value*>& inputs,
                                const std::vector<std::string>& output_names,
                                const std::string& name, const std::string& domain) {
  auto it = std::find_if(nodes_.begin(), nodes_.end(),
                         [&](const std::unique_ptr<Node>& p) { return p.get() == before; });
  assert(it != nodes_.end() && "InsertNodeBefore: node not in this graph");
  auto n = MakeNode(this, op_type, inputs, output_names, name, domain);
  Node* raw = n.get();
  nodes_.insert(it, std::move(n));
  return raw;
}

void Graph::set_input(Node* n, int index, Value* v) {
  assert(index >= 0);
  if (index >= n->num_inputs()) n->inputs.resize(index + 1, nullptr);
  if (Value* old = n->inputs[index]) EraseUse(old, n, index);
  n->inputs[index] = v;
  if (v) v->uses.push_back(Use{n, index});
}

namespace {
void ReplaceOutputs(Graph* g, Value* from, Value* to) {
  for (auto& o : g->outputs)
    if (o == from) o = to;
  for (Node* n : g->nodes())
    ForEachSubgraph(n, [&](const Graph* sub) { ReplaceOutputs(const_cast<Graph*>(sub), from, to); });
}
}  // namespace

void Graph::ReplaceAllUses(Value* from, Value* to) {
  if (from == to) return;
  for (const Use& u : from->uses) {
    u.node->inputs[u.input_index] = to;
    if (to) to->uses.push_back(u);
  }
  from->uses.clear();
  ReplaceOutputs(this, from, to);
}

void Graph::RemoveNode(Node* n) {
  auto it = std::find_if(nodes_.begin(), nodes_.end(),
                         [&](const std::unique_ptr<Node>& p) { return p.get() == n; });
  assert(it != nodes_.end() && "RemoveNode: node not in this graph");
  for (int i = 0; i < n->num_inputs(); ++i)
    if (n->inputs[i]) EraseUse(n->inputs[i], n, i);
  // Uses of outer values by nodes inside this node's subgraphs go too.
  std::vector<Node*> inner;
  ForEachSubgraph(n, [&](const Graph* sub) { CollectTreeNodes(sub, &inner); });
  for (Node* m : inner)
    for (int i = 0; i < m->num_inputs(); ++i)
      if (m->inputs[i]) EraseUse(m->inputs[i], m, i);
  for (Value* o : n->outputs) {
    if (!o) continue;
    assert(o->uses.empty() && "RemoveNode: an output still has uses");
    o->producer = nullptr;
    bool is_output = std::find(outputs.begin(), outputs.end(), o) != outputs.end();
    if (!is_output) RemoveValue(o);
  }
  nodes_.erase(it);
}

void Graph::RemoveValue(Value* v) {
  assert(v->owner == this);
  assert(v->uses.empty() && !v->producer);
  assert(std::find(inputs.begin(), inputs.end(), v) == inputs.end());
  assert(std::find(outputs.begin(), outputs.end(), v) == outputs.end());
  initializers.erase(std::remove(initializers.begin(), initializers.end(), v), initializers.end());
  auto bn = by_name_.find(v->name);
  if (bn != by_name_.end() && bn->second == v) by_name_.erase(bn);
  values_.remove_if([&](const std::unique_ptr<Value>& p) { return p.get() == v; });
}

void Graph::RebuildUses() {
  std::unordered_set<const Graph*> tree;
  CollectTreeGraphs(this, &tree);
  std::vector<Node*> all;
  CollectTreeNodes(this, &all);
  std::function<void(Graph*)> reset = [&](Graph* g) {
    for (auto& v : g->values_) {
      v->uses.clear();
      v->producer = nullptr;
      v->producer_output = 0;
    }
    for (auto& n : g->nodes_) {
      for (int i = 0; i < static_cast<int>(n->outputs.size()); ++i) {
        if (Value* o = n->outputs[i]) {
          o->producer = n.get();
          o->producer_output = i;
        }
      }
      ForEachSubgraph(n.get(), [&](const Graph* sub) { reset(const_cast<Graph*>(sub)); });
    }
  };
  reset(this);
  // Outer-scope values read from inside this tree: drop the stale uses by tree nodes only.
  std::unordered_set<Node*> in_tree(all.begin(), all.end());
  std::unordered_set<Value*> outer_done;
  for (Node* n : all) {
    for (Value* v : n->inputs) {
      if (!v || tree.count(v->owner) || !outer_done.insert(v).second) continue;
      auto& u = v->uses;
      u.erase(std::remove_if(u.begin(), u.end(), [&](const Use& x) { return in_tree.count(x.node) > 0; }),
              u.end());
    }
  }
  for (Node* n : all)
    for (int i = 0; i < n->num_inputs(); ++i)
      if (n->inputs[i]) n->inputs[i]->uses.push_back(Use{n, i});
}

std::unique_ptr<Graph> Graph::Clone(Graph* parent_graph) const {
  auto g = std::make_unique<Graph>();
  static_cast<GraphFields&>(*g) = *this;
  g->parent = parent_graph;
  std::unordered_map<const Value*, Value*> map;
  for (const auto& v : values_) {
    auto c = std::make_unique<Value>(*v);
    c->owner = g.get();
    c->producer = nullptr;  // producers and uses: RebuildUses() below
    c->uses.clear();
    map[v.get()] = c.get();
    g->by_name_[c->name] = c.get();
    g->values_.push_back(std::move(c));
  }
  // A value of an enclosing graph (read from inside a subgraph): the clone's enclosing graphs
  // already hold its copy, under the same name.
  auto remap = [&](Value* v) -> Value* {
    if (!v) return nullptr;
    auto it = map.find(v);
    return it != map.end() ? it->second : g->Lookup(v->name);
  };
  for (Value* v : inputs) g->inputs.push_back(remap(v));
  for (Value* v : initializers) g->initializers.push_back(remap(v));
  for (const auto& np : nodes_) {
    auto n = std::make_unique<Node>(*np);
    n->owner = g.get();
    for (Value*& v : n->inputs) v = remap(v);
    for (Value*& v : n->outputs) v = remap(v);
    for (Attribute& a : n->attributes) {  // the copy shares the original's subgraphs until here
      if (a.g) a.g = a.g->Clone(g.get());
      for (auto& sub : a.graphs)
        if (sub) sub = sub->Clone(g.get());
    }
    g->nodes_.push_back(std::move(n));
  }
  for (Value* v : outputs) g->outputs.push_back(remap(v));
  g->RebuildUses();
  return g;
}

// ---------------------------------------------------------------------------------------------
// Queries

Value* Graph::FindValue(const std::string& name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second;
}

Value* Graph::Lookup(const std::string& name) const {
  for (const Graph* g = this; g; g = g->parent)
    if (Value* v = g->FindValue(name)) return v;
  return nullptr;
}

std::string Graph::UniqueName(const std::string& base) const {
  if (!base.empty() && !Lookup(base)) return base;
  for (int64_t i = 1;; ++i) {
    std::string cand = base + "_" + std::to_string(i);
    if (!Lookup(cand)) return cand;
  }
}

std::vector<Node*> Graph::nodes() const {
  std::vector<Node*> out;
  out.reserve(nodes_.size());
  for (const auto& n : nodes_) out.push_back(n.get());
  return out;
}

std::vector<Node*> Graph::TreeNodes() const {
  std::vector<Node*> out;
  CollectTreeNodes(this, &out);
  return out;
}

Result<std::vector<Node*>> Graph::TopoOrder() const {
  std::vector<Node*> order = nodes();
  const size_t n = order.size();
  std::unordered_map<const Node*, size_t> index;
  for (size_t i = 0; i < n; ++i) index[order[i]] = i;
  std::vector<std::vector<size_t>> consumers(n);
  std::vector<size_t> pending(n, 0);
  auto depend = [&](size_t consumer, const Value* v, std::set<size_t>* seen) {
    if (!v || !v->producer || v->owner != this) return;
    auto it = index.find(v->producer);
    if (it == index.end() || !seen->insert(it->second).second) return;
    consumers[it->second].push_back(consumer);
    ++pending[consumer];
  };
  for (size_t i = 0; i < n; ++i) {
    std::set<size_t> seen;
    for (const Value* v : order[i]->inputs) depend(i, v, &seen);
    // Subgraphs read values of this graph implicitly: those are dependencies too.
    std::vector<Node*> inner;
    ForEachSubgraph(order[i], [&](const Graph* sub) { CollectTreeNodes(sub, &inner); });
    for (const Node* m : inner)
      for (const Value* v : m->inputs) depend(i, v, &seen);
  }
  std::priority_queue<size_t, std::vector<size_t>, std::greater<size_t>> ready;
  for (size_t i = 0; i < n; ++i)
    if (pending[i] == 0) ready.push(i);
  std::vector<Node*> out;
  out.reserve(n);
  while (!ready.empty()) {
    size_t i = ready.top();
    ready.pop();
    out.push_back(order[i]);
    for (size_t c : consumers[i])
      if (--pending[c] == 0) ready.push(c);
  }
  if (out.size() != n) {
    for (size_t i = 0; i < n; ++i)
      if (pending[i] > 0)
        return Error("graph '" + name + "': cycle through " + NodeLabel(order[i]));
  }
  return out;
}

void Graph::SortTopologically() {
  auto order = TopoOrder();
  assert(order.ok() && "SortTopologically: graph has a cycle");
  std::unordered_map<Node*, std::unique_ptr<Node>> owned;
  for (auto& p : nodes_) owned[p.get()] = std::move(p);
  nodes_.clear();
  for (Node* n : order.value()) nodes_.push_back(std::move(owned[n]));
}

namespace {
// `own_inputs`: the inputs of the graph being verified (a set, so big graphs stay linear).
bool IsDefined(const Value* v, const Graph* self, const std::unordered_set<const Value*>& own_inputs) {
  if (v->producer || v->initializer || v->is_sparse_initializer) return true;
  if (v->owner == self) return own_inputs.count(v) > 0;
  const Graph* g = v->owner;
  return g && std::find(g->inputs.begin(), g->inputs.end(), v) != g->inputs.end();
}

bool InScope(const Graph* g, const Value* v) {
  for (; g; g = g->parent)
    if (v->owner == g) return true;
  return false;
}

Status CheckInitializerType(const Value* v) {
  const Tensor& t = *v->initializer;
  if (t.dtype() != DType::String && t.nbytes() > 0 &&
      (!t.buffer() || t.offset() + t.nbytes() > t.buffer()->size()))
    return Error("initializer '" + v->name + "': buffer smaller than its shape " + ShapeStr(t.shape()));
  if (t.dtype() == DType::String && static_cast<int64_t>(t.strings.size()) != t.numel())
    return Error("initializer '" + v->name + "': string count does not match its shape");
  const TypeInfo& ty = v->type;
  if (!ty.has_type || !ty.opaque.empty()) return Status::Ok();
  if (ty.dtype != DType::Undefined && ty.dtype != t.dtype())
    return Error("initializer '" + v->name + "': tensor is " + DTypeName(t.dtype()) +
                 " but its type says " + DTypeName(ty.dtype));
  if (ty.has_shape) {
    bool ok = static_cast<int>(ty.dims.size()) == t.rank();
    for (size_t i = 0; ok && i < ty.dims.size(); ++i)
      if (ty.dims[i].known() && ty.dims[i].value != t.shape()[i]) ok = false;
    if (!ok) {
      std::string decl = "[";
      for (size_t i = 0; i < ty.dims.size(); ++i)
        decl += (i ? "," : "") + (ty.dims[i].known() ? std::to_string(ty.dims[i].value) : ty.dims[i].param.empty() ? std::string("?") : ty.dims[i].param);
      decl += "]";
      return Error("initializer '" + v->name + "': tensor shape " + ShapeStr(t.shape()) +
                   " does not match its declared shape " + decl);
    }
  }
  return Status::Ok();
}
}  // namespace

Status Graph::Verify() const {
  const std::string where = "graph '" + name + "'";
  std::unordered_set<const Value*> own_inputs(inputs.begin(), inputs.end());
  // Names and ownership.
  size_t named = 0;
  for (const auto& v : values_) {
    if (v->owner != this) return Error(where + ": value '" + v->name + "' has the wrong owner");
    auto it = by_name_.find(v->name);
    if (it == by_name_.end() || it->second != v.get())
      return Error(where + ": duplicate or unindexed value name '" + v->name + "'");
    ++named;
  }
  if (named != by_name_.size()) return Error(where + ": value index out of sync");
  // Producers.
  std::unordered_set<const Value*> produced;
  std::unordered_set<const Node*> own_nodes;
  for (const auto& np : nodes_) {
    const Node* n = np.get();
    own_nodes.insert(n);
    if (n->owner != this) return Error(where + ": " + NodeLabel(n) + " has the wrong owner");
    for (int i = 0; i < static_cast<int>(n->outputs.size()); ++i) {
      const Value* o = n->outputs[i];
      if (!o) continue;
      if (o->owner != this)
        return Error(where + ": " + NodeLabel(n) + " output '" + o->name + "' belongs to another graph");
      if (!produced.insert(o).second)
        return Error(where + ": value '" + o->name + "' is produced more than once");
      if (o->producer != n || o->producer_output != i)
        return Error(where + ": value '" + o->name + "' has a stale producer link");
      if (o->initializer || own_inputs.count(o))
        return Error(where + ": value '" + o->name + "' is produced by " + NodeLabel(n) +
                     " but is also a graph input or initializer");
    }
  }
  for (const auto& v : values_)
    if (v->producer && !produced.count(v.get()))
      return Error(where + ": value '" + v->name + "' has a producer that does not output it");
  // Inputs defined, in scope, and use lists consistent.
  std::vector<Node*> tree;
  CollectTreeNodes(this, &tree);
  std::unordered_map<const Value*, size_t> refs;
  for (const Node* n : tree)
    for (const Value* v : n->inputs)
      if (v) ++refs[v];
  for (const auto& np : nodes_) {
    const Node* n = np.get();
    for (int i = 0; i < n->num_inputs(); ++i) {
      const Value* v = n->inputs[i];
      if (!v) continue;
      if (!InScope(this, v))
        return Error(where + ": " + NodeLabel(n) + " input " + std::to_string(i) + " '" + v->name +
                     "' is not in scope");
      if (!IsDefined(v, this, own_inputs))
        return Error(where + ": " + NodeLabel(n) + " input " + std::to_string(i) + " '" + v->name +
                     "' is not defined");
      bool listed = false;
      for (const Use& u : v->uses)
        if (u.node == n && u.input_index == i) listed = true;
      if (!listed)
        return Error(where + ": use list of '" + v->name + "' misses " + NodeLabel(n) + " input " +
                     std::to_string(i));
    }
  }
  for (const auto& v : values_) {
    for (const Use& u : v->uses) {
      if (!u.node || u.input_index < 0 || u.input_index >= u.node->num_inputs() ||
          u.node->inputs[u.input_index] != v.get())
        return Error(where + ": use list of '" + v->name + "' holds a stale use");
    }
    auto r = refs.find(v.get());
    size_t expect = r == refs.end() ? 0 : r->second;
    if (v->uses.size() != expect)
      return Error(where + ": use list of '" + v->name + "' has " + std::to_string(v->uses.size()) +
                   " uses, nodes read it " + std::to_string(expect) + " times");
  }
  // Graph inputs/outputs/initializers.
  for (const Value* v : inputs)
    if (!v || v->owner != this) return Error(where + ": graph input is null or foreign");
  for (const Value* v : outputs) {
    if (!v) return Error(where + ": graph output is null");
    if (!InScope(this, v)) return Error(where + ": graph output '" + v->name + "' is not in scope");
    if (!IsDefined(v, this, own_inputs)) return Error(where + ": graph output '" + v->name + "' is not defined");
  }
  for (const Value* v : initializers) {
    if (!v || v->owner != this || !v->initializer)
      return Error(where + ": initializer list holds a value without a tensor");
    ASRC_RETURN_IF_ERROR(CheckInitializerType(v).With(where));
  }
  // Acyclic.
  auto order = TopoOrder();
  if (!order.ok()) return order.status();
  // Subgraphs.
  for (const auto& np : nodes_) {
    for (const auto& a : np->attributes) {
      std::vector<const Graph*> subs;
      if (a.g) subs.push_back(a.g.get());
      for (const auto& g : a.graphs)
        if (g) subs.push_back(g.get());
      for (const Graph* sub : subs) {
        if (sub->parent != this)
          return Error(where + ": " + NodeLabel(np.get()) + " attribute '" + a.name +
                       "': subgraph parent link is wrong");
        ASRC_RETURN_IF_ERROR(sub->Verify().With(where + ": " + NodeLabel(np.get()) +
                                                " attribute '" + a.name + "'"));
      }
    }
  }
  return Status::Ok();
}

int64_t Graph::NumParams() const {
  int64_t n = 0;
  for (const Value* v : initializers)
    if (v->initializer) n += v->initializer->numel();
  return n;
}

}  // namespace asrc::ir
