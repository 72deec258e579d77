// onnx_io: lossless round trip of hand-built protos (every field kind, subgraphs, unknown fields),
// external data and shared buffers in bundles, TensorProto files, and robustness against corrupt
// input (every truncation and many byte flips of a real export must fail cleanly, never crash).
#include <doctest/doctest.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>

#include <onnx/checker.h>
#include <onnx/onnx_pb.h>

#include "onnx/onnx_io.h"
#include "onnx_test_util.h"
#include "reference.h"

namespace fs = std::filesystem;
using namespace asrc;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() / ("asrc_onnx_io_" + std::to_string(::getpid()) + "_" +
                                        std::to_string(counter()++));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  static int& counter() {
    static int c = 0;
    return c;
  }
  std::string operator/(const std::string& f) const { return (path / f).string(); }
};

std::string fixture(const std::string& name) { return std::string(ASRC_SOURCE_DIR) + "/tests/fixtures/" + name; }

std::string read_all(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A model using every attribute kind, a subgraph reading an outer value, value_info with a
// denotation, doc strings, metadata, a function, and unknown fields from a "newer" ONNX.
onnx::ModelProto rich_model() {
  onnx::ModelProto m;
  m.set_ir_version(8);
  auto* op = m.add_opset_import();
  op->set_domain("");
  op->set_version(17);
  auto* op2 = m.add_opset_import();
  op2->set_domain("local");
  op2->set_version(1);
  m.set_producer_name("asrc-test");
  m.set_producer_version("1");
  m.set_doc_string("model doc");
  m.set_model_version(3);
  auto* kv = m.add_metadata_props();
  kv->set_key("author");
  kv->set_value("tests");
  m.mutable_unknown_fields()->AddVarint(1000, 42);  // a field this libonnx does not know
  auto* f = m.add_functions();
  f->set_name("MyFn");
  f->set_domain("local");
  auto* g = m.mutable_graph();
  g->set_name("main");
  g->set_doc_string("graph doc");
  auto add_vi = [](onnx::ValueInfoProto* vi, const std::string& n, int et, std::vector<int64_t> dims) {
    vi->set_name(n);
    auto* tt = vi->mutable_type()->mutable_tensor_type();
    tt->set_elem_type(et);
    auto* sh = tt->mutable_shape();
    for (int64_t d : dims) {
      auto* dd = sh->add_dim();
      if (d >= 0) dd->set_dim_value(d);
      else dd->set_dim_param("N");
    }
  };
  add_vi(g->add_input(), "x", onnx::TensorProto::FLOAT, {-1, 4});
  g->mutable_input(0)->set_doc_string("input doc");
  add_vi(g->add_input(), "cond", onnx::TensorProto::BOOL, {});
  add_vi(g->add_output(), "y", onnx::TensorProto::FLOAT, {-1, 4});
  add_vi(g->add_value_info(), "a", onnx::TensorProto::FLOAT, {-1, 4});
  g->mutable_value_info(0)->mutable_type()->set_denotation("TENSOR");
  auto* w = g->add_initializer();
  w->set_name("w");
  w->set_data_type(onnx::TensorProto::FLOAT);
  w->add_dims(4);
  for (float v : {1.f, -2.f, 3.5f, 0.25f}) w->add_float_data(v);
  w->set_doc_string("weight doc");
  auto* h = g->add_initializer();
  h->set_name("h16");
  h->set_data_type(onnx::TensorProto::FLOAT16);
  h->add_dims(2);
  h->add_int32_data(0x3c00);
  h->add_int32_data(0xc000);
  auto* n1 = g->add_node();
  n1->set_name("add");
  n1->set_op_type("Add");
  n1->add_input("x");
  n1->add_input("w");
  n1->add_output("a");
  n1->set_doc_string("node doc");
  n1->mutable_unknown_fields()->AddLengthDelimited(900, "future");
  auto* n2 = g->add_node();
  n2->set_name("if");
  n2->set_op_type("If");
  n2->add_input("cond");
  n2->add_output("y");
  for (const char* branch : {"then_branch", "else_branch"}) {
    auto* at = n2->add_attribute();
    at->set_name(branch);
    at->set_type(onnx::AttributeProto::GRAPH);
    auto* sg = at->mutable_g();
    sg->set_name(branch);
    auto* sn = sg->add_node();
    sn->set_op_type(std::string(branch) == "then_branch" ? "Neg" : "Abs");
    sn->add_input("a");  // outer value
    sn->add_output(std::string(branch) + "_out");
    add_vi(sg->add_output(), std::string(branch) + "_out", onnx::TensorProto::FLOAT, {-1, 4});
  }
  auto* n3 = g->add_node();
  n3->set_name("custom");
  n3->set_op_type("MyFn");
  n3->set_domain("local");
  n3->add_input("y");
  n3->add_input("");  // omitted optional input
  n3->add_output("z");
  n3->add_output("");
  auto attr = [&](const char* name, onnx::AttributeProto::AttributeType t) {
    auto* a = n3->add_attribute();
    a->set_name(name);
    a->set_type(t);
    return a;
  };
  attr("f", onnx::AttributeProto::FLOAT)->set_f(0.125f);
  attr("i", onnx::AttributeProto::INT)->set_i(-7);
  attr("s", onnx::AttributeProto::STRING)->set_s(std::string("bytes\0here", 10));
  auto* at = attr("t", onnx::AttributeProto::TENSOR)->mutable_t();
  at->set_name("const_t");
  at->set_data_type(onnx::TensorProto::INT64);
  at->add_dims(3);
  for (int64_t v : {1, -2, 3}) at->add_int64_data(v);
  auto* fs_ = attr("floats", onnx::AttributeProto::FLOATS);
  fs_->add_floats(1.5f);
  fs_->add_floats(-0.f);
  auto* is = attr("ints", onnx::AttributeProto::INTS);
  is->add_ints(1);
  is->add_ints(INT64_MIN);
  auto* ss = attr("strings", onnx::AttributeProto::STRINGS);
  ss->add_strings("a");
  ss->add_strings("");
  auto* ts = attr("tensors", onnx::AttributeProto::TENSORS)->add_tensors();
  ts->set_data_type(onnx::TensorProto::STRING);
  ts->add_dims(2);
  ts->add_string_data("hello");
  ts->add_string_data("world");
  attr("tp", onnx::AttributeProto::TYPE_PROTO)->mutable_tp()->mutable_sequence_type()->mutable_elem_type()
      ->mutable_tensor_type()->set_elem_type(1);
  auto* r = n3->add_attribute();
  r->set_name("ref");
  r->set_ref_attr_name("outer_attr");
  r->set_type(onnx::AttributeProto::INT);
  add_vi(g->add_output(), "z", onnx::TensorProto::FLOAT, {-1, 4});
  return m;
}

}  // namespace

TEST_CASE("a model with every field kind round-trips losslessly") {
  onnx::ModelProto orig = rich_model();
  std::string bytes = orig.SerializeAsString();
  auto gf = onnx_io::ParseGraphFile(bytes, "rich.onnx", "");
  REQUIRE_MESSAGE(gf.ok(), gf.status().message());
  ir::Graph& g = *gf->graph;
  CHECK(g.Verify().ok());
  CHECK(gf->opset() == 17);
  CHECK(gf->opset("local") == 1);
  REQUIRE(g.FindValue("a") != nullptr);
  CHECK(g.FindValue("a")->uses.size() == 2);  // both branches read it
  CHECK(g.FindValue("h16")->initializer->data<uint16_t>()[1] == 0xc000);
  CHECK(g.FindValue("w")->initializer->data<float>()[2] == 3.5f);
  ir::Model m;
  m.graphs.push_back(std::move(gf).value());
  TempDir tmp;
  onnx_io::SaveOptions opt;
  opt.check = false;  // MyFn has no schema, and the function body is empty on purpose
  REQUIRE(onnx_io::SaveModel(m, tmp / "rich.onnx", opt).ok());
  onnx::ModelProto back;
  REQUIRE(asrc_test::ReadProto(tmp / "rich.onnx", &back));
  CHECK(back.unknown_fields().field_count() == 1);
  CHECK(back.graph().node(0).unknown_fields().field_count() == 1);
  asrc_test::Normalize(&orig);
  asrc_test::Normalize(&back);
  std::string diff;
  CHECK_MESSAGE(asrc_test::Equivalent(orig, back, &diff), diff);
}

TEST_CASE("a bundle writes a buffer shared by two graphs once, and loads it shared") {
  TempDir tmp;
  ir::Model m;
  m.is_bundle = true;
  m.config = {{"model_type", "transducer"}, {"decoding", {{"blank_id", 0}}}};
  m.tokens = {"<blk>", "a", "b c"};
  const int V = 3, D = 64;
  auto emb = std::make_shared<ir::Buffer>(V * D * 4);
  for (int i = 0; i < V * D; ++i) reinterpret_cast<float*>(emb->data())[i] = 0.01f * i;
  auto make = [&](const std::string& role, bool gather) {
    ir::GraphFile gf;
    gf.role = role;
    gf.opsets.push_back({"", 17});
    gf.graph = std::make_unique<ir::Graph>(role);
    ir::Graph& g = *gf.graph;
    ir::Value* w = g.AddInitializer("tied.weight", ir::Tensor::Wrap(ir::DType::Float32, {V, D}, emb));
    ir::Value* x = g.AddValue(gather ? "y" : "x");
    x->type.has_type = true;
    x->type.dtype = gather ? ir::DType::Int64 : ir::DType::Float32;
    x->type.has_shape = true;
    x->type.dims = {ir::Dim{1, ""}, ir::Dim{gather ? 1 : D, ""}};
    g.inputs.push_back(x);
    ir::Node* n = gather ? g.AddNode("Gather", {w, x}, {"out"}, "emb")
                         : g.AddNode("MatMul", {x, g.AddNode("Transpose", {w}, {"wt"}, "t")->outputs[0]}, {"out"}, "proj");
    n->outputs[0]->type.has_type = true;  // graph outputs need a type for the checker
    n->outputs[0]->type.dtype = ir::DType::Float32;
    n->outputs[0]->type.has_shape = true;
    n->outputs[0]->type.dims = {ir::Dim{-1, "N"}, ir::Dim{-1, ""}};
    g.outputs.push_back(n->outputs[0]);
    g.AddInitializer("big", ir::Tensor(ir::DType::Float32, {256}));  // external with a threshold
    return gf;
  };
  m.graphs.push_back(make("decoder", true));
  m.graphs.push_back(make("joiner", false));
  m.graphs.push_back(make("encoder", false));
  int64_t bytes = m.BytesUnique();
  CHECK(bytes == V * D * 4 + 3 * 1024);
  onnx_io::SaveOptions opt;
  opt.external_threshold = 1024;
  Status st = onnx_io::SaveModel(m, tmp / "bundle", opt);
  REQUIRE_MESSAGE(st.ok(), st.message());
  for (const char* f : {"model.json", "tokens.txt", "decoder.onnx", "joiner.onnx", "encoder.onnx",
                        "shared_weights.bin", "decoder.onnx.data"})
    CHECK_MESSAGE(fs::exists(tmp / ("bundle/" + std::string(f))), f);
  CHECK(fs::file_size(tmp / "bundle/shared_weights.bin") == static_cast<uintmax_t>(V * D * 4));  // once
  for (const char* f : {"decoder.onnx", "joiner.onnx", "encoder.onnx"})
    CHECK_NOTHROW(onnx::checker::check_model(tmp / ("bundle/" + std::string(f))));
  auto back = onnx_io::LoadModel(tmp / "bundle");
  REQUIRE_MESSAGE(back.ok(), back.status().message());
  CHECK(back->is_bundle);
  CHECK(back->tokens == m.tokens);
  CHECK(back->config["decoding"]["blank_id"] == 0);
  CHECK(back->config["format"] == "asrc-bundle");
  CHECK_FALSE(back->config.contains("graphs"));
  CHECK(back->BytesUnique() == bytes);
  CHECK(back->ParamsTotal() == m.ParamsTotal());
  const ir::Tensor& d = *back->graph("decoder")->FindValue("tied.weight")->initializer;
  const ir::Tensor& j = *back->graph("joiner")->FindValue("tied.weight")->initializer;
  CHECK(d.SharesBufferWith(j));
  CHECK(d.data<float>()[V * D - 1] == doctest::Approx(0.01f * (V * D - 1)));
  CHECK_FALSE(back->graph("decoder")->FindValue("big")->initializer->SharesBufferWith(
      *back->graph("joiner")->FindValue("big")->initializer));
  // Saving over an existing bundle replaces it.
  back->tokens.push_back("d");
  REQUIRE(onnx_io::SaveModel(back.value(), tmp / "bundle").ok());
  auto again = onnx_io::LoadModel(tmp / "bundle");
  REQUIRE(again.ok());
  CHECK(again->tokens.size() == 4);
  // A bundle does not go into a .onnx file.
  CHECK_FALSE(onnx_io::SaveModel(back.value(), tmp / "x.onnx").ok());
}

TEST_CASE("single files: external data written, read, and missing data named") {
  TempDir tmp;
  auto m = onnx_io::LoadModel(fixture("lstm_decoder.onnx"));
  REQUIRE(m.ok());
  onnx_io::SaveOptions opt;
  opt.external_threshold = 4096;
  REQUIRE(onnx_io::SaveModel(m.value(), tmp / "dec.onnx", opt).ok());
  CHECK(fs::exists(tmp / "dec.onnx.data"));
  CHECK(fs::file_size(tmp / "dec.onnx") < fs::file_size(fixture("lstm_decoder.onnx")) / 2);
  auto back = onnx_io::LoadModel(tmp / "dec.onnx");
  REQUIRE(back.ok());
  CHECK(back->ParamsTotal() == m->ParamsTotal());
  for (const ir::Value* v : m->graphs[0].graph->initializers) {
    const ir::Value* w = back->graphs[0].graph->FindValue(v->name);
    REQUIRE(w);
    CHECK(std::memcmp(v->initializer->raw(), w->initializer->raw(), v->initializer->nbytes()) == 0);
  }
  // Writing it again inline removes the stale data file.
  REQUIRE(onnx_io::SaveModel(back.value(), tmp / "dec.onnx").ok());
  CHECK_FALSE(fs::exists(tmp / "dec.onnx.data"));
  REQUIRE(onnx_io::SaveModel(back.value(), tmp / "dec2.onnx", opt).ok());
  fs::remove(tmp / "dec2.onnx.data");
  auto missing = onnx_io::LoadModel(tmp / "dec2.onnx");
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.status().message().find("dec2.onnx.data") != std::string::npos);
  CHECK(missing.status().message().find("not found") != std::string::npos);
}

TEST_CASE("TensorProto files: conformance data loads, saves and reloads") {
  const std::string dir = test::OnnxNodeTests() + "/test_abs/test_data_set_0/";
  if (!test::HaveReference(fs::exists(dir), "ONNX conformance case " + dir)) return;
  std::string in_name, out_name;
  auto x = onnx_io::LoadTensorFile(dir + "input_0.pb", &in_name);
  auto y = onnx_io::LoadTensorFile(dir + "output_0.pb", &out_name);
  REQUIRE(x.ok());
  REQUIRE(y.ok());
  CHECK(in_name == "x");
  CHECK(x->shape() == ir::Shape{3, 4, 5});
  CHECK(x->dtype() == ir::DType::Float32);
  for (int64_t i = 0; i < x->numel(); ++i) CHECK(y->data<float>()[i] == std::fabs(x->data<float>()[i]));
  TempDir tmp;
  REQUIRE(onnx_io::SaveTensorFile(x.value(), "x", tmp / "t.pb").ok());
  std::string name;
  auto x2 = onnx_io::LoadTensorFile(tmp / "t.pb", &name);
  REQUIRE(x2.ok());
  CHECK(name == "x");
  CHECK(std::memcmp(x2->raw(), x->raw(), x->nbytes()) == 0);
  ir::Tensor s(ir::DType::String, {2});
  s.strings = {"a", "bc"};
  REQUIRE(onnx_io::SaveTensorFile(s, "s", tmp / "s.pb").ok());
  auto s2 = onnx_io::LoadTensorFile(tmp / "s.pb");
  REQUIRE(s2.ok());
  CHECK(s2->strings == s.strings);
  // A SequenceProto file is not a tensor: an error, not garbage.
  const std::string seq = test::OnnxNodeTests() + "/test_sequence_insert_at_back/test_data_set_0/input_0.pb";
  if (test::HaveReference(fs::exists(seq), "ONNX conformance case " + seq)) CHECK_FALSE(onnx_io::LoadTensorFile(seq).ok());
  CHECK_FALSE(onnx_io::LoadTensorFile(tmp / "nothing.pb").ok());
}

TEST_CASE("SequenceProto and OptionalProto files: conformance data loads, saves and reloads") {
  const std::string dir = test::OnnxNodeTests() + "/test_sequence_insert_at_back/test_data_set_0/";
  if (!test::HaveReference(fs::exists(dir), "ONNX conformance case " + dir)) return;
  auto seq = onnx_io::LoadValueFile(dir + "input_0.pb", ir::ValueKind::Sequence);
  REQUIRE_MESSAGE(seq.ok(), seq.status().message());
  REQUIRE(seq->kind() == ir::ValueKind::Sequence);
  REQUIRE(seq->elements().size() == 3);  // float tensors of shapes [4], [3], [2]
  CHECK(seq->elements()[0].shape() == ir::Shape{4});
  CHECK(seq->elements()[2].shape() == ir::Shape{2});
  TempDir tmp;
  ir::Tensor none = ir::Tensor::Optional(ir::DType::Undefined, nullptr);
  ir::Tensor opt = ir::Tensor::Optional(ir::DType::Float32, &*seq);
  REQUIRE(onnx_io::SaveTensorFile(*seq, "s", tmp / "s.pb").ok());
  REQUIRE(onnx_io::SaveTensorFile(opt, "o", tmp / "o.pb").ok());
  REQUIRE(onnx_io::SaveTensorFile(none, "n", tmp / "n.pb").ok());
  std::string name;
  auto s2 = onnx_io::LoadValueFile(tmp / "s.pb", ir::ValueKind::Sequence, &name);
  auto o2 = onnx_io::LoadValueFile(tmp / "o.pb", ir::ValueKind::Optional);
  auto n2 = onnx_io::LoadValueFile(tmp / "n.pb", ir::ValueKind::Optional);
  REQUIRE((s2.ok() && o2.ok() && n2.ok()));
  CHECK(name == "s");
  REQUIRE(s2->elements().size() == 3);
  CHECK(std::memcmp(s2->elements()[2].raw(), seq->elements()[2].raw(), seq->elements()[2].nbytes()) == 0);
  REQUIRE(o2->elements().size() == 1);
  CHECK(o2->elements()[0].kind() == ir::ValueKind::Sequence);
  CHECK(n2->elements().empty());
  // The kinds are not interchangeable: a tensor file read as a sequence is an error.
  CHECK_FALSE(onnx_io::LoadValueFile(test::OnnxNodeTests() + "/test_abs/test_data_set_0/input_0.pb",
                                     ir::ValueKind::Sequence).ok());
}

TEST_CASE("corrupt input fails cleanly: every truncation and random byte flips") {
  const std::string bytes = read_all(fixture("joiner.onnx"));
  REQUIRE(bytes.size() > 1000);
  REQUIRE(onnx_io::ParseGraphFile(bytes, "joiner.onnx", "").ok());
  int ok = 0;
  for (size_t n = 0; n < bytes.size(); n += 3) {
    auto r = onnx_io::ParseGraphFile(bytes.substr(0, n), "cut.onnx", "");
    if (r.ok()) ++ok;
    else CHECK(r.status().message().rfind("cut.onnx: ", 0) == 0);
  }
  CHECK(ok == 0);  // no proper prefix of this model is a complete model
  std::mt19937 rng(1234);
  int parsed = 0;
  for (int it = 0; it < 1500; ++it) {
    std::string b = bytes;
    int flips = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < flips; ++k) b[rng() % b.size()] = static_cast<char>(rng() & 0xff);
    auto r = onnx_io::ParseGraphFile(b, "flip.onnx", "");
    if (r.ok()) {
      ++parsed;
      CHECK(r->graph->Verify().ok());
    }
  }
  MESSAGE("byte-flipped copies that still parse: " << parsed << "/1500");
}

TEST_CASE("bool raw_data bytes other than 0 and 1 import as true (no invalid C++ bools)") {
  onnx::ModelProto m;
  m.set_ir_version(8);
  m.add_opset_import()->set_version(17);
  auto* g = m.mutable_graph();
  g->set_name("g");
  auto* b = g->add_initializer();
  b->set_name("b");
  b->set_data_type(onnx::TensorProto::BOOL);
  b->add_dims(3);
  b->set_raw_data(std::string("\x02\x00\xff", 3));
  auto* n = g->add_node();
  n->set_op_type("Not");
  n->add_input("b");
  n->add_output("y");
  auto* y = g->add_output();
  y->set_name("y");
  y->mutable_type()->mutable_tensor_type()->set_elem_type(onnx::TensorProto::BOOL);
  auto gf = onnx_io::ParseGraphFile(m.SerializeAsString(), "bools.onnx", "");
  REQUIRE_MESSAGE(gf.ok(), gf.status().message());
  const ir::Value* v = gf->graph->FindValue("b");
  REQUIRE(v);
  REQUIRE(v->initializer);
  const uint8_t* p = static_cast<const uint8_t*>(v->initializer->raw());
  CHECK(p[0] == 1);
  CHECK(p[1] == 0);
  CHECK(p[2] == 1);
}
