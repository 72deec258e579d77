// 2-D convolution through oneDNN's direct (brgemm) convolution; see gemm.h (DirectConv2D).
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <unordered_map>
#include <algorithm>

#include "runtime/gemm.h"

#ifdef ASRC_HAVE_DNNL
#include <oneapi/dnnl/dnnl.hpp>
extern "C" void omp_set_num_threads(int);
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

// One planned primitive per shape, with its blocked-layout scratch memories; created on first
// use (primitive creation costs milliseconds) and kept for the process.
struct Planned {
  dnnl::convolution_forward conv;
  dnnl::memory src, wei, dst, bias;
  bool src_plain = false, dst_plain = false, wei_plain = false;
};

using Key = std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t,
                       int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, bool>;

}  // namespace

bool DirectConv2D(const Conv2DShape& s, const float* x, const float* w, const float* b, float* y,
                  int threads) {
  if (DirectConvDisabled()) return false;
  // Small products gain nothing over im2col + GEMM and pay the reorders.
  if (s.C < 16 || s.C * s.M * s.KH * s.KW * s.OH * s.OW < (int64_t{1} << 22)) return false;
  static std::mutex mu;
  std::lock_guard<std::mutex> lock(mu);
  // One OpenMP thread, set before the primitive is planned (it sizes its work split by it): a
  // second one spin-waits against our own pool on a 2-core machine (at 2 threads the encoder
  // took 40 ms instead of 14).
  (void)threads;
  omp_set_num_threads(1);
  static dnnl::engine* eng = new dnnl::engine(dnnl::engine::kind::cpu, 0);
  static dnnl::stream* strm = new dnnl::stream(*eng);
  static std::map<Key, std::unique_ptr<Planned>>* cache = new std::map<Key, std::unique_ptr<Planned>>();
  using dt = dnnl::memory::data_type;
  using tag = dnnl::memory::format_tag;
  Key key{s.N, s.C, s.H, s.W, s.M, s.KH, s.KW, s.sh, s.sw, s.pt, s.pl, s.pb, s.pr, s.dh, s.dw, b != nullptr};
  auto it = cache->find(key);
  if (it == cache->end()) {
    auto p = std::make_unique<Planned>();
    dnnl::memory::dims src{s.N, s.C, s.H, s.W}, wei{s.M, s.C, s.KH, s.KW}, dst{s.N, s.M, s.OH, s.OW};
    dnnl::memory::desc any_src(src, dt::f32, tag::any), any_wei(wei, dt::f32, tag::any),
        any_dst(dst, dt::f32, tag::any), bias_d({s.M}, dt::f32, tag::x);
    // oneDNN's dilation counts the gaps (0 = dense).
    auto d = b ? dnnl::convolution_forward::desc(
                     dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct,
                     any_src, any_wei, bias_d, any_dst, {s.sh, s.sw}, {s.dh - 1, s.dw - 1},
                     {s.pt, s.pl}, {s.pb, s.pr})
               : dnnl::convolution_forward::desc(
                     dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct,
                     any_src, any_wei, any_dst, {s.sh, s.sw}, {s.dh - 1, s.dw - 1}, {s.pt, s.pl},
                     {s.pb, s.pr});
    dnnl::convolution_forward::primitive_desc pd;
    try {
      pd = dnnl::convolution_forward::primitive_desc(d, *eng);
    } catch (const dnnl::error&) {
      return false;
    }
    p->conv = dnnl::convolution_forward(pd);
    p->src_plain = pd.src_desc() == dnnl::memory::desc(src, dt::f32, tag::nchw);
    p->dst_plain = pd.dst_desc() == dnnl::memory::desc(dst, dt::f32, tag::nchw);
    p->wei_plain = pd.weights_desc() == dnnl::memory::desc(wei, dt::f32, tag::oihw);
    if (!p->src_plain) p->src = dnnl::memory(pd.src_desc(), *eng);
    if (!p->dst_plain) p->dst = dnnl::memory(pd.dst_desc(), *eng);
    if (!p->wei_plain) p->wei = dnnl::memory(pd.weights_desc(), *eng);
    it = cache->emplace(key, std::move(p)).first;
  }
  Planned& p = *it->second;
  dnnl::memory::dims src{s.N, s.C, s.H, s.W}, wei{s.M, s.C, s.KH, s.KW}, dst{s.N, s.M, s.OH, s.OW};
  dnnl::memory usrc({src, dt::f32, tag::nchw}, *eng, const_cast<float*>(x));
  dnnl::memory uwei({wei, dt::f32, tag::oihw}, *eng, const_cast<float*>(w));
  dnnl::memory udst({dst, dt::f32, tag::nchw}, *eng, y);
  // Weights are reordered on every call: a pointer cannot tell whether they changed.
  if (!p.src_plain) dnnl::reorder(usrc, p.src).execute(*strm, usrc, p.src);
  if (!p.wei_plain) dnnl::reorder(uwei, p.wei).execute(*strm, uwei, p.wei);
  std::unordered_map<int, dnnl::memory> args{
      {DNNL_ARG_SRC, p.src_plain ? usrc : p.src},
      {DNNL_ARG_WEIGHTS, p.wei_plain ? uwei : p.wei},
      {DNNL_ARG_DST, p.dst_plain ? udst : p.dst}};
  if (b) args.emplace(DNNL_ARG_BIAS, dnnl::memory({{s.M}, dt::f32, tag::x}, *eng, const_cast<float*>(b)));
  p.conv.execute(*strm, args);
  if (!p.dst_plain) dnnl::reorder(p.dst, udst).execute(*strm, p.dst, udst);
  strm->wait();
  return true;
}

#else

bool DirectConv2D(const Conv2DShape&, const float*, const float*, const float*, float*, int) {
  return false;
}

#endif

}  // namespace asrc::runtime
