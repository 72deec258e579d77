// prune structured, targets "heads" and "conv": tiny attention and conformer-conv graphs built in
// code in the teacher's export forms (constant and run-time reshape shapes, stacked streaming
// caches). Structure (units physically gone, exact parameter savings, cache shapes), numerics
// against the unmodified graph (exact where the removed units contribute nothing, two streaming
// chunks through the narrowed caches), and ONNX Runtime on the rewritten file.
#include <functional>
#include <limits>

#include "pass/calibration.h"
#include "pass_test_util.h"
#include "passes/prune.h"

using namespace asrc;
using nlohmann::json;

namespace {

// Small graph-building vocabulary over one graph.
struct Builder {
  ir::Graph& g;
  std::mt19937_64 rng;
  int n = 0;

  std::string Name(const std::string& base) { return base + "_" + std::to_string(n++); }
  ir::Value* Init(const std::string& base, ir::Tensor t) { return g.AddInitializer(Name(base), std::move(t)); }
  ir::Value* Ints(const std::vector<int64_t>& v) {
    return Init("i", ir::Tensor::FromVector(ir::DType::Int64, {static_cast<int64_t>(v.size())}, v));
  }
  ir::Value* IntScalar(int64_t v) { return Init("s", ir::Tensor::ScalarInt64(v)); }
  ir::Node* Op(const std::string& op, const std::vector<ir::Value*>& in, const std::string& name) {
    return g.AddNode(op, in, {Name(name + "_out")}, Name(name));
  }
  ir::Value* Out(const std::string& op, const std::vector<ir::Value*>& in, const std::string& name) {
    return Op(op, in, name)->outputs[0];
  }
  ir::Value* Transpose(ir::Value* x, std::vector<int64_t> perm) {
    ir::Node* t = Op("Transpose", {x}, "Transpose");
    t->set_attr_ints("perm", std::move(perm));
    return t->outputs[0];
  }
  ir::Value* Concat(const std::vector<ir::Value*>& in, int64_t axis) {
    ir::Node* c = Op("Concat", in, "Concat");
    c->set_attr_int("axis", axis);
    return c->outputs[0];
  }
  // MatMul(x, W) -> Add(b, .) with node names `name`.MatMul / `name`.Add, as torch names them.
  ir::Value* Linear(ir::Value* x, ir::Tensor w, ir::Tensor b, const std::string& name) {
    ir::Value* mm = g.AddNode("MatMul", {x, Init(name + ".weight", std::move(w))}, {Name(name + "_mm")},
                               name + ".MatMul")->outputs[0];
    return g.AddNode("Add", {Init(name + ".bias", std::move(b)), mm}, {Name(name + "_add")},
                      name + ".Add")->outputs[0];
  }
  ir::Tensor Rand(ir::Shape s, float sd = 0.3f) { return test::RandomTensor(std::move(s), rng, sd); }
  // Dim `axis` of x read at run time, as a 1-element piece of a Concat shape.
  ir::Value* DimOf(ir::Value* x, int64_t axis) {
    ir::Value* shape = Out("Shape", {x}, "Shape");
    ir::Value* d = Out("Gather", {shape, IntScalar(axis)}, "Gather");
    return Out("Unsqueeze", {d, Ints({0})}, "Unsqueeze");
  }
};

void ZeroHeadColumns(ir::Tensor& w, int64_t head, int64_t dk) {  // W [d, h*dk]: head's columns
  for (int64_t r = 0; r < w.dim(0); ++r)
    for (int64_t c = head * dk; c < (head + 1) * dk; ++c) w.data<float>()[r * w.dim(1) + c] = 0;
}

// One multi-head attention on [1, T, d] -> [1, T, d], h heads of dk. `kv` replaces the K and V
// operands (streaming: Concat(cache slice, projection)); `dynamic` reads N, T and the merged width
// from Shape() at run time as the non-causal export does. `zero_head` >= 0: that head's V columns
// and bias are zero (the head contributes nothing).
struct AttnOut {
  ir::Value* y;
  ir::Value* k;  // the K / V operands of the heads reshape (for the cache update)
  ir::Value* v;
};
AttnOut Attention(Builder& b, ir::Value* x, int64_t T, int64_t Tk, int64_t d, int64_t h, bool dynamic,
                  int zero_head, const std::string& p,
                  const std::function<ir::Value*(ir::Value*, int)>& kv = nullptr) {
  const int64_t dk = d / h;
  ir::Tensor wv = b.Rand({d, d}), bv = b.Rand({d}, 0.1f);
  if (zero_head >= 0) {
    ZeroHeadColumns(wv, zero_head, dk);
    for (int64_t c = zero_head * dk; c < (zero_head + 1) * dk; ++c) bv.data<float>()[c] = 0;
  }
  ir::Value* q = b.Linear(x, b.Rand({d, d}), b.Rand({d}, 0.1f), p + ".q");
  ir::Value* k = b.Linear(x, b.Rand({d, d}), b.Rand({d}, 0.1f), p + ".k");
  ir::Value* v = b.Linear(x, std::move(wv), std::move(bv), p + ".v");
  if (kv) {
    k = kv(k, 0);
    v = kv(v, 1);
  }
  auto heads = [&](ir::Value* s, int64_t t) {
    ir::Value* shape = dynamic ? b.Concat({b.DimOf(s, 0), b.DimOf(s, 1), b.Ints({-1}), b.Ints({dk})}, 0)
                               : b.Ints({1, t, h, dk});
    return b.Out("Reshape", {s, shape}, p + ".Reshape");
  };
  ir::Value* qh = b.Transpose(heads(q, T), {0, 2, 1, 3});
  ir::Value* kh = b.Transpose(heads(k, Tk), {0, 2, 3, 1});
  ir::Value* vh = b.Transpose(heads(v, Tk), {0, 2, 1, 3});
  ir::Value* s = b.Out("MatMul", {qh, kh}, p + ".scores");
  s = b.Out("Mul", {s, b.Init("scale", ir::Tensor::Scalar(1.f / std::sqrt(static_cast<float>(dk))))}, p + ".Mul");
  // A mask that hides the last key from every query, broadcast over heads.
  ir::Tensor mask(ir::DType::Bool, {1, 1, 1, Tk});
  mask.data<uint8_t>()[Tk - 1] = 1;
  s = b.Out("Where", {b.Init("mask", std::move(mask)), b.Init("neg", ir::Tensor::Scalar(-1e9f)), s}, p + ".Where");
  ir::Value* a = b.Out("Softmax", {s}, p + ".Softmax");
  ir::Value* o = b.Transpose(b.Out("MatMul", {a, vh}, p + ".MatMul_1"), {0, 2, 1, 3});
  ir::Value* merged = dynamic ? b.Concat({b.DimOf(q, 0), b.DimOf(q, 1), b.DimOf(q, 2)}, 0) : b.Ints({1, T, d});
  o = b.Out("Reshape", {o, merged}, p + ".merge");
  ir::Value* y = b.Out("Add", {x, b.Linear(o, b.Rand({d, d}), b.Rand({d}, 0.1f), p + ".o")}, p + ".residual");
  return {y, k, v};
}

// x [1, 6, 16] -> attention (4 heads of 4) -> y.
ir::Model AttentionModel(uint64_t seed, bool dynamic, int zero_head) {
  auto g = std::make_unique<ir::Graph>("attn");
  Builder b{*g, std::mt19937_64(seed)};
  ir::Value* x = test::Input(*g, "x", ir::DType::Float32, {1, 6, 16});
  test::Output(*g, Attention(b, x, 6, 6, 16, 4, dynamic, zero_head, "att").y, {1, 6, 16});
  return test::SingleGraphModel(std::move(g));
}

ir::Value* TakeLayer(Builder& b, ir::Value* cache, int layer) {
  ir::Node* gather = b.Op("Gather", {cache, b.IntScalar(layer)}, "Gather");
  gather->set_attr_int("axis", 0);
  return gather->outputs[0];
}

// Tail of a concatenation from `start` on `axis`, unsqueezed for stacking into the new cache.
ir::Value* CacheTail(Builder& b, ir::Value* cat, int64_t start, int64_t axis) {
  ir::Value* tail = b.Out("Slice", {cat, b.Ints({start}), b.Ints({std::numeric_limits<int64_t>::max()}), b.Ints({axis}),
                                    b.Ints({1})}, "Slice");
  return b.Out("Unsqueeze", {tail, b.Ints({0})}, "Unsqueeze");
}

// Streaming causal conformer-like encoder, 2 layers, d = 8, chunk T = 4: attention (2 heads of
// 4, left context L = 3 through cache_k/cache_v [2, 1, 3, 8]) and the conv module (GLU, causal
// depthwise conv k = 3 through cache_c [2, 1, 8, 2], LayerNorm, SiLU, pw2), as the teacher's
// encoder_causal export has them. `exact`: head 1 of each attention has zero V weights, and conv
// channels come in +/- pairs (0,1), (2,3) while 4..7 are dead (zero value columns, zero depthwise
// bias, gamma 0, beta != 0): their values equal the per-frame mean (0), so removing them is exact.
ir::Model StreamingModel(uint64_t seed, bool exact) {
  constexpr int64_t T = 4, L = 3, d = 8, K = 3, C = 8;
  auto g = std::make_unique<ir::Graph>("enc");
  Builder b{*g, std::mt19937_64(seed)};
  ir::Value* x = test::Input(*g, "x", ir::DType::Float32, {1, T, d});
  ir::Value* ck = test::Input(*g, "cache_0", ir::DType::Float32, {2, 1, L, d});
  ir::Value* cv = test::Input(*g, "cache_1", ir::DType::Float32, {2, 1, L, d});
  ir::Value* cc = test::Input(*g, "cache_2", ir::DType::Float32, {2, 1, C, K - 1});
  std::vector<ir::Value*> new_k, new_v, new_c;
  for (int layer = 0; layer < 2; ++layer) {
    const std::string p = "layer" + std::to_string(layer);
    auto kv = [&](ir::Value* fresh, int which) {
      ir::Value* cat = b.Concat({TakeLayer(b, which ? cv : ck, layer), fresh}, 1);
      (which ? new_v : new_k).push_back(CacheTail(b, cat, T, 1));
      return cat;
    };
    x = Attention(b, x, T, L + T, d, 2, false, exact ? 1 : -1, p + ".att", kv).y;
    // Conv module.
    ir::Tensor w1 = b.Rand({d, 2 * C}), b1 = b.Rand({2 * C}, 0.1f);
    ir::Tensor wdw = b.Rand({C, 1, K}), bdw = b.Rand({C}, 0.1f);
    ir::Tensor gamma = b.Rand({C}, 1.f), beta = b.Rand({C}, 0.5f);
    if (exact) {
      for (int64_t j : {1, 3}) {  // channel j = -channel j-1: value column and biases negated
        for (int64_t r = 0; r < d; ++r) {
          w1.data<float>()[r * 2 * C + j] = -w1.data<float>()[r * 2 * C + j - 1];
          w1.data<float>()[r * 2 * C + C + j] = w1.data<float>()[r * 2 * C + C + j - 1];
        }
        b1.data<float>()[j] = -b1.data<float>()[j - 1];
        b1.data<float>()[C + j] = b1.data<float>()[C + j - 1];
        for (int64_t t = 0; t < K; ++t) wdw.data<float>()[j * K + t] = wdw.data<float>()[(j - 1) * K + t];
        bdw.data<float>()[j] = -bdw.data<float>()[j - 1];
      }
      for (int64_t j = 4; j < C; ++j) {
        for (int64_t r = 0; r < d; ++r) w1.data<float>()[r * 2 * C + j] = 0;
        b1.data<float>()[j] = 0;
        bdw.data<float>()[j] = 0;
        gamma.data<float>()[j] = 0;
      }
    }
    ir::Value* pw1 = b.Linear(x, std::move(w1), std::move(b1), p + ".conv.pw1");
    ir::Value* va = b.Out("Slice", {pw1, b.Ints({0}), b.Ints({C}), b.Ints({2}), b.Ints({1})}, p + ".conv.Slice");
    ir::Value* ga = b.Out("Slice", {pw1, b.Ints({C}), b.Ints({std::numeric_limits<int64_t>::max()}), b.Ints({2}),
                                    b.Ints({1})}, p + ".conv.Slice");
    ir::Value* glu = b.Out("Mul", {va, b.Out("Sigmoid", {ga}, p + ".conv.Sigmoid")}, p + ".conv.Mul");
    ir::Value* cat = b.Concat({TakeLayer(b, cc, layer), b.Transpose(glu, {0, 2, 1})}, 2);
    new_c.push_back(CacheTail(b, cat, T, 2));
    ir::Node* dw = b.Op("Conv", {cat, b.Init(p + ".conv.dw.weight", std::move(wdw)), b.Init(p + ".conv.dw.bias", std::move(bdw))},
                        p + ".conv.dw.Conv");
    dw->set_attr_int("group", C);
    dw->set_attr_ints("kernel_shape", {K});
    ir::Node* ln = b.Op("LayerNormalization", {b.Transpose(dw->outputs[0], {0, 2, 1}), b.Init("gamma", std::move(gamma)),
                                               b.Init("beta", std::move(beta))}, p + ".conv.norm2");
    ln->set_attr_int("axis", -1);
    ln->set_attr_float("epsilon", 1e-5f);
    ir::Value* n = ln->outputs[0];
    ir::Value* act = b.Out("Mul", {n, b.Out("Sigmoid", {n}, p + ".conv.Sigmoid")}, p + ".conv.Mul");
    x = b.Out("Add", {x, b.Linear(act, b.Rand({C, d}), b.Rand({d}, 0.1f), p + ".conv.pw2")}, p + ".residual");
  }
  test::Output(*g, x, {1, T, d});
  test::Output(*g, b.Concat(new_k, 0), {2, 1, L, d});
  test::Output(*g, b.Concat(new_v, 0), {2, 1, L, d});
  test::Output(*g, b.Concat(new_c, 0), {2, 1, C, K - 1});
  ir::Model m = test::SingleGraphModel(std::move(g));
  m.graphs[0].role = "encoder_causal";
  m.config["streaming"]["cache"] = json::array();
  for (int i = 0; i < 3; ++i) {
    json shape = i < 2 ? json::array({2, 1, L, d}) : json::array({2, 1, C, K - 1});
    m.config["streaming"]["cache"].push_back(
        {{"input", "cache_" + std::to_string(i)}, {"output", "?"}, {"shape", shape}, {"dtype", "float32"}});
  }
  return m;
}

std::vector<ir::Tensor> Inputs(const ir::Graph& g, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<ir::Tensor> in;
  for (const ir::Value* v : g.inputs) {
    ir::Shape s;
    for (const ir::Dim& d : v->type.dims) s.push_back(d.value);
    in.push_back(v->name == "x" ? test::RandomTensor(s, rng) : ir::Tensor(ir::DType::Float32, s));
  }
  return in;
}

std::vector<int64_t> Dims(const ir::Value* v) {
  std::vector<int64_t> out;
  for (const ir::Dim& d : v->type.dims) out.push_back(d.value);
  return out;
}

// Channels [0, k) of axis 2 of a [layers, 1, C, ...] cache.
ir::Tensor FirstChannels(const ir::Tensor& t, int64_t k) {
  const int64_t layers = t.dim(0), C = t.dim(2), inner = t.numel() / (layers * C);
  ir::Tensor out(ir::DType::Float32, {layers, 1, k, inner});
  for (int64_t l = 0; l < layers; ++l)
    for (int64_t c = 0; c < k; ++c)
      for (int64_t i = 0; i < inner; ++i)
        out.data<float>()[(l * k + c) * inner + i] = t.data<float>()[(l * C + c) * inner + i];
  return out;
}

// Attention caches [layers, 1, L, h*dk] without head `head` (of size dk).
ir::Tensor DropHead(const ir::Tensor& t, int64_t head, int64_t dk) {
  const int64_t w = t.dim(3), rows = t.numel() / w;
  ir::Tensor out(ir::DType::Float32, {t.dim(0), t.dim(1), t.dim(2), w - dk});
  for (int64_t r = 0; r < rows; ++r) {
    int64_t j = 0;
    for (int64_t c = 0; c < w; ++c) {
      if (c / dk != head) out.data<float>()[r * (w - dk) + j++] = t.data<float>()[r * w + c];
    }
  }
  return out;
}

pass::PassContext* Prune(ir::Model& m, const json& options, bool expect_change = true,
                         pass::Calibrator calib = nullptr) {
  passes::PrunePass p;
  pass::PassContext* ctx = nullptr;
  json o = options;
  o["method"] = "structured";
  CHECK(test::RunPass(p, m, o, &ctx, std::move(calib)) == expect_change);
  return ctx;
}

int64_t Counter(const pass::PassContext* ctx, const std::string& k) {
  return ctx->counters().count(k) ? ctx->counters().at(k) : 0;
}

}  // namespace

TEST_CASE("prune heads: a head with zero V weights goes, exactly; shapes rewritten; ORT agrees") {
  for (bool dynamic : {false, true}) {
    INFO("dynamic shapes " << dynamic);
    ir::Model m = AttentionModel(3, dynamic, /*zero_head=*/2);
    const ir::Graph& g = *m.graphs[0].graph;
    auto in = Inputs(g, 7);
    auto ref = test::RunAsrc(g, in);
    const int64_t params = m.ParamsTotal(), bytes = m.BytesUnique();
    pass::PassContext* ctx = Prune(m, {{"targets", {"heads"}}, {"heads_sparsity", 0.25}});
    CHECK(Counter(ctx, "attention_pruned") == 1);
    CHECK(Counter(ctx, "heads_removed") == 1);
    // One head of 4 columns: Q, K, V columns + biases and the output-projection rows.
    const int64_t removed = 4 * (16 + 1) * 3 + 4 * 16;
    CHECK(Counter(ctx, "params_removed") == removed);
    CHECK(m.ParamsTotal() == params - removed);
    CHECK(m.BytesUnique() < bytes);
    for (const ir::Node* n : g.nodes()) {
      if (n->op_type != "MatMul" || !n->input(1)->initializer) continue;
      const ir::Tensor& w = *n->input(1)->initializer;
      CHECK(w.dim(0) * w.dim(1) == 16 * 12);
    }
    auto out = test::RunAsrc(g, in);
    CHECK(test::RelError(ref[0], out[0]) < 1e-5);
    test::CheckOrt(m, in, out, 1e-5, dynamic ? "heads_dyn" : "heads_const");
  }
}

TEST_CASE("prune heads: nothing to remove at sparsity 0 (identical); lossy removal of random heads runs in ORT") {
  ir::Model m = AttentionModel(4, false, -1);
  auto in = Inputs(*m.graphs[0].graph, 8);
  auto ref = test::RunAsrc(*m.graphs[0].graph, in);
  pass::PassContext* ctx = Prune(m, {{"targets", {"heads"}}, {"heads_sparsity", 0.0}}, false);
  CHECK(Counter(ctx, "skipped_nothing_to_remove") == 1);
  CHECK(test::BitEqual(ref[0], test::RunAsrc(*m.graphs[0].graph, in)[0]));
  ctx = Prune(m, {{"targets", {"heads"}}, {"heads_sparsity", 0.5}});
  CHECK(Counter(ctx, "heads_removed") == 2);
  auto out = test::RunAsrc(*m.graphs[0].graph, in);
  MESSAGE("2 of 4 random heads removed: relative output change " << test::RelError(ref[0], out[0]));
  test::CheckOrt(m, in, out, 1e-5, "heads_lossy");
  // min_heads holds the floor.
  ir::Model m2 = AttentionModel(4, true, -1);
  ctx = Prune(m2, {{"targets", {"heads"}}, {"heads_sparsity", 0.99}, {"min_heads", 2}});
  CHECK(Counter(ctx, "heads_removed") == 2);
}

TEST_CASE("prune heads+conv on a streaming encoder: caches narrowed, exact for dead units over two chunks; ORT agrees") {
  ir::Model m = StreamingModel(11, /*exact=*/true);
  const ir::Graph& g = *m.graphs[0].graph;
  auto in = Inputs(g, 12);
  auto ref1 = test::RunAsrc(g, in);
  // Second chunk: new features, the caches the first chunk returned.
  const std::vector<ir::Tensor> in2 = {Inputs(g, 13)[0], ref1[1], ref1[2], ref1[3]};
  auto ref2 = test::RunAsrc(g, in2);
  const int64_t params = m.ParamsTotal();
  pass::PassContext* ctx = Prune(m, {{"targets", {"heads", "conv"}}, {"heads_sparsity", 0.5},
                                     {"conv_sparsity", 0.5}, {"multiple_of", 1}});
  CHECK(Counter(ctx, "attention_pruned") == 2);
  CHECK(Counter(ctx, "conv_pruned") == 2);
  CHECK(Counter(ctx, "conv_channels_removed") == 8);
  // Per layer: one head of 4 (3 * 4 * (8 + 1) + 4 * 8 = 140); four channels (pw1 2 * 4 * (8 + 1),
  // depthwise 4 * (3 + 1), norm 2 * 4, pw2 4 * 8 = 128).
  CHECK(Counter(ctx, "params_removed") == 2 * (140 + 128));
  CHECK(m.ParamsTotal() == params - 2 * (140 + 128));
  CHECK(Dims(g.inputs[1]) == std::vector<int64_t>{2, 1, 3, 4});
  CHECK(Dims(g.inputs[3]) == std::vector<int64_t>{2, 1, 4, 2});
  CHECK(Dims(g.outputs[1]) == std::vector<int64_t>{2, 1, 3, 4});
  CHECK(Dims(g.outputs[3]) == std::vector<int64_t>{2, 1, 4, 2});
  CHECK(m.config["streaming"]["cache"][0]["shape"] == json::array({2, 1, 3, 4}));
  CHECK(m.config["streaming"]["cache"][2]["shape"] == json::array({2, 1, 4, 2}));
  for (const ir::Node* n : g.nodes()) {
    if (n->op_type == "Conv") CHECK(n->attr_int("group", 0) == 4);
  }
  auto in_p = Inputs(g, 12);  // zero caches of the new shapes, same x
  auto out1 = test::RunAsrc(g, in_p);
  CHECK(test::RelError(ref1[0], out1[0]) < 1e-5);
  CHECK(test::RelError(DropHead(ref1[1], 1, 4), out1[1]) < 1e-5);
  CHECK(test::RelError(FirstChannels(ref1[3], 4), out1[3]) < 1e-5);
  auto out2 = test::RunAsrc(g, {in2[0], out1[1], out1[2], out1[3]});
  CHECK(test::RelError(ref2[0], out2[0]) < 1e-5);
  test::CheckOrt(m, {in2[0], out1[1], out1[2], out1[3]}, out2, 1e-5, "stream_exact");
}

TEST_CASE("prune conv: lossy on random weights, bias fold and rescaled norm run in ORT; cache groups stay consistent") {
  ir::Model m = StreamingModel(21, /*exact=*/false);
  const ir::Graph& g = *m.graphs[0].graph;
  auto in = Inputs(g, 22);
  in[0] = Inputs(g, 23)[0];
  auto ref = test::RunAsrc(g, in);
  pass::PassContext* ctx = Prune(m, {{"targets", {"conv"}}, {"conv_sparsity", 0.25}, {"multiple_of", 2}});
  CHECK(Counter(ctx, "conv_channels_removed") == 4);
  auto in_p = Inputs(g, 22);
  in_p[0] = in[0];
  auto out = test::RunAsrc(g, in_p);
  MESSAGE("2 of 8 random conv channels per layer removed: relative output change " << test::RelError(ref[0], out[0]));
  test::CheckOrt(m, in_p, out, 1e-5, "conv_lossy");

  // One layer's attention excluded: both layers read cache_0/cache_1, so neither may narrow them.
  ir::Model m2 = StreamingModel(21, false);
  ctx = Prune(m2, {{"targets", {"heads"}}, {"exclude_nodes", {"layer1.att.q.*"}}}, false);
  CHECK(Counter(ctx, "skipped_heads_cache_mismatch") == 1);
  CHECK(Dims(m2.graphs[0].graph->inputs[1]) == std::vector<int64_t>{2, 1, 3, 8});
  // resize_caches off: cached layers are left alone.
  ctx = Prune(m2, {{"targets", {"heads", "conv"}}, {"resize_caches", false}}, false);
  CHECK(Counter(ctx, "skipped_heads_cache_resize_off") == 2);
  CHECK(Counter(ctx, "skipped_conv_cache_resize_off") == 2);
}

TEST_CASE("prune structured: default targets are FFN only; unknown targets are an error") {
  ir::Model m = StreamingModel(31, false);
  const int64_t params = m.ParamsTotal();
  Prune(m, {{"sparsity", 0.5}}, false);  // no FFN in this graph; heads and conv untouched
  CHECK(m.ParamsTotal() == params);
  passes::PrunePass p;
  auto opts = pass::ValidateOptions(p.options(), {{"method", "structured"}, {"targets", {"mlp"}}}, "$");
  REQUIRE(opts.ok());
  pass::PassContext ctx(opts.value(), 0);
  auto r = p.Run(m, ctx);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().message().find("unknown target 'mlp'") != std::string::npos);
}

TEST_CASE("prune heads data_aware: scored by calibration RMS at Wo's input; a silent head goes exactly; needs data") {
  ir::Model m = AttentionModel(5, false, /*zero_head=*/1);
  const ir::Graph& g = *m.graphs[0].graph;
  auto in = Inputs(g, 9);
  auto ref = test::RunAsrc(g, in);
  pass::PassContext* ctx = Prune(m, {{"targets", {"heads"}}, {"heads_sparsity", 0.25}, {"data_aware", true}}, true,
                                 pass::RandomInputCalibrator(2, 3));
  CHECK(Counter(ctx, "data_aware_scored") == 1);
  CHECK(Counter(ctx, "heads_removed") == 1);
  auto out = test::RunAsrc(g, in);
  CHECK(test::RelError(ref[0], out[0]) < 1e-5);

  ir::Model m2 = AttentionModel(5, false, -1);
  passes::PrunePass p;
  auto opts = pass::ValidateOptions(p.options(), {{"method", "structured"}, {"targets", {"heads"}}, {"data_aware", true}}, "$");
  REQUIRE(opts.ok());
  pass::PassContext no_data(opts.value(), 0);
  auto r = p.Run(m2, no_data);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().message().find("calibration") != std::string::npos);
}
