// Reductions (ReduceSum/Mean/Max/Min/Prod/SumSquare/L1/L2/LogSum/LogSumExp), ArgMax/ArgMin,
// Softmax/LogSoftmax (opset 13 axis semantics and the older flattening semantics).
#include <cmath>

#include "runtime/kernels/util.h"
#include "runtime/kernels/vmath.h"
#include "runtime/thread_pool.h"

namespace asrc::runtime {
namespace {

using namespace ku;

enum class Red { Sum, Mean, Max, Min, Prod, SumSquare, L1, L2, LogSum, LogSumExp };

class ReduceKernel : public Kernel {
 public:
  ReduceKernel(Red op, const char* name, std::vector<int64_t> axes, bool axes_input, bool keepdims,
               bool noop)
      : op_(op), name_(name), axes_(std::move(axes)), axes_input_(axes_input), keepdims_(keepdims),
        noop_(noop) {}

  Status Run(KernelContext& ctx) override {
    const Tensor& x0 = *ctx.in(0);
    std::vector<int64_t> axes = axes_;
    if (axes_input_ && ctx.in(1)) { ASRC_ASSIGN_OR_RETURN(axes, Int64s(*ctx.in(1))); }
    if (axes.empty() && noop_) {
      ctx.out(0) = x0;
      return Status::Ok();
    }
    int r = x0.rank();
    std::vector<bool> red(r, axes.empty());
    for (int64_t a : axes) {
      ASRC_ASSIGN_OR_RETURN(int ax, NormAxis(a, r));
      red[ax] = true;
    }
    Shape out, out_keep;
    for (int d = 0; d < r; ++d) {
      out_keep.push_back(red[d] ? 1 : x0.shape()[d]);
      if (!red[d] || keepdims_) out.push_back(red[d] ? 1 : x0.shape()[d]);
    }
    DType dt = x0.dtype();
    if (dt == DType::Float32 && (op_ == Red::Max || op_ == Red::Min) && TrailingAxes(red))
      return MaxMinRows(ctx, x0, out);
    Tensor x = dt == DType::Float16 ? HalfToFloat(x0) : x0;
    int64_t on = ir::ShapeNumel(out_keep);
    int64_t count = on > 0 ? x.numel() / std::max<int64_t>(on, 1) : 0;
    ASRC_RETURN_IF_ERROR(CheckScratch(on, sizeof(double), std::string(name_) + ": the accumulators"));
    std::vector<double> acc(on, Init());
    Status st;
    bool ok = DispatchNumeric(x.dtype(), [&](auto z) {
      using T = decltype(z);
      const T* p = x.data<T>();
      // Each input element adds into acc[out index]; innermost dim in a tight loop.
      BroadcastLoop<1>(x.shape(), {&out_keep}, [&](int64_t o, const int64_t* off, const int64_t* stp, int64_t len) {
        double* a = acc.data() + off[0];
        const T* src = p + o;
        int64_t s = stp[0];
        for (int64_t j = 0; j < len; ++j) Accum(a[j * s], static_cast<double>(src[j]));
      });
      Tensor y = dt == DType::Float16 ? Tensor(DType::Float32, out) : ctx.NewTensor(x.dtype(), out);
      T* q = y.data<T>();
      for (int64_t i = 0; i < on; ++i) q[i] = SaturateCast<T>(Finish(acc[i], count));
      ctx.out(0) = dt == DType::Float16 ? FloatToHalf(y) : y;
    });
    if (!ok) return DTypeError(name_, dt);
    return st;
  }

 private:
  // True when the reduced axes are the last ones (each output reduces one contiguous run).
  static bool TrailingAxes(const std::vector<bool>& red) {
    size_t d = red.size();
    while (d > 0 && red[d - 1]) --d;
    for (size_t k = 0; k < d; ++k)
      if (red[k]) return false;
    return d < red.size();
  }

  // Fast path of ReduceMax/ReduceMin over trailing axes of float32 (attention's row max before
  // Softmax): eight lanes the compiler vectorizes, NaN propagated as the reference loop does; the
  // same values (max and min do not depend on the order).
  Status MaxMinRows(KernelContext& ctx, const Tensor& x, const Shape& out) {
    const int64_t on = ir::ShapeNumel(out), n = on > 0 ? x.numel() / on : 0;
    Tensor& y = ctx.Alloc(0, DType::Float32, out);
    const bool mx = op_ == Red::Max;
    const float init = mx ? -std::numeric_limits<float>::infinity() : std::numeric_limits<float>::infinity();
    auto rows = [&](auto better) {
      ParallelFor(ctx.threads > 1 ? ctx.pool : nullptr, on, std::max<int64_t>(1, 32768 / std::max<int64_t>(n, 1)),
                  [&](int64_t o0, int64_t o1) {
        for (int64_t o = o0; o < o1; ++o) {
          const float* a = x.data<float>() + o * n;
          float lane[8] = {init, init, init, init, init, init, init, init};
          bool nan = false;
          int64_t i = 0;
          for (; i + 8 <= n; i += 8)
            for (int j = 0; j < 8; ++j) {
              const float v = a[i + j];
              nan |= v != v;
              lane[j] = better(v, lane[j]) ? v : lane[j];
            }
          float m = init;
          for (int j = 0; j < 8; ++j) m = better(lane[j], m) ? lane[j] : m;
          for (; i < n; ++i) {
            nan |= a[i] != a[i];
            m = better(a[i], m) ? a[i] : m;
          }
          y.data<float>()[o] = nan ? std::numeric_limits<float>::quiet_NaN() : m;
        }
      });
    };
    if (mx) rows([](float v, float m) { return v > m; });
    else rows([](float v, float m) { return v < m; });
    return Status::Ok();
  }

  double Init() const {
    switch (op_) {
      case Red::Max: return -std::numeric_limits<double>::infinity();
      case Red::Min: return std::numeric_limits<double>::infinity();
      case Red::Prod: return 1.0;
      default: return 0.0;
    }
  }
  void Accum(double& a, double v) const {
    switch (op_) {
      case Red::Sum: case Red::Mean: case Red::LogSum: a += v; break;
      case Red::Max: a = std::isnan(v) || v > a ? v : a; break;
      case Red::Min: a = std::isnan(v) || v < a ? v : a; break;
      case Red::Prod: a *= v; break;
      case Red::SumSquare: case Red::L2: a += v * v; break;
      case Red::L1: a += std::abs(v); break;
      case Red::LogSumExp: a += std::exp(v); break;
    }
  }
  double Finish(double a, int64_t count) const {
    switch (op_) {
      case Red::Mean: return count ? a / static_cast<double>(count) : std::nan("");
      case Red::L2: return std::sqrt(a);
      case Red::LogSum: case Red::LogSumExp: return std::log(a);
      default: return a;
    }
  }

  Red op_;
  const char* name_;
  std::vector<int64_t> axes_;
  bool axes_input_, keepdims_, noop_;
};

class ArgKernel : public Kernel {
 public:
  ArgKernel(bool max, int64_t axis, bool keepdims, bool last)
      : max_(max), axis_(axis), keepdims_(keepdims), last_(last) {}
  Status Run(KernelContext& ctx) override {
    const Tensor& x0 = *ctx.in(0);
    Tensor x = x0.dtype() == DType::Float16 ? HalfToFloat(x0) : x0;
    ASRC_ASSIGN_OR_RETURN(int ax, NormAxis(axis_, x.rank()));
    int64_t outer = 1, inner = 1, dim = x.shape()[ax];
    for (int d = 0; d < ax; ++d) outer *= x.shape()[d];
    for (int d = ax + 1; d < x.rank(); ++d) inner *= x.shape()[d];
    Shape out = x.shape();
    if (keepdims_) out[ax] = 1; else out.erase(out.begin() + ax);
    Tensor& o = ctx.Alloc(0, DType::Int64, out);
    bool ok = DispatchNumeric(x.dtype(), [&](auto z) {
      using T = decltype(z);
      const T* p = x.data<T>();
      for (int64_t i = 0; i < outer; ++i)
        for (int64_t j = 0; j < inner; ++j) {
          int64_t best = 0;
          T bv = p[i * dim * inner + j];
          for (int64_t t = 1; t < dim; ++t) {
            T v = p[(i * dim + t) * inner + j];
            bool better = max_ ? (last_ ? v >= bv : v > bv) : (last_ ? v <= bv : v < bv);
            if (better) { bv = v; best = t; }
          }
          o.data<int64_t>()[i * inner + j] = best;
        }
    });
    if (!ok) return DTypeError(max_ ? "ArgMax" : "ArgMin", x0.dtype());
    return Status::Ok();
  }

 private:
  bool max_;
  int64_t axis_;
  bool keepdims_, last_;
};

// Softmax over `dim` consecutive groups of `inner` stride. Rows are independent (parallel).
void SoftmaxRows(const float* x, float* y, int64_t outer, int64_t dim, int64_t inner, bool log,
                 ThreadPool* pool) {
  if (outer == 0 || dim == 0 || inner == 0) return;  // empty: no row to walk (outer may be 2^40)
  if (inner == 1) {
    ParallelFor(pool, outer, std::max<int64_t>(1, 16384 / std::max<int64_t>(dim, 1)), [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        const float* a = x + i * dim;
        float* o = y + i * dim;
        float m = vm::Max(a, dim);
        float sum = vm::ExpShiftSum(a, o, dim, m);
        if (log) {
          float ls = m + std::log(sum);
          for (int64_t t = 0; t < dim; ++t) o[t] = a[t] - ls;
        } else {
          vm::Scale(o, dim, 1.f / sum);
        }
      }
    });
    return;
  }
  for (int64_t i = 0; i < outer; ++i)
    for (int64_t j = 0; j < inner; ++j) {
      const float* a = x + i * dim * inner + j;
      float* o = y + i * dim * inner + j;
      float m = -std::numeric_limits<float>::infinity();
      for (int64_t t = 0; t < dim; ++t) m = std::max(m, a[t * inner]);
      double sum = 0;
      for (int64_t t = 0; t < dim; ++t) sum += std::exp(a[t * inner] - m);
      for (int64_t t = 0; t < dim; ++t)
        o[t * inner] = log ? a[t * inner] - m - static_cast<float>(std::log(sum))
                           : static_cast<float>(std::exp(a[t * inner] - m) / sum);
    }
}

class SoftmaxKernel : public Kernel {
 public:
  SoftmaxKernel(bool log, int64_t axis, bool flatten) : log_(log), axis_(axis), flatten_(flatten) {}
  Status Run(KernelContext& ctx) override {
    const Tensor& x0 = *ctx.in(0);
    const DType dt = x0.dtype();
    ASRC_ASSIGN_OR_RETURN(const Tensor x, AsFloat(x0, log_ ? "LogSoftmax" : "Softmax"));
    ASRC_ASSIGN_OR_RETURN(int ax, NormAxisOrScalar(axis_, x.rank()));
    int64_t outer = 1, dim = 1, inner = 1;
    if (flatten_) {
      for (int d = 0; d < x.rank(); ++d) (d < ax ? outer : dim) *= x.shape()[d];
    } else {
      dim = x.rank() ? x.shape()[ax] : 1;
      for (int d = 0; d < ax; ++d) outer *= x.shape()[d];
      for (int d = ax + 1; d < x.rank(); ++d) inner *= x.shape()[d];
    }
    Tensor y = dt == DType::Float32 ? ctx.NewTensor(dt, x.shape()) : Tensor(DType::Float32, x.shape());
    SoftmaxRows(x.data<float>(), y.data<float>(), outer, dim, inner, log_, ctx.threads > 1 ? ctx.pool : nullptr);
    return FromFloat(ctx, 0, dt, y);
  }

 private:
  bool log_;
  int64_t axis_;
  bool flatten_;
};

}  // namespace

void RegisterReduceKernels(KernelRegistry& r) {
  struct R { const char* name; Red op; };
  static const R reds[] = {{"ReduceSum", Red::Sum}, {"ReduceMean", Red::Mean}, {"ReduceMax", Red::Max},
                           {"ReduceMin", Red::Min}, {"ReduceProd", Red::Prod},
                           {"ReduceSumSquare", Red::SumSquare}, {"ReduceL1", Red::L1},
                           {"ReduceL2", Red::L2}, {"ReduceLogSum", Red::LogSum},
                           {"ReduceLogSumExp", Red::LogSumExp}};
  for (const R& rd : reds) {
    Red op = rd.op;
    const char* name = rd.name;
    r.Register("", name, DType::Undefined, [op, name](const KernelInit& i) -> KernelPtr {
      // ReduceSum takes axes as an input from opset 13, the others from opset 18.
      bool axes_input = op == Red::Sum ? i.opset >= 13 : i.opset >= 18;
      return Make<ReduceKernel>(
          op, name, i.node->attr_ints("axes"), axes_input, i.node->attr_int("keepdims", 1) != 0,
          i.node->attr_int("noop_with_empty_axes", 0) != 0);
    });
  }
  for (bool mx : {true, false})
    r.Register("", mx ? "ArgMax" : "ArgMin", DType::Undefined, [mx](const KernelInit& i) -> KernelPtr {
      return Make<ArgKernel>(
          mx, i.node->attr_int("axis", 0), i.node->attr_int("keepdims", 1) != 0,
          i.node->attr_int("select_last_index", 0) != 0);
    });
  for (bool lg : {false, true})
    r.Register("", lg ? "LogSoftmax" : "Softmax", DType::Undefined, [lg](const KernelInit& i) -> KernelPtr {
      bool flatten = i.opset < 13;
      return Make<SoftmaxKernel>(lg, i.node->attr_int("axis", flatten ? 1 : -1), flatten);
    });
}

}  // namespace asrc::runtime
