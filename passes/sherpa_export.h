// sherpa-onnx export: a transducer bundle with a stateless decoder, rewritten into sherpa-onnx's
// offline transducer layout (encoder.onnx, decoder.onnx, joiner.onnx, tokens.txt), which
// sherpa-onnx's OfflineRecognizer (greedy_search / modified_beam_search) loads as it loads an
// icefall export:
//   encoder  inputs (x [N,T,F] float, x_lens [N] int64) -> (encoder_out [N,T',D], encoder_out_lens [N]),
//            by position;
//   decoder  input y [N, context_size] int64 -> decoder_out [N, Dd] (first output); metadata
//            vocab_size and context_size (sherpa-onnx reads both from the decoder);
//   joiner   inputs (encoder_out [N,D], decoder_out [N,Dd]) -> logit [N, vocab] (first output).
//
// A cascaded bundle's two encoders become ONE offline encoder in look-ahead mode: an ONNX Loop
// runs the causal encoder's chunk graph over ceil(T / chunk_frames) windows of chunk_frames +
// right_context_frames frames (padded with pad_value past the end), the caches carried from one
// iteration to the next, keeps chunk_frames / subsampling_factor frames per chunk and
// ceil(T / subsampling_factor) in all, then the non-causal encoder runs on that — what
// asr::Recognizer does in look-ahead mode (lib/asr/stream.cc). The merged encoder holds batch 1
// only (the caches are [.., 1, ..]); sherpa-onnx decodes one stream per call in greedy search.
//
// Front end: sherpa-onnx computes Kaldi fbank itself with knf's defaults and samples in [-1, 1]
// (normalize_samples); asrc multiplies samples by waveform_scale first. With log power fbank that
// is a constant 2 ln(waveform_scale) on every bin, added to x as the encoder's first node (and the
// exported model.json says waveform_scale 1, so asrc evaluates the export as sherpa-onnx runs it).
// What remains different: knf floors a bin's power at FLT_EPSILON before the log, which on
// [-1, 1] samples is 2 ln(32768) = 20.8 higher in asrc's scale (near-silent low bins), and knf
// computes in float where asrc computes in double. Other front-end settings sherpa-onnx cannot
// be told (window, cut-offs, pre-emphasis, ...) must equal its defaults: an error names the key.
//
// Errors (all before anything is built): an LSTM (stateful) decoder, a decoder with more than one
// input, blank_id != 0 (sherpa-onnx's transducer search hard-codes blank 0), a joiner without
// inputs encoder_out/decoder_out, encoder graphs whose inputs/outputs are not the ones model.json
// describes, encoder opset < 13.
// The exported Model is also an asrc `transducer` bundle (model.json next to the files).
#pragma once

#include "core/status.h"
#include "ir/model.h"

namespace asrc::passes {

struct SherpaExport {
  ir::Model model;            // roles encoder/decoder/joiner, files encoder.onnx, ...
  float feature_offset = 0;   // added to x by the encoder (2 ln waveform_scale)
  int64_t chunk_frames = 0;   // the merged cascade's chunk (0: the bundle was offline already)
};

Result<SherpaExport> ExportSherpaOnnx(const ir::Model& bundle);

}  // namespace asrc::passes
