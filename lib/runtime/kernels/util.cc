#include "runtime/kernels/util.h"

#include <charconv>
#include <cmath>
#include <cstdlib>

#include "runtime/thread_pool.h"

namespace asrc::runtime::ku {

KernelFactory NeedInputs(int n, KernelFactory f) {
  return [n, f = std::move(f)](const KernelInit& i) -> Result<std::unique_ptr<Kernel>> {
    for (int k = 0; k < n; ++k)
      if (k >= static_cast<int>(i.node->inputs.size()) || !i.node->inputs[k])
        return Error("op '" + i.node->op_type + "' needs its first " + std::to_string(n) +
                     " inputs; input " + std::to_string(k) + " is missing");
    return f(i);
  };
}

Result<std::vector<int64_t>> Int64s(const Tensor& t) {
  std::vector<int64_t> v(static_cast<size_t>(t.numel()));
  if (t.dtype() == DType::Int64) {
    for (int64_t i = 0; i < t.numel(); ++i) v[i] = t.data<int64_t>()[i];
  } else if (t.dtype() == DType::Int32) {
    for (int64_t i = 0; i < t.numel(); ++i) v[i] = t.data<int32_t>()[i];
  } else {
    return Error(std::string("expected an int64 or int32 tensor, got ") + ir::DTypeName(t.dtype()));
  }
  return v;
}

Result<double> ScalarAsDouble(const Tensor& t) {
  if (t.numel() != 1) return Error("expected a scalar, got shape " + ir::ShapeStr(t.shape()));
  if (t.dtype() == DType::Float16) return static_cast<double>(ir::HalfToFloat(t.data<uint16_t>()[0]));
  double out = 0;
  if (!DispatchNumericOrBool(t.dtype(), [&](auto z) {
        using T = decltype(z);
        out = static_cast<double>(t.data<T>()[0]);
      }))
    return Error(std::string("unsupported scalar dtype ") + ir::DTypeName(t.dtype()));
  return out;
}

Result<int64_t> CheckedInt64(double d, const std::string& what) {
  // 2^63 is exactly representable; every double below it (and >= -2^63) casts to int64.
  if (d != d || d >= 9223372036854775808.0 || d < -9223372036854775808.0)
    return Error(what + " is " + (d != d ? std::string("NaN") : std::to_string(d)) +
                 ", not an integer in int64's range");
  return static_cast<int64_t>(d);
}

Result<int64_t> ScalarAsInt64(const Tensor& t, const std::string& what) {
  if (t.numel() != 1) return Error(what + ": expected a scalar, got shape " + ir::ShapeStr(t.shape()));
  if (t.dtype() == DType::Int64) return t.data<int64_t>()[0];
  if (t.dtype() == DType::Int32) return int64_t{t.data<int32_t>()[0]};
  auto v = ScalarAsDouble(t);
  if (!v.ok()) return Error(what + ": " + v.status().message());
  return CheckedInt64(*v, what);
}

Status CheckSplitSizes(const std::vector<int64_t>& sizes, int64_t dim) {
  int64_t left = dim;
  for (int64_t v : sizes) {
    if (v < 0) return Error("split size " + std::to_string(v) + " is negative");
    if (v > left) return Error("split sizes sum to more than the axis dim " + std::to_string(dim));
    left -= v;
  }
  if (left != 0)
    return Error("split sizes sum to " + std::to_string(dim - left) + ", the axis dim is " + std::to_string(dim));
  return Status::Ok();
}

Result<int> NormAxis(int64_t axis, int rank) {
  if (rank == 0) return Error("axis " + std::to_string(axis) + " on a scalar (rank 0), which has no axis");
  if (axis < -rank || axis >= rank)
    return Error("axis " + std::to_string(axis) + " out of range for rank " + std::to_string(rank));
  return static_cast<int>(axis < 0 ? axis + rank : axis);
}

Result<int> NormAxisOrScalar(int64_t axis, int rank) {
  if (rank == 0 && (axis == 0 || axis == -1)) return 0;
  return NormAxis(axis, rank);
}

void ParallelElements(const KernelContext& ctx, int64_t n, int64_t grain,
                      const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  if (ctx.threads <= 1 || !ctx.pool || n < 2 * grain) {
    fn(0, n);
    return;
  }
  const int64_t vecs = (n + 15) / 16;
  ctx.pool->ParallelFor(vecs, std::max<int64_t>(1, grain / 16), [&](int64_t v0, int64_t v1) {
    fn(v0 * 16, std::min(n, v1 * 16));
  });
}

Result<Shape> BroadcastShape(const Shape& a, const Shape& b) {
  size_t r = std::max(a.size(), b.size());
  Shape out(r);
  for (size_t i = 0; i < r; ++i) {
    int64_t da = i < r - a.size() ? 1 : a[i - (r - a.size())];
    int64_t db = i < r - b.size() ? 1 : b[i - (r - b.size())];
    if (da == db || db == 1) out[i] = da;
    else if (da == 1) out[i] = db;
    else return Error("cannot broadcast " + ir::ShapeStr(a) + " with " + ir::ShapeStr(b));
  }
  return out;
}

Status SliceGeometry(const Shape& in, const std::vector<int64_t>& starts,
                     const std::vector<int64_t>& ends, std::vector<int64_t> axes,
                     std::vector<int64_t> steps, Shape* out_shape, std::vector<int64_t>* begin_out,
                     std::vector<int64_t>* step_out) {
  if (starts.size() != ends.size()) return Error("starts and ends differ in length");
  if (axes.empty()) for (size_t i = 0; i < starts.size(); ++i) axes.push_back(static_cast<int64_t>(i));
  if (steps.empty()) steps.assign(starts.size(), 1);
  if (axes.size() != starts.size() || steps.size() != starts.size()) return Error("axes/steps length mismatch");
  int r = static_cast<int>(in.size());
  Shape out = in;
  std::vector<int64_t> begin(r, 0), step(r, 1);
  for (size_t i = 0; i < starts.size(); ++i) {
    ASRC_ASSIGN_OR_RETURN(int ax, NormAxis(axes[i], r));
    int64_t dim = in[ax];
    int64_t st = steps[i];
    if (st == 0) return Error("step 0");
    // A step beyond the dim takes one element either way; bounded, its stride (step * the dim's
    // stride) and -step cannot overflow (INT64_MIN: onnx_run_fuzzer class).
    const int64_t far = std::max<int64_t>(dim, 1);
    st = std::clamp<int64_t>(st, -far, far);
    int64_t b = starts[i], e = ends[i];
    if (b < 0) b += dim;
    if (e < 0) e += dim;
    if (st > 0) {
      b = std::clamp<int64_t>(b, 0, dim);
      e = std::clamp<int64_t>(e, 0, dim);
      out[ax] = e > b ? (e - b - 1) / st + 1 : 0;
    } else {
      b = std::clamp<int64_t>(b, 0, dim - 1);
      e = std::clamp<int64_t>(e, -1, dim - 1);
      out[ax] = b > e ? (b - e - 1) / (-st) + 1 : 0;
    }
    begin[ax] = b;
    step[ax] = st;
  }
  *out_shape = std::move(out);
  *begin_out = std::move(begin);
  *step_out = std::move(step);
  return Status::Ok();
}

std::vector<int64_t> Strides(const Shape& s) {
  std::vector<int64_t> st(s.size());
  int64_t acc = 1;
  for (int i = static_cast<int>(s.size()) - 1; i >= 0; --i) {
    st[i] = acc;
    acc *= s[i];
  }
  return st;
}

std::vector<int64_t> BroadcastStrides(const Shape& in, const Shape& out) {
  std::vector<int64_t> st(out.size(), 0);
  std::vector<int64_t> ins = Strides(in);
  size_t off = out.size() - in.size();
  for (size_t i = 0; i < in.size(); ++i) st[off + i] = in[i] == 1 ? 0 : ins[i];
  return st;
}

std::vector<int64_t> BroadcastItems(const Shape& in, const Shape& out) {
  std::vector<int64_t> st = BroadcastStrides(in, out);
  std::vector<int64_t> items(static_cast<size_t>(ir::ShapeNumel(out)));
  for (size_t i = 0; i < items.size(); ++i) {
    int64_t rem = static_cast<int64_t>(i), off = 0;
    for (int d = static_cast<int>(out.size()) - 1; d >= 0; --d) {
      off += rem % out[d] * st[d];
      rem /= out[d];
    }
    items[i] = off;
  }
  return items;
}

Tensor HalfToFloat(const Tensor& t) {
  Tensor out(DType::Float32, t.shape());
  const uint16_t* s = t.data<uint16_t>();
  float* d = out.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) d[i] = ir::HalfToFloat(s[i]);
  return out;
}

Tensor FloatToHalf(const Tensor& t) {
  Tensor out(DType::Float16, t.shape());
  const float* s = t.data<float>();
  uint16_t* d = out.data<uint16_t>();
  for (int64_t i = 0; i < t.numel(); ++i) d[i] = ir::FloatToHalf(s[i]);
  return out;
}

Status CheckScratch(int64_t count, size_t item_bytes, const std::string& what) {
  const size_t budget = ir::MemoryBudget(), used = ir::MemoryInUse();
  const size_t room = budget > used ? budget - used : 0;
  if (count >= 0 && (item_bytes == 0 || static_cast<uint64_t>(count) <= room / item_bytes)) return Status::Ok();
  return Error(what + ": " + std::to_string(count) + " items of " + std::to_string(item_bytes) + " bytes (" +
               ir::BytesText(static_cast<double>(count) * static_cast<double>(item_bytes)) +
               ") would go over the memory budget of " + ir::BytesText(static_cast<double>(budget)) +
               " (ASRC_MEMORY_BUDGET sets it)");
}

Result<Tensor> AsFloat(const Tensor& t, const char* op) {
  if (t.dtype() == DType::Float32) return t;
  if (t.dtype() == DType::Float16) return HalfToFloat(t);
  if (t.dtype() != DType::Float64) return FloatDTypeError(op, t.dtype());
  Tensor f(DType::Float32, t.shape());
  ASRC_RETURN_IF_ERROR(ConvertInto(t, f));
  return f;
}

Status FromFloat(KernelContext& ctx, int i, DType dt, const Tensor& y) {
  if (dt == DType::Float32) ctx.out(i) = y;
  else if (dt == DType::Float16) ctx.out(i) = FloatToHalf(y);
  else { Tensor& o = ctx.Alloc(i, dt, y.shape()); ASRC_RETURN_IF_ERROR(ConvertInto(y, o)); }
  return Status::Ok();
}

namespace {
template <class To, class From>
To ConvertOne(From v) {
  if constexpr (std::is_same_v<To, bool>) {
    return v != From(0);
  } else if constexpr (std::is_floating_point_v<From> && std::is_integral_v<To>) {
    return SaturateCast<To>(static_cast<double>(v));  // NaN to 0 like most runtimes
  } else {
    return static_cast<To>(v);
  }
}

// Casts from and to string: numbers print as the shortest text that reads back to the same
// value (std::to_chars); text parses with strtod / strtoll ("NaN", "INF", "-INF" included).
Status StringConvert(const Tensor& in, Tensor& out) {
  int64_t n = in.numel();
  if (out.dtype() == DType::String) {
    Tensor d(DType::Float64, in.shape());
    bool is_float = in.dtype() == DType::Float32 || in.dtype() == DType::Float16 || in.dtype() == DType::BFloat16;
    Tensor f(DType::Float32, in.shape());
    if (is_float) ASRC_RETURN_IF_ERROR(ConvertInto(in, f));
    else ASRC_RETURN_IF_ERROR(ConvertInto(in, d));
    char buf[64];
    for (int64_t i = 0; i < n; ++i) {
      if (in.dtype() == DType::Int64) {
        out.strings[i] = std::to_string(in.data<int64_t>()[i]);
        continue;
      }
      double v = is_float ? f.data<float>()[i] : d.data<double>()[i];
      if (std::isnan(v)) { out.strings[i] = "NaN"; continue; }
      if (std::isinf(v)) { out.strings[i] = v > 0 ? "INF" : "-INF"; continue; }
      auto r = is_float ? std::to_chars(buf, buf + sizeof(buf), f.data<float>()[i]) : std::to_chars(buf, buf + sizeof(buf), v);
      out.strings[i].assign(buf, r.ptr);
    }
    return Status::Ok();
  }
  Tensor d(DType::Float64, in.shape());
  bool integer = out.dtype() != DType::Float32 && out.dtype() != DType::Float64 && out.dtype() != DType::Float16 &&
                 out.dtype() != DType::BFloat16 && out.dtype() != DType::Bool;
  Tensor l(DType::Int64, in.shape());
  for (int64_t i = 0; i < n; ++i) {
    const std::string& t = in.strings[i];
    char* end = nullptr;
    if (integer) l.data<int64_t>()[i] = std::strtoll(t.c_str(), &end, 10);
    else d.data<double>()[i] = std::strtod(t.c_str(), &end);
    if (t.empty() || end != t.c_str() + t.size())
      return Error("Cast: string '" + t + "' is not a number");
  }
  return ConvertInto(integer ? l : d, out);
}

}  // namespace

Status ConvertInto(const Tensor& in, Tensor& out) {
  int64_t n = in.numel();
  if (in.dtype() == out.dtype()) {
    if (in.dtype() == DType::String) out.strings = in.strings;
    else CopyBytes(out.raw(), in.raw(), in.nbytes());
    return Status::Ok();
  }
  if (in.dtype() == DType::String || out.dtype() == DType::String) return StringConvert(in, out);
  if (in.dtype() == DType::BFloat16) {
    Tensor f(DType::Float32, in.shape());
    for (int64_t i = 0; i < n; ++i) f.data<float>()[i] = ir::Bf16ToFloat(in.data<uint16_t>()[i]);
    return ConvertInto(f, out);
  }
  if (out.dtype() == DType::BFloat16) {
    Tensor f(DType::Float32, in.shape());
    ASRC_RETURN_IF_ERROR(ConvertInto(in, f));
    for (int64_t i = 0; i < n; ++i) out.data<uint16_t>()[i] = ir::FloatToBf16(f.data<float>()[i]);
    return Status::Ok();
  }
  if (in.dtype() == DType::Float16) {
    const uint16_t* s = in.data<uint16_t>();
    if (out.dtype() == DType::Float32) {
      for (int64_t i = 0; i < n; ++i) out.data<float>()[i] = ir::HalfToFloat(s[i]);
      return Status::Ok();
    }
    bool ok = DispatchNumericOrBool(out.dtype(), [&](auto z) {
      using To = decltype(z);
      To* d = out.data<To>();
      for (int64_t i = 0; i < n; ++i) d[i] = ConvertOne<To>(ir::HalfToFloat(s[i]));
    });
    return ok ? Status::Ok() : DTypeError("Cast", out.dtype());
  }
  if (out.dtype() == DType::Float16) {
    uint16_t* d = out.data<uint16_t>();
    bool ok = DispatchNumericOrBool(in.dtype(), [&](auto z) {
      using From = decltype(z);
      const From* s = in.data<From>();
      for (int64_t i = 0; i < n; ++i) d[i] = ir::FloatToHalf(static_cast<float>(s[i]));
    });
    return ok ? Status::Ok() : DTypeError("Cast", in.dtype());
  }
  bool ok = DispatchNumericOrBool(in.dtype(), [&](auto zi) {
    using From = decltype(zi);
    const From* s = in.data<From>();
    DispatchNumericOrBool(out.dtype(), [&](auto zo) {
      using To = decltype(zo);
      To* d = out.data<To>();
      for (int64_t i = 0; i < n; ++i) d[i] = ConvertOne<To>(s[i]);
    });
  });
  bool ok2 = DispatchNumericOrBool(out.dtype(), [](auto) {});
  return ok && ok2 ? Status::Ok() : Error(std::string("unsupported cast ") + ir::DTypeName(in.dtype()) + " -> " + ir::DTypeName(out.dtype()));
}

}  // namespace asrc::runtime::ku
