#include "ir/model.h"

#include <algorithm>
#include <map>
#include <set>
#include <tuple>

namespace asrc::ir {

int64_t GraphFile::opset(const std::string& d) const {
  auto norm = [](const std::string& s) { return s == "ai.onnx" ? std::string() : s; };
  for (const auto& o : opsets)
    if (norm(o.domain) == norm(d)) return o.version;
  return 0;
}

GraphFile* Model::find(const std::string& role) {
  for (auto& g : graphs)
    if (g.role == role) return &g;
  return nullptr;
}

const GraphFile* Model::find(const std::string& role) const {
  for (const auto& g : graphs)
    if (g.role == role) return &g;
  return nullptr;
}

int64_t Model::ParamsTotal() const {
  // A parameter region (buffer, offset, bytes, dtype) is counted once however many initializers
  // (in one graph or several) point at it: tied weights count once, as in PyTorch.
  std::set<std::tuple<const Buffer*, size_t, size_t, int>> seen;
  int64_t n = 0;
  for (const auto& gf : graphs) {
    if (!gf.graph) continue;
    for (const Value* v : gf.graph->initializers) {
      if (!v->initializer) continue;
      const Tensor& t = *v->initializer;
      if (t.buffer() && t.nbytes() > 0) {
        auto key = std::make_tuple(t.buffer().get(), t.offset(), t.nbytes(), static_cast<int>(t.dtype()));
        if (!seen.insert(key).second) continue;
      }
      n += t.numel();
    }
  }
  return n;
}

namespace {
struct ByteCounter {
  std::map<const Buffer*, std::vector<std::pair<size_t, size_t>>> ranges;
  int64_t loose = 0;  // string tensors (no buffer)

  void Add(const Tensor& t) {
    if (!t.defined()) return;
    if (t.dtype() == DType::String) {
      for (const auto& s : t.strings) loose += static_cast<int64_t>(s.size());
      return;
    }
    if (!t.buffer() || t.nbytes() == 0) return;
    ranges[t.buffer().get()].emplace_back(t.offset(), t.offset() + t.nbytes());
  }

  void AddGraph(const Graph& g) {
    for (const Value* v : g.initializers)
      if (v->initializer) Add(*v->initializer);
    for (const Node* n : g.nodes()) {
      for (const auto& a : n->attributes) {
        Add(a.t);
        for (const auto& t : a.tensors) Add(t);
        if (a.g) AddGraph(*a.g);
        for (const auto& sg : a.graphs)
          if (sg) AddGraph(*sg);
      }
    }
  }

  int64_t Total() {
    int64_t n = loose;
    for (auto& [buf, rs] : ranges) {
      std::sort(rs.begin(), rs.end());
      size_t end = 0;
      for (const auto& [b, e] : rs) {
        size_t start = std::max(b, end);
        if (e > start) n += static_cast<int64_t>(e - start);
        end = std::max(end, e);
      }
    }
    return n;
  }
};
}  // namespace

int64_t UniqueWeightBytes(const std::vector<const Graph*>& graphs) {
  ByteCounter c;
  for (const Graph* g : graphs)
    if (g) c.AddGraph(*g);
  return c.Total();
}

int64_t GraphBytes(const Graph& graph) { return UniqueWeightBytes({&graph}); }

int64_t Model::BytesUnique() const {
  std::vector<const Graph*> gs;
  for (const auto& gf : graphs) gs.push_back(gf.graph.get());
  return UniqueWeightBytes(gs);
}

}  // namespace asrc::ir
