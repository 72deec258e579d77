// ONNX Runtime's com.microsoft quantized operators that its static quantizer (quantize_static,
// QOperator format) writes around the matrix products: QLinearAdd, QLinearMul, QLinearSigmoid,
// QLinearLeakyRelu, QLinearConcat, QLinearGlobalAveragePool and QGemm (quantization_defs.cc in
// ONNX Runtime defines them). DynamicQuantizeLSTM is in qlstm.cc.
//
// Every 8-bit value goes through the float formula of the operator's contract: dequantize
// ((q - zp) * scale), compute in float, quantize (round-half-even of v / scale, + zp, saturate),
// as ONNX Runtime's MLAS reference loops do. Where scales and zero points are constants (as
// quantizers write them), the elementwise ops evaluate that formula once per possible input
// byte (pair) at plan time and run as table lookups; the lookup and the formula give the same
// bytes (tests/runtime/qops_test.cc). ONNX Runtime's AVX2 paths use fixed-point arithmetic for
// some of these ops, so outputs may differ from it by one quantization step.
#include <cmath>
#include <cstdlib>
#include <limits>
#include <string>

#include "runtime/gemm.h"
#include "runtime/kernels/quant.h"
#include "runtime/kernels/util.h"
#include "runtime/thread_pool.h"

namespace asrc::runtime {
namespace {

using namespace ku;
using namespace qk;

// One per-tensor quantization: value = (q - zp) * scale.
struct QParam {
  float scale = 1.f;
  int32_t zp = 0;
};

template <class Q>
Q QuantizeOne(float v, float scale, int32_t zp) {
  const float lo = static_cast<float>(std::numeric_limits<Q>::min());
  const float hi = static_cast<float>(std::numeric_limits<Q>::max());
  float q = std::nearbyint(v / scale) + static_cast<float>(zp);
  q = q > hi ? hi : (q >= lo ? q : lo);  // NaN -> lo
  return static_cast<Q>(q);
}

// The value of a quantized byte (read as Q).
template <class Q>
float DequantByte(uint8_t byte, const QParam& p) {
  return static_cast<float>(static_cast<int32_t>(static_cast<Q>(byte)) - p.zp) * p.scale;
}

// Input `scale_in`'s scale (a float scalar, required) and input `zp_in`'s zero point (a scalar of
// dtype q; 0 when omitted).
Result<QParam> ReadParam(const KernelContext& ctx, int scale_in, int zp_in, DType q, const std::string& what) {
  const std::string op = ctx.node->op_type;
  const Tensor* s = ctx.in(scale_in);
  if (!s) return Error(op + ": " + what + " scale (input " + std::to_string(scale_in) + ") is required");
  if (s->numel() != 1)
    return Error(op + ": " + what + " scale must be a scalar, got shape " + ir::ShapeStr(s->shape()));
  ASRC_ASSIGN_OR_RETURN(std::vector<float> sv, FloatValues(*s, (op + " " + what + " scale").c_str()));
  QParam p;
  p.scale = sv[0];
  if (const Tensor* z = ctx.in(zp_in)) {
    if (z->dtype() != q)
      return Error(op + ": " + what + " zero point is " + ir::DTypeName(z->dtype()) + ", the data " +
                   ir::DTypeName(q));
    if (z->numel() != 1)
      return Error(op + ": " + what + " zero point must be a scalar, got shape " + ir::ShapeStr(z->shape()));
    ASRC_ASSIGN_OR_RETURN(std::vector<int32_t> zv, ZeroPoints(z, 1, "zero point"));
    p.zp = zv[0];
  }
  return p;
}

Status Need8Bit(const KernelContext& ctx, const Tensor& t, const char* what) {
  if (IsQuant8(t.dtype())) return Status::Ok();
  return Error(ctx.node->op_type + ": " + what + " is " + ir::DTypeName(t.dtype()) +
               "; supported: uint8, int8");
}

// True when every input in `ins` is a plan-time constant or omitted.
bool AllConstant(const KernelInit& init, std::initializer_list<int> ins) {
  for (int i : ins)
    if (HasIn(init.node, i) && !ConstIn(init, i)) return false;
  return true;
}

// ASRC_QOPS=ref (read when a kernel is planned) runs the formula per element instead of the byte
// tables, for tests and checks.
bool ReferenceLoops() {
  const char* e = std::getenv("ASRC_QOPS");
  return e && std::string(e) == "ref";
}

// A byte table computed from constant parameters, built on the first run (the data dtype is
// known then) and reused while the dtype stays the same.
struct ByteTable {
  std::vector<uint8_t> bytes;
  DType dtype = DType::Undefined;
  bool Ready(DType d) const { return dtype == d && !bytes.empty(); }
};

// ---------------------------------------------------------------------------------------------
// QLinearAdd / QLinearMul (A, A_scale, A_zp?, B, B_scale, B_zp?, C_scale, C_zp?) -> C, numpy
// broadcasting. Add: C = (va + vb) / C_scale + C_zp; Mul: C = va * vb / C_scale + C_zp.
struct BinaryParams {
  QParam a, b, c;
  bool mul = false;
};

template <class Q>
uint8_t CombineBytes(uint8_t x, uint8_t y, const BinaryParams& p) {
  const float va = DequantByte<Q>(x, p.a), vb = DequantByte<Q>(y, p.b);
  return static_cast<uint8_t>(QuantizeOne<Q>(p.mul ? va * vb : va + vb, p.c.scale, p.c.zp));
}

// Over the broadcast of a and b into y: the formula per element (table null) or the lookup
// table[a * 256 + b].
template <class Q>
void BinaryLoop(const Tensor& a, const Tensor& b, const BinaryParams& p, const uint8_t* table, Tensor& y) {
  const uint8_t* pa = a.raw();
  const uint8_t* pb = b.raw();
  uint8_t* py = y.raw();
  BroadcastLoop<2>(y.shape(), {&a.shape(), &b.shape()},
                   [&](int64_t o, const int64_t* off, const int64_t* st, int64_t n) {
                     const uint8_t* xa = pa + off[0];
                     const uint8_t* xb = pb + off[1];
                     if (table) {
                       for (int64_t i = 0; i < n; ++i) py[o + i] = table[xa[i * st[0]] * 256 + xb[i * st[1]]];
                     } else {
                       for (int64_t i = 0; i < n; ++i) py[o + i] = CombineBytes<Q>(xa[i * st[0]], xb[i * st[1]], p);
                     }
                   });
}

class QLinearBinaryKernel : public Kernel {
 public:
  QLinearBinaryKernel(bool mul, bool constant_params) : mul_(mul), constant_(constant_params), ref_(ReferenceLoops()) {}
  Status Run(KernelContext& ctx) override {
    const Tensor& a = *ctx.in(0);
    const Tensor& b = *ctx.in(3);
    ASRC_RETURN_IF_ERROR(Need8Bit(ctx, a, "A"));
    if (b.dtype() != a.dtype())
      return Error(ctx.node->op_type + ": A is " + ir::DTypeName(a.dtype()) + " but B is " + ir::DTypeName(b.dtype()));
    const DType q = a.dtype();
    BinaryParams p;
    p.mul = mul_;
    ASRC_ASSIGN_OR_RETURN(p.a, ReadParam(ctx, 1, 2, q, "A"));
    ASRC_ASSIGN_OR_RETURN(p.b, ReadParam(ctx, 4, 5, q, "B"));
    ASRC_ASSIGN_OR_RETURN(p.c, ReadParam(ctx, 6, 7, q, "C"));
    ASRC_ASSIGN_OR_RETURN(Shape out, BroadcastShape(a.shape(), b.shape()));
    Tensor& y = ctx.Alloc(0, q, out);
    const bool s8 = q == DType::Int8;
    // A table costs 65536 evaluations: worth it for constant parameters and large enough tensors.
    if (constant_ && !ref_ && !table_.Ready(q) && y.numel() >= 4096) {
      table_.bytes.resize(65536);
      for (int x = 0; x < 256; ++x)
        for (int z = 0; z < 256; ++z)
          table_.bytes[x * 256 + z] = s8 ? CombineBytes<int8_t>(static_cast<uint8_t>(x), static_cast<uint8_t>(z), p)
                                         : CombineBytes<uint8_t>(static_cast<uint8_t>(x), static_cast<uint8_t>(z), p);
      table_.dtype = q;
    }
    const uint8_t* table = table_.Ready(q) && !ref_ ? table_.bytes.data() : nullptr;
    if (s8) BinaryLoop<int8_t>(a, b, p, table, y);
    else BinaryLoop<uint8_t>(a, b, p, table, y);
    return Status::Ok();
  }

 private:
  bool mul_, constant_, ref_;
  ByteTable table_;
};

// ---------------------------------------------------------------------------------------------
// Unary ops through a 256-entry table: QLinearSigmoid and QLinearLeakyRelu
// (X, X_scale, X_zp?, Y_scale, Y_zp?) -> Y = quantize(f(dequantize(X))).
template <class Q>
uint8_t UnaryByte(uint8_t x, const QParam& in, const QParam& out, float (*f)(float, float), float alpha) {
  return static_cast<uint8_t>(QuantizeOne<Q>(f(DequantByte<Q>(x, in), alpha), out.scale, out.zp));
}

float SigmoidF(float v, float) { return 1.f / (1.f + std::exp(-v)); }
float LeakyReluF(float v, float alpha) { return v >= 0.f ? v : v * alpha; }

class QLinearUnaryKernel : public Kernel {
 public:
  QLinearUnaryKernel(float (*f)(float, float), float alpha, bool constant_params)
      : f_(f), alpha_(alpha), constant_(constant_params), ref_(ReferenceLoops()) {}
  Status Run(KernelContext& ctx) override {
    const Tensor& x = *ctx.in(0);
    ASRC_RETURN_IF_ERROR(Need8Bit(ctx, x, "X"));
    const DType q = x.dtype();
    ASRC_ASSIGN_OR_RETURN(QParam in, ReadParam(ctx, 1, 2, q, "X"));
    ASRC_ASSIGN_OR_RETURN(QParam out, ReadParam(ctx, 3, 4, q, "Y"));
    const bool s8 = q == DType::Int8;
    ByteTable local;
    ByteTable& t = constant_ ? table_ : local;
    if (!t.Ready(q)) {
      t.bytes.resize(256);
      for (int v = 0; v < 256; ++v)
        t.bytes[v] = s8 ? UnaryByte<int8_t>(static_cast<uint8_t>(v), in, out, f_, alpha_)
                        : UnaryByte<uint8_t>(static_cast<uint8_t>(v), in, out, f_, alpha_);
      t.dtype = q;
    }
    Tensor& y = ctx.Alloc(0, q, x.shape());
    const uint8_t* px = x.raw();
    uint8_t* py = y.raw();
    const uint8_t* tb = t.bytes.data();
    if (ref_) {
      for (int64_t i = 0; i < x.numel(); ++i)
        py[i] = s8 ? UnaryByte<int8_t>(px[i], in, out, f_, alpha_) : UnaryByte<uint8_t>(px[i], in, out, f_, alpha_);
    } else {
      for (int64_t i = 0; i < x.numel(); ++i) py[i] = tb[px[i]];
    }
    return Status::Ok();
  }

 private:
  float (*f_)(float, float);
  float alpha_;
  bool constant_, ref_;
  ByteTable table_;
};

// ---------------------------------------------------------------------------------------------
// QLinearConcat(Y_scale, Y_zp, (X_i, X_i_scale, X_i_zp)...) -> Y: each input requantized into
// Y's parameters (copied when its parameters are Y's), then concatenated along `axis`.
class QLinearConcatKernel : public Kernel {
 public:
  explicit QLinearConcatKernel(int64_t axis) : axis_(axis) {}
  Status Run(KernelContext& ctx) override {
    const std::string& op = ctx.node->op_type;
    const int n_in = static_cast<int>(ctx.inputs.size());
    if (n_in < 5 || (n_in - 2) % 3 != 0)
      return Error(op + ": expects Y_scale, Y_zero_point and (tensor, scale, zero point) triples, got " +
                   std::to_string(n_in) + " inputs");
    const int parts = (n_in - 2) / 3;
    const Tensor* first = ctx.in(2);
    if (!first) return Error(op + ": input 2 is required");
    ASRC_RETURN_IF_ERROR(Need8Bit(ctx, *first, "input 2"));
    const DType q = first->dtype();
    ASRC_ASSIGN_OR_RETURN(QParam yp, ReadParam(ctx, 0, 1, q, "Y"));
    ASRC_ASSIGN_OR_RETURN(int axis, NormAxis(axis_, static_cast<int>(first->rank())));
    Shape out = first->shape();
    out[axis] = 0;
    for (int i = 0; i < parts; ++i) {
      const Tensor* x = ctx.in(2 + 3 * i);
      if (!x) return Error(op + ": input " + std::to_string(2 + 3 * i) + " is required");
      if (x->dtype() != q) return Error(op + ": input " + std::to_string(2 + 3 * i) + " is " + ir::DTypeName(x->dtype()) + ", input 2 " + ir::DTypeName(q));
      if (x->rank() != first->rank()) return Error(op + ": inputs differ in rank");
      for (int d = 0; d < static_cast<int>(out.size()); ++d)
        if (d != axis && x->dim(d) != first->dim(d))
          return Error(op + ": input shapes " + ir::ShapeStr(first->shape()) + " and " + ir::ShapeStr(x->shape()) +
                       " differ outside axis " + std::to_string(axis));
      out[axis] += x->dim(axis);
    }
    Tensor& y = ctx.Alloc(0, q, out);
    int64_t outer = 1, inner = 1;
    for (int d = 0; d < axis; ++d) outer *= out[d];
    for (size_t d = axis + 1; d < out.size(); ++d) inner *= out[d];
    const int64_t y_row = out[axis] * inner;
    int64_t at = 0;
    uint8_t table[256];
    for (int i = 0; i < parts; ++i) {
      const Tensor& x = *ctx.in(2 + 3 * i);
      ASRC_ASSIGN_OR_RETURN(QParam xp, ReadParam(ctx, 3 + 3 * i, 4 + 3 * i, q, "input " + std::to_string(i)));
      const bool same = xp.scale == yp.scale && xp.zp == yp.zp;
      for (int v = 0; v < 256 && !same; ++v) {
        const uint8_t b = static_cast<uint8_t>(v);
        table[v] = q == DType::Int8 ? static_cast<uint8_t>(QuantizeOne<int8_t>(DequantByte<int8_t>(b, xp), yp.scale, yp.zp))
                                    : QuantizeOne<uint8_t>(DequantByte<uint8_t>(b, xp), yp.scale, yp.zp);
      }
      const int64_t row = x.dim(axis) * inner;
      for (int64_t o = 0; o < outer; ++o) {
        const uint8_t* src = x.raw() + o * row;
        uint8_t* dst = y.raw() + o * y_row + at;
        if (same) CopyBytes(dst, src, static_cast<size_t>(row));
        else
          for (int64_t k = 0; k < row; ++k) dst[k] = table[src[k]];
      }
      at += row;
    }
    return Status::Ok();
  }

 private:
  int64_t axis_;
};

// ---------------------------------------------------------------------------------------------
// QLinearGlobalAveragePool(X, x_scale, x_zp, y_scale, y_zp) -> Y [N, C, 1, ...] (channels_last:
// [N, 1, ..., C]). As MLAS: the integer sum of a channel's S values, minus S * x_zp, times
// x_scale / (y_scale * S), rounded, + y_zp.
class QLinearGlobalAveragePoolKernel : public Kernel {
 public:
  explicit QLinearGlobalAveragePoolKernel(bool channels_last) : channels_last_(channels_last) {}
  Status Run(KernelContext& ctx) override {
    const Tensor& x = *ctx.in(0);
    ASRC_RETURN_IF_ERROR(Need8Bit(ctx, x, "X"));
    if (x.rank() < 3)
      return Error(ctx.node->op_type + ": X must have rank >= 3, got " + ir::ShapeStr(x.shape()));
    const DType q = x.dtype();
    ASRC_ASSIGN_OR_RETURN(QParam xp, ReadParam(ctx, 1, 2, q, "x"));
    ASRC_ASSIGN_OR_RETURN(QParam yp, ReadParam(ctx, 3, 4, q, "y"));
    const int r = static_cast<int>(x.rank());
    const int c_axis = channels_last_ ? r - 1 : 1;
    const int64_t N = x.dim(0), C = x.dim(c_axis);
    const int64_t S = N * C == 0 ? 0 : x.numel() / (N * C);
    Shape out(r, 1);
    out[0] = N;
    out[c_axis] = C;
    Tensor& y = ctx.Alloc(0, q, out);
    const float mult = xp.scale / (yp.scale * static_cast<float>(S));
    auto run = [&](auto tag) {
      using Q = decltype(tag);
      const Q* px = x.data<Q>();
      Q* py = y.data<Q>();
      for (int64_t n = 0; n < N; ++n)
        for (int64_t c = 0; c < C; ++c) {
          int64_t acc = -S * int64_t{xp.zp};  // S * 255 overflows int32 for big planes
          for (int64_t s = 0; s < S; ++s)
            acc += channels_last_ ? px[(n * S + s) * C + c] : px[(n * C + c) * S + s];
          py[n * C + c] = QuantizeOne<Q>(static_cast<float>(acc) * mult, 1.f, yp.zp);
        }
    };
    if (q == DType::Int8) run(int8_t{});
    else run(uint8_t{});
    return Status::Ok();
  }

 private:
  bool channels_last_;
};

// ---------------------------------------------------------------------------------------------
// QGemm(A, a_scale, a_zp, B, b_scale, b_zp, C?, y_scale?, y_zp?) -> Y [M, N]:
// acc = (A' - a_zp)(B' - b_zp) + C (int32, C broadcast to [M, N]); Y = acc * alpha * a_scale *
// b_scale[col], quantized with y_scale / y_zp when y_scale is given, float otherwise. Constant B
// is transposed (transB) and packed once, at plan time.
class QGemmKernel : public Kernel {
 public:
  Status Init(const KernelInit& init) {
    const ir::Node& n = *init.node;
    trans_a_ = n.attr_int("transA", 0) != 0;
    trans_b_ = n.attr_int("transB", 0) != 0;
    alpha_ = n.attr_float("alpha", 1.f);
    const Tensor* b = ConstIn(init, 3);
    if (b && AllConstant(init, {5})) {
      ASRC_ASSIGN_OR_RETURN(packed_, Pack(*b, ConstIn(init, 5), n.op_type));
      packed_ok_ = true;
    }
    return Status::Ok();
  }

  Status Run(KernelContext& ctx) override {
    const std::string& op = ctx.node->op_type;
    const Tensor& a = *ctx.in(0);
    const Tensor& b = *ctx.in(3);
    ASRC_RETURN_IF_ERROR(Need8Bit(ctx, a, "A"));
    if (a.rank() != 2 || b.rank() != 2)
      return Error(op + ": A and B must be 2-D, got " + ir::ShapeStr(a.shape()) + " and " + ir::ShapeStr(b.shape()));
    const int64_t M = trans_a_ ? a.dim(1) : a.dim(0), K = trans_a_ ? a.dim(0) : a.dim(1);
    const int64_t N = trans_b_ ? b.dim(0) : b.dim(1);
    if ((trans_b_ ? b.dim(1) : b.dim(0)) != K)
      return Error(op + ": inner dimensions differ: A " + ir::ShapeStr(a.shape()) + (trans_a_ ? "^T" : "") + " x B " +
                   ir::ShapeStr(b.shape()) + (trans_b_ ? "^T" : ""));
    ASRC_ASSIGN_OR_RETURN(QParam ap, ReadParam(ctx, 1, 2, a.dtype(), "a"));
    ASRC_ASSIGN_OR_RETURN(std::vector<float> bs, FloatValues(*ctx.in(4), "QGemm b_scale"));
    if (bs.size() != 1 && static_cast<int64_t>(bs.size()) != N)
      return Error(op + ": b_scale must be a scalar or have N=" + std::to_string(N) + " entries, got " + std::to_string(bs.size()));
    PackedIgemmB local;
    if (!packed_ok_) {
      ASRC_ASSIGN_OR_RETURN(local, Pack(b, ctx.in(5), op));
    }
    const PackedIgemmB& pb = packed_ok_ ? packed_ : local;
    if (pb.K != K || pb.N != N) return Error(op + ": B's shape changed since it was packed");
    // A' as [M, K] rows.
    Tensor at;
    const uint8_t* a_rows = a.raw();
    if (trans_a_) {
      at = ctx.NewTensor(a.dtype(), {M, K});
      for (int64_t k = 0; k < K; ++k)
        for (int64_t m = 0; m < M; ++m) at.raw()[m * K + k] = a.raw()[k * M + m];
      a_rows = at.raw();
    }
    Tensor acc = ctx.NewTensor(DType::Int32, {M, N});
    int32_t* pacc = acc.data<int32_t>();
    if (M > 0 && N > 0) IgemmPacked(M, a_rows, a.dtype() == DType::Int8, ap.zp, pb, pacc, N, ctx.threads);
    if (const Tensor* c = ctx.in(6)) ASRC_RETURN_IF_ERROR(AddBias(*c, M, N, op, pacc));
    std::vector<float> mult(bs.size());
    for (size_t i = 0; i < bs.size(); ++i) mult[i] = alpha_ * ap.scale * bs[i];
    if (!ctx.in(7)) {
      float* y = ctx.Alloc(0, DType::Float32, {M, N}).data<float>();
      for (int64_t i = 0; i < M * N; ++i) y[i] = static_cast<float>(pacc[i]) * mult[mult.size() == 1 ? 0 : i % N];
      return Status::Ok();
    }
    const DType qt = ctx.in(8) ? ctx.in(8)->dtype() : DType::Uint8;
    if (!IsQuant8(qt)) return Error(op + ": y_zero_point is " + std::string(ir::DTypeName(qt)) + "; supported: uint8, int8");
    ASRC_ASSIGN_OR_RETURN(QParam yp, ReadParam(ctx, 7, 8, qt, "y"));
    for (float& m : mult) m /= yp.scale;
    Tensor& y = ctx.Alloc(0, qt, {M, N});
    auto requant = [&](auto tag) {
      using Q = decltype(tag);
      Q* py = y.data<Q>();
      for (int64_t i = 0; i < M * N; ++i)
        py[i] = QuantizeOne<Q>(static_cast<float>(pacc[i]) * mult[mult.size() == 1 ? 0 : i % N], 1.f, yp.zp);
    };
    if (qt == DType::Int8) requant(int8_t{});
    else requant(uint8_t{});
    return Status::Ok();
  }

 private:
  // B' [K, N] packed with its zero points (scalar or per column).
  Result<PackedIgemmB> Pack(const Tensor& b, const Tensor* bzp, const std::string& op) const {
    if (!IsQuant8(b.dtype())) return Error(op + ": B is " + std::string(ir::DTypeName(b.dtype())) + "; supported: uint8, int8");
    if (b.rank() != 2) return Error(op + ": B must be 2-D, got " + ir::ShapeStr(b.shape()));
    const int64_t K = trans_b_ ? b.dim(1) : b.dim(0), N = trans_b_ ? b.dim(0) : b.dim(1);
    if (bzp && bzp->dtype() != b.dtype())
      return Error(op + ": b_zero_point is " + std::string(ir::DTypeName(bzp->dtype())) + ", B " + ir::DTypeName(b.dtype()));
    ASRC_ASSIGN_OR_RETURN(std::vector<int32_t> zp, ZeroPoints(bzp, 1, "b_zero_point"));
    if (zp.size() != 1 && static_cast<int64_t>(zp.size()) != N)
      return Error(op + ": b_zero_point must be a scalar or have N=" + std::to_string(N) + " entries");
    std::vector<uint8_t> kn;
    const uint8_t* src = b.raw();
    if (trans_b_) {
      kn.resize(static_cast<size_t>(K * N));
      for (int64_t n = 0; n < N; ++n)
        for (int64_t k = 0; k < K; ++k) kn[k * N + n] = src[n * K + k];
      src = kn.data();
    }
    return PackIgemmB(K, N, src, b.dtype() == DType::Int8, zp.data(), zp.size() > 1);
  }

  // acc += C, C int32 and unidirectionally broadcastable to [M, N].
  static Status AddBias(const Tensor& c, int64_t M, int64_t N, const std::string& op, int32_t* acc) {
    if (c.dtype() != DType::Int32) return Error(op + ": C must be int32, got " + ir::DTypeName(c.dtype()));
    if (c.rank() > 2) return Error(op + ": C must have rank <= 2, got " + ir::ShapeStr(c.shape()));
    const Shape mn = {M, N};
    for (int d = 0; d < static_cast<int>(c.rank()); ++d) {
      const int64_t cd = c.dim(d), od = mn[2 - c.rank() + d];
      if (cd != 1 && cd != od)
        return Error(op + ": C " + ir::ShapeStr(c.shape()) + " does not broadcast to " + ir::ShapeStr(mn));
    }
    const std::vector<int64_t> item = BroadcastItems(c.shape(), mn);
    const int32_t* pc = c.data<int32_t>();
    for (int64_t i = 0; i < M * N; ++i) acc[i] += pc[item[i]];
    return Status::Ok();
  }

  bool trans_a_ = false, trans_b_ = false;
  float alpha_ = 1.f;
  PackedIgemmB packed_;
  bool packed_ok_ = false;
};

}  // namespace

void RegisterMsQuantKernels(KernelRegistry& r) {
  const char* ms = "com.microsoft";
  for (bool mul : {false, true})
    r.Register(ms, mul ? "QLinearMul" : "QLinearAdd", DType::Undefined,
               NeedInputs(7, [mul](const KernelInit& i) -> KernelPtr {
                 return Make<QLinearBinaryKernel>(mul, AllConstant(i, {1, 2, 4, 5, 6, 7}));
               }));
  r.Register(ms, "QLinearSigmoid", DType::Undefined, NeedInputs(4, [](const KernelInit& i) -> KernelPtr {
               return Make<QLinearUnaryKernel>(SigmoidF, 0.f, AllConstant(i, {1, 2, 3, 4}));
             }));
  r.Register(ms, "QLinearLeakyRelu", DType::Undefined, NeedInputs(4, [](const KernelInit& i) -> KernelPtr {
               return Make<QLinearUnaryKernel>(LeakyReluF, i.node->attr_float("alpha", 0.01f), AllConstant(i, {1, 2, 3, 4}));
             }));
  r.Register(ms, "QLinearConcat", DType::Undefined, NeedInputs(2, [](const KernelInit& i) -> KernelPtr {
               if (!i.node->attr("axis")) return Error("QLinearConcat needs the axis attribute");
               return Make<QLinearConcatKernel>(i.node->attr_int("axis", 0));
             }));
  r.Register(ms, "QLinearGlobalAveragePool", DType::Undefined, NeedInputs(4, [](const KernelInit& i) -> KernelPtr {
               return Make<QLinearGlobalAveragePoolKernel>(i.node->attr_int("channels_last", 0) != 0);
             }));
  r.Register(ms, "QGemm", DType::Undefined, NeedInputs(5, WithInit<QGemmKernel>()));
}

}  // namespace asrc::runtime
