// The state of one BuildGradient call, shared by the RuleContexts of its nodes (internal).
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "grad/grad.h"
#include "grad/rules.h"

namespace asrc::grad {

// A scalar tensor of a float dtype.
ir::Tensor ScalarTensor(ir::DType dtype, double v);

class Builder {
 public:
  Builder(ir::Graph& graph, const GradientOptions& options, ir::DType dtype);

  ir::Graph& graph() { return graph_; }
  const GradientOptions& options() const { return options_; }
  ir::DType dtype() const { return dtype_; }
  int num_nodes() const { return num_nodes_; }

  // Appends a node named after its first output; outputs are named "<prefix>/<op>_<k>".
  ir::Node* Emit(const std::string& prefix, const std::string& op,
                 const std::vector<ir::Value*>& inputs, int num_outputs, const std::string& domain);
  // An initializer, shared by every request with the same key.
  ir::Value* Constant(const std::string& key, ir::Tensor t);
  ir::Value* ShapeOf(ir::Value* v);

  // Gradient contributions to a value; Accumulated sums them (once) and returns the total.
  void AddContribution(ir::Value* v, ir::Value* g);
  ir::Value* Accumulated(ir::Value* v);
  void SetNeeded(const std::set<ir::Value*>* needed) { needed_ = needed; }
  bool Needed(ir::Value* v) const { return v && needed_ && needed_->count(v); }

  // Removes everything emitted so far (nodes, then constants): the graph as it was.
  void Rollback();

  std::optional<int> Rank(ir::Value* v);
  // Static length of a 1-D int tensor (Reshape's shape): constants, Shape, Concat of pieces, ...
  std::optional<int64_t> Length1D(ir::Value* v);
  static std::string Label(const ir::Node& n);

 private:
  std::string NewName(const std::string& base);

  ir::Graph& graph_;
  GradientOptions options_;
  ir::DType dtype_;
  int num_nodes_ = 0;
  int64_t counter_ = 0;
  const std::set<ir::Value*>* needed_ = nullptr;
  std::vector<ir::Node*> emitted_;
  std::vector<ir::Value*> constant_values_;
  std::map<ir::Value*, std::vector<ir::Value*>> contributions_;
  std::map<std::string, ir::Value*> constants_;
  std::map<ir::Value*, ir::Value*> shapes_;
  std::map<ir::Value*, std::optional<int>> ranks_;
};

}  // namespace asrc::grad
