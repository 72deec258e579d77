#include "passes/drop_layers.h"

#include <cmath>
#include <limits>
#include <sstream>

#include "passes/driver.h"

namespace asrc::passes {

namespace {

std::string List(const std::set<int>& s) {
  std::string out;
  for (int i : s) out += (out.empty() ? "" : ",") + std::to_string(i);
  return "[" + out + "]";
}

Result<std::set<int>> ParseIndices(const std::string& text) {
  std::set<int> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    size_t used = 0;
    int v = -1;
    try {
      v = std::stoi(item, &used);
    } catch (...) {
      used = 0;
    }
    while (used < item.size() && item[used] == ' ') ++used;
    if (used == 0 || used != item.size() || v < 0) {
      return Error("drop-layers: option 'blocks': '" + item + "' is not a block index (\"1,3\")");
    }
    out.insert(v);
  }
  if (out.empty()) return Error("drop-layers: method 'index' needs option 'blocks' (\"1,3\")");
  return out;
}

// `count` of `n` blocks spread evenly: block round((i + 0.5) * n / count - 0.5) for each i.
std::set<int> Spread(int n, int count) {
  std::set<int> out;
  for (int i = 0; i < count; ++i) {
    out.insert(static_cast<int>(std::lround((i + 0.5) * n / count - 0.5)));
  }
  return out;
}

Result<double> Score(const std::map<std::string, double>& wer, const std::string& mode) {
  if (mode == "sum") {
    double s = 0;
    for (const auto& [m, w] : wer) s += w;
    return s;
  }
  auto f = wer.find(mode);
  if (f == wer.end()) return Error("drop-layers: option 'dev_mode': the model has no '" + mode + "' mode");
  return f->second;
}

// Greedy: each round drops the block whose removal (with those already chosen) scores best.
Result<std::set<int>> ByImportance(const ir::Model& model, const std::string& role, int n, int count,
                                   pass::PassContext& ctx) {
  if (!ctx.probe_wer) {
    return Error("drop-layers: method 'importance' measures WER on a dev subset, which this run cannot "
                 "(use asrc compress, or method 'index' / 'spread')");
  }
  const std::string manifest = ctx.GetString("dev_manifest"), split = ctx.GetString("dev_split");
  const int limit = static_cast<int>(ctx.GetInt("dev_limit"));
  std::set<int> chosen;
  for (int round = 0; round < count; ++round) {
    int best = -1;
    double best_score = std::numeric_limits<double>::infinity();
    for (int b = 0; b < n; ++b) {
      if (chosen.count(b)) continue;
      ir::Model trial = model;
      ASRC_ASSIGN_OR_RETURN(drop::BlockStack s, drop::FindBlocks(*trial.graph(role), role, ctx.GetString("input"),
                                                                  ctx.GetString("output")));
      std::set<int> d = chosen;
      d.insert(b);
      ASRC_RETURN_IF_ERROR(drop::DropBlocks(trial, role, s, d, nullptr));
      ASRC_ASSIGN_OR_RETURN(auto wer, ctx.probe_wer(trial, manifest, split, limit));
      ctx.Bump("dev_probes");
      ASRC_ASSIGN_OR_RETURN(double score, Score(wer, ctx.GetString("dev_mode")));
      if (score < best_score) {
        best_score = score;
        best = b;
      }
    }
    chosen.insert(best);
    std::ostringstream note;
    note << "importance: " << role << ": round " << round + 1 << " drops block " << best << " (dev "
         << ctx.GetString("dev_mode") << " WER " << best_score << " with " << List(chosen) << " dropped, "
         << limit << " utterances of split '" << split << "')";
    ctx.Note(note.str());
  }
  return chosen;
}

std::string Labels(const drop::BlockStack& s, const std::set<int>& which) {
  std::string out;
  for (int b : which) {
    if (!s.blocks[b].label.empty()) out += (out.empty() ? "" : ", ") + s.blocks[b].label;
  }
  return out.empty() ? "" : " (" + out + ")";
}

}  // namespace

std::vector<pass::OptionSpec> DropLayersPass::options() const {
  using nlohmann::json;
  return {
      {"method", "spread",
       "index: the blocks in `blocks`; spread: `count` blocks spread evenly over the stack; importance: "
       "greedy, each round drops the block whose removal costs the least dev WER",
       {"index", "spread", "importance"}},
      {"blocks", "", "index: 0-based block indices along the stream, comma-separated (\"1,3\")", {}},
      {"count", int64_t{1}, "spread/importance: how many blocks to drop", {}, 0, 100000},
      {"keep", int64_t{-1}, "spread/importance: when >= 0, drop all but this many blocks (overrides count)", {},
       -1, 100000},
      {"graphs", json::array({"encoder_causal"}), "graph roles (glob patterns); each is cut the same way", {}},
      {"input", "", "the residual stream's graph input (\"\" = the first input)", {}},
      {"output", "", "the residual stream's graph output (\"\" = the first output)", {}},
      {"dev_manifest", "", "importance: manifest to measure on (\"\" = the run's calibration manifest)", {}},
      {"dev_split", "dev", "importance: only lines whose \"split\" is this (\"\" = all)", {}},
      {"dev_limit", int64_t{20}, "importance: utterances per measurement", {}, 1, 100000},
      {"dev_mode", "sum", "importance: the WER that decides: one mode's, or the sum over the model's modes",
       {"sum", "streaming", "lookahead"}},
  };
}

Result<bool> DropLayersPass::Run(ir::Model& model, pass::PassContext& ctx) {
  const std::string method = ctx.GetString("method");
  // Everything is found and checked before anything changes.
  std::vector<std::pair<std::string, drop::BlockStack>> stacks;
  for (const GraphSite& site : SelectGraphs(model, ctx.GetStrings("graphs"))) {
    if (site.is_subgraph()) continue;
    ASRC_ASSIGN_OR_RETURN(drop::BlockStack s, drop::FindBlocks(site.graph, site.file.role, ctx.GetString("input"),
                                                                ctx.GetString("output")));
    stacks.emplace_back(site.file.role, std::move(s));
  }
  if (stacks.empty()) return Error("drop-layers: no graph matches option 'graphs'");
  std::vector<std::set<int>> drops;
  for (const auto& [role, s] : stacks) {
    const int n = static_cast<int>(s.blocks.size());
    ctx.Bump("blocks_found", n);
    std::set<int> d;
    int count = static_cast<int>(ctx.GetInt("count"));
    if (method != "index" && ctx.GetInt("keep") >= 0) count = n - static_cast<int>(ctx.GetInt("keep"));
    if (method == "index") {
      ASRC_ASSIGN_OR_RETURN(d, ParseIndices(ctx.GetString("blocks")));
      for (int b : d) {
        if (b >= n) {
          return Error("drop-layers: graph '" + role + "' has " + std::to_string(n) + " blocks (0.." +
                       std::to_string(n - 1) + "); no block " + std::to_string(b));
        }
      }
      count = static_cast<int>(d.size());
    }
    if (count >= n || count < 0) {
      return Error("drop-layers: graph '" + role + "' has " + std::to_string(n) + " blocks; asked to drop " +
                   std::to_string(count) + " (at least one must stay)");
    }
    if (method == "spread" && count > 0) d = Spread(n, count);
    drops.push_back(d);
  }
  bool changed = false;
  for (size_t i = 0; i < stacks.size(); ++i) {
    const auto& [role, s] = stacks[i];
    std::set<int>& d = drops[i];
    const int n = static_cast<int>(s.blocks.size());
    if (method == "importance") {
      const int count = ctx.GetInt("keep") >= 0 ? n - static_cast<int>(ctx.GetInt("keep"))
                                                : static_cast<int>(ctx.GetInt("count"));
      ASRC_ASSIGN_OR_RETURN(d, ByImportance(model, role, n, count, ctx));
    }
    // `s` points into `model`, unchanged so far for this graph (the trials above used copies).
    ASRC_RETURN_IF_ERROR(drop::DropBlocks(model, role, s, d, &ctx));
    std::set<int> kept;
    for (int b = 0; b < n; ++b) {
      if (!d.count(b)) kept.insert(b);
    }
    ctx.Note(role + ": " + std::to_string(n) + " blocks found by " + s.found_by + "; dropped " + List(d) +
             Labels(s, d) + ", kept " + List(kept) + Labels(s, kept));
    changed |= !d.empty();
  }
  return changed;
}

}  // namespace asrc::passes
