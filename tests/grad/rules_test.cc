// Every gradient rule against central finite differences of the forward graph (float32 through
// runtime::Session; max |analytic - numeric| / max |numeric| <= 2e-3 per weight with step 5e-3,
// the largest seen being 1.9e-4), broadcasting, accumulation over several consumers, the errors.
#include "grad_util.h"

using namespace asrc;
using namespace asrc::testing;  // grad_util.h: nets, seeded inputs, gradient checks

namespace {
ir::Value* Attr(ir::Node* n, const char* name, int64_t v) {
  n->set_attr_int(name, v);
  return n->outputs[0];
}
ir::Value* AttrInts(ir::Node* n, const char* name, std::vector<int64_t> v) {
  n->set_attr_ints(name, std::move(v));
  return n->outputs[0];
}
}  // namespace

TEST_CASE("MatMul: 2-D, batched against a 2-D weight, batched both, broadcast batch") {
  RequireGradients("2-D", [](Net& n) {
    return n.Op("MatMul", {n.Input("x", Rand({3, 4}, 1)), n.Weight("w", Rand({4, 5}, 2))});
  });
  RequireGradients("3-D x 2-D", [](Net& n) {
    return n.Op("MatMul", {n.Input("x", Rand({2, 3, 4}, 1)), n.Weight("w", Rand({4, 5}, 2))});
  });
  RequireGradients("3-D x 3-D", [](Net& n) {
    return n.Op("MatMul", {n.Weight("a", Rand({2, 3, 4}, 1)), n.Weight("b", Rand({2, 4, 5}, 2))});
  });
  RequireGradients("2-D x 3-D broadcast", [](Net& n) {
    return n.Op("MatMul", {n.Weight("a", Rand({3, 4}, 1)), n.Weight("b", Rand({2, 4, 5}, 2))});
  });
  RequireGradients("[2,1,3,4] x [3,4,5] broadcast", [](Net& n) {
    return n.Op("MatMul", {n.Weight("a", Rand({2, 1, 3, 4}, 1)), n.Weight("b", Rand({3, 4, 5}, 2))});
  });
}

TEST_CASE("Gemm: transposes, alpha, beta, bias shapes") {
  for (int ta = 0; ta < 2; ++ta)
    for (int tb = 0; tb < 2; ++tb)
      for (const ir::Shape& cs : {ir::Shape{5}, ir::Shape{1, 5}, ir::Shape{3, 5}, ir::Shape{3, 1}}) {
        RequireGradients("Gemm transA=" + std::to_string(ta) + " transB=" + std::to_string(tb) + " C" +
                             ir::ShapeStr(cs),
                         [&](Net& n) {
                           ir::Value* a = n.Weight("a", Rand(ta ? ir::Shape{4, 3} : ir::Shape{3, 4}, 1));
                           ir::Value* b = n.Weight("b", Rand(tb ? ir::Shape{5, 4} : ir::Shape{4, 5}, 2));
                           ir::Node* g = n.Node("Gemm", {a, b, n.Weight("c", Rand(cs, 3))});
                           g->set_attr_int("transA", ta);
                           g->set_attr_int("transB", tb);
                           g->set_attr_float("alpha", 0.7f);
                           g->set_attr_float("beta", 1.3f);
                           return g->outputs[0];
                         });
      }
}

TEST_CASE("Add/Sub/Mul/Div/Pow with broadcasting") {
  struct Case { ir::Shape a, b; };
  std::vector<Case> cases = {{{2, 3, 4}, {2, 3, 4}}, {{2, 3, 4}, {4}}, {{2, 3, 4}, {3, 1}},
                             {{2, 3, 4}, {}}, {{1, 3, 1}, {2, 1, 4}}, {{4}, {2, 3, 4}}};
  for (const char* op : {"Add", "Sub", "Mul", "Div", "Pow"})
    for (const Case& c : cases)
      RequireGradients(std::string(op) + " " + ir::ShapeStr(c.a) + " " + ir::ShapeStr(c.b), [&](Net& n) {
        // Positive operands keep Div and Pow (and Pow's log) smooth.
        return n.Op(op, {n.Weight("a", Rand(c.a, 1, 0.5f, 2.f)), n.Weight("b", Rand(c.b, 2, 0.5f, 2.f))});
      });
  RequireGradients("Pow by a constant exponent", [](Net& n) {
    return n.Op("Pow", {n.Weight("a", Rand({2, 3}, 1, 0.5f, 2.f)), n.Const(ir::Tensor::Scalar(3.f))});
  });
  RequireGradients("Sum of three (one broadcast)", [](Net& n) {
    return n.Op("Sum", {n.Weight("a", Rand({2, 3}, 1)), n.Weight("b", Rand({3}, 2)), n.Weight("c", Rand({2, 3}, 3))});
  });
}

TEST_CASE("unary ops") {
  struct Case { const char* op; const char* domain; float lo, hi; };
  // Relu away from its kink; Log, Sqrt and Reciprocal on positive inputs.
  std::vector<Case> cases = {{"Neg", "", -1, 1},     {"Relu", "", -1, 1},    {"Sigmoid", "", -2, 2},
                             {"Tanh", "", -2, 2},    {"Silu", "ai.asrc", -2, 2}, {"Exp", "", -1, 1},
                             {"Log", "", 0.5, 2},    {"Sqrt", "", 0.5, 2},   {"Erf", "", -1.5, 1.5},
                             {"Reciprocal", "", 0.5, 2}, {"Identity", "", -1, 1}, {"Dropout", "", -1, 1}};
  for (const Case& c : cases)
    RequireGradients(c.op, [&](Net& n) {
      ir::Tensor x = Rand({3, 7}, 5, c.lo, c.hi);
      if (std::string(c.op) == "Relu")
        for (int64_t i = 0; i < x.numel(); ++i)
          if (std::abs(x.data<float>()[i]) < 0.05f) x.data<float>()[i] = 0.3f;
      return n.Op(c.op, {n.Weight("x", x)}, c.domain);
    });
  RequireGradients("Cast float32 -> float32", [](Net& n) {
    return Attr(n.Node("Cast", {n.Weight("x", Rand({4}, 1))}), "to", 1);
  });
}

// A training-mode mask changes from run to run, so no finite differences: within one run the
// gradient must be R * mask / (1 - ratio) for loss = sum(Y * R), and Y = x * mask / (1 - ratio).
TEST_CASE("Dropout in training mode reuses the forward's mask") {
  Net n(false);
  ir::Tensor x = Rand({10, 20}, 1), r = Rand({10, 20}, 2);
  ir::Tensor on(ir::DType::Bool, {});
  on.data<bool>()[0] = true;
  ir::Node* d = n.Node("Dropout", {n.Weight("x", x), n.Const(ir::Tensor::Scalar(0.3f)), n.Const(on)}, 2);
  d->set_attr_int("seed", 7);
  ir::Value* loss = n.Op("ReduceSum", {n.Op("Mul", {d->outputs[0], n.Const(r)})});
  n.g.outputs = {loss, d->outputs[0], d->outputs[1]};
  auto gg = grad::BuildGradient(n.g, loss->name, {"x"});
  REQUIRE(gg.ok());
  auto s = runtime::Session::Create(n.g, 17);
  REQUIRE(s.ok());
  std::vector<ir::Tensor> first;
  for (int run = 0; run < 2; ++run) {
    auto out = (*s)->Run(n.feeds);
    REQUIRE(out.ok());
    const ir::Tensor &y = (*out)[1], &mask = (*out)[2], &dx = (*out)[3];
    int64_t kept = 0;
    for (int64_t i = 0; i < x.numel(); ++i) {
      bool m = mask.data<bool>()[i];
      kept += m;
      CHECK(y.data<float>()[i] == doctest::Approx(m ? x.data<float>()[i] / 0.7f : 0.f));
      CHECK(dx.data<float>()[i] == doctest::Approx(m ? r.data<float>()[i] / 0.7f : 0.f));
    }
    CHECK(kept > 110);  // 200 elements kept with probability 0.7
    CHECK(kept < 170);
    if (run == 0) first = *out;
    else CHECK(std::memcmp(first[2].raw(), mask.raw(), mask.nbytes()) != 0);  // a new mask each step
  }
}

TEST_CASE("Softmax and LogSoftmax over the last and a middle axis") {
  for (const char* op : {"Softmax", "LogSoftmax"})
    for (int64_t axis : {-1, 1})
      RequireGradients(std::string(op) + " axis " + std::to_string(axis), [&](Net& n) {
        return Attr(n.Node(op, {n.Weight("x", Rand({2, 3, 5}, 7, -2, 2))}), "axis", axis);
      });
}

TEST_CASE("LayerNormalization: scale and bias, one and two normalized axes") {
  for (int64_t axis : {-1, -2, 1})
    RequireGradients("axis " + std::to_string(axis), [&](Net& n) {
      ir::Shape norm = axis == -1 ? ir::Shape{5} : ir::Shape{3, 5};
      ir::Value* x = n.Op("Mul", {n.Input("x", Rand({2, 3, 5}, 1, -2, 2), true), n.Weight("s", Rand({2, 3, 5}, 4))});
      ir::Node* ln = n.Node("LayerNormalization", {x, n.Weight("scale", Rand(norm, 2)), n.Weight("bias", Rand(norm, 3))});
      return Attr(ln, "axis", axis);
    });
}

TEST_CASE("data movement: Transpose, Reshape, Flatten, Squeeze, Unsqueeze, Expand") {
  RequireGradients("Transpose", [](Net& n) {
    return AttrInts(n.Node("Transpose", {n.Weight("x", Rand({2, 3, 4}, 1))}), "perm", {2, 0, 1});
  });
  RequireGradients("Transpose default", [](Net& n) { return n.Op("Transpose", {n.Weight("x", Rand({2, 3, 4}, 1))}); });
  RequireGradients("Reshape", [](Net& n) {
    return n.Op("Reshape", {n.Weight("x", Rand({2, 3, 4}, 1)), n.Const(Ints({4, -1}))});
  });
  RequireGradients("Flatten", [](Net& n) { return n.Op("Flatten", {n.Weight("x", Rand({2, 3, 4}, 1))}); });
  RequireGradients("Squeeze + Unsqueeze", [](Net& n) {
    ir::Value* s = n.Op("Squeeze", {n.Weight("x", Rand({2, 1, 4}, 1)), n.Const(Ints({1}))});
    return n.Op("Unsqueeze", {s, n.Const(Ints({0}))});
  });
  RequireGradients("Expand", [](Net& n) {
    return n.Op("Expand", {n.Weight("x", Rand({3, 1}, 1)), n.Const(Ints({2, 3, 4}))});
  });
}

TEST_CASE("Concat, Split, Slice, Pad") {
  RequireGradients("Concat of weights (static extents)", [](Net& n) {
    return Attr(n.Node("Concat", {n.Weight("a", Rand({2, 3}, 1)), n.Weight("b", Rand({2, 5}, 2))}), "axis", 1);
  });
  RequireGradients("Concat of computed values (extents read at run time)", [](Net& n) {
    ir::Value* a = n.Op("Tanh", {n.Weight("a", Rand({2, 3}, 1))});
    ir::Value* b = n.Op("Tanh", {n.Weight("b", Rand({4, 3}, 2))});
    return Attr(n.Node("Concat", {a, b}), "axis", -2);
  });
  RequireGradients("Split, second part unused", [](Net& n) {
    ir::Node* sp = n.Node("Split", {n.Weight("x", Rand({2, 7}, 1)), n.Const(Ints({3, 4}))}, 2);
    sp->set_attr_int("axis", 1);
    return sp->outputs[0];
  });
  RequireGradients("Split, both parts used", [](Net& n) {
    ir::Node* sp = n.Node("Split", {n.Weight("x", Rand({6, 2}, 1)), n.Const(Ints({2, 4}))}, 2);
    ir::Value* a = n.Op("ReduceSum", {sp->outputs[0], n.Const(Ints({0}))});
    ir::Value* b = n.Op("ReduceSum", {sp->outputs[1], n.Const(Ints({0}))});
    return n.Op("Mul", {a, b});
  });
  RequireGradients("Slice with steps and negative indices", [](Net& n) {
    return n.Op("Slice", {n.Weight("x", Rand({4, 9}, 1)), n.Const(Ints({1, -1})), n.Const(Ints({4, 0})),
                          n.Const(Ints({0, 1})), n.Const(Ints({2, -3}))});
  });
  RequireGradients("Slice of middle rows (contiguous innermost rows)", [](Net& n) {
    return n.Op("Slice", {n.Weight("x", Rand({3, 4, 6}, 1)), n.Const(Ints({1})), n.Const(Ints({3})), n.Const(Ints({1}))});
  });
  RequireGradients("Pad", [](Net& n) {
    return n.Op("Pad", {n.Weight("x", Rand({2, 3}, 1)), n.Const(Ints({1, 0, 0, 2}))});
  });
  RequireGradients("Pad cropping (negative pads), pads computed at run time", [](Net& n) {
    ir::Value* pads = n.Op("Add", {n.Const(Ints({-1, 2, 1, -2})), n.Const(Ints({0, 0, 0, 0}))});
    return n.Op("Pad", {n.Weight("x", Rand({3, 5}, 1)), pads});
  });
}

TEST_CASE("Gather (embedding, repeated indices), Where, reductions") {
  RequireGradients("Gather axis 0", [](Net& n) {
    ir::Value* idx = n.Input("idx", Ints({2, 0, 2, 4, -1, 2}, {2, 3}));
    return n.Op("Gather", {n.Weight("emb", Rand({5, 4}, 1)), idx});
  });
  RequireGradients("Gather axis 1", [](Net& n) {
    ir::Value* idx = n.Input("idx", Ints({1, 1, 0}));
    return Attr(n.Node("Gather", {n.Weight("w", Rand({2, 3, 2}, 1)), idx}), "axis", 1);
  });
  RequireGradients("Where with broadcasting", [](Net& n) {
    ir::Value* c = n.Op("Greater", {n.Input("c", Rand({2, 3}, 9)), n.Const(ir::Tensor::Scalar(0.f))});
    return n.Op("Where", {c, n.Weight("a", Rand({3}, 1)), n.Weight("b", Rand({2, 3}, 2))});
  });
  for (int keep = 0; keep < 2; ++keep) {
    RequireGradients("ReduceSum keepdims=" + std::to_string(keep), [&](Net& n) {
      return Attr(n.Node("ReduceSum", {n.Weight("x", Rand({2, 3, 4}, 1)), n.Const(Ints({0, 2}))}), "keepdims", keep);
    });
    RequireGradients("ReduceMean keepdims=" + std::to_string(keep), [&](Net& n) {
      ir::Node* r = n.Node("ReduceMean", {n.Weight("x", Rand({2, 3, 4}, 1))});
      r->set_attr_ints("axes", {-1});
      return Attr(r, "keepdims", keep);
    });
  }
  RequireGradients("ReduceMean of all, dynamic shape", [](Net& n) {
    ir::Value* x = n.Op("Tanh", {n.Weight("x", Rand({2, 3, 4}, 1))});
    return Attr(n.Node("ReduceMean", {x}), "keepdims", 0);
  });
}

TEST_CASE("accumulation: a weight and an activation with several consumers") {
  auto r = RequireGradients("shared", [](Net& n) {
    ir::Value* x = n.Input("x", Rand({3, 4}, 1));
    ir::Value* w = n.Weight("w", Rand({4, 4}, 2));
    ir::Value* h = n.Op("Tanh", {n.Op("MatMul", {x, w})});
    ir::Value* h2 = n.Op("MatMul", {h, w});              // w used twice
    ir::Value* y = n.Op("Add", {n.Op("Mul", {h, h}), h2});  // h used three times
    return n.Op("Mul", {y, n.Op("Sigmoid", {h})});
  });
  CHECK(r.op_counts["Add"] >= 2);  // one forward Add; w's two contributions in one Add
  CHECK(r.op_counts["Sum"] >= 1);  // h's three or more in one Sum
}

TEST_CASE("Conv: 1-D and 2-D, groups, depthwise, strides, dilations, pads, auto_pad") {
  struct Case { const char* what; ir::Shape x, w; int64_t group; std::vector<int64_t> strides, dil, pads; const char* auto_pad; };
  std::vector<Case> cases = {
      {"1-D", {2, 3, 9}, {4, 3, 3}, 1, {}, {}, {1, 1}, ""},
      {"1-D depthwise causal", {2, 4, 10}, {4, 1, 5}, 4, {}, {}, {4, 0}, ""},
      {"1-D grouped, stride 2, dilation 2", {1, 4, 13}, {6, 2, 3}, 2, {2}, {2}, {2, 1}, ""},
      {"2-D stride 2", {2, 2, 7, 6}, {3, 2, 3, 3}, 1, {2, 2}, {}, {1, 1, 0, 1}, ""},
      {"2-D SAME_UPPER", {1, 3, 5, 5}, {2, 3, 2, 3}, 1, {2, 1}, {}, {}, "SAME_UPPER"},
      {"2-D pointwise", {2, 5, 3, 4}, {3, 5, 1, 1}, 1, {}, {}, {}, ""}};
  for (const Case& k : cases)
    RequireGradients(k.what, [&](Net& n) {
      ir::Value* x = n.Op("Tanh", {n.Weight("x", Rand(k.x, 1))});
      ir::Node* conv = n.Node("Conv", {x, n.Weight("w", Rand(k.w, 2)), n.Weight("b", Rand({k.w[0]}, 3))});
      conv->set_attr_int("group", k.group);
      if (!k.strides.empty()) conv->set_attr_ints("strides", k.strides);
      if (!k.dil.empty()) conv->set_attr_ints("dilations", k.dil);
      if (!k.pads.empty()) conv->set_attr_ints("pads", k.pads);
      if (*k.auto_pad) conv->set_attr_string("auto_pad", k.auto_pad);
      return conv->outputs[0];
    });
}

TEST_CASE("LSTM: every input and all three outputs (backpropagation through time)") {
  const int64_t T = 4, B = 2, I = 3, H = 5;
  RequireGradients("LSTM with bias and initial states", [&](Net& n) {
    ir::Node* l = n.Node("LSTM", {n.Weight("x", Rand({T, B, I}, 1)), n.Weight("w", Rand({1, 4 * H, I}, 2)),
                                  n.Weight("r", Rand({1, 4 * H, H}, 3)), n.Weight("b", Rand({1, 8 * H}, 4)), nullptr,
                                  n.Weight("h0", Rand({1, B, H}, 5)), n.Weight("c0", Rand({1, B, H}, 6))}, 3);
    l->set_attr_int("hidden_size", H);
    // Y [T,1,B,H] + Y_h * Y_c [1,B,H] (broadcast): all three outputs carry gradient.
    return n.Op("Add", {l->outputs[0], n.Op("Mul", {l->outputs[1], l->outputs[2]})});
  });
  RequireGradients("LSTM without bias or states, Y only", [&](Net& n) {
    ir::Node* l = n.Node("LSTM", {n.Input("x", Rand({T, B, I}, 1)), n.Weight("w", Rand({1, 4 * H, I}, 2)),
                                  n.Weight("r", Rand({1, 4 * H, H}, 3))}, 1);
    l->set_attr_int("hidden_size", H);
    return l->outputs[0];
  });
}

TEST_CASE("errors: missing rule names the node, unrelated weights, bad names") {
  Net n(false);
  ir::Value* x = n.Input("x", Rand({1, 2, 8}, 1));
  ir::Node* conv = n.g.AddNode("ConvTranspose", {x, n.Weight("w", Rand({2, 2, 3}, 2))}, {"c"}, "enc.3.up");
  ir::Value* y = n.Op("ReduceSum", {n.Op("Tanh", {conv->outputs[0]})});
  auto r = grad::BuildGradient(n.g, y->name, {"w"});
  REQUIRE(!r.ok());
  CHECK(r.status().message() == "grad: node 'enc.3.up' (ConvTranspose): no gradient rule");

  // A weight reached only through Shape gets no gradient: an error naming it.
  Net m(false);
  ir::Value* w = m.Weight("w", Rand({2, 3}, 1));
  ir::Value* v = m.Weight("v", Rand({2, 3}, 2));
  ir::Value* shaped = m.Op("Reshape", {v, m.Op("Shape", {w})});
  ir::Value* loss = m.Op("ReduceSum", {shaped});
  auto r2 = grad::BuildGradient(m.g, loss->name, {"v", "w"});
  REQUIRE(!r2.ok());
  CHECK(r2.status().message().find("does not depend on trainable 'w'") != std::string::npos);
  CHECK(grad::BuildGradient(m.g, loss->name, {"v"}).ok());

  CHECK(!grad::BuildGradient(m.g, "nope", {"v"}).ok());
  // A rule that refuses its node after others emitted nodes: everything emitted is removed.
  Net k(false);
  ir::Node* lstm = k.Node("LSTM", {k.Input("x", Rand({2, 1, 3}, 1)), k.Weight("w", Rand({1, 8, 3}, 2)),
                                   k.Weight("r", Rand({1, 8, 2}, 3))}, 1);
  lstm->set_attr_int("hidden_size", 2);
  lstm->set_attr_string("direction", "reverse");
  ir::Value* kl = k.Op("ReduceSum", {k.Op("Tanh", {k.Op("Mul", {lstm->outputs[0], lstm->outputs[0]})})});
  const size_t nodes = k.g.num_nodes(), values = k.g.values().size(), inits = k.g.initializers.size();
  auto r4 = grad::BuildGradient(k.g, kl->name, {"w", "r"});
  REQUIRE(!r4.ok());
  CHECK(r4.status().message().find("(LSTM): only direction 'forward' is supported") != std::string::npos);
  CHECK(k.g.num_nodes() == nodes);
  CHECK(k.g.values().size() == values);
  CHECK(k.g.initializers.size() == inits);
  CHECK(k.g.Verify().ok());

  auto r3 = grad::BuildGradient(m.g, loss->name, {"shaped_missing"});
  REQUIRE(!r3.ok());
  CHECK(r3.status().message().find("not an initializer") != std::string::npos);
}

TEST_CASE("gradient outputs are named <weight>_grad and appended in order") {
  Net n(false);
  ir::Value* x = n.Input("x", Rand({3, 4}, 1));
  ir::Value* h = n.Op("MatMul", {x, n.Weight("w1", Rand({4, 5}, 2))});
  ir::Value* y = n.Op("Add", {h, n.Weight("b1", Rand({5}, 3))});
  ir::Value* loss = n.Op("ReduceSum", {y});
  n.g.outputs.push_back(loss);
  auto r = grad::BuildGradient(n.g, loss->name, {"b1", "w1"});
  REQUIRE(r.ok());
  CHECK(r->gradient_outputs == std::vector<std::string>{"b1_grad", "w1_grad"});
  REQUIRE(n.g.outputs.size() == 3);
  CHECK(n.g.outputs[1]->name == "b1_grad");
  CHECK(n.g.outputs[2]->name == "w1_grad");
  CHECK(n.g.Verify().ok());
  auto out = asrc::testing::RunGraph(n.g, n.feeds);
  REQUIRE(out.ok());
  // d sum(xW + b)/db = number of rows, per column.
  for (int64_t i = 0; i < 5; ++i) CHECK((*out)[1].data<float>()[i] == doctest::Approx(3.0));
}

// The loss kernels live on the losses branch; here the rule's wiring: the loss's precomputed
// gradient (output 1) scaled by the per-utterance incoming gradient reaches the joiner weights.
TEST_CASE("ai.asrc loss ops: d logits = reshape(g, [-1,1,1,1]) * output 1") {
  for (bool rank_known : {true, false}) {
    CAPTURE(rank_known);
    Net n(false);
    ir::Value* enc = n.Input("enc", Rand({2, 3, 1, 4}, 1), rank_known);
    ir::Value* logits = n.Op("MatMul", {enc, n.Weight("w", Rand({4, 6}, 2))});
    ir::Node* loss = n.g.AddNode("RNNTLoss", {logits, n.Input("targets", Ints({1, 2, 3, 0}, {2, 2})),
                                               n.Input("logit_lengths", Ints({3, 2})), n.Input("target_lengths", Ints({2, 1}))},
                                  {"loss", "dlogits"}, "rnnt", "ai.asrc");
    loss->set_attr_string("reduction", "none");
    auto r = grad::BuildGradient(n.g, "loss", {"w"});
    REQUIRE_MESSAGE(r.ok(), r.status().message());
    CHECK(n.g.Verify().ok());
    // The logits' gradient is Mul(Reshape(seed, shape), dlogits), and it feeds w's MatMul rule.
    ir::Node* mul = nullptr;
    for (ir::Node* k : n.g.nodes())
      if (k->op_type == "Mul" && k->input(1) && k->input(1)->name == "dlogits") mul = k;
    REQUIRE(mul != nullptr);
    ir::Node* reshape = mul->input(0)->producer;
    REQUIRE(reshape->op_type == "Reshape");
    CHECK(reshape->input(0)->producer->op_type == "ConstantOfShape");  // the seed, ones of loss's shape
    if (rank_known) {
      REQUIRE(reshape->input(1)->initializer.has_value());
      const ir::Tensor& s = *reshape->input(1)->initializer;
      CHECK(std::vector<int64_t>(s.data<int64_t>(), s.data<int64_t>() + s.numel()) == std::vector<int64_t>{-1, 1, 1, 1});
    } else {
      CHECK(reshape->input(1)->producer->op_type == "Concat");
    }
    bool feeds_matmul_grad = false;
    for (const ir::Use& u : mul->outputs[0]->uses) feeds_matmul_grad |= u.node->op_type == "Flatten";
    CHECK(feeds_matmul_grad);
  }
}
