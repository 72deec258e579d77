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
  CHECK(dtype_size(DType::Float32) == 4);
  CHECK(dtype_size(DType::Float16) == 2);
  CHECK(dtype_size(DType::Int8) == 1);
  CHECK(dtype_size(DType::Bool) == 1);
  CHECK(dtype_size(DType::Int64) == 8);
  CHECK(dtype_size(DType::Complex128) == 16);
  CHECK(dtype_size(DType::String) == 0);
  CHECK(std::string(dtype_name(DType::Uint8)) == "uint8");
  CHECK(dtype_known(16));
  CHECK_FALSE(dtype_known(17));
  CHECK_FALSE(dtype_known(-1));
  CHECK(shape_numel({}) == 1);
  CHECK(shape_numel({2, 3, 4}) == 24);
  CHECK(shape_numel({0, 5}) == 0);
  CHECK(shape_numel({3, -1}) == -1);
  CHECK(shape_numel({int64_t{1} << 40, int64_t{1} << 40}) == -1);  // overflows int64
  CHECK(shape_numel({int64_t{1} << 31, int64_t{1} << 31}) == int64_t{1} << 62);
  CHECK(shape_str({2, 3}) == "[2,3]");
  CHECK(shape_str({}) == "[]");
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
  CHECK(r.shares_buffer_with(v));
  CHECK(r.shape() == Shape{1, 3});
  Tensor c = v.Clone();
  CHECK_FALSE(c.shares_buffer_with(v));
  c.data<float>()[0] = 9;
  CHECK(v.data<float>()[0] == 1.0f);
  auto buf = std::make_shared<Buffer>(64);
  Tensor a = Tensor::Wrap(DType::Int32, {4}, buf, 0);
  Tensor b = Tensor::Wrap(DType::Int32, {4}, buf, 16);
  b.data<int32_t>()[0] = 7;
  CHECK(reinterpret_cast<int32_t*>(buf->data())[4] == 7);
  CHECK(a.shares_buffer_with(b));
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
  CHECK(float_to_half(1.0f) == 0x3c00);
  CHECK(float_to_half(-2.0f) == 0xc000);
  CHECK(float_to_half(65504.0f) == 0x7bff);             // largest finite half
  CHECK(float_to_half(65536.0f) == 0x7c00);             // overflows to +inf
  CHECK(float_to_half(std::ldexp(1.0f, -24)) == 0x0001);  // smallest subnormal
  CHECK(float_to_half(std::ldexp(1.0f, -14)) == 0x0400);  // smallest normal
  CHECK(float_to_half(1.0f + std::ldexp(1.0f, -11)) == 0x3c00);  // tie rounds to even
  CHECK(float_to_half(1.0f + 3 * std::ldexp(1.0f, -11)) == 0x3c02);
  CHECK(half_to_float(0x3555) == doctest::Approx(0.333251953125).epsilon(1e-12));
  CHECK(std::isinf(half_to_float(0xfc00)));
  CHECK(std::isnan(half_to_float(0x7e00)));
  // Every finite half survives half -> float -> half.
  int bad = 0;
  for (uint32_t h = 0; h < 0x10000; ++h) {
    if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff)) continue;  // NaN payloads
    if (float_to_half(half_to_float(static_cast<uint16_t>(h))) != h) ++bad;
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
    x = g.add_value("x");
    g.inputs.push_back(x);
    w = g.add_initializer("W", Tensor::FromVector<float>(DType::Float32, {2}, {1, 2}));
    relu = g.add_node("Relu", {x}, {"a"}, "relu");
    a = relu->outputs[0];
    add = g.add_node("Add", {a, w}, {"y"}, "add");
    y = add->outputs[0];
    g.outputs.push_back(y);
  }
};

// Appends an If whose then-branch (a subgraph) negates the outer value 'a'.
std::pair<Node*, std::shared_ptr<Graph>> AddIfReadingA(Small& s) {
  Node* iff = s.g.add_node("If", {s.g.add_initializer("cond", Tensor(DType::Bool, {}))}, {"out"}, "if");
  auto then_g = std::make_shared<Graph>("then");
  then_g->parent = &s.g;
  Node* inner = then_g->add_node("Neg", {s.a}, {"t"}, "inner_neg");  // reads outer 'a'
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
  CHECK(s.g.verify().ok());
  REQUIRE(s.x->uses.size() == 1);
  CHECK(s.x->uses[0].node == s.relu);
  CHECK(s.a->producer == s.relu);
  CHECK(s.w->uses[0].input_index == 1);
  CHECK(s.g.find_value("W") == s.w);
  CHECK(s.g.num_params() == 2);
  CHECK(s.g.unique_name("W") == "W_1");
  CHECK(s.g.unique_name("fresh") == "fresh");

  // set_input moves the use.
  s.g.set_input(s.add, 1, s.x);
  CHECK(s.w->uses.empty());
  CHECK(s.x->uses.size() == 2);
  CHECK(s.g.verify().ok());

  // replace_all_uses reaches graph outputs too.
  Node* neg = s.g.add_node("Neg", {s.y}, {"z"}, "neg");
  s.g.replace_all_uses(s.y, neg->outputs[0]);  // y's consumer neg now reads z: a cycle neg->neg
  CHECK(s.g.outputs[0] == neg->outputs[0]);
  CHECK_FALSE(s.g.verify().ok());
  s.g.set_input(neg, 0, s.y);
  CHECK(s.g.verify().ok());

  // remove_node drops the node, its outputs and its uses.
  s.g.outputs[0] = s.y;
  s.g.remove_node(neg);
  CHECK(s.g.find_value("z") == nullptr);
  CHECK(s.y->uses.empty());
  CHECK(s.g.num_nodes() == 2);
  CHECK(s.g.verify().ok());
  // An unused initializer can be removed.
  s.g.remove_value(s.w);
  CHECK(s.g.initializers.empty());
  CHECK(s.g.verify().ok());
}

TEST_CASE("topological order is stable and sorts out-of-order storage") {
  Graph g("t");
  Value* x = g.add_value("x");
  g.inputs.push_back(x);
  Node* p = g.add_node("Relu", {x}, {"p"}, "P");
  Node* c = g.add_node("Neg", {p->outputs[0]}, {"c"}, "C");
  Node* q = g.insert_node_before(p, "Abs", {c->outputs[0]}, {"q"}, "Q");  // stored first, runs last
  g.outputs.push_back(q->outputs[0]);
  CHECK(g.nodes()[0] == q);
  auto order = g.topo_order();
  REQUIRE(order.ok());
  CHECK(order.value() == std::vector<Node*>{p, c, q});
  CHECK(g.verify().ok());
  g.sort_topologically();
  CHECK(g.nodes() == std::vector<Node*>{p, c, q});
  // Already valid: unchanged, including independent nodes in storage order.
  Node* r = g.add_node("Relu", {x}, {"r"}, "R");
  order = g.topo_order();
  REQUIRE(order.ok());
  CHECK(order.value() == std::vector<Node*>{p, c, q, r});
}

TEST_CASE("verify catches broken graphs") {
  SUBCASE("cycle") {
    Graph g("cyc");
    Value* x = g.add_value("x");
    g.inputs.push_back(x);
    Node* a = g.add_node("Add", {x, x}, {"a"}, "A");
    Node* b = g.add_node("Neg", {a->outputs[0]}, {"b"}, "B");
    g.set_input(a, 1, b->outputs[0]);
    auto order = g.topo_order();
    CHECK_FALSE(order.ok());
    CHECK(order.status().message().find("cycle") != std::string::npos);
    CHECK_FALSE(g.verify().ok());
  }
  SUBCASE("undefined input") {
    Graph g("u");
    Value* ghost = g.add_value("ghost");  // not an input, initializer or node output
    g.add_node("Relu", {ghost}, {"y"}, "r");
    Status st = g.verify();
    CHECK_FALSE(st.ok());
    CHECK(st.message().find("'ghost' is not defined") != std::string::npos);
  }
  SUBCASE("stale use list, repaired by rebuild_uses") {
    Small s;
    s.add->inputs[1] = s.x;  // edited directly
    Status st = s.g.verify();
    CHECK_FALSE(st.ok());
    CHECK(st.message().find("use list") != std::string::npos);
    s.g.rebuild_uses();
    CHECK(s.g.verify().ok());
    CHECK(s.w->uses.empty());
  }
  SUBCASE("initializer disagrees with its declared type") {
    Small s;
    s.w->type.dims[0].value = 3;
    CHECK(s.g.verify().message().find("does not match its declared shape") != std::string::npos);
    s.w->type.dims[0].value = 2;
    s.w->type.dtype = DType::Int64;
    CHECK(s.g.verify().message().find("type says int64") != std::string::npos);
  }
  SUBCASE("graph output not defined") {
    Small s;
    s.g.outputs.push_back(s.g.add_value("nowhere"));
    CHECK_FALSE(s.g.verify().ok());
  }
}

TEST_CASE("subgraphs read outer values; use lists and removal follow") {
  Small s;
  auto [iff, then_g] = AddIfReadingA(s);
  CHECK(s.g.verify().ok());
  CHECK(s.a->uses.size() == 2);  // Add and the inner Neg
  CHECK(then_g->lookup("a") == s.a);
  CHECK(then_g->find_value("a") == nullptr);
  // rebuild from the subgraph alone keeps the outer value's other uses
  then_g->rebuild_uses();
  CHECK(s.a->uses.size() == 2);
  s.g.rebuild_uses();
  CHECK(s.a->uses.size() == 2);
  // topological order puts the If after the producer of 'a' even when stored before it
  s.g.sort_topologically();
  auto order = s.g.topo_order();
  REQUIRE(order.ok());
  // wrong parent link is reported
  then_g->parent = nullptr;
  CHECK_FALSE(s.g.verify().ok());
  then_g->parent = &s.g;
  s.g.remove_node(iff);
  CHECK(s.a->uses.size() == 1);
  CHECK(s.g.verify().ok());
}

TEST_CASE("clone: every field copied, links re-pointed, subgraph outer reads into the copy") {
  Small s;
  s.w->initializer_doc_string = "w doc";
  s.add->raw_extras = "node extras";
  s.g.raw_extras = "graph extras";
  auto [iff, then_g] = AddIfReadingA(s);
  REQUIRE(s.g.verify().ok());

  std::unique_ptr<Graph> c = s.g.clone();
  REQUIRE(c->verify().ok());
  CHECK(c->raw_extras == "graph extras");
  CHECK(c->find_value("W")->initializer_doc_string == "w doc");
  CHECK(c->find_value("W")->initializer->shares_buffer_with(*s.w->initializer));
  std::vector<Node*> a = s.g.nodes(), b = c->nodes();
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) CHECK(a[i]->name == b[i]->name);  // storage order kept
  CHECK(b[1]->raw_extras == "node extras");
  const Graph* sub = b.back()->attributes[0].g.get();
  REQUIRE(sub != then_g.get());
  CHECK(sub->parent == c.get());
  CHECK(sub->nodes()[0]->inputs[0] == c->find_value("a"));  // the copy's 'a', not the original's
  CHECK(s.a->uses.size() == 2);                             // the original is untouched
  CHECK(c->find_value("a")->uses.size() == 2);
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
    gf.graph->add_initializer("emb", Tensor::Wrap(DType::Float32, {10, 10}, buf, 0));  // shared
    gf.graph->add_initializer("own", Tensor(DType::Float32, {5}));
    m.graphs.push_back(std::move(gf));
  }
  CHECK(m.graph("encoder")->num_params() == 105);
  CHECK(m.params_total() == 100 + 5 + 5);
  CHECK(m.bytes_unique() == 400 + 20 + 20);
  // Two different views into one buffer: overlapping bytes once.
  m.graph("decoder")->add_initializer("half", Tensor::Wrap(DType::Float32, {60}, buf, 160));  // [160,400)
  CHECK(m.bytes_unique() == 400 + 40);
  CHECK(m.params_total() == 100 + 5 + 5 + 60);
  // Constant node tensors count as weight bytes.
  Node* k = m.graph("encoder")->add_node("Constant", {}, {"k"}, "k");
  k->set_attr_tensor("value", Tensor(DType::Int64, {3}));
  CHECK(m.bytes_unique() == 440 + 24);
  CHECK(unique_weight_bytes({m.graph("encoder")}) == 400 + 20 + 24);
  CHECK(m.find("decoder") != nullptr);
  CHECK(m.find("joiner") == nullptr);
  CHECK(m.find("encoder")->opset() == 17);
  CHECK(m.find("encoder")->opset("ai.onnx") == 17);
  CHECK(m.find("encoder")->opset("com.microsoft") == 1);
  CHECK(m.find("encoder")->opset("ai.onnx.ml") == 0);
}

TEST_CASE("node attribute helpers") {
  Graph g("a");
  Node* n = g.add_node("Conv", {}, {"y"}, "c");
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
