// Training a whole bundle (train/transducer.h) on the demo teacher: the composed graph's logits
// equal the bundle's graphs run one by one as the recognizer runs them (causal chunks with their
// caches, the non-causal encoder, the decoder step by step, the joiner per (t, u)); gradients
// against central finite differences; a few steps lower the loss.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>

#include "asr/stream.h"
#include "onnx/onnx_io.h"
#include "runtime/session.h"
#include "train/data.h"
#include "train/joiner_rows.h"
#include "train/transducer.h"

namespace asrc {
namespace {

const std::string kBundle = ASRC_SOURCE_DIR "/experiments/teacher/bundle";
const std::string kManifest = "/work/shared/data/cathy/manifest.jsonl";

// cathy lives outside the repository (README); without it these checks have nothing to run on.
bool HaveData() {
  if (std::ifstream(kManifest)) return true;
  MESSAGE("skipped: " << kManifest << " is not here");
  return false;
}

double Secs(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

struct Fixture {
  ir::Model model;
  asr::BundleConfig cfg;
  std::vector<train::Utterance> utts;
};

Fixture& Teacher() {
  static Fixture f = [] {
    Fixture x;
    auto m = onnx_io::LoadModel(kBundle);
    REQUIRE_MESSAGE(m.ok(), m.status().message());
    x.model = std::move(m).value();
    auto c = asr::BundleConfig::FromModel(x.model);
    REQUIRE(c.ok());
    x.cfg = *c;
    auto u = train::LoadUtterances(kManifest, "dev", x.cfg.frontend, x.cfg.tokens, 3);
    REQUIRE_MESSAGE(u.ok(), u.status().message());
    x.utts = std::move(u).value();
    return x;
  }();
  return f;
}

// The lattice logits [T, U+1, V] the recognizer's pieces give for `enc` [T, D] and the labels.
std::vector<float> ReferenceLattice(asr::GraphScorer& scorer, const std::vector<float>& enc, int64_t T, int64_t D,
                                    const std::vector<int32_t>& labels, int64_t U) {
  const int V = scorer.vocab_size();
  std::vector<std::shared_ptr<const asr::DecoderOut>> dec;
  std::vector<int> ys;
  std::shared_ptr<const asr::DecoderOut> parent;
  for (int64_t u = 0; u <= U; ++u) {
    auto d = scorer.Decode(ys, parent.get());
    REQUIRE(d.ok());
    dec.push_back(*d);
    parent = *d;
    ys.push_back(u < static_cast<int64_t>(labels.size()) ? labels[u] : 1);
  }
  std::vector<float> out(T * (U + 1) * V);
  for (int64_t t = 0; t < T; ++t) {
    std::vector<const asr::DecoderOut*> ds;
    for (auto& d : dec) ds.push_back(d.get());
    std::vector<float> logits;
    REQUIRE(scorer.Join(enc.data() + t * D, D, ds, &logits).ok());
    std::copy(logits.begin(), logits.end(), out.begin() + t * (U + 1) * V);
  }
  return out;
}

double MaxAbsDiff(const ir::Tensor& a, const std::vector<float>& b) {
  REQUIRE(a.numel() == static_cast<int64_t>(b.size()));
  double m = 0;
  for (size_t i = 0; i < b.size(); ++i) m = std::max(m, std::abs(double(a.data<float>()[i]) - b[i]));
  return m;
}

TEST_CASE("composed teacher logits equal the bundle's graphs run one by one") {
  if (!HaveData()) return;
  Fixture& f = Teacher();
  const train::Utterance& u = f.utts[0];
  train::TransducerTrainOptions opt;
  auto t0 = std::chrono::steady_clock::now();
  auto tr = train::TransducerTrainer::Create(f.model, nullptr, opt);
  REQUIRE_MESSAGE(tr.ok(), tr.status().message());
  auto logits = (*tr)->Logits(u);
  REQUIRE_MESSAGE(logits.ok(), logits.status().message());
  std::printf("compose+plan+run: %.2f s (%lld frames, %zu labels)\n", Secs(t0), (long long)u.frames, u.labels.size());
  REQUIRE(logits->size() == 2);

  asr::RecognizerOptions ro;
  auto rec = asr::Recognizer::Create(f.model, ro);
  REQUIRE(rec.ok());
  int64_t D = 0;
  auto causal = (*rec)->CausalEncode(u.features, u.frames, 0, &D);
  REQUIRE(causal.ok());
  const int64_t T = static_cast<int64_t>(causal->size()) / D;
  // Look-ahead: the non-causal encoder on the whole causal output.
  auto nc = runtime::Session::Create(*f.model.graph("encoder_noncausal"), 17, {});
  REQUIRE(nc.ok());
  ir::Tensor x = ir::Tensor::FromVector(ir::DType::Float32, {1, T, D}, *causal);
  ir::Tensor xl = ir::Tensor::FromVector(ir::DType::Int64, {1}, std::vector<int64_t>{T});
  std::vector<ir::Tensor> out;
  REQUIRE((*nc)->Run({x, xl}, &out).ok());
  std::vector<float> la(out[0].data<float>(), out[0].data<float>() + T * D);

  auto scorer = asr::GraphScorer::Create(f.model, f.cfg, {}, {});
  REQUIRE(scorer.ok());
  const int64_t U = train::ShapeOf(f.cfg, u, opt.label_pad).labels;
  CHECK((*logits)[0].dim(1) == T);
  double dc = MaxAbsDiff((*logits)[0], ReferenceLattice(**scorer, *causal, T, D, u.labels, U));
  double dl = MaxAbsDiff((*logits)[1], ReferenceLattice(**scorer, la, T, D, u.labels, U));
  std::printf("max |composed - bundle| causal %.3g lookahead %.3g (T=%lld U=%lld)\n", dc, dl, (long long)T, (long long)U);
  CHECK(dc < 1e-3);
  CHECK(dl < 1e-3);
  // The teacher's joiner factors (train/joiner_rows.h): its projections run on the T and U+1
  // rows, nothing in the composed joiners expands rows to pairs.
  auto composed = train::ComposeTransducer(f.model, f.cfg, train::ShapeOf(f.cfg, u, opt.label_pad), nullptr);
  REQUIRE(composed.ok());
  int joiner_expands = 0;
  for (ir::Node* n : (*composed)->nodes()) joiner_expands += n->op_type == "Expand" && n->name.rfind("joiner.", 0) == 0;
  CHECK(joiner_expands == 0);

  // Padding the chunk count (fewer distinct graphs) runs chunks past the audio whose frames are
  // cut off: the logits stay the same.
  train::TransducerTrainOptions padded;
  padded.chunk_pad = 4;
  auto tp = train::TransducerTrainer::Create(f.model, nullptr, padded);
  REQUIRE(tp.ok());
  CHECK(train::ShapeOf(f.cfg, u, 8, 4).chunks % 4 == 0);
  CHECK(train::ShapeOf(f.cfg, u, 8, 4).chunks > train::ShapeOf(f.cfg, u, 8, 1).chunks);
  auto lp = (*tp)->Logits(u);
  REQUIRE(lp.ok());
  for (int k = 0; k < 2; ++k) {
    std::vector<float> a((*logits)[k].data<float>(), (*logits)[k].data<float>() + (*logits)[k].numel());
    CHECK(MaxAbsDiff((*lp)[k], a) == 0);
  }
}

// A joiner built in code: out(tanh(enc W1^T + b1 + relu(dec W2^T + b2))), with a Softmax over
// the encoder rows (axis 0, not row-wise) when `cross_rows`, with the two sides joined by a Concat
// (not a binary elementwise op: the pairs are expanded) instead of the Add when `concat`.
std::unique_ptr<ir::Graph> TinyJoiner(bool cross_rows, bool concat = false) {
  auto g = std::make_unique<ir::Graph>("joiner");
  uint32_t seed = 7;
  auto rnd = [&](ir::Shape s) {
    ir::Tensor t(ir::DType::Float32, s);
    for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = float((seed = seed * 1664525u + 1013904223u) >> 8) / (1 << 24) - 0.5f;
    return t;
  };
  ir::Value* e = g->AddValue("encoder_out");
  ir::Value* d = g->AddValue("decoder_out");
  g->inputs = {e, d};
  auto gemm = [&](ir::Value* x, int64_t in, int64_t out, const std::string& n) {
    ir::Node* m = g->AddNode("Gemm", {x, g->AddInitializer(n + ".w", rnd({out, in})), g->AddInitializer(n + ".b", rnd({out}))},
                              {n}, n);
    m->set_attr_int("transB", 1);
    return m->outputs[0];
  };
  ir::Value* pe = gemm(e, 5, 6, "enc_proj");
  if (cross_rows) pe = g->AddNode("Softmax", {pe}, {"sm"}, "sm")->outputs[0], pe->producer->set_attr_int("axis", 0);
  ir::Value* pd = g->AddNode("Relu", {gemm(d, 4, 6, "dec_proj")}, {"relu"}, "relu")->outputs[0];
  ir::Node* join = g->AddNode(concat ? "Concat" : "Add", {pe, pd}, {"sum"}, "sum");
  if (concat) join->set_attr_int("axis", 1);
  ir::Value* h = g->AddNode("Tanh", {join->outputs[0]}, {"h"}, "h")->outputs[0];
  g->outputs = {gemm(h, concat ? 12 : 6, 3, "logit")};
  return g;
}

TEST_CASE("FactorJoiner: projections on the rows, the joint on the grid, same logits as on expanded pairs") {
  for (bool concat : {false, true}) {
    CAPTURE(concat);
    auto j = TinyJoiner(false, concat);
    const int64_t B = 2, T = 3, U1 = 4;
    auto f = train::FactorJoiner(*j, B);
    REQUIRE_MESSAGE(f.ok(), f.status().message());
    REQUIRE(*f);
    // Structure: the projections read the inputs; Expand only where the joint is no broadcast.
    int expands = 0;
    for (ir::Node* n : (*f)->nodes()) expands += n->op_type == "Expand";
    CHECK(expands == (concat ? 2 : 0));
    CHECK((*f)->FindValue("enc_proj")->producer->inputs[0] == (*f)->FindValue("encoder_out"));
    // Numerics: row (b * T + t) * U1 + u of the factored graph = the joiner on the pair (t, u)
    // of utterance b.
    ir::Tensor enc(ir::DType::Float32, {B * T, 5}), dec(ir::DType::Float32, {B * U1, 4});
    for (int64_t i = 0; i < enc.numel(); ++i) enc.data<float>()[i] = std::sin(0.7 * i);
    for (int64_t i = 0; i < dec.numel(); ++i) dec.data<float>()[i] = std::cos(1.3 * i);
    ir::Tensor pe(ir::DType::Float32, {B * T * U1, 5}), pd(ir::DType::Float32, {B * T * U1, 4});
    for (int64_t b = 0; b < B; ++b)
      for (int64_t t = 0; t < T; ++t)
        for (int64_t u = 0; u < U1; ++u) {
          const int64_t r = (b * T + t) * U1 + u;
          std::copy_n(enc.data<float>() + (b * T + t) * 5, 5, pe.data<float>() + r * 5);
          std::copy_n(dec.data<float>() + (b * U1 + u) * 4, 4, pd.data<float>() + r * 4);
        }
    auto sf = runtime::Session::Create(**f, 17, {});
    auto sj = runtime::Session::Create(*j, 17, {});
    REQUIRE_MESSAGE(sf.ok(), sf.status().message());
    REQUIRE(sj.ok());
    std::vector<ir::Tensor> of, oj;
    auto st = (*sf)->Run({enc, dec}, &of);
    REQUIRE_MESSAGE(st.ok(), st.message());
    REQUIRE((*sj)->Run({pe, pd}, &oj).ok());
    REQUIRE(of[0].shape() == oj[0].shape());
    std::vector<float> ref(oj[0].data<float>(), oj[0].data<float>() + oj[0].numel());
    CHECK(MaxAbsDiff(of[0], ref) < 1e-6);
  }
  // A node that mixes encoder rows (Softmax over axis 0) does not factor: null, no error.
  auto cross = train::FactorJoiner(*TinyJoiner(true));
  REQUIRE(cross.ok());
  CHECK(!*cross);
}

TEST_CASE("composed teacher gradients match central finite differences") {
  if (!HaveData()) return;
  Fixture& f = Teacher();
  const train::Utterance& u = f.utts[1];
  auto tr = train::TransducerTrainer::Create(f.model, nullptr, {});
  REQUIRE(tr.ok());
  auto g = (*tr)->Gradients(u);
  REQUIRE_MESSAGE(g.ok(), g.status().message());
  const auto& names = (*tr)->trainable_names();
  // One weight per graph role, and one of the causal encoder's last layer (cache-chained).
  const std::vector<std::string> picks = {"encoder_causal/enc.layers.0.conv.dw.weight",
                                          "encoder_causal/enc.layers.6.att.q.bias", "encoder_noncausal/enc.layers.1.ff2.l1.bias",
                                          "joiner/j.out.bias", "joiner/j.enc_proj.bias", "joiner/j.dec_proj.weight"};
  int checked = 0;
  bool lstm = false;  // and the decoder's first LSTM weight (unrolled over the labels)
  for (size_t k = 0; k < names.size(); ++k) {
    bool pick = std::find(picks.begin(), picks.end(), names[k]) != picks.end();
    if (!pick && !lstm && names[k].rfind("decoder/onnx::LSTM", 0) == 0) pick = lstm = true;
    if (!pick) continue;
    const ir::Tensor& gk = (*g)[1 + k];
    int64_t best = 0;
    for (int64_t i = 0; i < gk.numel(); ++i)
      if (std::abs(gk.data<float>()[i]) > std::abs(gk.data<float>()[best])) best = i;
    float* w = (*tr)->weights()[k].data<float>();
    const float w0 = w[best], eps = 2e-3f;
    w[best] = w0 + eps;
    auto lp = (*tr)->Gradients(u);
    w[best] = w0 - eps;
    auto lm = (*tr)->Gradients(u);
    w[best] = w0;
    REQUIRE(lp.ok());
    REQUIRE(lm.ok());
    const double fd = (double((*lp)[0].data<float>()[0]) - (*lm)[0].data<float>()[0]) / (2 * eps);
    const double an = gk.data<float>()[best];
    std::printf("%-50s [%lld] analytic %.5g  fd %.5g\n", names[k].c_str(), (long long)best, an, fd);
    CHECK(std::abs(fd - an) <= 0.03 * std::abs(an) + 0.02);
    ++checked;
  }
  CHECK(checked == 7);
}

TEST_CASE("a batch of utterances in one composed graph: the loss and gradients of one at a time") {
  if (!HaveData()) return;
  Fixture& f = Teacher();
  std::vector<const train::Utterance*> utts = {&f.utts[0], &f.utts[1], &f.utts[2]};
  std::printf("batch frames/labels:");
  for (auto* u : utts) std::printf(" %lld/%zu", (long long)u->frames, u->labels.size());
  std::printf("\n");
  train::TransducerTrainOptions one, three;
  one.max_batch = 1;
  three.max_batch = 3;
  auto t1 = train::TransducerTrainer::Create(f.model, nullptr, one);
  auto t3 = train::TransducerTrainer::Create(f.model, nullptr, three);
  REQUIRE(t1.ok());
  REQUIRE(t3.ok());
  auto g1 = (*t1)->Gradients(utts);
  auto g3 = (*t3)->Gradients(utts);
  REQUIRE_MESSAGE(g1.ok(), g1.status().message());
  REQUIRE_MESSAGE(g3.ok(), g3.status().message());
  CHECK((*t1)->plans_built() == 3);
  CHECK((*t3)->plans_built() == 1);  // one graph of batch 3
  REQUIRE(g1->size() == g3->size());
  // Attention key biases have a true gradient of 0 (softmax ignores a shift of all scores):
  // theirs is float noise, the rounding residue of sums of terms as large as the model's
  // gradients (1e-8 to 2e-7 here, depending on every kernel's summation order), hence a floor
  // that scales with the largest gradient.
  double largest = 1;
  for (size_t k = 1; k < g1->size(); ++k)
    for (int64_t i = 0; i < (*g1)[k].numel(); ++i) largest = std::max(largest, std::abs(double((*g1)[k].data<float>()[i])));
  double worst = 0;
  for (size_t k = 0; k < g1->size(); ++k) {
    double diff = 0, norm = 0;
    for (int64_t i = 0; i < (*g1)[k].numel(); ++i) {
      diff = std::max(diff, std::abs(double((*g1)[k].data<float>()[i]) - (*g3)[k].data<float>()[i]));
      norm = std::max(norm, std::abs(double((*g1)[k].data<float>()[i])));
    }
    worst = std::max(worst, diff / std::max(norm, 1e-4 * largest));
  }
  std::printf("loss one at a time %.6f, batched %.6f; worst max|diff| / max(max|g|, 1e-4 * %.3g) over %zu tensors %.3g\n",
              (*g1)[0].data<float>()[0], (*g3)[0].data<float>()[0], largest, g1->size() - 1, worst);
  CHECK(std::abs((*g1)[0].data<float>()[0] - (*g3)[0].data<float>()[0]) <= 1e-4 * std::abs((*g1)[0].data<float>()[0]));
  CHECK(worst < 1e-3);
}

TEST_CASE("KD against itself: the teacher's composed lattices line up with the student's (KL = 0)") {
  if (!HaveData()) return;
  Fixture& f = Teacher();
  train::TransducerTrainOptions opt;
  opt.loss.rnnt = false;
  opt.loss.kd = true;
  auto tr = train::TransducerTrainer::Create(f.model, &f.model, opt);
  REQUIRE_MESSAGE(tr.ok(), tr.status().message());
  auto g = (*tr)->Gradients(f.utts[2]);
  REQUIRE_MESSAGE(g.ok(), g.status().message());
  const double kl = (*g)[0].data<float>()[0];
  std::printf("KL(teacher || teacher) summed over both lattices: %.3g\n", kl);
  CHECK(std::abs(kl) < 1e-3);
  // The same in one batched graph (teacher batched too) over utterances of unequal lengths.
  auto gb = (*tr)->Gradients(std::vector<const train::Utterance*>{&f.utts[0], &f.utts[2]});
  REQUIRE_MESSAGE(gb.ok(), gb.status().message());
  std::printf("KL(teacher || teacher), batch of 2: %.3g\n", (*gb)[0].data<float>()[0]);
  CHECK(std::abs((*gb)[0].data<float>()[0]) < 1e-3);
  // A teacher with another vocabulary is refused before anything runs.
  ir::Model other = f.model;
  other.tokens.back() = "something_else";
  auto bad = train::TransducerTrainer::Create(f.model, &other, opt);
  REQUIRE(!bad.ok());
  CHECK(bad.status().message().find("vocabulary") != std::string::npos);
}

TEST_CASE("a few fine-tuning steps lower the teacher's loss on their batch") {
  if (!HaveData()) return;
  Fixture& f = Teacher();
  train::TransducerTrainOptions opt;
  opt.schedule = train::Schedule::Constant(3e-4);
  opt.adamw.weight_decay = 0;
  auto tr = train::TransducerTrainer::Create(f.model, nullptr, opt);
  REQUIRE(tr.ok());
  std::vector<const train::Utterance*> batch = {&f.utts[0], &f.utts[2]};
  auto before = (*tr)->Loss(batch);
  REQUIRE(before.ok());
  for (int s = 0; s < 3; ++s) {
    auto st = (*tr)->Step(batch, "dev0+dev2");
    REQUIRE_MESSAGE(st.ok(), st.status().message());
    std::printf("step %lld loss/token %.4f grad norm %.3g\n", (long long)st->step, st->loss, st->grad_norm);
  }
  auto after = (*tr)->Loss(batch);
  REQUIRE(after.ok());
  std::printf("loss/token before %.4f after %.4f\n", *before, *after);
  CHECK(*after < 0.9 * *before);
  // The trained weights go back into the bundle's own graphs.
  ir::Model copy = f.model;
  REQUIRE((*tr)->CopyWeightsTo(copy).ok());
  const auto& w = (*tr)->weights()[0];
  std::string role, name;
  REQUIRE(train::SplitWeightName((*tr)->trainable_names()[0], &role, &name));
  const ir::Tensor& in_bundle = *copy.graph(role)->FindValue(name)->initializer;
  CHECK(std::equal(w.data<float>(), w.data<float>() + w.numel(), in_bundle.data<float>()));
}

}  // namespace
}  // namespace asrc
