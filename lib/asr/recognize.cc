// Recognizer's passes over audio that arrives as it is read (see asr/stream.h): features on
// demand, the causal encoder chunk by chunk, the look-ahead windows as they fill.
#include <algorithm>
#include <cstring>

#include "asr/audio.h"
#include "asr/stream.h"
#include "asr/stream_internal.h"

namespace asrc::asr {
using internal::Clock;
using internal::CpuMs;
using internal::MsSince;
using internal::SecondsToEncoderFrames;

namespace {

// Reads `read` to its end through `fbank`, handing each batch of new feature rows to `sink`
// (rows, count). `ms`: time spent reading and computing features (not in `sink`).
Status PullFeatures(const SampleReader& read, FbankStream* fbank, int64_t dim,
                    const std::function<Status(const float*, int64_t)>& sink, double* ms) {
  std::vector<float> block, feats;
  for (;;) {
    auto t0 = Clock::now();
    ASRC_RETURN_IF_ERROR(read(&block));
    feats.clear();
    if (block.empty()) fbank->Finish(&feats);
    else fbank->Accept(block.data(), static_cast<int64_t>(block.size()), &feats);
    *ms += MsSince(t0);
    const int64_t n = static_cast<int64_t>(feats.size()) / dim;
    if (n > 0) ASRC_RETURN_IF_ERROR(sink(feats.data(), n));
    if (block.empty()) return Status::Ok();
  }
}

// The causal output frames of `feature_frames` feature frames (StreamingEncoder::Finish).
int64_t CausalFrames(const BundleConfig& c, int64_t feature_frames) {
  return (feature_frames + c.subsampling_factor - 1) / c.subsampling_factor;
}

}  // namespace

// The look-ahead plan run on causal output frames as they arrive: each window as soon as its
// right context is in; only the frames a later window reads are kept (a window and a bit).
class Recognizer::LookaheadFeed {
 public:
  // planned: the causal output's length the plan is made for (-1: unknown, keep all until Finish).
  LookaheadFeed(Recognizer* r, PieceFn fn, int64_t planned) : r_(r), fn_(std::move(fn)) {
    if (planned >= 0) Plan(planned);
  }
  Status Add(const float* e, int64_t n, int64_t d) {
    received_ += n;
    if (stale_) return Status::Ok();
    if (planned_ >= 0 && received_ > planned_ && next_ > 0) {  // longer than planned: see Finish
      stale_ = true;
      std::vector<float>().swap(buf_);
      return Status::Ok();
    }
    dim_ = d;
    buf_.insert(buf_.end(), e, e + n * d);
    if (plan_.size() > 1)
      while (next_ < plan_.size() && plan_[next_].window_end <= received_) ASRC_RETURN_IF_ERROR(RunNext());
    return Status::Ok();
  }
  // End of the causal output: runs the windows left. *stale: the plan was made for another
  // length and some windows have run already, so the pass must be run again (nothing was given
  // to `fn` beyond those windows' frames; the caller resets the search).
  Status Finish(bool* stale) {
    *stale = stale_ || (planned_ != received_ && next_ > 0);
    if (*stale) return Status::Ok();
    if (planned_ != received_) Plan(received_);  // nothing has run: all frames are still here
    while (next_ < plan_.size()) ASRC_RETURN_IF_ERROR(RunNext());
    return Status::Ok();
  }
  int64_t segments() const { return static_cast<int64_t>(plan_.size()); }

 private:
  void Plan(int64_t frames) {
    planned_ = frames;
    plan_ = r_->PlanLookahead(frames);
  }
  Status RunNext() {
    const LookaheadSegment& s = plan_[next_];
    ASRC_RETURN_IF_ERROR(r_->RunLookaheadWindow(buf_.data() + (s.window_begin - first_) * dim_, s,
                                                plan_.size() == 1, dim_, fn_));
    ++next_;
    const int64_t keep_from = next_ < plan_.size() ? plan_[next_].window_begin : received_;
    if (keep_from > first_) {
      buf_.erase(buf_.begin(), buf_.begin() + (keep_from - first_) * dim_);
      first_ = keep_from;
    }
    return Status::Ok();
  }
  Recognizer* r_;
  PieceFn fn_;
  std::vector<LookaheadSegment> plan_;
  int64_t planned_ = -1, received_ = 0, first_ = 0, dim_ = 0;
  size_t next_ = 0;
  bool stale_ = false;
  std::vector<float> buf_;  // causal output frames from first_ on
};

std::vector<LookaheadSegment> Recognizer::PlanLookahead(int64_t frames) const {
  return PlanLookaheadSegments(frames, SecondsToEncoderFrames(cfg_, opt_.lookahead_segment_s),
                               SecondsToEncoderFrames(cfg_, opt_.lookahead_context_s));
}

Status Recognizer::RunLookaheadWindow(const float* x, const LookaheadSegment& s, bool whole, int64_t dim,
                                      const PieceFn& fn) {
  const int64_t w = s.window_end - s.window_begin;
  int64_t t = 0, d = 0;
  ASRC_ASSIGN_OR_RETURN(auto enc, RunOffline("encoder_noncausal", x, w, dim, &t, &d));
  if (whole) return fn(enc.data(), t, d);  // the whole input, as the encoder returned it
  // Overlap-and-discard needs output frame i to belong to input frame i.
  if (t != w)
    return Error("encoder_noncausal: returned " + std::to_string(t) + " frames for " + std::to_string(w) +
                 " input frames; segmented look-ahead needs one output frame per input frame "
                 "(use --lookahead-segment 0)");
  return fn(enc.data() + (s.keep_begin - s.window_begin) * d, s.keep_end - s.keep_begin, d);
}

Status Recognizer::EncodeLookahead(const std::vector<float>& causal_out, int64_t frames, int64_t dim,
                                   const PieceFn& fn, int64_t* segments) {
  if (!causal_) return Error("bundle has no causal encoder");
  if (static_cast<int64_t>(causal_out.size()) != frames * dim)
    return Error("encoder_noncausal: input has " + std::to_string(causal_out.size()) + " values, expected " +
                 std::to_string(frames) + " x " + std::to_string(dim));
  LookaheadFeed feed(this, fn, frames);
  ASRC_RETURN_IF_ERROR(feed.Add(causal_out.data(), frames, dim));
  bool stale = false;
  ASRC_RETURN_IF_ERROR(feed.Finish(&stale));
  if (segments) *segments = feed.segments();
  return Status::Ok();
}

Result<std::vector<float>> Recognizer::CausalEncode(const std::vector<float>& feats, int64_t frames,
                                                    int64_t piece, int64_t* dim) {
  if (!causal_) return Error("bundle has no causal encoder");
  std::vector<float> all;
  *dim = 0;
  auto collect = [&](const float* e, int64_t n, int64_t d, double) {
    *dim = d;
    all.insert(all.end(), e, e + n * d);
    return Status::Ok();
  };
  causal_->Reset();
  const int64_t fd = cfg_.frontend.feature_dim();
  if (piece <= 0) piece = std::max<int64_t>(1, frames);
  for (int64_t f = 0; f < frames; f += piece)
    ASRC_RETURN_IF_ERROR(causal_->AcceptFeatures(feats.data() + f * fd, std::min(piece, frames - f), collect));
  ASRC_RETURN_IF_ERROR(causal_->Finish(collect));
  return all;
}

// Times of one cascade pass (ms; *_cpu: process CPU time).
struct Recognizer::Pass {
  double feature_ms = 0, causal_ms = 0, finish_encoder_ms = 0;
  double stream_search_ms = 0, stream_search_cpu = 0;
  double lookahead_ms = 0, lookahead_cpu = 0, lookahead_final_ms = 0;
  int64_t causal_frames = 0;
};

// One reading of the audio through the cascade: features, the causal encoder, the streaming
// search (when `streaming`), the look-ahead windows as they fill (when `feed`; its Finish is
// the caller's).
Status Recognizer::CascadePass(const SampleReader& read, bool streaming, LookaheadFeed* feed, Pass* p,
                               Recognition* rec) {
  causal_->Reset();
  FbankStream fbank(*fbank_);
  bool finishing = false;
  auto on_chunk = [&](const float* e, int64_t n, int64_t d, double enc_ms) -> Status {
    p->causal_frames += n;
    p->causal_ms += enc_ms;
    if (finishing) p->finish_encoder_ms += enc_ms;
    double search_ms = 0;
    if (streaming) {
      auto t0 = Clock::now();
      const double c0 = CpuMs();
      ASRC_RETURN_IF_ERROR(search_stream_->Accept(e, n, d));
      search_ms = MsSince(t0);
      p->stream_search_cpu += CpuMs() - c0;
      p->stream_search_ms += search_ms;
    }
    if (rec) rec->chunk_ms.push_back(enc_ms + search_ms);
    if (feed) {
      auto t0 = Clock::now();
      const double c0 = CpuMs();
      ASRC_RETURN_IF_ERROR(feed->Add(e, n, d));
      const double ms = MsSince(t0);
      p->lookahead_ms += ms;
      p->lookahead_cpu += CpuMs() - c0;
      if (finishing) p->lookahead_final_ms += ms;
    }
    return Status::Ok();
  };
  auto accept = [&](const float* f, int64_t n) { return causal_->AcceptFeatures(f, n, on_chunk); };
  ASRC_RETURN_IF_ERROR(PullFeatures(read, &fbank, cfg_.frontend.feature_dim(), accept, &p->feature_ms));
  if (rec) {
    rec->samples = fbank.samples();
    rec->feature_frames = fbank.frames();
  }
  if (fbank.frames() == 0) return Error("audio too short for one feature frame");
  finishing = true;
  return causal_->Finish(on_chunk);
}

// A `transducer` bundle: its encoder reads the features of the whole audio.
Status Recognizer::OfflinePass(const SampleReader& read, Recognition* rec) {
  const double cpu0 = CpuMs();
  const int64_t fd = cfg_.frontend.feature_dim();
  FbankStream fbank(*fbank_);
  std::vector<float> feats;
  auto keep = [&](const float* f, int64_t n) {
    feats.insert(feats.end(), f, f + n * fd);
    return Status::Ok();
  };
  ASRC_RETURN_IF_ERROR(PullFeatures(read, &fbank, fd, keep, &rec->feature_ms));
  rec->samples = fbank.samples();
  rec->feature_frames = fbank.frames();
  if (fbank.frames() == 0) return Error("audio too short for one feature frame");
  auto t0 = Clock::now();
  int64_t t = 0;
  ASRC_RETURN_IF_ERROR(search_final_->Reset());
  auto search = [&](const float* e, int64_t n, int64_t d) {
    t += n;
    return search_final_->Accept(e, n, d);
  };
  ASRC_RETURN_IF_ERROR(EncodeOffline(feats, fbank.frames(), search, &rec->lookahead_segments));
  rec->lookahead_ids = search_final_->Best();
  rec->final_ms = MsSince(t0);
  rec->lookahead_ms = rec->feature_ms + rec->final_ms;
  rec->lookahead_cpu_ms = CpuMs() - cpu0;
  rec->encoder_frames = t;
  rec->lookahead_text = TokensToText(rec->lookahead_ids, cfg_.tokens);
  return Status::Ok();
}

Result<Recognition> Recognizer::Recognize(const SampleOpener& open, int64_t expected_samples, bool streaming,
                                          bool lookahead) {
  Recognition rec;
  ASRC_ASSIGN_OR_RETURN(SampleReader read, open());
  if (!cfg_.streaming()) {
    if (lookahead) ASRC_RETURN_IF_ERROR(OfflinePass(read, &rec));
    return rec;
  }
  const double cpu0 = CpuMs();
  if (streaming) ASRC_RETURN_IF_ERROR(search_stream_->Reset());
  if (lookahead) ASRC_RETURN_IF_ERROR(search_final_->Reset());
  auto search = [&](const float* e, int64_t n, int64_t d) { return search_final_->Accept(e, n, d); };
  const int64_t planned = expected_samples >= 0 ? CausalFrames(cfg_, fbank_->NumFrames(expected_samples)) : -1;
  LookaheadFeed feed(this, search, planned);
  Pass p;
  ASRC_RETURN_IF_ERROR(CascadePass(read, streaming, lookahead ? &feed : nullptr, &p, &rec));
  const double cpu_pass = CpuMs() - cpu0;
  rec.encoder_frames = p.causal_frames;
  rec.feature_ms = p.feature_ms;
  if (streaming) {
    rec.streaming_ids = search_stream_->Best();
    rec.streaming_text = TokensToText(rec.streaming_ids, cfg_.tokens);
    rec.streaming_ms = p.feature_ms + p.causal_ms + p.stream_search_ms;
    rec.streaming_cpu_ms = cpu_pass - p.lookahead_cpu;
  }
  if (!lookahead) return rec;
  auto t0 = Clock::now();
  bool stale = false;
  ASRC_RETURN_IF_ERROR(feed.Finish(&stale));
  rec.lookahead_segments = feed.segments();
  if (stale) {
    // The audio's length is not the header's, and the plan made for it has run in part: read
    // the audio again with the plan for the length now known.
    rec.reread = true;
    ASRC_RETURN_IF_ERROR(search_final_->Reset());
    LookaheadFeed again(this, search, p.causal_frames);
    ASRC_ASSIGN_OR_RETURN(SampleReader reread, open());
    Pass p2;
    ASRC_RETURN_IF_ERROR(CascadePass(reread, false, &again, &p2, nullptr));
    ASRC_RETURN_IF_ERROR(again.Finish(&stale));
    if (stale || p2.causal_frames != p.causal_frames)
      return Error("the audio gave " + std::to_string(p2.causal_frames) + " encoder frames on a second reading, " +
                   std::to_string(p.causal_frames) + " on the first");
    rec.lookahead_segments = again.segments();
  }
  rec.lookahead_ids = search_final_->Best();
  const double ms = MsSince(t0);
  rec.final_ms = p.finish_encoder_ms + p.lookahead_final_ms + ms;
  rec.lookahead_ms = p.feature_ms + p.causal_ms + p.lookahead_ms + ms;
  rec.lookahead_cpu_ms = CpuMs() - cpu0 - p.stream_search_cpu;
  rec.lookahead_text = TokensToText(rec.lookahead_ids, cfg_.tokens);
  return rec;
}

Result<Recognition> Recognizer::Recognize(const std::vector<float>& samples, bool streaming, bool lookahead) {
  auto open = [&samples]() -> Result<SampleReader> {
    auto at = std::make_shared<size_t>(0);
    return SampleReader([&samples, at](std::vector<float>* out) {
      const size_t n = std::min<size_t>(samples.size() - *at, 16000);
      out->assign(samples.begin() + *at, samples.begin() + *at + n);
      *at += n;
      return Status::Ok();
    });
  };
  return Recognize(open, static_cast<int64_t>(samples.size()), streaming, lookahead);
}

Result<Recognition> Recognizer::RecognizeFile(const std::string& path, bool streaming, bool lookahead) {
  ASRC_ASSIGN_OR_RETURN(std::unique_ptr<AudioSource> first, AudioSource::Open(path, cfg_.frontend.sample_rate));
  const int64_t expected = first->expected_samples();
  std::shared_ptr<AudioSource> pending(std::move(first));
  auto open = [&]() -> Result<SampleReader> {
    std::shared_ptr<AudioSource> src = std::move(pending);  // the first reading uses the one opened above
    if (!src) {
      ASRC_ASSIGN_OR_RETURN(std::unique_ptr<AudioSource> again, AudioSource::Open(path, cfg_.frontend.sample_rate));
      src = std::move(again);
    }
    return SampleReader([src](std::vector<float>* out) { return src->Read(out); });
  };
  auto rec = Recognize(open, expected, streaming, lookahead);
  // Audio errors name the file already; the model's do not.
  if (!rec.ok() && rec.status().message().rfind(path + ": ", 0) != 0) return rec.status().With(path);
  return rec;
}

}  // namespace asrc::asr
