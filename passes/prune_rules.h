// Structured pruning as rules over a shared matcher (the prune pass's internals; the contract is
// in prune.h). Each target — FFN hidden units (prune_ffn.cc), attention heads (prune_heads.cc),
// depthwise-conv channels (prune_conv.cc) — is a PruneRule the pass runs on every selected graph
// through the driver (driver.h); magnitude pruning is prune_magnitude.cc. The matcher pieces they
// share (linear layers, weight slicing, unit scores, streaming caches) are declared here.
//
// Matchers work inside one graph: a subgraph's pattern may read values of the graphs around it,
// but every node a rule rewrites belongs to the graph being rewritten, and streaming caches are
// matched on top-level graphs only.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "pass/pass.h"
#include "passes/driver.h"
#include "passes/util.h"

namespace asrc::passes::prune {

// --- one rule per structured target ---------------------------------------------------------

struct PruneRule {
  const char* target;  // the `targets` entry: "ffn", "heads", "conv"
  // data_aware: names of the values whose calibration statistics score the rule's units in
  // `site` (appended to `taps`); null when the rule scores from weights alone.
  void (*taps)(const GraphSite& site, pass::PassContext& ctx, std::vector<std::string>* taps);
  // Finds the rule's units in site.graph and removes the selected ones; true when it changed
  // the graph. `stats`: calibration statistics of the graph's role (data_aware), else null.
  bool (*apply)(GraphSite& site, const pass::StatsMap* stats, pass::PassContext& ctx);
};

extern const PruneRule kFfnRule, kHeadsRule, kConvRule;

// Unstructured magnitude pruning (method "magnitude").
Result<bool> PruneMagnitude(ir::Model& model, pass::PassContext& ctx);

// --- small matchers -------------------------------------------------------------------------

// The default-domain node of type `op` producing `v`, else null.
ir::Node* Prod(const ir::Value* v, const char* op);
// The only reader of `v` when it is a default-domain `op` of graph `g` reading it at `index`
// (any index when < 0) and `v` is no graph output; else null.
ir::Node* SoleUse(const ir::Graph& g, const ir::Value* v, const char* op, int index = -1);
bool HasPerm(const ir::Node* n, const std::vector<int64_t>& perm);
// Values of an int64 constant (rank <= 1), or nullopt; IntOf: its single value.
std::optional<std::vector<int64_t>> IntsOf(const ir::Value* v);
std::optional<int64_t> IntOf(const ir::Value* v);
std::string UniqueNodeName(const ir::Graph& g, const std::string& base);
int NormAxis(int64_t axis, int64_t rank);
// True when `v`, a side input of a [.., C] (or [N, h, Tq, Tk]) computation, cannot differ along
// axis `from_end` counted from the end (-1: channels, -3: heads): a constant with size 1 there,
// or a value whose recorded static shape says 1 there; unknown shapes are assumed to broadcast.
bool Broadcasts(const ir::Value* v, int from_end);

// A linear layer: MatMul(x, W [K, N]) optionally followed by Add(b [N]) (either operand order).
struct Linear {
  ir::Node* mm = nullptr;
  ir::Node* add = nullptr;  // may be null
  int bias_input = -1;      // which input of `add` is b
  ir::Value* out() const { return add ? add->outputs[0] : mm->outputs[0]; }
  const ir::Tensor& w() const { return *ConstantOf(mm->input(1)); }
};

bool IsWeightMatMul(const ir::Node* n);
// `v` is the output of a Linear of graph `g` (its bias Add, or its MatMul when there is no bias).
bool MatchLinearOut(const ir::Graph& g, ir::Value* v, Linear* l);
// `mm` as the MatMul of a Linear whose bias (if any) follows it.
Linear LinearAt(const ir::Graph& g, ir::Node* mm);

// --- rewriting weights ----------------------------------------------------------------------

// Keeps the `keep` entries of axis 0 of `w` (any rank): rows of a matrix, channels of a weight.
ir::Tensor SliceAxis0(const ir::Tensor& w, const std::vector<int64_t>& keep);
// Points input `index` of `n` at a new initializer holding `t` (named after the old input).
void ReplaceInput(ir::Graph& g, ir::Node* n, int index, ir::Tensor t);
// Keeps output features `keep` of `l` (columns of W, entries of b).
void SliceLinearOut(ir::Graph& g, const Linear& l, const std::vector<int64_t>& keep);
// Keeps input features `keep` of `l` (rows of W).
void SliceLinearIn(ir::Graph& g, const Linear& l, const std::vector<int64_t>& keep);

// --- unit scores ----------------------------------------------------------------------------

// How many of `n` units to keep when removing the fraction `sparsity`, rounded up to a multiple
// of `multiple`, at least `min_keep`, at most n.
int64_t KeepCount(int64_t n, double sparsity, int64_t multiple, int64_t min_keep);
// Indices of the `k` largest scores, in increasing index order (ties: the lower index wins).
std::vector<int64_t> TopK(const std::vector<double>& score, int64_t k);
double ColNorm2(const ir::Tensor& w, int64_t j);  // ||W[:, j]||^2 of a 2-D weight
double RowNorm2(const ir::Tensor& w, int64_t j);  // ||W[j, ...]||^2, any rank
// Per-channel RMS of `v` (last axis, `n` channels) on calibration data; empty without data
// (counted: data_aware_scored, skipped_data_aware_no_stats).
std::vector<float> CalibrationRms(const pass::StatsMap* stats, const ir::Value* v, int64_t n,
                                  pass::PassContext& ctx);

// --- streaming caches (prune_cache.cc) ------------------------------------------------------

// One layer's slice of a stacked streaming cache: graph input `input` [layers, ...], read as
// Gather(input, i, axis 0) and concatenated with the fresh tensor; the tail of the concatenation
// goes back through Slice -> Unsqueeze(0) -> Concat(axis 0) to graph output `output`. Pruning
// changes axis `axis` of both (the per-layer channel axis + 1).
struct CacheLink {
  ir::Value* input = nullptr;
  ir::Value* output = nullptr;
  int axis = -1;
};

// `cat` = Concat([Gather(cache, i), fresh]) along a non-channel axis; every reader of it except
// `main_user` is the cache update chain. `chan` is the channel axis of the per-layer tensor.
// Top-level graphs only (a subgraph's inputs are not the runner's caches).
bool MatchCache(const ir::Graph& g, ir::Node* cat, const ir::Value* fresh, int chan,
                const ir::Node* main_user, CacheLink* link);

// Cache bookkeeping shared by heads and conv: which candidates may be rewritten. `widths[i]` is
// candidate i's new cache width; candidates with caches are dropped when resize_caches is off.
std::vector<bool> CacheSafe(const std::vector<std::vector<CacheLink>>& caches,
                            const std::vector<int64_t>& widths, bool resize, pass::PassContext& ctx,
                            const std::string& what);
// Narrows each of `caches` not yet in `resized` to `width` (graph input/output types and, for the
// streaming encoder, model.json's streaming.cache).
void ResizeCaches(ir::Model& model, const std::string& role, const std::vector<CacheLink>& caches,
                  int64_t width, std::set<const ir::Value*>* resized);
// The report note for `resized` caches of graph `role` narrowed by `target` (none when 0).
void NoteResizedCaches(pass::PassContext& ctx, const std::string& target, const std::string& role,
                       size_t resized, const std::string& kind, const std::string& units);

}  // namespace asrc::passes::prune
