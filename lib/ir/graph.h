// The graph IR: Values, Nodes with attributes, Graphs with initializers.
//
// Ownership: a Graph owns its Nodes and Values. A Node's inputs point at Values of its own graph
// or of an enclosing graph (ONNX subgraphs may read outer-scope names). Use lists are kept in sync
// by the mutation helpers on Graph; code that edits Node::inputs directly must call
// Graph::RebuildUses(). Verify() checks all of this.
#pragma once

#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/status.h"
#include "ir/tensor.h"

namespace asrc::ir {

class Graph;
struct Node;

// One dimension of a value's static type: a known size, a symbolic name, or unknown.
struct Dim {
  int64_t value = -1;  // >= 0 when known
  std::string param;   // symbolic name ("T", "batch"), when value < 0
  bool known() const { return value >= 0; }
};

// The static type of a Value, as ONNX value_info carries it.
struct TypeInfo {
  bool has_type = false;               // false: no type recorded
  DType dtype = DType::Undefined;      // tensor element type
  bool has_shape = false;              // false: rank unknown
  std::vector<Dim> dims;
  // Non-tensor types (sequence, optional, map, sparse tensor) are kept as the serialized ONNX
  // TypeProto; when non-empty, dtype/dims are unused.
  std::string opaque;
  // What the type is (import sets it from the TypeProto): Tensor, or Sequence/Optional/Other
  // for the non-tensor types kept in `opaque`.
  ValueKind kind = ValueKind::Tensor;
  // Dimension denotations and other TypeProto extras are kept as the serialized TypeProto too
  // (when set, export writes it as is).
  std::string raw_type;
};

// The type of a tensor value of `dtype` with `dims` (a Dim{-1, "N"} is a named dynamic dim).
inline TypeInfo TensorType(DType dtype, std::vector<Dim> dims) {
  TypeInfo t;
  t.has_type = true;
  t.dtype = dtype;
  t.has_shape = true;
  t.dims = std::move(dims);
  return t;
}

struct Use {
  Node* node = nullptr;
  int input_index = 0;
};

struct Value {
  std::string name;
  TypeInfo type;
  std::string doc_string;
  Graph* owner = nullptr;
  Node* producer = nullptr;  // null for graph inputs and initializers
  int producer_output = 0;
  std::vector<Use> uses;
  std::optional<Tensor> initializer;  // set when this value is a graph initializer
  bool has_value_info = false;        // export writes a value_info entry for it
  // Extra ONNX value_info metadata (metadata_props on ValueInfoProto), kept opaque.
  std::string raw_value_info_extras;
  // TensorProto.doc_string of the initializer (import/export keeps it).
  std::string initializer_doc_string;
  // Named by a GraphProto.sparse_initializer (kept opaque on the graph): defined, no dense data.
  bool is_sparse_initializer = false;

  bool is_constant() const { return initializer.has_value(); }
};

struct Attribute {
  enum class Kind {
    Undefined = 0, Float = 1, Int = 2, String = 3, Tensor = 4, Graph = 5, SparseTensor = 11,
    TypeProto = 13, Floats = 6, Ints = 7, Strings = 8, Tensors = 9, Graphs = 10,
    SparseTensors = 12, TypeProtos = 14
  };
  std::string name;
  Kind kind = Kind::Undefined;
  std::string doc_string;
  std::string ref_attr_name;  // function-body attribute reference
  float f = 0;
  int64_t i = 0;
  std::string s;  // bytes
  Tensor t;
  std::shared_ptr<Graph> g;
  std::vector<float> floats;
  std::vector<int64_t> ints;
  std::vector<std::string> strings;
  std::vector<Tensor> tensors;
  std::vector<std::shared_ptr<Graph>> graphs;
  // Sparse tensors and type protos are rare in our models: kept as serialized protos.
  std::vector<std::string> opaque;
  // TensorProto name/doc_string of `t` and of each of `tensors` (kept for lossless export).
  struct TensorMeta {
    std::string name, doc_string;
  };
  TensorMeta t_meta;
  std::vector<TensorMeta> tensors_meta;  // empty, or one per element of `tensors`
};

struct Node {
  std::string name;
  std::string op_type;
  std::string domain;  // "" is the default ONNX domain
  std::string doc_string;
  std::vector<Value*> inputs;   // nullptr: optional input omitted ("")
  std::vector<Value*> outputs;  // nullptr: optional output omitted ("")
  std::vector<Attribute> attributes;  // in file order
  Graph* owner = nullptr;
  std::string raw_extras;  // NodeProto fields we do not model (e.g. metadata_props), serialized

  const Attribute* attr(const std::string& n) const;
  Attribute* attr(const std::string& n);
  int64_t attr_int(const std::string& n, int64_t def) const;
  float attr_float(const std::string& n, float def) const;
  std::string attr_string(const std::string& n, const std::string& def) const;
  std::vector<int64_t> attr_ints(const std::string& n) const;  // empty when absent
  std::vector<float> attr_floats(const std::string& n) const;
  void set_attr_int(const std::string& n, int64_t v);
  void set_attr_ints(const std::string& n, std::vector<int64_t> v);
  void set_attr_float(const std::string& n, float v);
  void set_attr_string(const std::string& n, std::string v);
  void set_attr_tensor(const std::string& n, Tensor v);
  int num_inputs() const { return static_cast<int>(inputs.size()); }
  Value* input(int i) const { return i < num_inputs() ? inputs[i] : nullptr; }
  Value* output(int i) const { return i < static_cast<int>(outputs.size()) ? outputs[i] : nullptr; }
};

// A graph's own fields that hold no pointer into the graph: Graph::Clone() copies them as a whole,
// so a field added here needs no clone code.
struct GraphFields {
  std::string name;
  std::string doc_string;
  std::vector<std::string> opaque_sparse_initializers;  // serialized SparseTensorProto
  std::vector<std::string> opaque_quantization_annotation;  // serialized TensorAnnotation
  std::string raw_extras;  // GraphProto fields we do not model, serialized
};

class Graph : public GraphFields {
 public:
  explicit Graph(std::string name = "") { this->name = std::move(name); }
  Graph(const Graph&) = delete;
  Graph& operator=(const Graph&) = delete;

  Graph* parent = nullptr;  // enclosing graph for subgraphs
  std::vector<Value*> inputs;
  std::vector<Value*> outputs;
  std::vector<Value*> initializers;  // in file order; each has Value::initializer set

  // Deep copy: values and nodes are copied whole (every field) and their links re-pointed into
  // the copy; subgraphs are cloned too, and their reads of enclosing-scope values are found by
  // name in `parent`'s scope. Node order is kept. Tensors share their buffers with the original
  // (passes never write into a buffer).
  std::unique_ptr<Graph> Clone(Graph* parent = nullptr) const;

  // --- construction and mutation (keep use lists in sync) ---
  // Creates a value; names must be unique within the graph ("" allowed only for omitted values).
  Value* AddValue(const std::string& name);
  Value* AddInitializer(const std::string& name, Tensor t);
  // Appends a node; creates one output value per name in `output_names` ("" = omitted output).
  Node* AddNode(const std::string& op_type, const std::vector<Value*>& inputs,
                 const std::vector<std::string>& output_names, const std::string& name = "",
                 const std::string& domain = "");
  // Inserts before `before` in node order instead of appending.
  Node* InsertNodeBefore(Node* before, const std::string& op_type,
                           const std::vector<Value*>& inputs,
                           const std::vector<std::string>& output_names,
                           const std::string& name = "", const std::string& domain = "");
  void set_input(Node* n, int index, Value* v);  // updates use lists
  void ReplaceAllUses(Value* from, Value* to);  // including graph outputs and subgraph reads
  // Removes a node; its outputs must have no uses (they are removed too unless graph outputs).
  void RemoveNode(Node* n);
  // Removes an unused value (no producer in graph, no uses, not an input/output).
  void RemoveValue(Value* v);
  void RebuildUses();  // recomputes every use list and producer link from the nodes

  // --- queries ---
  Value* FindValue(const std::string& name) const;  // this graph only
  Value* Lookup(const std::string& name) const;      // this graph, then enclosing graphs
  std::string UniqueName(const std::string& base) const;  // "base", "base_1", ...
  // Nodes in storage order (the order in the file unless a pass inserted/reordered).
  std::vector<Node*> nodes() const;
  // Nodes of this graph and of its nested subgraphs (If/Loop/Scan bodies), depth first.
  std::vector<Node*> TreeNodes() const;
  // Nodes in a topological order (stable: storage order where it is already valid);
  // error names a node in a cycle.
  Result<std::vector<Node*>> TopoOrder() const;
  void SortTopologically();  // reorders storage; asserts acyclic
  size_t num_nodes() const { return nodes_.size(); }
  const std::list<std::unique_ptr<Value>>& values() const { return values_; }

  // Checks: unique value names, each value produced at most once, every node input defined
  // (graph input, initializer, produced, or outer scope), use lists consistent, acyclic,
  // initializer tensors match their declared type. Recurses into subgraphs.
  Status Verify() const;

  // Parameters: element count of all initializers (recursing into subgraph attributes and
  // Constant node tensors is NOT included; see Model for bundle totals).
  int64_t NumParams() const;

 private:
  std::list<std::unique_ptr<Node>> nodes_;
  std::list<std::unique_ptr<Value>> values_;
  std::map<std::string, Value*> by_name_;
};

}  // namespace asrc::ir
