#include "asr/features.h"

#include <fftw3.h>

#include <algorithm>
#include <cmath>
#include <mutex>

namespace asrc::asr {
namespace {

// FFTW's planner is not thread-safe; execution with fftwf_execute_dft_r2c on fresh arrays is.
std::mutex& FftwPlannerMutex() {
  static std::mutex m;
  return m;
}

double MelScale(double f) { return 1127.0 * std::log(1.0 + f / 700.0); }

template <class T>
Status ReadKey(const nlohmann::json& j, const char* key, T* out) {
  auto it = j.find(key);
  if (it == j.end()) return Status::Ok();
  try {
    *out = it->get<T>();
  } catch (const std::exception&) {
    return Error(std::string("frontend.") + key + ": wrong type (" + it->dump() + ")");
  }
  return Status::Ok();
}

}  // namespace

Result<FbankOptions> FbankOptions::FromJson(const nlohmann::json& j) {
  if (!j.is_object()) return Error("frontend: expected an object");
  FbankOptions o;
  static const char* kKnown[] = {
      "type", "sample_rate", "num_mel_bins", "frame_length_ms", "frame_shift_ms", "window_type",
      "blackman_coeff", "low_freq", "high_freq", "dither", "snip_edges",
      "preemphasis_coefficient", "remove_dc_offset", "round_to_power_of_two", "use_energy",
      "use_log_fbank", "use_power", "energy_floor", "raw_energy", "waveform_scale"};
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (std::find_if(std::begin(kKnown), std::end(kKnown),
                     [&](const char* k) { return it.key() == k; }) == std::end(kKnown))
      return Error("frontend." + it.key() + ": unknown key");
  }
  std::string type = "kaldi_fbank";
  ASRC_RETURN_IF_ERROR(ReadKey(j, "type", &type));
  if (type != "kaldi_fbank") return Error("frontend.type: unsupported '" + type + "'");
  ASRC_RETURN_IF_ERROR(ReadKey(j, "sample_rate", &o.sample_rate));
  ASRC_RETURN_IF_ERROR(ReadKey(j, "num_mel_bins", &o.num_mel_bins));
  ASRC_RETURN_IF_ERROR(ReadKey(j, "frame_length_ms", &o.frame_length_ms));
  ASRC_RETURN_IF_ERROR(ReadKey(j, "frame_shift_ms", &o.frame_shift_ms));
  ASRC_RETURN_IF_ERROR(ReadKey(j, "window_type", &o.window_type));
  ASRC_RETURN_IF_ERROR(ReadKey(j, "blackman_coeff", &o.blackman_coeff));
  ASRC_RETURN_IF_ERROR(ReadKey(j, "low_freq", &o.low_freq));
  ASRC_RETURN_IF_ERROR(ReadKey(j, "high_freq", &o.high_freq));
  ASRC_RETURN_IF_ERROR(ReadKey(j, "dither", &o.dither));
  ASRC_RETURN_IF_ERROR(ReadKey(j, "snip_edges", &o.snip_edges));
  ASRC_RETURN_IF_ERROR(ReadKey(j, "preemphasis_coefficient", &o.preemphasis_coefficient));
  ASRC_RETURN_IF_ERROR(ReadKey(j, "remove_dc_offset", &o.remove_dc_offset));
  ASRC_RETURN_IF_ERROR(ReadKey(j, "round_to_power_of_two", &o.round_to_power_of_two));
  ASRC_RETURN_IF_ERROR(ReadKey(j, "use_energy", &o.use_energy));
  ASRC_RETURN_IF_ERROR(ReadKey(j, "use_log_fbank", &o.use_log_fbank));
  ASRC_RETURN_IF_ERROR(ReadKey(j, "use_power", &o.use_power));
  ASRC_RETURN_IF_ERROR(ReadKey(j, "energy_floor", &o.energy_floor));
  ASRC_RETURN_IF_ERROR(ReadKey(j, "raw_energy", &o.raw_energy));
  ASRC_RETURN_IF_ERROR(ReadKey(j, "waveform_scale", &o.waveform_scale));
  if (o.sample_rate <= 0) return Error("frontend.sample_rate: must be positive");
  if (o.num_mel_bins < 3) return Error("frontend.num_mel_bins: must be at least 3");
  if (o.window_size() < 2 || o.window_shift() < 1)
    return Error("frontend: frame_length_ms/frame_shift_ms give an empty frame");
  if (o.dither != 0.0) return Error("frontend.dither: must be 0 for evaluation");
  static const char* kWindows[] = {"povey", "hanning", "hamming", "rectangular", "blackman"};
  if (std::find_if(std::begin(kWindows), std::end(kWindows),
                   [&](const char* k) { return o.window_type == k; }) == std::end(kWindows))
    return Error("frontend.window_type: unsupported '" + o.window_type + "'");
  double nyquist = 0.5 * o.sample_rate;
  double high = o.high_freq <= 0 ? o.high_freq + nyquist : o.high_freq;
  if (o.low_freq < 0 || high > nyquist || high <= o.low_freq)
    return Error("frontend: bad low_freq/high_freq");
  return o;
}

// torchaudio: int(sample_frequency * frame_length * 0.001)
int FbankOptions::window_size() const {
  return static_cast<int>(sample_rate * frame_length_ms * 0.001);
}
int FbankOptions::window_shift() const {
  return static_cast<int>(sample_rate * frame_shift_ms * 0.001);
}

struct Fbank::Fft {
  fftw_plan plan = nullptr;
  ~Fft() {
    if (plan) {
      std::lock_guard<std::mutex> lock(FftwPlannerMutex());
      fftw_destroy_plan(plan);
    }
  }
};

Fbank::~Fbank() = default;

Result<std::unique_ptr<Fbank>> Fbank::Create(const FbankOptions& o) {
  std::unique_ptr<Fbank> f(new Fbank());
  f->opt_ = o;
  f->window_ = o.window_size();
  f->shift_ = o.window_shift();
  if (f->window_ < 2 || f->shift_ < 1) return Error("frontend: empty frame");
  int padded = f->window_;
  if (o.round_to_power_of_two) {
    padded = 1;
    while (padded < f->window_) padded <<= 1;
  }
  f->padded_ = padded;

  // Window function, as torchaudio's feature_window_function (symmetric windows).
  const int n = f->window_;
  const double a = 2.0 * M_PI / (n - 1);
  f->window_fn_.resize(n);
  for (int i = 0; i < n; ++i) {
    double hann = 0.5 - 0.5 * std::cos(a * i);
    double w = 1.0;
    if (o.window_type == "povey") w = std::pow(hann, 0.85);
    else if (o.window_type == "hanning") w = hann;
    else if (o.window_type == "hamming") w = 0.54 - 0.46 * std::cos(a * i);
    else if (o.window_type == "blackman")
      w = o.blackman_coeff - 0.5 * std::cos(a * i) + (0.5 - o.blackman_coeff) * std::cos(2 * a * i);
    f->window_fn_[i] = w;
  }

  // Triangular mel filters over the first padded/2 FFT bins (the Nyquist bin gets weight 0).
  const int num_fft_bins = padded / 2;
  const double nyquist = 0.5 * o.sample_rate;
  const double high = o.high_freq <= 0 ? o.high_freq + nyquist : o.high_freq;
  const double bin_width = static_cast<double>(o.sample_rate) / padded;
  const double mel_low = MelScale(o.low_freq), mel_high = MelScale(high);
  const double delta = (mel_high - mel_low) / (o.num_mel_bins + 1);
  f->mel_.assign(o.num_mel_bins, std::vector<double>(num_fft_bins + 1, 0.0));
  f->mel_first_.assign(o.num_mel_bins, num_fft_bins + 1);
  f->mel_last_.assign(o.num_mel_bins, -1);
  for (int b = 0; b < o.num_mel_bins; ++b) {
    double left = mel_low + b * delta, center = mel_low + (b + 1) * delta,
           right = mel_low + (b + 2) * delta;
    for (int k = 0; k < num_fft_bins; ++k) {
      double mel = MelScale(bin_width * k);
      double up = (mel - left) / (center - left), down = (right - mel) / (right - center);
      double w = std::max(0.0, std::min(up, down));
      if (w > 0) {
        f->mel_[b][k] = w;
        f->mel_first_[b] = std::min(f->mel_first_[b], k);
        f->mel_last_[b] = std::max(f->mel_last_[b], k);
      }
    }
  }

  f->fft_ = std::make_unique<Fft>();
  {
    std::lock_guard<std::mutex> lock(FftwPlannerMutex());
    double* in = fftw_alloc_real(padded);
    fftw_complex* out = fftw_alloc_complex(padded / 2 + 1);
    f->fft_->plan = fftw_plan_dft_r2c_1d(padded, in, out, FFTW_ESTIMATE);
    fftw_free(in);
    fftw_free(out);
  }
  if (!f->fft_->plan) return Error("frontend: FFTW could not plan a size-" + std::to_string(padded) + " FFT");
  return f;
}

int64_t Fbank::NumFrames(int64_t n) const {
  if (opt_.snip_edges) return n < window_ ? 0 : 1 + (n - window_) / shift_;
  return (n + shift_ / 2) / shift_;
}

struct Fbank::Work {
  double* in = nullptr;
  fftw_complex* out = nullptr;
  std::vector<double> frame, spectrum;
  Work(int window, int padded)
      : in(fftw_alloc_real(padded)), out(fftw_alloc_complex(padded / 2 + 1)), frame(window), spectrum(padded / 2 + 1) {}
  ~Work() {
    fftw_free(in);
    fftw_free(out);
  }
  Work(const Work&) = delete;
  Work& operator=(const Work&) = delete;
};

// Without snip_edges, the signal torchaudio frames is the first `pad` samples reversed, the
// samples, then the whole signal reversed (Kaldi's reflection that repeats the edge sample).
void Fbank::Edges(int64_t n, int64_t* head, int64_t* body_first) const {
  *head = *body_first = 0;
  if (opt_.snip_edges) return;
  const int64_t pad = window_ / 2 - shift_ / 2;
  if (pad > 0) *head = std::min(pad, n);
  else *body_first = std::min(-pad, n);
}

int64_t Fbank::lead() const {
  return opt_.snip_edges ? 0 : std::abs(int64_t{window_ / 2 - shift_ / 2});
}

template <class SampleFn>
void Fbank::Frame(int64_t t, int64_t n, const SampleFn& sample, Work& w, float* row) const {
  // The framed signal is read through an index map, not copied: a copy in double precision is
  // four times the audio, a lot on an hour-long recording.
  int64_t head = 0, body_first = 0;
  Edges(n, &head, &body_first);
  const int64_t body_end = head + (n - body_first);
  const int64_t signal_size = opt_.snip_edges ? n : body_end + n;
  auto signal = [&](int64_t idx) -> double {
    float v = idx < head       ? sample(head - 1 - idx)
              : idx < body_end ? sample(body_first + idx - head)
                               : sample(n - 1 - (idx - body_end));
    return static_cast<double>(v) * opt_.waveform_scale;
  };
  // Double precision throughout: torchaudio's float32 pipeline is itself ~1e-3 off the exact
  // log-mel values in weak low-frequency bins; computing exactly keeps us within its rounding.
  const double eps = 1.1920928955078125e-07;  // torch.finfo(torch.float).eps
  const double coef = opt_.preemphasis_coefficient;
  const double log_floor = opt_.energy_floor != 0 ? std::log(opt_.energy_floor) : 0;
  auto energy = [&](const double* x, int len) {
    double e = 0;
    for (int i = 0; i < len; ++i) e += x[i] * x[i];
    double le = std::log(std::max(e, eps));
    return opt_.energy_floor != 0 ? std::max(le, log_floor) : le;
  };
  std::vector<double>& frame = w.frame;
  const int64_t off = t * shift_;
  for (int i = 0; i < window_; ++i) {
    int64_t idx = off + i;
    frame[i] = idx < signal_size ? signal(idx) : 0.0;
  }
  if (opt_.remove_dc_offset) {
    double sum = 0;
    for (double v : frame) sum += v;
    double mean = sum / window_;
    for (double& v : frame) v -= mean;
  }
  double log_energy = 0;
  if (opt_.use_energy && opt_.raw_energy) log_energy = energy(frame.data(), window_);
  if (coef != 0) {
    for (int i = window_ - 1; i > 0; --i) frame[i] -= coef * frame[i - 1];
    frame[0] -= coef * frame[0];
  }
  for (int i = 0; i < window_; ++i) w.in[i] = frame[i] * window_fn_[i];
  for (int i = window_; i < padded_; ++i) w.in[i] = 0;
  if (opt_.use_energy && !opt_.raw_energy) log_energy = energy(w.in, padded_);
  fftw_execute_dft_r2c(fft_->plan, w.in, w.out);
  for (int k = 0; k <= padded_ / 2; ++k) {
    double p = w.out[k][0] * w.out[k][0] + w.out[k][1] * w.out[k][1];
    w.spectrum[k] = opt_.use_power ? p : std::sqrt(p);
  }
  int o = 0;
  if (opt_.use_energy) row[o++] = static_cast<float>(log_energy);
  for (int b = 0; b < opt_.num_mel_bins; ++b) {
    double e = 0;
    for (int k = mel_first_[b]; k <= mel_last_[b]; ++k) e += mel_[b][k] * w.spectrum[k];
    row[o++] = static_cast<float>(opt_.use_log_fbank ? std::log(std::max(e, eps)) : e);
  }
}

std::vector<float> Fbank::Compute(const float* samples, int64_t n) const {
  const int64_t frames = NumFrames(n);
  const int dim = opt_.feature_dim();
  std::vector<float> feats(static_cast<size_t>(frames) * dim);
  if (frames == 0) return feats;
  Work w(window_, padded_);
  auto sample = [samples](int64_t i) { return samples[i]; };
  for (int64_t t = 0; t < frames; ++t) Frame(t, n, sample, w, feats.data() + t * dim);
  return feats;
}

// --- FbankStream ---

FbankStream::FbankStream(const Fbank& fbank)
    : fb_(fbank), work_(std::make_unique<Fbank::Work>(fbank.window_, fbank.padded_)) {}

FbankStream::~FbankStream() = default;

void FbankStream::Emit(int64_t upto, int64_t n, std::vector<float>* out) {
  const int dim = fb_.opt_.feature_dim();
  const int64_t lead = static_cast<int64_t>(start_.size());
  auto sample = [&](int64_t i) { return i < lead ? start_[i] : buf_[i - buf_first_]; };
  for (; next_ < upto; ++next_) {
    const size_t base = out->size();
    out->resize(base + dim);
    fb_.Frame(next_, n, sample, *work_, out->data() + base);
  }
  // Samples before the next frame's first one are never read again, except the last window's
  // worth (the end's reflection, once Finish knows where the end is).
  int64_t head = 0, body_first = 0;
  fb_.Edges(n, &head, &body_first);
  const int64_t first_needed = std::max<int64_t>(
      0, std::min(next_ * fb_.shift_ - head + body_first, received_ - 2 * int64_t{fb_.window_}));
  if (first_needed > buf_first_) {
    buf_.erase(buf_.begin(), buf_.begin() + (first_needed - buf_first_));
    buf_first_ = first_needed;
  }
}

void FbankStream::Accept(const float* samples, int64_t n, std::vector<float>* out) {
  const int64_t lead = fb_.lead();
  for (int64_t i = 0; i < n && received_ + i < lead; ++i) start_.push_back(samples[i]);
  buf_.insert(buf_.end(), samples, samples + n);
  received_ += n;
  // Until `lead` samples are in, the start's reflection still depends on the length.
  if (received_ < lead) return;
  int64_t head = 0, body_first = 0;
  fb_.Edges(received_, &head, &body_first);
  // Frame t is complete when its last sample is a received one (not the end's reflection).
  const int64_t body_end = head + received_ - body_first;
  const int64_t window = fb_.window_, shift = fb_.shift_;
  const int64_t complete = body_end < window ? 0 : (body_end - window) / shift + 1;
  Emit(std::min(complete, fb_.NumFrames(received_)), received_, out);
}

void FbankStream::Finish(std::vector<float>* out) { Emit(fb_.NumFrames(received_), received_, out); }

}  // namespace asrc::asr
