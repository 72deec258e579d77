// Resize (opsets 10-19: nearest / linear / cubic, every coordinate transformation and nearest
// mode, exclude_outside, extrapolation for tf_crop_and_resize, axes and keep_aspect_ratio_policy)
// and Upsample (opsets 7-9). Plain separable reference: each output coordinate along each axis
// gets a list of (input index, weight) taps, and an output element sums the product of one tap
// per axis. Float16/float64 compute in float32; nearest also copies integer dtypes.
#include <cmath>

#include "runtime/kernels/util.h"

namespace asrc::runtime {
namespace {

using namespace ku;

enum class Mode { Nearest, Linear, Cubic };
enum class Coord { HalfPixel, PytorchHalfPixel, AlignCorners, Asymmetric, TfCrop, HalfPixelSymmetric, TfHalfPixelForNN };
enum class Near { RoundPreferFloor, RoundPreferCeil, Floor, Ceil, Simple };

struct ResizeAttrs {
  Mode mode = Mode::Nearest;
  Coord coord = Coord::HalfPixel;
  Near nearest = Near::RoundPreferFloor;
  double cubic_a = -0.75, extrapolation = 0;
  bool exclude_outside = false;
  std::string aspect = "stretch";
  std::vector<int64_t> axes;
  bool upsample = false;         // Upsample / Resize-10: inputs (X, scales)
  std::vector<float> attr_scales;  // Upsample-7
};

struct Tap {
  int64_t index;
  double weight;
};

// Output coordinate -> input coordinate (before clamping). As in the ONNX reference, the resized
// length is scale * in, not the rounded output length (they differ for fractional scales).
double ToInput(const ResizeAttrs& a, double x, double scale, int64_t in, int64_t out_len, double r0, double r1) {
  const double out = scale * in;
  switch (a.coord) {
    case Coord::HalfPixel: return (x + 0.5) / scale - 0.5;
    case Coord::TfHalfPixelForNN: return (x + 0.5) / scale;
    case Coord::PytorchHalfPixel: return out > 1 ? (x + 0.5) / scale - 0.5 : -0.5;
    case Coord::AlignCorners: return out == 1 ? 0.0 : x * (in - 1) / (out - 1);
    case Coord::Asymmetric: return x / scale;
    case Coord::TfCrop:
      return out != 1 ? r0 * (in - 1) + x * (r1 - r0) * (in - 1) / (out - 1) : 0.5 * (r0 + r1) * (in - 1);
    case Coord::HalfPixelSymmetric: {
      double adj = out_len / out, center = in / 2.0;
      return center * (1 - adj) + (x + 0.5) / scale - 0.5;
    }
  }
  return 0;
}

int64_t NearestIndex(Near m, double x, bool down) {
  switch (m) {
    case Near::RoundPreferFloor: return x == std::floor(x) + 0.5 ? static_cast<int64_t>(std::floor(x)) : static_cast<int64_t>(std::round(x));
    case Near::RoundPreferCeil: return static_cast<int64_t>(std::round(x));
    case Near::Floor: return static_cast<int64_t>(std::floor(x));
    case Near::Ceil: return static_cast<int64_t>(std::ceil(x));
    case Near::Simple: return down ? static_cast<int64_t>(std::ceil(x)) : static_cast<int64_t>(x);
  }
  return 0;
}

void CubicCoeffs(double t, double A, double c[4]) {
  auto far = [A](double s) { return ((A * s - 5 * A) * s + 8 * A) * s - 4 * A; };  // 1 < |s| < 2
  auto near = [A](double s) { return ((A + 2) * s - (A + 3)) * s * s + 1; };         // |s| <= 1
  c[0] = far(t + 1);
  c[1] = near(t);
  c[2] = near(1 - t);
  c[3] = far(2 - t);
}

// The taps of every output coordinate along one axis; an empty list means "outside"
// (tf_crop_and_resize extrapolation).
std::vector<std::vector<Tap>> AxisTaps(const ResizeAttrs& a, int64_t in, int64_t out, double scale, double r0, double r1) {
  std::vector<std::vector<Tap>> taps(out);
  for (int64_t o = 0; o < out; ++o) {
    double x = ToInput(a, static_cast<double>(o), scale, in, out, r0, r1);
    if (a.coord == Coord::TfCrop && !(x >= 0 && x <= in - 1)) continue;  // NaN too
    // Bounded before the integer casts below (x may be NaN, infinite or huge from the scales or
    // roi): beyond 8 outside, every tap clamps to the same edge index, so the value is unchanged.
    x = x > -8.0 ? std::min(x, static_cast<double>(in) + 8.0) : -8.0;
    auto clamp = [in](int64_t i) { return std::min<int64_t>(std::max<int64_t>(i, 0), in - 1); };
    if (a.mode == Mode::Nearest) {
      taps[o].push_back({clamp(NearestIndex(a.nearest, x, scale < 1)), 1.0});
      continue;
    }
    double f = std::floor(x), t = x - f;
    int64_t x0 = static_cast<int64_t>(f);
    if (a.mode == Mode::Linear) {
      taps[o] = {{clamp(x0), 1 - t}, {clamp(x0 + 1), t}};
    } else {
      double c[4];
      CubicCoeffs(t, a.cubic_a, c);
      double sum = 0;
      for (int k = 0; k < 4; ++k) {
        int64_t i = x0 - 1 + k;
        if (a.exclude_outside && (i < 0 || i >= in)) c[k] = 0;
        sum += c[k];
      }
      for (int k = 0; k < 4; ++k)
        taps[o].push_back({clamp(x0 - 1 + k), a.exclude_outside && sum != 0 ? c[k] / sum : c[k]});
    }
    std::vector<Tap> kept;
    for (const Tap& tp : taps[o])
      if (tp.weight != 0) kept.push_back(tp);
    taps[o] = kept.empty() ? std::vector<Tap>{{clamp(x0), 0.0}} : kept;
  }
  return taps;
}

class ResizeKernel : public Kernel {
 public:
  explicit ResizeKernel(ResizeAttrs a) : a_(std::move(a)) {}
  Status Run(KernelContext& ctx) override {
    const Tensor& x = *ctx.in(0);
    int r = x.rank();
    std::vector<double> scales(r, 1.0), roi0(r, 0.0), roi1(r, 1.0);
    Shape os;
    ASRC_RETURN_IF_ERROR(OutputGeometry(ctx, x.shape(), &scales, &roi0, &roi1, &os));
    std::vector<std::vector<std::vector<Tap>>> taps(r);
    for (int d = 0; d < r; ++d) {
      // The taps of an axis take memory per output index even when another axis is empty.
      if (os[d] < 0 || static_cast<uint64_t>(os[d]) > ir::MemoryBudget() / sizeof(Tap))
        return Error("Resize: output size " + std::to_string(os[d]) + " on axis " + std::to_string(d) +
                     " is negative or over the memory budget");
      if (x.dim(d) == 0 && os[d] > 0) return Error("Resize: cannot resize an empty axis to " + std::to_string(os[d]));
      taps[d] = AxisTaps(a_, x.dim(d), os[d], scales[d], roi0[d], roi1[d]);
    }
    // Nearest picks one tap of weight 1 per axis, a copy: every dtype but tf_crop_and_resize's
    // float extrapolation goes through the gather below (the weighted sum gives the same values).
    if (a_.mode == Mode::Nearest && (a_.coord != Coord::TfCrop || !IsFloatish(x.dtype()))) return Nearest(ctx, x, os, taps);
    ASRC_ASSIGN_OR_RETURN(Tensor xf, AsFloat(x, "Resize"));
    Tensor y = ctx.NewTensor(DType::Float32, os);
    std::vector<int64_t> st = Strides(x.shape()), idx(r, 0), pick(r, 0);
    const float* px = xf.data<float>();
    for (int64_t o = 0; o < y.numel(); ++o) {
      bool outside = false;
      for (int d = 0; d < r; ++d) outside = outside || taps[d][idx[d]].empty();
      double acc = 0;
      if (outside) {
        acc = a_.extrapolation;
      } else {
        // Every combination of one tap per axis (odometer over pick).
        std::fill(pick.begin(), pick.end(), 0);
        while (true) {
          double w = 1;
          int64_t off = 0;
          for (int d = 0; d < r; ++d) {
            const Tap& tp = taps[d][idx[d]][pick[d]];
            w *= tp.weight;
            off += tp.index * st[d];
          }
          acc += w * px[off];
          int d = r - 1;
          for (; d >= 0; --d) {
            if (++pick[d] < static_cast<int64_t>(taps[d][idx[d]].size())) break;
            pick[d] = 0;
          }
          if (d < 0) break;
        }
      }
      y.data<float>()[o] = static_cast<float>(acc);
      for (int d = r - 1; d >= 0; --d) {
        if (++idx[d] < os[d]) break;
        idx[d] = 0;
      }
    }
    return FromFloat(ctx, 0, x.dtype(), y);
  }

 private:
  Status Nearest(KernelContext& ctx, const Tensor& x, const Shape& os,
                 const std::vector<std::vector<std::vector<Tap>>>& taps) {
    size_t es = ir::DTypeSize(x.dtype());
    if (es == 0) return DTypeError("Resize", x.dtype());
    if (a_.coord == Coord::TfCrop) return Error("Resize: tf_crop_and_resize extrapolation needs a float input");
    int r = x.rank();
    std::vector<int64_t> st = Strides(x.shape());
    Tensor& y = ctx.Alloc(0, x.dtype(), os);
    if (y.numel() == 0) return Status::Ok();
    if (r == 0) {
      CopyBytes(y.raw(), x.raw(), es);
      return Status::Ok();
    }
    // Element offsets of the picked input index along each axis, then a gather per output row
    // (the last axis), with the outer axes' offset kept by an odometer.
    std::vector<std::vector<int64_t>> off(r);
    for (int d = 0; d < r; ++d)
      for (int64_t o = 0; o < os[d]; ++o) off[d].push_back(taps[d][o][0].index * st[d]);
    const int64_t inner = os[r - 1], rows = y.numel() / inner;
    const int64_t* last = off[r - 1].data();
    std::vector<int64_t> idx(r, 0);
    for (int64_t row = 0; row < rows; ++row) {
      int64_t base = 0;
      for (int d = 0; d < r - 1; ++d) base += off[d][idx[d]];
      uint8_t* dst = y.raw() + row * inner * es;
      const uint8_t* src = x.raw() + base * es;
      if (es == 4) {
        for (int64_t j = 0; j < inner; ++j) CopyBytes(dst + j * 4, src + last[j] * 4, 4);
      } else {
        for (int64_t j = 0; j < inner; ++j) CopyBytes(dst + j * es, src + last[j] * es, es);
      }
      for (int d = r - 2; d >= 0; --d) {
        if (++idx[d] < os[d]) break;
        idx[d] = 0;
      }
    }
    return Status::Ok();
  }

  // Scales, roi and the output shape from the inputs (Resize-11+: X, roi, scales, sizes;
  // Upsample / Resize-10: X, scales; Upsample-7: the scales attribute).
  Status OutputGeometry(KernelContext& ctx, const Shape& in, std::vector<double>* scales,
                        std::vector<double>* r0, std::vector<double>* r1, Shape* os) {
    int r = static_cast<int>(in.size());
    std::vector<int> axes;
    for (int64_t a : a_.axes) {
      ASRC_ASSIGN_OR_RETURN(int ax, NormAxis(a, r));
      axes.push_back(ax);
    }
    if (axes.empty())
      for (int d = 0; d < r; ++d) axes.push_back(d);
    const int na = static_cast<int>(axes.size());
    const Tensor* sc = a_.upsample ? ctx.in(1) : ctx.in(2);
    const Tensor* sz = a_.upsample ? nullptr : ctx.in(3);
    std::vector<double> given;
    if (!a_.attr_scales.empty()) given.assign(a_.attr_scales.begin(), a_.attr_scales.end());
    if (sc && sc->numel() > 0) {
      Tensor f(DType::Float64, sc->shape());
      ASRC_RETURN_IF_ERROR(ConvertInto(*sc, f));
      given.assign(f.data<double>(), f.data<double>() + f.numel());
    }
    *os = in;
    if (sz && sz->numel() > 0) {
      ASRC_ASSIGN_OR_RETURN(std::vector<int64_t> sizes, Int64s(*sz));
      if (static_cast<int>(sizes.size()) != na) return Error("Resize: sizes has " + std::to_string(sizes.size()) + " values for " + std::to_string(na) + " axes");
      double keep = a_.aspect == "not_larger" ? 1e300 : 0;
      for (int k = 0; k < na; ++k) {
        double s = static_cast<double>(sizes[k]) / in[axes[k]];
        keep = a_.aspect == "not_larger" ? std::min(keep, s) : std::max(keep, s);
      }
      for (int k = 0; k < na; ++k) {
        if (a_.aspect == "stretch") {
          (*os)[axes[k]] = sizes[k];
          (*scales)[axes[k]] = static_cast<double>(sizes[k]) / in[axes[k]];
        } else {
          ASRC_ASSIGN_OR_RETURN((*os)[axes[k]], CheckedInt64(std::floor(in[axes[k]] * keep + 0.5), "Resize: output size"));
          (*scales)[axes[k]] = keep;
        }
      }
    } else {
      if (static_cast<int>(given.size()) != na) return Error("Resize: needs " + std::to_string(na) + " scales or sizes");
      for (int k = 0; k < na; ++k) {
        if (!(given[k] > 0)) return Error("Resize: scales must be positive");  // NaN too
        (*scales)[axes[k]] = given[k];
        ASRC_ASSIGN_OR_RETURN((*os)[axes[k]], CheckedInt64(std::floor(in[axes[k]] * given[k]), "Resize: output size"));
      }
    }
    if (a_.coord == Coord::TfCrop) {
      if (!ctx.in(1)) return Error("Resize: tf_crop_and_resize needs roi");
      Tensor f(DType::Float64, ctx.in(1)->shape());
      ASRC_RETURN_IF_ERROR(ConvertInto(*ctx.in(1), f));
      if (f.numel() != 2 * na) return Error("Resize: roi must hold 2 values per axis");
      for (int k = 0; k < na; ++k) {
        (*r0)[axes[k]] = f.data<double>()[k];
        (*r1)[axes[k]] = f.data<double>()[k + na];
      }
    }
    return Status::Ok();
  }

  ResizeAttrs a_;
};

Result<ResizeAttrs> ReadAttrs(const KernelInit& i, bool upsample_op) {
  const ir::Node& n = *i.node;
  ResizeAttrs a;
  std::string mode = n.attr_string("mode", "nearest");
  if (mode == "nearest") a.mode = Mode::Nearest;
  else if (mode == "linear" || mode == "bilinear") a.mode = Mode::Linear;
  else if (mode == "cubic" && !upsample_op) a.mode = Mode::Cubic;
  else return Error("unsupported mode '" + mode + "'");
  a.upsample = upsample_op || i.opset < 11;
  if (a.upsample) {
    a.coord = Coord::Asymmetric;
    a.nearest = Near::Simple;
    a.attr_scales = n.attr_floats("scales");
    return a;
  }
  std::string c = n.attr_string("coordinate_transformation_mode", "half_pixel");
  if (c == "half_pixel") a.coord = Coord::HalfPixel;
  else if (c == "pytorch_half_pixel") a.coord = Coord::PytorchHalfPixel;
  else if (c == "align_corners") a.coord = Coord::AlignCorners;
  else if (c == "asymmetric") a.coord = Coord::Asymmetric;
  else if (c == "tf_crop_and_resize") a.coord = Coord::TfCrop;
  else if (c == "half_pixel_symmetric") a.coord = Coord::HalfPixelSymmetric;
  else if (c == "tf_half_pixel_for_nn" && i.opset == 11) a.coord = Coord::TfHalfPixelForNN;
  else return Error("unsupported coordinate_transformation_mode '" + c + "'");
  std::string nm = n.attr_string("nearest_mode", "round_prefer_floor");
  if (nm == "round_prefer_floor") a.nearest = Near::RoundPreferFloor;
  else if (nm == "round_prefer_ceil") a.nearest = Near::RoundPreferCeil;
  else if (nm == "floor") a.nearest = Near::Floor;
  else if (nm == "ceil") a.nearest = Near::Ceil;
  else return Error("unsupported nearest_mode '" + nm + "'");
  a.cubic_a = n.attr_float("cubic_coeff_a", -0.75f);
  a.exclude_outside = n.attr_int("exclude_outside", 0) != 0;
  a.extrapolation = n.attr_float("extrapolation_value", 0.f);
  a.aspect = n.attr_string("keep_aspect_ratio_policy", "stretch");
  if (a.aspect != "stretch" && a.aspect != "not_larger" && a.aspect != "not_smaller")
    return Error("unsupported keep_aspect_ratio_policy '" + a.aspect + "'");
  a.axes = n.attr_ints("axes");
  if (n.attr_int("antialias", 0) != 0) return Error("Resize antialias is not supported");
  return a;
}

}  // namespace

void RegisterResizeKernels(KernelRegistry& r) {
  for (const char* op : {"Resize", "Upsample"})
    r.Register("", op, DType::Undefined, NeedInputs(1, [op](const KernelInit& i) -> KernelPtr {
      ASRC_ASSIGN_OR_RETURN(ResizeAttrs a, ReadAttrs(i, std::string(op) == "Upsample"));
      return Make<ResizeKernel>(std::move(a));
    }));
}

}  // namespace asrc::runtime
