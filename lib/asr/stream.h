// Running a transducer bundle (docs/bundle.md) on audio: the bundle's settings (BundleConfig),
// its decoder + joiner as a TransducerScorer (GraphScorer), the causal encoder's chunk protocol
// (StreamingEncoder), and both recognition modes (Recognizer):
//   streaming  — the causal encoder runs chunk by chunk as features arrive and its output is
//                searched as it is produced;
//   look-ahead — at the end of the audio the non-causal encoder runs over the concatenated
//                causal output, and its output is searched. Up to one segment
//                (RecognizerOptions::lookahead_segment_s, default longer than any eval utterance)
//                it runs once over the whole output; longer audio is encoded in segments, each
//                inside a window with lookahead_context_s of left and right context
//                (overlap-and-discard, PlanLookaheadSegments), so memory is bounded by the window
//                instead of growing with the square of the audio length.
// Audio is pulled as it is needed (a SampleReader, e.g. an AudioSource over a file): features
// are computed frame by frame (FbankStream), the causal encoder runs as its chunks fill, and the
// look-ahead pass runs each segment's window as soon as its right context exists, keeping only
// the causal output that later windows read; so a cascade's memory is flat in the audio length.
// The look-ahead plan needs the length up front (from the file's header); when the audio turns
// out to have another length, the look-ahead pass runs again over a second reading.
// A `transducer` bundle (one offline encoder: features in, subsampled frames out) has only the
// second mode: at the end of the audio its encoder runs over the features, whole up to one
// segment, beyond in segments of feature frames with the same context (PlanFeatureSegments). The
// frame mapping that needs (every subsampling_factor feature frames add one output frame) is
// checked on the encoder itself; an encoder that does not subsample so is refused on audio
// longer than one segment unless lookahead_segment_s is 0 (encode whole).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "asr/decode.h"
#include "asr/features.h"
#include "asr/segment.h"
#include "core/status.h"
#include "ir/model.h"
#include "runtime/session.h"

namespace asrc::asr {

struct TensorSpec {
  std::string input, output;
  ir::Shape shape;
  ir::DType dtype = ir::DType::Float32;
};

struct BundleConfig {
  std::string model_type;  // "cascaded_transducer" | "transducer"
  FbankOptions frontend;
  int blank_id = 0, vocab_size = 0;
  std::string decoder_type = "lstm";  // "lstm" | "stateless"
  int context_size = 1;
  std::vector<TensorSpec> decoder_state;
  int subsampling_factor = 4;
  // cascaded_transducer only:
  int chunk_frames = 0, right_context_frames = 0;
  float pad_value = 0;
  std::vector<TensorSpec> cache;
  std::vector<std::string> tokens;  // symbol per id

  bool streaming() const { return model_type == "cascaded_transducer"; }
  // Reads model.config (model.json) and model.tokens; errors name the JSON path
  // ("model.json: decoding.decoder_state[1].shape: expected a list of integers").
  static Result<BundleConfig> FromModel(const ir::Model& model);
};

// The bundle's decoder and joiner graphs behind the search interface (no caching here; wrap it
// in a CachingScorer). Joins a batch of hypotheses in one joiner call when the graph allows it.
// A two-decoder cascade (docs/bundle.md) has a second pair, roles decoder_lookahead and
// joiner_lookahead, for the look-ahead pass.
class GraphScorer : public TransducerScorer {
 public:
  static Result<std::unique_ptr<GraphScorer>> Create(const ir::Model& model,
                                                     const BundleConfig& config,
                                                     const runtime::SessionOptions& decoder,
                                                     const runtime::SessionOptions& joiner,
                                                     const std::string& decoder_role = "decoder",
                                                     const std::string& joiner_role = "joiner");
  int blank_id() const override { return cfg_.blank_id; }
  int vocab_size() const override { return cfg_.vocab_size; }
  int context_size() const override { return cfg_.decoder_type == "lstm" ? 1 : cfg_.context_size; }
  Result<std::shared_ptr<const DecoderOut>> Decode(const std::vector<int>& ys,
                                                   const DecoderOut* parent) override;
  Status Join(const float* encoder_frame, int64_t dim, const std::vector<const DecoderOut*>& dec,
              std::vector<float>* logits) override;

 private:
  BundleConfig cfg_;
  std::unique_ptr<runtime::Session> decoder_, joiner_;
  std::string dec_role_, join_role_;  // the graphs' roles, for errors
  int dec_y_ = -1, dec_out_ = -1;
  std::vector<int> state_in_, state_out_;  // positions of decoder_state inputs / outputs
  int join_enc_ = -1, join_dec_ = -1, join_logit_ = -1;
  bool batch_join_ok_ = true;
};

// The causal encoder's chunk protocol (docs/bundle.md "streaming"), fed incrementally.
class StreamingEncoder {
 public:
  // Called for each group of encoder frames produced: `frames` rows of `dim` floats;
  // `encoder_ms` is the encoder's compute time for the chunk.
  using ChunkFn = std::function<Status(const float* enc, int64_t frames, int64_t dim, double encoder_ms)>;

  static Result<std::unique_ptr<StreamingEncoder>> Create(const ir::Model& model,
                                                          const BundleConfig& config,
                                                          const runtime::SessionOptions& options);
  void Reset();  // zero caches, forget features
  // Appends `frames` feature rows; runs every chunk whose window is complete.
  Status AcceptFeatures(const float* feats, int64_t frames, const ChunkFn& fn);
  // End of audio: pads with pad_value, runs the remaining chunks, drops frames past
  // ceil(T / subsampling_factor).
  Status Finish(const ChunkFn& fn);
  int64_t chunks_run() const { return chunks_run_; }

 private:
  Status RunChunk(int64_t keep_frames, const ChunkFn& fn);
  BundleConfig cfg_;
  int feat_dim_ = 0;
  std::unique_ptr<runtime::Session> session_;
  int x_pos_ = -1, out_pos_ = -1;
  std::vector<int> cache_in_, cache_out_;
  std::vector<ir::Tensor> caches_;
  // The frames received from feats_first_ on (row-major): the ones no chunk has consumed yet, so
  // memory stays flat on long audio.
  std::vector<float> feats_;
  int64_t feats_first_ = 0;
  int64_t total_frames_ = 0, chunks_run_ = 0, emitted_ = 0;
};

struct RecognizerOptions {
  SearchOptions search;
  int threads = 1;
  // Look-ahead over long audio: the non-causal (or single offline) encoder's attention spans its
  // whole input, so its memory grows with the square of the input. Audio longer than
  // `lookahead_segment_s` seconds is encoded in segments of at most that length, each with
  // `lookahead_context_s` seconds of context on both sides (PlanLookaheadSegments,
  // PlanFeatureSegments). Audio up to one segment is encoded whole (bit-identical to no
  // segmenting); 0 never segments.
  double lookahead_segment_s = 40;
  double lookahead_context_s = 5;
  // Session options by graph role ("encoder_causal", "encoder_noncausal", "encoder", "decoder",
  // "joiner"), e.g. taps and their observer (runtime/session.h); `threads` above replaces
  // theirs. A role not listed gets default options.
  std::map<std::string, runtime::SessionOptions> sessions;
  // Cache decoder outputs by label context (CachingScorer). Off, the decoder graph runs for every
  // label the search emits, as a runtime without the cache runs it (calibration counts those).
  bool cache_decoder = true;
  runtime::SessionOptions For(const std::string& role) const;
};

struct Recognition {
  std::vector<int> streaming_ids, lookahead_ids;
  std::string streaming_text, lookahead_text;
  int64_t feature_frames = 0, encoder_frames = 0;
  double feature_ms = 0;  // features (and, when Recognize pulls the audio, reading it)
  std::vector<double> chunk_ms;  // streaming: causal encoder + search, per chunk
  double streaming_ms = 0;       // whole streaming pass (features, chunks, search)
  double lookahead_ms = 0;       // whole look-ahead pass (features, causal + non-causal, search)
  double final_ms = 0;           // look-ahead: end of audio -> final hypothesis
  // Process CPU time of the same passes (equals wall time on an idle machine with 1 thread).
  double streaming_cpu_ms = 0, lookahead_cpu_ms = 0;
  int64_t lookahead_segments = 0;  // look-ahead encoder runs (non-causal, or the single encoder)
  int64_t samples = 0;             // audio samples read, at the bundle's rate
  bool reread = false;             // the look-ahead pass read the audio a second time (length != header's)
};

// Replaces *out with the next mono samples at the bundle's rate; empty only at the end.
using SampleReader = std::function<Status(std::vector<float>* out)>;
// Starts a (new) reading of the same audio from its beginning.
using SampleOpener = std::function<Result<SampleReader>()>;

class Recognizer {
 public:
  static Result<std::unique_ptr<Recognizer>> Create(const ir::Model& model,
                                                    const RecognizerOptions& options);
  ~Recognizer();
  const BundleConfig& config() const { return cfg_; }
  bool has_streaming() const { return cfg_.streaming(); }
  // Recognizes mono samples at config().frontend.sample_rate in the requested modes. Error when
  // the audio is too short for one feature frame.
  Result<Recognition> Recognize(const std::vector<float>& samples, bool streaming, bool lookahead);
  // The same, pulling the audio from `open()`'s reader as it is needed (see the top of this file):
  // the same hypotheses as Recognize(samples) on all of its samples. `expected_samples`: the
  // length the look-ahead plan is made for (-1: unknown; the causal output is then kept whole);
  // when the audio has another length, `open` is called once more for a second reading.
  // A `transducer` bundle keeps its features whole (its encoder runs at the end of the audio).
  Result<Recognition> Recognize(const SampleOpener& open, int64_t expected_samples, bool streaming,
                                bool lookahead);
  // An audio file (AudioSource: any format libsndfile reads, resampled to the bundle's rate),
  // read block by block. Errors start with `path`.
  Result<Recognition> RecognizeFile(const std::string& path, bool streaming, bool lookahead);
  // The streaming encoder alone (for tests): causal encoder_out [T', D] of a feature matrix,
  // fed to the chunk protocol `piece` frames at a time (0: all at once).
  Result<std::vector<float>> CausalEncode(const std::vector<float>& feats, int64_t frames,
                                          int64_t piece, int64_t* dim);
  // The cascade's non-causal encoder over the causal output [frames, dim], segmented as
  // RecognizerOptions says: `fn` gets the output frames in order, one call per segment (one for
  // the whole input when it fits in a segment); `segments` (may be null) the number of runs.
  using PieceFn = std::function<Status(const float* enc, int64_t frames, int64_t dim)>;
  Status EncodeLookahead(const std::vector<float>& causal_out, int64_t frames, int64_t dim,
                         const PieceFn& fn, int64_t* segments);
  // A `transducer` bundle's encoder over features [frames, feature_dim], the same way: whole up to
  // one segment, else in segments of feature frames (PlanFeatureSegments); `fn` gets the kept
  // output frames in order, which tile the whole run's output frames (as many, none twice). Error
  // (naming --lookahead-segment 0) when the encoder's output length does not follow its input
  // length as that needs.
  Status EncodeOffline(const std::vector<float>& feats, int64_t frames, const PieceFn& fn, int64_t* segments);
  const Fbank& fbank() const { return *fbank_; }

 private:
  Recognizer() = default;
  Result<std::vector<float>> RunOffline(const std::string& role, const float* x, int64_t frames,
                                        int64_t dim, int64_t* out_frames, int64_t* out_dim);
  class LookaheadFeed;
  struct Pass;
  std::vector<LookaheadSegment> PlanLookahead(int64_t frames) const;
  Status RunLookaheadWindow(const float* x, const LookaheadSegment& s, bool whole, int64_t dim, const PieceFn& fn);
  Status CascadePass(const SampleReader& read, bool streaming, LookaheadFeed* feed, Pass* pass, Recognition* rec);
  Status OfflinePass(const SampleReader& read, Recognition* rec);
  Result<int64_t> OfflineOutputLength(const std::vector<float>& feats, int64_t frames, int64_t length);
  BundleConfig cfg_;
  RecognizerOptions opt_;
  std::unique_ptr<Fbank> fbank_;
  std::unique_ptr<GraphScorer> graph_scorer_;
  std::unique_ptr<CachingScorer> scorer_;  // null without RecognizerOptions::cache_decoder
  // The look-ahead pass's own pair (two-decoder bundles), else null: it shares the above.
  std::unique_ptr<GraphScorer> graph_scorer_la_;
  std::unique_ptr<CachingScorer> scorer_la_;
  std::unique_ptr<Search> search_stream_, search_final_;
  std::unique_ptr<StreamingEncoder> causal_;
  std::unique_ptr<runtime::Session> offline_;  // encoder_noncausal, or encoder (transducer)
  // The `transducer` encoder's output length by input length, as probed (OfflineOutputLength).
  std::map<int64_t, int64_t> offline_lengths_;
};

}  // namespace asrc::asr
