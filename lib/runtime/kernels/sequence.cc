// The ONNX sequence and optional ops, on the runtime's sequence and optional values
// (ir::Tensor::Sequence / ir::Tensor::Optional; kernel.h's TakesNonTensors):
//   SequenceEmpty, SequenceConstruct, SequenceInsert, SequenceErase, SequenceAt, SequenceLength,
//   SplitToSequence, ConcatFromSequence (opset 11+), Optional, OptionalHasElement,
//   OptionalGetElement (opset 15; 18's tensor and sequence inputs too). SequenceMap, which runs a
//   body graph, is with the control-flow kernels (control.cc).
// Elements are shared with the inputs (values are never written in place), so building a
// sequence copies no tensor data; SplitToSequence and ConcatFromSequence copy bytes (any dtype
// with a fixed element size).
#include "runtime/kernels/util.h"

namespace asrc::runtime {
namespace {

using namespace ku;

// A kernel over non-tensor values: a plain function, marked as taking sequences/optionals.
class ValueKernel : public Kernel {
 public:
  explicit ValueKernel(std::function<Status(KernelContext&)> fn) : fn_(std::move(fn)) {}
  Status Run(KernelContext& ctx) override { return fn_(ctx); }
  bool TakesNonTensors() const override { return true; }

 private:
  std::function<Status(KernelContext&)> fn_;
};

Result<const Tensor*> In(const KernelContext& ctx, int i, ir::ValueKind kind) {
  const Tensor* t = ctx.in(i);
  if (!t) return Error("input " + std::to_string(i) + " is missing");
  if (t->kind() != kind)
    return Error("input " + std::to_string(i) + " must be a " + ir::ValueKindName(kind) + ", got a " +
                 ir::ValueKindName(t->kind()));
  return t;
}

// Position input `i` (a scalar int32/int64) in [-n, n - 1 + extra], made non-negative;
// `def` when the input is omitted.
Result<int64_t> Position(const KernelContext& ctx, int i, int64_t n, int64_t extra, int64_t def) {
  if (!ctx.in(i)) return def;
  if (!ctx.in(i)->is_tensor() || ctx.in(i)->numel() != 1) return Error("position must be a one-element integer tensor");
  ASRC_ASSIGN_OR_RETURN(std::vector<int64_t> p, Int64s(*ctx.in(i)));
  if (p[0] < -n || p[0] > n - 1 + extra)
    return Error("position " + std::to_string(p[0]) + " is outside [" + std::to_string(-n) + ", " +
                 std::to_string(n - 1 + extra) + "] for a sequence of " + std::to_string(n));
  return p[0] < 0 ? p[0] + n : p[0];
}

Status CheckElement(const Tensor& seq, const Tensor& t) {
  if (!t.is_tensor()) return Error(std::string("a sequence element must be a tensor, got a ") + ir::ValueKindName(t.kind()));
  if (seq.dtype() != DType::Undefined && t.dtype() != seq.dtype())
    return Error(std::string("tensor of dtype ") + ir::DTypeName(t.dtype()) + " does not match the sequence's " +
                 ir::DTypeName(seq.dtype()));
  return Status::Ok();
}

Status SequenceConstruct(KernelContext& ctx) {
  std::vector<Tensor> elems;
  for (size_t i = 0; i < ctx.inputs.size(); ++i) {
    ASRC_ASSIGN_OR_RETURN(const Tensor* t, In(ctx, static_cast<int>(i), ir::ValueKind::Tensor));
    if (!elems.empty() && t->dtype() != elems[0].dtype())
      return Error("inputs differ in dtype (" + std::string(ir::DTypeName(elems[0].dtype())) + ", " +
                   ir::DTypeName(t->dtype()) + ")");
    elems.push_back(*t);
  }
  if (elems.empty()) return Error("SequenceConstruct needs at least one input");
  const DType d = elems[0].dtype();
  ctx.out(0) = Tensor::Sequence(d, std::move(elems));
  return Status::Ok();
}

Status SequenceInsert(KernelContext& ctx) {
  ASRC_ASSIGN_OR_RETURN(const Tensor* s, In(ctx, 0, ir::ValueKind::Sequence));
  ASRC_ASSIGN_OR_RETURN(const Tensor* t, In(ctx, 1, ir::ValueKind::Tensor));
  ASRC_RETURN_IF_ERROR(CheckElement(*s, *t));
  std::vector<Tensor> elems = s->elements();
  const int64_t n = static_cast<int64_t>(elems.size());
  ASRC_ASSIGN_OR_RETURN(int64_t p, Position(ctx, 2, n, 1, n));
  elems.insert(elems.begin() + p, *t);
  ctx.out(0) = Tensor::Sequence(t->dtype(), std::move(elems));
  return Status::Ok();
}

Status SequenceErase(KernelContext& ctx) {
  ASRC_ASSIGN_OR_RETURN(const Tensor* s, In(ctx, 0, ir::ValueKind::Sequence));
  std::vector<Tensor> elems = s->elements();
  const int64_t n = static_cast<int64_t>(elems.size());
  if (n == 0) return Error("SequenceErase on an empty sequence");
  ASRC_ASSIGN_OR_RETURN(int64_t p, Position(ctx, 1, n, 0, n - 1));
  elems.erase(elems.begin() + p);
  ctx.out(0) = Tensor::Sequence(s->dtype(), std::move(elems));
  return Status::Ok();
}

Status SequenceAt(KernelContext& ctx) {
  ASRC_ASSIGN_OR_RETURN(const Tensor* s, In(ctx, 0, ir::ValueKind::Sequence));
  if (!ctx.in(1)) return Error("SequenceAt needs a position");
  const int64_t n = static_cast<int64_t>(s->elements().size());
  ASRC_ASSIGN_OR_RETURN(int64_t p, Position(ctx, 1, n, 0, 0));
  ctx.out(0) = s->elements()[p];
  return Status::Ok();
}

Status SequenceLength(KernelContext& ctx) {
  ASRC_ASSIGN_OR_RETURN(const Tensor* s, In(ctx, 0, ir::ValueKind::Sequence));
  ctx.out(0) = Tensor::ScalarInt64(static_cast<int64_t>(s->elements().size()));
  return Status::Ok();
}

// Concatenates same-dtype tensors along `axis` (shapes equal elsewhere), by bytes.
Status ConcatBytes(const std::vector<Tensor>& parts, int axis, Tensor& out) {
  const size_t es = ir::DTypeSize(parts[0].dtype());
  int64_t outer = 1;
  for (int d = 0; d < axis; ++d) outer *= parts[0].dim(d);
  std::vector<size_t> chunk;
  for (const Tensor& p : parts) chunk.push_back(static_cast<size_t>(p.numel() / std::max<int64_t>(1, outer)) * es);
  uint8_t* dst = out.raw();
  for (int64_t o = 0; o < outer; ++o)
    for (size_t k = 0; k < parts.size(); ++k) {
      if (chunk[k]) CopyBytes(dst, parts[k].raw() + o * chunk[k], chunk[k]);
      dst += chunk[k];
    }
  return Status::Ok();
}

class ConcatFromSequenceKernel : public Kernel {
 public:
  ConcatFromSequenceKernel(int64_t axis, bool new_axis) : axis_(axis), new_axis_(new_axis) {}
  bool TakesNonTensors() const override { return true; }
  Status Run(KernelContext& ctx) override {
    ASRC_ASSIGN_OR_RETURN(const Tensor* s, In(ctx, 0, ir::ValueKind::Sequence));
    std::vector<Tensor> parts = s->elements();
    if (parts.empty()) return Error("ConcatFromSequence on an empty sequence");
    ASRC_RETURN_IF_ERROR(NeedFixedSize(parts[0], "ConcatFromSequence"));
    const int rank = parts[0].rank() + (new_axis_ ? 1 : 0);
    ASRC_ASSIGN_OR_RETURN(int axis, NormAxis(axis_, rank));
    Shape shape;
    for (Tensor& p : parts) {
      if (p.rank() + (new_axis_ ? 1 : 0) != rank)
        return Error("elements differ in rank (" + ir::ShapeStr(parts[0].shape()) + ", " + ir::ShapeStr(p.shape()) + ")");
      if (new_axis_) {
        Shape s1 = p.shape();
        s1.insert(s1.begin() + axis, 1);
        p = p.Reshaped(s1);
      }
      if (shape.empty()) {
        shape = p.shape();
        shape[axis] = 0;
      }
      Shape want = shape;
      want[axis] = p.dim(axis);
      if (p.dtype() != parts[0].dtype() || p.shape() != want)
        return Error("element " + ir::ShapeStr(p.shape()) + " " + ir::DTypeName(p.dtype()) +
                     " does not concatenate with " + ir::ShapeStr(parts[0].shape()) + " along axis " +
                     std::to_string(axis));
      shape[axis] += p.dim(axis);
    }
    Tensor& out = ctx.Alloc(0, parts[0].dtype(), shape);
    return ConcatBytes(parts, axis, out);
  }

 private:
  int64_t axis_;
  bool new_axis_;
};

class SplitToSequenceKernel : public Kernel {
 public:
  SplitToSequenceKernel(int64_t axis, bool keepdims) : axis_(axis), keepdims_(keepdims) {}
  Status Run(KernelContext& ctx) override {
    const Tensor& x = *ctx.in(0);
    ASRC_RETURN_IF_ERROR(NeedFixedSize(x, "SplitToSequence"));
    ASRC_ASSIGN_OR_RETURN(int axis, NormAxis(axis_, x.rank()));
    const int64_t len = x.dim(axis);
    std::vector<int64_t> sizes;
    bool squeeze = false;
    if (!ctx.in(1)) {
      // One item per index of the axis, which may be 2^40 long on an empty tensor.
      ASRC_RETURN_IF_ERROR(CheckScratch(len, sizeof(Tensor), "SplitToSequence: the items"));
      sizes.assign(static_cast<size_t>(len), 1);
      squeeze = !keepdims_;
    } else {
      ASRC_ASSIGN_OR_RETURN(std::vector<int64_t> sp, Int64s(*ctx.in(1)));
      if (ctx.in(1)->rank() == 0) {
        if (sp[0] <= 0) return Error("split " + std::to_string(sp[0]) + " must be positive");
        ASRC_RETURN_IF_ERROR(CheckScratch(len / sp[0] + 1, sizeof(Tensor), "SplitToSequence: the items"));
        for (int64_t at = 0; at < len; at += std::min(sp[0], len - at)) sizes.push_back(std::min(sp[0], len - at));
      } else {
        ASRC_RETURN_IF_ERROR(CheckSplitSizes(sp, len).With("axis " + std::to_string(axis)));
        sizes = sp;
      }
    }
    const size_t es = ir::DTypeSize(x.dtype());
    int64_t outer = 1, inner = 1;
    for (int d = 0; d < axis; ++d) outer *= x.dim(d);
    for (int d = axis + 1; d < x.rank(); ++d) inner *= x.dim(d);
    std::vector<Tensor> parts;
    int64_t at = 0;
    for (int64_t sz : sizes) {
      Shape s = x.shape();
      s[axis] = sz;
      Tensor p(x.dtype(), s);
      const size_t row = static_cast<size_t>(sz * inner) * es;
      for (int64_t o = 0; o < outer && row; ++o)
        CopyBytes(p.raw() + o * row, x.raw() + (static_cast<size_t>((o * len + at) * inner)) * es, row);
      if (squeeze) s.erase(s.begin() + axis);
      parts.push_back(p.Reshaped(s));
      at += sz;
    }
    ctx.out(0) = Tensor::Sequence(x.dtype(), std::move(parts));
    return Status::Ok();
  }

 private:
  int64_t axis_;
  bool keepdims_;
};

Status OptionalOp(KernelContext& ctx) {
  const Tensor* v = ctx.in(0);
  if (v && v->kind() == ir::ValueKind::Optional) return Error("Optional of an optional is not a valid ONNX type");
  ctx.out(0) = Tensor::Optional(v ? v->dtype() : DType::Undefined, v);
  return Status::Ok();
}

// Opset 18: an omitted input has no element; a tensor or a sequence has one.
Status OptionalHasElement(KernelContext& ctx) {
  const Tensor* v = ctx.in(0);
  Tensor out(DType::Bool, {});
  out.data<bool>()[0] = v && (v->kind() != ir::ValueKind::Optional || !v->elements().empty());
  ctx.out(0) = out;
  return Status::Ok();
}

Status OptionalGetElement(KernelContext& ctx) {
  const Tensor* v = ctx.in(0);
  if (!v) return Error("OptionalGetElement needs an input");
  if (v->kind() != ir::ValueKind::Optional) {
    ctx.out(0) = *v;  // opset 18: a tensor or a sequence is its own element
    return Status::Ok();
  }
  if (v->elements().empty()) return Error("OptionalGetElement: the optional input is empty (None)");
  ctx.out(0) = v->elements()[0];
  return Status::Ok();
}

KernelFactory Fn(Status (*fn)(KernelContext&)) {
  return [fn](const KernelInit&) -> KernelPtr { return Make<ValueKernel>(fn); };
}

}  // namespace

void RegisterSequenceKernels(KernelRegistry& r) {
  const DType any = DType::Undefined;
  r.Register("", "SequenceEmpty", any, [](const KernelInit& i) -> KernelPtr {
    const int64_t code = i.node->attr_int("dtype", static_cast<int64_t>(DType::Float32));
    if (!ir::DTypeKnown(static_cast<int32_t>(code)) || code == 0)
      return Error("SequenceEmpty: dtype " + std::to_string(code) + " is not a tensor element type");
    const DType d = static_cast<DType>(code);
    return Make<ValueKernel>([d](KernelContext& ctx) {
      ctx.out(0) = Tensor::Sequence(d, {});
      return Status::Ok();
    });
  });
  r.Register("", "SequenceConstruct", any, Fn(SequenceConstruct));
  r.Register("", "SequenceInsert", any, Fn(SequenceInsert));
  r.Register("", "SequenceErase", any, Fn(SequenceErase));
  r.Register("", "SequenceAt", any, Fn(SequenceAt));
  r.Register("", "SequenceLength", any, Fn(SequenceLength));
  r.Register("", "ConcatFromSequence", any, [](const KernelInit& i) -> KernelPtr {
    if (!i.node->attr("axis")) return Error("ConcatFromSequence needs the axis attribute");
    return Make<ConcatFromSequenceKernel>(i.node->attr_int("axis", 0), i.node->attr_int("new_axis", 0) != 0);
  });
  r.Register("", "SplitToSequence", any, NeedInputs(1, [](const KernelInit& i) -> KernelPtr {
    return Make<SplitToSequenceKernel>(i.node->attr_int("axis", 0), i.node->attr_int("keepdims", 1) != 0);
  }));
  r.Register("", "Optional", any, Fn(OptionalOp));
  r.Register("", "OptionalHasElement", any, Fn(OptionalHasElement));
  r.Register("", "OptionalGetElement", any, Fn(OptionalGetElement));
}

}  // namespace asrc::runtime
