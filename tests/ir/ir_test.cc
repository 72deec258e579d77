// IR unit tests: tensors, graph construction and use lists, topological order, verify(), and
// size accounting over shared buffers.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>

#include "ir/graph.h"
#include "ir/model.h"
#include "ir/tensor.h"

using namespace asrc::ir;
using asrc::Status;

TEST_CASE("dtype sizes and shape element counts") {
  CHECK(DTypeSize(DType::Float32) == 4);
  CHECK(DTypeSize(DType::Float16) == 2);
  CHECK(DTypeSize(DType::Int8) == 1);
  CHECK(DTypeSize(DType::Bool) == 1);
  CHECK(DTypeSize(DType::Int64) == 8);
  CHECK(DTypeSize(DType::Complex128) == 16);
  CHECK(DTypeSize(DType::String) == 0);
  CHECK(std::string(DTypeName(DType::Uint8)) == "uint8");
  CHECK(DTypeKnown(16));
  CHECK_FALSE(DTypeKnown(17));
  CHECK_FALSE(DTypeKnown(-1));
  CHECK(ShapeNumel({}) == 1);
  CHECK(ShapeNumel({2, 3, 4}) == 24);
  CHECK(ShapeNumel({0, 5}) == 0);
  CHECK(ShapeNumel({3, -1}) == -1);
  CHECK(ShapeNumel({int64_t{1} << 40, int64_t{1} << 40}) == -1);  // overflows int64
  CHECK(ShapeNumel({int64_t{1} << 31, int64_t{1} << 31}) == int64_t{1} << 62);
  CHECK(ShapeStr({2, 3}) == "[2,3]");
  CHECK(ShapeStr({}) == "[]");
}

TEST_CASE("tensor construction, views and copies") {
  Tensor t(DType::Float32, {2, 3});
  CHECK(t.numel() == 6);
  CHECK(t.nbytes() == 24);
  CHECK(reinterpret_cast<uintptr_t>(t.raw()) % 64 == 0);
  for (int i = 0; i < 6; ++i) CHECK(t.data<float>()[i] == 0.0f);
  auto v = Tensor::FromVector<float>(DType::Float32, {3}, {1, 2, 3});
  CHECK(v.data<float>()[2] == 3.0f);
  Tensor r = v.Reshaped({1, 3});
  CHECK(r.SharesBufferWith(v));
  CHECK(r.shape() == Shape{1, 3});
  Tensor c = v.Clone();
  CHECK_FALSE(c.SharesBufferWith(v));
  c.data<float>()[0] = 9;
  CHECK(v.data<float>()[0] == 1.0f);
  auto buf = std::make_shared<Buffer>(64);
  Tensor a = Tensor::Wrap(DType::Int32, {4}, buf, 0);
  Tensor b = Tensor::Wrap(DType::Int32, {4}, buf, 16);
  b.data<int32_t>()[0] = 7;
  CHECK(reinterpret_cast<int32_t*>(buf->data())[4] == 7);
  CHECK(a.SharesBufferWith(b));
  CHECK(Tensor::Scalar(2.5f).data<float>()[0] == 2.5f);
  CHECK(Tensor::ScalarInt64(-3).data<int64_t>()[0] == -3);
  CHECK(Tensor::Scalar(1).rank() == 0);
  Tensor s(DType::String, {2});
  CHECK(s.strings.size() == 2);
  Tensor e(DType::Float32, {0, 4});
  CHECK(e.nbytes() == 0);
  CHECK(Tensor(DType::Float32, {2, 3, 4}).dim(-1) == 4);
}

TEST_CASE("half precision conversions match IEEE 754 binary16") {
  CHECK(FloatToHalf(1.0f) == 0x3c00);
  CHECK(FloatToHalf(-2.0f) == 0xc000);
  CHECK(FloatToHalf(65504.0f) == 0x7bff);             // largest finite half
  CHECK(FloatToHalf(65536.0f) == 0x7c00);             // overflows to +inf
  CHECK(FloatToHalf(std::ldexp(1.0f, -24)) == 0x0001);  // smallest subnormal
  CHECK(FloatToHalf(std::ldexp(1.0f, -14)) == 0x0400);  // smallest normal
  CHECK(FloatToHalf(1.0f + std::ldexp(1.0f, -11)) == 0x3c00);  // tie rounds to even
  CHECK(FloatToHalf(1.0f + 3 * std::ldexp(1.0f, -11)) == 0x3c02);
  CHECK(HalfToFloat(0x3555) == doctest::Approx(0.333251953125).epsilon(1e-12));
  CHECK(std::isinf(HalfToFloat(0xfc00)));
  CHECK(std::isnan(HalfToFloat(0x7e00)));
  // Every finite half survives half -> float -> half.
  int bad = 0;
  for (uint32_t h = 0; h < 0x10000; ++h) {
    if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff)) continue;  // NaN payloads
    if (FloatToHalf(HalfToFloat(static_cast<uint16_t>(h))) != h) ++bad;
  }
  CHECK(bad == 0);
}

namespace {
// x -> Relu -> a -> Add(a, W) -> y
struct Small {
  Graph g{"main"};
  Value *x, *w, *a, *y;
  Node *relu, *add;
  Small() {
    x = g.AddValue("x");
    g.inputs.push_back(x);
    w = g.AddInitializer("W", Tensor::FromVector<float>(DType::Float32, {2}, {1, 2}));
    relu = g.AddNode("Relu", {x}, {"a"}, "relu");
    a = relu->outputs[0];
    add = g.AddNode("Add", {a, w}, {"y"}, "add");
    y = add->outputs[0];
    g.outputs.push_back(y);
  }
};

// Appends an If whose then-branch (a subgraph) negates the outer value 'a'.
std::pair<Node*, std::shared_ptr<Graph>> AddIfReadingA(Small& s) {
  Node* iff = s.g.AddNode("If", {s.g.AddInitializer("cond", Tensor(DType::Bool, {}))}, {"out"}, "if");
  auto then_g = std::make_shared<Graph>("then");
  then_g->parent = &s.g;
  Node* inner = then_g->AddNode("Neg", {s.a}, {"t"}, "inner_neg");  // reads outer 'a'
  then_g->outputs.push_back(inner->outputs[0]);
  Attribute attr;
  attr.name = "then_branch";
  attr.kind = Attribute::Kind::Graph;
  attr.g = then_g;
  iff->attributes.push_back(attr);
  return {iff, then_g};
}
}  // namespace

TEST_CASE("graph construction keeps use lists and producers") {
  Small s;
  CHECK(s.g.Verify().ok());
  REQUIRE(s.x->uses.size() == 1);
  CHECK(s.x->uses[0].node == s.relu);
  CHECK(s.a->producer == s.relu);
  CHECK(s.w->uses[0].input_index == 1);
  CHECK(s.g.FindValue("W") == s.w);
  CHECK(s.g.NumParams() == 2);
  CHECK(s.g.UniqueName("W") == "W_1");
  CHECK(s.g.UniqueName("fresh") == "fresh");

  // set_input moves the use.
  s.g.set_input(s.add, 1, s.x);
  CHECK(s.w->uses.empty());
  CHECK(s.x->uses.size() == 2);
  CHECK(s.g.Verify().ok());

  // replace_all_uses reaches graph outputs too.
  Node* neg = s.g.AddNode("Neg", {s.y}, {"z"}, "neg");
  s.g.ReplaceAllUses(s.y, neg->outputs[0]);  // y's consumer neg now reads z: a cycle neg->neg
  CHECK(s.g.outputs[0] == neg->outputs[0]);
  CHECK_FALSE(s.g.Verify().ok());
  s.g.set_input(neg, 0, s.y);
  CHECK(s.g.Verify().ok());

  // remove_node drops the node, its outputs and its uses.
  s.g.outputs[0] = s.y;
  s.g.RemoveNode(neg);
  CHECK(s.g.FindValue("z") == nullptr);
  CHECK(s.y->uses.empty());
  CHECK(s.g.num_nodes() == 2);
  CHECK(s.g.Verify().ok());
  // An unused initializer can be removed.
  s.g.RemoveValue(s.w);
  CHECK(s.g.initializers.empty());
  CHECK(s.g.Verify().ok());
}

TEST_CASE("topological order is stable and sorts out-of-order storage") {
  Graph g("t");
  Value* x = g.AddValue("x");
  g.inputs.push_back(x);
  Node* p = g.AddNode("Relu", {x}, {"p"}, "P");
  Node* c = g.AddNode("Neg", {p->outputs[0]}, {"c"}, "C");
  Node* q = g.InsertNodeBefore(p, "Abs", {c->outputs[0]}, {"q"}, "Q");  // stored first, runs last
  g.outputs.push_back(q->outputs[0]);
  CHECK(g.nodes()[0] == q);
  auto order = g.TopoOrder();
  REQUIRE(order.ok());
  CHECK(order.value() == std::vector<Node*>{p, c, q});
  CHECK(g.Verify().ok());
  g.SortTopologically();
  CHECK(g.nodes() == std::vector<Node*>{p, c, q});
  // Already valid: unchanged, including independent nodes in storage order.
  Node* r = g.AddNode("Relu", {x}, {"r"}, "R");
  order = g.TopoOrder();
  REQUIRE(order.ok());
  CHECK(order.value() == std::vector<Node*>{p, c, q, r});
}

TEST_CASE("verify catches broken graphs") {
  SUBCASE("cycle") {
    Graph g("cyc");
    Value* x = g.AddValue("x");
    g.inputs.push_back(x);
    Node* a = g.AddNode("Add", {x, x}, {"a"}, "A");
    Node* b = g.AddNode("Neg", {a->outputs[0]}, {"b"}, "B");
    g.set_input(a, 1, b->outputs[0]);
    auto order = g.TopoOrder();
    CHECK_FALSE(order.ok());
    CHECK(order.status().message().find("cycle") != std::string::npos);
    CHECK_FALSE(g.Verify().ok());
  }
  SUBCASE("undefined input") {
    Graph g("u");
    Value* ghost = g.AddValue("ghost");  // not an input, initializer or node output
    g.AddNode("Relu", {ghost}, {"y"}, "r");
    Status st = g.Verify();
    CHECK_FALSE(st.ok());
    CHECK(st.message().find("'ghost' is not defined") != std::string::npos);
  }
  SUBCASE("stale use list, repaired by rebuild_uses") {
    Small s;
    s.add->inputs[1] = s.x;  // edited directly
    Status st = s.g.Verify();
    CHECK_FALSE(st.ok());
    CHECK(st.message().find("use list") != std::string::npos);
    s.g.RebuildUses();
    CHECK(s.g.Verify().ok());
    CHECK(s.w->uses.empty());
  }
  SUBCASE("initializer disagrees with its declared type") {
    Small s;
    s.w->type.dims[0].value = 3;
    CHECK(s.g.Verify().message().find("does not match its declared shape") != std::string::npos);
    s.w->type.dims[0].value = 2;
    s.w->type.dtype = DType::Int64;
    CHECK(s.g.Verify().message().find("type says int64") != std::string::npos);
  }
  SUBCASE("graph output not defined") {
    Small s;
    s.g.outputs.push_back(s.g.AddValue("nowhere"));
    CHECK_FALSE(s.g.Verify().ok());
  }
}

TEST_CASE("subgraphs read outer values; use lists and removal follow") {
  Small s;
  auto [iff, then_g] = AddIfReadingA(s);
  CHECK(s.g.Verify().ok());
  CHECK(s.a->uses.size() == 2);  // Add and the inner Neg
  CHECK(then_g->Lookup("a") == s.a);
  CHECK(then_g->FindValue("a") == nullptr);
  // rebuild from the subgraph alone keeps the outer value's other uses
  then_g->RebuildUses();
  CHECK(s.a->uses.size() == 2);
  s.g.RebuildUses();
  CHECK(s.a->uses.size() == 2);
  // topological order puts the If after the producer of 'a' even when stored before it
  s.g.SortTopologically();
  auto order = s.g.TopoOrder();
  REQUIRE(order.ok());
  // wrong parent link is reported
  then_g->parent = nullptr;
  CHECK_FALSE(s.g.Verify().ok());
  then_g->parent = &s.g;
  s.g.RemoveNode(iff);
  CHECK(s.a->uses.size() == 1);
  CHECK(s.g.Verify().ok());
}

TEST_CASE("clone: every field copied, links re-pointed, subgraph outer reads into the copy") {
  Small s;
  s.w->initializer_doc_string = "w doc";
  s.add->raw_extras = "node extras";
  s.g.raw_extras = "graph extras";
  auto [iff, then_g] = AddIfReadingA(s);
  REQUIRE(s.g.Verify().ok());

  std::unique_ptr<Graph> c = s.g.Clone();
  REQUIRE(c->Verify().ok());
  CHECK(c->raw_extras == "graph extras");
  CHECK(c->FindValue("W")->initializer_doc_string == "w doc");
  CHECK(c->FindValue("W")->initializer->SharesBufferWith(*s.w->initializer));
  std::vector<Node*> a = s.g.nodes(), b = c->nodes();
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) CHECK(a[i]->name == b[i]->name);  // storage order kept
  CHECK(b[1]->raw_extras == "node extras");
  const Graph* sub = b.back()->attributes[0].g.get();
  REQUIRE(sub != then_g.get());
  CHECK(sub->parent == c.get());
  CHECK(sub->nodes()[0]->inputs[0] == c->FindValue("a"));  // the copy's 'a', not the original's
  CHECK(s.a->uses.size() == 2);                             // the original is untouched
  CHECK(c->FindValue("a")->uses.size() == 2);
}

TEST_CASE("size accounting counts shared buffers once") {
  Model m;
  auto buf = std::make_shared<Buffer>(4 * 100);
  for (const char* role : {"encoder", "decoder"}) {
    GraphFile gf;
    gf.role = role;
    gf.opsets.push_back({"", 17});
    gf.opsets.push_back({"com.microsoft", 1});
    gf.graph = std::make_unique<Graph>(role);
    gf.graph->AddInitializer("emb", Tensor::Wrap(DType::Float32, {10, 10}, buf, 0));  // shared
    gf.graph->AddInitializer("own", Tensor(DType::Float32, {5}));
    m.graphs.push_back(std::move(gf));
  }
  CHECK(m.graph("encoder")->NumParams() == 105);
  CHECK(m.ParamsTotal() == 100 + 5 + 5);
  CHECK(m.BytesUnique() == 400 + 20 + 20);
  // Two different views into one buffer: overlapping bytes once.
  m.graph("decoder")->AddInitializer("half", Tensor::Wrap(DType::Float32, {60}, buf, 160));  // [160,400)
  CHECK(m.BytesUnique() == 400 + 40);
  CHECK(m.ParamsTotal() == 100 + 5 + 5 + 60);
  // Constant node tensors count as weight bytes.
  Node* k = m.graph("encoder")->AddNode("Constant", {}, {"k"}, "k");
  k->set_attr_tensor("value", Tensor(DType::Int64, {3}));
  CHECK(m.BytesUnique() == 440 + 24);
  CHECK(UniqueWeightBytes({m.graph("encoder")}) == 400 + 20 + 24);
  CHECK(m.find("decoder") != nullptr);
  CHECK(m.find("joiner") == nullptr);
  CHECK(m.find("encoder")->opset() == 17);
  CHECK(m.find("encoder")->opset("ai.onnx") == 17);
  CHECK(m.find("encoder")->opset("com.microsoft") == 1);
  CHECK(m.find("encoder")->opset("ai.onnx.ml") == 0);
}

TEST_CASE("node attribute helpers") {
  Graph g("a");
  Node* n = g.AddNode("Conv", {}, {"y"}, "c");
  n->set_attr_int("group", 4);
  n->set_attr_ints("strides", {2, 2});
  n->set_attr_float("alpha", 0.5f);
  n->set_attr_string("auto_pad", "SAME_UPPER");
  n->set_attr_int("group", 8);  // replaces
  CHECK(n->attributes.size() == 4);
  CHECK(n->attr_int("group", 1) == 8);
  CHECK(n->attr_int("missing", 1) == 1);
  CHECK(n->attr_ints("strides") == std::vector<int64_t>{2, 2});
  CHECK(n->attr_float("alpha", 0) == 0.5f);
  CHECK(n->attr_string("auto_pad", "") == "SAME_UPPER");
  CHECK(n->attr_int("alpha", -1) == -1);  // wrong kind -> default
  CHECK(n->attr_floats("nothing").empty());
}
