// ONNX -> ir: graph files and bundle folders (docs/bundle.md).
//
// Import keeps every field we do not model: unknown protobuf fields (from ONNX versions newer
// than the libonnx we build against) travel as serialized bytes in the *_extras strings, and
// rarely used messages (functions, training info, sparse tensors, non-tensor types) stay as
// serialized protos.
#include <algorithm>
#include <climits>
#include <cstring>
#include <fstream>
#include <sstream>

#include "onnx/onnx_internal.h"
#include "onnx/onnx_io.h"

namespace asrc::onnx_io {

namespace {

Result<std::shared_ptr<ir::Buffer>> ReadExternal(const onnx::TensorProto& p, size_t nbytes,
                                                  const LoadContext& ctx) {
  std::string location;
  int64_t offset = 0, length = -1;
  for (const auto& kv : p.external_data()) {
    if (kv.key() == "location") {
      location = kv.value();
    } else if (kv.key() == "offset") {
      if (!ParseNonnegInt(kv.value(), &offset)) return Error("bad external data offset " + Quote(kv.value()));
    } else if (kv.key() == "length") {
      if (!ParseNonnegInt(kv.value(), &length)) return Error("bad external data length " + Quote(kv.value()));
    }
  }
  if (location.empty()) return Error("external data without a location");
  if (!SafeRelativePath(location))
    return Error("external data location " + Quote(location) + " is not a relative path inside the model folder");
  if (ctx.base_dir.empty() && ctx.shared == nullptr)
    return Error("external data " + Quote(location) + " cannot be resolved (no model folder)");
  if (length >= 0 && static_cast<uint64_t>(length) != nbytes)
    return Error("external data length " + std::to_string(length) + " does not match the shape (" +
                 std::to_string(nbytes) + " bytes)");
  fs::path file = fs::path(ctx.base_dir.empty() ? "." : ctx.base_dir) / location;
  std::error_code ec;
  if (!fs::is_regular_file(file, ec)) return Error("external data file " + Quote(file.string()) + " not found");
  uintmax_t fsize = fs::file_size(file, ec);
  if (ec) return Error("cannot read external data file " + Quote(file.string()));
  if (static_cast<uint64_t>(offset) > fsize || nbytes > fsize - static_cast<uint64_t>(offset))
    return Error("external data file " + Quote(file.string()) + " has " + std::to_string(fsize) +
                 " bytes, tensor needs " + std::to_string(nbytes) + " at offset " + std::to_string(offset));
  std::string canon = fs::weakly_canonical(file, ec).string();
  if (ec) canon = file.string();
  auto key = std::make_tuple(canon, offset, static_cast<int64_t>(nbytes));
  if (ctx.shared) {
    auto it = ctx.shared->find(key);
    if (it != ctx.shared->end()) return it->second;
  }
  auto buf = std::make_shared<ir::Buffer>(nbytes);
  std::ifstream in(file, std::ios::binary);
  in.seekg(offset);
  if (nbytes > 0 && !in.read(reinterpret_cast<char*>(buf->data()), static_cast<std::streamsize>(nbytes)))
    return Error("cannot read external data file " + Quote(file.string()));
  if (ctx.shared) (*ctx.shared)[key] = buf;
  return buf;
}

// ONNX bools are 0 or 1; raw_data may hold any byte, and a kernel reading 2 as a C++ bool is
// undefined behaviour (found by tests/fuzz/onnx_run_fuzzer): any non-zero byte is true.
void NormalizeBools(uint8_t* p, size_t n) {
  for (size_t i = 0; i < n; ++i) p[i] = p[i] != 0;
}

template <class Src, class Dst>
void CopyCast(const Src& src, Dst* dst) {
  for (int i = 0; i < src.size(); ++i) dst[i] = static_cast<Dst>(src.Get(i));
}

}  // namespace

Result<Tensor> detail::TensorFromProto(const onnx::TensorProto& p, const LoadContext& ctx) {
  if (p.has_segment()) return Error("segmented tensors are not supported");
  if (!ir::DTypeKnown(p.data_type()) || p.data_type() == 0)
    return Error("unknown data type " + std::to_string(p.data_type()));
  DType dt = static_cast<DType>(p.data_type());
  ir::Shape shape(p.dims().begin(), p.dims().end());
  for (int64_t d : shape)
    if (d < 0) return Error("negative dimension in shape " + ir::ShapeStr(shape));
  int64_t numel = ir::ShapeNumel(shape);
  if (numel < 0) return Error("element count of shape " + ir::ShapeStr(shape) + " overflows");
  size_t esize = ir::DTypeSize(dt);
  if (esize > 0 && static_cast<uint64_t>(numel) > static_cast<uint64_t>(INT64_MAX) / esize)
    return Error("byte size of shape " + ir::ShapeStr(shape) + " overflows");
  const size_t nbytes = static_cast<size_t>(numel) * esize;
  const std::string what = std::string(ir::DTypeName(dt)) + " " + ir::ShapeStr(shape);

  if (dt == DType::String) {
    if (p.data_location() == onnx::TensorProto::EXTERNAL) return Error("string tensor with external data");
    if (p.string_data_size() != numel)
      return Error("string_data has " + std::to_string(p.string_data_size()) + " strings, " + what + " needs " +
                   std::to_string(numel));
    Tensor t(dt, shape);
    for (int i = 0; i < p.string_data_size(); ++i) t.strings[i] = p.string_data(i);
    return t;
  }
  if (p.data_location() == onnx::TensorProto::EXTERNAL) {
    ASRC_ASSIGN_OR_RETURN(auto buf, ReadExternal(p, nbytes, ctx));
    return Tensor::Wrap(dt, shape, std::move(buf), 0);
  }
  if (p.has_raw_data() && (!p.raw_data().empty() || numel == 0)) {
    if (p.raw_data().size() != nbytes)
      return Error("raw_data has " + std::to_string(p.raw_data().size()) + " bytes, " + what + " needs " +
                   std::to_string(nbytes));
    Tensor t(dt, shape);
    if (nbytes) std::memcpy(t.raw(), p.raw_data().data(), nbytes);
    if (dt == DType::Bool) NormalizeBools(static_cast<uint8_t*>(t.raw()), nbytes);
    return t;
  }
  // Typed fields: check the count before allocating anything.
  int64_t per = (dt == DType::Complex64 || dt == DType::Complex128) ? 2 : 1;
  int64_t have = 0;
  const char* field = "";
  switch (dt) {
    case DType::Float32: case DType::Complex64: have = p.float_data_size(); field = "float_data"; break;
    case DType::Int32: case DType::Int16: case DType::Int8: case DType::Uint16: case DType::Uint8:
    case DType::Bool: case DType::Float16: case DType::BFloat16:
      have = p.int32_data_size(); field = "int32_data"; break;
    case DType::Int64: have = p.int64_data_size(); field = "int64_data"; break;
    case DType::Float64: case DType::Complex128: have = p.double_data_size(); field = "double_data"; break;
    case DType::Uint32: case DType::Uint64: have = p.uint64_data_size(); field = "uint64_data"; break;
    default: return Error("unsupported data type " + std::string(ir::DTypeName(dt)));
  }
  if (numel > INT64_MAX / per || have != numel * per) {
    if (have == 0 && numel > 0) return Error("tensor has no data, " + what + " needs " + std::to_string(numel) + " values");
    return Error(std::string(field) + " has " + std::to_string(have) + " values, " + what + " needs " +
                 std::to_string(numel * per));
  }
  Tensor t(dt, shape);
  switch (dt) {
    case DType::Float32: case DType::Complex64: CopyCast(p.float_data(), t.data<float>()); break;
    case DType::Int32: CopyCast(p.int32_data(), t.data<int32_t>()); break;
    case DType::Int16: CopyCast(p.int32_data(), t.data<int16_t>()); break;
    case DType::Int8: CopyCast(p.int32_data(), t.data<int8_t>()); break;
    case DType::Uint16: case DType::Float16: case DType::BFloat16:
      CopyCast(p.int32_data(), t.data<uint16_t>()); break;
    case DType::Uint8: CopyCast(p.int32_data(), t.data<uint8_t>()); break;
    case DType::Bool:
      for (int i = 0; i < p.int32_data_size(); ++i) t.data<uint8_t>()[i] = p.int32_data(i) != 0;
      break;
    case DType::Int64: CopyCast(p.int64_data(), t.data<int64_t>()); break;
    case DType::Float64: case DType::Complex128: CopyCast(p.double_data(), t.data<double>()); break;
    case DType::Uint32: CopyCast(p.uint64_data(), t.data<uint32_t>()); break;
    case DType::Uint64: CopyCast(p.uint64_data(), t.data<uint64_t>()); break;
    default: break;
  }
  return t;
}

// The modeled part of a TypeProto (tensor type with element type and shape).

namespace {

void TypeFromProto(const onnx::ValueInfoProto& vi, ir::TypeInfo* ti) {
  *ti = ir::TypeInfo();
  if (!vi.has_type()) return;
  const auto& tp = vi.type();
  if (!TypeModeled(tp, ti)) {
    ti->has_type = true;
    ti->opaque = tp.SerializeAsString();
    ti->kind = tp.has_tensor_type() ? ir::ValueKind::Tensor
               : tp.has_sequence_type() ? ir::ValueKind::Sequence
               : tp.has_optional_type() ? ir::ValueKind::Optional
                                        : ir::ValueKind::Other;
    return;
  }
  onnx::TypeProto rebuilt;
  TypeBuild(*ti, &rebuilt);
  std::string orig = tp.SerializeAsString();
  if (rebuilt.SerializeAsString() != orig) ti->raw_type = orig;
}

// A ValueInfoProto's type, doc string and unknown fields onto v.
void ValueInfoFromProto(const onnx::ValueInfoProto& vi, Value* v) {
  TypeFromProto(vi, &v->type);
  v->doc_string = vi.doc_string();
  v->raw_value_info_extras = UnknownBytes(vi);
}

Status GraphFromProto(const onnx::GraphProto& gp, Graph* g, const LoadContext& ctx);

Status AttrFromProto(const onnx::AttributeProto& a, Graph* g, const LoadContext& ctx, Attribute* out) {
  out->name = a.name();
  out->doc_string = a.doc_string();
  out->ref_attr_name = a.ref_attr_name();
  using K = Attribute::Kind;
  K kind = K::Undefined;
  if (a.has_type()) {
    kind = static_cast<K>(a.type());
  } else if (a.has_f()) kind = K::Float;
  else if (a.has_i()) kind = K::Int;
  else if (a.has_s()) kind = K::String;
  else if (a.has_t()) kind = K::Tensor;
  else if (a.has_g()) kind = K::Graph;
  else if (a.has_sparse_tensor()) kind = K::SparseTensor;
  else if (a.has_tp()) kind = K::TypeProto;
  else if (a.floats_size()) kind = K::Floats;
  else if (a.ints_size()) kind = K::Ints;
  else if (a.strings_size()) kind = K::Strings;
  else if (a.tensors_size()) kind = K::Tensors;
  else if (a.graphs_size()) kind = K::Graphs;
  else if (a.sparse_tensors_size()) kind = K::SparseTensors;
  else if (a.type_protos_size()) kind = K::TypeProtos;
  out->kind = kind;
  const std::string where = "attribute " + Quote(a.name());
  switch (kind) {
    case K::Undefined: break;
    case K::Float: out->f = a.f(); break;
    case K::Int: out->i = a.i(); break;
    case K::String: out->s = a.s(); break;
    case K::Tensor: {
      auto t = TensorFromProto(a.t(), ctx);
      if (!t.ok()) return t.status().With(where);
      out->t = std::move(t).value();
      out->t_meta = {a.t().name(), a.t().doc_string()};
      break;
    }
    case K::Graph: {
      out->g = std::make_shared<Graph>(a.g().name());
      out->g->parent = g;
      ASRC_RETURN_IF_ERROR(GraphFromProto(a.g(), out->g.get(), ctx).With(where));
      break;
    }
    case K::SparseTensor: out->opaque.push_back(a.sparse_tensor().SerializeAsString()); break;
    case K::TypeProto: out->opaque.push_back(a.tp().SerializeAsString()); break;
    case K::Floats: out->floats.assign(a.floats().begin(), a.floats().end()); break;
    case K::Ints: out->ints.assign(a.ints().begin(), a.ints().end()); break;
    case K::Strings: out->strings.assign(a.strings().begin(), a.strings().end()); break;
    case K::Tensors:
      for (const auto& tp : a.tensors()) {
        auto t = TensorFromProto(tp, ctx);
        if (!t.ok()) return t.status().With(where);
        out->tensors.push_back(std::move(t).value());
        out->tensors_meta.push_back({tp.name(), tp.doc_string()});
      }
      break;
    case K::Graphs:
      for (const auto& sg : a.graphs()) {
        auto sub = std::make_shared<Graph>(sg.name());
        sub->parent = g;
        ASRC_RETURN_IF_ERROR(GraphFromProto(sg, sub.get(), ctx).With(where));
        out->graphs.push_back(std::move(sub));
      }
      break;
    case K::SparseTensors:
      for (const auto& st : a.sparse_tensors()) out->opaque.push_back(st.SerializeAsString());
      break;
    case K::TypeProtos:
      for (const auto& tp : a.type_protos()) out->opaque.push_back(tp.SerializeAsString());
      break;
    default: return Error(where + ": unknown attribute type " + std::to_string(static_cast<int>(kind)));
  }
  return Status::Ok();
}

Status GraphFromProto(const onnx::GraphProto& gp, Graph* g, const LoadContext& ctx) {
  g->name = gp.name();
  g->doc_string = gp.doc_string();
  g->raw_extras = UnknownBytes(gp);
  const std::string where = "graph " + Quote(gp.name());
  for (const auto& vi : gp.input()) {
    if (vi.name().empty()) return Error(where + ": graph input without a name");
    if (g->FindValue(vi.name())) return Error(where + ": duplicate graph input " + Quote(vi.name()));
    Value* v = g->AddValue(vi.name());
    ValueInfoFromProto(vi, v);
    g->inputs.push_back(v);
  }
  for (const auto& tp : gp.initializer()) {
    if (tp.name().empty()) return Error(where + ": initializer without a name");
    Value* v = g->FindValue(tp.name());
    if (v && v->initializer) return Error(where + ": duplicate initializer " + Quote(tp.name()));
    auto t = TensorFromProto(tp, ctx);
    if (!t.ok()) return t.status().With(where + ": initializer " + Quote(tp.name()));
    if (!v) {
      v = g->AddValue(tp.name());
      v->type.has_type = true;
      v->type.dtype = t->dtype();
      v->type.has_shape = true;
      for (int64_t d : t->shape()) v->type.dims.push_back(ir::Dim{d, ""});
    }
    v->initializer = std::move(t).value();
    v->initializer_doc_string = tp.doc_string();
    g->initializers.push_back(v);
  }
  for (const auto& sp : gp.sparse_initializer()) {
    g->opaque_sparse_initializers.push_back(sp.SerializeAsString());
    const std::string& nm = sp.values().name();
    if (nm.empty()) continue;
    Value* v = g->FindValue(nm);
    if (!v) v = g->AddValue(nm);
    v->is_sparse_initializer = true;
  }
  for (const auto& qa : gp.quantization_annotation())
    g->opaque_quantization_annotation.push_back(qa.SerializeAsString());

  // Create every node with its outputs first, so inputs may name values produced later in the
  // file and subgraphs can see all values of this graph.
  std::vector<Node*> nodes;
  nodes.reserve(gp.node_size());
  for (const auto& np : gp.node()) {
    std::vector<std::string> outs(np.output().begin(), np.output().end());
    std::set<std::string> seen;
    for (const auto& o : outs) {
      if (o.empty()) continue;
      if (g->FindValue(o) || !seen.insert(o).second)
        return Error(where + ": node " + Quote(np.name()) + " (" + np.op_type() + ") output " + Quote(o) +
                     " is already defined (produced twice, or a graph input/initializer)");
    }
    nodes.push_back(g->AddNode(np.op_type(), {}, outs, np.name(), np.domain()));
  }
  for (int k = 0; k < gp.node_size(); ++k) {
    const auto& np = gp.node(k);
    Node* n = nodes[k];
    n->doc_string = np.doc_string();
    n->raw_extras = UnknownBytes(np);
    const std::string nwhere = where + ": node " + Quote(np.name()) + " (" + np.op_type() + ")";
    for (int i = 0; i < np.input_size(); ++i) {
      const std::string& in = np.input(i);
      Value* v = nullptr;
      if (!in.empty()) {
        v = g->Lookup(in);
        if (!v) return Error(nwhere + ": input " + Quote(in) + " is not defined");
      }
      g->set_input(n, i, v);
    }
    for (const auto& ap : np.attribute()) {
      n->attributes.emplace_back();
      ASRC_RETURN_IF_ERROR(AttrFromProto(ap, g, ctx, &n->attributes.back()).With(nwhere));
    }
  }
  for (const auto& vi : gp.output()) {
    Value* v = vi.name().empty() ? nullptr : g->Lookup(vi.name());
    if (!v) return Error(where + ": graph output " + Quote(vi.name()) + " is not defined");
    if (v->owner == g && std::find(g->inputs.begin(), g->inputs.end(), v) == g->inputs.end()) {
      ValueInfoFromProto(vi, v);
    }
    g->outputs.push_back(v);
  }
  for (const auto& vi : gp.value_info()) {
    if (vi.name().empty()) return Error(where + ": value_info without a name");
    Value* v = g->FindValue(vi.name());
    if (!v) v = g->AddValue(vi.name());  // describes a value nothing produces: kept as is
    if (v->has_value_info) return Error(where + ": duplicate value_info " + Quote(vi.name()));
    bool io = std::find(g->inputs.begin(), g->inputs.end(), v) != g->inputs.end() ||
              std::find(g->outputs.begin(), g->outputs.end(), v) != g->outputs.end();
    if (!io) ValueInfoFromProto(vi, v);
    v->has_value_info = true;
  }
  return Status::Ok();
}

Result<GraphFile> ModelFromProto(const onnx::ModelProto& mp, const LoadContext& ctx) {
  if (!mp.has_graph() || !mp.has_ir_version()) return Error("not an ONNX model (no ir_version or graph)");
  GraphFile gf;
  gf.ir_version = mp.ir_version();
  for (const auto& o : mp.opset_import()) gf.opsets.push_back({o.domain(), o.version()});
  gf.producer_name = mp.producer_name();
  gf.producer_version = mp.producer_version();
  gf.domain = mp.domain();
  gf.doc_string = mp.doc_string();
  gf.model_version = mp.model_version();
  for (const auto& kv : mp.metadata_props()) gf.metadata_props.emplace_back(kv.key(), kv.value());
  for (const auto& f : mp.functions()) gf.opaque_functions.push_back(f.SerializeAsString());
  for (const auto& t : mp.training_info()) gf.opaque_training_info.push_back(t.SerializeAsString());
  gf.raw_extras = UnknownBytes(mp);
  gf.graph = std::make_unique<Graph>(mp.graph().name());
  ASRC_RETURN_IF_ERROR(GraphFromProto(mp.graph(), gf.graph.get(), ctx));
  ASRC_RETURN_IF_ERROR(gf.graph->Verify());
  return gf;
}

Result<GraphFile> ParseGraphFileWith(const std::string& bytes, const std::string& name, const LoadContext& ctx) {
  onnx::ModelProto mp;
  if (bytes.size() > static_cast<size_t>(INT_MAX))
    return Error(name + ": larger than protobuf's 2 GiB limit (use external data)");
  if (!ParseBytes(&mp, bytes)) return Error(name + ": not a valid ONNX protobuf (truncated or corrupt)");
  auto gf = ModelFromProto(mp, ctx);
  if (!gf.ok()) return gf.status().With(name);
  return gf;
}

Result<GraphFile> LoadGraphFileWith(const std::string& path, LoadContext ctx) {
  ASRC_ASSIGN_OR_RETURN(std::string bytes, ReadFile(path));
  ctx.base_dir = fs::path(path).parent_path().string();
  if (ctx.base_dir.empty()) ctx.base_dir = ".";
  ASRC_ASSIGN_OR_RETURN(GraphFile gf, ParseGraphFileWith(bytes, path, ctx));
  gf.file = fs::path(path).filename().string();
  return gf;
}

Result<std::vector<std::string>> ReadTokens(const std::string& path) {
  ASRC_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  std::vector<std::string> tokens;
  std::vector<bool> seen;
  std::istringstream in(text);
  std::string line;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    size_t sp = line.find_last_of(" \t");
    int64_t id = -1;
    if (sp == std::string::npos || sp == 0 || !ParseNonnegInt(line.substr(sp + 1), &id) || id > 10000000)
      return Error(path + ":" + std::to_string(lineno) + ": expected \"<symbol> <id>\"");
    if (static_cast<size_t>(id) >= tokens.size()) {
      tokens.resize(id + 1);
      seen.resize(id + 1, false);
    }
    if (seen[id]) return Error(path + ":" + std::to_string(lineno) + ": duplicate id " + std::to_string(id));
    seen[id] = true;
    tokens[id] = line.substr(0, sp);
  }
  for (size_t i = 0; i < seen.size(); ++i)
    if (!seen[i]) return Error(path + ": id " + std::to_string(i) + " is missing");
  return tokens;
}

// A sherpa-onnx transducer folder (encoder*.onnx, decoder*.onnx, joiner*.onnx, tokens.txt)
// described as the model.json it would have.
Result<nlohmann::json> SherpaLayout(const std::string& dir) {
  std::vector<std::string> files;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.is_regular_file(ec)) files.push_back(e.path().filename().string());
  std::sort(files.begin(), files.end());
  nlohmann::json j = {{"model_type", "transducer"}, {"graphs", nlohmann::json::object()}};
  for (const std::string role : {"encoder", "decoder", "joiner"}) {
    std::vector<std::string> cand, full;
    for (const auto& f : files)
      if (f.rfind(role, 0) == 0 && f.size() > 5 && f.compare(f.size() - 5, 5, ".onnx") == 0) {
        cand.push_back(f);
        if (f.find(".int8.") == std::string::npos) full.push_back(f);
      }
    if (full.size() == 1) cand = full;
    if (cand.empty()) return Error(dir + ": folder has no model.json (and no sherpa-onnx " + role + "*.onnx)");
    if (cand.size() > 1)
      return Error(dir + ": folder has no model.json and several " + role + "*.onnx files; write a model.json");
    j["graphs"][role] = cand[0];
  }
  if (fs::is_regular_file(fs::path(dir) / "tokens.txt", ec)) j["tokens"] = "tokens.txt";
  return j;
}

Result<ir::Model> LoadBundle(const std::string& dir) {
  fs::path root(dir);
  std::string where = (root / "model.json").string();
  std::error_code ec;
  nlohmann::json j;
  if (!fs::is_regular_file(root / "model.json", ec)) {
    ASRC_ASSIGN_OR_RETURN(j, SherpaLayout(dir));
  } else {
    ASRC_ASSIGN_OR_RETURN(std::string text, ReadFile(where));
    j = nlohmann::json::parse(text, nullptr, false);
    if (j.is_discarded()) return Error(where + ": not valid JSON");
  }
  ASRC_RETURN_IF_ERROR(CheckBundleConfig(j, where));
  if (!j.contains("graphs") || !j["graphs"].is_object() || j["graphs"].empty())
    return Error(where + ": \"graphs\" must be a non-empty object of role -> file");
  ir::Model model;
  model.is_bundle = true;
  std::map<std::tuple<std::string, int64_t, int64_t>, std::shared_ptr<ir::Buffer>> shared;
  LoadContext ctx;
  ctx.shared = &shared;
  std::vector<std::string> roles;
  for (auto it = j["graphs"].begin(); it != j["graphs"].end(); ++it) {
    const std::string gw = where + ": graphs." + it.key();
    if (!it.value().is_string()) return Error(gw + ": must be a file name");
    std::string file = it.value().get<std::string>();
    if (!SafeRelativePath(file)) return Error(gw + ": " + Quote(file) + " is not a file inside the bundle");
    fs::path p = root / file;
    if (!fs::is_regular_file(p, ec)) return Error(gw + ": file " + Quote(p.string()) + " not found");
    ASRC_ASSIGN_OR_RETURN(GraphFile gf, LoadGraphFileWith(p.string(), ctx));
    gf.role = it.key();
    gf.file = file;
    roles.push_back(it.key());
    model.graphs.push_back(std::move(gf));
  }
  ASRC_RETURN_IF_ERROR(CheckRoles(j, roles, where));
  if (j.contains("tokens")) {
    if (!j["tokens"].is_string()) return Error(where + ": tokens must be a file name");
    std::string file = j["tokens"].get<std::string>();
    if (!SafeRelativePath(file)) return Error(where + ": tokens: " + Quote(file) + " is not a file inside the bundle");
    fs::path p = root / file;
    if (!fs::is_regular_file(p, ec)) return Error(where + ": tokens: file " + Quote(p.string()) + " not found");
    ASRC_ASSIGN_OR_RETURN(model.tokens, ReadTokens(p.string()));
  }
  j.erase("graphs");
  j.erase("tokens");
  model.config = j;
  return model;
}

}  // namespace

Result<ir::Model> LoadModel(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return Error(path + ": no such file or folder");
  if (fs::is_directory(path, ec)) return LoadBundle(path);
  ASRC_ASSIGN_OR_RETURN(GraphFile gf, LoadGraphFile(path));
  gf.role = "model";
  ir::Model m;
  m.graphs.push_back(std::move(gf));
  return m;
}

Result<GraphFile> LoadGraphFile(const std::string& path) {
  std::map<std::tuple<std::string, int64_t, int64_t>, std::shared_ptr<ir::Buffer>> shared;
  LoadContext ctx;
  ctx.shared = &shared;
  return LoadGraphFileWith(path, ctx);
}

Result<GraphFile> ParseGraphFile(const std::string& bytes, const std::string& name, const std::string& base_dir) {
  LoadContext ctx;
  ctx.base_dir = base_dir;
  return ParseGraphFileWith(bytes, name, ctx);
}

}  // namespace asrc::onnx_io
