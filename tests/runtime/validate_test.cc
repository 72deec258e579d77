// Plan-time validation (runtime/validate.h) and the memory budget (ir/tensor.h): malformed nodes
// are refused before any kernel runs, with an error naming the node; allocations over the budget
// are errors naming the node, not aborts.
#include <doctest/doctest.h>

#include "ir/tensor.h"
#include "runtime/validate.h"
#include "test_util.h"

using namespace asrc;
using asrc::testing::I64;
using asrc::testing::OneNode;
using asrc::testing::RandomTensor;

namespace {
bool Says(const Status& st, const std::string& text) {
  return st.message().find(text) != std::string::npos;
}
Status PlanError(OneNode& n, int64_t opset = 17) {
  auto r = n.Run(opset);
  return r.ok() ? Status::Ok() : r.status();
}
}  // namespace

TEST_CASE("a Gemm whose input A is empty is refused at planning, naming the node and the input") {
  OneNode n("Gemm", {ir::Tensor(), RandomTensor({3, 4}, 1)}, 1, {false, true});
  Status st = PlanError(n);
  REQUIRE(!st.ok());
  CHECK(Says(st, "'n0' (Gemm)"));
  CHECK(Says(st, "input 0 (A) is missing"));
}

TEST_CASE("an op with fewer inputs than its schema needs is refused (Identity with none)") {
  OneNode n("Identity", {}, 1);
  Status st = PlanError(n);
  REQUIRE(!st.ok());
  CHECK(Says(st, "input 0 (input) is missing"));
}

TEST_CASE("an op used under an opset older than the op is checked against its newest schema") {
  // onnx_run_fuzzer: ConvInteger (opset 10) at opset 6, with no weight input, reached the kernel.
  OneNode n("ConvInteger", {ir::Tensor::FromVector(ir::DType::Uint8, {1, 1, 2}, std::vector<uint8_t>{1, 2})}, 1);
  Status st = PlanError(n, 6);
  REQUIRE(!st.ok());
  CHECK(Says(st, "input 1 (w) is missing"));
}

TEST_CASE("an input dtype outside the op's type constraint is refused (a STRING Gemm bias)") {
  ir::Tensor bias(ir::DType::String, {4});
  OneNode n("Gemm", {RandomTensor({2, 3}, 2), RandomTensor({3, 4}, 3), bias}, 1, {false, true, true});
  Status st = PlanError(n);
  REQUIRE(!st.ok());
  CHECK(Says(st, "input 2 (C)"));
  CHECK(Says(st, "dtype string"));
}

TEST_CASE("inputs tied to one type parameter must agree (Add of float32 and int64)") {
  OneNode n("Add", {RandomTensor({3}, 4), I64({1, 2, 3})}, 1, {true, true});
  Status st = PlanError(n);
  REQUIRE(!st.ok());
  CHECK(Says(st, "dtype int64, but an earlier input of type T has float32"));
}

TEST_CASE("attribute types are the schema's: a STRING transB is an error, not transB=0") {
  OneNode n("Gemm", {RandomTensor({2, 3}, 5), RandomTensor({4, 3}, 6)}, 1, {false, true});
  n.node->set_attr_string("transB", "1");
  Status st = PlanError(n);
  REQUIRE(!st.ok());
  CHECK(Says(st, "attribute 'transB' must be INT, got STRING"));
  n.node->attributes.clear();
  n.node->set_attr_int("transB", 1);
  CHECK(n.Run(17).ok());
}

TEST_CASE("a required attribute must be present (Cast without 'to')") {
  OneNode n("Cast", {RandomTensor({2}, 7)}, 1);
  Status st = PlanError(n);
  REQUIRE(!st.ok());
  CHECK(Says(st, "required attribute 'to' is missing"));
}

TEST_CASE("opsets outside 1..kMaxOpset are refused; above libonnx's schemas only safe checks run") {
  OneNode relu("Relu", {RandomTensor({2}, 8)}, 1);
  CHECK(Says(PlanError(relu, 0), "opset 0"));
  CHECK(Says(PlanError(relu, 99), "opset 99"));
  CHECK(Says(PlanError(relu, -3), "opset -3"));
  CHECK(relu.Run(runtime::kMaxOpset).ok());
  OneNode id("Identity", {}, 1);
  CHECK(Says(PlanError(id, runtime::kMaxOpset), "is missing"));
}

TEST_CASE("ops of other domains are left to the kernel registry") {
  ir::Graph g("g");
  ir::Node* n = g.AddNode("FancyOp", {}, {"y"}, "custom", "com.example");
  CHECK(runtime::ValidateNode(*n, 17, {}).ok());
}

TEST_CASE("a kernel output over the memory budget is an error naming the node") {
  OneNode n("ConstantOfShape", {I64({1 << 20, 1 << 20, 1 << 20})}, 1);
  Status st = PlanError(n);
  REQUIRE(!st.ok());
  CHECK(Says(st, "'n0' (ConstantOfShape)"));
  CHECK(Says(st, "memory budget"));
  OneNode overflow("ConstantOfShape", {I64({int64_t{1} << 62, 1 << 4})}, 1);
  Status so = PlanError(overflow);
  REQUIRE(!so.ok());
  CHECK(Says(so, "memory budget"));
}

TEST_CASE("the memory budget counts live buffers and is settable") {
  const size_t before = ir::MemoryInUse();
  {
    ir::Tensor t(ir::DType::Float32, {1024});
    CHECK(ir::MemoryInUse() == before + 4096);
  }
  CHECK(ir::MemoryInUse() == before);
  ir::SetMemoryBudget(before + (1 << 20));
  CHECK_THROWS_AS(ir::Tensor(ir::DType::Float32, {1 << 20}), ir::MemoryBudgetError);
  CHECK(ir::MemoryInUse() == before);
  ir::Tensor small(ir::DType::Float32, {1024});
  CHECK(small.numel() == 1024);
  ir::SetMemoryBudget(0);
  CHECK(ir::MemoryBudget() > (size_t{1} << 20));
}

TEST_CASE("window attributes: stride or dilation 0 and negative pads are refused at planning") {
  // onnx_run_fuzzer: a Conv with strides [0] divided by zero in the kernel.
  struct Case { const char* op; const char* attr; std::vector<int64_t> v; const char* says; };
  const Case cases[] = {{"Conv", "strides", {0}, "'strides' holds 0, outside [1, 2^31)"},
                        {"Conv", "dilations", {-1}, "'dilations' holds -1"},
                        {"Conv", "pads", {0, -2}, "'pads' holds -2, outside [0, 2^31)"},
                        {"MaxPool", "strides", {0}, "'strides' holds 0"},
                        {"AveragePool", "kernel_shape", {int64_t{1} << 40}, "'kernel_shape' holds"}};
  for (const Case& c : cases) {
    const std::string what = std::string(c.op) + " " + c.attr;
    INFO(what);
    std::vector<ir::Tensor> ins = {RandomTensor({1, 1, 5}, 8)};
    if (std::string(c.op) == "Conv") ins.push_back(RandomTensor({1, 1, 3}, 9));
    OneNode n(c.op, ins, 1, {false, true});
    if (std::string(c.op) != "Conv" && std::string(c.attr) != "kernel_shape") n.node->set_attr_ints("kernel_shape", {3});
    n.node->set_attr_ints(c.attr, c.v);
    Status st = PlanError(n);
    REQUIRE(!st.ok());
    CHECK(Says(st, std::string("'n0' (") + c.op + ")"));
    CHECK(Says(st, c.says));
  }
  OneNode ok("Conv", {RandomTensor({1, 1, 5}, 8), RandomTensor({1, 1, 3}, 9)}, 1, {false, true});
  ok.node->set_attr_ints("strides", {2});
  ok.node->set_attr_ints("pads", {1, 1});
  auto y = ok.Run();
  REQUIRE(y.ok());
  CHECK((*y)[0].shape() == ir::Shape{1, 1, 3});
}
