// Each pass on tiny graphs built in code: structure (op counts), numerics against the unmodified
// graph on seeded inputs (exact for cleanup, stated budgets for the lossy passes), and the
// rewritten ONNX run in ONNX Runtime giving the same results as in asrc.
#include "pass/calibration.h"
#include "pass_test_util.h"
#include "passes/cleanup.h"
#include "passes/low_rank.h"
#include "passes/prune.h"
#include "passes/quantize_int8.h"

using namespace asrc;
using asrc::test::CountOps;
using nlohmann::json;

namespace {

// x [2,5,16] -> MatMul(W1 [16,64], from a Constant node) -> Add(b1, .) -> SiLU (Sigmoid, Mul)
// -> MatMul(W2 [64,16]) -> Add(b2) -> Dropout -> Reshape(Concat([-1],[16])) -> Identity
// -> Reshape([2,5,16]) -> y; plus a dead Neg(x). `weak_half`: hidden units 32..63 ~1e-4 scale.
ir::Model FfnModel(uint64_t seed = 1, bool weak_half = false) {
  std::mt19937_64 rng(seed);
  auto g = std::make_unique<ir::Graph>("ffn");
  ir::Value* x = test::Input(*g, "x", ir::DType::Float32, {2, 5, 16});
  ir::Tensor w1 = test::RandomTensor({16, 64}, rng, 0.25f);
  ir::Tensor w2 = test::RandomTensor({64, 16}, rng, 0.25f);
  ir::Tensor b1 = test::RandomTensor({64}, rng, 0.1f);
  if (weak_half) {
    for (int r = 0; r < 16; ++r)
      for (int j = 32; j < 64; ++j) w1.data<float>()[r * 64 + j] *= 1e-4f;
    for (int j = 32; j < 64; ++j) {
      for (int c = 0; c < 16; ++c) w2.data<float>()[j * 16 + c] *= 1e-4f;
    }
  }
  ir::Node* c = g->AddNode("Constant", {}, {"W1"}, "const_w1");
  c->set_attr_tensor("value", w1);
  ir::Value* vw2 = g->AddInitializer("W2", w2);
  ir::Value* vb1 = g->AddInitializer("b1", b1);
  ir::Value* vb2 = g->AddInitializer("b2", test::RandomTensor({16}, rng, 0.1f));
  ir::Node* mm1 = g->AddNode("MatMul", {x, c->outputs[0]}, {"h"}, "ffn.l1.MatMul");
  ir::Node* add1 = g->AddNode("Add", {vb1, mm1->outputs[0]}, {"h2"}, "ffn.l1.Add");
  ir::Node* sig = g->AddNode("Sigmoid", {add1->outputs[0]}, {"s"}, "ffn.Sigmoid");
  ir::Node* mul = g->AddNode("Mul", {add1->outputs[0], sig->outputs[0]}, {"a"}, "ffn.Mul");
  ir::Node* mm2 = g->AddNode("MatMul", {mul->outputs[0], vw2}, {"o"}, "ffn.l2.MatMul");
  ir::Node* add2 = g->AddNode("Add", {mm2->outputs[0], vb2}, {"o2"}, "ffn.l2.Add");
  ir::Node* drop = g->AddNode("Dropout", {add2->outputs[0]}, {"o3"}, "ffn.Dropout");
  ir::Value* m1 = g->AddInitializer("minus1", ir::Tensor::FromVector(ir::DType::Int64, {1}, std::vector<int64_t>{-1}));
  ir::Value* d16 = g->AddInitializer("d16", ir::Tensor::FromVector(ir::DType::Int64, {1}, std::vector<int64_t>{16}));
  ir::Node* cat = g->AddNode("Concat", {m1, d16}, {"shape2d"}, "shape.Concat");
  cat->set_attr_int("axis", 0);
  ir::Node* r1 = g->AddNode("Reshape", {drop->outputs[0], cat->outputs[0]}, {"r"}, "Reshape2d");
  ir::Node* id = g->AddNode("Identity", {r1->outputs[0]}, {"rid"}, "Identity");
  ir::Value* s3 = g->AddInitializer("shape3d", ir::Tensor::FromVector(ir::DType::Int64, {3}, std::vector<int64_t>{2, 5, 16}));
  ir::Node* r2 = g->AddNode("Reshape", {id->outputs[0], s3}, {"y"}, "Reshape3d");
  test::Output(*g, r2->outputs[0], {2, 5, 16});
  g->AddNode("Neg", {x}, {"dead"}, "dead.Neg");
  return test::SingleGraphModel(std::move(g));
}

// tokens [1,3] int64 -> Gather(emb [32,24]) -> Transpose -> LSTM(hidden 20) -> Y_h [1,1,20]
// -> Reshape [1,20] -> Gemm(W [10,20], transB) -> logits;  z [1,4,12] -> Conv(W [8,4,3]) -> c.
ir::Model MixedModel(uint64_t seed = 2) {
  std::mt19937_64 rng(seed);
  auto g = std::make_unique<ir::Graph>("mixed");
  ir::Value* tok = test::Input(*g, "tokens", ir::DType::Int64, {1, 3});
  ir::Value* z = test::Input(*g, "z", ir::DType::Float32, {1, 4, 12});
  ir::Value* emb = g->AddInitializer("emb", test::RandomTensor({32, 24}, rng));
  ir::Node* ga = g->AddNode("Gather", {emb, tok}, {"e"}, "embed.Gather");
  ir::Node* tr = g->AddNode("Transpose", {ga->outputs[0]}, {"et"}, "Transpose");
  tr->set_attr_ints("perm", {1, 0, 2});
  ir::Value* W = g->AddInitializer("lstm.W", test::RandomTensor({1, 80, 24}, rng, 0.2f));
  ir::Value* R = g->AddInitializer("lstm.R", test::RandomTensor({1, 80, 20}, rng, 0.2f));
  ir::Value* B = g->AddInitializer("lstm.B", test::RandomTensor({1, 160}, rng, 0.1f));
  ir::Node* lstm = g->AddNode("LSTM", {tr->outputs[0], W, R, B}, {"Y", "Y_h", "Y_c"}, "lstm");
  lstm->set_attr_int("hidden_size", 20);
  ir::Value* s = g->AddInitializer("shape_1x20", ir::Tensor::FromVector(ir::DType::Int64, {2}, std::vector<int64_t>{1, 20}));
  ir::Node* rs = g->AddNode("Reshape", {lstm->outputs[1], s}, {"hflat"}, "Reshape");
  ir::Value* gw = g->AddInitializer("joiner.W", test::RandomTensor({10, 20}, rng, 0.3f));
  ir::Value* gb = g->AddInitializer("joiner.b", test::RandomTensor({10}, rng, 0.1f));
  ir::Node* gemm = g->AddNode("Gemm", {rs->outputs[0], gw, gb}, {"logits"}, "joiner.Gemm");
  gemm->set_attr_int("transB", 1);
  ir::Value* cw = g->AddInitializer("conv.W", test::RandomTensor({8, 4, 3}, rng, 0.3f));
  ir::Value* cb = g->AddInitializer("conv.b", test::RandomTensor({8}, rng, 0.1f));
  ir::Node* conv = g->AddNode("Conv", {z, cw, cb}, {"c"}, "conv");
  conv->set_attr_ints("kernel_shape", {3});
  test::Output(*g, gemm->outputs[0], {1, 10});
  test::Output(*g, conv->outputs[0], {1, 8, 10});
  return test::SingleGraphModel(std::move(g));
}

std::vector<ir::Tensor> FfnInputs(uint64_t seed = 7) {
  std::mt19937_64 rng(seed);
  return {test::RandomTensor({2, 5, 16}, rng)};
}

std::vector<ir::Tensor> MixedInputs(uint64_t seed = 8) {
  std::mt19937_64 rng(seed);
  return {ir::Tensor::FromVector(ir::DType::Int64, {1, 3}, std::vector<int64_t>{3, 17, 30}),
          test::RandomTensor({1, 4, 12}, rng)};
}

// The outputs of `g` on `in`, each checked within `budget` of `ref` (relative to its largest
// magnitude).
std::vector<ir::Tensor> OutputsWithin(const ir::Graph& g, const std::vector<ir::Tensor>& in,
                                      const std::vector<ir::Tensor>& ref, double budget) {
  auto out = test::RunAsrc(g, in);
  REQUIRE(out.size() == ref.size());
  for (size_t i = 0; i < out.size(); ++i) {
    double err = test::RelError(ref[i], out[i]);
    MESSAGE("output " << i << " relative error " << err);
    CHECK(err < budget);
  }
  return out;
}

}  // namespace

TEST_CASE("cleanup: constants, identities, folding, dead code; bit-exact; ORT agrees") {
  ir::Model m = FfnModel();
  auto in = FfnInputs();
  auto before = test::RunAsrc(*m.graphs[0].graph, in);
  passes::CleanupPass p;
  pass::PassContext* ctx = nullptr;
  CHECK(test::RunPass(p, m, json::object(), &ctx));
  const ir::Graph& g = *m.graphs[0].graph;
  CHECK(CountOps(g, "Constant") == 0);
  CHECK(CountOps(g, "Identity") == 0);
  CHECK(CountOps(g, "Dropout") == 0);
  CHECK(CountOps(g, "Concat") == 0);
  CHECK(CountOps(g, "Neg") == 0);
  CHECK(CountOps(g, "MatMul") == 2);
  CHECK(ctx->counters().at("nodes_folded") == 1);
  CHECK(ctx->counters().at("identities_removed") == 2);
  CHECK(g.outputs[0]->name == "y");
  auto after = test::RunAsrc(g, in);
  REQUIRE(after.size() == 1);
  CHECK(test::BitEqual(before[0], after[0]));
  test::CheckOrt(m, in, after, 1e-5, "cleanup");
  // A second run finds nothing to do.
  CHECK_FALSE(test::RunPass(p, m, json::object()));
}

TEST_CASE("cleanup never makes a model larger: weights in Constant nodes inside If branches") {
  // y = If(c) { x @ W^T @ W @ float(W16) } else { the same with other weights }: folding the
  // Transpose would store W twice, folding the Cast would store W16 as float32.
  std::mt19937_64 rng(7);
  auto g = std::make_unique<ir::Graph>("g");
  ir::Value* x = test::Input(*g, "x", ir::DType::Float32, {1, 32});
  ir::Value* c = test::Input(*g, "c", ir::DType::Bool, {});
  ir::Node* iff = g->AddNode("If", {c}, {"y"}, "if0");
  for (const char* name : {"then_branch", "else_branch"}) {
    auto b = std::make_shared<ir::Graph>(name);
    b->parent = g.get();
    ir::Node* cw = b->AddNode("Constant", {}, {std::string(name) + "_w"}, std::string(name) + "_cw");
    cw->set_attr_tensor("value", test::RandomTensor({32, 32}, rng, 0.2f));
    ir::Tensor w16(ir::DType::Float16, {32, 32});
    for (int64_t i = 0; i < w16.numel(); ++i) w16.data<uint16_t>()[i] = 0x3000 + static_cast<uint16_t>(i % 64);
    ir::Node* ch = b->AddNode("Constant", {}, {std::string(name) + "_w16"}, std::string(name) + "_ch");
    ch->set_attr_tensor("value", w16);
    ir::Node* tr = b->AddNode("Transpose", {cw->outputs[0]}, {std::string(name) + "_wt"}, std::string(name) + "_tr");
    ir::Node* cast = b->AddNode("Cast", {ch->outputs[0]}, {std::string(name) + "_w32"}, std::string(name) + "_cast");
    cast->set_attr_int("to", static_cast<int64_t>(ir::DType::Float32));
    ir::Node* m1 = b->AddNode("MatMul", {x, tr->outputs[0]}, {std::string(name) + "_a"}, std::string(name) + "_mm1");
    ir::Node* m2 = b->AddNode("MatMul", {m1->outputs[0], cw->outputs[0]}, {std::string(name) + "_b"}, std::string(name) + "_mm2");
    ir::Node* m3 = b->AddNode("MatMul", {m2->outputs[0], cast->outputs[0]}, {std::string(name) + "_y"}, std::string(name) + "_mm3");
    b->outputs.push_back(m3->outputs[0]);
    ir::Attribute a;
    a.name = name;
    a.kind = ir::Attribute::Kind::Graph;
    a.g = b;
    iff->attributes.push_back(a);
  }
  g->RebuildUses();
  test::Output(*g, iff->outputs[0], {1, 32});
  ir::Model m = test::SingleGraphModel(std::move(g));
  REQUIRE(m.graphs[0].graph->Verify().ok());
  std::vector<ir::Tensor> in = {test::RandomTensor({1, 32}, rng, 1.f), ir::Tensor(ir::DType::Bool, {})};
  auto before = test::RunAsrc(*m.graphs[0].graph, in);
  const int64_t bytes_before = m.BytesUnique();
  passes::CleanupPass p;
  pass::PassContext* ctx = nullptr;
  CHECK(test::RunPass(p, m, json::object(), &ctx));
  CHECK(m.BytesUnique() <= bytes_before);
  CHECK(ctx->counters().at("constants_to_initializers") == 4);
  CHECK(ctx->counters().at("skipped_fold_grows_model") == 4);
  auto after = test::RunAsrc(*m.graphs[0].graph, in);
  REQUIRE(after.size() == 1);
  CHECK(test::BitEqual(before[0], after[0]));
}

TEST_CASE("quantize-int8 dynamic: MatMulInteger form, ~4x fewer weight bytes, within budget, ORT agrees") {
  ir::Model m = FfnModel();
  passes::CleanupPass clean;
  test::RunPass(clean, m, json::object());
  auto in = FfnInputs();
  auto ref = test::RunAsrc(*m.graphs[0].graph, in);
  const int64_t bytes_before = m.BytesUnique();
  passes::QuantizeInt8Pass q;
  pass::PassContext* ctx = nullptr;
  CHECK(test::RunPass(q, m, {{"mode", "dynamic"}}, &ctx));
  const ir::Graph& g = *m.graphs[0].graph;
  CHECK(CountOps(g, "MatMul") == 0);
  CHECK(CountOps(g, "MatMulInteger") == 2);
  CHECK(CountOps(g, "DynamicQuantizeLinear") == 2);
  CHECK(ctx->counters().at("matmul_integer") == 2);
  const int64_t bytes_after = m.BytesUnique();
  MESSAGE("bytes " << bytes_before << " -> " << bytes_after);
  CHECK(bytes_after * 3 < bytes_before);  // 2048 float weights -> int8 + scales; biases stay float
  auto out = test::RunAsrc(g, in);
  double err = test::RelError(ref[0], out[0]);
  MESSAGE("dynamic int8 relative error " << err);
  CHECK(err < 0.03);  // budget: 3% of the output's max magnitude
  test::CheckOrt(m, in, out, 2e-3, "qdyn", &ref);
}

TEST_CASE("quantize-int8 per-tensor + reduce_range still within a looser budget") {
  ir::Model m = FfnModel();
  auto in = FfnInputs();
  auto ref = test::RunAsrc(*m.graphs[0].graph, in);
  passes::QuantizeInt8Pass q;
  test::RunPass(q, m, {{"per_channel", false}, {"reduce_range", true}});
  auto out = test::RunAsrc(*m.graphs[0].graph, in);
  double err = test::RelError(ref[0], out[0]);
  MESSAGE("per-tensor reduce_range relative error " << err);
  CHECK(err < 0.06);
  test::CheckOrt(m, in, out, 4e-3, "qpt");
}

TEST_CASE("quantize-int8 covers Gather, LSTM, Gemm and Conv weights; ORT agrees") {
  ir::Model m = MixedModel();
  auto in = MixedInputs();
  auto ref = test::RunAsrc(*m.graphs[0].graph, in);
  const int64_t bytes_before = m.BytesUnique();
  passes::QuantizeInt8Pass q;
  pass::PassContext* ctx = nullptr;
  CHECK(test::RunPass(q, m, {{"min_elements", 64}}, &ctx));
  const ir::Graph& g = *m.graphs[0].graph;
  CHECK(ctx->counters().at("gather_int8") == 1);
  CHECK(ctx->counters().at("lstm_weight_only") == 1);
  CHECK(ctx->counters().at("gemm_integer") == 1);
  CHECK(ctx->counters().at("conv_weight_only") == 1);
  CHECK(CountOps(g, "Gemm") == 0);
  CHECK(CountOps(g, "MatMulInteger") == 1);
  CHECK(CountOps(g, "DequantizeLinear") == 3);  // LSTM W, R; Conv W
  for (const ir::Value* v : g.initializers) {
    // Every weight matrix is int8 now; only biases and scales stay float.
    if (v->initializer->dtype() == ir::DType::Float32) CHECK(v->initializer->numel() <= 160);
  }
  CHECK(m.BytesUnique() * 3 < bytes_before);
  auto out = OutputsWithin(g, in, ref, 0.05);
  test::CheckOrt(m, in, out, 2e-3, "qmixed");
}

TEST_CASE("quantize-int8 covers RNN and ConvTranspose weights (int8 behind DequantizeLinear); ORT agrees") {
  // x [5,1,12] -> RNN(hidden 16, W [1,16,12], R [1,16,16]) -> Y;  z [1,8,6] -> ConvTranspose(W [8,4,4], stride 2).
  std::mt19937_64 rng(4);
  auto g = std::make_unique<ir::Graph>("rnn_deconv");
  ir::Value* x = test::Input(*g, "x", ir::DType::Float32, {5, 1, 12});
  ir::Value* z = test::Input(*g, "z", ir::DType::Float32, {1, 8, 6});
  ir::Value* W = g->AddInitializer("rnn.W", test::RandomTensor({1, 16, 12}, rng, 0.3f));
  ir::Value* R = g->AddInitializer("rnn.R", test::RandomTensor({1, 16, 16}, rng, 0.3f));
  ir::Value* B = g->AddInitializer("rnn.B", test::RandomTensor({1, 32}, rng, 0.1f));
  ir::Node* rnn = g->AddNode("RNN", {x, W, R, B}, {"Y", "Y_h"}, "rnn");
  rnn->set_attr_int("hidden_size", 16);
  ir::Value* dw = g->AddInitializer("deconv.W", test::RandomTensor({8, 4, 4}, rng, 0.3f));
  ir::Value* db = g->AddInitializer("deconv.b", test::RandomTensor({4}, rng, 0.1f));
  ir::Node* deconv = g->AddNode("ConvTranspose", {z, dw, db}, {"u"}, "deconv");
  deconv->set_attr_ints("kernel_shape", {4});
  deconv->set_attr_ints("strides", {2});
  deconv->set_attr_ints("pads", {1, 1});
  test::Output(*g, rnn->outputs[0], {5, 1, 1, 16});
  test::Output(*g, deconv->outputs[0], {1, 4, 12});
  ir::Model m = test::SingleGraphModel(std::move(g));
  REQUIRE(m.graphs[0].graph->Verify().ok());
  std::vector<ir::Tensor> in = {test::RandomTensor({5, 1, 12}, rng), test::RandomTensor({1, 8, 6}, rng)};
  auto ref = test::RunAsrc(*m.graphs[0].graph, in);
  const int64_t bytes_before = m.BytesUnique();
  passes::QuantizeInt8Pass q;
  pass::PassContext* ctx = nullptr;
  CHECK(test::RunPass(q, m, {{"min_elements", 64}}, &ctx));
  const ir::Graph& gq = *m.graphs[0].graph;
  CHECK(ctx->counters().at("rnn_weight_only") == 1);
  CHECK(ctx->counters().at("conv_transpose_weight_only") == 1);
  CHECK(CountOps(gq, "DequantizeLinear") == 3);  // RNN W, R; ConvTranspose W
  for (const ir::Node* n : gq.nodes())
    if (n->op_type == "DequantizeLinear") CHECK(n->attr_int("axis", -1) == 1);  // output channels
  for (const ir::Value* v : gq.initializers)
    if (v->initializer->dtype() == ir::DType::Float32) CHECK(v->initializer->numel() <= 32);  // biases, scales
  MESSAGE("bytes " << bytes_before << " -> " << m.BytesUnique());
  CHECK(m.BytesUnique() * 2 < bytes_before);
  auto out = OutputsWithin(gq, in, ref, 0.02);
  test::CheckOrt(m, in, out, 2e-3, "qrnn_deconv");
}

TEST_CASE("quantize-int8 weight-only and static (QDQ, calibrated) within budget; ORT agrees") {
  for (std::string mode : {"weight-only", "static"}) {
    for (std::string calib : {"minmax", "percentile"}) {
      if (mode == "weight-only" && calib == "percentile") continue;
      INFO(mode << " " << calib);
      ir::Model m = FfnModel();
      auto in = FfnInputs();
      auto ref = test::RunAsrc(*m.graphs[0].graph, in);
      passes::QuantizeInt8Pass q;
      pass::PassContext* ctx = nullptr;
      CHECK(test::RunPass(q, m, {{"mode", mode}, {"calibration", calib}, {"percentile", 99.9}}, &ctx,
                          pass::RandomInputCalibrator(4, 11)));
      const ir::Graph& g = *m.graphs[0].graph;
      CHECK(CountOps(g, "MatMul") == 2);
      CHECK(CountOps(g, "DequantizeLinear") == (mode == "static" ? 4 : 2));
      CHECK(CountOps(g, "QuantizeLinear") == (mode == "static" ? 2 : 0));
      auto out = test::RunAsrc(g, in);
      double err = test::RelError(ref[0], out[0]);
      MESSAGE(mode << "/" << calib << " relative error " << err);
      CHECK(err < (mode == "static" ? 0.08 : 0.03));
      test::CheckOrt(m, in, out, 2e-3, "q" + mode + calib);
    }
  }
}

TEST_CASE("quantize-int8: one activation feeding several matmuls is quantized once; ORT agrees") {
  for (std::string mode : {"dynamic", "static"}) {
    INFO(mode);
    std::mt19937_64 rng(9);
    auto g = std::make_unique<ir::Graph>("qkv");
    ir::Value* x = test::Input(*g, "x", ir::DType::Float32, {3, 32});
    ir::Node* a = g->AddNode("MatMul", {x, g->AddInitializer("Wq", test::RandomTensor({32, 32}, rng))}, {"q"}, "q");
    ir::Node* b = g->AddNode("MatMul", {x, g->AddInitializer("Wk", test::RandomTensor({32, 32}, rng))}, {"k"}, "k");
    ir::Node* c = g->AddNode("Add", {a->outputs[0], b->outputs[0]}, {"y"}, "add");
    test::Output(*g, c->outputs[0], {3, 32});
    ir::Model m = test::SingleGraphModel(std::move(g));
    std::vector<ir::Tensor> in = {test::RandomTensor({3, 32}, rng)};
    auto ref = test::RunAsrc(*m.graphs[0].graph, in);
    passes::QuantizeInt8Pass q;
    test::RunPass(q, m, {{"mode", mode}}, nullptr, pass::RandomInputCalibrator(2, 1));
    const ir::Graph& gq = *m.graphs[0].graph;
    CHECK(CountOps(gq, mode == "static" ? "QuantizeLinear" : "DynamicQuantizeLinear") == 1);
    auto out = test::RunAsrc(gq, in);
    CHECK(test::RelError(ref[0], out[0]) < 0.05);
    test::CheckOrt(m, in, out, 2e-3, "qshared" + mode);
  }
}

TEST_CASE("quantize-int8 static without calibration data fails naming the problem") {
  ir::Model m = FfnModel();
  passes::QuantizeInt8Pass q;
  auto opts = pass::ValidateOptions(q.options(), {{"mode", "static"}}, "$");
  REQUIRE(opts.ok());
  pass::PassContext ctx(opts.value(), 0);
  auto r = q.Run(m, ctx);
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().message().find("calibration") != std::string::npos);
}

TEST_CASE("quantize-int8 filters: graphs, nodes, exclude_nodes") {
  ir::Model m = FfnModel();
  passes::QuantizeInt8Pass q;
  pass::PassContext* ctx = nullptr;
  test::RunPass(q, m, {{"exclude_nodes", {"ffn.l2.*"}}}, &ctx);
  CHECK(CountOps(*m.graphs[0].graph, "MatMulInteger") == 1);
  CHECK(CountOps(*m.graphs[0].graph, "MatMul") == 1);
  ir::Model m2 = FfnModel();
  CHECK_FALSE(test::RunPass(q, m2, {{"graphs", {"encoder*"}}}));
}

// x [4,64] -> MatMul(W [64,48]) with W of rank 4 (+ tiny noise) -> y
ir::Model LowRankModel(float noise) {
  std::mt19937_64 rng(3);
  auto g = std::make_unique<ir::Graph>("lr");
  ir::Value* x = test::Input(*g, "x", ir::DType::Float32, {4, 64});
  ir::Tensor a = test::RandomTensor({64, 4}, rng), b = test::RandomTensor({4, 48}, rng);
  ir::Tensor w(ir::DType::Float32, {64, 48});
  std::normal_distribution<float> d(0.f, noise);
  for (int i = 0; i < 64; ++i)
    for (int j = 0; j < 48; ++j) {
      float s = 0;
      for (int k = 0; k < 4; ++k) s += a.data<float>()[i * 4 + k] * b.data<float>()[k * 48 + j];
      w.data<float>()[i * 48 + j] = s + d(rng);
    }
  ir::Value* vw = g->AddInitializer("W", w);
  ir::Node* mm = g->AddNode("MatMul", {x, vw}, {"y"}, "proj.MatMul");
  test::Output(*g, mm->outputs[0], {4, 48});
  return test::SingleGraphModel(std::move(g));
}

TEST_CASE("low-rank: a rank-4 weight factorizes to rank 4 by energy, nearly exact; ORT agrees") {
  ir::Model m = LowRankModel(1e-4f);
  std::mt19937_64 rng(5);
  std::vector<ir::Tensor> in = {test::RandomTensor({4, 64}, rng)};
  auto ref = test::RunAsrc(*m.graphs[0].graph, in);
  const int64_t params = m.ParamsTotal();
  passes::LowRankPass p;
  pass::PassContext* ctx = nullptr;
  CHECK(test::RunPass(p, m, {{"energy", 0.9999}, {"multiple_of", 1}, {"min_elements", 0}}, &ctx));
  const ir::Graph& g = *m.graphs[0].graph;
  CHECK(CountOps(g, "MatMul") == 2);
  CHECK(ctx->counters().at("params_after") == 4 * (64 + 48));
  CHECK(m.ParamsTotal() < params / 5);
  auto out = test::RunAsrc(g, in);
  CHECK(test::RelError(ref[0], out[0]) < 1e-3);
  test::CheckOrt(m, in, out, 1e-4, "lowrank");
}

TEST_CASE("low-rank: never where it would not save bytes; ratio rank; jacobi; data-aware") {
  ir::Model m = LowRankModel(0.5f);
  passes::LowRankPass p;
  pass::PassContext* ctx = nullptr;
  CHECK_FALSE(test::RunPass(p, m, {{"ratio", 0.95}, {"min_elements", 0}}, &ctx));
  CHECK(ctx->counters().at("skipped_no_saving") == 1);
  CHECK(test::RunPass(p, m, {{"ratio", 0.25}, {"min_elements", 0}, {"svd", "jacobi"}}, &ctx));
  CHECK(ctx->counters().at("params_after") == 16 * (64 + 48));
  ir::Model m2 = LowRankModel(0.5f);
  CHECK(test::RunPass(p, m2, {{"ratio", 0.25}, {"min_elements", 0}, {"data_aware", true}}, &ctx,
                      pass::RandomInputCalibrator(2, 3)));
  CHECK(ctx->counters().at("data_aware_weighted") == 1);
}

TEST_CASE("low-rank: a weight shared by two MatMuls is factorized once; nothing to factor is said") {
  // x [4,64] -> MatMul(W) -> MatMul(W): two readers of one initializer W [64,64].
  std::mt19937_64 rng(7);
  auto g = std::make_unique<ir::Graph>("shared");
  ir::Value* x = test::Input(*g, "x", ir::DType::Float32, {4, 64});
  ir::Value* w = g->AddInitializer("W", test::RandomTensor({64, 64}, rng));
  ir::Node* a = g->AddNode("MatMul", {x, w}, {"h"}, "layer0.MatMul");
  ir::Node* b = g->AddNode("MatMul", {a->outputs[0], w}, {"y"}, "layer1.MatMul");
  test::Output(*g, b->outputs[0], {4, 64});
  ir::Model m = test::SingleGraphModel(std::move(g));
  std::vector<ir::Tensor> in = {test::RandomTensor({4, 64}, rng)};
  passes::LowRankPass p;
  pass::PassContext* ctx = nullptr;
  CHECK(test::RunPass(p, m, {{"ratio", 0.25}, {"min_elements", 0}}, &ctx));
  CHECK(ctx->counters().at("factorized") == 1);
  CHECK(ctx->counters().at("shared_weight_reused") == 1);
  CHECK(CountOps(*m.graphs[0].graph, "MatMul") == 4);
  CHECK(m.ParamsTotal() == 16 * (64 + 64));  // one A/B pair, W gone
  test::CheckOrt(m, in, test::RunAsrc(*m.graphs[0].graph, in), 1e-4, "lowrank_shared");

  ir::Model small = LowRankModel(0.5f);
  CHECK_FALSE(test::RunPass(p, small, json::object(), &ctx));  // 64x48 < min_elements 16384
  REQUIRE(ctx->notes().size() == 1);
  CHECK(ctx->notes()[0].find("nothing factorized") != std::string::npos);
  CHECK(ctx->notes()[0].find("MatMul below min_elements x1") != std::string::npos);
  CHECK_FALSE(test::RunPass(p, small, {{"ratio", 0.95}, {"min_elements", 0}}, &ctx));
  REQUIRE(ctx->notes().size() == 1);
  CHECK(ctx->notes()[0].find("1 MatMul/Gemm weight(s) found, none where rank 0.95") != std::string::npos);
}

TEST_CASE("prune structured: removes FFN hidden units physically; weak units -> nearly exact; ORT agrees") {
  ir::Model m = FfnModel(1, /*weak_half=*/true);
  passes::CleanupPass clean;
  test::RunPass(clean, m, json::object());
  auto in = FfnInputs();
  auto ref = test::RunAsrc(*m.graphs[0].graph, in);
  const int64_t params = m.ParamsTotal(), bytes = m.BytesUnique();
  passes::PrunePass p;
  pass::PassContext* ctx = nullptr;
  CHECK(test::RunPass(p, m, {{"method", "structured"}, {"sparsity", 0.5}}, &ctx));
  CHECK(ctx->counters().at("ffn_pruned") == 1);
  CHECK(ctx->counters().at("hidden_units_removed") == 32);
  CHECK(m.ParamsTotal() == params - 32 * (16 + 16 + 1));
  CHECK(m.BytesUnique() < bytes);
  const ir::Graph& g = *m.graphs[0].graph;
  for (const ir::Node* n : g.nodes()) {
    if (n->op_type == "MatMul") {
      const ir::Tensor& w = *n->input(1)->initializer;
      CHECK((w.dim(0) == 32 || w.dim(1) == 32));
    }
  }
  auto out = test::RunAsrc(g, in);
  double err = test::RelError(ref[0], out[0]);
  MESSAGE("structured prune of the weak half: relative error " << err);
  CHECK(err < 2e-3);
  test::CheckOrt(m, in, out, 1e-5, "prune_structured");
}

TEST_CASE("prune magnitude: zeros the requested fraction, saves no bytes, says so") {
  for (std::string scope : {"per-layer", "global"}) {
    INFO(scope);
    ir::Model m = FfnModel();
    test::RunPass(*std::make_unique<passes::CleanupPass>(), m, json::object());
    auto in = FfnInputs();
    auto ref = test::RunAsrc(*m.graphs[0].graph, in);
    const int64_t bytes = m.BytesUnique(), params = m.ParamsTotal();
    passes::PrunePass p;
    pass::PassContext* ctx = nullptr;
    CHECK(test::RunPass(p, m, {{"method", "magnitude"}, {"sparsity", 0.3}, {"scope", scope}}, &ctx));
    CHECK(m.BytesUnique() == bytes);
    CHECK(m.ParamsTotal() == params);
    const int64_t zeros = ctx->counters().at("weights_zeroed");
    CHECK(zeros >= static_cast<int64_t>(0.29 * 2048));
    CHECK(zeros <= static_cast<int64_t>(0.31 * 2048) + 1);
    REQUIRE(ctx->notes().size() == 1);
    CHECK(ctx->notes()[0].find("do not change") != std::string::npos);
    auto out = test::RunAsrc(*m.graphs[0].graph, in);
    CHECK(test::RelError(ref[0], out[0]) < 0.5);
    test::CheckOrt(m, in, out, 1e-5, "prune_mag" + scope);
  }
}

TEST_CASE("passes keep buffers of the input untouched (teacher snapshot stays valid)") {
  ir::Model m = FfnModel();
  const ir::Model snap = m;  // a deep copy sharing the weight buffers
  const uint64_t h = ir::ContentHash(snap);
  passes::CleanupPass c;
  passes::QuantizeInt8Pass q;
  passes::PrunePass p;
  passes::LowRankPass l;
  test::RunPass(c, m, json::object());
  test::RunPass(p, m, {{"sparsity", 0.5}});
  test::RunPass(l, m, {{"min_elements", 0}, {"ratio", 0.1}});
  test::RunPass(q, m, json::object());
  CHECK(ir::ContentHash(snap) == h);
  CHECK(ir::ContentHash(m) != h);
}

TEST_CASE("low-rank data_aware: lower output error than plain SVD when input channels differ in scale") {
  // x [64, 48] whose first 6 channels are 20x larger than the rest; W [48, 40] random.
  std::mt19937_64 rng(21);
  auto skewed = [&](int rows) {
    ir::Tensor t = test::RandomTensor({rows, 48}, rng);
    for (int r = 0; r < rows; ++r)
      for (int c = 0; c < 6; ++c) t.data<float>()[r * 48 + c] *= 20.f;
    return t;
  };
  auto make = [&]() {
    std::mt19937_64 wr(4);
    auto g = std::make_unique<ir::Graph>("da");
    ir::Value* x = test::Input(*g, "x", ir::DType::Float32, {64, 48});
    ir::Node* mm = g->AddNode("MatMul", {x, g->AddInitializer("W", test::RandomTensor({48, 40}, wr))}, {"y"}, "proj");
    test::Output(*g, mm->outputs[0], {64, 40});
    return test::SingleGraphModel(std::move(g));
  };
  // Calibration on the same skewed distribution, through the real StatsCollector.
  pass::Calibrator calib = [&](const ir::Model& m, const pass::Taps& taps) -> Result<pass::ModelStats> {
    pass::ModelStats out;
    pass::StatsCollector col(taps.at("model"));
    ASRC_ASSIGN_OR_RETURN(auto s, runtime::Session::Create(*m.graphs[0].graph, 17, col.Tap()));
    std::vector<ir::Tensor> outs;
    for (int k = 0; k < 4; ++k) ASRC_RETURN_IF_ERROR(s->Run({skewed(64)}, &outs));
    out["model"] = col.stats();
    return out;
  };
  std::vector<ir::Tensor> in = {skewed(64)};
  ir::Model plain = make(), aware = make();
  auto ref = test::RunAsrc(*plain.graphs[0].graph, in);
  passes::LowRankPass p;
  const json opts = {{"ratio", 0.25}, {"multiple_of", 1}, {"min_elements", 0}};
  test::RunPass(p, plain, opts);
  json aware_opts = opts;
  aware_opts["data_aware"] = true;
  test::RunPass(p, aware, aware_opts, nullptr, calib);
  double e_plain = test::RelError(ref[0], test::RunAsrc(*plain.graphs[0].graph, in)[0]);
  double e_aware = test::RelError(ref[0], test::RunAsrc(*aware.graphs[0].graph, in)[0]);
  MESSAGE("rank 10 of 40: plain SVD error " << e_plain << ", data-aware " << e_aware);
  CHECK(e_aware < 0.7 * e_plain);
}
