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
  std::unique_ptr<Graph> graph;

  int64_t opset(const std::string& domain = "") const;  // 0 when not imported
};

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
  int64_t params_total() const;
  // Bytes of unique weight buffers (initializers and Constant-node tensors), shared ones once.
  int64_t bytes_unique() const;
};

// Bytes of the unique weight regions held by `graphs`: initializers and attribute tensors
// (Constant values), recursing into subgraphs; a region shared by several tensors counts once.
// Model::bytes_unique() is this over all graphs of the bundle.
int64_t unique_weight_bytes(const std::vector<const Graph*>& graphs);

}  // namespace asrc::ir
