// 2-D convolution through oneDNN's direct (brgemm) convolution; see gemm.h (DirectConv2D).
#include <algorithm>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "runtime/gemm.h"
#include "runtime/thread_pool.h"

#ifdef ASRC_HAVE_DNNL
#include <oneapi/dnnl/dnnl.hpp>
#include "runtime/dnnl_threads.h"
#endif

namespace asrc::runtime {

#ifdef ASRC_HAVE_DNNL
namespace {

bool DirectConvDisabled() {
  static const bool off = [] {
    const char* env = std::getenv("ASRC_CONV");
    return env && std::string(env) == "im2col";
  }();
  return off;
}

dnnl::engine& Engine() {
  static dnnl::engine* eng = new dnnl::engine(dnnl::engine::kind::cpu, 0);
  return *eng;
}

using dt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;
using dims = dnnl::memory::dims;

// A strided plain (NCHW-ordered) view: `dims` of a tensor whose full extents are `full`.
dnnl::memory::desc PlainView(const dims& d, const dims& full) {
  return dnnl::memory::desc(d, dt::f32, dims{full[1] * full[2] * full[3], full[2] * full[3], full[3], 1});
}

// Output rows [o0, o1) of the convolution: a primitive over the input rows they read, with the
// reorders between our plain NCHW tensors (strided views) and the primitive's blocked layouts.
struct Band {
  int64_t o0 = 0, o1 = 0, ih0 = 0;
  dnnl::stream strm;
  dnnl::convolution_forward conv;
  dnnl::memory user_src, user_dst, user_wei, user_bias;  // handles set per call
  dnnl::memory src, dst, wei;                            // blocked scratch (when not plain)
  dnnl::reorder to_src, to_wei, from_dst;
  bool src_plain = false, dst_plain = false, wei_plain = false;
  const float* packed_from = nullptr;  // weights whose reorder `wei` holds (constant weights)
};

std::unique_ptr<Band> PlanBand(const Conv2DShape& s, int64_t o0, int64_t o1, bool bias, bool relu) {
  // Input rows the band reads, clipped to the input; what lies outside is the band's padding.
  const int64_t start = o0 * s.sh - s.pt, end = (o1 - 1) * s.sh - s.pt + (s.KH - 1) * s.dh;
  const int64_t top = std::max<int64_t>(0, -start), bottom = std::max<int64_t>(0, end - (s.H - 1));
  const int64_t ih0 = std::max<int64_t>(start, 0), rows = std::min(end, s.H - 1) - ih0 + 1;
  if (rows <= 0) return nullptr;
  auto band = std::make_unique<Band>();
  band->o0 = o0;
  band->o1 = o1;
  band->ih0 = ih0;
  auto& eng = Engine();
  dims src{s.N, s.C, rows, s.W}, wei{s.M, s.C, s.KH, s.KW}, dst{s.N, s.M, o1 - o0, s.OW};
  dnnl::memory::desc user_src =
      s.src_nhwc ? dnnl::memory::desc(src, dt::f32, dims{s.H * s.W * s.C, 1, s.W * s.C, s.C})
                 : PlainView(src, {s.N, s.C, s.H, s.W});
  dnnl::memory::desc user_dst = PlainView(dst, {s.N, s.M, s.OH, s.OW});
  dnnl::memory::desc user_wei(wei, dt::f32, tag::oihw), bias_d({s.M}, dt::f32, tag::x);
  dnnl::memory::desc any_src(src, dt::f32, tag::any), any_wei(wei, dt::f32, tag::any),
      any_dst(dst, dt::f32, tag::any);
  // oneDNN's dilation counts the gaps (0 = dense).
  const dims strides{s.sh, s.sw}, dil{s.dh - 1, s.dw - 1}, pad_l{top, s.pl}, pad_r{bottom, s.pr};
  const auto fwd = dnnl::prop_kind::forward_inference;
  const auto alg = dnnl::algorithm::convolution_direct;
  auto d = bias ? dnnl::convolution_forward::desc(fwd, alg, any_src, any_wei, bias_d, any_dst,
                                                  strides, dil, pad_l, pad_r)
                : dnnl::convolution_forward::desc(fwd, alg, any_src, any_wei, any_dst, strides,
                                                  dil, pad_l, pad_r);
  dnnl::primitive_attr attr;
  if (relu) {
    dnnl::post_ops ops;
    ops.append_eltwise(1.f, dnnl::algorithm::eltwise_relu, 0.f, 0.f);
    attr.set_post_ops(ops);
  }
  OneOmpThread();
  dnnl::convolution_forward::primitive_desc pd;
  try {
    pd = dnnl::convolution_forward::primitive_desc(d, attr, eng);
  } catch (const dnnl::error&) {
    return nullptr;
  }
  if (pd.dst_desc().dims()[2] != o1 - o0) return nullptr;  // geometry disagrees: do not risk it
  band->strm = dnnl::stream(eng);
  band->conv = dnnl::convolution_forward(pd);
  band->user_src = dnnl::memory(user_src, eng, DNNL_MEMORY_NONE);
  band->user_dst = dnnl::memory(user_dst, eng, DNNL_MEMORY_NONE);
  band->user_wei = dnnl::memory(user_wei, eng, DNNL_MEMORY_NONE);
  if (bias) band->user_bias = dnnl::memory(bias_d, eng, DNNL_MEMORY_NONE);
  band->src_plain = pd.src_desc() == user_src;
  band->dst_plain = pd.dst_desc() == user_dst;
  band->wei_plain = pd.weights_desc() == user_wei;
  if (!band->src_plain) {
    band->src = dnnl::memory(pd.src_desc(), eng);
    band->to_src = dnnl::reorder(band->user_src, band->src);
  }
  if (!band->dst_plain) {
    band->dst = dnnl::memory(pd.dst_desc(), eng);
    band->from_dst = dnnl::reorder(band->dst, band->user_dst);
  }
  if (!band->wei_plain) {
    band->wei = dnnl::memory(pd.weights_desc(), eng);
    band->to_wei = dnnl::reorder(band->user_wei, band->wei);
  }
  return band;
}

void RunBand(Band& band, const Conv2DShape& s, const float* x, const float* w, bool w_constant,
             const float* b, float* y) {
  OneOmpThread();
  band.user_src.set_data_handle(const_cast<float*>(x + band.ih0 * s.W * (s.src_nhwc ? s.C : 1)));
  band.user_dst.set_data_handle(y + band.o0 * s.OW);
  band.user_wei.set_data_handle(const_cast<float*>(w));
  if (!band.src_plain) band.to_src.execute(band.strm, band.user_src, band.src);
  if (!band.wei_plain && !(w_constant && band.packed_from == w)) {
    band.to_wei.execute(band.strm, band.user_wei, band.wei);
    band.packed_from = w_constant ? w : nullptr;
  }
  std::unordered_map<int, dnnl::memory> args{
      {DNNL_ARG_SRC, band.src_plain ? band.user_src : band.src},
      {DNNL_ARG_WEIGHTS, band.wei_plain ? band.user_wei : band.wei},
      {DNNL_ARG_DST, band.dst_plain ? band.user_dst : band.dst}};
  if (b) {
    band.user_bias.set_data_handle(const_cast<float*>(b));
    args.emplace(DNNL_ARG_BIAS, band.user_bias);
  }
  band.conv.execute(band.strm, args);
  if (!band.dst_plain) band.from_dst.execute(band.strm, band.dst, band.user_dst);
  band.strm.wait();
}

using Key = std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                       int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, bool, int, bool>;

}  // namespace

constexpr size_t kMaxPlans = 8;

struct DirectConv2D::Impl {
  bool relu = false;
  // Per shape and thread count: the bands, or none where oneDNN declined (im2col then).
  std::map<Key, std::vector<std::unique_ptr<Band>>> plans;
};

DirectConv2D::DirectConv2D(bool relu) : impl_(std::make_unique<Impl>()) { impl_->relu = relu; }
DirectConv2D::~DirectConv2D() = default;

bool DirectConv2D::Run(const Conv2DShape& s, const float* x, const float* w, bool w_constant,
                       const float* b, float* y, int threads) {
  if (DirectConvDisabled()) return false;
  // Small products gain nothing over im2col + GEMM and pay the reorders.
  if (s.C < 16 || s.C * s.M * s.KH * s.KW * s.OH * s.OW < (int64_t{1} << 22)) return false;
  // Bands of at least 8 output rows.
  const int parts = static_cast<int>(std::clamp<int64_t>(s.OH / 8, 1, std::max(threads, 1)));
  Key key{s.N, s.C, s.H, s.W, s.M, s.KH, s.KW, s.sh, s.sw, s.pt, s.pl, s.pb, s.pr, s.dh, s.dw,
          b != nullptr, parts, s.src_nhwc};
  auto it = impl_->plans.find(key);
  if (it == impl_->plans.end()) {
    // Input lengths vary (a whole-utterance encoder sees a new one per utterance): keep a few
    // shapes' plans, each with its own blocked weights and scratch, not one per length ever seen.
    if (impl_->plans.size() >= kMaxPlans) impl_->plans.clear();
    std::vector<std::unique_ptr<Band>> bands;
    for (int p = 0; p < parts; ++p) {
      auto band = PlanBand(s, s.OH * p / parts, s.OH * (p + 1) / parts, b != nullptr, impl_->relu);
      if (!band) {
        bands.clear();
        break;
      }
      bands.push_back(std::move(band));
    }
    it = impl_->plans.emplace(key, std::move(bands)).first;
  }
  auto& bands = it->second;
  if (bands.empty()) return false;
  RunParts(static_cast<int>(bands.size()),
           [&](int p) { RunBand(*bands[p], s, x, w, w_constant, b, y); });
  return true;
}

#else

struct DirectConv2D::Impl {};
DirectConv2D::DirectConv2D(bool) {}
DirectConv2D::~DirectConv2D() = default;
bool DirectConv2D::Run(const Conv2DShape&, const float*, const float*, bool, const float*, float*,
                       int) {
  return false;
}

#endif

}  // namespace asrc::runtime
