#include "pass/model_util.h"

#include <cstdio>
#include <cstring>
#include <map>
#include <set>

namespace asrc::pass {

namespace {

void CopyValueInfo(const ir::Value& from, ir::Value* to) {
  to->type = from.type;
  to->doc_string = from.doc_string;
  to->has_value_info = from.has_value_info;
  to->raw_value_info_extras = from.raw_value_info_extras;
}

ir::Attribute CloneAttribute(const ir::Attribute& a, ir::Graph* owner) {
  ir::Attribute c = a;  // tensors share buffers; graphs are replaced below
  if (a.g) c.g = std::shared_ptr<ir::Graph>(CloneGraph(*a.g, owner).release());
  for (size_t i = 0; i < a.graphs.size(); ++i) {
    c.graphs[i] = std::shared_ptr<ir::Graph>(CloneGraph(*a.graphs[i], owner).release());
  }
  return c;
}

struct Hasher {
  uint64_t h = 1469598103934665603ull;
  void Bytes(const void* p, size_t n) {
    const uint8_t* b = static_cast<const uint8_t*>(p);
    size_t i = 0;
    // 8 bytes at a time: this runs over every weight of the model.
    for (; i + 8 <= n; i += 8) {
      uint64_t w;
      std::memcpy(&w, b + i, 8);
      h = (h ^ w) * 1099511628211ull;
      h ^= h >> 29;
    }
    for (; i < n; ++i) h = (h ^ b[i]) * 1099511628211ull;
  }
  void Str(const std::string& s) {
    uint64_t n = s.size();
    Bytes(&n, sizeof n);
    Bytes(s.data(), s.size());
  }
  void Int(int64_t v) { Bytes(&v, sizeof v); }
  void Tensor(const ir::Tensor& t) {
    Int(static_cast<int64_t>(t.dtype()));
    for (int64_t d : t.shape()) Int(d);
    if (t.raw()) Bytes(t.raw(), t.nbytes());
    for (const auto& s : t.strings) Str(s);
  }
  void Graph(const ir::Graph& g);
  void Attr(const ir::Attribute& a) {
    Str(a.name);
    Int(static_cast<int64_t>(a.kind));
    Bytes(&a.f, sizeof a.f);
    Int(a.i);
    Str(a.s);
    if (a.t.defined()) Tensor(a.t);
    if (a.g) Graph(*a.g);
    for (float f : a.floats) Bytes(&f, sizeof f);
    for (int64_t i : a.ints) Int(i);
    for (const auto& s : a.strings) Str(s);
    for (const auto& t : a.tensors) Tensor(t);
    for (const auto& g : a.graphs) Graph(*g);
    for (const auto& s : a.opaque) Str(s);
  }
};

void Hasher::Graph(const ir::Graph& g) {
  Str(g.name);
  for (const ir::Value* v : g.inputs) Str(v->name);
  for (const ir::Value* v : g.outputs) Str(v->name);
  for (const ir::Value* v : g.initializers) {
    Str(v->name);
    Tensor(*v->initializer);
  }
  for (const ir::Node* n : g.nodes()) {
    Str(n->op_type);
    Str(n->domain);
    for (const ir::Value* v : n->inputs) Str(v ? v->name : "");
    for (const ir::Value* v : n->outputs) Str(v ? v->name : "");
    for (const auto& a : n->attributes) Attr(a);
  }
}

using SeenSet = std::set<std::pair<const void*, size_t>>;

void AddTensorBytes(const ir::Tensor& t, SeenSet* seen, int64_t* total) {
  const void* key = t.buffer() ? static_cast<const void*>(t.buffer().get())
                               : static_cast<const void*>(&t);
  if (!seen->insert({key, t.offset()}).second) return;
  *total += static_cast<int64_t>(t.nbytes());
}

void CollectGraphBytes(const ir::Graph& g, SeenSet* seen, int64_t* total) {
  for (const ir::Value* v : g.initializers) AddTensorBytes(*v->initializer, seen, total);
  for (const ir::Node* n : g.nodes()) {
    for (const auto& a : n->attributes) {
      if (n->op_type == "Constant" && a.t.defined()) AddTensorBytes(a.t, seen, total);
      if (a.g) CollectGraphBytes(*a.g, seen, total);
      for (const auto& sg : a.graphs) CollectGraphBytes(*sg, seen, total);
    }
  }
}

}  // namespace

std::unique_ptr<ir::Graph> CloneGraph(const ir::Graph& src, ir::Graph* parent) {
  auto g = std::make_unique<ir::Graph>(src.name);
  g->doc_string = src.doc_string;
  g->parent = parent;
  g->opaque_sparse_initializers = src.opaque_sparse_initializers;
  g->opaque_quantization_annotation = src.opaque_quantization_annotation;
  g->raw_extras = src.raw_extras;
  std::map<const ir::Value*, ir::Value*> map;
  for (const ir::Value* v : src.initializers) {
    ir::Value* c = g->add_initializer(v->name, *v->initializer);
    CopyValueInfo(*v, c);
    map[v] = c;
  }
  for (const ir::Value* v : src.inputs) {
    ir::Value* c = nullptr;
    auto it = map.find(v);
    if (it != map.end()) {
      c = it->second;
    } else {
      c = g->add_value(v->name);
      CopyValueInfo(*v, c);
      map[v] = c;
    }
    g->inputs.push_back(c);
  }
  auto order = src.topo_order();
  std::vector<ir::Node*> nodes = order.ok() ? order.value() : src.nodes();
  for (const ir::Node* n : nodes) {
    std::vector<ir::Value*> ins;
    for (const ir::Value* v : n->inputs) {
      if (!v) {
        ins.push_back(nullptr);
        continue;
      }
      auto it = map.find(v);
      ins.push_back(it != map.end() ? it->second : g->lookup(v->name));
    }
    std::vector<std::string> outs;
    for (const ir::Value* v : n->outputs) outs.push_back(v ? v->name : "");
    ir::Node* c = g->add_node(n->op_type, ins, outs, n->name, n->domain);
    c->doc_string = n->doc_string;
    c->raw_extras = n->raw_extras;
    for (const auto& a : n->attributes) c->attributes.push_back(CloneAttribute(a, g.get()));
    for (size_t i = 0; i < n->outputs.size(); ++i) {
      if (!n->outputs[i]) continue;
      CopyValueInfo(*n->outputs[i], c->outputs[i]);
      map[n->outputs[i]] = c->outputs[i];
    }
  }
  for (const ir::Value* v : src.outputs) {
    auto it = map.find(v);
    g->outputs.push_back(it != map.end() ? it->second : g->lookup(v->name));
  }
  // Values that only carry value_info (no producer, not an input) are not copied: nothing reads them.
  g->rebuild_uses();
  return g;
}

ir::Model CloneModel(const ir::Model& m) {
  ir::Model c;
  c.config = m.config;
  c.tokens = m.tokens;
  c.is_bundle = m.is_bundle;
  for (const auto& gf : m.graphs) {
    ir::GraphFile f;
    f.role = gf.role;
    f.file = gf.file;
    f.ir_version = gf.ir_version;
    f.opsets = gf.opsets;
    f.producer_name = gf.producer_name;
    f.producer_version = gf.producer_version;
    f.domain = gf.domain;
    f.doc_string = gf.doc_string;
    f.model_version = gf.model_version;
    f.metadata_props = gf.metadata_props;
    f.opaque_functions = gf.opaque_functions;
    f.opaque_training_info = gf.opaque_training_info;
    f.raw_extras = gf.raw_extras;
    if (gf.graph) f.graph = CloneGraph(*gf.graph);
    c.graphs.push_back(std::move(f));
  }
  return c;
}

uint64_t ModelHash(const ir::Model& m) {
  Hasher h;
  h.Str(m.config.dump());
  for (const auto& t : m.tokens) h.Str(t);
  for (const auto& gf : m.graphs) {
    h.Str(gf.role);
    for (const auto& o : gf.opsets) {
      h.Str(o.domain);
      h.Int(o.version);
    }
    if (gf.graph) h.Graph(*gf.graph);
  }
  return h.h;
}

std::string HashHex(uint64_t h) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

int64_t GraphBytes(const ir::Graph& g) {
  SeenSet seen;
  int64_t total = 0;
  CollectGraphBytes(g, &seen, &total);
  return total;
}

nlohmann::json SizeJson(const ir::Model& m) {
  nlohmann::json j;
  j["params"] = m.params_total();
  j["bytes"] = m.bytes_unique();
  nlohmann::json graphs = nlohmann::json::object();
  for (const auto& gf : m.graphs) {
    if (!gf.graph) continue;
    graphs[gf.role] = {{"params", gf.graph->num_params()},
                       {"bytes", GraphBytes(*gf.graph)},
                       {"nodes", static_cast<int64_t>(gf.graph->num_nodes())}};
  }
  j["graphs"] = graphs;
  return j;
}

}  // namespace asrc::pass
