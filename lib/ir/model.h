// A model is a bundle: several named graphs (causal encoder, non-causal encoder, decoder,
// joiner — or one graph for a single .onnx file) over one store of weight buffers. Two
// initializers, in one graph or in two, may share a Buffer; size is counted over unique buffers.
// The on-disk format is documented in docs/bundle.md.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"
#include "ir/graph.h"

namespace asrc::ir {

struct OpsetImport {
  std::string domain;
  int64_t version = 0;
};

// A graph held by value: copying a GraphPtr copies the graph (Graph::clone); otherwise it is a
// unique_ptr. It makes GraphFile and Model plain copyable structs, so a field added to either
// needs no clone code.
class GraphPtr {
 public:
  GraphPtr() = default;
  GraphPtr(std::unique_ptr<Graph> g) : p_(std::move(g)) {}  // NOLINT: implicit on purpose
  GraphPtr(const GraphPtr& o) : p_(o.p_ ? o.p_->Clone() : nullptr) {}
  GraphPtr& operator=(const GraphPtr& o) {
    if (this != &o) p_ = o.p_ ? o.p_->Clone() : nullptr;
    return *this;
  }
  GraphPtr(GraphPtr&&) noexcept = default;
  GraphPtr& operator=(GraphPtr&&) noexcept = default;
  Graph* get() const { return p_.get(); }
  Graph* operator->() const { return p_.get(); }
  Graph& operator*() const { return *p_; }
  explicit operator bool() const { return p_ != nullptr; }

 private:
  std::unique_ptr<Graph> p_;
};

// One ONNX ModelProto: its header fields and its graph.
struct GraphFile {
  std::string role;  // "encoder_causal", "decoder", ... ; "model" for a lone .onnx file
  std::string file;  // file name inside the bundle folder, e.g. "decoder.onnx"
  int64_t ir_version = 8;
  std::vector<OpsetImport> opsets;
  std::string producer_name, producer_version, domain, doc_string;
  int64_t model_version = 0;
  std::vector<std::pair<std::string, std::string>> metadata_props;
  std::vector<std::string> opaque_functions;      // serialized FunctionProto
  std::vector<std::string> opaque_training_info;  // serialized TrainingInfoProto
  std::string raw_extras;  // other ModelProto fields, serialized
  GraphPtr graph;

  int64_t opset(const std::string& domain = "") const;  // 0 when not imported
};

// Copying a Model copies it deeply (graphs, nodes, values; see Graph::clone): the passes' teacher
// snapshot and a gate's rollback point are copies. Tensors share their buffers.
struct Model {
  std::vector<GraphFile> graphs;
  // model.json (minus "graphs" and "tokens", which are rebuilt on save); empty for a lone file.
  nlohmann::json config = nlohmann::json::object();
  // Symbols of tokens.txt (lines "<sym> <id>"): tokens[id] = sym. Saved back in that form.
  std::vector<std::string> tokens;
  bool is_bundle = false;           // loaded from / saved as a folder

  GraphFile* find(const std::string& role);
  const GraphFile* find(const std::string& role) const;
  Graph* graph(const std::string& role) { auto* f = find(role); return f ? f->graph.get() : nullptr; }

  // Element count of all initializers of all graphs (each initializer counted once per graph
  // that holds it, as PyTorch would count tied parameters once: shared buffers counted once).
  int64_t ParamsTotal() const;
  // Bytes of unique weight buffers (initializers and Constant-node tensors), shared ones once.
  int64_t BytesUnique() const;
};

// Bytes of the unique weight regions held by `graphs`: initializers and attribute tensors
// (Constant values), recursing into subgraphs; a region shared by several tensors counts once.
// Model::BytesUnique() is this over all graphs of the bundle.
// The size of one graph as `asrc inspect` and the compress report show it: unique weight bytes
// of the graph alone (UniqueWeightBytes({&graph})).
int64_t GraphBytes(const Graph& graph);
int64_t UniqueWeightBytes(const std::vector<const Graph*>& graphs);

// 64-bit hash of everything that defines the model's behaviour: graphs (nodes in storage order,
// attributes, initializer bytes, inputs/outputs, value names), opsets, config and tokens. Equal
// models hash equal; the evaluation cache and the pass manager's honest-"changed" check use it.
uint64_t ContentHash(const Model& model);
// 16 lowercase hex digits.
std::string HashHex(uint64_t hash);

}  // namespace asrc::ir
