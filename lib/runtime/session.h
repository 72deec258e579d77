// runtime::Session — plans an ir::Graph once and runs it many times on the CPU.
//
// Planning resolves a kernel for every node (registry keyed by domain, op type and dtype),
// a topological order, and buffer lifetimes. run() takes the graph inputs in graph-input order
// (initializers excluded) and returns the graph outputs in order. A Session is not thread-safe;
// intra-op parallelism is set by SessionOptions::threads (1 and 2 both supported). Taps
// (SessionOptions::taps) show chosen intermediate values to an observer as they are computed.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/status.h"
#include "ir/graph.h"
#include "ir/tensor.h"

namespace asrc::runtime {

// Shown a tapped value (SessionOptions::taps) during Session::Run.
using TapObserver = std::function<void(const std::string& name, const ir::Tensor& value)>;

struct SessionOptions {
  int threads = 1;
  // Plan-time fusion of node chains (runtime/fusion.h); outputs are bit-identical either way.
  // ASRC_NO_FUSE=1 in the environment turns it off whatever this says.
  bool fuse = true;
  // Taps: names of values of the graph itself (not of If/Loop bodies) that `observer` is shown
  // once in every Run, without making them graph outputs: graph inputs and plan-time constants
  // when the run starts, in `taps` order, and computed values right after the step that
  // computes them, before any later step runs. A tapped value is planned as a graph output is
  // (fusion never folds it into a fused node), so the observer sees the numbers the unfused
  // graph computes and the outputs do not change. The tensor is valid during the call; a copy
  // (which shares its buffer, and keeps the session from recycling it) stays valid after.
  // Repeated names count once. Errors at Create: a name the graph does not define, taps without
  // an observer. No taps: no cost.
  std::vector<std::string> taps = {};
  TapObserver observer = nullptr;
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
  // The positions of `names` among input_names(), in order; an error names the first that is no
  // input ("graph 'g' has no input named 'x'").
  Result<std::vector<int>> InputIndices(const std::vector<std::string>& names) const;

  // Runs the graph. `inputs` in input_names() order. Outputs in output_names() order. Sequence and
  // optional graph values are ir::Tensor::Sequence / ::Optional values (ir/tensor.h); a fed value
  // must be of its input's declared kind, except that a tensor or a sequence fed to an optional
  // input is that optional holding it. Maps and sparse tensors are refused at Create.
  Status Run(const std::vector<ir::Tensor>& inputs, std::vector<ir::Tensor>* outputs);
  // Convenience: inputs by name (any order; all required inputs must be present).
  Result<std::vector<ir::Tensor>> Run(
      const std::vector<std::pair<std::string, ir::Tensor>>& named_inputs);

 private:
  explicit Session(std::unique_ptr<SessionImpl> impl);
  std::unique_ptr<SessionImpl> impl_;
};

}  // namespace asrc::runtime
