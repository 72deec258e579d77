// tar-decoder (passes/tar_decoder.h) on a tiny transducer bundle built here: structure, the
// decoder's numerics against a PyTorch reference of the same equations (tar_reference.py), the
// tied matrix as one buffer (in memory, in size accounting, on disk, after quantize-int8), the
// tied embedding reduction, ONNX Runtime on every output graph, and bad input.
#include <filesystem>

#include "ir/model.h"
#include "onnx/onnx_io.h"
#include "pass_test_util.h"
#include "passes/quantize_int8.h"
#include "passes/tar_decoder.h"

namespace asrc {
namespace {

constexpr int64_t kV = 12, kH = 8, kDd = 6, kEnc = 5;

ir::Node* AddGemm(ir::Graph& g, ir::Value* x, const std::string& name, ir::Tensor w, ir::Tensor b, bool trans_b,
                  const std::string& out = "") {
  ir::Node* n = g.AddNode("Gemm", {x, g.AddInitializer(name + ".weight", std::move(w)),
                                    g.AddInitializer(name + ".bias", std::move(b))},
                           {out.empty() ? name + "_out" : out}, name);
  n->set_attr_int("transB", trans_b ? 1 : 0);
  return n;
}

// decoder: y [N, 1] -> Gather(embedding [V, Dd]) -> ReduceSum over the label axis -> decoder_out.
// joiner: Gemm(encoder_out) + Gemm(decoder_out) -> `act` -> output layer [V, H] (transB) or [H, V]
// (act "MatMul": Identity, Tanh, then the output layer as MatMul [H, V] + Add of a bias).
ir::Model TinyBundle(std::mt19937_64& rng, bool out_trans_b = true, const std::string& act = "Tanh",
                     const ir::Tensor* out_weight = nullptr) {
  auto dec = std::make_unique<ir::Graph>("decoder");
  ir::Value* y = test::Input(*dec, "y", ir::DType::Int64, {3, 1});
  ir::Value* e = dec->AddNode("Gather", {dec->AddInitializer("dec.embed", test::RandomTensor({kV, kDd}, rng, 0.5f)), y},
                               {"emb"}, "embed")->outputs[0];
  ir::Node* rs = dec->AddNode("ReduceSum", {e, dec->AddInitializer("axes", ir::Tensor::FromVector<int64_t>(ir::DType::Int64, {1}, {1}))},
                               {"decoder_out"}, "sum");
  rs->set_attr_int("keepdims", 0);
  test::Output(*dec, rs->outputs[0], {3, kDd});

  auto join = std::make_unique<ir::Graph>("joiner");
  ir::Value* enc = test::Input(*join, "encoder_out", ir::DType::Float32, {3, kEnc});
  ir::Value* din = test::Input(*join, "decoder_out", ir::DType::Float32, {3, kDd});
  ir::Node* pe = AddGemm(*join, enc, "j.enc_proj", test::RandomTensor({kH, kEnc}, rng, 0.5f), test::RandomTensor({kH}, rng, 0.1f), true);
  ir::Node* pd = AddGemm(*join, din, "j.dec_proj", test::RandomTensor({kH, kDd}, rng, 0.5f), test::RandomTensor({kH}, rng, 0.1f), true);
  ir::Value* s = join->AddNode("Add", {pe->outputs[0], pd->outputs[0]}, {"sum"}, "add")->outputs[0];
  ir::Value* a = join->AddNode(act == "MatMul" ? "Identity" : act, {s}, {"act"}, "act")->outputs[0];
  ir::Tensor wo = out_weight ? *out_weight : test::RandomTensor(out_trans_b ? ir::Shape{kV, kH} : ir::Shape{kH, kV}, rng, 0.5f);
  if (act == "MatMul") {  // the output layer as MatMul [H, V] + Add(bias), activation Tanh
    ir::Value* t = join->AddNode("Tanh", {a}, {"act2"}, "act2")->outputs[0];
    ir::Value* mm = join->AddNode("MatMul", {t, join->AddInitializer("j.out.weight", wo)}, {"mm"}, "j.out")->outputs[0];
    ir::Node* add = join->AddNode("Add", {mm, join->AddInitializer("j.out.bias", test::RandomTensor({kV}, rng, 0.1f))},
                                   {"logit"}, "j.out.bias_add");
    test::Output(*join, add->outputs[0], {3, kV});
  } else {
    ir::Node* out = AddGemm(*join, a, "j.out", wo, test::RandomTensor({kV}, rng, 0.1f), out_trans_b, "logit");
    test::Output(*join, out->outputs[0], {3, kV});
  }

  ir::Model m = test::DecoderJoinerModel(std::move(dec), std::move(join));
  m.config["decoding"] = {{"blank_id", 0}, {"vocab_size", kV}, {"decoder_type", "lstm"}, {"context_size", 1},
                          {"decoder_state", nlohmann::json::array({{{"input", "h"}, {"output", "h_out"}}})}};
  return m;
}

// One graph of a bundle as a model of its own (for RunOrt, which runs graphs[0]).
ir::Model Only(const ir::Model& m, const std::string& role) {
  ir::Model one;
  one.graphs.push_back(*m.find(role));
  one.graphs[0].role = "model";
  one.graphs[0].file = "model.onnx";
  return one;
}

const ir::Node* FirstOp(const ir::Graph& g, const std::string& op) {
  for (const ir::Node* n : g.nodes())
    if (n->op_type == op) return n;
  return nullptr;
}

ir::Tensor Labels(std::vector<int64_t> v, int64_t context) {
  const int64_t n = static_cast<int64_t>(v.size()) / context;
  return ir::Tensor::FromVector<int64_t>(ir::DType::Int64, {n, context}, v);
}

}  // namespace

TEST_CASE("tar-decoder: structure, tied buffer counted once, PyTorch reference, ONNX Runtime") {
  for (bool post : {false, true}) {
    INFO("post " << post);
    std::mt19937_64 rng(21);
    ir::Model m = TinyBundle(rng);
    const ir::Tensor joiner_out = *m.graph("joiner")->FindValue("j.out.weight")->initializer;
    pass::PassContext* ctx = nullptr;
    passes::TarDecoderPass p;
    CHECK(test::RunPass(p, m, {{"context", 3}, {"heads", 2}, {"post", post}}, &ctx));
    const ir::Graph& dec = *m.graph("decoder");
    const ir::Graph& join = *m.graph("joiner");
    // Structure: one input y [N, 3] int64, one output decoder_out [N, H]; no LSTM, no state.
    REQUIRE(dec.inputs.size() == 1);
    CHECK(dec.inputs[0]->name == "y");
    CHECK(dec.inputs[0]->type.dims[1].value == 3);
    REQUIRE(dec.outputs.size() == 1);
    CHECK(dec.outputs[0]->name == "decoder_out");
    CHECK(test::CountOps(dec, "Gather") == 1);
    CHECK(test::CountOps(dec, "LayerNormalization") == (post ? 1 : 0));
    CHECK(dec.FindValue("tar.position_vectors")->initializer->shape() == ir::Shape{2, 3, kH});
    // Tied: the decoder's table is the joiner's output weight, the same buffer.
    const ir::Tensor& table = *dec.FindValue("tar.tied_embedding")->initializer;
    const ir::Tensor& wout = *join.FindValue("j.out.weight")->initializer;
    CHECK(table.SharesBufferWith(joiner_out));
    CHECK(wout.SharesBufferWith(table));
    CHECK(m.BytesUnique() == ir::GraphBytes(dec) + ir::GraphBytes(join) - static_cast<int64_t>(table.nbytes()));
    CHECK(m.ParamsTotal() == dec.NumParams() + join.NumParams() - table.numel());
    CHECK(ctx->counters().at("tied_elements") == kV * kH);
    // model.json
    CHECK(m.config["decoding"]["decoder_type"] == "stateless");
    CHECK(m.config["decoding"]["context_size"] == 3);
    CHECK(!m.config["decoding"].contains("decoder_state"));
    // The joiner's decoder projection is the identity (a square [H, H]).
    const ir::Tensor& dp = *join.FindValue("j.dec_proj.weight")->initializer;
    CHECK(dp.shape() == ir::Shape{kH, kH});
    CHECK(dp.data<float>()[0] == 1.f);
    CHECK(dp.data<float>()[1] == 0.f);

    ir::Tensor y = Labels({0, 0, 0, 0, 7, 3, 11, 5, 2}, 3);
    auto ours = test::RunAsrc(dec, {y});
    REQUIRE(ours[0].shape() == ir::Shape{3, kH});
    // The saved bundle: the tied matrix is written once, and reloads as one buffer.
    const std::string dir = test::TempDir(post ? "tar_post" : "tar") + "/bundle";
    REQUIRE(onnx_io::SaveModel(m, dir).ok());
    CHECK(std::filesystem::file_size(dir + "/shared_weights.bin") >= table.nbytes());
    auto back = onnx_io::LoadModel(dir);
    REQUIRE_MESSAGE(back.ok(), back.status().message());
    CHECK(back->graph("decoder")->FindValue("tar.tied_embedding")->initializer->SharesBufferWith(
        *back->graph("joiner")->FindValue("j.out.weight")->initializer));
    CHECK(back->BytesUnique() == m.BytesUnique());
    // PyTorch, head by head, from the saved decoder.onnx.
    if (test::HaveReference(test::TorchAvailable(), test::kTorch)) {
      REQUIRE(onnx_io::SaveTensorFile(y, "y", dir + "/y.pb").ok());
      const std::string cmd = "/usr/bin/python3 " + test::SourcePath("tests/passes/tar_reference.py") + " " + dir +
                              "/decoder.onnx " + dir + "/y.pb " + dir + "/ref.pb";
      REQUIRE(std::system(cmd.c_str()) == 0);
      auto ref = onnx_io::LoadTensorFile(dir + "/ref.pb");
      REQUIRE(ref.ok());
      const double err = test::RelError(*ref, ours[0]);
      MESSAGE("TAR decoder vs PyTorch (post " << post << "): relative error " << err);
      CHECK(err < 1e-5);
      test::RequireChecks(1, test::kTorch);
    }
    std::filesystem::remove_all(std::filesystem::path(dir).parent_path());
    // ONNX Runtime runs both output graphs.
    test::CheckOrt(Only(m, "decoder"), {y}, ours, 1e-5, "tar_dec");
    ir::Tensor enc = test::RandomTensor({3, kEnc}, rng);
    test::CheckOrt(Only(m, "joiner"), {enc, ours[0]}, test::RunAsrc(join, {enc, ours[0]}), 1e-5, "tar_join");
  }
}

TEST_CASE("tar-decoder: transposed output layer and init=embedding tie one [V, H] buffer") {
  std::mt19937_64 rng(5);
  ir::Model m = TinyBundle(rng, /*out_trans_b=*/false);
  ir::Tensor x = test::RandomTensor({3, kH}, rng);
  const ir::Graph& join = *m.graph("joiner");
  passes::TarDecoderPass p;
  CHECK(test::RunPass(p, m, {}));
  const ir::Node* out = nullptr;
  for (const ir::Node* n : join.nodes()) out = n->op_type == "Gemm" && n->outputs[0]->name == "logit" ? n : out;
  REQUIRE(out);
  CHECK(out->attr_int("transB", 0) == 1);
  CHECK(out->input(1)->initializer->shape() == ir::Shape{kV, kH});
  CHECK(out->input(1)->initializer->SharesBufferWith(*m.graph("decoder")->FindValue("tar.tied_embedding")->initializer));

  // A MatMul [H, V] output layer reads the tied [V, H] matrix through a Transpose; its output is unchanged.
  std::mt19937_64 rng3(7);
  ir::Model m3 = TinyBundle(rng3, false, "MatMul");
  ir::Tensor enc = test::RandomTensor({3, kEnc}, rng3);
  const ir::Tensor w3 = *m3.graph("joiner")->FindValue("j.out.weight")->initializer;
  // decoder_out = 0 leaves the decoder bias alone on the decoder side, before and after.
  auto j_before = test::RunAsrc(*m3.graph("joiner"), {enc, ir::Tensor(ir::DType::Float32, {3, kDd})});
  CHECK(test::RunPass(p, m3, {}));
  const ir::Graph& j3 = *m3.graph("joiner");
  const ir::Node* tr = FirstOp(j3, "Transpose");
  REQUIRE(tr);
  CHECK(tr->input(0)->initializer->SharesBufferWith(*m3.graph("decoder")->FindValue("tar.tied_embedding")->initializer));
  for (int64_t h = 0; h < kH; ++h)
    for (int64_t v = 0; v < kV; ++v) CHECK(tr->input(0)->initializer->data<float>()[v * kH + h] == w3.data<float>()[h * kV + v]);
  CHECK(test::RelError(j_before[0], test::RunAsrc(j3, {enc, ir::Tensor(ir::DType::Float32, {3, kH})})[0]) < 1e-6);
  auto d3 = test::RunAsrc(*m3.graph("decoder"), {Labels({0, 0, 1, 2, 3, 4}, 2)});
  test::CheckOrt(Only(m3, "joiner"), {enc, d3[0]}, test::RunAsrc(j3, {enc, d3[0]}), 1e-5, "tar_matmul_join");

  // init=embedding: the old embedding [V, H] becomes the tied matrix, in both graphs.
  std::mt19937_64 rng2(6);
  ir::Model m2 = TinyBundle(rng2);
  auto& dec2 = *m2.graph("decoder");
  ir::Node* gather = const_cast<ir::Node*>(FirstOp(dec2, "Gather"));
  const ir::Tensor emb = test::RandomTensor({kV, kH}, rng2);
  dec2.set_input(gather, 0, dec2.AddInitializer("dec.embed_h", emb));
  CHECK(test::RunPass(p, m2, {{"init", "embedding"}}));
  const ir::Tensor& w2 = *m2.graph("joiner")->FindValue("j.out.weight")->initializer;
  CHECK(test::BitEqual(w2, emb));
  CHECK(w2.SharesBufferWith(*m2.graph("decoder")->FindValue("tar.tied_embedding")->initializer));
}

TEST_CASE("tar-decoder: dim shrinks the tied matrix and the joiner's hidden width together") {
  // A rank-4 output layer and a linear activation: the reduction to 4 is exact, so with no
  // decoder contribution (decoder_out = 0 before and after) the joiner's logits are unchanged.
  std::mt19937_64 rng(8);
  const ir::Tensor a = test::RandomTensor({kV, 4}, rng), b = test::RandomTensor({4, kH}, rng);
  ir::Tensor low(ir::DType::Float32, {kV, kH});
  for (int64_t i = 0; i < kV; ++i)
    for (int64_t j = 0; j < kH; ++j)
      for (int64_t k = 0; k < 4; ++k) low.data<float>()[i * kH + j] += a.data<float>()[i * 4 + k] * b.data<float>()[k * kH + j];
  ir::Model m = TinyBundle(rng, true, "Identity", &low);
  ir::Tensor enc = test::RandomTensor({3, kEnc}, rng);
  auto before = test::RunAsrc(*m.graph("joiner"), {enc, ir::Tensor(ir::DType::Float32, {3, kDd})});
  pass::PassContext* ctx = nullptr;
  passes::TarDecoderPass p;
  CHECK(test::RunPass(p, m, {{"dim", 4}}, &ctx));
  const ir::Graph& join = *m.graph("joiner");
  const ir::Tensor& tied = *m.graph("decoder")->FindValue("tar.tied_embedding")->initializer;
  CHECK(tied.shape() == ir::Shape{kV, 4});
  CHECK(join.FindValue("j.out.weight")->initializer->SharesBufferWith(tied));
  CHECK(join.FindValue("j.enc_proj.weight")->initializer->shape() == ir::Shape{4, kEnc});
  CHECK(join.FindValue("j.dec_proj.weight")->initializer->shape() == ir::Shape{4, 4});
  CHECK(ctx->counters().at("joiner_hidden_reduced") == kH - 4);
  auto after = test::RunAsrc(join, {enc, ir::Tensor(ir::DType::Float32, {3, 4})});
  CHECK(test::RelError(before[0], after[0]) < 1e-4);
  ir::Tensor y = Labels({0, 0, 4, 9, 1, 1}, 2);
  auto d = test::RunAsrc(*m.graph("decoder"), {y});
  CHECK(d[0].shape() == ir::Shape{3, 4});
  test::CheckOrt(Only(m, "decoder"), {y}, d, 1e-5, "tar_dim_dec");
  test::CheckOrt(Only(m, "joiner"), {enc, d[0]}, test::RunAsrc(join, {enc, d[0]}), 1e-5, "tar_dim_join");
}

namespace {

// tar-decoder, then dynamic quantize-int8 (min_elements 16) on `m`: the decoder's table becomes
// an int8 Gather, both graphs stay within 5% of the float TAR bundle on seeded inputs, and ONNX
// Runtime agrees with asrc on both. Returns the float TAR bundle's unique bytes.
int64_t TarThenInt8(ir::Model& m, std::mt19937_64& rng, const std::string& tag) {
  passes::TarDecoderPass p;
  CHECK(test::RunPass(p, m, {}));
  ir::Tensor y = Labels({0, 0, 3, 5, 11, 2}, 2);
  ir::Tensor enc = test::RandomTensor({3, kEnc}, rng);
  auto d_ref = test::RunAsrc(*m.graph("decoder"), {y});
  auto j_ref = test::RunAsrc(*m.graph("joiner"), {enc, d_ref[0]});
  const int64_t float_bytes = m.BytesUnique();
  pass::PassContext* ctx = nullptr;
  passes::QuantizeInt8Pass q;
  CHECK(test::RunPass(q, m, {{"mode", "dynamic"}, {"min_elements", 16}}, &ctx));
  CHECK(ctx->counters().at("gather_int8") == 1);
  auto d = test::RunAsrc(*m.graph("decoder"), {y});
  CHECK(test::RelError(d_ref[0], d[0]) < 0.05);
  test::CheckOrt(Only(m, "decoder"), {y}, d, 1e-5, tag + "_dec");
  auto j = test::RunAsrc(*m.graph("joiner"), {enc, d[0]});
  CHECK(test::RelError(j_ref[0], j[0]) < 0.05);
  test::CheckOrt(Only(m, "joiner"), {enc, d[0]}, j, 1e-4, tag + "_join");
  return float_bytes;
}

}  // namespace

TEST_CASE("tar-decoder + quantize-int8: the tied matrix stays one int8 buffer, ONNX Runtime runs both") {
  std::mt19937_64 rng(12);
  ir::Model m = TinyBundle(rng);
  const int64_t float_bytes = TarThenInt8(m, rng, "tar_q");
  const ir::Graph& dec = *m.graph("decoder");
  const ir::Graph& join = *m.graph("joiner");
  const ir::Tensor& table = *FirstOp(dec, "Gather")->input(0)->initializer;
  const ir::Tensor& dq = *FirstOp(join, "DequantizeLinear")->input(0)->initializer;
  CHECK(table.dtype() == ir::DType::Int8);
  CHECK(table.SharesBufferWith(dq));
  // Counted once: what the two graphs hold in common is at least the int8 table.
  CHECK(ir::GraphBytes(dec) + ir::GraphBytes(join) - m.BytesUnique() >= static_cast<int64_t>(table.nbytes()));
  CHECK(m.BytesUnique() < float_bytes);
}

TEST_CASE("tar-decoder + quantize-int8 on a MatMul output layer: runs; the tie is float in the joiner") {
  // The joiner reads the tied matrix through a Transpose, which quantize-int8 does not see through:
  // the decoder's Gather gets an int8 table of its own and the joiner keeps the float matrix
  // (a documented limitation; Gemm output layers, as exported by PyTorch for nn.Linear on 2-D
  // inputs, stay one int8 buffer: the test above).
  std::mt19937_64 rng(17);
  ir::Model m = TinyBundle(rng, false, "MatMul");
  TarThenInt8(m, rng, "tar_mq");
  const ir::Node* tr = FirstOp(*m.graph("joiner"), "Transpose");
  REQUIRE(tr);
  CHECK(tr->input(0)->initializer->dtype() == ir::DType::Float32);
}

TEST_CASE("tar-decoder: bad input is an error naming the graph, and the model is untouched") {
  std::mt19937_64 rng(3);
  passes::TarDecoderPass p;
  auto run = [&](ir::Model& m, nlohmann::json opts) {
    auto o = pass::ValidateOptions(p.options(), opts, "$.options");
    REQUIRE(o.ok());
    pass::PassContext ctx(o.value(), 0);
    const uint64_t before = ir::ContentHash(m);
    auto r = p.Run(m, ctx);
    CHECK(ir::ContentHash(m) == before);
    REQUIRE(!r.ok());
    return r.status().message();
  };
  // A joiner whose output is a LogSoftmax, not an output layer it can tie to.
  ir::Model m = TinyBundle(rng);
  ir::Graph& j = *m.graph("joiner");
  ir::Value* logit = j.outputs[0];
  ir::Node* ls = j.AddNode("LogSoftmax", {logit}, {"log_probs"}, "log_softmax");
  j.outputs[0] = ls->outputs[0];
  ls->outputs[0]->type = logit->type;
  std::string msg = run(m, nlohmann::json::object());
  CHECK(msg.find("graph 'joiner'") != std::string::npos);
  CHECK(msg.find("no output layer to tie") != std::string::npos);
  // dim wider than the joiner; init=embedding with an embedding of the wrong width; no joiner.
  ir::Model m2 = TinyBundle(rng);
  CHECK(run(m2, {{"dim", kH + 1}}).find("graph 'joiner'") != std::string::npos);
  CHECK(run(m2, {{"init", "embedding"}}).find("graph 'decoder'") != std::string::npos);
  m2.graphs.pop_back();
  CHECK(run(m2, nlohmann::json::object()).find("'joiner'") != std::string::npos);
}

}  // namespace asrc
