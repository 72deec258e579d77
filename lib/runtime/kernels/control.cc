// Control flow: If, Loop, Scan (opset 8's batched form and 9+) and SequenceMap. Each subgraph is planned once as a nested SessionImpl whose extra
// feeds are the outer-scope values it reads; the session passes those values to this node after
// its explicit inputs, in NodeOuterReads order.
#include <unordered_map>

#include "runtime/kernels/util.h"
#include "runtime/session_impl.h"

namespace asrc::runtime {
namespace {

using namespace ku;

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
  bool TakesNonTensors() const override { return true; }  // branches may read sequences
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
  bool TakesNonTensors() const override { return true; }  // loop-carried sequences, optionals
  Status Run(KernelContext& ctx) override {
    size_t explicit_n = ctx.node->inputs.size();
    for (int i = 0; i < 2; ++i)
      if (ctx.in(i) && !ctx.in(i)->is_tensor()) return Error(i ? "cond must be a tensor" : "M (trip count) must be a tensor");
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
        if (ov && ov->type.has_type && ir::DTypeSize(ov->type.dtype) > 0)
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
      for (size_t k = 0; k < v.size(); ++k) CopyBytes(o.raw() + k * nb, v[k].raw(), nb);
    }
    return Status::Ok();
  }

 private:
  Sub body_;
};

// SequenceMap: the body runs once per element of the sequence inputs (all of one length), fed the
// i-th element of each sequence input and every tensor input whole; body output k of every run
// is collected into sequence output k.
class SequenceMapKernel : public Kernel {
 public:
  explicit SequenceMapKernel(Sub body) : body_(std::move(body)) {}
  bool TakesNonTensors() const override { return true; }
  Status Run(KernelContext& ctx) override {
    const size_t explicit_n = ctx.node->inputs.size();
    if (!ctx.in(0) || ctx.in(0)->kind() != ir::ValueKind::Sequence) return Error("input 0 must be a sequence");
    const size_t n = ctx.in(0)->elements().size();
    for (size_t j = 0; j < explicit_n; ++j) {
      const Tensor* x = ctx.in(static_cast<int>(j));
      if (!x) return Error("input " + std::to_string(j) + " is missing");
      if (x->kind() == ir::ValueKind::Sequence && x->elements().size() != n)
        return Error("sequence input " + std::to_string(j) + " has " + std::to_string(x->elements().size()) +
                     " elements, input 0 has " + std::to_string(n));
    }
    std::vector<const Tensor*> feeds(explicit_n + body_.outer_index.size());
    for (size_t i = 0; i < body_.outer_index.size(); ++i) feeds[explicit_n + i] = ctx.inputs[explicit_n + body_.outer_index[i]];
    std::vector<std::vector<Tensor>> collected(ctx.outputs->size());
    std::vector<Tensor> outs;
    for (size_t i = 0; i < n; ++i) {
      for (size_t j = 0; j < explicit_n; ++j) {
        const Tensor* x = ctx.in(static_cast<int>(j));
        feeds[j] = x->kind() == ir::ValueKind::Sequence ? &x->elements()[i] : x;
      }
      ASRC_RETURN_IF_ERROR(body_.session->Run(feeds, &outs, ctx.pool, ctx.threads));
      if (outs.size() != collected.size())
        return Error("body has " + std::to_string(outs.size()) + " outputs, node has " + std::to_string(collected.size()));
      for (size_t k = 0; k < outs.size(); ++k) {
        if (!outs[k].is_tensor()) return Error("body output " + std::to_string(k) + " must be a tensor");
        collected[k].push_back(std::move(outs[k]));
      }
    }
    for (size_t k = 0; k < collected.size(); ++k) {
      const DType d = collected[k].empty() ? DType::Undefined : collected[k][0].dtype();
      ctx.out(static_cast<int>(k)) = Tensor::Sequence(d, std::move(collected[k]));
    }
    return Status::Ok();
  }

 private:
  Sub body_;
};

// Copies slice t along `axis` of `whole` to `part` (take) or from it (put), by element size.
void SliceCopy(const Shape& shape, size_t es, int axis, int64_t t, const uint8_t* src, uint8_t* dst, bool take) {
  int64_t outer = 1, inner = 1, n = shape[axis];
  for (int d = 0; d < axis; ++d) outer *= shape[d];
  for (size_t d = axis + 1; d < shape.size(); ++d) inner *= shape[d];
  for (int64_t o = 0; o < outer; ++o) {
    size_t w = static_cast<size_t>((o * n + t) * inner) * es, p = static_cast<size_t>(o * inner) * es;
    CopyBytes(dst + (take ? p : w), src + (take ? w : p), inner * es);
  }
}

struct ScanAttrs {
  int64_t num_scan_inputs = 0;
  std::vector<int64_t> in_axes, in_dirs, out_axes, out_dirs;
};

// Scan: N state values carried through the body, M inputs sliced along their scan axes, K
// outputs stacked along theirs; directions 1 walk or stack in reverse.
class ScanKernel : public Kernel {
 public:
  ScanKernel(Sub body, ScanAttrs a) : body_(std::move(body)), a_(std::move(a)) {}
  Status Run(KernelContext& ctx) override {
    const int explicit_n = static_cast<int>(ctx.node->inputs.size());
    const int M = static_cast<int>(a_.num_scan_inputs), N = explicit_n - M;
    const int K = static_cast<int>(ctx.outputs->size()) - N;
    if (N < 0 || K < 0) return Error("Scan: num_scan_inputs exceeds the inputs");
    std::vector<Tensor> state(N);
    for (int i = 0; i < N; ++i) state[i] = *ctx.in(i);
    std::vector<int> axes(M);
    int64_t T = -1;
    for (int j = 0; j < M; ++j) {
      const Tensor& x = *ctx.in(N + j);
      ASRC_ASSIGN_OR_RETURN(axes[j], NormAxis(j < static_cast<int>(a_.in_axes.size()) ? a_.in_axes[j] : 0, x.rank()));
      if (T >= 0 && x.dim(axes[j]) != T) return Error("Scan: scan inputs differ in length");
      T = x.dim(axes[j]);
    }
    if (T < 0) return Error("Scan needs at least one scan input");
    std::vector<Tensor> slices(M);
    std::vector<std::vector<Tensor>> outs_k(K);
    std::vector<const Tensor*> feeds(N + M + body_.outer_index.size());
    for (size_t i = 0; i < body_.outer_index.size(); ++i) feeds[N + M + i] = ctx.inputs[explicit_n + body_.outer_index[i]];
    std::vector<Tensor> outs;
    for (int64_t t = 0; t < T; ++t) {
      for (int j = 0; j < M; ++j) {
        const Tensor& x = *ctx.in(N + j);
        Shape s = x.shape();
        s.erase(s.begin() + axes[j]);
        slices[j] = Tensor(x.dtype(), s);
        bool rev = j < static_cast<int>(a_.in_dirs.size()) && a_.in_dirs[j] == 1;
        SliceCopy(x.shape(), ir::DTypeSize(x.dtype()), axes[j], rev ? T - 1 - t : t, x.raw(), slices[j].raw(), true);
        feeds[N + j] = &slices[j];
      }
      for (int i = 0; i < N; ++i) feeds[i] = &state[i];
      ASRC_RETURN_IF_ERROR(body_.session->Run(feeds, &outs, ctx.pool, ctx.threads));
      if (static_cast<int>(outs.size()) != N + K) return Error("Scan: body outputs differ from the node's");
      for (int i = 0; i < N; ++i) state[i] = std::move(outs[i]);
      for (int k = 0; k < K; ++k) outs_k[k].push_back(std::move(outs[N + k]));
    }
    for (int i = 0; i < N; ++i) ctx.out(i) = std::move(state[i]);
    for (int k = 0; k < K; ++k) {
      if (outs_k[k].empty()) return Error("Scan: no iterations to stack");
      const Tensor& first = outs_k[k][0];
      ASRC_ASSIGN_OR_RETURN(int ax, NormAxis(k < static_cast<int>(a_.out_axes.size()) ? a_.out_axes[k] : 0, first.rank() + 1));
      Shape s = first.shape();
      s.insert(s.begin() + ax, T);
      Tensor& o = ctx.Alloc(N + k, first.dtype(), s);
      bool rev = k < static_cast<int>(a_.out_dirs.size()) && a_.out_dirs[k] == 1;
      for (int64_t t = 0; t < T; ++t) {
        if (outs_k[k][t].shape() != first.shape() || outs_k[k][t].dtype() != first.dtype())
          return Error("Scan: output slices differ across iterations");
        SliceCopy(o.shape(), ir::DTypeSize(o.dtype()), ax, rev ? T - 1 - t : t, outs_k[k][t].raw(), o.raw(), false);
      }
    }
    return Status::Ok();
  }

 private:
  Sub body_;
  ScanAttrs a_;
};

// Scan before opset 9: batched. Inputs: sequence_lens [B] (optional), N states [B, ...], M scan
// inputs [B, T, ...] (attribute `directions`: 1 walks an input backwards); outputs: the N final
// states [B, ...] and K scan outputs [B, T, ...] in iteration order. Batch b runs
// sequence_lens[b] (default T) steps; its scan outputs past that are zeros (as ONNX Runtime).
class Scan8Kernel : public Kernel {
 public:
  Scan8Kernel(Sub body, int64_t m, std::vector<int64_t> dirs) : body_(std::move(body)), M_(static_cast<int>(m)), dirs_(std::move(dirs)) {}
  Status Run(KernelContext& ctx) override {
    const int explicit_n = static_cast<int>(ctx.node->inputs.size());
    const int N = explicit_n - 1 - M_, K = static_cast<int>(ctx.outputs->size()) - N;
    if (N < 0 || K < 0) return Error("Scan: num_scan_inputs exceeds the inputs");
    const Tensor& x0 = *ctx.in(1 + N);
    if (x0.rank() < 2) return Error("Scan (opset 8): scan inputs must be [batch, sequence, ...]");
    const int64_t B = x0.dim(0), T = x0.dim(1);
    for (int j = 0; j < N + M_; ++j) {
      const Tensor& v = *ctx.in(1 + j);
      if (v.rank() < (j < N ? 1 : 2) || v.dim(0) != B || (j >= N && v.dim(1) != T))
        return Error("Scan (opset 8): input " + std::to_string(1 + j) + " " + ir::ShapeStr(v.shape()) +
                     " does not match batch " + std::to_string(B) + " and sequence " + std::to_string(T));
    }
    ASRC_RETURN_IF_ERROR(CheckScratch(B, sizeof(int64_t), "Scan: the sequence lengths"));  // B may be 2^40 on empty inputs
    std::vector<int64_t> lens(static_cast<size_t>(B), T);
    if (ctx.in(0)) {
      ASRC_ASSIGN_OR_RETURN(lens, Int64s(*ctx.in(0)));
      if (static_cast<int64_t>(lens.size()) != B) return Error("Scan: sequence_lens must have one entry per batch");
      for (int64_t l : lens)
        if (l < 0 || l > T) return Error("Scan: sequence length " + std::to_string(l) + " is outside [0, " + std::to_string(T) + "]");
    }
    std::vector<const Tensor*> feeds(N + M_ + body_.outer_index.size());
    for (size_t i = 0; i < body_.outer_index.size(); ++i) feeds[N + M_ + i] = ctx.inputs[explicit_n + body_.outer_index[i]];
    std::vector<Tensor> state(N), slices(M_), outs, result(N + K);
    for (int64_t b = 0; b < B; ++b) {
      for (int i = 0; i < N; ++i) state[i] = Take(*ctx.in(1 + i), 1, b);
      for (int64_t t = 0; t < lens[b]; ++t) {
        for (int j = 0; j < M_; ++j) {
          const int64_t tt = j < static_cast<int>(dirs_.size()) && dirs_[j] == 1 ? lens[b] - 1 - t : t;
          slices[j] = Take(*ctx.in(1 + N + j), 2, b * T + tt);
          feeds[N + j] = &slices[j];
        }
        for (int i = 0; i < N; ++i) feeds[i] = &state[i];
        ASRC_RETURN_IF_ERROR(body_.session->Run(feeds, &outs, ctx.pool, ctx.threads));
        if (static_cast<int>(outs.size()) != N + K) return Error("Scan: body outputs differ from the node's");
        for (int i = 0; i < N; ++i) state[i] = std::move(outs[i]);
        for (int k = 0; k < K; ++k) ASRC_RETURN_IF_ERROR(Put(outs[N + k], {B, T}, b * T + t, result[N + k]));
      }
      for (int i = 0; i < N; ++i) ASRC_RETURN_IF_ERROR(Put(state[i], {B}, b, result[i]));
    }
    for (int k = 0; k < N + K; ++k) {
      if (!result[k].defined()) return Error("Scan: no iteration ran, output " + std::to_string(k) + " has no shape");
      ctx.out(k) = std::move(result[k]);
    }
    return Status::Ok();
  }

 private:
  // Row `r` of x seen as [rows, ...] with its `lead` leading dims flattened into rows.
  static Tensor Take(const Tensor& x, int lead, int64_t r) {
    Shape part(x.shape().begin() + lead, x.shape().end());
    int64_t rows = 1;
    for (int d = 0; d < lead; ++d) rows *= x.dim(d);
    Shape flat = part;
    flat.insert(flat.begin(), rows);
    Tensor p(x.dtype(), part);
    SliceCopy(flat, ir::DTypeSize(x.dtype()), 0, r, x.raw(), p.raw(), true);
    return p;
  }
  // Writes `part` as row `r` of `whole` (shape lead + part's shape, zero-filled when created).
  static Status Put(const Tensor& part, const Shape& lead, int64_t r, Tensor& whole) {
    Shape full = lead;
    full.insert(full.end(), part.shape().begin(), part.shape().end());
    if (!whole.defined()) whole = Tensor(part.dtype(), full);
    if (whole.shape() != full || whole.dtype() != part.dtype()) return Error("Scan: body output shapes differ across iterations");
    Shape flat = part.shape();
    flat.insert(flat.begin(), ir::ShapeNumel(lead));
    SliceCopy(flat, ir::DTypeSize(part.dtype()), 0, r, part.raw(), whole.raw(), false);
    return Status::Ok();
  }

  Sub body_;
  int M_;
  std::vector<int64_t> dirs_;
};

}  // namespace

void RegisterControlKernels(KernelRegistry& r) {
  r.Register("", "If", DType::Undefined, [](const KernelInit& i) -> KernelPtr {
    const ir::Attribute* t = i.node->attr("then_branch");
    const ir::Attribute* e = i.node->attr("else_branch");
    if (!t || !t->g || !e || !e->g) return Error("If needs then_branch and else_branch");
    ASRC_ASSIGN_OR_RETURN(Sub ts, PlanSub(*i.node, *t->g, i.opset));
    ASRC_ASSIGN_OR_RETURN(Sub es, PlanSub(*i.node, *e->g, i.opset));
    return Make<IfKernel>(std::move(ts), std::move(es));
  });
  r.Register("", "Loop", DType::Undefined, [](const KernelInit& i) -> KernelPtr {
    const ir::Attribute* b = i.node->attr("body");
    if (!b || !b->g) return Error("Loop needs a body");
    ASRC_ASSIGN_OR_RETURN(Sub bs, PlanSub(*i.node, *b->g, i.opset));
    return Make<LoopKernel>(std::move(bs));
  });
  r.Register("", "SequenceMap", DType::Undefined, [](const KernelInit& i) -> KernelPtr {
    const ir::Attribute* b = i.node->attr("body");
    if (!b || !b->g) return Error("SequenceMap needs a body");
    if (b->g->inputs.size() != i.node->inputs.size())
      return Error("SequenceMap body has " + std::to_string(b->g->inputs.size()) + " inputs, the node " +
                   std::to_string(i.node->inputs.size()));
    ASRC_ASSIGN_OR_RETURN(Sub bs, PlanSub(*i.node, *b->g, i.opset));
    return Make<SequenceMapKernel>(std::move(bs));
  });
  r.Register("", "Scan", DType::Undefined, [](const KernelInit& i) -> KernelPtr {
    const ir::Attribute* b = i.node->attr("body");
    if (!b || !b->g) return Error("Scan needs a body");
    if (i.opset < 9) {
      const int64_t m = i.node->attr_int("num_scan_inputs", 0);
      if (m < 1 || m + 1 > i.node->num_inputs()) return Error("Scan needs 1 <= num_scan_inputs < inputs");
      for (int k = 1; k < i.node->num_inputs(); ++k)
        if (!i.node->inputs[k]) return Error("Scan: only sequence_lens (input 0) may be omitted");
      ASRC_ASSIGN_OR_RETURN(Sub bs, PlanSub(*i.node, *b->g, i.opset));
      return Make<Scan8Kernel>(std::move(bs), m, i.node->attr_ints("directions"));
    }
    ScanAttrs a;
    a.num_scan_inputs = i.node->attr_int("num_scan_inputs", 0);
    if (a.num_scan_inputs < 1) return Error("Scan needs num_scan_inputs >= 1");
    a.in_axes = i.node->attr_ints("scan_input_axes");
    a.in_dirs = i.node->attr_ints("scan_input_directions");
    a.out_axes = i.node->attr_ints("scan_output_axes");
    a.out_dirs = i.node->attr_ints("scan_output_directions");
    ASRC_ASSIGN_OR_RETURN(Sub bs, PlanSub(*i.node, *b->g, i.opset));
    return Make<ScanKernel>(std::move(bs), std::move(a));
  });
}

}  // namespace asrc::runtime
