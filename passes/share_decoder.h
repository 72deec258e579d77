// share-decoder: a two-decoder cascade (docs/bundle.md: graphs decoder + joiner for the streaming
// pass, decoder_lookahead + joiner_lookahead for the look-ahead pass) becomes an ordinary cascade
// whose one decoder + joiner pair serves both passes, for `distill` to adapt.
//
// `choose`:
//   streaming  keep the streaming pass's pair;
//   lookahead  keep the look-ahead pass's pair (its graphs take the roles decoder and joiner);
//   average    the element-wise mean of the two pairs' float weights, in the streaming pair's
//              graphs; the pairs must have the same structure (the same initializers, in order,
//              with equal shapes and types; non-float ones must be equal);
//   dev        measure streaming and lookahead (and average, where the pairs allow it) on a small
//              dev subset (the WER probe of asrc compress) and keep the lowest sum of the modes'
//              WER.
// The removed pair's graphs leave the bundle, so its weights are neither counted nor stored, and
// model.json's info.params follows. A bundle with one pair is an error naming the missing graph,
// before anything changes.
//
// Counters: params_removed, dev_probes. Notes: the pair kept and, for dev, each candidate's WER.
#pragma once

#include "pass/pass.h"

namespace asrc::passes {

class ShareDecoderPass : public pass::Pass {
 public:
  std::string name() const override { return "share-decoder"; }
  std::string description() const override {
    return "one decoder + joiner pair for both passes of a two-decoder cascade (kept by dev WER, "
           "one pass's, or averaged)";
  }
  std::vector<pass::OptionSpec> options() const override;
  Result<bool> Run(ir::Model& model, pass::PassContext& ctx) override;
};

}  // namespace asrc::passes
