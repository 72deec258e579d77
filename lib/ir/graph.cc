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
Attribute& fresh_attr(Node& node, const std::string& n, Attribute::Kind kind) {
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
void for_each_subgraph(const Node* n, Fn&& fn) {
  for (const auto& a : n->attributes) {
    if (a.g) fn(a.g.get());
    for (const auto& g : a.graphs)
      if (g) fn(g.get());
  }
}

// Every node of `g` and of its nested subgraphs, depth first.
void collect_tree_nodes(const Graph* g, std::vector<Node*>* out) {
  for (Node* n : g->nodes()) {
    out->push_back(n);
    for_each_subgraph(n, [&](const Graph* sub) { collect_tree_nodes(sub, out); });
  }
}

void collect_tree_graphs(const Graph* g, std::unordered_set<const Graph*>* out) {
  out->insert(g);
  for (Node* n : g->nodes())
    for_each_subgraph(n, [&](const Graph* sub) { collect_tree_graphs(sub, out); });
}

void erase_use(Value* v, Node* n, int index) {
  auto& u = v->uses;
  for (auto it = u.begin(); it != u.end(); ++it) {
    if (it->node == n && it->input_index == index) {
      u.erase(it);
      return;
    }
  }
}

std::string node_label(const Node* n) {
  return "node '" + n->name + "' (" + n->op_type + ")";
}
}  // namespace

void Node::set_attr_int(const std::string& n, int64_t v) { fresh_attr(*this, n, Attribute::Kind::Int).i = v; }
void Node::set_attr_ints(const std::string& n, std::vector<int64_t> v) {
  fresh_attr(*this, n, Attribute::Kind::Ints).ints = std::move(v);
}
void Node::set_attr_float(const std::string& n, float v) { fresh_attr(*this, n, Attribute::Kind::Float).f = v; }
void Node::set_attr_string(const std::string& n, std::string v) {
  fresh_attr(*this, n, Attribute::Kind::String).s = std::move(v);
}
void Node::set_attr_tensor(const std::string& n, Tensor v) {
  fresh_attr(*this, n, Attribute::Kind::Tensor).t = std::move(v);
}

// ---------------------------------------------------------------------------------------------
// Graph construction and mutation

Value* Graph::add_value(const std::string& name) {
  std::string nm = name.empty() ? unique_name("v") : name;
  assert(by_name_.find(nm) == by_name_.end() && "Graph::add_value: duplicate value name");
  auto v = std::make_unique<Value>();
  v->name = nm;
  v->owner = this;
  Value* raw = v.get();
  values_.push_back(std::move(v));
  by_name_[nm] = raw;
  return raw;
}

Value* Graph::add_initializer(const std::string& name, Tensor t) {
  Value* v = add_value(name);
  v->type.has_type = true;
  v->type.dtype = t.dtype();
  v->type.has_shape = true;
  for (int64_t d : t.shape()) v->type.dims.push_back(Dim{d, ""});
  v->initializer = std::move(t);
  initializers.push_back(v);
  return v;
}

namespace {
std::unique_ptr<Node> make_node(Graph* g, const std::string& op_type,
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
    Value* v = g->add_value(output_names[i]);
    v->producer = n.get();
    v->producer_output = i;
    n->outputs.push_back(v);
  }
  return n;
}
}  // namespace

Node* Graph::add_node(const std::string& op_type, const std::vector<Value*>& inputs,
                      const std::vector<std::string>& output_names, const std::string& name,
                      const std::string& domain) {
  nodes_.push_back(make_node(this, op_type, inputs, output_names, name, domain));
  return nodes_.back().get();
}

Node* Graph::insert_node_before(Node* before, const std::string& op_type,
                                const std::vector<Value*>& inputs,
                                const std::vector<std::string>& output_names,
                                const std::string& name, const std::string& domain) {
  auto it = std::find_if(nodes_.begin(), nodes_.end(),
                         [&](const std::unique_ptr<Node>& p) { return p.get() == before; });
  assert(it != nodes_.end() && "insert_node_before: node not in this graph");
  auto n = make_node(this, op_type, inputs, output_names, name, domain);
  Node* raw = n.get();
  nodes_.insert(it, std::move(n));
  return raw;
}

void Graph::set_input(Node* n, int index, Value* v) {
  assert(index >= 0);
  if (index >= n->num_inputs()) n->inputs.resize(index + 1, nullptr);
  if (Value* old = n->inputs[index]) erase_use(old, n, index);
  n->inputs[index] = v;
  if (v) v->uses.push_back(Use{n, index});
}

namespace {
void replace_outputs(Graph* g, Value* from, Value* to) {
  for (auto& o : g->outputs)
    if (o == from) o = to;
  for (Node* n : g->nodes())
    for_each_subgraph(n, [&](const Graph* sub) { replace_outputs(const_cast<Graph*>(sub), from, to); });
}
}  // namespace

void Graph::replace_all_uses(Value* from, Value* to) {
  if (from == to) return;
  for (const Use& u : from->uses) {
    u.node->inputs[u.input_index] = to;
    if (to) to->uses.push_back(u);
  }
  from->uses.clear();
  replace_outputs(this, from, to);
}

void Graph::remove_node(Node* n) {
  auto it = std::find_if(nodes_.begin(), nodes_.end(),
                         [&](const std::unique_ptr<Node>& p) { return p.get() == n; });
  assert(it != nodes_.end() && "remove_node: node not in this graph");
  for (int i = 0; i < n->num_inputs(); ++i)
    if (n->inputs[i]) erase_use(n->inputs[i], n, i);
  // Uses of outer values by nodes inside this node's subgraphs go too.
  std::vector<Node*> inner;
  for_each_subgraph(n, [&](const Graph* sub) { collect_tree_nodes(sub, &inner); });
  for (Node* m : inner)
    for (int i = 0; i < m->num_inputs(); ++i)
      if (m->inputs[i]) erase_use(m->inputs[i], m, i);
  for (Value* o : n->outputs) {
    if (!o) continue;
    assert(o->uses.empty() && "remove_node: an output still has uses");
    o->producer = nullptr;
    bool is_output = std::find(outputs.begin(), outputs.end(), o) != outputs.end();
    if (!is_output) remove_value(o);
  }
  nodes_.erase(it);
}

void Graph::remove_value(Value* v) {
  assert(v->owner == this);
  assert(v->uses.empty() && !v->producer);
  assert(std::find(inputs.begin(), inputs.end(), v) == inputs.end());
  assert(std::find(outputs.begin(), outputs.end(), v) == outputs.end());
  initializers.erase(std::remove(initializers.begin(), initializers.end(), v), initializers.end());
  auto bn = by_name_.find(v->name);
  if (bn != by_name_.end() && bn->second == v) by_name_.erase(bn);
  values_.remove_if([&](const std::unique_ptr<Value>& p) { return p.get() == v; });
}

void Graph::rebuild_uses() {
  std::unordered_set<const Graph*> tree;
  collect_tree_graphs(this, &tree);
  std::vector<Node*> all;
  collect_tree_nodes(this, &all);
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
      for_each_subgraph(n.get(), [&](const Graph* sub) { reset(const_cast<Graph*>(sub)); });
    }
  };
  reset(this);
  // Outer-scope values read from inside this tree: drop the stale uses by tree nodes only.
  std::unordered_set<Node*> tree_nodes(all.begin(), all.end());
  std::unordered_set<Value*> outer_done;
  for (Node* n : all) {
    for (Value* v : n->inputs) {
      if (!v || tree.count(v->owner) || !outer_done.insert(v).second) continue;
      auto& u = v->uses;
      u.erase(std::remove_if(u.begin(), u.end(), [&](const Use& x) { return tree_nodes.count(x.node) > 0; }),
              u.end());
    }
  }
  for (Node* n : all)
    for (int i = 0; i < n->num_inputs(); ++i)
      if (n->inputs[i]) n->inputs[i]->uses.push_back(Use{n, i});
}

std::unique_ptr<Graph> Graph::clone(Graph* parent_graph) const {
  auto g = std::make_unique<Graph>();
  static_cast<GraphFields&>(*g) = *this;
  g->parent = parent_graph;
  std::unordered_map<const Value*, Value*> map;
  for (const auto& v : values_) {
    auto c = std::make_unique<Value>(*v);
    c->owner = g.get();
    c->producer = nullptr;  // producers and uses: rebuild_uses() below
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
    return it != map.end() ? it->second : g->lookup(v->name);
  };
  for (Value* v : inputs) g->inputs.push_back(remap(v));
  for (Value* v : initializers) g->initializers.push_back(remap(v));
  for (const auto& np : nodes_) {
    auto n = std::make_unique<Node>(*np);
    n->owner = g.get();
    for (Value*& v : n->inputs) v = remap(v);
    for (Value*& v : n->outputs) v = remap(v);
    for (Attribute& a : n->attributes) {  // the copy shares the original's subgraphs until here
      if (a.g) a.g = a.g->clone(g.get());
      for (auto& sub : a.graphs)
        if (sub) sub = sub->clone(g.get());
    }
    g->nodes_.push_back(std::move(n));
  }
  for (Value* v : outputs) g->outputs.push_back(remap(v));
  g->rebuild_uses();
  return g;
}

// ---------------------------------------------------------------------------------------------
// Queries

Value* Graph::find_value(const std::string& name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second;
}

Value* Graph::lookup(const std::string& name) const {
  for (const Graph* g = this; g; g = g->parent)
    if (Value* v = g->find_value(name)) return v;
  return nullptr;
}

std::string Graph::unique_name(const std::string& base) const {
  if (!base.empty() && !lookup(base)) return base;
  for (int64_t i = 1;; ++i) {
    std::string cand = base + "_" + std::to_string(i);
    if (!lookup(cand)) return cand;
  }
}

std::vector<Node*> Graph::nodes() const {
  std::vector<Node*> out;
  out.reserve(nodes_.size());
  for (const auto& n : nodes_) out.push_back(n.get());
  return out;
}

std::vector<Node*> Graph::tree_nodes() const {
  std::vector<Node*> out;
  collect_tree_nodes(this, &out);
  return out;
}

Result<std::vector<Node*>> Graph::topo_order() const {
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
    for_each_subgraph(order[i], [&](const Graph* sub) { collect_tree_nodes(sub, &inner); });
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
        return Error("graph '" + name + "': cycle through " + node_label(order[i]));
  }
  return out;
}

void Graph::sort_topologically() {
  auto order = topo_order();
  assert(order.ok() && "sort_topologically: graph has a cycle");
  std::unordered_map<Node*, std::unique_ptr<Node>> owned;
  for (auto& p : nodes_) owned[p.get()] = std::move(p);
  nodes_.clear();
  for (Node* n : order.value()) nodes_.push_back(std::move(owned[n]));
}

namespace {
// `own_inputs`: the inputs of the graph being verified (a set, so big graphs stay linear).
bool is_defined(const Value* v, const Graph* self, const std::unordered_set<const Value*>& own_inputs) {
  if (v->producer || v->initializer || v->is_sparse_initializer) return true;
  if (v->owner == self) return own_inputs.count(v) > 0;
  const Graph* g = v->owner;
  return g && std::find(g->inputs.begin(), g->inputs.end(), v) != g->inputs.end();
}

bool in_scope(const Graph* g, const Value* v) {
  for (; g; g = g->parent)
    if (v->owner == g) return true;
  return false;
}

Status check_initializer_type(const Value* v) {
  const Tensor& t = *v->initializer;
  if (t.dtype() != DType::String && t.nbytes() > 0 &&
      (!t.buffer() || t.offset() + t.nbytes() > t.buffer()->size()))
    return Error("initializer '" + v->name + "': buffer smaller than its shape " + shape_str(t.shape()));
  if (t.dtype() == DType::String && static_cast<int64_t>(t.strings.size()) != t.numel())
    return Error("initializer '" + v->name + "': string count does not match its shape");
  const TypeInfo& ty = v->type;
  if (!ty.has_type || !ty.opaque.empty()) return Status::Ok();
  if (ty.dtype != DType::Undefined && ty.dtype != t.dtype())
    return Error("initializer '" + v->name + "': tensor is " + dtype_name(t.dtype()) +
                 " but its type says " + dtype_name(ty.dtype));
  if (ty.has_shape) {
    bool ok = static_cast<int>(ty.dims.size()) == t.rank();
    for (size_t i = 0; ok && i < ty.dims.size(); ++i)
      if (ty.dims[i].known() && ty.dims[i].value != t.shape()[i]) ok = false;
    if (!ok) {
      std::string decl = "[";
      for (size_t i = 0; i < ty.dims.size(); ++i)
        decl += (i ? "," : "") + (ty.dims[i].known() ? std::to_string(ty.dims[i].value) : ty.dims[i].param.empty() ? std::string("?") : ty.dims[i].param);
      decl += "]";
      return Error("initializer '" + v->name + "': tensor shape " + shape_str(t.shape()) +
                   " does not match its declared shape " + decl);
    }
  }
  return Status::Ok();
}
}  // namespace

Status Graph::verify() const {
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
    if (n->owner != this) return Error(where + ": " + node_label(n) + " has the wrong owner");
    for (int i = 0; i < static_cast<int>(n->outputs.size()); ++i) {
      const Value* o = n->outputs[i];
      if (!o) continue;
      if (o->owner != this)
        return Error(where + ": " + node_label(n) + " output '" + o->name + "' belongs to another graph");
      if (!produced.insert(o).second)
        return Error(where + ": value '" + o->name + "' is produced more than once");
      if (o->producer != n || o->producer_output != i)
        return Error(where + ": value '" + o->name + "' has a stale producer link");
      if (o->initializer || own_inputs.count(o))
        return Error(where + ": value '" + o->name + "' is produced by " + node_label(n) +
                     " but is also a graph input or initializer");
    }
  }
  for (const auto& v : values_)
    if (v->producer && !produced.count(v.get()))
      return Error(where + ": value '" + v->name + "' has a producer that does not output it");
  // Inputs defined, in scope, and use lists consistent.
  std::vector<Node*> tree;
  collect_tree_nodes(this, &tree);
  std::unordered_map<const Value*, size_t> refs;
  for (const Node* n : tree)
    for (const Value* v : n->inputs)
      if (v) ++refs[v];
  for (const auto& np : nodes_) {
    const Node* n = np.get();
    for (int i = 0; i < n->num_inputs(); ++i) {
      const Value* v = n->inputs[i];
      if (!v) continue;
      if (!in_scope(this, v))
        return Error(where + ": " + node_label(n) + " input " + std::to_string(i) + " '" + v->name +
                     "' is not in scope");
      if (!is_defined(v, this, own_inputs))
        return Error(where + ": " + node_label(n) + " input " + std::to_string(i) + " '" + v->name +
                     "' is not defined");
      bool listed = false;
      for (const Use& u : v->uses)
        if (u.node == n && u.input_index == i) listed = true;
      if (!listed)
        return Error(where + ": use list of '" + v->name + "' misses " + node_label(n) + " input " +
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
    if (!in_scope(this, v)) return Error(where + ": graph output '" + v->name + "' is not in scope");
    if (!is_defined(v, this, own_inputs)) return Error(where + ": graph output '" + v->name + "' is not defined");
  }
  for (const Value* v : initializers) {
    if (!v || v->owner != this || !v->initializer)
      return Error(where + ": initializer list holds a value without a tensor");
    ASRC_RETURN_IF_ERROR(check_initializer_type(v).With(where));
  }
  // Acyclic.
  auto order = topo_order();
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
          return Error(where + ": " + node_label(np.get()) + " attribute '" + a.name +
                       "': subgraph parent link is wrong");
        ASRC_RETURN_IF_ERROR(sub->verify().With(where + ": " + node_label(np.get()) +
                                                " attribute '" + a.name + "'"));
      }
    }
  }
  return Status::Ok();
}

int64_t Graph::num_params() const {
  int64_t n = 0;
  for (const Value* v : initializers)
    if (v->initializer) n += v->initializer->numel();
  return n;
}

}  // namespace asrc::ir
