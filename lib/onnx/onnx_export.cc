// ir -> ONNX: graph files and bundle folders (docs/bundle.md). Tensor data is always re-encoded
// (raw_data or external data), so a round trip keeps values but not the storage form (float_data
// vs raw_data); fields import carried opaquely are written back as they came.
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <set>

#include <onnx/checker.h>

#include "onnx/onnx_internal.h"
#include "onnx/onnx_io.h"

namespace asrc::onnx_io {

void detail::TensorToProtoInline(const Tensor& t, onnx::TensorProto* p) {
  for (int64_t d : t.shape()) p->add_dims(d);
  p->set_data_type(static_cast<int32_t>(t.dtype()));
  if (t.dtype() == DType::String) {
    for (const auto& s : t.strings) p->add_string_data(s);
  } else {
    p->set_raw_data(t.nbytes() ? std::string(reinterpret_cast<const char*>(t.raw()), t.nbytes()) : std::string());
  }
}

namespace {

void TypeToProto(const ir::TypeInfo& ti, onnx::ValueInfoProto* vi) {
  if (!ti.has_type) return;
  if (!ti.opaque.empty()) {
    vi->mutable_type()->ParseFromString(ti.opaque);
    return;
  }
  onnx::TypeProto built;
  TypeBuild(ti, &built);
  if (!ti.raw_type.empty()) {
    // Keep the recorded extras (denotations, ...) unless a pass changed the modeled part since.
    onnx::TypeProto raw;
    ir::TypeInfo proj;
    if (raw.ParseFromString(ti.raw_type) && TypeModeled(raw, &proj)) {
      onnx::TypeProto proj_built;
      TypeBuild(proj, &proj_built);
      if (proj_built.SerializeAsString() == built.SerializeAsString()) {
        *vi->mutable_type() = raw;
        return;
      }
    }
  }
  *vi->mutable_type() = built;
}


// Where one tensor's bytes go when it is written externally.
struct Placement {
  std::string location;
  uint64_t offset = 0;
};

class DataFile {
 public:
  DataFile(std::string name, std::string path) : name_(std::move(name)), path_(std::move(path)) {}
  const std::string& name() const { return name_; }
  Result<uint64_t> Append(const uint8_t* p, size_t n) {
    if (!out_.is_open()) {
      out_.open(path_, std::ios::binary | std::ios::trunc);
      if (!out_) return Error(path_ + ": cannot write");
    }
    static const char zeros[64] = {};
    size_t pad = (64 - size_ % 64) % 64;
    out_.write(zeros, static_cast<std::streamsize>(pad));
    size_ += pad;
    uint64_t at = size_;
    if (n) out_.write(reinterpret_cast<const char*>(p), static_cast<std::streamsize>(n));
    size_ += n;
    if (!out_) return Error(path_ + ": write failed");
    return at;
  }
  Status Close() {
    if (!out_.is_open()) return Status::Ok();
    out_.close();
    if (!out_) return Error(path_ + ": write failed");
    return Status::Ok();
  }

 private:
  std::string name_, path_;
  std::ofstream out_;
  uint64_t size_ = 0;
};

struct SaveContext {
  size_t threshold = 0;  // external when nbytes >= threshold (0 = only shared buffers)
  std::set<const ir::Buffer*> shared;  // buffers referenced by more than one initializer
  std::map<const ir::Buffer*, Placement> placed;  // shared buffers already written
  DataFile* shared_file = nullptr;
  DataFile* graph_file = nullptr;  // this graph's own external data
};

void SetExternal(onnx::TensorProto* p, const std::string& location, uint64_t offset, size_t length) {
  p->set_data_location(onnx::TensorProto::EXTERNAL);
  auto add = [&](const char* k, const std::string& v) {
    auto* e = p->add_external_data();
    e->set_key(k);
    e->set_value(v);
  };
  add("location", location);
  add("offset", std::to_string(offset));
  add("length", std::to_string(length));
}

Status InitializerToProto(const Tensor& t, SaveContext& sc, onnx::TensorProto* p) {
  const ir::Buffer* buf = t.buffer().get();
  bool numeric = t.dtype() != DType::String && buf && t.nbytes() > 0;
  if (numeric && sc.shared.count(buf) && sc.shared_file) {
    auto it = sc.placed.find(buf);
    if (it == sc.placed.end()) {
      ASRC_ASSIGN_OR_RETURN(uint64_t at, sc.shared_file->Append(buf->data(), buf->size()));
      it = sc.placed.emplace(buf, Placement{sc.shared_file->name(), at}).first;
    }
    for (int64_t d : t.shape()) p->add_dims(d);
    p->set_data_type(static_cast<int32_t>(t.dtype()));
    SetExternal(p, it->second.location, it->second.offset + t.offset(), t.nbytes());
    return Status::Ok();
  }
  if (numeric && sc.threshold > 0 && t.nbytes() >= sc.threshold && sc.graph_file) {
    ASRC_ASSIGN_OR_RETURN(uint64_t at, sc.graph_file->Append(t.raw(), t.nbytes()));
    for (int64_t d : t.shape()) p->add_dims(d);
    p->set_data_type(static_cast<int32_t>(t.dtype()));
    SetExternal(p, sc.graph_file->name(), at, t.nbytes());
    return Status::Ok();
  }
  TensorToProtoInline(t, p);
  return Status::Ok();
}

void ValueInfoToProto(const Value* v, onnx::ValueInfoProto* vi) {
  MergeUnknown(v->raw_value_info_extras, vi);
  vi->set_name(v->name);
  TypeToProto(v->type, vi);
  if (!v->doc_string.empty()) vi->set_doc_string(v->doc_string);
}

Status GraphToProto(const Graph& g, SaveContext& sc, onnx::GraphProto* gp);

Status AttrToProto(const Attribute& a, SaveContext& sc, onnx::AttributeProto* ap) {
  using K = Attribute::Kind;
  ap->set_name(a.name);
  if (!a.doc_string.empty()) ap->set_doc_string(a.doc_string);
  if (!a.ref_attr_name.empty()) ap->set_ref_attr_name(a.ref_attr_name);
  if (a.kind != K::Undefined) ap->set_type(static_cast<onnx::AttributeProto::AttributeType>(a.kind));
  auto meta = [](const Attribute::TensorMeta& m, onnx::TensorProto* p) {
    if (!m.name.empty()) p->set_name(m.name);
    if (!m.doc_string.empty()) p->set_doc_string(m.doc_string);
  };
  switch (a.kind) {
    case K::Undefined: break;
    case K::Float: ap->set_f(a.f); break;
    case K::Int: ap->set_i(a.i); break;
    case K::String: ap->set_s(a.s); break;
    case K::Tensor:
      TensorToProtoInline(a.t, ap->mutable_t());
      meta(a.t_meta, ap->mutable_t());
      break;
    case K::Graph:
      if (!a.g) return Error("attribute " + Quote(a.name) + ": graph attribute without a graph");
      ASRC_RETURN_IF_ERROR(GraphToProto(*a.g, sc, ap->mutable_g()));
      break;
    case K::SparseTensor:
      if (!a.opaque.empty()) ap->mutable_sparse_tensor()->ParseFromString(a.opaque[0]);
      break;
    case K::TypeProto:
      if (!a.opaque.empty()) ap->mutable_tp()->ParseFromString(a.opaque[0]);
      break;
    case K::Floats: for (float f : a.floats) ap->add_floats(f); break;
    case K::Ints: for (int64_t i : a.ints) ap->add_ints(i); break;
    case K::Strings: for (const auto& s : a.strings) ap->add_strings(s); break;
    case K::Tensors:
      for (size_t i = 0; i < a.tensors.size(); ++i) {
        auto* p = ap->add_tensors();
        TensorToProtoInline(a.tensors[i], p);
        if (i < a.tensors_meta.size()) meta(a.tensors_meta[i], p);
      }
      break;
    case K::Graphs:
      for (const auto& g : a.graphs) {
        if (!g) return Error("attribute " + Quote(a.name) + ": null graph");
        ASRC_RETURN_IF_ERROR(GraphToProto(*g, sc, ap->add_graphs()));
      }
      break;
    case K::SparseTensors:
      for (const auto& s : a.opaque) ap->add_sparse_tensors()->ParseFromString(s);
      break;
    case K::TypeProtos:
      for (const auto& s : a.opaque) ap->add_type_protos()->ParseFromString(s);
      break;
  }
  return Status::Ok();
}

Status GraphToProto(const Graph& g, SaveContext& sc, onnx::GraphProto* gp) {
  MergeUnknown(g.raw_extras, gp);
  const std::string where = "graph " + Quote(g.name);
  auto order = g.TopoOrder();
  if (!order.ok()) return order.status();
  for (const Node* n : order.value()) {
    auto* np = gp->add_node();
    MergeUnknown(n->raw_extras, np);
    for (const Value* v : n->inputs) np->add_input(v ? v->name : std::string());
    for (const Value* v : n->outputs) np->add_output(v ? v->name : std::string());
    if (!n->name.empty()) np->set_name(n->name);
    np->set_op_type(n->op_type);
    if (!n->domain.empty()) np->set_domain(n->domain);
    for (const auto& a : n->attributes)
      ASRC_RETURN_IF_ERROR(AttrToProto(a, sc, np->add_attribute())
                               .With(where + ": node " + Quote(n->name) + " (" + n->op_type + ")"));
    if (!n->doc_string.empty()) np->set_doc_string(n->doc_string);
  }
  gp->set_name(g.name);
  for (const Value* v : g.initializers) {
    auto* tp = gp->add_initializer();
    ASRC_RETURN_IF_ERROR(InitializerToProto(*v->initializer, sc, tp).With(where + ": initializer " + Quote(v->name)));
    tp->set_name(v->name);
    if (!v->initializer_doc_string.empty()) tp->set_doc_string(v->initializer_doc_string);
  }
  for (const auto& s : g.opaque_sparse_initializers) gp->add_sparse_initializer()->ParseFromString(s);
  if (!g.doc_string.empty()) gp->set_doc_string(g.doc_string);
  for (const Value* v : g.inputs) ValueInfoToProto(v, gp->add_input());
  for (const Value* v : g.outputs) ValueInfoToProto(v, gp->add_output());
  for (const auto& v : g.values())
    if (v->has_value_info) ValueInfoToProto(v.get(), gp->add_value_info());
  for (const auto& s : g.opaque_quantization_annotation)
    gp->add_quantization_annotation()->ParseFromString(s);
  return Status::Ok();
}

Status ModelToProto(const GraphFile& gf, SaveContext& sc, onnx::ModelProto* mp) {
  if (!gf.graph) return Error("graph " + Quote(gf.role) + " is empty");
  MergeUnknown(gf.raw_extras, mp);
  mp->set_ir_version(gf.ir_version);
  for (const auto& o : gf.opsets) {
    auto* op = mp->add_opset_import();
    op->set_domain(o.domain);
    op->set_version(o.version);
  }
  if (!gf.producer_name.empty()) mp->set_producer_name(gf.producer_name);
  if (!gf.producer_version.empty()) mp->set_producer_version(gf.producer_version);
  if (!gf.domain.empty()) mp->set_domain(gf.domain);
  if (gf.model_version != 0) mp->set_model_version(gf.model_version);
  if (!gf.doc_string.empty()) mp->set_doc_string(gf.doc_string);
  ASRC_RETURN_IF_ERROR(GraphToProto(*gf.graph, sc, mp->mutable_graph()));
  for (const auto& [k, v] : gf.metadata_props) {
    auto* e = mp->add_metadata_props();
    e->set_key(k);
    e->set_value(v);
  }
  for (const auto& s : gf.opaque_training_info) mp->add_training_info()->ParseFromString(s);
  for (const auto& s : gf.opaque_functions) mp->add_functions()->ParseFromString(s);
  return Status::Ok();
}

void CollectInitializerBuffers(const Graph& g, std::map<const ir::Buffer*, int>* refs, int64_t* total) {
  for (const Value* v : g.initializers) {
    const Tensor& t = *v->initializer;
    *total += static_cast<int64_t>(t.nbytes());
    if (t.buffer() && t.nbytes() > 0 && t.dtype() != DType::String) ++(*refs)[t.buffer().get()];
  }
  for (const Node* n : g.nodes())
    for (const auto& a : n->attributes) {
      if (a.g) CollectInitializerBuffers(*a.g, refs, total);
      for (const auto& sg : a.graphs)
        if (sg) CollectInitializerBuffers(*sg, refs, total);
    }
}

Status RunChecker(const std::string& path) {
  try {
    onnx::checker::check_model(path);
  } catch (const std::exception& e) {
    std::string msg = e.what();
    for (auto& c : msg)
      if (c == '\n') c = ' ';
    return Error(path + ": ONNX checker: " + msg);
  }
  return Status::Ok();
}

bool SafeFileName(const std::string& f) {
  return !f.empty() && f != "." && f != ".." && f.find('/') == std::string::npos &&
         f.find('\\') == std::string::npos;
}

// Writes the graph files of `model` into `dir` (which exists and is empty). `names[i]` is the
// file name of graph i. Shared buffers (referenced by more than one initializer anywhere in the
// model) go once into `shared_name`.
Status WriteGraphs(const ir::Model& model, const std::string& dir, const std::vector<std::string>& names,
                    const std::string& shared_name, const SaveOptions& options) {
  std::map<const ir::Buffer*, int> refs;
  int64_t total = 0;
  for (const auto& gf : model.graphs)
    if (gf.graph) CollectInitializerBuffers(*gf.graph, &refs, &total);
  SaveContext sc;
  for (const auto& [b, n] : refs)
    if (n > 1) sc.shared.insert(b);
  sc.threshold = options.external_threshold;
  // Keep each file well under protobuf's 2 GiB limit.
  if (sc.threshold == 0 && total > (int64_t{1} << 30)) sc.threshold = 1024;
  if (options.force_external && sc.threshold == 0) sc.threshold = 1024;
  DataFile shared(shared_name, (fs::path(dir) / shared_name).string());
  sc.shared_file = &shared;
  for (size_t i = 0; i < model.graphs.size(); ++i) {
    const GraphFile& gf = model.graphs[i];
    DataFile own(names[i] + ".data", (fs::path(dir) / (names[i] + ".data")).string());
    sc.graph_file = &own;
    onnx::ModelProto mp;
    ASRC_RETURN_IF_ERROR(ModelToProto(gf, sc, &mp).With(names[i]));
    ASRC_RETURN_IF_ERROR(own.Close());
    std::string bytes;
    if (!mp.SerializeToString(&bytes))
      return Error(names[i] + ": cannot serialize (over 2 GiB? use external data)");
    ASRC_RETURN_IF_ERROR(WriteBytes((fs::path(dir) / names[i]).string(), bytes));
  }
  ASRC_RETURN_IF_ERROR(shared.Close());
  if (options.check) {
    for (const auto& n : names) {
      Status st = RunChecker((fs::path(dir) / n).string());
      if (!st.ok()) return Error(n + ": " + st.message().substr(st.message().find("ONNX checker")));
    }
  }
  return Status::Ok();
}

}  // namespace

Status SaveModel(const ir::Model& model, const std::string& path, const SaveOptions& options) {
  if (model.graphs.empty()) return Error(path + ": model has no graphs");
  fs::path target(path);
  while (!target.empty() && target.filename().empty()) target = target.parent_path();  // trailing '/'
  if (target.empty()) return Error(path + ": bad output path");
  std::error_code ec;
  bool bundle = model.is_bundle || model.graphs.size() > 1;
  if (bundle && target.extension() == ".onnx")
    return Error(path + ": a bundle of " + std::to_string(model.graphs.size()) +
                 " graph(s) is written to a folder, not a .onnx file");
  std::string tmp = TempSibling(target, "tmp");
  fs::remove_all(tmp, ec);
  if (!fs::create_directories(tmp, ec) || ec) return Error(tmp + ": cannot create temporary folder");
  auto cleanup = [&](Status st) {
    std::error_code e2;
    fs::remove_all(tmp, e2);
    return st;
  };

  if (!bundle) {
    if (fs::is_directory(target, ec)) return cleanup(Error(path + ": is a folder; a single graph is written to a file"));
    std::string name = target.filename().string();
    Status st = WriteGraphs(model, tmp, {name}, name + ".data", options);
    if (!st.ok()) return cleanup(st.With(path));
    // Data files first, the .onnx last, so a reader never sees a model without its data. A data
    // file left by an earlier save under the same name is stale when this one writes none.
    if (!fs::exists(fs::path(tmp) / (name + ".data"), ec)) fs::remove(target.string() + ".data", ec);
    for (const auto& entry : fs::directory_iterator(tmp, ec)) {
      if (entry.path().filename() == name) continue;
      fs::rename(entry.path(), target.parent_path() / entry.path().filename(), ec);
      if (ec) return cleanup(Error(path + ": cannot move " + entry.path().filename().string() + " into place"));
    }
    fs::rename(fs::path(tmp) / name, target, ec);
    if (ec) return cleanup(Error(path + ": cannot move the written file into place: " + ec.message()));
    return cleanup(Status::Ok());
  }

  // Bundle folder.
  nlohmann::json j = model.config.is_object() ? model.config : nlohmann::json::object();
  if (!j.contains("format")) j["format"] = "asrc-bundle";
  if (!j.contains("version")) j["version"] = 1;
  std::vector<std::string> names, roles;
  nlohmann::json graphs = nlohmann::json::object();
  for (const auto& gf : model.graphs) {
    std::string role = gf.role.empty() ? "model" : gf.role;
    std::string file = gf.file.empty() ? role + ".onnx" : fs::path(gf.file).filename().string();
    if (!SafeFileName(file)) return cleanup(Error(path + ": bad graph file name " + Quote(file)));
    if (graphs.contains(role)) return cleanup(Error(path + ": two graphs with role " + Quote(role)));
    if (std::find(names.begin(), names.end(), file) != names.end() || file == "model.json" || file == "tokens.txt")
      return cleanup(Error(path + ": file name " + Quote(file) + " used twice"));
    graphs[role] = file;
    names.push_back(file);
    roles.push_back(role);
  }
  j["graphs"] = graphs;
  if (!model.tokens.empty()) j["tokens"] = "tokens.txt";
  else j.erase("tokens");
  Status st = CheckBundleConfig(j, "model.json");
  if (st.ok()) st = CheckRoles(j, roles, "model.json");
  if (!st.ok()) return cleanup(st.With(path));
  st = WriteGraphs(model, tmp, names, "shared_weights.bin", options);
  if (!st.ok()) return cleanup(st.With(path));
  if (!model.tokens.empty()) {
    std::string text;
    for (size_t i = 0; i < model.tokens.size(); ++i) text += model.tokens[i] + " " + std::to_string(i) + "\n";
    st = WriteBytes((fs::path(tmp) / "tokens.txt").string(), text);
    if (!st.ok()) return cleanup(st);
  }
  st = WriteBytes((fs::path(tmp) / "model.json").string(), j.dump(2) + "\n");
  if (!st.ok()) return cleanup(st);
  std::string old;
  if (fs::exists(target, ec)) {
    if (!fs::is_directory(target, ec)) return cleanup(Error(path + ": exists and is not a folder"));
    old = TempSibling(target, "old");
    fs::remove_all(old, ec);
    fs::rename(target, old, ec);
    if (ec) return cleanup(Error(path + ": cannot replace the existing folder: " + ec.message()));
  }
  fs::rename(tmp, target, ec);
  if (ec) {
    std::error_code e2;
    if (!old.empty()) fs::rename(old, target, e2);
    return cleanup(Error(path + ": cannot move the written bundle into place: " + ec.message()));
  }
  if (!old.empty()) fs::remove_all(old, ec);
  return Status::Ok();
}

}  // namespace asrc::onnx_io
