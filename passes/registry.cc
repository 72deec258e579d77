#include "passes/registry.h"

#include "passes/cleanup.h"
#ifdef ASRC_HAVE_DISTILL
#include "passes/distill.h"
#endif
#include "passes/drop_layers.h"
#include "passes/low_rank.h"
#include "passes/prune.h"
#include "passes/quantize_int8.h"
#include "passes/share_decoder.h"
#include "passes/tar_decoder.h"

namespace asrc::passes {

const pass::PassRegistry& BuiltinPasses() {
  static const pass::PassRegistry* registry = [] {
    auto* r = new pass::PassRegistry();
    r->Register("cleanup", [] { return std::make_unique<CleanupPass>(); });
    r->Register("quantize-int8", [] { return std::make_unique<QuantizeInt8Pass>(); });
    r->Register("low-rank", [] { return std::make_unique<LowRankPass>(); });
    r->Register("prune", [] { return std::make_unique<PrunePass>(); });
    r->Register("tar-decoder", [] { return std::make_unique<TarDecoderPass>(); });
    r->Register("drop-layers", [] { return std::make_unique<DropLayersPass>(); });
    r->Register("share-decoder", [] { return std::make_unique<ShareDecoderPass>(); });
#ifdef ASRC_HAVE_DISTILL
    r->Register("distill", [] { return std::make_unique<DistillPass>(); });
#endif
    return r;
  }();
  return *registry;
}

}  // namespace asrc::passes
