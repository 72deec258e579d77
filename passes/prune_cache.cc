// Streaming caches of the structured-pruning rules (prune_rules.h): matching a layer's slice of
// a stacked cache, keeping the layers of one cache at one width, and narrowing the cache.
#include <algorithm>
#include <map>

#include "passes/prune_rules.h"

namespace asrc::passes::prune {

namespace {

// Sets the cache's channel width on the graph input/output types and, for the streaming encoder,
// in model.json's `streaming.cache` (the runner allocates the caches from there).
void ResizeCache(ir::Model& model, const std::string& role, const CacheLink& c, int64_t width) {
  c.input->type.dims[c.axis] = ir::Dim{width, ""};
  c.output->type.dims[c.axis] = ir::Dim{width, ""};
  if (role != "encoder_causal" || !model.config.contains("streaming")) return;
  auto& s = model.config["streaming"];
  if (!s.is_object() || !s.contains("cache") || !s["cache"].is_array()) return;
  for (auto& e : s["cache"]) {
    if (e.is_object() && e.value("input", "") == c.input->name && e.contains("shape") &&
        e["shape"].is_array() && static_cast<int>(e["shape"].size()) > c.axis) {
      e["shape"][c.axis] = width;
    }
  }
}

// A candidate rewrite that reads streaming caches: all layers reading one cache must be pruned
// to the same width, or none may be (the layers' slices are stacked into one tensor).
struct CacheUse {
  CacheLink link;
  int64_t width;
};

// Drops candidates (sets `ok[i] = false`) until every cache is read only by kept candidates that
// agree on its width; each Gather of a cache input is one reader.
void CheckCacheGroups(const std::vector<std::vector<CacheUse>>& uses, std::vector<bool>& ok) {
  for (bool again = true; again;) {
    again = false;
    std::map<const ir::Value*, std::vector<size_t>> by_input;
    for (size_t i = 0; i < uses.size(); ++i) {
      for (const CacheUse& u : uses[i]) by_input[u.link.input].push_back(i);
    }
    for (const auto& [in, idx] : by_input) {
      bool good = in->uses.size() == idx.size();
      std::set<int64_t> widths;
      for (size_t i : idx) {
        good = good && ok[i];
        for (const CacheUse& u : uses[i]) {
          if (u.link.input == in) widths.insert(u.width);
        }
      }
      good = good && widths.size() == 1;
      for (size_t i : idx) {
        if (!good && ok[i]) {
          ok[i] = false;
          again = true;
        }
      }
    }
  }
}

}  // namespace

bool MatchCache(const ir::Graph& g, ir::Node* cat, const ir::Value* fresh, int chan,
                const ir::Node* main_user, CacheLink* link) {
  if (g.parent || !cat || cat->num_inputs() != 2 || cat->input(1) != fresh) return false;
  ir::Node* gather = Prod(cat->input(0), "Gather");
  if (!gather || gather->attr_int("axis", 0) != 0 || !IntOf(gather->input(1))) return false;
  ir::Value* in = gather->input(0);
  if (std::find(g.inputs.begin(), g.inputs.end(), in) == g.inputs.end()) return false;
  if (!in->type.has_shape) return false;
  const int64_t rank = static_cast<int64_t>(in->type.dims.size()) - 1;
  chan = NormAxis(chan, rank);
  if (chan < 0 || chan >= rank || NormAxis(cat->attr_int("axis", 0), rank) == chan) return false;
  if (fresh->uses.size() != 1 || IsGraphOutput(g, fresh) || IsGraphOutput(g, cat->outputs[0])) return false;
  ir::Value* out = nullptr;
  for (const ir::Use& u : cat->outputs[0]->uses) {
    if (u.node == main_user) continue;
    ir::Node* sl = u.node;
    if (sl->op_type != "Slice" || !sl->domain.empty() || u.input_index != 0) return false;
    auto axes = IntsOf(sl->input(3));
    if (!axes) return false;
    for (int64_t a : *axes) {
      if (NormAxis(a, rank) == chan) return false;
    }
    ir::Node* un = SoleUse(g, sl->outputs[0], "Unsqueeze", 0);
    if (!un || IntsOf(un->input(1)) != std::vector<int64_t>{0}) return false;
    ir::Node* stack = SoleUse(g, un->outputs[0], "Concat");
    if (!stack || stack->attr_int("axis", 0) != 0 || !IsGraphOutput(g, stack->outputs[0])) return false;
    if (out && out != stack->outputs[0]) return false;
    out = stack->outputs[0];
  }
  if (!out || !out->type.has_shape || out->type.dims.size() != in->type.dims.size()) return false;
  *link = CacheLink{in, out, chan + 1};
  return true;
}

std::vector<bool> CacheSafe(const std::vector<std::vector<CacheLink>>& caches,
                            const std::vector<int64_t>& widths, bool resize, pass::PassContext& ctx,
                            const std::string& what) {
  std::vector<bool> ok(caches.size(), true);
  std::vector<std::vector<CacheUse>> uses(caches.size());
  for (size_t i = 0; i < caches.size(); ++i) {
    for (const CacheLink& c : caches[i]) uses[i].push_back({c, widths[i]});
    if (!resize && !caches[i].empty()) {
      ok[i] = false;
      ctx.Bump("skipped_" + what + "_cache_resize_off");
    }
  }
  std::vector<bool> before = ok;
  CheckCacheGroups(uses, ok);
  for (size_t i = 0; i < ok.size(); ++i) {
    if (before[i] && !ok[i]) ctx.Bump("skipped_" + what + "_cache_mismatch");
  }
  return ok;
}

void ResizeCaches(ir::Model& model, const std::string& role, const std::vector<CacheLink>& caches,
                  int64_t width, std::set<const ir::Value*>* resized) {
  for (const CacheLink& c : caches) {
    if (resized->insert(c.input).second) ResizeCache(model, role, c, width);
  }
}

void NoteResizedCaches(pass::PassContext& ctx, const std::string& target, const std::string& role,
                       size_t resized, const std::string& kind, const std::string& units) {
  if (resized == 0) return;
  ctx.Note("structured " + target + ": " + role + ": " + std::to_string(resized) + " streaming " + kind +
           " cache(s) narrowed to the kept " + units +
           " (graph inputs/outputs and model.json streaming.cache shapes updated)");
}

}  // namespace asrc::passes::prune
