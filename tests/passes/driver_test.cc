// The passes' shared driver (passes/driver.h): rewrites reach If branches and Loop bodies, and a
// weight tied across the graphs of a bundle stays one buffer through quantize-int8 and magnitude
// pruning.
#include "pass_test_util.h"
#include "passes/low_rank.h"
#include "passes/prune.h"
#include "passes/quantize_int8.h"

using namespace asrc;
using asrc::test::CountOps;
using nlohmann::json;

namespace {

ir::Tensor BoolScalar(bool v) {
  ir::Tensor t(ir::DType::Bool, {});
  t.data<bool>()[0] = v;
  return t;
}

std::shared_ptr<ir::Graph> Branch(ir::Graph& parent, const std::string& name) {
  auto g = std::make_shared<ir::Graph>(name);
  g->parent = &parent;
  return g;
}

void AddGraphAttr(ir::Node* n, const std::string& name, std::shared_ptr<ir::Graph> g) {
  ir::Attribute a;
  a.name = name;
  a.kind = ir::Attribute::Kind::Graph;
  a.g = std::move(g);
  n->attributes.push_back(std::move(a));
}

// y = If(cond) then MatMul(x, Wt) (Wt a then-branch initializer) else MatMul(x, We) (We an
// initializer of the outer graph, read from the branch).
ir::Model IfMatMulModel() {
  std::mt19937_64 rng(7);
  auto g = std::make_unique<ir::Graph>("if_matmul");
  ir::Value* cond = test::Input(*g, "cond", ir::DType::Bool, {});
  ir::Value* x = test::Input(*g, "x", ir::DType::Float32, {2, 64});
  ir::Value* we = g->AddInitializer("We", test::RandomTensor({64, 32}, rng, 0.2f));
  auto then_g = Branch(*g, "then");
  ir::Value* wt = then_g->AddInitializer("Wt", test::RandomTensor({64, 32}, rng, 0.2f));
  then_g->outputs.push_back(then_g->AddNode("MatMul", {x, wt}, {"t_y"}, "then.MatMul")->outputs[0]);
  auto else_g = Branch(*g, "else");
  else_g->outputs.push_back(else_g->AddNode("MatMul", {x, we}, {"e_y"}, "else.MatMul")->outputs[0]);
  ir::Node* ifn = g->AddNode("If", {cond}, {"y"}, "if");
  AddGraphAttr(ifn, "then_branch", then_g);
  AddGraphAttr(ifn, "else_branch", else_g);
  test::Output(*g, ifn->outputs[0], {2, 32});
  return test::SingleGraphModel(std::move(g));
}

const ir::Graph& Sub(const ir::Model& m, const char* attr) {
  for (const ir::Node* n : m.graphs[0].graph->nodes()) {
    if (n->op_type == "If") return *n->attr(attr)->g;
  }
  FAIL("no If node");
  throw 0;
}

const ir::Tensor& InitializerRead(const ir::Graph& g, const std::string& op, int input) {
  for (const ir::Node* n : g.nodes()) {
    if (n->op_type == op) return *n->input(input)->initializer;
  }
  FAIL("no " << op);
  throw 0;
}

}  // namespace

TEST_CASE("driver: quantize-int8 rewrites both If branches; the outer float weight goes; within budget") {
  ir::Model m = IfMatMulModel();
  std::mt19937_64 rng(3);
  ir::Tensor x = test::RandomTensor({2, 64}, rng);
  std::vector<std::vector<ir::Tensor>> before;
  for (bool c : {true, false}) before.push_back(test::RunAsrc(*m.graphs[0].graph, {BoolScalar(c), x}));
  pass::PassContext* ctx = nullptr;
  passes::QuantizeInt8Pass q;
  CHECK(test::RunPass(q, m, {{"mode", "dynamic"}}, &ctx));
  CHECK(ctx->counters().at("matmul_integer") == 2);
  for (const char* b : {"then_branch", "else_branch"}) {
    CHECK(CountOps(Sub(m, b), "MatMulInteger") == 1);
    CHECK(CountOps(Sub(m, b), "MatMul") == 0);
  }
  CHECK(m.graphs[0].graph->FindValue("We") == nullptr);  // its last reader was in a branch
  for (int i = 0; i < 2; ++i) {
    auto after = test::RunAsrc(*m.graphs[0].graph, {BoolScalar(i == 0), x});
    CHECK(test::RelError(before[i][0], after[0]) < 0.05);
  }
}

TEST_CASE("driver: structured prune finds an FFN inside an If branch; dead units removed exactly") {
  std::mt19937_64 rng(11);
  auto g = std::make_unique<ir::Graph>("if_ffn");
  ir::Value* cond = test::Input(*g, "cond", ir::DType::Bool, {});
  ir::Value* x = test::Input(*g, "x", ir::DType::Float32, {3, 16});
  ir::Tensor w1 = test::RandomTensor({16, 64}, rng, 0.3f);
  for (int r = 0; r < 16; ++r) {
    for (int j = 32; j < 64; ++j) w1.data<float>()[r * 64 + j] = 0;  // units 32..63 are dead
  }
  auto then_g = Branch(*g, "then");
  ir::Value* h = then_g->AddNode("MatMul", {x, then_g->AddInitializer("W1", w1)}, {"h"}, "ffn.l1")->outputs[0];
  ir::Value* a = then_g->AddNode("Relu", {h}, {"a"}, "ffn.act")->outputs[0];
  ir::Value* w2 = then_g->AddInitializer("W2", test::RandomTensor({64, 16}, rng, 0.3f));
  then_g->outputs.push_back(then_g->AddNode("MatMul", {a, w2}, {"t_y"}, "ffn.l2")->outputs[0]);
  auto else_g = Branch(*g, "else");
  else_g->outputs.push_back(else_g->AddNode("Neg", {x}, {"e_y"}, "neg")->outputs[0]);
  ir::Node* ifn = g->AddNode("If", {cond}, {"y"}, "if");
  AddGraphAttr(ifn, "then_branch", then_g);
  AddGraphAttr(ifn, "else_branch", else_g);
  test::Output(*g, ifn->outputs[0], {3, 16});
  ir::Model m = test::SingleGraphModel(std::move(g));
  ir::Tensor xv = test::RandomTensor({3, 16}, rng);
  auto before = test::RunAsrc(*m.graphs[0].graph, {BoolScalar(true), xv});
  pass::PassContext* ctx = nullptr;
  passes::PrunePass p;
  CHECK(test::RunPass(p, m, {{"method", "structured"}, {"sparsity", 0.5}}, &ctx));
  CHECK(ctx->counters().at("ffn_pruned") == 1);
  CHECK(ctx->counters().at("hidden_units_removed") == 32);
  const ir::Graph& t = Sub(m, "then_branch");
  CHECK(InitializerRead(t, "MatMul", 1).shape() == ir::Shape{16, 32});
  auto after = test::RunAsrc(*m.graphs[0].graph, {BoolScalar(true), xv});
  CHECK(test::RelError(before[0], after[0]) < 1e-6);
}

TEST_CASE("quantize-int8: a weight tied across two graphs stays one int8 buffer, counted once") {
  std::mt19937_64 rng(5);
  const ir::Tensor w = test::RandomTensor({64, 32}, rng, 0.2f);
  std::vector<std::unique_ptr<ir::Graph>> gs;
  for (const char* name : {"decoder", "joiner"}) {
    auto g = std::make_unique<ir::Graph>(name);
    ir::Value* x = test::Input(*g, "x", ir::DType::Float32, {2, 64});
    ir::Value* y = g->AddNode("MatMul", {x, g->AddInitializer("W", w)}, {"y"}, "proj")->outputs[0];
    test::Output(*g, y, {2, 32});
    gs.push_back(std::move(g));
  }
  ir::Model m = test::DecoderJoinerModel(std::move(gs[0]), std::move(gs[1]));
  const ir::Graph& a = *m.graphs[0].graph;
  const ir::Graph& b = *m.graphs[1].graph;
  REQUIRE(m.BytesUnique() == static_cast<int64_t>(w.nbytes()));
  ir::Tensor x = test::RandomTensor({2, 64}, rng);
  auto ref = test::RunAsrc(a, {x});
  pass::PassContext* ctx = nullptr;
  passes::QuantizeInt8Pass q;
  CHECK(test::RunPass(q, m, {{"mode", "dynamic"}}, &ctx));
  CHECK(ctx->counters().at("matmul_integer") == 2);
  CHECK(ctx->counters().at("float_weight_bytes_quantized") == static_cast<int64_t>(w.nbytes()));
  // MatMulInteger(x_q, W_q, x_zp, W_zp): the weight, and its scales via the Mul, share buffers.
  const ir::Tensor& qa = InitializerRead(a, "MatMulInteger", 1);
  const ir::Tensor& qb = InitializerRead(b, "MatMulInteger", 1);
  CHECK(qa.dtype() == ir::DType::Uint8);
  CHECK(qa.SharesBufferWith(qb));
  CHECK(InitializerRead(a, "MatMulInteger", 3).SharesBufferWith(InitializerRead(b, "MatMulInteger", 3)));
  // Size accounting sees one int8 weight: the bundle is no bigger than one of its graphs.
  CHECK(m.BytesUnique() == ir::UniqueWeightBytes({&a}));
  CHECK(m.BytesUnique() == ir::UniqueWeightBytes({&b}));
  CHECK(m.BytesUnique() < static_cast<int64_t>(w.nbytes()) / 3);
  CHECK(test::RelError(ref[0], test::RunAsrc(b, {x})[0]) < 0.05);
  // And the tie survives a save and load (one region of shared_weights.bin).
  const std::string dir = test::TempDir("tied") + "/bundle";
  REQUIRE(onnx_io::SaveModel(m, dir).ok());
  auto back = onnx_io::LoadModel(dir);
  REQUIRE_MESSAGE(back.ok(), back.status().message());
  CHECK(InitializerRead(*back->graphs[0].graph, "MatMulInteger", 1)
            .SharesBufferWith(InitializerRead(*back->graphs[1].graph, "MatMulInteger", 1)));
  CHECK(back->BytesUnique() == m.BytesUnique());
  std::filesystem::remove_all(std::filesystem::path(dir).parent_path());
}

TEST_CASE("quantize-int8: embedding tied to the joiner's Gemm(transB) output layer stays tied (TAR)") {
  std::mt19937_64 rng(9);
  const int64_t V = 40, d = 16;
  const ir::Tensor e = test::RandomTensor({V, d}, rng, 0.5f);
  auto dec = std::make_unique<ir::Graph>("decoder");
  ir::Value* ids = test::Input(*dec, "ids", ir::DType::Int64, {3});
  ir::Value* emb = dec->AddNode("Gather", {dec->AddInitializer("E", e), ids}, {"emb"}, "embed")->outputs[0];
  test::Output(*dec, dec->AddNode("Neg", {emb}, {"out"}, "neg")->outputs[0], {3, d});  // a graph output stays float
  auto join = std::make_unique<ir::Graph>("joiner");
  ir::Value* x = test::Input(*join, "x", ir::DType::Float32, {2, d});
  ir::Node* gemm = join->AddNode("Gemm", {x, join->AddInitializer("E", e)}, {"logits"}, "output");
  gemm->set_attr_int("transB", 1);
  test::Output(*join, gemm->outputs[0], {2, V});
  ir::Model m = test::DecoderJoinerModel(std::move(dec), std::move(join));
  const ir::Graph& a = *m.graphs[0].graph;
  const ir::Graph& b = *m.graphs[1].graph;
  ir::Tensor idv = ir::Tensor::FromVector<int64_t>(ir::DType::Int64, {3}, {0, 17, 39});
  ir::Tensor xv = test::RandomTensor({2, d}, rng);
  auto ref_a = test::RunAsrc(a, {idv});
  auto ref_b = test::RunAsrc(b, {xv});
  pass::PassContext* ctx = nullptr;
  passes::QuantizeInt8Pass q;
  CHECK(test::RunPass(q, m, {{"mode", "dynamic"}}, &ctx));
  const auto& c = ctx->counters();
  CHECK(c.at("gather_int8") == 1);
  CHECK(c.at("gemm_weight_only") == 1);
  CHECK(c.at("tied_weight_dequantized") == 1);
  CHECK(c.count("gemm_integer") == 0);
  CHECK(c.at("float_weight_bytes_quantized") == static_cast<int64_t>(e.nbytes()));
  const ir::Tensor& table = InitializerRead(a, "Gather", 0);  // the int8 table (the first Gather)
  const ir::Tensor& dq = InitializerRead(b, "DequantizeLinear", 0);
  CHECK(table.dtype() == ir::DType::Int8);
  CHECK(table.SharesBufferWith(dq));
  CHECK(a.FindValue("E_scale")->initializer->SharesBufferWith(*b.FindValue("E_scale")->initializer));
  CHECK(m.BytesUnique() < static_cast<int64_t>(e.nbytes()) / 2);
  CHECK(test::RelError(ref_a[0], test::RunAsrc(a, {idv})[0]) < 0.02);
  CHECK(test::RelError(ref_b[0], test::RunAsrc(b, {xv})[0]) < 0.02);
}

TEST_CASE("prune magnitude: a weight tied across two graphs is zeroed once and stays one buffer") {
  std::mt19937_64 rng(13);
  const ir::Tensor w = test::RandomTensor({64, 32}, rng);
  std::vector<std::unique_ptr<ir::Graph>> gs;
  for (const char* name : {"decoder", "joiner"}) {
    auto g = std::make_unique<ir::Graph>(name);
    ir::Value* x = test::Input(*g, "x", ir::DType::Float32, {2, 64});
    test::Output(*g, g->AddNode("MatMul", {x, g->AddInitializer("W", w)}, {"y"}, "proj")->outputs[0], {2, 32});
    gs.push_back(std::move(g));
  }
  ir::Model m = test::DecoderJoinerModel(std::move(gs[0]), std::move(gs[1]));
  pass::PassContext* ctx = nullptr;
  passes::PrunePass p;
  CHECK(test::RunPass(p, m, {{"method", "magnitude"}, {"sparsity", 0.5}}, &ctx));
  CHECK(ctx->counters().at("weights_zeroed") == 64 * 32 / 2);
  CHECK(ctx->counters().at("weights_considered") == 64 * 32);
  const ir::Tensor& wa = InitializerRead(*m.graphs[0].graph, "MatMul", 1);
  CHECK(wa.SharesBufferWith(InitializerRead(*m.graphs[1].graph, "MatMul", 1)));
  CHECK(std::count(wa.data<float>(), wa.data<float>() + wa.numel(), 0.f) == 64 * 32 / 2);
  CHECK(m.BytesUnique() == static_cast<int64_t>(w.nbytes()));
}

TEST_CASE("driver: low-rank factorizes a rank-4 weight inside a Loop body; nearly exact; ORT agrees") {
  std::mt19937_64 rng(17);
  auto g = std::make_unique<ir::Graph>("loop");
  ir::Value* x = test::Input(*g, "x", ir::DType::Float32, {4, 64});
  ir::Value* trip = g->AddInitializer("trip", ir::Tensor::ScalarInt64(2));
  ir::Value* cond = g->AddInitializer("cond", BoolScalar(true));
  auto body = Branch(*g, "body");
  test::Input(*body, "iter", ir::DType::Int64, {});
  ir::Value* cin = test::Input(*body, "cond_in", ir::DType::Bool, {});
  ir::Value* acc = test::Input(*body, "acc", ir::DType::Float32, {4, 64});
  const ir::Tensor a = test::RandomTensor({64, 4}, rng, 0.5f), b = test::RandomTensor({4, 64}, rng, 0.5f);
  ir::Tensor w(ir::DType::Float32, {64, 64});
  for (int i = 0; i < 64; ++i) {
    for (int j = 0; j < 64; ++j) {
      for (int k = 0; k < 4; ++k) w.data<float>()[i * 64 + j] += a.data<float>()[i * 4 + k] * b.data<float>()[k * 64 + j];
    }
  }
  ir::Value* y = body->AddNode("MatMul", {acc, body->AddInitializer("W", w)}, {"y"}, "body.MatMul")->outputs[0];
  ir::Value* cout = body->AddNode("Identity", {cin}, {"cond_out"}, "body.cond")->outputs[0];
  cout->type = cin->type;
  body->outputs.push_back(cout);
  test::Output(*body, body->AddNode("Mul", {y, body->AddInitializer("s", ir::Tensor::Scalar(0.25f))}, {"acc_out"},
                                     "body.scale")->outputs[0], {4, 64});
  ir::Node* loop = g->AddNode("Loop", {trip, cond, x}, {"y_final"}, "loop");
  AddGraphAttr(loop, "body", body);
  test::Output(*g, loop->outputs[0], {4, 64});
  ir::Model m = test::SingleGraphModel(std::move(g));
  std::vector<ir::Tensor> in = {test::RandomTensor({4, 64}, rng)};
  auto ref = test::RunAsrc(*m.graphs[0].graph, in);
  pass::PassContext* ctx = nullptr;
  passes::LowRankPass p;
  CHECK(test::RunPass(p, m, {{"energy", 0.9999}, {"multiple_of", 1}, {"min_elements", 0}}, &ctx));
  CHECK(ctx->counters().at("factorized") == 1);
  CHECK(ctx->counters().at("params_after") == 4 * (64 + 64));
  const ir::Node* ln = m.graphs[0].graph->nodes().back();
  REQUIRE(ln->op_type == "Loop");
  CHECK(CountOps(*ln->attr("body")->g, "MatMul") == 2);
  auto out = test::RunAsrc(*m.graphs[0].graph, in);
  CHECK(test::RelError(ref[0], out[0]) < 1e-3);
  test::CheckOrt(m, in, out, 1e-4, "loop_lowrank");
}
