// content_hash: FNV-style over everything that defines a model's behaviour (ir/model.h).
#include <cstdio>
#include <cstring>

#include "ir/hash.h"
#include "ir/model.h"

namespace asrc::ir {

namespace {

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
  void TensorData(const Tensor& t) {
    Int(static_cast<int64_t>(t.dtype()));
    for (int64_t d : t.shape()) Int(d);
    if (t.raw()) Bytes(t.raw(), t.nbytes());
    for (const auto& s : t.strings) Str(s);
  }
  void GraphData(const Graph& g);
  void Attr(const Attribute& a) {
    Str(a.name);
    Int(static_cast<int64_t>(a.kind));
    Bytes(&a.f, sizeof a.f);
    Int(a.i);
    Str(a.s);
    if (a.t.defined()) TensorData(a.t);
    if (a.g) GraphData(*a.g);
    for (float f : a.floats) Bytes(&f, sizeof f);
    for (int64_t i : a.ints) Int(i);
    for (const auto& s : a.strings) Str(s);
    for (const auto& t : a.tensors) TensorData(t);
    for (const auto& g : a.graphs) GraphData(*g);
    for (const auto& s : a.opaque) Str(s);
  }
};

void Hasher::GraphData(const Graph& g) {
  Str(g.name);
  for (const Value* v : g.inputs) Str(v->name);
  for (const Value* v : g.outputs) Str(v->name);
  for (const Value* v : g.initializers) {
    Str(v->name);
    TensorData(*v->initializer);
  }
  for (const Node* n : g.nodes()) {
    Str(n->op_type);
    Str(n->domain);
    for (const Value* v : n->inputs) Str(v ? v->name : "");
    for (const Value* v : n->outputs) Str(v ? v->name : "");
    for (const auto& a : n->attributes) Attr(a);
  }
}

}  // namespace

uint64_t ContentHash(const Model& m) {
  Hasher h;
  h.Str(m.config.dump());
  for (const auto& t : m.tokens) h.Str(t);
  for (const auto& gf : m.graphs) {
    h.Str(gf.role);
    for (const auto& o : gf.opsets) {
      h.Str(o.domain);
      h.Int(o.version);
    }
    if (gf.graph) h.GraphData(*gf.graph);
  }
  return h.h;
}

uint64_t HashBytes(const void* data, size_t n) {
  Hasher h;
  h.Bytes(data, n);
  return h.h;
}

std::string HashHex(uint64_t hash) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(hash));
  return buf;
}

}  // namespace asrc::ir
