// The planned form of a graph, shared by Session and the control-flow kernels (If, Loop), which
// plan their subgraphs as nested SessionImpls fed with the outer-scope values they read.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "ir/graph.h"
#include "runtime/kernel.h"
#include "runtime/session.h"
#include "runtime/thread_pool.h"

namespace asrc::runtime {

// Values that nodes of `g` (recursively through subgraph attributes) read and that are defined
// outside g and its subgraphs, in first-read order. Graph outputs of g that are such values are
// included too.
std::vector<const ir::Value*> OuterReads(const ir::Graph& g);
// The union of OuterReads over a node's graph attributes, minus values of the node's own graph
// being excluded is the caller's job; in first-read order.
std::vector<const ir::Value*> NodeOuterReads(const ir::Node& n);

class SessionImpl {
 public:
  // Feeds are the graph's inputs that have no initializer, in order, followed by `outer`.
  // `pool` is used for intra-op threads when non-null; otherwise the session owns one sized by
  // options.threads.
  static Result<std::unique_ptr<SessionImpl>> Create(const ir::Graph& g, int64_t opset,
                                                     const SessionOptions& options,
                                                     const std::vector<const ir::Value*>& outer);
  // `feeds` as described at Create (size input_names().size() + outer.size()).
  // pool/threads: intra-op parallelism for this run (pool may be null).
  Status Run(const std::vector<const ir::Tensor*>& feeds, std::vector<ir::Tensor>* outputs,
             ThreadPool* pool, int threads);
  Status Run(const std::vector<const ir::Tensor*>& feeds, std::vector<ir::Tensor>* outputs) {
    return Run(feeds, outputs, own_pool_.get(), threads_);
  }

  const std::vector<std::string>& input_names() const { return input_names_; }
  const std::vector<std::string>& output_names() const { return output_names_; }
  const ir::Graph& graph() const { return *graph_; }
  int num_steps() const { return static_cast<int>(steps_.size()); }
  // Op types of the planned steps in execution order (fused nodes under their fused op name).
  std::vector<std::string> step_ops() const;

  struct Step {
    const ir::Node* node = nullptr;
    std::unique_ptr<Kernel> kernel;
    std::vector<int> in_slots;   // -1: omitted optional input
    std::vector<int> out_slots;  // -1: omitted output
    std::vector<int> release;    // slots whose last reader is this step
    std::vector<int> taps;       // indices into tap_names_/tap_slots_ of values this step computes
    bool takes_non_tensors = false;  // Kernel::TakesNonTensors(): else sequences are an error
    std::vector<ir::Tensor> outs;
    KernelContext ctx;
  };

 private:
  // Checks each feed against its declared type (kind, dtype, shape) and puts it in its slot.
  Status BindFeeds(const std::vector<const ir::Tensor*>& feeds);
  Status CheckFeed(const ir::Value& v, const ir::Tensor& feed) const;
  // Runs one step: its inputs from their slots, its outputs into theirs, then taps and releases.
  Status RunStep(Step& st, ThreadPool* pool, int threads);

  const ir::Graph* graph_ = nullptr;
  int threads_ = 1;
  std::unique_ptr<ThreadPool> own_pool_;
  std::vector<ir::Tensor> slots_;   // one per value; constants filled at Create
  std::vector<bool> is_const_;
  std::vector<int> feed_slots_;
  std::vector<const ir::Value*> feed_values_;
  std::vector<int> output_slots_;
  std::vector<std::string> input_names_, output_names_;
  std::vector<Step> steps_;
  std::vector<std::unique_ptr<ir::Node>> fused_nodes_;  // nodes of fused chains (fusion.h)
  // SessionOptions::taps, deduplicated, with their slots; start_taps_: the feeds and constants
  // among them, shown when a run starts (the others are listed by the step computing them).
  std::vector<std::string> tap_names_;
  std::vector<int> tap_slots_, start_taps_;
  TapObserver observer_;
  BufferPool buffers_;
  // ASRC_PROFILE=1 in the environment: time per step, summed by op type, printed to stderr when
  // the session ends (ASRC_PROFILE=2: and the slowest steps) (a diagnostic for finding the slow kernels of a graph).
  bool profile_ = false;
  int profile_level_ = 0;  // 2: also the slowest single steps
  // ASRC_PROFILE_CLOCK=cpu: the process's CPU time per step instead of wall time (every thread's,
  // spinning included): on a loaded machine wall time is mostly waiting for a core.
  bool profile_cpu_ = false;
  std::vector<double> step_ms_;
  int64_t profiled_runs_ = 0;

 public:
  ~SessionImpl();

  friend class SessionPlanner;
};

}  // namespace asrc::runtime
