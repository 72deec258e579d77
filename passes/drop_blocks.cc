// Finding the block stack of an encoder graph (drop_layers.h): residual-stream cut values,
// segments between them, the repeated run of segments, and which node belongs to which block.
#include <algorithm>
#include <regex>
#include <sstream>

#include "passes/drop_layers.h"
#include "passes/util.h"

namespace asrc::passes::drop {

namespace {

constexpr int kOutside = -1;  // front end, or a value of the stream input itself
constexpr int kShared = -2;   // read or computed by several segments

ir::Value* StreamEnd(const std::vector<ir::Value*>& ends, const std::string& name, const char* what,
                     const std::string& role, Status* err) {
  if (name.empty()) {
    if (!ends.empty()) return ends[0];
    *err = Error("drop-layers: graph '" + role + "' has no " + what);
    return nullptr;
  }
  for (ir::Value* v : ends) {
    if (v->name == name) return v;
  }
  *err = Error("drop-layers: graph '" + role + "' has no " + what + " '" + name + "'");
  return nullptr;
}

// The layer names ("layers.3", "encoders.1/layers.3") in an exporter's node or weight name.
std::string LayerKey(const std::string& name) {
  static const std::regex re(R"((?:^|[^A-Za-z0-9])([A-Za-z_]*(?:layer|block|encoder|conformer)s?[./_]?\d+)(?=[./_:]|$))",
                             std::regex::icase);
  std::string key;
  for (std::sregex_iterator it(name.begin(), name.end(), re), end; it != end; ++it) {
    if (!key.empty()) key += "/";
    key += (*it)[1].str();
  }
  return key;
}

struct Segments {
  std::vector<ir::Value*> cuts;             // cuts[0] = stream input ... cuts[m] = stream output
  std::map<const ir::Node*, int> seg;       // node -> segment (or kOutside / kShared)
  std::vector<std::string> signature;       // per segment
  std::vector<std::set<std::string>> keys;  // per segment: layer names of its nodes and weights
};

ir::Value* Lca(ir::Value* a, ir::Value* b, const std::map<const ir::Value*, ir::Value*>& idom,
               const std::map<const ir::Value*, int>& depth) {
  while (a != b) {
    if (depth.at(a) < depth.at(b)) std::swap(a, b);
    a = idom.at(a);
  }
  return a;
}

constexpr int kNone = -11;   // not attributed yet
int Merge(int a, int b) {
  if (a == kNone) return b;
  return b == kNone || a == b ? a : kShared;
}

Result<Segments> Segment(const ir::Graph& g, const std::string& role, ir::Value* in, ir::Value* out) {
  ASRC_ASSIGN_OR_RETURN(std::vector<ir::Node*> order, g.TopoOrder());
  std::set<const ir::Value*> fwd{in}, bwd{out};
  std::set<const ir::Node*> fwd_nodes;
  for (ir::Node* n : order) {
    if (n->domain.empty() && (n->op_type == "Shape" || n->op_type == "Size")) continue;
    if (std::none_of(n->inputs.begin(), n->inputs.end(), [&](ir::Value* v) { return fwd.count(v); })) continue;
    fwd_nodes.insert(n);
    for (ir::Value* o : n->outputs) if (o) fwd.insert(o);
  }
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    if (std::none_of((*it)->outputs.begin(), (*it)->outputs.end(), [&](ir::Value* v) { return bwd.count(v); })) continue;
    for (ir::Value* v : (*it)->inputs) if (v) bwd.insert(v);
  }
  if (!fwd.count(out)) {
    return Error("drop-layers: graph '" + role + "': output '" + out->name + "' is not computed from input '" +
                 in->name + "'; no block structure found");
  }
  auto spine = [&](const ir::Value* v) { return v && fwd.count(v) && bwd.count(v); };
  // Dominator tree over stream values: a value's dominators are its own and those common to all
  // the stream values its producer reads.
  std::map<const ir::Value*, ir::Value*> idom{{in, nullptr}};
  std::map<const ir::Value*, int> depth{{in, 0}};
  for (ir::Node* n : order) {
    if (!fwd_nodes.count(n)) continue;
    ir::Value* d = nullptr;
    for (ir::Value* v : n->inputs) {
      if (!spine(v)) continue;
      d = d ? Lca(d, v, idom, depth) : v;
    }
    for (ir::Value* o : n->outputs) {
      if (!spine(o) || !d) continue;
      idom[o] = d;
      depth[o] = depth[d] + 1;
    }
  }
  Segments s;
  for (ir::Value* v = out; v; v = idom.at(v)) s.cuts.push_back(v);
  std::reverse(s.cuts.begin(), s.cuts.end());
  std::map<const ir::Value*, int> cut_index, vseg{{in, kOutside}};
  for (size_t j = 0; j < s.cuts.size(); ++j) cut_index[s.cuts[j]] = static_cast<int>(j);
  const int m = static_cast<int>(s.cuts.size()) - 1;
  s.signature.assign(m, "");
  s.keys.assign(m, {});
  std::vector<std::vector<std::string>> parts(m);
  // Stream and side-output nodes, forwards.
  for (ir::Node* n : order) {
    if (!fwd_nodes.count(n)) continue;
    int sg = kNone;  // "none yet"
    bool on_stream = false;
    for (ir::Value* o : n->outputs) {
      if (!spine(o)) continue;
      on_stream = true;
      const ir::Value* d = idom.at(o);
      int so = cut_index.count(o) ? cut_index[o] - 1 : (cut_index.count(d) ? cut_index[d] : vseg.at(d));
      sg = Merge(sg, so);
    }
    if (!on_stream) {
      for (ir::Value* v : n->inputs) {
        if (v && vseg.count(v)) sg = Merge(sg, vseg[v]);
      }
    }
    if (sg == kNone) sg = kOutside;
    for (ir::Value* o : n->outputs) if (o) vseg[o] = sg;
    s.seg[n] = sg;
    if (sg < 0) continue;
    if (on_stream) {
      std::string p = n->op_type;
      for (ir::Value* v : n->inputs) {
        // Weights, also behind the Identity copies exporters make of deduplicated initializers.
        while (v && v->producer && v->producer->op_type == "Identity" && v->producer->domain.empty()) {
          v = v->producer->input(0);
        }
        if (const ir::Tensor* t = ConstantOf(v)) {
          p += "[";
          for (int64_t d : t->shape()) p += std::to_string(d) + ",";
          p += "]";
        }
      }
      parts[sg].push_back(p);
    }
    std::string k = LayerKey(n->name);
    if (!k.empty()) s.keys[sg].insert(k);
    for (ir::Value* v : n->inputs) {
      if (v && v->initializer && !(k = LayerKey(v->name)).empty()) s.keys[sg].insert(k);
    }
  }
  // Side inputs (not computed from the stream input), backwards: the segments that read them.
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    ir::Node* n = *it;
    if (fwd_nodes.count(n)) continue;
    int sg = kNone;
    for (ir::Value* o : n->outputs) {
      if (!o) continue;
      if (IsGraphOutput(g, o)) sg = Merge(sg, kOutside);
      for (const ir::Use& u : o->uses) {
        auto f = s.seg.find(u.node);
        sg = Merge(sg, f == s.seg.end() ? kOutside : f->second);
      }
    }
    if (sg != kNone) s.seg[n] = sg;
  }
  for (int i = 0; i < m; ++i) {
    std::sort(parts[i].begin(), parts[i].end());
    for (const std::string& p : parts[i]) s.signature[i] += p + ";";
  }
  return s;
}

// How many of blocks [start + b*p, start + (b+1)*p) carry exactly one layer name of their own.
int NameScore(const Segments& s, int start, int p, int k) {
  std::set<std::string> seen;
  int score = 0;
  for (int b = 0; b < k; ++b) {
    std::set<std::string> keys;
    for (int i = start + b * p; i < start + (b + 1) * p; ++i) keys.insert(s.keys[i].begin(), s.keys[i].end());
    if (keys.size() == 1 && seen.insert(*keys.begin()).second) ++score;
  }
  return score;
}

// Block boundaries as cut indices (k + 1 of them), from the longest repeated run of segments.
std::vector<int> ByRepetition(const Segments& s, bool* used_names) {
  const int m = static_cast<int>(s.signature.size());
  // Best by: coverage, then names, then the shorter period, then the later start.
  std::tuple<int, int, int, int> best{0, 0, 0, 0};
  int best_p = 0, best_k = 0, best_start = 0;
  for (int p = 1; 2 * p <= m; ++p) {
    for (int start = 0; start + 2 * p <= m; ++start) {
      int run = 0;
      while (start + run + p < m && s.signature[start + run] == s.signature[start + run + p]) ++run;
      const int k = 1 + run / p;
      if (k < 2) continue;
      std::tuple<int, int, int, int> score{k * p, NameScore(s, start, p, k), -p, start};
      if (score > best) {
        best = score;
        best_p = p;
        best_k = k;
        best_start = start;
      }
    }
  }
  std::vector<int> bounds;
  if (best_k < 2) return bounds;
  *used_names = std::get<1>(best) > 0;
  for (int b = 0; b <= best_k; ++b) bounds.push_back(best_start + b * best_p);
  return bounds;
}

// Without a repeat: runs of segments named by one layer; unnamed segments join the run before.
std::vector<int> ByNames(const Segments& s) {
  std::vector<int> bounds;
  std::string current;
  int end = -1;
  for (int i = 0; i < static_cast<int>(s.keys.size()); ++i) {
    if (s.keys[i].size() > 1) return {};
    if (s.keys[i].empty()) continue;
    const std::string& k = *s.keys[i].begin();
    if (k != current) bounds.push_back(i);
    current = k;
    end = i + 1;
  }
  if (bounds.size() < 2) return {};
  bounds.push_back(end);
  return bounds;
}

}  // namespace

Result<BlockStack> FindBlocks(ir::Graph& g, const std::string& role, const std::string& input,
                              const std::string& output) {
  Status err = Status::Ok();
  BlockStack st;
  st.graph = role;
  st.stream_in = StreamEnd(g.inputs, input, "input", role, &err);
  if (st.stream_in) st.stream_out = StreamEnd(g.outputs, output, "output", role, &err);
  if (!st.stream_out) return err;
  ASRC_ASSIGN_OR_RETURN(Segments s, Segment(g, role, st.stream_in, st.stream_out));
  bool used_names = false;
  std::vector<int> bounds = ByRepetition(s, &used_names);
  st.found_by = used_names ? "repetition+names" : "repetition";
  if (bounds.empty()) {
    bounds = ByNames(s);
    st.found_by = "names";
  }
  if (bounds.empty()) {
    return Error("drop-layers: graph '" + role + "': no block structure found (" +
                 std::to_string(s.cuts.size() - 1) + " residual-stream segments from '" + st.stream_in->name +
                 "' to '" + st.stream_out->name + "', none repeated and no layer names)");
  }
  std::map<int, int> block_of_seg;
  for (size_t b = 0; b + 1 < bounds.size(); ++b) {
    Block blk;
    blk.in = s.cuts[bounds[b]];
    blk.out = s.cuts[bounds[b + 1]];
    std::set<std::string> keys;
    for (int i = bounds[b]; i < bounds[b + 1]; ++i) {
      block_of_seg[i] = static_cast<int>(b);
      keys.insert(s.keys[i].begin(), s.keys[i].end());
    }
    if (keys.size() == 1) blk.label = *keys.begin();
    st.blocks.push_back(blk);
  }
  for (const auto& [n, sg] : s.seg) {
    auto f = block_of_seg.find(sg);
    if (f != block_of_seg.end()) st.owner[n] = f->second;
  }
  return st;
}

}  // namespace asrc::passes::drop
