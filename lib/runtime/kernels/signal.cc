// The speech front end inside the graph: DFT, STFT (FFTW3, double precision), MelWeightMatrix,
// HannWindow, HammingWindow, BlackmanWindow (ONNX opset 17 definitions). Complex tensors are
// real tensors with a trailing dimension of 2 (re, im); a trailing 1 means a real signal.
#include <fftw3.h>

#include <cmath>
#include <complex>
#include <mutex>

#include "runtime/kernels/util.h"

namespace asrc::runtime {
namespace {

using namespace ku;
using cd = std::complex<double>;

// FFTW's planner is not thread-safe (sessions may plan on several threads); execution is.
std::mutex& PlannerMutex() {
  static std::mutex m;
  return m;
}

// One complex FFT length and direction; Run transforms `n` points in place (unnormalized).
class Fft {
 public:
  Fft(int64_t n, bool inverse) : n_(n) {
    buf_ = fftw_alloc_complex(static_cast<size_t>(std::max<int64_t>(n, 1)));
    std::lock_guard<std::mutex> lock(PlannerMutex());
    plan_ = fftw_plan_dft_1d(static_cast<int>(n), buf_, buf_, inverse ? FFTW_BACKWARD : FFTW_FORWARD,
                             FFTW_ESTIMATE);
  }
  ~Fft() {
    std::lock_guard<std::mutex> lock(PlannerMutex());
    fftw_destroy_plan(plan_);
    fftw_free(buf_);
  }
  Fft(const Fft&) = delete;
  Fft& operator=(const Fft&) = delete;
  void Run(cd* data) {
    CopyBytes(static_cast<void*>(buf_), static_cast<const void*>(data), sizeof(cd) * n_);
    fftw_execute(plan_);
    CopyBytes(static_cast<void*>(data), static_cast<const void*>(buf_), sizeof(cd) * n_);
  }

 private:
  int64_t n_;
  fftw_complex* buf_ = nullptr;
  fftw_plan plan_ = nullptr;
};

// A real or complex signal tensor (trailing dim 1 or 2) as complex doubles.
Result<std::vector<cd>> ToComplex(const Tensor& t, const char* op) {
  if (!IsFloatish(t.dtype())) return FloatDTypeError(op, t.dtype());
  if (t.rank() < 2 || (t.dim(-1) != 1 && t.dim(-1) != 2))
    return Error(std::string(op) + ": signal must end in a dimension of 1 (real) or 2 (complex), got " + ir::ShapeStr(t.shape()));
  Tensor d(DType::Float64, t.shape());
  ASRC_RETURN_IF_ERROR(ConvertInto(t, d));
  bool cplx = t.dim(-1) == 2;
  std::vector<cd> v(static_cast<size_t>(t.numel() / t.dim(-1)));
  for (size_t i = 0; i < v.size(); ++i)
    v[i] = cplx ? cd(d.data<double>()[2 * i], d.data<double>()[2 * i + 1]) : cd(d.data<double>()[i], 0);
  return v;
}

Status StoreComplex(KernelContext& ctx, DType dt, Shape shape, const std::vector<cd>& v) {
  shape.push_back(2);
  Tensor d(DType::Float64, shape);
  for (size_t i = 0; i < v.size(); ++i) {
    d.data<double>()[2 * i] = v[i].real();
    d.data<double>()[2 * i + 1] = v[i].imag();
  }
  Tensor& y = ctx.Alloc(0, dt, shape);
  return ConvertInto(d, y);
}

Result<int64_t> ScalarInt(const Tensor* t, const char* what) {
  if (!t) return Error(std::string(what) + " is required");
  return ScalarAsInt64(*t, what);
}

class DftKernel : public Kernel {
 public:
  // Opset 20 takes the axis as input 2 (default -2); opset 17 as an attribute (default 1).
  DftKernel(int64_t axis, bool axis_input, bool inverse, bool onesided)
      : axis_(axis), axis_input_(axis_input), inverse_(inverse), onesided_(onesided) {}
  Status Run(KernelContext& ctx) override {
    const Tensor& x = *ctx.in(0);
    ASRC_ASSIGN_OR_RETURN(std::vector<cd> in, ToComplex(x, "DFT"));
    int r = x.rank();
    int64_t axis = axis_;
    if (axis_input_ && ctx.in(2)) { ASRC_ASSIGN_OR_RETURN(axis, ScalarInt(ctx.in(2), "axis")); }
    if (axis < 0) axis += r;  // counts over the whole rank, the trailing (re, im) dim included
    if (axis < 0 || axis >= r - 1) return Error("DFT: axis " + std::to_string(axis_) + " out of range for " + ir::ShapeStr(x.shape()));
    int64_t n = x.dim(static_cast<int>(axis)), outer = 1, inner = 1;
    for (int d = 0; d < axis; ++d) outer *= x.dim(d);
    for (int d = static_cast<int>(axis) + 1; d < r - 1; ++d) inner *= x.dim(d);
    int64_t len = n;
    if (ctx.in(1)) { ASRC_ASSIGN_OR_RETURN(len, ScalarInt(ctx.in(1), "dft_length")); }
    if (len < 1) return Error("DFT: dft_length must be positive");
    int64_t bins = onesided_ ? len / 2 + 1 : len;
    Shape os(x.shape().begin(), x.shape().end() - 1);
    os[axis] = bins;
    // dft_length comes from a tensor: the output and the transform line must fit the memory
    // budget before the vectors below are sized (and outer * bins * inner must not overflow).
    const uint64_t room = ir::MemoryBudget() / sizeof(cd);
    const int64_t out_n = ir::ShapeNumel(os);
    if (out_n < 0 || static_cast<uint64_t>(out_n) > room || static_cast<uint64_t>(len) > room)
      return Error("DFT: dft_length " + std::to_string(len) + " on " + ir::ShapeStr(x.shape()) +
                   " is over the memory budget");
    std::vector<cd> out(static_cast<size_t>(outer * bins * inner)), line(len);
    Fft fft(len, inverse_);
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t i = 0; i < inner; ++i) {
        for (int64_t k = 0; k < len; ++k) line[k] = k < n ? in[(o * n + k) * inner + i] : cd(0, 0);
        fft.Run(line.data());
        for (int64_t k = 0; k < bins; ++k)
          out[(o * bins + k) * inner + i] = inverse_ ? line[k] / static_cast<double>(len) : line[k];
      }
    return StoreComplex(ctx, x.dtype(), os, out);
  }

 private:
  int64_t axis_;
  bool axis_input_, inverse_, onesided_;
};

// STFT(signal [batch, length, 1|2], frame_step, window?, frame_length?) ->
// [batch, frames, bins, 2], frames = 1 + (length - frame_length) / frame_step.
class StftKernel : public Kernel {
 public:
  explicit StftKernel(bool onesided) : onesided_(onesided) {}
  Status Run(KernelContext& ctx) override {
    const Tensor& x = *ctx.in(0);
    ASRC_ASSIGN_OR_RETURN(std::vector<cd> in, ToComplex(x, "STFT"));
    if (x.rank() != 3) return Error("STFT: signal must be [batch, length, 1|2], got " + ir::ShapeStr(x.shape()));
    ASRC_ASSIGN_OR_RETURN(int64_t step, ScalarInt(ctx.in(1), "frame_step"));
    std::vector<double> window;
    if (ctx.in(2)) {
      Tensor w(DType::Float64, ctx.in(2)->shape());
      ASRC_RETURN_IF_ERROR(ConvertInto(*ctx.in(2), w));
      if (w.rank() != 1) return Error("STFT: window must be 1-D");
      window.assign(w.data<double>(), w.data<double>() + w.numel());
    }
    int64_t flen = static_cast<int64_t>(window.size());
    if (ctx.in(3)) {
      ASRC_ASSIGN_OR_RETURN(int64_t fl, ScalarInt(ctx.in(3), "frame_length"));
      if (!window.empty() && fl != flen) return Error("STFT: frame_length differs from the window's length");
      flen = fl;
    }
    int64_t B = x.dim(0), len = x.dim(1);
    if (step < 1 || flen < 1 || flen > len) return Error("STFT: frame_step/frame_length do not fit the signal of " + std::to_string(len));
    if (window.empty()) window.assign(static_cast<size_t>(flen), 1.0);  // flen <= len: checked first
    if (onesided_ && x.dim(2) == 2) return Error("STFT: onesided needs a real signal");
    int64_t frames = 1 + (len - flen) / step, bins = onesided_ ? flen / 2 + 1 : flen;
    const int64_t out_n = ir::ShapeNumel({B, frames, bins});  // overlapping frames multiply the size
    if (out_n < 0 || static_cast<uint64_t>(out_n) > ir::MemoryBudget() / sizeof(cd))
      return Error("STFT: " + std::to_string(frames) + " frames of " + std::to_string(bins) + " bins are over the memory budget");
    std::vector<cd> out(static_cast<size_t>(B * frames * bins)), line(flen);
    Fft fft(flen, false);
    for (int64_t b = 0; b < B; ++b)
      for (int64_t f = 0; f < frames; ++f) {
        for (int64_t k = 0; k < flen; ++k) line[k] = in[b * len + f * step + k] * window[k];
        fft.Run(line.data());
        std::copy(line.begin(), line.begin() + bins, out.begin() + (b * frames + f) * bins);
      }
    return StoreComplex(ctx, x.dtype(), {B, frames, bins}, out);
  }

 private:
  bool onesided_;
};

enum class Win { Hann, Hamming, Blackman };

class WindowKernel : public Kernel {
 public:
  WindowKernel(Win w, bool periodic, DType dt) : w_(w), periodic_(periodic), dt_(dt) {}
  Status Run(KernelContext& ctx) override {
    ASRC_ASSIGN_OR_RETURN(int64_t n, ScalarInt(ctx.in(0), "size"));
    if (n < 0) return Error("window size must be non-negative");
    Tensor d(DType::Float64, {n});
    double N = static_cast<double>(periodic_ ? n : n - 1);
    for (int64_t i = 0; i < n; ++i) {
      double t = N > 0 ? 2 * M_PI * i / N : 0.0, v = 0;
      switch (w_) {
        case Win::Hann: v = 0.5 - 0.5 * std::cos(t); break;
        case Win::Hamming: v = 25.0 / 46.0 - (21.0 / 46.0) * std::cos(t); break;
        case Win::Blackman: v = 0.42 - 0.5 * std::cos(t) + 0.08 * std::cos(2 * t); break;
      }
      d.data<double>()[i] = v;
    }
    Tensor& y = ctx.Alloc(0, dt_, {n});
    return ConvertInto(d, y);
  }

 private:
  Win w_;
  bool periodic_;
  DType dt_;
};

// MelWeightMatrix as the ONNX reference computes it: triangular filters on integer FFT bins
// spaced evenly on the HTK mel scale; [dft_length / 2 + 1, num_mel_bins].
class MelKernel : public Kernel {
 public:
  explicit MelKernel(DType dt) : dt_(dt) {}
  Status Run(KernelContext& ctx) override {
    ASRC_ASSIGN_OR_RETURN(int64_t mels, ScalarInt(ctx.in(0), "num_mel_bins"));
    ASRC_ASSIGN_OR_RETURN(int64_t dft, ScalarInt(ctx.in(1), "dft_length"));
    ASRC_ASSIGN_OR_RETURN(int64_t rate, ScalarInt(ctx.in(2), "sample_rate"));
    ASRC_ASSIGN_OR_RETURN(double lo, ScalarAsDouble(*ctx.in(3)));
    ASRC_ASSIGN_OR_RETURN(double hi, ScalarAsDouble(*ctx.in(4)));
    if (mels < 1 || dft < 1 || rate < 1 || !(lo >= 0) || !(hi > lo) || !std::isfinite(hi) || dft == std::numeric_limits<int64_t>::max())
      return Error("MelWeightMatrix: needs positive bins, dft_length, sample_rate and 0 <= lower < upper edge");
    int64_t spec = dft / 2 + 1;
    auto mel = [](double hz) { return 2595.0 * std::log10(1.0 + hz / 700.0); };
    // The reference divides the mel range into num_mel_bins + 2 steps (not + 1).
    double lo_mel = mel(lo), step = (mel(hi) - lo_mel) / static_cast<double>(mels + 2);
    Tensor d(DType::Float64, {spec, mels});  // over the memory budget: an error before `bin`
    std::vector<int64_t> bin(mels + 2);
    for (int64_t i = 0; i < mels + 2; ++i) {
      double hz = 700.0 * (std::pow(10.0, (i * step + lo_mel) / 2595.0) - 1.0);
      bin[i] = ClampToInt64(std::floor((static_cast<double>(dft) + 1) * hz / rate), -1, spec);
      if (bin[i] < 0 || bin[i] >= spec) return Error("MelWeightMatrix: upper edge above the Nyquist bin");
    }
    double* w = d.data<double>();
    for (int64_t m = 0; m < mels; ++m) {
      int64_t l = bin[m], c = bin[m + 1], h = bin[m + 2];
      if (c == l) w[c * mels + m] = 1;
      else
        for (int64_t j = l; j <= c; ++j) w[j * mels + m] = static_cast<double>(j - l) / (c - l);
      for (int64_t j = c; j < h; ++j) w[j * mels + m] = static_cast<double>(h - j) / (h - c);
    }
    Tensor& y = ctx.Alloc(0, dt_, {spec, mels});
    return ConvertInto(d, y);
  }

 private:
  DType dt_;
};

Result<DType> OutputDType(const KernelInit& i) {
  int64_t dt = i.node->attr_int("output_datatype", 1);
  if (!ir::DTypeKnown(static_cast<int32_t>(dt)) || ir::DTypeSize(static_cast<DType>(dt)) == 0 ||
      dt == static_cast<int64_t>(DType::BFloat16) || dt == static_cast<int64_t>(DType::Complex64) ||
      dt == static_cast<int64_t>(DType::Complex128))
    return Error("unsupported output_datatype " + std::to_string(dt));
  return static_cast<DType>(dt);
}

}  // namespace

void RegisterSignalKernels(KernelRegistry& r) {
  r.Register("", "DFT", DType::Undefined, NeedInputs(1, [](const KernelInit& i) -> KernelPtr {
    bool inverse = i.node->attr_int("inverse", 0) != 0, onesided = i.node->attr_int("onesided", 0) != 0;
    if (inverse && onesided) return Error("DFT: onesided with inverse is not supported");
    return Make<DftKernel>(i.opset >= 20 ? -2 : i.node->attr_int("axis", 1), i.opset >= 20, inverse, onesided);
  }));
  r.Register("", "STFT", DType::Undefined, NeedInputs(2, [](const KernelInit& i) -> KernelPtr {
    return Make<StftKernel>(i.node->attr_int("onesided", 1) != 0);
  }));
  auto window = [&](const char* op, Win w) {
    r.Register("", op, DType::Undefined, NeedInputs(1, [w](const KernelInit& i) -> KernelPtr {
      ASRC_ASSIGN_OR_RETURN(DType dt, OutputDType(i));
      return Make<WindowKernel>(w, i.node->attr_int("periodic", 1) != 0, dt);
    }));
  };
  window("HannWindow", Win::Hann);
  window("HammingWindow", Win::Hamming);
  window("BlackmanWindow", Win::Blackman);
  r.Register("", "MelWeightMatrix", DType::Undefined, NeedInputs(5, [](const KernelInit& i) -> KernelPtr {
    ASRC_ASSIGN_OR_RETURN(DType dt, OutputDType(i));
    return Make<MelKernel>(dt);
  }));
}

}  // namespace asrc::runtime
