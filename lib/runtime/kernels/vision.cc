// Detection and sampling kernels, plain loops in float32: NonMaxSuppression (both box formats),
// GridSample (opset 16, 4-D: bilinear / nearest / bicubic, zeros / border / reflection padding,
// align_corners, following PyTorch's grid_sampler), RoiAlign (avg / max, half_pixel or
// output_half_pixel, ONNX Runtime's bilinear sampling rules), MaxRoiPool (Caffe's rounding of
// the box to whole pixels and of the bins to floor/ceil edges, as ONNX Runtime has it).
#include <cmath>
#include <numeric>

#include "runtime/kernels/util.h"

namespace asrc::runtime {
namespace {

using namespace ku;

// Corners (y1, x1, y2, x2) of a box, ordered so that y1 <= y2 and x1 <= x2.
void Corners(const float* b, bool center, float c[4]) {
  if (center) {
    c[0] = b[1] - b[3] / 2;
    c[1] = b[0] - b[2] / 2;
    c[2] = b[1] + b[3] / 2;
    c[3] = b[0] + b[2] / 2;
  } else {
    c[0] = std::min(b[0], b[2]);
    c[1] = std::min(b[1], b[3]);
    c[2] = std::max(b[0], b[2]);
    c[3] = std::max(b[1], b[3]);
  }
}

float Iou(const float* a, const float* b, bool center) {
  float p[4], q[4];
  Corners(a, center, p);
  Corners(b, center, q);
  float ih = std::min(p[2], q[2]) - std::max(p[0], q[0]);
  float iw = std::min(p[3], q[3]) - std::max(p[1], q[1]);
  if (ih <= 0 || iw <= 0) return 0.f;
  float inter = ih * iw;
  float uni = (p[2] - p[0]) * (p[3] - p[1]) + (q[2] - q[0]) * (q[3] - q[1]) - inter;
  return uni > 0 ? inter / uni : 0.f;
}

class NmsKernel : public Kernel {
 public:
  explicit NmsKernel(bool center) : center_(center) {}
  Status Run(KernelContext& ctx) override {
    ASRC_ASSIGN_OR_RETURN(Tensor boxes, AsFloat(*ctx.in(0), "NonMaxSuppression"));
    ASRC_ASSIGN_OR_RETURN(Tensor scores, AsFloat(*ctx.in(1), "NonMaxSuppression"));
    if (boxes.rank() != 3 || boxes.dim(2) != 4 || scores.rank() != 3 || scores.dim(0) != boxes.dim(0) ||
        scores.dim(2) != boxes.dim(1))
      return Error("NonMaxSuppression: boxes " + ir::ShapeStr(boxes.shape()) + " and scores " +
                   ir::ShapeStr(scores.shape()) + " must be [B, N, 4] and [B, C, N]");
    int64_t max_out = 0;
    float iou_th = 0, score_th = -INFINITY;
    if (ctx.in(2) && ctx.in(2)->numel() > 0) { ASRC_ASSIGN_OR_RETURN(max_out, ScalarAsInt64(*ctx.in(2), "NonMaxSuppression: max_output_boxes_per_class")); }
    if (ctx.in(3) && ctx.in(3)->numel() > 0) { ASRC_ASSIGN_OR_RETURN(double v, ScalarAsDouble(*ctx.in(3))); iou_th = static_cast<float>(v); }
    if (ctx.in(4) && ctx.in(4)->numel() > 0) { ASRC_ASSIGN_OR_RETURN(double v, ScalarAsDouble(*ctx.in(4))); score_th = static_cast<float>(v); }
    // No box (N = 0): nothing to select, however many batches and classes (2^40 x 0 boxes).
    int64_t B = boxes.dim(1) ? boxes.dim(0) : 0, N = boxes.dim(1), C = scores.dim(1);
    std::vector<int64_t> sel;  // triples
    for (int64_t b = 0; b < B; ++b)
      for (int64_t c = 0; c < C; ++c) {
        const float* sc = scores.data<float>() + (b * C + c) * N;
        std::vector<int64_t> cand;
        for (int64_t i = 0; i < N; ++i)
          if (sc[i] > score_th) cand.push_back(i);
        std::stable_sort(cand.begin(), cand.end(), [&](int64_t p, int64_t q) { return sc[p] > sc[q]; });
        std::vector<int64_t> kept;
        for (int64_t i : cand) {
          if (static_cast<int64_t>(kept.size()) >= max_out) break;
          bool ok = true;
          for (int64_t k : kept)
            if (Iou(boxes.data<float>() + (b * N + i) * 4, boxes.data<float>() + (b * N + k) * 4, center_) > iou_th) {
              ok = false;
              break;
            }
          if (ok) kept.push_back(i);
        }
        for (int64_t k : kept) sel.insert(sel.end(), {b, c, k});
      }
    Tensor& y = ctx.Alloc(0, DType::Int64, {static_cast<int64_t>(sel.size() / 3), 3});
    std::copy(sel.begin(), sel.end(), y.data<int64_t>());
    return Status::Ok();
  }

 private:
  bool center_;
};

enum class GsMode { Bilinear, Nearest, Bicubic };
enum class GsPad { Zeros, Border, Reflection };

// PyTorch's reflect_coordinates: reflects `x` into [twice_low / 2, twice_high / 2].
double Reflect(double x, double twice_low, double twice_high) {
  if (twice_low == twice_high) return 0;
  double mn = twice_low / 2, span = (twice_high - twice_low) / 2;
  x = std::abs(x - mn);
  double extra = std::fmod(x, span);
  // The parity of the flips in double: x / span may be beyond int64 (or infinite).
  return std::fmod(std::floor(x / span), 2.0) == 0 ? extra + mn : span - extra + mn;
}

class GridSampleKernel : public Kernel {
 public:
  GridSampleKernel(GsMode mode, GsPad pad, bool align) : mode_(mode), pad_(pad), align_(align) {}
  Status Run(KernelContext& ctx) override {
    const Tensor& x0 = *ctx.in(0);
    ASRC_ASSIGN_OR_RETURN(Tensor x, AsFloat(x0, "GridSample"));
    ASRC_ASSIGN_OR_RETURN(Tensor grid, AsFloat(*ctx.in(1), "GridSample"));
    if (x.rank() != 4 || grid.rank() != 4 || grid.dim(3) != 2 || grid.dim(0) != x.dim(0))
      return Error("GridSample: X must be [N, C, H, W] and grid [N, Ho, Wo, 2]; got " + ir::ShapeStr(x.shape()) +
                   " and " + ir::ShapeStr(grid.shape()));
    int64_t N = x.dim(0), C = x.dim(1), H = x.dim(2), W = x.dim(3), Ho = grid.dim(1), Wo = grid.dim(2);
    Tensor y = ctx.NewTensor(DType::Float32, {N, C, Ho, Wo});
    for (int64_t n = 0; n < N; ++n)
      for (int64_t i = 0; i < Ho * Wo; ++i) {
        const float* g = grid.data<float>() + (n * Ho * Wo + i) * 2;
        double ix = Unnormalize(g[0], W), iy = Unnormalize(g[1], H);
        if (mode_ != GsMode::Bicubic) {
          ix = Pad(ix, W);
          iy = Pad(iy, H);
        }
        for (int64_t c = 0; c < C; ++c) {
          const float* plane = x.data<float>() + (n * C + c) * H * W;
          y.data<float>()[(n * C + c) * Ho * Wo + i] = static_cast<float>(Sample(plane, H, W, ix, iy));
        }
      }
    return FromFloat(ctx, 0, x0.dtype(), y);
  }

 private:
  double Unnormalize(double g, int64_t size) const {
    return align_ ? (g + 1) / 2 * (size - 1) : ((g + 1) * size - 1) / 2;
  }
  // Applies the padding mode to a source coordinate (border/reflection keep it inside).
  double Pad(double v, int64_t size) const {
    if (pad_ == GsPad::Border) return std::min<double>(std::max(v, 0.0), size - 1);
    if (pad_ == GsPad::Reflection) {
      v = align_ ? Reflect(v, 0, 2.0 * (size - 1)) : Reflect(v, -1, 2.0 * size - 1);
      return std::min<double>(std::max(v, 0.0), size - 1);
    }
    return v;
  }
  double At(const float* p, int64_t H, int64_t W, int64_t yy, int64_t xx) const {
    return yy >= 0 && yy < H && xx >= 0 && xx < W ? p[yy * W + xx] : 0.0;
  }
  double Sample(const float* p, int64_t H, int64_t W, double ix, double iy) const {
    // A grid value may be NaN, infinite or huge: bounded before any integer cast (at 2^40 every
    // tap is far outside and the fraction is still exact to 2^-12).
    const double far = 1099511627776.0;
    ix = ix > -far ? std::min(ix, far) : -far;
    iy = iy > -far ? std::min(iy, far) : -far;
    if (mode_ == GsMode::Nearest)
      return At(p, H, W, static_cast<int64_t>(std::nearbyint(iy)), static_cast<int64_t>(std::nearbyint(ix)));
    double fx = std::floor(ix), fy = std::floor(iy), tx = ix - fx, ty = iy - fy;
    int64_t x0 = static_cast<int64_t>(fx), y0 = static_cast<int64_t>(fy);
    if (mode_ == GsMode::Bilinear)
      return At(p, H, W, y0, x0) * (1 - tx) * (1 - ty) + At(p, H, W, y0, x0 + 1) * tx * (1 - ty) +
             At(p, H, W, y0 + 1, x0) * (1 - tx) * ty + At(p, H, W, y0 + 1, x0 + 1) * tx * ty;
    double wx[4], wy[4];
    Cubic(tx, wx);
    Cubic(ty, wy);
    double acc = 0;
    for (int a = 0; a < 4; ++a)
      for (int b = 0; b < 4; ++b) {
        // Each tap goes through the padding mode on its own (PyTorch's get_value_bounded).
        double yy = Pad(static_cast<double>(y0 - 1 + a), H), xx = Pad(static_cast<double>(x0 - 1 + b), W);
        acc += wy[a] * wx[b] * At(p, H, W, static_cast<int64_t>(yy), static_cast<int64_t>(xx));
      }
    return acc;
  }
  static void Cubic(double t, double w[4]) {
    const double A = -0.75;
    auto near = [A](double s) { return ((A + 2) * s - (A + 3)) * s * s + 1; };
    auto far = [A](double s) { return ((A * s - 5 * A) * s + 8 * A) * s - 4 * A; };
    w[0] = far(t + 1);
    w[1] = near(t);
    w[2] = near(1 - t);
    w[3] = far(2 - t);
  }

  GsMode mode_;
  GsPad pad_;
  bool align_;
};

struct RoiAttrs {
  bool max = false, half_pixel = true;
  int64_t out_h = 1, out_w = 1, sampling = 0;
  float scale = 1.f;
};

class RoiAlignKernel : public Kernel {
 public:
  explicit RoiAlignKernel(RoiAttrs a) : a_(a) {}
  Status Run(KernelContext& ctx) override {
    const Tensor& x0 = *ctx.in(0);
    ASRC_ASSIGN_OR_RETURN(Tensor x, AsFloat(x0, "RoiAlign"));
    ASRC_ASSIGN_OR_RETURN(Tensor rois, AsFloat(*ctx.in(1), "RoiAlign"));
    ASRC_ASSIGN_OR_RETURN(std::vector<int64_t> bidx, Int64s(*ctx.in(2)));
    if (x.rank() != 4 || rois.rank() != 2 || rois.dim(1) != 4 || static_cast<int64_t>(bidx.size()) != rois.dim(0))
      return Error("RoiAlign: X [N, C, H, W], rois [R, 4] and batch_indices [R] expected");
    int64_t C = x.dim(1), H = x.dim(2), W = x.dim(3), R = rois.dim(0);
    Tensor y = ctx.NewTensor(DType::Float32, {R, C, a_.out_h, a_.out_w});
    const double off = a_.half_pixel ? 0.5 : 0.0;
    for (int64_t r = 0; r < R; ++r) {
      if (bidx[r] < 0 || bidx[r] >= x.dim(0)) return Error("RoiAlign: batch index out of range");
      const float* box = rois.data<float>() + r * 4;
      double x1 = box[0] * a_.scale - off, y1 = box[1] * a_.scale - off;
      double rw = box[2] * a_.scale - off - x1, rh = box[3] * a_.scale - off - y1;
      if (!a_.half_pixel) { rw = std::max(rw, 1.0); rh = std::max(rh, 1.0); }
      double bh = rh / a_.out_h, bw = rw / a_.out_w;
      // Adaptive sampling: ceil(roi size / output size) per bin, from the roi's values (NaN,
      // infinite or huge ones would be an undefined cast or an endless loop).
      const double sh = a_.sampling > 0 ? a_.sampling : std::max(std::ceil(rh / a_.out_h), 0.0);
      const double sw = a_.sampling > 0 ? a_.sampling : std::max(std::ceil(rw / a_.out_w), 0.0);
      if (!(sh * sw <= 16777216.0))
        return Error("RoiAlign: roi " + std::to_string(r) + " needs " + std::to_string(sh) + " x " +
                     std::to_string(sw) + " samples per bin (at most 2^24)");
      const int64_t gh = static_cast<int64_t>(sh), gw = static_cast<int64_t>(sw);
      double count = std::max<double>(gh * gw, 1);
      for (int64_t c = 0; c < C; ++c) {
        const float* p = x.data<float>() + (bidx[r] * C + c) * H * W;
        for (int64_t ph = 0; ph < a_.out_h; ++ph)
          for (int64_t pw = 0; pw < a_.out_w; ++pw) {
            double acc = 0;
            bool first = true;
            for (int64_t iy = 0; iy < gh; ++iy)
              for (int64_t ix = 0; ix < gw; ++ix) {
                double yy = y1 + ph * bh + (iy + 0.5) * bh / gh, xx = x1 + pw * bw + (ix + 0.5) * bw / gw;
                double v = Bilinear(p, H, W, yy, xx);
                if (a_.max) acc = first ? v : std::max(acc, v);
                else acc += v;
                first = false;
              }
            y.data<float>()[((r * C + c) * a_.out_h + ph) * a_.out_w + pw] = static_cast<float>(a_.max ? acc : acc / count);
          }
      }
    }
    return FromFloat(ctx, 0, x0.dtype(), y);
  }

 private:
  // ONNX Runtime's RoiAlign sampling: zero beyond one pixel outside, clamped at the far edge.
  double Bilinear(const float* p, int64_t H, int64_t W, double y, double x) const {
    if (!(y >= -1.0 && y <= H && x >= -1.0 && x <= W)) return 0;  // NaN too
    y = std::max(y, 0.0);
    x = std::max(x, 0.0);
    int64_t y0 = static_cast<int64_t>(y), x0 = static_cast<int64_t>(x), y1, x1;
    if (y0 >= H - 1) { y0 = y1 = H - 1; y = static_cast<double>(y0); } else { y1 = y0 + 1; }
    if (x0 >= W - 1) { x0 = x1 = W - 1; x = static_cast<double>(x0); } else { x1 = x0 + 1; }
    double ly = y - y0, lx = x - x0, hy = 1 - ly, hx = 1 - lx;
    double w[4] = {hy * hx, hy * lx, ly * hx, ly * lx};
    double v[4] = {p[y0 * W + x0], p[y0 * W + x1], p[y1 * W + x0], p[y1 * W + x1]};
    if (a_.max) return std::max(std::max(w[0] * v[0], w[1] * v[1]), std::max(w[2] * v[2], w[3] * v[3]));
    return w[0] * v[0] + w[1] * v[1] + w[2] * v[2] + w[3] * v[3];
  }

  RoiAttrs a_;
};

class MaxRoiPoolKernel : public Kernel {
 public:
  MaxRoiPoolKernel(int64_t ph, int64_t pw, float scale) : ph_(ph), pw_(pw), scale_(scale) {}
  Status Run(KernelContext& ctx) override {
    const Tensor& x0 = *ctx.in(0);
    ASRC_ASSIGN_OR_RETURN(Tensor x, AsFloat(x0, "MaxRoiPool"));
    ASRC_ASSIGN_OR_RETURN(Tensor rois, AsFloat(*ctx.in(1), "MaxRoiPool"));
    if (x.rank() != 4 || rois.rank() != 2 || rois.dim(1) != 5)
      return Error("MaxRoiPool: X [N, C, H, W] and rois [R, 5] (batch, x1, y1, x2, y2) expected");
    int64_t C = x.dim(1), H = x.dim(2), W = x.dim(3), R = rois.dim(0);
    Tensor y = ctx.NewTensor(DType::Float32, {R, C, ph_, pw_});
    for (int64_t r = 0; r < R; ++r) {
      const float* b = rois.data<float>() + r * 5;
      int64_t n = ClampToInt64(b[0], -1, x.dim(0));
      if (n < 0 || n >= x.dim(0)) return Error("MaxRoiPool: batch index out of range");
      // Corners rounded and bounded (NaN, infinite or huge values would make lround unspecified
      // and the differences below overflow); beyond 2^40 every bin is outside the image anyway.
      auto corner = [this](float v) { return ClampToInt64(std::round(v * scale_), -(int64_t{1} << 40), int64_t{1} << 40); };
      int64_t x1 = corner(b[1]), y1 = corner(b[2]), x2 = corner(b[3]), y2 = corner(b[4]);
      double bh = static_cast<double>(std::max<int64_t>(y2 - y1 + 1, 1)) / ph_;
      double bw = static_cast<double>(std::max<int64_t>(x2 - x1 + 1, 1)) / pw_;
      for (int64_t c = 0; c < C; ++c)
        for (int64_t i = 0; i < ph_; ++i)
          for (int64_t j = 0; j < pw_; ++j) {
            auto edge = [](double v, int64_t off, int64_t lim) { return std::min(std::max<int64_t>(static_cast<int64_t>(v) + off, 0), lim); };
            int64_t hs = edge(std::floor(i * bh), y1, H), he = edge(std::ceil((i + 1) * bh), y1, H);
            int64_t ws = edge(std::floor(j * bw), x1, W), we = edge(std::ceil((j + 1) * bw), x1, W);
            float m = (he <= hs || we <= ws) ? 0.f : -INFINITY;
            for (int64_t h = hs; h < he; ++h)
              for (int64_t w = ws; w < we; ++w) m = std::max(m, x.data<float>()[((n * C + c) * H + h) * W + w]);
            y.data<float>()[((r * C + c) * ph_ + i) * pw_ + j] = m;
          }
    }
    return FromFloat(ctx, 0, x0.dtype(), y);
  }

 private:
  int64_t ph_, pw_;
  float scale_;
};

}  // namespace

void RegisterVisionKernels(KernelRegistry& r) {
  r.Register("", "NonMaxSuppression", DType::Undefined, NeedInputs(2, [](const KernelInit& i) -> KernelPtr {
    return Make<NmsKernel>(i.node->attr_int("center_point_box", 0) != 0);
  }));
  r.Register("", "GridSample", DType::Undefined, NeedInputs(2, [](const KernelInit& i) -> KernelPtr {
    std::string m = i.node->attr_string("mode", "bilinear"), p = i.node->attr_string("padding_mode", "zeros");
    GsMode mode;
    if (m == "bilinear" || m == "linear") mode = GsMode::Bilinear;
    else if (m == "nearest") mode = GsMode::Nearest;
    else if (m == "bicubic" || m == "cubic") mode = GsMode::Bicubic;
    else return Error("GridSample: unsupported mode '" + m + "'");
    GsPad pad;
    if (p == "zeros") pad = GsPad::Zeros;
    else if (p == "border") pad = GsPad::Border;
    else if (p == "reflection") pad = GsPad::Reflection;
    else return Error("GridSample: unsupported padding_mode '" + p + "'");
    return Make<GridSampleKernel>(mode, pad, i.node->attr_int("align_corners", 0) != 0);
  }));
  r.Register("", "MaxRoiPool", DType::Undefined, NeedInputs(2, [](const KernelInit& i) -> KernelPtr {
    std::vector<int64_t> ps = i.node->attr_ints("pooled_shape");
    if (ps.size() != 2 || ps[0] < 1 || ps[1] < 1) return Error("MaxRoiPool needs a positive 2-D pooled_shape");
    return Make<MaxRoiPoolKernel>(ps[0], ps[1], i.node->attr_float("spatial_scale", 1.f));
  }));
  r.Register("", "RoiAlign", DType::Undefined, NeedInputs(3, [](const KernelInit& i) -> KernelPtr {
    RoiAttrs a;
    std::string mode = i.node->attr_string("mode", "avg");
    if (mode != "avg" && mode != "max") return Error("RoiAlign: unsupported mode '" + mode + "'");
    a.max = mode == "max";
    std::string ct = i.node->attr_string("coordinate_transformation_mode", "half_pixel");
    if (ct != "half_pixel" && ct != "output_half_pixel") return Error("RoiAlign: unsupported coordinate_transformation_mode '" + ct + "'");
    a.half_pixel = ct == "half_pixel" && i.opset >= 16;
    a.out_h = i.node->attr_int("output_height", 1);
    a.out_w = i.node->attr_int("output_width", 1);
    a.sampling = i.node->attr_int("sampling_ratio", 0);
    a.scale = i.node->attr_float("spatial_scale", 1.f);
    if (a.out_h < 1 || a.out_w < 1) return Error("RoiAlign: output size must be positive");
    return Make<RoiAlignKernel>(a);
  }));
}

}  // namespace asrc::runtime
