// Session planning and running: unsupported-op errors, thread counts, repeated runs with buffer
// reuse, constant folding, outer-scope reads from If/Loop subgraphs, input checks.
#include <doctest/doctest.h>

#include "runtime/kernel.h"
#include "test_util.h"

using namespace asrc;
using namespace asrc::testing;  // test_util.h: tensors, one-node graphs, comparisons

namespace {
ir::Value* Input(ir::Graph& g, const std::string& name, ir::DType dt = ir::DType::Float32) {
  ir::Value* v = g.AddValue(name);
  v->type.has_type = true;
  v->type.dtype = dt;
  g.inputs.push_back(v);
  return v;
}

// x [T, 64] -> MatMul W1 -> Relu -> MatMul W2 -> Softmax -> Add x@W3 (a small MLP block).
void BuildMlp(ir::Graph& g) {
  ir::Value* x = Input(g, "x");
  auto* w1 = g.AddInitializer("w1", RandomTensor({64, 128}, 1));
  auto* w2 = g.AddInitializer("w2", RandomTensor({128, 64}, 2));
  auto* a = g.AddNode("MatMul", {x, w1}, {"a"}, "mm1")->outputs[0];
  auto* r = g.AddNode("Relu", {a}, {"r"}, "relu")->outputs[0];
  auto* b = g.AddNode("MatMul", {r, w2}, {"b"}, "mm2")->outputs[0];
  auto* s = g.AddNode("Softmax", {b}, {"s"}, "sm")->outputs[0];
  auto* y = g.AddNode("Add", {s, x}, {"y"}, "add")->outputs[0];
  g.outputs.push_back(y);
}
}  // namespace

TEST_CASE("unsupported op error names op, domain, opset, node and graph") {
  ir::Graph g("enc");
  ir::Value* x = Input(g, "x");
  auto* n = g.AddNode("FancyOp", {x}, {"y"}, "fancy_1", "com.example");
  g.outputs.push_back(n->outputs[0]);
  auto s = runtime::Session::Create(g, 17);
  REQUIRE(!s.ok());
  CHECK(s.status().message() ==
        "unsupported op 'FancyOp' (domain 'com.example', opset 1) at node 'fancy_1' in graph 'enc'");
  ir::Graph g2("dec");
  ir::Value* x2 = Input(g2, "x");
  g2.outputs.push_back(g2.AddNode("NoSuchOnnxOp", {x2}, {"y"}, "n7")->outputs[0]);
  auto s2 = runtime::Session::Create(g2, 13);
  REQUIRE(!s2.ok());
  CHECK(s2.status().message() == "unsupported op 'NoSuchOnnxOp' (domain '', opset 13) at node 'n7' in graph 'dec'");
}

TEST_CASE("threads 1 and 2 give the same outputs; repeated runs are stable") {
  ir::Graph g("mlp");
  BuildMlp(g);
  auto s1 = runtime::Session::Create(g, 17, {1});
  auto s2 = runtime::Session::Create(g, 17, {2});
  REQUIRE(s1.ok());
  REQUIRE(s2.ok());
  for (int64_t T : {1, 37, 300}) {
    ir::Tensor x = RandomTensor({T, 64}, static_cast<uint32_t>(T));
    std::vector<ir::Tensor> o1, o2, o3;
    REQUIRE((*s1)->Run({x}, &o1).ok());
    REQUIRE((*s2)->Run({x}, &o2).ok());
    REQUIRE((*s1)->Run({x}, &o3).ok());  // pooled buffers reused
    CHECK(o1[0].shape() == ir::Shape{T, 64});
    CHECK(MaxAbsDiff(o1[0], o2[0]) < 1e-5f);
    CHECK(MaxAbsDiff(o1[0], o3[0]) == 0.f);
  }
}

TEST_CASE("outputs handed out are not overwritten by later runs") {
  ir::Graph g("mlp");
  BuildMlp(g);
  auto s = runtime::Session::Create(g, 17);
  REQUIRE(s.ok());
  std::vector<ir::Tensor> a, b;
  ir::Tensor x1 = RandomTensor({8, 64}, 1), x2 = RandomTensor({8, 64}, 2);
  REQUIRE((*s)->Run({x1}, &a).ok());
  ir::Tensor keep = a[0].Clone();
  REQUIRE((*s)->Run({x2}, &b).ok());
  CHECK(MaxAbsDiff(a[0], keep) == 0.f);
  CHECK(MaxAbsDiff(a[0], b[0]) > 0.f);
}

TEST_CASE("shape arithmetic on constants folds at plan time and runs on dynamic shapes") {
  // y = Reshape(x, Concat(Shape(x)[0:1], [-1]))
  ir::Graph g("shape");
  ir::Value* x = Input(g, "x");
  auto* shp = g.AddNode("Shape", {x}, {"shp"})->outputs[0];
  auto* st = g.AddInitializer("st", I64({0}, {1}));
  auto* en = g.AddInitializer("en", I64({1}, {1}));
  auto* first = g.AddNode("Slice", {shp, st, en}, {"first"})->outputs[0];
  auto* m1 = g.AddInitializer("m1", I64({-1}, {1}));
  auto* cat = g.AddNode("Concat", {first, m1}, {"cat"});
  cat->set_attr_int("axis", 0);
  auto* y = g.AddNode("Reshape", {x, cat->outputs[0]}, {"y"})->outputs[0];
  // A fully constant chain: c = Add(Constant 2, Constant 3).
  auto* k = g.AddNode("Constant", {}, {"k"});
  k->set_attr_tensor("value", ir::Tensor::ScalarInt64(2));
  auto* c = g.AddNode("Add", {k->outputs[0], g.AddInitializer("three", ir::Tensor::ScalarInt64(3))}, {"c"})->outputs[0];
  g.outputs.push_back(y);
  g.outputs.push_back(c);
  auto s = runtime::Session::Create(g, 17);
  REQUIRE(s.ok());
  std::vector<ir::Tensor> o;
  Status rs = (*s)->Run({RandomTensor({3, 4, 5}, 3)}, &o);
  REQUIRE_MESSAGE(rs.ok(), rs.message());
  CHECK(o[0].shape() == ir::Shape{3, 20});
  CHECK(o[1].data<int64_t>()[0] == 5);
}

TEST_CASE("If and Loop subgraphs read outer-scope values") {
  ir::Graph g("ctl");
  ir::Value* x = Input(g, "x");
  ir::Value* flag = Input(g, "flag", ir::DType::Bool);
  // outer value computed by a node (so the subgraph read is an implicit dependency)
  auto* x2 = g.AddNode("Mul", {x, x}, {"x2"}, "sq")->outputs[0];
  auto then_g = std::make_shared<ir::Graph>("then");
  then_g->parent = &g;
  then_g->outputs.push_back(then_g->AddNode("Add", {x2, x}, {"t_out"}, "t_add")->outputs[0]);
  auto else_g = std::make_shared<ir::Graph>("else");
  else_g->parent = &g;
  else_g->outputs.push_back(else_g->AddNode("Neg", {x2}, {"e_out"}, "e_neg")->outputs[0]);
  auto* ifn = g.AddNode("If", {flag}, {"if_out"}, "if");
  ir::Attribute ta; ta.name = "then_branch"; ta.kind = ir::Attribute::Kind::Graph; ta.g = then_g;
  ir::Attribute ea; ea.name = "else_branch"; ea.kind = ir::Attribute::Kind::Graph; ea.g = else_g;
  ifn->attributes.push_back(ta);
  ifn->attributes.push_back(ea);
  // Loop 3 times: acc = acc + x2 ; scan output acc
  auto body = std::make_shared<ir::Graph>("body");
  body->parent = &g;
  ir::Value* it = body->AddValue("it");
  ir::Value* cin = body->AddValue("cin");
  ir::Value* acc = body->AddValue("acc");
  body->inputs = {it, cin, acc};
  auto* cout = body->AddNode("Identity", {cin}, {"cout"})->outputs[0];
  auto* acc2 = body->AddNode("Add", {acc, x2}, {"acc2"}, "b_add")->outputs[0];
  auto* scan = body->AddNode("Identity", {acc2}, {"scan"})->outputs[0];
  body->outputs = {cout, acc2, scan};
  auto* trip = g.AddInitializer("trip", I64({3}));
  ir::Tensor tcond(ir::DType::Bool, {});
  tcond.data<bool>()[0] = true;
  auto* cond = g.AddInitializer("cond", tcond);
  auto* zero = g.AddInitializer("zero", ir::Tensor(ir::DType::Float32, {2}));
  auto* loop = g.AddNode("Loop", {trip, cond, zero}, {"final", "scans"}, "loop");
  ir::Attribute ba; ba.name = "body"; ba.kind = ir::Attribute::Kind::Graph; ba.g = body;
  loop->attributes.push_back(ba);
  g.outputs = {ifn->outputs[0], loop->outputs[0], loop->outputs[1]};
  auto s = runtime::Session::Create(g, 17, {2});
  REQUIRE_MESSAGE(s.ok(), s.status().message());
  ir::Tensor xv = ir::Tensor::FromVector<float>(ir::DType::Float32, {2}, {2.f, -1.f});
  for (bool f : {true, false}) {
    ir::Tensor fv(ir::DType::Bool, {});
    fv.data<bool>()[0] = f;
    std::vector<ir::Tensor> o;
    Status st = (*s)->Run({xv, fv}, &o);
    REQUIRE_MESSAGE(st.ok(), st.message());
    CHECK(o[0].data<float>()[0] == (f ? 6.f : -4.f));
    CHECK(o[1].data<float>()[1] == 3.f);
    CHECK(o[2].shape() == ir::Shape{3, 2});
    CHECK(o[2].data<float>()[2] == 8.f);
  }
}

TEST_CASE("input checks: count, dtype and static shape") {
  ir::Graph g("chk");
  ir::Value* x = Input(g, "x");
  x->type.has_shape = true;
  x->type.dims = {ir::Dim{-1, "T"}, ir::Dim{4, ""}};
  g.outputs.push_back(g.AddNode("Relu", {x}, {"y"})->outputs[0]);
  auto s = runtime::Session::Create(g, 17);
  REQUIRE(s.ok());
  std::vector<ir::Tensor> o;
  CHECK((*s)->Run({RandomTensor({7, 4}, 1)}, &o).ok());
  Status bad_shape = (*s)->Run({RandomTensor({7, 5}, 1)}, &o);
  CHECK(bad_shape.message() == "graph 'chk': input 'x' must have shape [T,4], got [7,5]");
  Status bad_type = (*s)->Run({I64({1, 2})}, &o);
  CHECK(bad_type.message().find("must be float32, got int64") != std::string::npos);
  CHECK(!(*s)->Run({}, &o).ok());
  auto named = (*s)->Run({{"nope", RandomTensor({1, 4}, 1)}});
  CHECK(!named.ok());
}

TEST_CASE("a kernel error names the node and graph") {
  ir::Graph g("bad");
  ir::Value* a = Input(g, "a");
  ir::Value* b = Input(g, "b");
  g.outputs.push_back(g.AddNode("Add", {a, b}, {"y"}, "add_1")->outputs[0]);
  auto s = runtime::Session::Create(g, 17);
  REQUIRE(s.ok());
  std::vector<ir::Tensor> o;
  Status st = (*s)->Run({RandomTensor({2, 3}, 1), RandomTensor({4}, 2)}, &o);
  CHECK(st.message() == "node 'add_1' (Add) in graph 'bad': cannot broadcast [2,3] with [4]");
}

namespace {
struct Seen {
  std::string name;
  ir::Tensor value;
};
}  // namespace

TEST_CASE("taps: each tapped value once per run, inputs and constants first, the rest as computed") {
  ir::Graph g("mlp");
  BuildMlp(g);
  // The same values as extra graph outputs: the reference for what the observer must see.
  ir::Graph ref("mlp_ref");
  BuildMlp(ref);
  for (const char* n : {"s", "a", "r"}) ref.outputs.push_back(ref.FindValue(n));
  auto rs = runtime::Session::Create(ref, 17);
  auto plain = runtime::Session::Create(g, 17);
  REQUIRE(rs.ok());
  REQUIRE(plain.ok());

  std::vector<Seen> seen;
  runtime::SessionOptions o;
  o.taps = {"s", "a", "x", "r", "w1", "a"};  // "a" twice: shown once
  o.observer = [&](const std::string& name, const ir::Tensor& t) { seen.push_back({name, t}); };
  auto s = runtime::Session::Create(g, 17, o);
  REQUIRE_MESSAGE(s.ok(), s.status().message());
  CHECK((*s)->output_names() == std::vector<std::string>{"y"});

  std::vector<std::vector<Seen>> runs;
  std::vector<std::vector<ir::Tensor>> refs;
  for (uint32_t seed : {1u, 2u}) {
    ir::Tensor x = RandomTensor({9, 64}, seed);
    seen.clear();
    std::vector<ir::Tensor> out, want, untapped;
    REQUIRE((*s)->Run({x}, &out).ok());
    REQUIRE((*rs)->Run({x}, &want).ok());
    REQUIRE((*plain)->Run({x}, &untapped).ok());
    CHECK(SameBytes(out[0], untapped[0]));
    std::vector<std::string> names;
    for (const auto& e : seen) names.push_back(e.name);
    CHECK(names == std::vector<std::string>{"x", "w1", "a", "r", "s"});
    runs.push_back(seen);
    refs.push_back(want);
  }
  // Copies kept from the first run are not overwritten by the second.
  for (int r : {0, 1}) {
    const auto& v = runs[r];
    REQUIRE(v.size() == 5);
    CHECK(SameBytes(v[2].value, refs[r][2]));  // a
    CHECK(SameBytes(v[3].value, refs[r][3]));  // r
    CHECK(SameBytes(v[4].value, refs[r][1]));  // s
    CHECK(SameBytes(v[1].value, *g.FindValue("w1")->initializer));
  }
  CHECK(MaxAbsDiff(runs[0][4].value, runs[1][4].value) > 0.f);
}

TEST_CASE("taps: unknown names and taps without an observer are errors at Create") {
  ir::Graph g("mlp");
  BuildMlp(g);
  runtime::SessionOptions o;
  o.taps = {"r", "nope"};
  o.observer = [](const std::string&, const ir::Tensor&) {};
  auto s = runtime::Session::Create(g, 17, o);
  REQUIRE(!s.ok());
  CHECK(s.status().message() == "graph 'mlp': tap 'nope': the graph has no value of that name");
  o.taps = {"r"};
  o.observer = nullptr;
  auto s2 = runtime::Session::Create(g, 17, o);
  REQUIRE(!s2.ok());
  CHECK(s2.status().message() == "graph 'mlp': taps without an observer");
}
