// Quantized operators (QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear, MatMulInteger,
// QLinearMatMul, and ORT's com.microsoft DynamicQuantizeMatMul and MatMulIntegerToFloat, which
// the session's fusion also plans), per ONNX semantics; ConvInteger is in conv_integer.cc.
// Matrix products run on integer arithmetic (runtime/gemm.h Igemm*), never dequantize-then-float;
// constant weights are packed once at plan time. Rounding is round-half-to-even (the default FP
// rounding mode, as ONNX and ONNX Runtime use); quantization divides by the scale (x / scale),
// as ONNX Runtime's MLAS does, so results match it bit for bit.
#include <cmath>
#include <functional>
#include <limits>
#include <memory>

#if defined(__AVX2__)
#include <immintrin.h>
#endif

#include "runtime/gemm.h"
#include "runtime/kernels/quant.h"
#include "runtime/kernels/util.h"
#include "runtime/thread_pool.h"

namespace asrc::runtime {
namespace {

using namespace ku;
using namespace qk;

// ---------------------------------------------------------------------------------------------
// Helpers.

// Splits a shape around `axis` for per-axis parameters: [outer, channels, inner].
struct AxisSplit {
  int64_t outer = 1, channels = 1, inner = 1;
};

// Resolves per-tensor (numel 1) or per-axis (1-D, numel == shape[axis]) parameters.
Result<AxisSplit> ParamLayout(const Shape& x, const Tensor& param, int64_t axis_attr,
                              const char* op) {
  AxisSplit s;
  for (int64_t d : x) s.inner *= d;
  if (param.numel() == 1 && param.rank() <= 1) return s;
  if (param.rank() != 1)
    return Error(std::string(op) + ": scale must be a scalar or 1-D, got shape " +
                 ir::ShapeStr(param.shape()));
  ASRC_ASSIGN_OR_RETURN(int axis, NormAxis(axis_attr, static_cast<int>(x.size())));
  if (param.numel() != x[axis])
    return Error(std::string(op) + ": per-axis scale has " + std::to_string(param.numel()) +
                 " entries but input dim " + std::to_string(axis) + " is " +
                 std::to_string(x[axis]));
  s.outer = 1;
  s.inner = 1;
  for (int d = 0; d < axis; ++d) s.outer *= x[d];
  s.channels = x[axis];
  for (size_t d = axis + 1; d < x.size(); ++d) s.inner *= x[d];
  return s;
}

template <class Q>
void QuantizeRange(const float* x, int64_t n, float scale, int32_t zp, Q* y) {
  const float lo = static_cast<float>(std::numeric_limits<Q>::min());
  const float hi = static_cast<float>(std::numeric_limits<Q>::max());
  const float fz = static_cast<float>(zp);
  for (int64_t i = 0; i < n; ++i) {
    float v = std::nearbyint(x[i] / scale) + fz;
    v = v > hi ? hi : (v >= lo ? v : lo);  // NaN -> lo
    y[i] = static_cast<Q>(v);
  }
}

// ---------------------------------------------------------------------------------------------
// QuantizeLinear(x, y_scale, y_zero_point?) -> y (dtype of y_zero_point, default uint8).
class QuantizeLinearKernel : public Kernel {
 public:
  explicit QuantizeLinearKernel(const ir::Node* n) : axis_(n->attr_int("axis", 1)) {}
  Status Run(KernelContext& ctx) override {
    const Tensor& x0 = *ctx.in(0);
    const Tensor& scale_t = *ctx.in(1);
    const Tensor* zp_t = ctx.in(2);
    Tensor xf;
    const Tensor* x = &x0;
    if (x0.dtype() == DType::Float16) {
      xf = HalfToFloat(x0);
      x = &xf;
    } else if (x0.dtype() != DType::Float32) {
      return Error(std::string("QuantizeLinear: input must be float32 or float16, got ") +
                   ir::DTypeName(x0.dtype()));
    }
    DType qt = zp_t ? zp_t->dtype() : DType::Uint8;
    ASRC_ASSIGN_OR_RETURN(AxisSplit s, ParamLayout(x->shape(), scale_t, axis_, "QuantizeLinear"));
    ASRC_ASSIGN_OR_RETURN(std::vector<float> scale, FloatValues(scale_t, "QuantizeLinear scale"));
    ASRC_ASSIGN_OR_RETURN(std::vector<int32_t> zp,
                          ZeroPoints(zp_t, static_cast<int64_t>(scale.size()), "zero point"));
    if (zp.size() != scale.size())
      return Error("QuantizeLinear: zero point and scale sizes differ");
    Tensor& y = ctx.Alloc(0, qt, x->shape());
    const float* px = x->data<float>();
    auto run = [&](auto* py) {
      for (int64_t o = 0; o < s.outer; ++o)
        for (int64_t c = 0; c < s.channels; ++c) {
          int64_t off = (o * s.channels + c) * s.inner;
          QuantizeRange(px + off, s.inner, scale[c], zp[c], py + off);
        }
    };
    switch (qt) {
      case DType::Uint8: run(y.data<uint8_t>()); break;
      case DType::Int8: run(y.data<int8_t>()); break;
      case DType::Uint16: run(y.data<uint16_t>()); break;
      case DType::Int16: run(y.data<int16_t>()); break;
      default:
        return Error(std::string("QuantizeLinear: unsupported output dtype ") +
                     ir::DTypeName(qt));
    }
    return Status::Ok();
  }

 private:
  int64_t axis_;
};

// DequantizeLinear(x, x_scale, x_zero_point?) -> y = (x - zp) * scale (dtype of the scale).
class DequantizeLinearKernel : public Kernel {
 public:
  explicit DequantizeLinearKernel(const ir::Node* n) : axis_(n->attr_int("axis", 1)) {}
  Status Run(KernelContext& ctx) override {
    const Tensor& x = *ctx.in(0);
    const Tensor& scale_t = *ctx.in(1);
    const Tensor* zp_t = ctx.in(2);
    if (zp_t && zp_t->dtype() != x.dtype())
      return Error("DequantizeLinear: zero point dtype differs from the input's");
    ASRC_ASSIGN_OR_RETURN(AxisSplit s, ParamLayout(x.shape(), scale_t, axis_, "DequantizeLinear"));
    ASRC_ASSIGN_OR_RETURN(std::vector<float> scale,
                          FloatValues(scale_t, "DequantizeLinear scale"));
    ASRC_ASSIGN_OR_RETURN(std::vector<int32_t> zp,
                          ZeroPoints(zp_t, static_cast<int64_t>(scale.size()), "zero point"));
    if (zp.size() != scale.size())
      return Error("DequantizeLinear: zero point and scale sizes differ");
    Tensor yf = ctx.NewTensor(DType::Float32, x.shape());
    float* py = yf.data<float>();
    auto run = [&](const auto* px) {
      for (int64_t o = 0; o < s.outer; ++o)
        for (int64_t c = 0; c < s.channels; ++c) {
          int64_t off = (o * s.channels + c) * s.inner;
          const float sc = scale[c];
          const int64_t z = zp[c];  // int32 data minus an int32 zero point may overflow int32
          for (int64_t i = 0; i < s.inner; ++i)
            py[off + i] = static_cast<float>(static_cast<int64_t>(px[off + i]) - z) * sc;
        }
    };
    switch (x.dtype()) {
      case DType::Uint8: run(x.data<uint8_t>()); break;
      case DType::Int8: run(x.data<int8_t>()); break;
      case DType::Uint16: run(x.data<uint16_t>()); break;
      case DType::Int16: run(x.data<int16_t>()); break;
      case DType::Int32: run(x.data<int32_t>()); break;
      default:
        return Error(std::string("DequantizeLinear: unsupported input dtype ") +
                     ir::DTypeName(x.dtype()));
    }
    if (scale_t.dtype() == DType::Float16) ctx.out(0) = FloatToHalf(yf);
    else ctx.out(0) = std::move(yf);
    return Status::Ok();
  }

 private:
  int64_t axis_;
};

// Dynamic uint8 quantization parameters of `x`, as ONNX (and ORT) define them: the range is
// widened to include 0, scale = range / 255 (1 when the range is empty), zero point rounded.
// min(0, x) and max(0, x) over x[0, n), into *lo and *hi.
void MinMax(const float* x, int64_t n, float* lo_out, float* hi_out) {
  float mn = 0.f, mx = 0.f;
  int64_t i = 0;
#if defined(__AVX2__)
  __m256 vmn = _mm256_setzero_ps(), vmx = _mm256_setzero_ps();
  for (; i + 8 <= n; i += 8) {
    __m256 v = _mm256_loadu_ps(x + i);
    vmn = _mm256_min_ps(vmn, v);
    vmx = _mm256_max_ps(vmx, v);
  }
  alignas(32) float lo[8], hi[8];
  _mm256_store_ps(lo, vmn);
  _mm256_store_ps(hi, vmx);
  for (int j = 0; j < 8; ++j) {
    mn = std::min(mn, lo[j]);
    mx = std::max(mx, hi[j]);
  }
#endif
  for (; i < n; ++i) {
    mn = std::min(mn, x[i]);
    mx = std::max(mx, x[i]);
  }
  *lo_out = mn;
  *hi_out = mx;
}

// DynamicQuantizeLinear's scale and zero point for a range [mn, mx] that includes 0.
void ParamsFromRange(float mn, float mx, float* scale, uint8_t* zp) {
  float s = mx == mn ? 1.f : (mx - mn) / 255.f;
  float z = std::nearbyint(std::min(255.f, std::max(0.f, 0.f - mn / s)));
  *scale = s;
  *zp = static_cast<uint8_t>(z);
}

void QuantizeU8(const float* x, int64_t n, float scale, uint8_t zp, uint8_t* y) {
#if defined(__AVX2__)
  const __m256 vs = _mm256_set1_ps(scale);
  const __m256i vz = _mm256_set1_epi32(zp);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    // Division and the default rounding mode (nearest even): as the scalar loop below.
    __m256 q = _mm256_div_ps(_mm256_loadu_ps(x + i), vs);
    q = _mm256_round_ps(q, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256i v = _mm256_add_epi32(_mm256_cvtps_epi32(q), vz);
    v = _mm256_max_epi32(_mm256_min_epi32(v, _mm256_set1_epi32(255)), _mm256_setzero_si256());
    __m128i lo = _mm256_castsi256_si128(v), hi = _mm256_extracti128_si256(v, 1);
    __m128i p16 = _mm_packus_epi32(lo, hi);
    __m128i p8 = _mm_packus_epi16(p16, p16);
    _mm_storel_epi64(reinterpret_cast<__m128i*>(y + i), p8);
  }
  QuantizeRange(x + i, n - i, scale, zp, y + i);
#else
  QuantizeRange(x, n, scale, zp, y);
#endif
}

// DynamicQuantizeLinear of x[0, n) into y, with its scale and zero point: the min/max and the
// rounding split over the pool in parts of whole 8-float vectors (both are per element, so the
// result does not depend on the split).
void DynamicQuantize(const float* x, int64_t n, ThreadPool* pool, float* scale, uint8_t* zp,
                     uint8_t* y) {
  const int parts = pool && n >= 32768 ? pool->threads() : 1;
  const int64_t vecs = (n + 7) / 8;
  auto each_part = [&](const std::function<void(int64_t, int64_t, int64_t)>& fn) {
    ParallelFor(parts > 1 ? pool : nullptr, parts, 1, [&](int64_t p0, int64_t p1) {
      for (int64_t p = p0; p < p1; ++p)
        fn(p, std::min(n, vecs * p / parts * 8), std::min(n, vecs * (p + 1) / parts * 8));
    });
  };
  std::vector<float> lo(parts), hi(parts);
  each_part([&](int64_t p, int64_t b, int64_t e) { MinMax(x + b, e - b, &lo[p], &hi[p]); });
  ParamsFromRange(*std::min_element(lo.begin(), lo.end()), *std::max_element(hi.begin(), hi.end()),
                  scale, zp);
  each_part([&](int64_t, int64_t b, int64_t e) { QuantizeU8(x + b, e - b, *scale, *zp, y + b); });
}

// DynamicQuantizeLinear(x) -> y (uint8), y_scale (float scalar), y_zero_point (uint8 scalar).
Status DynamicQuantizeLinearRun(KernelContext& ctx) {
  const Tensor& x = *ctx.in(0);
  if (x.dtype() != DType::Float32)
    return Error(std::string("DynamicQuantizeLinear: input must be float32, got ") +
                 ir::DTypeName(x.dtype()));
  float scale;
  uint8_t zp;
  DynamicQuantize(x.data<float>(), x.numel(), ctx.threads > 1 ? ctx.pool : nullptr, &scale, &zp,
                  ctx.Alloc(0, DType::Uint8, x.shape()).data<uint8_t>());
  if (ctx.outputs->size() > 1) ctx.Alloc(1, DType::Float32, {}).data<float>()[0] = scale;
  if (ctx.outputs->size() > 2) ctx.Alloc(2, DType::Uint8, {}).data<uint8_t>()[0] = zp;
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------------
// Integer matrix products with numpy matmul broadcasting.

// The operands of one integer matmul after 1-D promotion and batch broadcasting.
struct MatMulPlan {
  int64_t M = 0, K = 0, N = 0;
  Shape batch;              // broadcast batch shape
  Shape out_shape;
  std::vector<int64_t> a_off, b_off;  // element offsets of each batch's A and B matrices
  int64_t b_batches = 1;    // number of distinct B matrices
  std::vector<int64_t> b_index;  // per output batch, which B matrix
};

Result<MatMulPlan> PlanMatMul(const Shape& a_in, const Shape& b_in, const char* op) {
  if (a_in.empty() || b_in.empty()) return Error(std::string(op) + ": inputs must not be scalars");
  Shape a = a_in, b = b_in;
  bool a1 = a.size() == 1, b1 = b.size() == 1;
  if (a1) a.insert(a.begin(), 1);
  if (b1) b.push_back(1);
  MatMulPlan p;
  p.M = a[a.size() - 2];
  p.K = a.back();
  p.N = b.back();
  if (b[b.size() - 2] != p.K)
    return Error(std::string(op) + ": inner dimensions differ: " + ir::ShapeStr(a_in) + " x " +
                 ir::ShapeStr(b_in));
  Shape ab(a.begin(), a.end() - 2), bb(b.begin(), b.end() - 2);
  ASRC_ASSIGN_OR_RETURN(p.batch, BroadcastShape(ab, bb));
  p.b_batches = ir::ShapeNumel(bb);
  std::vector<int64_t> aitem = BroadcastItems(ab, p.batch);
  p.b_index = BroadcastItems(bb, p.batch);
  for (size_t i = 0; i < aitem.size(); ++i) {
    p.a_off.push_back(aitem[i] * p.M * p.K);
    p.b_off.push_back(p.b_index[i] * p.K * p.N);
  }
  p.out_shape = p.batch;
  if (!a1) p.out_shape.push_back(p.M);
  if (!b1) p.out_shape.push_back(p.N);
  return p;
}

// int32 result of (A - a_zp) x (B - b_zp) into `out` (shape plan.out_shape). Zero points:
// a per tensor or per row (M entries, or one set per A batch), b per tensor or per column.
class IntMatMul {
 public:
  // Packs B at plan time when it and its zero point are constants.
  Status Prepare(const Tensor* b_const, const Tensor* bzp_const, bool bzp_given) {
    if (!b_const || (bzp_given && !bzp_const)) return Status::Ok();
    if (!IsQuant8(b_const->dtype()) || b_const->rank() < 2) return Status::Ok();
    ASRC_ASSIGN_OR_RETURN(packs_, PackAll(*b_const, bzp_const));
    packed_shape_ = b_const->shape();
    return Status::Ok();
  }

  Status Run(const Tensor& a, const Tensor& b, const Tensor* azp_t, const Tensor* bzp_t,
             int threads, const char* op, Tensor& out, const MatMulPlan& p) {
    if (!IsQuant8(a.dtype()) || !IsQuant8(b.dtype()))
      return Error(std::string(op) + ": A and B must be uint8 or int8, got " +
                   ir::DTypeName(a.dtype()) + " and " + ir::DTypeName(b.dtype()));
    if (azp_t && azp_t->dtype() != a.dtype())
      return Error(std::string(op) + ": a_zero_point dtype differs from A's");
    if (bzp_t && bzp_t->dtype() != b.dtype())
      return Error(std::string(op) + ": b_zero_point dtype differs from B's");
    ASRC_ASSIGN_OR_RETURN(std::vector<int32_t> azp, ZeroPoints(azp_t, 1, "a_zero_point"));
    const int64_t a_batches = a.numel() / std::max<int64_t>(1, p.M * p.K);
    const bool a_per_row = azp.size() > 1;
    if (a_per_row && static_cast<int64_t>(azp.size()) != p.M &&
        static_cast<int64_t>(azp.size()) != a_batches * p.M)
      return Error(std::string(op) + ": a_zero_point has " + std::to_string(azp.size()) +
                   " entries, expected 1 or " + std::to_string(p.M) + " (rows of A)");
    std::vector<PackedIgemmB> local;
    const std::vector<PackedIgemmB>* packs = &packs_;
    if (packs_.empty() || b.shape() != packed_shape_) {
      ASRC_ASSIGN_OR_RETURN(local, PackAll(b, bzp_t));
      packs = &local;
    }
    int32_t* y = out.data<int32_t>();
    const bool a_signed = a.dtype() == DType::Int8;
    const int64_t nb = static_cast<int64_t>(p.a_off.size());
    // One B for all batches with contiguous A: fold the batches into the rows.
    if (packs->size() == 1 && static_cast<int64_t>(nb) == a_batches) {
      const int64_t rows = nb * p.M;
      if (!a_per_row) {
        IgemmPacked(rows, a.raw(), a_signed, azp[0], (*packs)[0], y, p.N, threads);
      } else {
        std::vector<int32_t> z(static_cast<size_t>(rows));
        for (int64_t r = 0; r < rows; ++r)
          z[r] = azp.size() == static_cast<size_t>(rows) ? azp[r] : azp[r % p.M];
        IgemmPackedPerRow(rows, a.raw(), a_signed, z.data(), (*packs)[0], y, p.N, threads);
      }
      return Status::Ok();
    }
    for (int64_t i = 0; i < nb; ++i) {
      const uint8_t* ap = a.raw() + p.a_off[i];
      const PackedIgemmB& bp = (*packs)[packs->size() == 1 ? 0 : p.b_index[i]];
      int32_t* yp = y + i * p.M * p.N;
      if (!a_per_row) {
        IgemmPacked(p.M, ap, a_signed, azp[0], bp, yp, p.N, threads);
      } else {
        const int64_t abatch = p.a_off[i] / std::max<int64_t>(1, p.M * p.K);
        const int32_t* z = azp.size() == static_cast<size_t>(p.M) ? azp.data()
                                                                    : azp.data() + abatch * p.M;
        IgemmPackedPerRow(p.M, ap, a_signed, z, bp, yp, p.N, threads);
      }
    }
    return Status::Ok();
  }

 private:
  // One packed matrix per B batch (B's own batch dims, not broadcast).
  static Result<std::vector<PackedIgemmB>> PackAll(const Tensor& b, const Tensor* bzp_t) {
    Shape bs = b.shape();
    if (bs.size() == 1) bs.push_back(1);
    const int64_t K = bs[bs.size() - 2], N = bs.back();
    const int64_t batches = K * N == 0 ? 0 : b.numel() / (K * N);
    ASRC_ASSIGN_OR_RETURN(std::vector<int32_t> bzp, ZeroPoints(bzp_t, 1, "b_zero_point"));
    const bool per_col = bzp.size() > 1;
    if (per_col && static_cast<int64_t>(bzp.size()) != N &&
        static_cast<int64_t>(bzp.size()) != batches * N)
      return Error("b_zero_point has " + std::to_string(bzp.size()) +
                   " entries, expected 1 or " + std::to_string(N) + " (columns of B)");
    std::vector<PackedIgemmB> packs;
    const bool b_signed = b.dtype() == DType::Int8;
    for (int64_t i = 0; i < std::max<int64_t>(batches, 1); ++i) {
      const int32_t* z = bzp.data();
      if (per_col && static_cast<int64_t>(bzp.size()) == batches * N) z += i * N;
      packs.push_back(PackIgemmB(K, N, b.raw() + i * K * N, b_signed, z, per_col));
    }
    return packs;
  }

  std::vector<PackedIgemmB> packs_;
  Shape packed_shape_;
};

// MatMulInteger(A, B, a_zero_point?, b_zero_point?) -> int32.
class MatMulIntegerKernel : public Kernel {
 public:
  Status Init(const KernelInit& init) {
    return mm_.Prepare(ConstIn(init, 1), ConstIn(init, 3), HasIn(init.node, 3));
  }
  Status Run(KernelContext& ctx) override {
    const Tensor& a = *ctx.in(0);
    const Tensor& b = *ctx.in(1);
    ASRC_ASSIGN_OR_RETURN(MatMulPlan p, PlanMatMul(a.shape(), b.shape(), "MatMulInteger"));
    Tensor& y = ctx.Alloc(0, DType::Int32, p.out_shape);
    return mm_.Run(a, b, ctx.in(2), ctx.in(3), ctx.threads, "MatMulInteger", y, p);
  }

 private:
  IntMatMul mm_;
};

// Requantizes int32 accumulators: q = saturate(round(acc * multiplier[col]) + zp).
template <class Q>
void Requantize(const int32_t* acc, int64_t rows, int64_t cols, const std::vector<float>& mult,
                int32_t zp, Q* q) {
  const double lo = std::numeric_limits<Q>::min(), hi = std::numeric_limits<Q>::max();
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) {
      double m = mult.size() == 1 ? mult[0] : mult[c];
      double v = std::nearbyint(static_cast<double>(acc[r * cols + c]) * m) + zp;
      q[r * cols + c] = static_cast<Q>(v > hi ? hi : (v >= lo ? v : lo));
    }
}

// QLinearMatMul(a, a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp) -> y (dtype of y_zp).
class QLinearMatMulKernel : public Kernel {
 public:
  Status Init(const KernelInit& init) {
    return mm_.Prepare(ConstIn(init, 3), ConstIn(init, 5), HasIn(init.node, 5));
  }
  Status Run(KernelContext& ctx) override {
    const Tensor& a = *ctx.in(0);
    const Tensor& b = *ctx.in(3);
    ASRC_ASSIGN_OR_RETURN(MatMulPlan p, PlanMatMul(a.shape(), b.shape(), "QLinearMatMul"));
    Tensor acc = ctx.NewTensor(DType::Int32, p.out_shape);
    ASRC_RETURN_IF_ERROR(
        mm_.Run(a, b, ctx.in(2), ctx.in(5), ctx.threads, "QLinearMatMul", acc, p));
    ASRC_ASSIGN_OR_RETURN(std::vector<float> as, FloatValues(*ctx.in(1), "a_scale"));
    ASRC_ASSIGN_OR_RETURN(std::vector<float> bs, FloatValues(*ctx.in(4), "b_scale"));
    ASRC_ASSIGN_OR_RETURN(std::vector<float> ys, FloatValues(*ctx.in(6), "y_scale"));
    if (as.size() != 1 || ys.size() != 1 || (bs.size() != 1 && static_cast<int64_t>(bs.size()) != p.N))
      return Error("QLinearMatMul: a_scale and y_scale must be scalars, b_scale scalar or per column");
    const Tensor* yzp_t = ctx.in(7);
    ASRC_ASSIGN_OR_RETURN(std::vector<int32_t> yzp, ZeroPoints(yzp_t, 1, "y_zero_point"));
    if (yzp.size() != 1) return Error("QLinearMatMul: y_zero_point must be a scalar");
    std::vector<float> mult(bs.size());
    for (size_t i = 0; i < bs.size(); ++i) mult[i] = as[0] * bs[i] / ys[0];
    DType qt = yzp_t ? yzp_t->dtype() : DType::Uint8;
    Tensor& y = ctx.Alloc(0, qt, p.out_shape);
    const int64_t rows = p.N == 0 ? 0 : acc.numel() / p.N;
    if (qt == DType::Uint8) Requantize(acc.data<int32_t>(), rows, p.N, mult, yzp[0], y.data<uint8_t>());
    else if (qt == DType::Int8) Requantize(acc.data<int32_t>(), rows, p.N, mult, yzp[0], y.data<int8_t>());
    else return Error(std::string("QLinearMatMul: unsupported output dtype ") + ir::DTypeName(qt));
    return Status::Ok();
  }

 private:
  IntMatMul mm_;
};

// y = float(acc) * s[col] (+ bias[col]) over rows x n int32 accumulators, in place (acc and y
// are the same memory). The same roundings as the unfused Cast -> Mul -> Add nodes: a multiply,
// then an add, never a fused multiply-add (this file is compiled with -ffp-contract=off).
void ScaleBiasInPlace(void* data, int64_t rows, int64_t n, const float* s, const float* bias) {
  for (int64_t r = 0; r < rows; ++r) {
    uint8_t* row = static_cast<uint8_t*>(data) + r * n * 4;
    int64_t c = 0;
#if defined(__AVX2__)
    for (; c + 8 <= n; c += 8) {
      __m256 v = _mm256_cvtepi32_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + c * 4)));
      v = _mm256_mul_ps(v, _mm256_loadu_ps(s + c));
      if (bias) v = _mm256_add_ps(v, _mm256_loadu_ps(bias + c));
      _mm256_storeu_ps(reinterpret_cast<float*>(row + c * 4), v);
    }
#endif
    for (; c < n; ++c) {
      int32_t a;
      CopyBytes(&a, row + c * 4, 4);
      float v = static_cast<float>(a) * s[c];
      if (bias) v = v + bias[c];
      CopyBytes(row + c * 4, &v, 4);
    }
  }
}

// Integer products scaled back to float, the fused forms of DynamicQuantizeLinear ->
// MatMulInteger -> Cast -> Mul(scale) [-> Add(bias)] (runtime/fusion.h), as ONNX Runtime's
// contrib ops define them:
//   com.microsoft DynamicQuantizeMatMul(A float, B, b_scale, b_zero_point?, bias?): A quantized
//     dynamically to uint8 as DynamicQuantizeLinear does;
//   com.microsoft MatMulIntegerToFloat(A_q, B, a_scale, b_scale, a_zero_point?, b_zero_point?,
//     bias?): A already quantized (a_scale a scalar).
// Y = (A_q - a_zp)(B - b_zp) * (a_scale * b_scale[col]) [+ bias[col]]. Constant B is packed and
// constant b_scale and bias are read once, at plan time.
class QuantMatMulToFloatKernel : public Kernel {
 public:
  explicit QuantMatMulToFloatKernel(bool dynamic)
      : dynamic_(dynamic), op_(dynamic ? "DynamicQuantizeMatMul" : "MatMulIntegerToFloat"),
        b_scale_in_(dynamic ? 2 : 3), b_zp_in_(dynamic ? 3 : 5), bias_in_(dynamic ? 4 : 6) {}

  Status Init(const KernelInit& init) {
    if (const Tensor* t = ConstIn(init, b_scale_in_)) {
      ASRC_ASSIGN_OR_RETURN(bs_, FloatValues(*t, "b_scale"));
      bs_const_ = true;
    }
    if (const Tensor* t = ConstIn(init, bias_in_); t && t->dtype() == DType::Float32) {
      bias_.assign(t->data<float>(), t->data<float>() + t->numel());
      bias_const_ = true;
    }
    return mm_.Prepare(ConstIn(init, 1), ConstIn(init, b_zp_in_), HasIn(init.node, b_zp_in_));
  }

  Status Run(KernelContext& ctx) override {
    const Tensor& a = *ctx.in(0);
    const Tensor& b = *ctx.in(1);
    ASRC_ASSIGN_OR_RETURN(MatMulPlan p, PlanMatMul(a.shape(), b.shape(), op_));
    float a_scale = 1.f;
    Tensor aq, azp_scalar;
    const Tensor* a_q = &a;
    const Tensor* azp = nullptr;
    if (dynamic_) {
      if (a.dtype() != DType::Float32) return Error(std::string(op_) + ": A must be float32");
      uint8_t zp;
      aq = ctx.NewTensor(DType::Uint8, a.shape());
      DynamicQuantize(a.data<float>(), a.numel(), ctx.threads > 1 ? ctx.pool : nullptr, &a_scale,
                      &zp, aq.data<uint8_t>());
      azp_scalar = Tensor(DType::Uint8, {});
      azp_scalar.data<uint8_t>()[0] = zp;
      a_q = &aq;
      azp = &azp_scalar;
    } else {
      ASRC_ASSIGN_OR_RETURN(std::vector<float> as, FloatValues(*ctx.in(2), "a_scale"));
      if (as.size() != 1) return Error(std::string(op_) + ": a_scale must be a scalar");
      a_scale = as[0];
      azp = ctx.in(4);
      if (azp && azp->numel() != 1) return Error(std::string(op_) + ": a_zero_point must be a scalar");
    }
    std::vector<float> bs_in;
    if (!bs_const_) {
      ASRC_ASSIGN_OR_RETURN(bs_in, FloatValues(*ctx.in(b_scale_in_), "b_scale"));
    }
    const std::vector<float>& bs = bs_const_ ? bs_ : bs_in;
    if (bs.size() != 1 && static_cast<int64_t>(bs.size()) != p.N)
      return Error(std::string(op_) + ": b_scale must be a scalar or per column");
    const float* bias = nullptr;
    if (const Tensor* bt = ctx.in(bias_in_)) {
      if (bt->dtype() != DType::Float32 || bt->numel() != p.N)
        return Error(std::string(op_) + ": bias must be float32 with N entries");
      bias = bias_const_ ? bias_.data() : bt->data<float>();
    }
    // The int32 accumulators go into Y's buffer and are scaled there.
    Tensor& y = ctx.Alloc(0, DType::Float32, p.out_shape);
    Status st = mm_.Run(*a_q, b, azp, ctx.in(b_zp_in_), ctx.threads, op_, y, p);
    if (ctx.buffers && aq.defined()) ctx.buffers->Put(aq);
    ASRC_RETURN_IF_ERROR(st);
    scale_.resize(static_cast<size_t>(p.N));
    for (int64_t c = 0; c < p.N; ++c) scale_[c] = a_scale * (bs.size() == 1 ? bs[0] : bs[c]);
    const int64_t rows = p.N == 0 ? 0 : y.numel() / p.N;
    uint8_t* yraw = y.raw();
    const float* sc = scale_.data();
    const int64_t N = p.N;
    ParallelFor(ctx.threads > 1 ? ctx.pool : nullptr, rows, std::max<int64_t>(1, 8192 / std::max<int64_t>(N, 1)),
                [&](int64_t r0, int64_t r1) { ScaleBiasInPlace(yraw + r0 * N * 4, r1 - r0, N, sc, bias); });
    return Status::Ok();
  }

 private:
  bool dynamic_;
  const char* op_;
  int b_scale_in_, b_zp_in_, bias_in_;
  IntMatMul mm_;
  std::vector<float> bs_, bias_, scale_;
  bool bs_const_ = false, bias_const_ = false;
};

}  // namespace

void qk::DynamicQuantizeU8(const float* x, int64_t n, ThreadPool* pool, float* scale, uint8_t* zp, uint8_t* y) {
  DynamicQuantize(x, n, pool, scale, zp, y);
}

void RegisterQuantKernels(KernelRegistry& registry) {
  registry.Register("", "QuantizeLinear", DType::Undefined,
                    [](const KernelInit& init) -> Result<std::unique_ptr<Kernel>> {
                      return std::unique_ptr<Kernel>(new QuantizeLinearKernel(init.node));
                    });
  registry.Register("", "DequantizeLinear", DType::Undefined,
                    [](const KernelInit& init) -> Result<std::unique_ptr<Kernel>> {
                      return std::unique_ptr<Kernel>(new DequantizeLinearKernel(init.node));
                    });
  registry.Register("", "DynamicQuantizeLinear", DType::Undefined,
                    [](const KernelInit&) -> Result<std::unique_ptr<Kernel>> {
                      return MakeFnKernel(DynamicQuantizeLinearRun);
                    });
  registry.Register("", "MatMulInteger", DType::Undefined, WithInit<MatMulIntegerKernel>());
  registry.Register("", "QLinearMatMul", DType::Undefined, WithInit<QLinearMatMulKernel>());
  for (bool dynamic : {true, false})
    registry.Register("com.microsoft", dynamic ? "DynamicQuantizeMatMul" : "MatMulIntegerToFloat",
                      DType::Undefined, [dynamic](const KernelInit& init) -> Result<std::unique_ptr<Kernel>> {
                        auto k = std::make_unique<QuantMatMulToFloatKernel>(dynamic);
                        ASRC_RETURN_IF_ERROR(k->Init(init));
                        return std::unique_ptr<Kernel>(std::move(k));
                      });
}

}  // namespace asrc::runtime
