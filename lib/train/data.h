// Training data: NeMo-style manifests through the evaluator's Kaldi fbank front end, into
// length-bucketed mini-batches with SpecAugment, as train::Batch feeds.
//
// The feeds follow one naming convention, which a training graph declares as inputs (it may
// leave out the ones it does not use):
//   features        [B, T, F] float32   fbank frames, zero-padded past each utterance's length
//   feature_lengths [B]       int32     frames per utterance
//   targets         [B, U]    int32     token ids, zero-padded
//   target_lengths  [B]       int32
//   decoder_input   [B, U+1]  int64     blank (0) followed by the targets (a stateless or
//                                       teacher-forced decoder's input)
//
// Text -> token ids: the text is normalized as the WER is (asr::NormalizeText), then each word,
// prefixed with "▁" (SentencePiece's word boundary), is split greedily into the longest tokens of
// the model's tokens.txt. This is NOT SentencePiece's own segmentation (asrc has no .model file);
// it gives valid, consistent targets but not the ones the teacher was trained on. A character no
// token covers maps to "<unk>" when the vocabulary has it, else it is an error naming the line.
// A manifest line with a "token_ids" field (a list of ids, e.g. written with the teacher's own
// SentencePiece model by experiments/teacher/bpe_manifest.py) uses those ids instead.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "asr/features.h"
#include "core/status.h"
#include "train/trainer.h"

namespace asrc::train {

struct Utterance {
  std::string id;
  int64_t frames = 0;
  std::vector<float> features;  // [frames, feature_dim]
  std::vector<int32_t> labels;
};

// Greedy longest-match tokenization (see above). tokens[id] = symbol; id 0 is the blank.
Result<std::vector<int32_t>> Tokenize(const std::string& text, const std::vector<std::string>& tokens);

// Reads the manifest lines of `split` ("" = all; at most `limit` when > 0), loads each audio file
// at fbank.sample_rate, computes its features and labels. Errors name the manifest line and file.
Result<std::vector<Utterance>> LoadUtterances(const std::string& manifest, const std::string& split,
                                              const asr::FbankOptions& fbank,
                                              const std::vector<std::string>& tokens, int64_t limit = 0);

// Buckets by length: utterances sorted by frames are cut into batches whose padded size
// (count * longest frames) stays within max_frames (an utterance longer than the cap is a batch
// of its own). Returns index lists; the order of the batches is shuffled with `rng`.
std::vector<std::vector<size_t>> MakeBuckets(const std::vector<Utterance>& utts, int64_t max_frames,
                                             std::mt19937_64& rng);

struct SpecAugmentOptions {
  int freq_masks = 2, freq_width = 15;  // masks of 0..width bins
  int time_masks = 2;
  double time_width = 0.05;  // at most this fraction of the utterance's frames per mask
  static SpecAugmentOptions None() { return {0, 0, 0, 0}; }
};

// SpecAugment in place on `frames` rows of `dim` features: freq_masks bands of 0..freq_width
// bins, then time_masks spans of 0..time_width * frames rows, set to 0, drawn from `rng`.
// = ApplySpecAugment(DrawSpecAugment(...)): the draws depend on frames and dim only, so a caller
// that skips an utterance (a data-parallel rank outside its shard) draws its masks and keeps the
// RNG where applying them would have left it.
void SpecAugment(float* features, int64_t frames, int64_t dim, const SpecAugmentOptions& augment,
                 std::mt19937_64& rng);

struct SpecAugmentMasks {
  std::vector<std::pair<int64_t, int64_t>> freq, time;  // (first bin or frame, width)
};
SpecAugmentMasks DrawSpecAugment(int64_t frames, int64_t dim, const SpecAugmentOptions& augment, std::mt19937_64& rng);
void ApplySpecAugment(float* features, int64_t frames, int64_t dim, const SpecAugmentMasks& masks);

// Pads the utterances `which` into the feeds above (features zero-padded) and sets the batch id
// to their ids. SpecAugment (Park et al. 2019) then zeroes random frequency bands and time spans
// of each utterance (its valid frames only), drawn from `rng`. feature_dim: each frame's width.
Batch Collate(const std::vector<Utterance>& utts, const std::vector<size_t>& which, int64_t feature_dim,
              const SpecAugmentOptions& augment, std::mt19937_64& rng);

// Epochs of bucketed batches for Trainer::Train: step s (1-based) takes batch (s-1) mod n of
// epoch (s-1) / n, whose order is MakeBuckets' shuffle with an RNG seeded by shuffle_seed + epoch;
// SpecAugment draws from the trainer's RNG. Both depend only on the step and the checkpointed
// RNG, so a resumed run sees the same batches. `utts` must outlive the function.
BatchFn EpochBatches(const std::vector<Utterance>& utts, int64_t max_frames, int64_t feature_dim,
                     const SpecAugmentOptions& augment, uint64_t shuffle_seed);

}  // namespace asrc::train
