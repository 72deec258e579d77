// Transducer search: greedy (up to max_symbols_per_frame labels per encoder frame) and modified
// beam search (icefall / sherpa-onnx: at most one label per frame per hypothesis, the `beam` best
// of all (hypothesis, label) extensions kept, equal label sequences merged by log-add, the final
// best chosen by length-normalized log-probability).
//
// The search sees the prediction network and joiner through TransducerScorer, so the same search
// runs the bundle's ONNX graphs (GraphScorer in stream.h) or a model written in C++ (tests).
// Searches are incremental: Accept() takes encoder frames as the streaming encoder produces them.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "ir/tensor.h"

namespace asrc::asr {

// The prediction network's output after a label sequence, plus whatever it needs to continue.
struct DecoderOut {
  std::vector<float> out;           // decoder_out for this label context [D_dec]
  std::vector<ir::Tensor> state;    // stateful decoders: recurrent state after the last label
};

class TransducerScorer {
 public:
  virtual ~TransducerScorer() = default;
  virtual int blank_id() const = 0;
  virtual int vocab_size() const = 0;
  // Labels a hypothesis starts with (blank_id repeated): 1 for LSTM decoders, context_size for
  // stateless ones.
  virtual int context_size() const = 0;
  // Decoder output for the label sequence `ys` (starting with the context_size() blanks).
  // `parent` is the result for `ys` without its last label (nullptr for the start sequence);
  // a stateless decoder looks only at the last context_size() labels, a stateful one continues
  // from parent->state.
  virtual Result<std::shared_ptr<const DecoderOut>> Decode(const std::vector<int>& ys,
                                                           const DecoderOut* parent) = 0;
  // Joiner logits (unnormalized) for one encoder frame of `dim` floats against `n` decoder outputs:
  // logits is resized to n * vocab_size().
  virtual Status Join(const float* encoder_frame, int64_t dim,
                      const std::vector<const DecoderOut*>& dec, std::vector<float>* logits) = 0;
  // Forget cached decoder outputs (between utterances).
  virtual void ResetCache() {}
};

// Caches decoder outputs by label context (the last context_size() labels for stateless decoders,
// the whole sequence for stateful ones) in front of another scorer, so a context the search meets
// again (the next frame, another hypothesis) is not recomputed.
class CachingScorer : public TransducerScorer {
 public:
  CachingScorer(TransducerScorer* inner, bool stateless) : inner_(inner), stateless_(stateless) {}
  int blank_id() const override { return inner_->blank_id(); }
  int vocab_size() const override { return inner_->vocab_size(); }
  int context_size() const override { return inner_->context_size(); }
  Result<std::shared_ptr<const DecoderOut>> Decode(const std::vector<int>& ys,
                                                   const DecoderOut* parent) override;
  Status Join(const float* encoder_frame, int64_t dim, const std::vector<const DecoderOut*>& dec,
              std::vector<float>* logits) override {
    return inner_->Join(encoder_frame, dim, dec, logits);
  }
  void ResetCache() override {
    cache_.clear();
    old_.clear();
    cache_bytes_ = 0;
    inner_->ResetCache();
  }
  // What the cache may hold (keys and outputs), in bytes, in two generations of half of it each:
  // when the newer is full, the older is dropped and the newer becomes the older, so the recent
  // contexts (the ones a search meets again) stay. A recurrent decoder's key is the whole label
  // history, so on long audio a cache without a bound would grow with the square of the labels;
  // dropping entries loses only reuse, never results (the outputs are a function of the labels).
  // An utterance of the eval sets (a few hundred labels, a few KB per entry) fits in one generation.
  static constexpr int64_t kMaxBytes = int64_t{8} << 20;
  int64_t hits() const { return hits_; }
  int64_t misses() const { return misses_; }
  int64_t turnovers() const { return turnovers_; }  // times the older generation was dropped

 private:
  TransducerScorer* inner_;
  bool stateless_;
  std::map<std::vector<int>, std::shared_ptr<const DecoderOut>> cache_, old_;
  int64_t cache_bytes_ = 0;  // of cache_ (the newer generation)
  int64_t hits_ = 0, misses_ = 0, turnovers_ = 0;
};

struct SearchOptions {
  int beam = 0;                   // 0 or 1: greedy; > 1: modified beam search
  int max_symbols_per_frame = 5;  // greedy only
};

class Search {
 public:
  virtual ~Search() = default;
  // Starts a new utterance (also resets the scorer's cache).
  virtual Status Reset() = 0;
  // Consumes `frames` encoder frames of `dim` floats each (row-major).
  virtual Status Accept(const float* encoder_out, int64_t frames, int64_t dim) = 0;
  // Best label sequence so far (without the starting context).
  virtual std::vector<int> Best() const = 0;
};

// `scorer` must outlive the search. Call Reset() before the first Accept().
std::unique_ptr<Search> CreateSearch(TransducerScorer* scorer, const SearchOptions& options);

// Label ids -> text with SentencePiece conventions: "▁" starts a word; "<blk>", "<unk>"-style
// symbols in angle brackets are dropped. `tokens[id]` is the symbol.
std::string TokensToText(const std::vector<int>& ids, const std::vector<std::string>& tokens);

}  // namespace asrc::asr
