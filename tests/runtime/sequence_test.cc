// Sequence and optional values in the runtime, where the ONNX conformance data (tests/conformance,
// node and simple) has no case: uneven SplitToSequence chunks and their round trip through
// ConcatFromSequence, negative positions, and the errors (never crashes) for a sequence given to
// a tensor op, a wrong kind fed to a typed input, positions out of range, an empty optional;
// and Scan-8's batched form with sequence_lens, which the one conformance case (test_scan_sum) lacks.
#include <doctest/doctest.h>

#include "test_util.h"

using namespace asrc;
using namespace asrc::testing;  // test_util.h: tensors, one-node graphs, comparisons

namespace {

// Runs a one-node graph on `inputs` and returns its single output.
ir::Tensor RunOne(OneNode& n) {
  auto r = n.Run(18);
  REQUIRE_MESSAGE(r.ok(), r.status().message());
  return (*r)[0];
}

std::string RunError(OneNode& n) {
  auto r = n.Run(18);
  REQUIRE(!r.ok());
  return r.status().message();
}

}  // namespace

TEST_CASE("SplitToSequence with an uneven scalar split, then ConcatFromSequence, gives the input back") {
  ir::Tensor x = RandomTensor({5, 3}, 7);
  OneNode split("SplitToSequence", {x, I64({2})}, 1);
  ir::Tensor seq = RunOne(split);
  REQUIRE(seq.kind() == ir::ValueKind::Sequence);
  REQUIRE(seq.elements().size() == 3);
  CHECK(seq.elements()[0].shape() == ir::Shape{2, 3});
  CHECK(seq.elements()[2].shape() == ir::Shape{1, 3});
  CHECK(seq.elements()[2].data<float>()[1] == x.data<float>()[4 * 3 + 1]);
  OneNode concat("ConcatFromSequence", {seq}, 1);
  concat.node->set_attr_int("axis", 0);
  CHECK(SameBytes(RunOne(concat), x));

  // keepdims=0 along axis 1 drops that axis; new_axis=1 at axis -1 stacks the parts back.
  OneNode cols("SplitToSequence", {x}, 1);
  cols.node->set_attr_int("axis", 1);
  cols.node->set_attr_int("keepdims", 0);
  ir::Tensor c = RunOne(cols);
  REQUIRE(c.elements().size() == 3);
  CHECK(c.elements()[1].shape() == ir::Shape{5});
  CHECK(c.elements()[1].data<float>()[4] == x.data<float>()[4 * 3 + 1]);
  OneNode stack("ConcatFromSequence", {c}, 1);
  stack.node->set_attr_int("axis", -1);
  stack.node->set_attr_int("new_axis", 1);
  CHECK(SameBytes(RunOne(stack), x));

  OneNode bad("SplitToSequence", {x, I64({2, 2})}, 1);
  CHECK(RunError(bad).find("split sizes sum to 4") != std::string::npos);
}

TEST_CASE("SequenceInsert, SequenceErase and SequenceAt take negative positions and reject others") {
  std::vector<ir::Tensor> ts;
  for (int i = 0; i < 3; ++i) ts.push_back(ir::Tensor::Scalar(static_cast<float>(i)));
  ir::Tensor seq = ir::Tensor::Sequence(ir::DType::Float32, ts);
  OneNode ins("SequenceInsert", {seq, ir::Tensor::Scalar(9.f), I64({-1})}, 1);
  ir::Tensor s2 = RunOne(ins);  // [0, 1, 9, 2]
  REQUIRE(s2.elements().size() == 4);
  CHECK(s2.elements()[2].data<float>()[0] == 9.f);
  CHECK(s2.elements()[3].data<float>()[0] == 2.f);
  CHECK(seq.elements().size() == 3);  // the input sequence is unchanged

  OneNode erase("SequenceErase", {s2, I64({-4})}, 1);
  ir::Tensor s3 = RunOne(erase);  // [1, 9, 2]
  REQUIRE(s3.elements().size() == 3);
  CHECK(s3.elements()[0].data<float>()[0] == 1.f);

  OneNode at("SequenceAt", {s3, I64({-1})}, 1);
  CHECK(RunOne(at).data<float>()[0] == 2.f);
  OneNode far("SequenceAt", {s3, I64({3})}, 1);
  CHECK(RunError(far).find("position 3 is outside [-3, 2]") != std::string::npos);

  OneNode wrong("SequenceInsert", {seq, I64({1})}, 1);
  CHECK(RunError(wrong).find("does not match the sequence's float32") != std::string::npos);
}

TEST_CASE("a sequence reaches a tensor op or a tensor-typed input only as an error") {
  ir::Tensor seq = ir::Tensor::Sequence(ir::DType::Float32, {ir::Tensor::Scalar(1.f)});
  OneNode relu("Relu", {seq}, 1);
  std::string e = RunError(relu);
  CHECK(e.find("node 'n0' (Relu)") != std::string::npos);
  CHECK(e.find("is a sequence; the op takes tensors only") != std::string::npos);

  OneNode id("Identity", {seq}, 1);
  id.g.inputs[0]->type.has_type = true;
  id.g.inputs[0]->type.dtype = ir::DType::Float32;  // declared a float tensor
  CHECK(RunError(id).find("input 'in0' must be a tensor, got a sequence") != std::string::npos);
  id.g.inputs[0]->type.kind = ir::ValueKind::Sequence;
  CHECK(RunOne(id).elements().size() == 1);
}

TEST_CASE("Optional, OptionalHasElement and OptionalGetElement, with None and omitted inputs") {
  ir::Tensor x = RandomTensor({2}, 3);
  OneNode wrap("Optional", {x}, 1);
  ir::Tensor o = RunOne(wrap);
  REQUIRE(o.kind() == ir::ValueKind::Optional);
  OneNode get("OptionalGetElement", {o}, 1);
  CHECK(SameBytes(RunOne(get), x));
  OneNode has("OptionalHasElement", {o}, 1);
  CHECK(RunOne(has).data<bool>()[0]);

  ir::Tensor none = ir::Tensor::Optional(ir::DType::Float32, nullptr);
  OneNode has_none("OptionalHasElement", {none}, 1);
  CHECK(!RunOne(has_none).data<bool>()[0]);
  OneNode omitted("OptionalHasElement", {ir::Tensor()}, 1);
  CHECK(!RunOne(omitted).data<bool>()[0]);
  OneNode get_none("OptionalGetElement", {none}, 1);
  CHECK(RunError(get_none).find("empty (None)") != std::string::npos);
}

TEST_CASE("NegativeLogLikelihoodLoss names a target outside [0, C)") {
  ir::Tensor x = RandomTensor({2, 3}, 5);
  OneNode nll("NegativeLogLikelihoodLoss", {x, I64({0, 3})}, 1);
  CHECK(RunError(nll).find("target value 3 at flat index 1 is outside [0, 3)") != std::string::npos);
  nll.node->set_attr_int("ignore_index", 3);  // now ignored: the mean over the one kept target
  CHECK(RunOne(nll).data<float>()[0] == doctest::Approx(-x.data<float>()[0]));
}

TEST_CASE("Scan opset 8: per-batch sequence_lens, a reversed scan input, zero-padded scan outputs") {
  // Body: sum_out = sum_in + next; scan_out = sum_out. Batch 0 runs 3 steps over x reversed
  // (3, 2, 1): sums 3, 5, 6. Batch 1 runs 1 step (10): sum 10, scan output [10, 0, 0].
  ir::Graph g("scan8");
  auto body = std::make_shared<ir::Graph>("scan_body");
  body->parent = &g;
  ir::Value* sum_in = body->AddValue("sum_in");
  ir::Value* next = body->AddValue("next");
  body->inputs = {sum_in, next};
  ir::Value* sum_out = body->AddNode("Add", {sum_in, next}, {"sum_out"})->outputs[0];
  body->outputs = {sum_out, body->AddNode("Identity", {sum_out}, {"scan_out"})->outputs[0]};
  ir::Value* lens = g.AddInitializer("lens", I64({3, 1}));
  ir::Value* init = g.AddValue("init");
  ir::Value* x = g.AddValue("x");
  g.inputs = {init, x};
  ir::Node* scan = g.AddNode("Scan", {lens, init, x}, {"y", "z"}, "scan");
  ir::Attribute ba;
  ba.name = "body";
  ba.kind = ir::Attribute::Kind::Graph;
  ba.g = body;
  scan->attributes.push_back(ba);
  scan->set_attr_int("num_scan_inputs", 1);
  scan->set_attr_ints("directions", {1});
  g.outputs = scan->outputs;
  auto s = runtime::Session::Create(g, 8);
  REQUIRE_MESSAGE(s.ok(), s.status().message());
  std::vector<ir::Tensor> out;
  auto xs = ir::Tensor::FromVector(ir::DType::Float32, {2, 3, 1}, std::vector<float>{1, 2, 3, 10, 20, 30});
  REQUIRE((*s)->Run({ir::Tensor(ir::DType::Float32, {2, 1}), xs}, &out).ok());
  CHECK(out[0].shape() == ir::Shape{2, 1});
  CHECK(out[0].data<float>()[0] == 6.f);
  CHECK(out[0].data<float>()[1] == 10.f);
  REQUIRE(out[1].shape() == ir::Shape{2, 3, 1});
  const std::vector<float> want = {3, 5, 6, 10, 0, 0};
  for (int i = 0; i < 6; ++i) CHECK(out[1].data<float>()[i] == want[i]);
}
