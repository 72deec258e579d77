// Kernels and the kernel registry.
// A kernel is built once per node at plan time (attributes parsed, constant weights prepacked)
// and run many times. The registry is keyed by (domain, op type, dtype of the selecting input);
// DType::Undefined registers an "any dtype" kernel that checks dtypes itself and returns an
// error naming the node for ones it does not handle. Registration is an explicit list
// (kernels/all.cc), one Register<Family>Kernels function per kernel file.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "core/status.h"
#include "ir/graph.h"
#include "ir/tensor.h"

namespace asrc::runtime {

class ThreadPool;

// Recycles tensor buffers between nodes and runs (owned by a session; single-threaded).
class BufferPool {
 public:
  // A buffer of at least `nbytes`; contents are unspecified when recycled.
  std::shared_ptr<ir::Buffer> Get(size_t nbytes);
  // Takes the tensor's buffer back when no one else holds it; resets the tensor.
  void Put(ir::Tensor& t);
  void Clear() { free_.clear(); bytes_ = 0; }
  int64_t hits() const { return hits_; }
  int64_t misses() const { return misses_; }

 private:
  int64_t hits_ = 0, misses_ = 0;
  std::multimap<size_t, std::shared_ptr<ir::Buffer>> free_;
  size_t bytes_ = 0;
};

struct KernelContext {
  const ir::Node* node = nullptr;
  std::vector<const ir::Tensor*> inputs;  // nullptr for omitted optional inputs
  std::vector<ir::Tensor>* outputs = nullptr;  // sized to node->outputs.size(); kernel assigns
  int threads = 1;
  ThreadPool* pool = nullptr;  // may be null (single-threaded)
  const ir::Tensor* in(int i) const {
    return i < static_cast<int>(inputs.size()) ? inputs[i] : nullptr;
  }
  ir::Tensor& out(int i) { return (*outputs)[i]; }
  BufferPool* buffers = nullptr;  // may be null
  // Allocates output i with the given dtype and shape from the session's buffer pool.
  // Contents are UNSPECIFIED (not zeroed): the kernel must write every element.
  ir::Tensor& Alloc(int i, ir::DType dtype, ir::Shape shape);
  // Same, as a free-standing tensor (scratch or outputs assembled later).
  ir::Tensor NewTensor(ir::DType dtype, ir::Shape shape);
};

class Kernel {
 public:
  virtual ~Kernel() = default;
  virtual Status Run(KernelContext& ctx) = 0;
  // False for kernels whose outputs differ from run to run (random ops): the session never
  // folds them into constants, even when every input is constant.
  virtual bool Deterministic() const { return true; }
  // True for kernels that accept sequence and optional values (ir::Tensor::kind() not Tensor):
  // the sequence and optional ops, Identity, If, Loop. The session refuses such a value as an
  // input of any other kernel with an error naming the node, so tensor kernels never see one.
  virtual bool TakesNonTensors() const { return false; }
};

struct KernelInit {
  const ir::Node* node = nullptr;
  int64_t opset = 0;  // opset version of the node's domain
  // Inputs whose values are known at plan time (initializers); nullptr otherwise.
  std::vector<const ir::Tensor*> constant_inputs;
  // Static dtypes of the inputs where known (Undefined otherwise).
  std::vector<ir::DType> input_dtypes;
};

using KernelFactory = std::function<Result<std::unique_ptr<Kernel>>(const KernelInit&)>;

class KernelRegistry {
 public:
  void Register(const std::string& domain, const std::string& op, ir::DType dtype,
                KernelFactory factory);
  // Exact dtype first, then the "any" (Undefined) entry; nullptr when none.
  const KernelFactory* Find(const std::string& domain, const std::string& op,
                            ir::DType dtype) const;
  bool Has(const std::string& domain, const std::string& op) const;
  // The dtypes with a registered kernel for (domain, op), comma-separated ("any" for the
  // Undefined entry); for errors about a dtype without one.
  std::string DTypeNames(const std::string& domain, const std::string& op) const;
  std::vector<std::string> Ops() const;  // "domain::op" list, for reports
  static const KernelRegistry& Global();  // built once from kernels/all.cc

 private:
  std::map<std::tuple<std::string, std::string, int>, KernelFactory> table_;
};

// The explicit list of every kernel family (kernels/all.cc).
void RegisterAllKernels(KernelRegistry& registry);

// Adapts a plain function into a kernel (for stateless kernels that need no plan-time work).
std::unique_ptr<Kernel> MakeFnKernel(std::function<Status(KernelContext&)> fn);

}  // namespace asrc::runtime
