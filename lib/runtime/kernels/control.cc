// Control flow: If and Loop. Each subgraph is planned once as a nested SessionImpl whose extra
// feeds are the outer-scope values it reads; the session passes those values to this node after
// its explicit inputs, in NodeOuterReads order.
#include <unordered_map>

#include "runtime/kernels/util.h"
#include "runtime/session_impl.h"

namespace asrc::runtime {
namespace {

using namespace ku;
using KernelPtr = Result<std::unique_ptr<Kernel>>;

struct Sub {
  std::unique_ptr<SessionImpl> session;
  std::vector<int> outer_index;  // index into the node's implicit inputs, per subgraph outer read
};

Result<Sub> PlanSub(const ir::Node& node, const ir::Graph& g, int64_t opset) {
  Sub s;
  std::vector<const ir::Value*> node_reads = NodeOuterReads(node);
  std::unordered_map<const ir::Value*, int> pos;
  for (size_t i = 0; i < node_reads.size(); ++i) pos[node_reads[i]] = static_cast<int>(i);
  std::vector<const ir::Value*> reads = OuterReads(g);
  for (const ir::Value* v : reads) s.outer_index.push_back(pos.at(v));
  SessionOptions opt;
  opt.threads = 1;  // the caller's pool is passed at run time
  auto st = SessionImpl::Create(g, opset, opt, reads);
  if (!st.ok()) return st.status().With("subgraph '" + g.name + "'");
  s.session = std::move(st).value();
  return s;
}

class IfKernel : public Kernel {
 public:
  IfKernel(Sub then_b, Sub else_b) : then_(std::move(then_b)), else_(std::move(else_b)) {}
  Status Run(KernelContext& ctx) override {
    const Tensor* c = ctx.in(0);
    if (!c || c->numel() != 1 || c->dtype() != DType::Bool) return Error("cond must be a one-element bool tensor");
    Sub& b = c->data<bool>()[0] ? then_ : else_;
    size_t explicit_n = ctx.node->inputs.size();
    std::vector<const Tensor*> feeds;
    for (int idx : b.outer_index) feeds.push_back(ctx.inputs[explicit_n + idx]);
    std::vector<Tensor> outs;
    ASRC_RETURN_IF_ERROR(b.session->Run(feeds, &outs, ctx.pool, ctx.threads));
    if (outs.size() != ctx.outputs->size())
      return Error("branch has " + std::to_string(outs.size()) + " outputs, node has " + std::to_string(ctx.outputs->size()));
    for (size_t i = 0; i < outs.size(); ++i) ctx.out(static_cast<int>(i)) = std::move(outs[i]);
    return Status::Ok();
  }

 private:
  Sub then_, else_;
};

class LoopKernel : public Kernel {
 public:
  explicit LoopKernel(Sub body) : body_(std::move(body)) {}
  Status Run(KernelContext& ctx) override {
    size_t explicit_n = ctx.node->inputs.size();
    int64_t max_trip = -1;
    if (ctx.in(0) && ctx.in(0)->numel() > 0) {
      ASRC_ASSIGN_OR_RETURN(auto m, Int64s(*ctx.in(0)));
      max_trip = m[0];
    }
    bool cond = true;
    if (ctx.in(1) && ctx.in(1)->numel() > 0) {
      if (ctx.in(1)->dtype() != DType::Bool) return Error("cond must be bool");
      cond = ctx.in(1)->data<bool>()[0];
    }
    size_t n_carried = explicit_n > 2 ? explicit_n - 2 : 0;
    std::vector<Tensor> carried(n_carried);
    for (size_t i = 0; i < n_carried; ++i) {
      if (!ctx.in(static_cast<int>(2 + i))) return Error("loop-carried input " + std::to_string(i) + " is missing");
      carried[i] = *ctx.in(static_cast<int>(2 + i));
    }
    size_t n_out = ctx.outputs->size();
    if (n_out < n_carried) return Error("Loop has fewer outputs than carried values");
    size_t n_scan = n_out - n_carried;
    std::vector<std::vector<Tensor>> scans(n_scan);
    Tensor iter_t(DType::Int64, {}), cond_t(DType::Bool, {});
    std::vector<const Tensor*> feeds(2 + n_carried + body_.outer_index.size());
    for (size_t i = 0; i < body_.outer_index.size(); ++i)
      feeds[2 + n_carried + i] = ctx.inputs[explicit_n + body_.outer_index[i]];
    std::vector<Tensor> outs;
    for (int64_t it = 0; (max_trip < 0 || it < max_trip) && cond; ++it) {
      iter_t = Tensor(DType::Int64, {});
      iter_t.data<int64_t>()[0] = it;
      cond_t = Tensor(DType::Bool, {});
      cond_t.data<bool>()[0] = cond;
      feeds[0] = &iter_t;
      feeds[1] = &cond_t;
      for (size_t i = 0; i < n_carried; ++i) feeds[2 + i] = &carried[i];
      ASRC_RETURN_IF_ERROR(body_.session->Run(feeds, &outs, ctx.pool, ctx.threads));
      if (outs.size() != 1 + n_out) return Error("body has " + std::to_string(outs.size()) + " outputs, expected " + std::to_string(1 + n_out));
      if (outs[0].numel() != 1 || outs[0].dtype() != DType::Bool) return Error("body cond output must be a bool scalar");
      cond = outs[0].data<bool>()[0];
      for (size_t i = 0; i < n_carried; ++i) carried[i] = std::move(outs[1 + i]);
      for (size_t i = 0; i < n_scan; ++i) scans[i].push_back(std::move(outs[1 + n_carried + i]));
      if (max_trip < 0 && !ctx.in(1)) return Error("Loop without trip count or condition would not end");
    }
    for (size_t i = 0; i < n_carried; ++i) ctx.out(static_cast<int>(i)) = std::move(carried[i]);
    for (size_t i = 0; i < n_scan; ++i) {
      auto& v = scans[i];
      if (v.empty()) {
        // No iteration ran: an empty scan output; its element shape is unknown, use [0].
        ctx.out(static_cast<int>(n_carried + i)) = Tensor(DType::Float32, {0});
        const ir::Value* ov = ctx.node->output(static_cast<int>(n_carried + i));
        if (ov && ov->type.has_type && ir::dtype_size(ov->type.dtype) > 0)
          ctx.out(static_cast<int>(n_carried + i)) = Tensor(ov->type.dtype, {0});
        continue;
      }
      Shape s = v[0].shape();
      for (auto& t : v)
        if (t.shape() != s || t.dtype() != v[0].dtype()) return Error("scan output shapes differ across iterations");
      Shape out{static_cast<int64_t>(v.size())};
      out.insert(out.end(), s.begin(), s.end());
      Tensor& o = ctx.Alloc(static_cast<int>(n_carried + i), v[0].dtype(), out);
      size_t nb = v[0].nbytes();
      for (size_t k = 0; k < v.size(); ++k) std::memcpy(o.raw() + k * nb, v[k].raw(), nb);
    }
    return Status::Ok();
  }

 private:
  Sub body_;
};

}  // namespace

void RegisterControlKernels(KernelRegistry& r) {
  r.Register("", "If", DType::Undefined, [](const KernelInit& i) -> KernelPtr {
    const ir::Attribute* t = i.node->attr("then_branch");
    const ir::Attribute* e = i.node->attr("else_branch");
    if (!t || !t->g || !e || !e->g) return Error("If needs then_branch and else_branch");
    ASRC_ASSIGN_OR_RETURN(Sub ts, PlanSub(*i.node, *t->g, i.opset));
    ASRC_ASSIGN_OR_RETURN(Sub es, PlanSub(*i.node, *e->g, i.opset));
    return std::unique_ptr<Kernel>(std::make_unique<IfKernel>(std::move(ts), std::move(es)));
  });
  r.Register("", "Loop", DType::Undefined, [](const KernelInit& i) -> KernelPtr {
    const ir::Attribute* b = i.node->attr("body");
    if (!b || !b->g) return Error("Loop needs a body");
    ASRC_ASSIGN_OR_RETURN(Sub bs, PlanSub(*i.node, *b->g, i.opset));
    return std::unique_ptr<Kernel>(std::make_unique<LoopKernel>(std::move(bs)));
  });
}

}  // namespace asrc::runtime
