// runtime::Session — plans an ir::Graph once and runs it many times on the CPU.
//
// Planning resolves a kernel for every node (registry keyed by domain, op type and dtype),
// a topological order, and buffer lifetimes. run() takes the graph inputs in graph-input order
// (initializers excluded) and returns the graph outputs in order. A Session is not thread-safe;
// intra-op parallelism is set by SessionOptions::threads (1 and 2 both supported).
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/status.h"
#include "ir/graph.h"
#include "ir/tensor.h"

namespace asrc::runtime {

struct SessionOptions {
  int threads = 1;
  // Plan-time fusion of node chains (runtime/fusion.h); outputs are bit-identical either way.
  // ASRC_NO_FUSE=1 in the environment turns it off whatever this says.
  bool fuse = true;
};

class SessionImpl;

class Session {
 public:
  // The graph must outlive the session (weights are read from it, not copied).
  // Errors: unsupported op ("unsupported op 'Foo' (domain '', opset 17) at node 'n' in graph 'g'"),
  // invalid graph.
  static Result<std::unique_ptr<Session>> Create(const ir::Graph& graph, int64_t opset,
                                                 const SessionOptions& options = {});
  ~Session();

  // Names of the graph inputs that must be fed (initializer-backed inputs excluded), in order.
  const std::vector<std::string>& input_names() const;
  const std::vector<std::string>& output_names() const;

  // Runs the graph. `inputs` in input_names() order. Outputs in output_names() order.
  Status Run(const std::vector<ir::Tensor>& inputs, std::vector<ir::Tensor>* outputs);
  // Convenience: inputs by name (any order; all required inputs must be present).
  Result<std::vector<ir::Tensor>> Run(
      const std::vector<std::pair<std::string, ir::Tensor>>& named_inputs);

 private:
  explicit Session(std::unique_ptr<SessionImpl> impl);
  std::unique_ptr<SessionImpl> impl_;
};

}  // namespace asrc::runtime
