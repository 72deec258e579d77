#include <algorithm>
#include <set>

#include "runtime/kernel.h"

namespace asrc::runtime {

void KernelRegistry::Register(const std::string& domain, const std::string& op, ir::DType dtype,
                              KernelFactory factory) {
  table_[{domain, op, static_cast<int>(dtype)}] = std::move(factory);
}

const KernelFactory* KernelRegistry::Find(const std::string& domain, const std::string& op,
                                          ir::DType dtype) const {
  auto it = table_.find({domain, op, static_cast<int>(dtype)});
  if (it != table_.end()) return &it->second;
  it = table_.find({domain, op, static_cast<int>(ir::DType::Undefined)});
  return it != table_.end() ? &it->second : nullptr;
}

bool KernelRegistry::Has(const std::string& domain, const std::string& op) const {
  auto it = table_.lower_bound({domain, op, -1});
  return it != table_.end() && std::get<0>(it->first) == domain && std::get<1>(it->first) == op;
}

std::string KernelRegistry::DTypeNames(const std::string& domain, const std::string& op) const {
  std::string names;
  for (auto it = table_.lower_bound({domain, op, -1});
       it != table_.end() && std::get<0>(it->first) == domain && std::get<1>(it->first) == op; ++it) {
    auto d = static_cast<ir::DType>(std::get<2>(it->first));
    names += (names.empty() ? "" : ", ") + std::string(d == ir::DType::Undefined ? "any" : ir::DTypeName(d));
  }
  return names;
}

std::vector<std::string> KernelRegistry::Ops() const {
  std::set<std::string> ops;
  for (const auto& [key, f] : table_) ops.insert(std::get<0>(key) + "::" + std::get<1>(key));
  return {ops.begin(), ops.end()};
}

const KernelRegistry& KernelRegistry::Global() {
  static const KernelRegistry* registry = [] {
    auto* r = new KernelRegistry();
    RegisterAllKernels(*r);
    return r;
  }();
  return *registry;
}

namespace {
class FnKernel : public Kernel {
 public:
  explicit FnKernel(std::function<Status(KernelContext&)> fn) : fn_(std::move(fn)) {}
  Status Run(KernelContext& ctx) override { return fn_(ctx); }

 private:
  std::function<Status(KernelContext&)> fn_;
};
}  // namespace

std::unique_ptr<Kernel> MakeFnKernel(std::function<Status(KernelContext&)> fn) {
  return std::make_unique<FnKernel>(std::move(fn));
}

// Pool policy: take the smallest free buffer that fits without wasting more than half of it;
// keep at most kMaxFree buffers (dropping the smallest) so odd shapes cannot pile up.
std::shared_ptr<ir::Buffer> BufferPool::Get(size_t nbytes) {
  auto it = free_.lower_bound(nbytes);
  if (it != free_.end() && it->first <= 2 * nbytes + 256) {
    auto b = std::move(it->second);
    bytes_ -= it->first;
    free_.erase(it);
    ++hits_;
    return b;
  }
  ++misses_;
  return std::make_shared<ir::Buffer>(nbytes);
}

void BufferPool::Put(ir::Tensor& t) {
  constexpr size_t kMaxFree = 256;
  const auto& b = t.buffer();
  if (b && b.use_count() == 1 && t.dtype() != ir::DType::String && b->size() > 0) {
    auto buf = b;  // use_count 2 now; t is reset below
    t = ir::Tensor();
    bytes_ += buf->size();
    free_.emplace(buf->size(), std::move(buf));
    if (free_.size() > kMaxFree) {
      bytes_ -= free_.begin()->first;
      free_.erase(free_.begin());
    }
    return;
  }
  t = ir::Tensor();
}

ir::Tensor KernelContext::NewTensor(ir::DType dtype, ir::Shape shape) {
  if (!buffers || dtype == ir::DType::String) return ir::Tensor(dtype, std::move(shape));
  int64_t n = ir::ShapeNumel(shape);
  size_t nbytes = static_cast<size_t>(std::max<int64_t>(n, 0)) * ir::DTypeSize(dtype);
  if (nbytes == 0) return ir::Tensor(dtype, std::move(shape));
  return ir::Tensor::Wrap(dtype, std::move(shape), buffers->Get(nbytes));
}

ir::Tensor& KernelContext::Alloc(int i, ir::DType dtype, ir::Shape shape) {
  (*outputs)[i] = NewTensor(dtype, std::move(shape));
  return (*outputs)[i];
}

}  // namespace asrc::runtime
