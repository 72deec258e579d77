// The distill pass on the tiny bundle (tests/asr/tiny_bundle.h: offline encoder, stateless
// decoder with context_size in model.json, joiner): it trains (loss goes down, weights change),
// distills from the pipeline's teacher, and refuses bad input before any work.
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>

#include <doctest/doctest.h>

#include "../asr/tiny_bundle.h"
#include "pass/pass.h"
#include "passes/distill.h"
#include "train/data.h"
#include "train/transducer.h"

namespace asrc {
namespace {

struct Data {
  std::string dir, manifest;
  Data() {
    dir = "/tmp/asrc_test_distill_" + std::to_string(getpid());
    std::string cmd = "mkdir -p " + dir + " && sox -D -n -r 16000 -c 1 -b 16 " + dir +
                      "/a.wav synth 0.4 sine 300 && sox -D -n -r 16000 -c 1 -b 16 " + dir +
                      "/b.wav synth 0.3 sine 900";
    REQUIRE(std::system(cmd.c_str()) == 0);
    manifest = dir + "/m.jsonl";
    std::ofstream f(manifest);
    f << R"({"id": "u1", "audio_filepath": "a.wav", "text": "a b", "token_ids": [1, 2], "split": "train"})" << "\n";
    f << R"({"id": "u2", "audio_filepath": "b.wav", "text": "c", "token_ids": [3, 1, 4], "split": "train"})" << "\n";
    f << R"({"id": "u3", "audio_filepath": "a.wav", "text": "d", "token_ids": [4], "split": "dev"})" << "\n";
  }
  ~Data() { std::system(("rm -rf " + dir).c_str()); }
};

Result<bool> RunDistill(ir::Model& m, const ir::Model* teacher, nlohmann::json given) {
  passes::DistillPass p;
  ASRC_ASSIGN_OR_RETURN(nlohmann::json opts, pass::ValidateOptions(p.options(), given, "$.passes[0].options"));
  pass::PassContext ctx(opts, 1);
  ctx.teacher = teacher;
  return p.Run(m, ctx);
}

double RnntLoss(const ir::Model& m, const std::string& manifest) {
  train::TransducerTrainOptions o;
  auto t = train::TransducerTrainer::Create(m, nullptr, o);
  REQUIRE(t.ok());
  auto cfg = asr::BundleConfig::FromModel(m);
  auto utts = train::LoadUtterances(manifest, "train", cfg->frontend, cfg->tokens);
  REQUIRE_MESSAGE(utts.ok(), utts.status().message());
  std::vector<const train::Utterance*> p;
  for (auto& u : *utts) p.push_back(&u);
  auto l = (*t)->Loss(p);
  REQUIRE(l.ok());
  return *l;
}

TEST_CASE("distill trains the tiny bundle (rnnt) and distills from the pipeline's teacher (kd)") {
  Data d;
  ir::Model m = testing::TinyBundle();
  m.config["frontend"]["dither"] = 0.0;  // the same features every time
  const ir::Model teacher = m;
  const double before = RnntLoss(m, d.manifest);
  auto r = RunDistill(m, &teacher, {{"data", d.manifest}, {"loss", "rnnt"}, {"steps", 20}, {"lr", 0.3},
                                    {"warmup", 0}, {"log_every", 0}});
  REQUIRE_MESSAGE(r.ok(), r.status().message());
  CHECK(*r);
  const double after = RnntLoss(m, d.manifest);
  MESSAGE("rnnt loss/token " << before << " -> " << after);
  CHECK(after < 0.7 * before);
  // The teacher (a copy) kept its weights: the pass wrote new tensors.
  const ir::Tensor& w0 = *teacher.find("joiner")->graph->FindValue("W")->initializer;
  const ir::Tensor& w1 = *m.find("joiner")->graph->FindValue("W")->initializer;
  CHECK(!w0.SharesBufferWith(w1));
  CHECK(w0.data<float>()[1] == 8.f);
  CHECK(w1.data<float>()[1] != 8.f);

  // With augmentation and a checkpoint, choosing the best weights by dev loss.
  {
    ir::Model s = teacher;
    const std::string ckpt = d.dir + "/distill.ckpt";
    auto a = RunDistill(s, &teacher, {{"data", d.manifest}, {"loss", "rnnt"}, {"steps", 6}, {"lr", 0.3}, {"warmup", 0},
                                      {"spec_augment", true}, {"tempo", "0.9,1.1"}, {"checkpoint", ckpt},
                                      {"dev_split", "dev"}, {"best_by", "loss"}, {"log_every", 0}});
    REQUIRE_MESSAGE(a.ok(), a.status().message());
    CHECK(std::ifstream(ckpt).good());
  }

  // KD (full and collapsed) from the pipeline's teacher, with a dev split.
  for (const char* form : {"full", "collapsed"}) {
    ir::Model s = teacher;
    auto k = RunDistill(s, &teacher, {{"data", d.manifest}, {"loss", "rnnt+kd"}, {"kd_form", form}, {"steps", 3},
                                      {"dev_split", "dev"}, {"log_every", 0}});
    REQUIRE_MESSAGE(k.ok(), k.status().message());
  }
}

TEST_CASE("distill keeps a tied weight tied: one parameter, one buffer, bytes counted once") {
  // As tar-decoder ties them: the decoder's embedding table IS the joiner's output weight.
  Data d;
  ir::Model m = testing::TinyBundle();
  m.config["frontend"]["dither"] = 0.0;
  ir::Value* W = m.find("joiner")->graph->FindValue("W");
  m.find("decoder")->graph->FindValue("embed")->initializer = *W->initializer;
  const ir::Tensor w0 = W->initializer->Clone();
  const int64_t bytes = m.BytesUnique();
  const ir::Model teacher = testing::TinyBundle();

  train::TransducerTrainOptions o;
  auto t = train::TransducerTrainer::Create(m, nullptr, o);
  REQUIRE(t.ok());
  auto cfg = asr::BundleConfig::FromModel(m);
  auto utts = train::LoadUtterances(d.manifest, "train", cfg->frontend, cfg->tokens);
  REQUIRE_MESSAGE(utts.ok(), utts.status().message());
  REQUIRE((*t)->Step({&(*utts)[0]}, "b0").ok());
  const auto& names = (*t)->trainable_names();
  const size_t e = std::find(names.begin(), names.end(), "decoder/embed") - names.begin();
  const size_t j = std::find(names.begin(), names.end(), "joiner/W") - names.begin();
  REQUIRE(e < names.size());
  REQUIRE(j < names.size());
  CHECK((*t)->tied_to(std::max(e, j)) == std::min(e, j));
  CHECK((*t)->tied_to(std::min(e, j)) == std::min(e, j));

  auto r = RunDistill(m, &teacher, {{"data", d.manifest}, {"loss", "rnnt+kd"}, {"steps", 6}, {"lr", 0.1},
                                    {"warmup", 0}, {"log_every", 0}});
  REQUIRE_MESSAGE(r.ok(), r.status().message());
  CHECK(*r);
  const ir::Tensor& we = *m.find("decoder")->graph->FindValue("embed")->initializer;
  const ir::Tensor& wj = *m.find("joiner")->graph->FindValue("W")->initializer;
  CHECK(we.SharesBufferWith(wj));
  CHECK(we.raw() == wj.raw());
  CHECK(wj.data<float>()[1] != w0.data<float>()[1]);  // trained, not left as it was
  CHECK(m.BytesUnique() == bytes);
}

TEST_CASE("distill refuses bad input before any work, and stops on a NaN loss") {
  Data d;
  ir::Model m = testing::TinyBundle();
  const ir::Model original = m;
  const ir::Tensor w = *m.find("joiner")->graph->FindValue("W")->initializer;

  ir::Model other = m;  // a teacher with one more token
  other.config["decoding"]["vocab_size"] = 6;
  other.tokens.push_back("\xE2\x96\x81" "e 5");
  auto v = RunDistill(m, &other, {{"data", d.manifest}, {"loss", "kd"}});
  REQUIRE(!v.ok());
  CHECK(v.status().message().find("vocabulary") != std::string::npos);

  auto bad = RunDistill(m, &original, {{"data", d.manifest}, {"stepz", 3}});
  REQUIRE(!bad.ok());
  CHECK(bad.status().message().find("$.passes[0].options") != std::string::npos);
  CHECK(bad.status().message().find("stepz") != std::string::npos);

  auto nockpt = RunDistill(m, &original, {{"data", d.manifest}, {"loss", "rnnt"}, {"resume", true}});
  REQUIRE(!nockpt.ok());
  CHECK(nockpt.status().message().find("'checkpoint'") != std::string::npos);
  auto tempo = RunDistill(m, &original, {{"data", d.manifest}, {"loss", "rnnt"}, {"tempo", "0.9,fast"}});
  REQUIRE(!tempo.ok());
  CHECK(tempo.status().message().find("option 'tempo'") != std::string::npos);

  auto none = RunDistill(m, &original, {{"loss", "rnnt"}});
  REQUIRE(!none.ok());
  CHECK(none.status().message().find("'data'") != std::string::npos);

  std::ofstream(d.manifest, std::ios::app) << R"({"id": "u9", "audio_filepath": "missing.wav", "text": "a", "split": "train"})" << "\n";
  auto missing = RunDistill(m, &original, {{"data", d.manifest}, {"loss", "rnnt"}});
  REQUIRE(!missing.ok());
  CHECK(missing.status().message().find("missing.wav") != std::string::npos);
  CHECK(m.find("joiner")->graph->FindValue("W")->initializer->SharesBufferWith(w));

  // A NaN weight: the loss is NaN at the first step; the error names step and batch.
  std::ofstream(d.manifest) << R"({"id": "u1", "audio_filepath": "a.wav", "text": "a", "token_ids": [1]})" << "\n";
  ir::Tensor nan = w.Clone();
  nan.data<float>()[0] = std::nanf("");
  m.find("joiner")->graph->FindValue("W")->initializer = nan;
  auto n = RunDistill(m, &original, {{"data", d.manifest}, {"split", ""}, {"loss", "rnnt"}, {"steps", 2}});
  REQUIRE(!n.ok());
  MESSAGE(n.status().message());
  CHECK(n.status().message().find("step 1 (batch") != std::string::npos);
  CHECK(n.status().message().find("u1") != std::string::npos);
  CHECK(n.status().message().find("nan") != std::string::npos);
  CHECK(m.find("joiner")->graph->FindValue("W")->initializer->SharesBufferWith(nan));
}

}  // namespace
}  // namespace asrc
