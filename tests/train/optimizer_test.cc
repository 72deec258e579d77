// lib/train's optimizer against torch.optim.AdamW + torch.nn.utils.clip_grad_norm_ over eight
// steps of a warmup-cosine schedule on the same tensors (tests/train/optim_ref.py), <= 1e-6
// relative per tensor; the schedules against their closed forms; bad input against clear errors.
// Without PyTorch the reference test fails when CI=true and is skipped with a message otherwise.
#include <unistd.h>

#include <cmath>
#include <fstream>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "train/optimizer.h"
#include "train/ref_util.h"

using asrc::ir::DType;
using asrc::ir::Tensor;
using namespace asrc::train;
using asrc::testing::RelDiff;

namespace {

Tensor FromJson(const nlohmann::json& values, const asrc::ir::Shape& shape) {
  Tensor t(DType::Float32, shape);
  REQUIRE(static_cast<int64_t>(values.size()) == t.numel());
  for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = values[i].get<float>();
  return t;
}

}  // namespace

TEST_CASE("AdamW and clipping match torch.optim.AdamW and clip_grad_norm_") {
  const std::string path = "/tmp/asrc_optim_ref_" + std::to_string(getpid()) + ".json";
  if (!asrc::testing::RunReference("/usr/bin/python3 " ASRC_SOURCE_DIR "/tests/train/optim_ref.py " + path, "PyTorch"))
    return;
  std::ifstream f(path);
  const nlohmann::json ref = nlohmann::json::parse(f);
  std::remove(path.c_str());
  std::vector<asrc::ir::Shape> shapes;
  std::vector<Tensor> params;
  for (size_t i = 0; i < ref["shapes"].size(); ++i) {
    shapes.push_back(ref["shapes"][i].get<asrc::ir::Shape>());
    params.push_back(FromJson(ref["init"][i], shapes.back()));
  }
  AdamWOptions o;
  o.beta1 = ref["beta1"];
  o.beta2 = ref["beta2"];
  o.eps = ref["eps"];
  o.weight_decay = ref["weight_decay"];
  AdamW adam(o);
  const auto& sc = ref["schedule"];
  const Schedule sched = Schedule::WarmupCosine(sc["peak"], sc["warmup"], sc["total"], sc["min_lr"]);
  int64_t step = 0;
  for (const auto& st : ref["steps"]) {
    ++step;
    CAPTURE(step);
    std::vector<Tensor> grads;
    std::vector<Tensor*> gp, pp;
    std::vector<const Tensor*> gc;
    for (size_t i = 0; i < params.size(); ++i) grads.push_back(FromJson(st["grads"][i], shapes[i]));
    for (size_t i = 0; i < params.size(); ++i) {
      gp.push_back(&grads[i]);
      gc.push_back(&grads[i]);
      pp.push_back(&params[i]);
    }
    auto norm = ClipGradNorm(gp, ref["max_norm"]);
    REQUIRE(norm.ok());
    CHECK(std::abs(norm.value() - st["norm"].get<double>()) <= 1e-6 * st["norm"].get<double>());
    const double lr = st["lr"];
    CHECK(std::abs(sched.At(step) - lr) <= 1e-12 * lr);  // our schedule gives the rates torch was set to
    REQUIRE(adam.Step(pp, gc, sched.At(step)).ok());
  }
  CHECK(adam.steps() == step);
  for (size_t i = 0; i < params.size(); ++i) {
    CAPTURE(i);
    const double dp = RelDiff(params[i], FromJson(ref["final"][i], shapes[i]));
    const double dm = RelDiff(adam.exp_avg()[i], FromJson(ref["exp_avg"][i], shapes[i]));
    const double dv = RelDiff(adam.exp_avg_sq()[i], FromJson(ref["exp_avg_sq"][i], shapes[i]));
    MESSAGE("tensor " << i << ": params " << dp << ", exp_avg " << dm << ", exp_avg_sq " << dv);
    CHECK(dp <= 1e-6);
    CHECK(dm <= 1e-6);
    CHECK(dv <= 1e-6);
  }
}

TEST_CASE("schedules follow their closed forms") {
  const Schedule wc = Schedule::WarmupCosine(1e-3, 100, 1100, 1e-5);
  CHECK(wc.At(1) == doctest::Approx(1e-5).epsilon(1e-12));
  CHECK(wc.At(50) == doctest::Approx(5e-4).epsilon(1e-12));
  CHECK(wc.At(100) == doctest::Approx(1e-3).epsilon(1e-12));
  CHECK(wc.At(600) == doctest::Approx((1e-3 + 1e-5) / 2).epsilon(1e-12));  // half-way down the cosine
  CHECK(wc.At(350) == doctest::Approx(1e-5 + (1e-3 - 1e-5) * (1 + std::cos(M_PI / 4)) / 2).epsilon(1e-12));
  CHECK(wc.At(1100) == doctest::Approx(1e-5).epsilon(1e-12));
  CHECK(wc.At(5000) == doctest::Approx(1e-5).epsilon(1e-12));  // held at the floor
  for (int64_t s = 101; s < 1100; ++s) CHECK(wc.At(s + 1) <= wc.At(s));
  const Schedule noam = Schedule::Noam(2.0, 256, 4000);
  CHECK(noam.At(4000) == doctest::Approx(2.0 / std::sqrt(256.0 * 4000.0)).epsilon(1e-12));  // the peak
  CHECK(noam.At(1000) == doctest::Approx(2.0 / 16.0 * 1000 * std::pow(4000.0, -1.5)).epsilon(1e-12));
  CHECK(noam.At(16000) == doctest::Approx(noam.At(4000) / 2).epsilon(1e-12));  // s^-1/2 decay
  CHECK(Schedule::Constant(0.1).At(77) == 0.1);
  CHECK(wc.ToString() == "warmup-cosine(lr=0.001,warmup=100,total=1100,min_lr=1e-05)");
}

TEST_CASE("optimizer: bad input is a clear error and changes nothing") {
  Tensor p(DType::Float32, {3}), g(DType::Float32, {4}), q(DType::Float32, {3});
  AdamW adam;
  auto st = adam.Step({&p}, {&g}, 1e-3);
  REQUIRE(!st.ok());
  CHECK(st.message() == "AdamW: parameter 0 [3] does not match its gradient [4]");
  CHECK(adam.steps() == 0);
  Tensor alias = p;  // the same buffer twice (a tied weight passed once per initializer)
  st = adam.Step({&p, &alias}, {&q, &q}, 1e-3);
  REQUIRE(!st.ok());
  CHECK(st.message().find("shares its buffer") != std::string::npos);
  REQUIRE(adam.Step({&p}, {&q}, 1e-3).ok());
  st = adam.Step({&p, &q}, {&q, &q}, 1e-3);
  CHECK(st.message() == "AdamW: 2 parameters, but the optimizer state holds 1");
  Tensor i64(DType::Int64, {3});
  CHECK(adam.Step({&i64}, {&q}, 1e-3).message() == "AdamW: parameter 0 is int64, not float32");
  CHECK(!ClipGradNorm({&q}, 0.0).ok());
}

TEST_CASE("GradNorm measures without touching; ClipGradNorm scales only above max_norm") {
  Tensor a(DType::Float32, {2}), b(DType::Float32, {1});
  a.data<float>()[0] = 3.f;
  a.data<float>()[1] = 0.f;
  b.data<float>()[0] = 4.f;
  auto norm = GradNorm({&a, &b});
  REQUIRE(norm.ok());
  CHECK(norm.value() == 5.0);
  CHECK(a.data<float>()[0] == 3.f);  // untouched
  CHECK(b.data<float>()[0] == 4.f);
  auto clipped = ClipGradNorm({&a, &b}, 10.0);  // under the limit: unchanged, same norm
  REQUIRE(clipped.ok());
  CHECK(clipped.value() == 5.0);
  CHECK(a.data<float>()[0] == 3.f);
  clipped = ClipGradNorm({&a, &b}, 1.0);  // over: scaled to norm 1 (the torch coefficient)
  REQUIRE(clipped.ok());
  CHECK(clipped.value() == 5.0);
  CHECK(a.data<float>()[0] == doctest::Approx(3.0 / (5.0 + 1e-6)).epsilon(1e-6));
  CHECK(GradNorm({&a, &b}).value() == doctest::Approx(1.0).epsilon(1e-6));
  Tensor i64(DType::Int64, {3});
  CHECK(GradNorm({&a, &i64}).status().message() == "GradNorm: gradient 1 is int64, not float32");
}
