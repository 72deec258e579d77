#include "passes/registry.h"

#include "passes/cleanup.h"
#ifdef ASRC_HAVE_DISTILL
#include "passes/distill.h"
#endif
#include "passes/low_rank.h"
#include "passes/prune.h"
#include "passes/quantize_int8.h"

namespace asrc::passes {

const pass::PassRegistry& BuiltinPasses() {
  static const pass::PassRegistry* registry = [] {
    auto* r = new pass::PassRegistry();
    r->Register("cleanup", [] { return std::make_unique<CleanupPass>(); });
    r->Register("quantize-int8", [] { return std::make_unique<QuantizeInt8Pass>(); });
    r->Register("low-rank", [] { return std::make_unique<LowRankPass>(); });
    r->Register("prune", [] { return std::make_unique<PrunePass>(); });
#ifdef ASRC_HAVE_DISTILL
    r->Register("distill", [] { return std::make_unique<DistillPass>(); });
#endif
    return r;
  }();
  return *registry;
}

}  // namespace asrc::passes
