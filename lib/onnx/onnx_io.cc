// ONNX <-> ir conversion, external data, and the bundle folder (docs/bundle.md).
//
// Import keeps every field we do not model: unknown protobuf fields (from ONNX versions newer
// than the libonnx we build against) travel as serialized bytes in the *_extras strings, and
// rarely used messages (functions, training info, sparse tensors, non-tensor types) stay as
// serialized protos. Tensor data is always re-encoded on export (raw_data or external data), so
// a round trip keeps values but not the storage form (float_data vs raw_data).
#include "onnx/onnx_io.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <tuple>
#include <unordered_map>

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <onnx/checker.h>
#include <onnx/onnx_pb.h>


namespace asrc::onnx_io {

namespace fs = std::filesystem;
using ir::Attribute;
using ir::DType;
using ir::Graph;
using ir::GraphFile;
using ir::Node;
using ir::Tensor;
using ir::Value;

namespace {

// ---------------------------------------------------------------------------------------------
// small helpers

template <class M>
std::string unknown_bytes(const M& m) {
  if (m.unknown_fields().empty()) return std::string();
  std::string s;
  m.unknown_fields().SerializeToString(&s);
  return s;
}

template <class M>
void merge_unknown(const std::string& bytes, M* m) {
  if (!bytes.empty()) m->MergeFromString(bytes);
}

bool parse_bytes(google::protobuf::Message* m, const std::string& bytes) {
  if (bytes.size() > static_cast<size_t>(INT_MAX)) return false;
  google::protobuf::io::ArrayInputStream ais(bytes.data(), static_cast<int>(bytes.size()));
  google::protobuf::io::CodedInputStream cis(&ais);
  cis.SetTotalBytesLimit(INT_MAX);
  cis.SetRecursionLimit(100);
  return m->ParseFromCodedStream(&cis) && cis.ConsumedEntireMessage();
}

Result<std::string> read_file(const std::string& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) return Error(path + ": is a directory, expected a file");
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error(path + ": cannot open file");
  in.seekg(0, std::ios::end);
  std::streamoff size = in.tellg();
  if (size < 0) return Error(path + ": cannot read file");
  in.seekg(0);
  std::string bytes(static_cast<size_t>(size), '\0');
  if (size > 0 && !in.read(&bytes[0], size)) return Error(path + ": read failed");
  return bytes;
}

bool parse_nonneg_int(const std::string& s, int64_t* out) {
  if (s.empty() || s.size() > 19) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  errno = 0;
  char* end = nullptr;
  long long v = std::strtoll(s.c_str(), &end, 10);
  if (errno != 0 || *end != '\0' || v < 0) return false;
  *out = v;
  return true;
}

// External data locations must stay inside the model's folder.
bool safe_relative_path(const std::string& loc) {
  if (loc.empty() || loc[0] == '/' || loc.find('\\') != std::string::npos) return false;
  fs::path p(loc);
  for (const auto& part : p)
    if (part == "..") return false;
  return true;
}

std::string quote(const std::string& s) { return "'" + s + "'"; }

// ---------------------------------------------------------------------------------------------
// import

struct LoadContext {
  std::string base_dir;  // folder for external data ("" = none allowed)
  // (canonical file, offset, bytes) -> buffer, so tensors stored once are shared once loaded.
  std::map<std::tuple<std::string, int64_t, int64_t>, std::shared_ptr<ir::Buffer>>* shared = nullptr;
};

Result<std::shared_ptr<ir::Buffer>> read_external(const onnx::TensorProto& p, size_t nbytes,
                                                  const LoadContext& ctx) {
  std::string location;
  int64_t offset = 0, length = -1;
  for (const auto& kv : p.external_data()) {
    if (kv.key() == "location") {
      location = kv.value();
    } else if (kv.key() == "offset") {
      if (!parse_nonneg_int(kv.value(), &offset)) return Error("bad external data offset " + quote(kv.value()));
    } else if (kv.key() == "length") {
      if (!parse_nonneg_int(kv.value(), &length)) return Error("bad external data length " + quote(kv.value()));
    }
  }
  if (location.empty()) return Error("external data without a location");
  if (!safe_relative_path(location))
    return Error("external data location " + quote(location) + " is not a relative path inside the model folder");
  if (ctx.base_dir.empty() && ctx.shared == nullptr)
    return Error("external data " + quote(location) + " cannot be resolved (no model folder)");
  if (length >= 0 && static_cast<uint64_t>(length) != nbytes)
    return Error("external data length " + std::to_string(length) + " does not match the shape (" +
                 std::to_string(nbytes) + " bytes)");
  fs::path file = fs::path(ctx.base_dir.empty() ? "." : ctx.base_dir) / location;
  std::error_code ec;
  if (!fs::is_regular_file(file, ec)) return Error("external data file " + quote(file.string()) + " not found");
  uintmax_t fsize = fs::file_size(file, ec);
  if (ec) return Error("cannot read external data file " + quote(file.string()));
  if (static_cast<uint64_t>(offset) > fsize || nbytes > fsize - static_cast<uint64_t>(offset))
    return Error("external data file " + quote(file.string()) + " has " + std::to_string(fsize) +
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
    return Error("cannot read external data file " + quote(file.string()));
  if (ctx.shared) (*ctx.shared)[key] = buf;
  return buf;
}

template <class Src, class Dst>
void copy_cast(const Src& src, Dst* dst) {
  for (int i = 0; i < src.size(); ++i) dst[i] = static_cast<Dst>(src.Get(i));
}

Result<Tensor> tensor_from_proto(const onnx::TensorProto& p, const LoadContext& ctx) {
  if (p.has_segment()) return Error("segmented tensors are not supported");
  if (!ir::dtype_known(p.data_type()) || p.data_type() == 0)
    return Error("unknown data type " + std::to_string(p.data_type()));
  DType dt = static_cast<DType>(p.data_type());
  ir::Shape shape(p.dims().begin(), p.dims().end());
  for (int64_t d : shape)
    if (d < 0) return Error("negative dimension in shape " + ir::shape_str(shape));
  int64_t numel = ir::shape_numel(shape);
  if (numel < 0) return Error("element count of shape " + ir::shape_str(shape) + " overflows");
  size_t esize = ir::dtype_size(dt);
  if (esize > 0 && static_cast<uint64_t>(numel) > static_cast<uint64_t>(INT64_MAX) / esize)
    return Error("byte size of shape " + ir::shape_str(shape) + " overflows");
  const size_t nbytes = static_cast<size_t>(numel) * esize;
  const std::string what = std::string(ir::dtype_name(dt)) + " " + ir::shape_str(shape);

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
    ASRC_ASSIGN_OR_RETURN(auto buf, read_external(p, nbytes, ctx));
    return Tensor::Wrap(dt, shape, std::move(buf), 0);
  }
  if (p.has_raw_data() && (!p.raw_data().empty() || numel == 0)) {
    if (p.raw_data().size() != nbytes)
      return Error("raw_data has " + std::to_string(p.raw_data().size()) + " bytes, " + what + " needs " +
                   std::to_string(nbytes));
    Tensor t(dt, shape);
    if (nbytes) std::memcpy(t.raw(), p.raw_data().data(), nbytes);
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
    default: return Error("unsupported data type " + std::string(ir::dtype_name(dt)));
  }
  if (numel > INT64_MAX / per || have != numel * per) {
    if (have == 0 && numel > 0) return Error("tensor has no data, " + what + " needs " + std::to_string(numel) + " values");
    return Error(std::string(field) + " has " + std::to_string(have) + " values, " + what + " needs " +
                 std::to_string(numel * per));
  }
  Tensor t(dt, shape);
  switch (dt) {
    case DType::Float32: case DType::Complex64: copy_cast(p.float_data(), t.data<float>()); break;
    case DType::Int32: copy_cast(p.int32_data(), t.data<int32_t>()); break;
    case DType::Int16: copy_cast(p.int32_data(), t.data<int16_t>()); break;
    case DType::Int8: copy_cast(p.int32_data(), t.data<int8_t>()); break;
    case DType::Uint16: case DType::Float16: case DType::BFloat16:
      copy_cast(p.int32_data(), t.data<uint16_t>()); break;
    case DType::Uint8: copy_cast(p.int32_data(), t.data<uint8_t>()); break;
    case DType::Bool:
      for (int i = 0; i < p.int32_data_size(); ++i) t.data<uint8_t>()[i] = p.int32_data(i) != 0;
      break;
    case DType::Int64: copy_cast(p.int64_data(), t.data<int64_t>()); break;
    case DType::Float64: case DType::Complex128: copy_cast(p.double_data(), t.data<double>()); break;
    case DType::Uint32: copy_cast(p.uint64_data(), t.data<uint32_t>()); break;
    case DType::Uint64: copy_cast(p.uint64_data(), t.data<uint64_t>()); break;
    default: break;
  }
  return t;
}

// The modeled part of a TypeProto (tensor type with element type and shape).
bool type_modeled(const onnx::TypeProto& tp, ir::TypeInfo* ti) {
  if (!tp.has_tensor_type()) return false;
  const auto& tt = tp.tensor_type();
  ti->has_type = true;
  int32_t et = tt.elem_type();
  ti->dtype = ir::dtype_known(et) ? static_cast<DType>(et) : DType::Undefined;
  ti->has_shape = tt.has_shape();
  ti->dims.clear();
  for (const auto& d : tt.shape().dim()) {
    ir::Dim dim;
    if (d.has_dim_value()) dim.value = d.dim_value();
    else if (d.has_dim_param()) dim.param = d.dim_param();
    ti->dims.push_back(dim);
  }
  return true;
}

void type_build(const ir::TypeInfo& ti, onnx::TypeProto* tp) {
  auto* tt = tp->mutable_tensor_type();
  tt->set_elem_type(static_cast<int32_t>(ti.dtype));
  if (ti.has_shape) {
    auto* sh = tt->mutable_shape();
    for (const auto& d : ti.dims) {
      auto* pd = sh->add_dim();
      if (d.known()) pd->set_dim_value(d.value);
      else if (!d.param.empty()) pd->set_dim_param(d.param);
    }
  }
}

void type_from_proto(const onnx::ValueInfoProto& vi, ir::TypeInfo* ti) {
  *ti = ir::TypeInfo();
  if (!vi.has_type()) return;
  const auto& tp = vi.type();
  if (!type_modeled(tp, ti)) {
    ti->has_type = true;
    ti->opaque = tp.SerializeAsString();
    return;
  }
  onnx::TypeProto rebuilt;
  type_build(*ti, &rebuilt);
  std::string orig = tp.SerializeAsString();
  if (rebuilt.SerializeAsString() != orig) ti->raw_type = orig;
}

void type_to_proto(const ir::TypeInfo& ti, onnx::ValueInfoProto* vi) {
  if (!ti.has_type) return;
  if (!ti.opaque.empty()) {
    vi->mutable_type()->ParseFromString(ti.opaque);
    return;
  }
  onnx::TypeProto built;
  type_build(ti, &built);
  if (!ti.raw_type.empty()) {
    // Keep the recorded extras (denotations, ...) unless a pass changed the modeled part since.
    onnx::TypeProto raw;
    ir::TypeInfo proj;
    if (raw.ParseFromString(ti.raw_type) && type_modeled(raw, &proj)) {
      onnx::TypeProto proj_built;
      type_build(proj, &proj_built);
      if (proj_built.SerializeAsString() == built.SerializeAsString()) {
        *vi->mutable_type() = raw;
        return;
      }
    }
  }
  *vi->mutable_type() = built;
}

Status graph_from_proto(const onnx::GraphProto& gp, Graph* g, const LoadContext& ctx);

Status attr_from_proto(const onnx::AttributeProto& a, Graph* g, const LoadContext& ctx, Attribute* out) {
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
  const std::string where = "attribute " + quote(a.name());
  switch (kind) {
    case K::Undefined: break;
    case K::Float: out->f = a.f(); break;
    case K::Int: out->i = a.i(); break;
    case K::String: out->s = a.s(); break;
    case K::Tensor: {
      auto t = tensor_from_proto(a.t(), ctx);
      if (!t.ok()) return t.status().With(where);
      out->t = std::move(t).value();
      out->t_meta = {a.t().name(), a.t().doc_string()};
      break;
    }
    case K::Graph: {
      out->g = std::make_shared<Graph>(a.g().name());
      out->g->parent = g;
      ASRC_RETURN_IF_ERROR(graph_from_proto(a.g(), out->g.get(), ctx).With(where));
      break;
    }
    case K::SparseTensor: out->opaque.push_back(a.sparse_tensor().SerializeAsString()); break;
    case K::TypeProto: out->opaque.push_back(a.tp().SerializeAsString()); break;
    case K::Floats: out->floats.assign(a.floats().begin(), a.floats().end()); break;
    case K::Ints: out->ints.assign(a.ints().begin(), a.ints().end()); break;
    case K::Strings: out->strings.assign(a.strings().begin(), a.strings().end()); break;
    case K::Tensors:
      for (const auto& tp : a.tensors()) {
        auto t = tensor_from_proto(tp, ctx);
        if (!t.ok()) return t.status().With(where);
        out->tensors.push_back(std::move(t).value());
        out->tensors_meta.push_back({tp.name(), tp.doc_string()});
      }
      break;
    case K::Graphs:
      for (const auto& sg : a.graphs()) {
        auto sub = std::make_shared<Graph>(sg.name());
        sub->parent = g;
        ASRC_RETURN_IF_ERROR(graph_from_proto(sg, sub.get(), ctx).With(where));
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

Status graph_from_proto(const onnx::GraphProto& gp, Graph* g, const LoadContext& ctx) {
  g->name = gp.name();
  g->doc_string = gp.doc_string();
  g->raw_extras = unknown_bytes(gp);
  const std::string where = "graph " + quote(gp.name());
  for (const auto& vi : gp.input()) {
    if (vi.name().empty()) return Error(where + ": graph input without a name");
    if (g->find_value(vi.name())) return Error(where + ": duplicate graph input " + quote(vi.name()));
    Value* v = g->add_value(vi.name());
    type_from_proto(vi, &v->type);
    v->doc_string = vi.doc_string();
    v->raw_value_info_extras = unknown_bytes(vi);
    g->inputs.push_back(v);
  }
  for (const auto& tp : gp.initializer()) {
    if (tp.name().empty()) return Error(where + ": initializer without a name");
    Value* v = g->find_value(tp.name());
    if (v && v->initializer) return Error(where + ": duplicate initializer " + quote(tp.name()));
    auto t = tensor_from_proto(tp, ctx);
    if (!t.ok()) return t.status().With(where + ": initializer " + quote(tp.name()));
    if (!v) {
      v = g->add_value(tp.name());
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
    Value* v = g->find_value(nm);
    if (!v) v = g->add_value(nm);
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
      if (g->find_value(o) || !seen.insert(o).second)
        return Error(where + ": node " + quote(np.name()) + " (" + np.op_type() + ") output " + quote(o) +
                     " is already defined (produced twice, or a graph input/initializer)");
    }
    nodes.push_back(g->add_node(np.op_type(), {}, outs, np.name(), np.domain()));
  }
  for (int k = 0; k < gp.node_size(); ++k) {
    const auto& np = gp.node(k);
    Node* n = nodes[k];
    n->doc_string = np.doc_string();
    n->raw_extras = unknown_bytes(np);
    const std::string nwhere = where + ": node " + quote(np.name()) + " (" + np.op_type() + ")";
    for (int i = 0; i < np.input_size(); ++i) {
      const std::string& in = np.input(i);
      Value* v = nullptr;
      if (!in.empty()) {
        v = g->lookup(in);
        if (!v) return Error(nwhere + ": input " + quote(in) + " is not defined");
      }
      g->set_input(n, i, v);
    }
    for (const auto& ap : np.attribute()) {
      n->attributes.emplace_back();
      ASRC_RETURN_IF_ERROR(attr_from_proto(ap, g, ctx, &n->attributes.back()).With(nwhere));
    }
  }
  for (const auto& vi : gp.output()) {
    Value* v = vi.name().empty() ? nullptr : g->lookup(vi.name());
    if (!v) return Error(where + ": graph output " + quote(vi.name()) + " is not defined");
    if (v->owner == g && std::find(g->inputs.begin(), g->inputs.end(), v) == g->inputs.end()) {
      type_from_proto(vi, &v->type);
      v->doc_string = vi.doc_string();
      v->raw_value_info_extras = unknown_bytes(vi);
    }
    g->outputs.push_back(v);
  }
  for (const auto& vi : gp.value_info()) {
    if (vi.name().empty()) return Error(where + ": value_info without a name");
    Value* v = g->find_value(vi.name());
    if (!v) v = g->add_value(vi.name());  // describes a value nothing produces: kept as is
    if (v->has_value_info) return Error(where + ": duplicate value_info " + quote(vi.name()));
    bool io = std::find(g->inputs.begin(), g->inputs.end(), v) != g->inputs.end() ||
              std::find(g->outputs.begin(), g->outputs.end(), v) != g->outputs.end();
    if (!io) {
      type_from_proto(vi, &v->type);
      v->doc_string = vi.doc_string();
      v->raw_value_info_extras = unknown_bytes(vi);
    }
    v->has_value_info = true;
  }
  return Status::Ok();
}

Result<GraphFile> model_from_proto(const onnx::ModelProto& mp, const LoadContext& ctx) {
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
  gf.raw_extras = unknown_bytes(mp);
  gf.graph = std::make_unique<Graph>(mp.graph().name());
  ASRC_RETURN_IF_ERROR(graph_from_proto(mp.graph(), gf.graph.get(), ctx));
  ASRC_RETURN_IF_ERROR(gf.graph->verify());
  return gf;
}

Result<GraphFile> parse_graph_file(const std::string& bytes, const std::string& name, const LoadContext& ctx) {
  onnx::ModelProto mp;
  if (bytes.size() > static_cast<size_t>(INT_MAX))
    return Error(name + ": larger than protobuf's 2 GiB limit (use external data)");
  if (!parse_bytes(&mp, bytes)) return Error(name + ": not a valid ONNX protobuf (truncated or corrupt)");
  auto gf = model_from_proto(mp, ctx);
  if (!gf.ok()) return gf.status().With(name);
  return gf;
}

Result<GraphFile> load_graph_file(const std::string& path, LoadContext ctx) {
  ASRC_ASSIGN_OR_RETURN(std::string bytes, read_file(path));
  ctx.base_dir = fs::path(path).parent_path().string();
  if (ctx.base_dir.empty()) ctx.base_dir = ".";
  ASRC_ASSIGN_OR_RETURN(GraphFile gf, parse_graph_file(bytes, path, ctx));
  gf.file = fs::path(path).filename().string();
  return gf;
}

// ---------------------------------------------------------------------------------------------
// export

// Where one tensor's bytes go when it is written externally.
struct Placement {
  std::string location;
  uint64_t offset = 0;
};

class DataFile {
 public:
  DataFile(std::string name, std::string path) : name_(std::move(name)), path_(std::move(path)) {}
  const std::string& name() const { return name_; }
  Result<uint64_t> append(const uint8_t* p, size_t n) {
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
  Status close() {
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

void tensor_to_proto_inline(const Tensor& t, onnx::TensorProto* p) {
  for (int64_t d : t.shape()) p->add_dims(d);
  p->set_data_type(static_cast<int32_t>(t.dtype()));
  if (t.dtype() == DType::String) {
    for (const auto& s : t.strings) p->add_string_data(s);
  } else {
    p->set_raw_data(t.nbytes() ? std::string(reinterpret_cast<const char*>(t.raw()), t.nbytes()) : std::string());
  }
}

void set_external(onnx::TensorProto* p, const std::string& location, uint64_t offset, size_t length) {
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

Status initializer_to_proto(const Tensor& t, SaveContext& sc, onnx::TensorProto* p) {
  const ir::Buffer* buf = t.buffer().get();
  bool numeric = t.dtype() != DType::String && buf && t.nbytes() > 0;
  if (numeric && sc.shared.count(buf) && sc.shared_file) {
    auto it = sc.placed.find(buf);
    if (it == sc.placed.end()) {
      ASRC_ASSIGN_OR_RETURN(uint64_t at, sc.shared_file->append(buf->data(), buf->size()));
      it = sc.placed.emplace(buf, Placement{sc.shared_file->name(), at}).first;
    }
    for (int64_t d : t.shape()) p->add_dims(d);
    p->set_data_type(static_cast<int32_t>(t.dtype()));
    set_external(p, it->second.location, it->second.offset + t.offset(), t.nbytes());
    return Status::Ok();
  }
  if (numeric && sc.threshold > 0 && t.nbytes() >= sc.threshold && sc.graph_file) {
    ASRC_ASSIGN_OR_RETURN(uint64_t at, sc.graph_file->append(t.raw(), t.nbytes()));
    for (int64_t d : t.shape()) p->add_dims(d);
    p->set_data_type(static_cast<int32_t>(t.dtype()));
    set_external(p, sc.graph_file->name(), at, t.nbytes());
    return Status::Ok();
  }
  tensor_to_proto_inline(t, p);
  return Status::Ok();
}

void value_info_to_proto(const Value* v, onnx::ValueInfoProto* vi) {
  merge_unknown(v->raw_value_info_extras, vi);
  vi->set_name(v->name);
  type_to_proto(v->type, vi);
  if (!v->doc_string.empty()) vi->set_doc_string(v->doc_string);
}

Status graph_to_proto(const Graph& g, SaveContext& sc, onnx::GraphProto* gp);

Status attr_to_proto(const Attribute& a, SaveContext& sc, onnx::AttributeProto* ap) {
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
      tensor_to_proto_inline(a.t, ap->mutable_t());
      meta(a.t_meta, ap->mutable_t());
      break;
    case K::Graph:
      if (!a.g) return Error("attribute " + quote(a.name) + ": graph attribute without a graph");
      ASRC_RETURN_IF_ERROR(graph_to_proto(*a.g, sc, ap->mutable_g()));
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
        tensor_to_proto_inline(a.tensors[i], p);
        if (i < a.tensors_meta.size()) meta(a.tensors_meta[i], p);
      }
      break;
    case K::Graphs:
      for (const auto& g : a.graphs) {
        if (!g) return Error("attribute " + quote(a.name) + ": null graph");
        ASRC_RETURN_IF_ERROR(graph_to_proto(*g, sc, ap->add_graphs()));
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

Status graph_to_proto(const Graph& g, SaveContext& sc, onnx::GraphProto* gp) {
  merge_unknown(g.raw_extras, gp);
  const std::string where = "graph " + quote(g.name);
  auto order = g.topo_order();
  if (!order.ok()) return order.status();
  for (const Node* n : order.value()) {
    auto* np = gp->add_node();
    merge_unknown(n->raw_extras, np);
    for (const Value* v : n->inputs) np->add_input(v ? v->name : std::string());
    for (const Value* v : n->outputs) np->add_output(v ? v->name : std::string());
    if (!n->name.empty()) np->set_name(n->name);
    np->set_op_type(n->op_type);
    if (!n->domain.empty()) np->set_domain(n->domain);
    for (const auto& a : n->attributes)
      ASRC_RETURN_IF_ERROR(attr_to_proto(a, sc, np->add_attribute())
                               .With(where + ": node " + quote(n->name) + " (" + n->op_type + ")"));
    if (!n->doc_string.empty()) np->set_doc_string(n->doc_string);
  }
  gp->set_name(g.name);
  for (const Value* v : g.initializers) {
    auto* tp = gp->add_initializer();
    ASRC_RETURN_IF_ERROR(initializer_to_proto(*v->initializer, sc, tp).With(where + ": initializer " + quote(v->name)));
    tp->set_name(v->name);
    if (!v->initializer_doc_string.empty()) tp->set_doc_string(v->initializer_doc_string);
  }
  for (const auto& s : g.opaque_sparse_initializers) gp->add_sparse_initializer()->ParseFromString(s);
  if (!g.doc_string.empty()) gp->set_doc_string(g.doc_string);
  for (const Value* v : g.inputs) value_info_to_proto(v, gp->add_input());
  for (const Value* v : g.outputs) value_info_to_proto(v, gp->add_output());
  for (const auto& v : g.values())
    if (v->has_value_info) value_info_to_proto(v.get(), gp->add_value_info());
  for (const auto& s : g.opaque_quantization_annotation)
    gp->add_quantization_annotation()->ParseFromString(s);
  return Status::Ok();
}

Status model_to_proto(const GraphFile& gf, SaveContext& sc, onnx::ModelProto* mp) {
  if (!gf.graph) return Error("graph " + quote(gf.role) + " is empty");
  merge_unknown(gf.raw_extras, mp);
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
  ASRC_RETURN_IF_ERROR(graph_to_proto(*gf.graph, sc, mp->mutable_graph()));
  for (const auto& [k, v] : gf.metadata_props) {
    auto* e = mp->add_metadata_props();
    e->set_key(k);
    e->set_value(v);
  }
  for (const auto& s : gf.opaque_training_info) mp->add_training_info()->ParseFromString(s);
  for (const auto& s : gf.opaque_functions) mp->add_functions()->ParseFromString(s);
  return Status::Ok();
}

void collect_initializer_buffers(const Graph& g, std::map<const ir::Buffer*, int>* refs, int64_t* total) {
  for (const Value* v : g.initializers) {
    const Tensor& t = *v->initializer;
    *total += static_cast<int64_t>(t.nbytes());
    if (t.buffer() && t.nbytes() > 0 && t.dtype() != DType::String) ++(*refs)[t.buffer().get()];
  }
  for (const Node* n : g.nodes())
    for (const auto& a : n->attributes) {
      if (a.g) collect_initializer_buffers(*a.g, refs, total);
      for (const auto& sg : a.graphs)
        if (sg) collect_initializer_buffers(*sg, refs, total);
    }
}

Status write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return Error(path + ": cannot write");
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) return Error(path + ": write failed");
  return Status::Ok();
}

Status run_checker(const std::string& path) {
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

bool safe_file_name(const std::string& f) {
  return !f.empty() && f != "." && f != ".." && f.find('/') == std::string::npos &&
         f.find('\\') == std::string::npos;
}

// Writes the graph files of `model` into `dir` (which exists and is empty). `names[i]` is the
// file name of graph i. Shared buffers (referenced by more than one initializer anywhere in the
// model) go once into `shared_name`.
Status write_graphs(const ir::Model& model, const std::string& dir, const std::vector<std::string>& names,
                    const std::string& shared_name, const SaveOptions& options) {
  std::map<const ir::Buffer*, int> refs;
  int64_t total = 0;
  for (const auto& gf : model.graphs)
    if (gf.graph) collect_initializer_buffers(*gf.graph, &refs, &total);
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
    ASRC_RETURN_IF_ERROR(model_to_proto(gf, sc, &mp).With(names[i]));
    ASRC_RETURN_IF_ERROR(own.close());
    std::string bytes;
    if (!mp.SerializeToString(&bytes))
      return Error(names[i] + ": cannot serialize (over 2 GiB? use external data)");
    ASRC_RETURN_IF_ERROR(write_bytes((fs::path(dir) / names[i]).string(), bytes));
  }
  ASRC_RETURN_IF_ERROR(shared.close());
  if (options.check) {
    for (const auto& n : names) {
      Status st = run_checker((fs::path(dir) / n).string());
      if (!st.ok()) return Error(n + ": " + st.message().substr(st.message().find("ONNX checker")));
    }
  }
  return Status::Ok();
}

std::string temp_sibling(const fs::path& target, const char* tag) {
  fs::path parent = target.parent_path();
  if (parent.empty()) parent = ".";
  return (parent / ("." + target.filename().string() + "." + tag + "-" + std::to_string(getpid()))).string();
}

// ---------------------------------------------------------------------------------------------
// bundle folder

const std::set<std::string> kBundleKeys = {"format", "version", "model_type", "graphs", "tokens",
                                           "frontend", "decoding", "streaming", "info"};

Status check_bundle_config(const nlohmann::json& j, const std::string& where) {
  if (!j.is_object()) return Error(where + ": top level must be a JSON object");
  for (auto it = j.begin(); it != j.end(); ++it)
    if (!kBundleKeys.count(it.key())) return Error(where + ": unknown key " + quote(it.key()));
  if (j.contains("format") && j["format"] != "asrc-bundle")
    return Error(where + ": format must be \"asrc-bundle\"");
  if (j.contains("version") && !(j["version"].is_number_integer() && j["version"] == 1))
    return Error(where + ": version must be 1");
  for (const char* k : {"frontend", "decoding", "streaming", "info"})
    if (j.contains(k) && !j[k].is_object()) return Error(where + ": " + k + " must be an object");
  if (j.contains("model_type") && !j["model_type"].is_string())
    return Error(where + ": model_type must be a string");
  return Status::Ok();
}

Status check_roles(const nlohmann::json& config, const std::vector<std::string>& roles, const std::string& where) {
  if (!config.contains("model_type")) return Status::Ok();
  std::string type = config["model_type"].get<std::string>();
  std::vector<std::string> need;
  if (type == "cascaded_transducer") need = {"encoder_causal", "encoder_noncausal", "decoder", "joiner"};
  else if (type == "transducer") need = {"encoder", "decoder", "joiner"};
  for (const auto& r : need)
    if (std::find(roles.begin(), roles.end(), r) == roles.end())
      return Error(where + ": model_type " + quote(type) + " needs graph " + quote(r) + " in \"graphs\"");
  return Status::Ok();
}

Result<std::vector<std::string>> read_tokens(const std::string& path) {
  ASRC_ASSIGN_OR_RETURN(std::string text, read_file(path));
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
    if (sp == std::string::npos || sp == 0 || !parse_nonneg_int(line.substr(sp + 1), &id) || id > 10000000)
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
Result<nlohmann::json> sherpa_layout(const std::string& dir) {
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

Result<ir::Model> load_bundle(const std::string& dir) {
  fs::path root(dir);
  std::string where = (root / "model.json").string();
  std::error_code ec;
  nlohmann::json j;
  if (!fs::is_regular_file(root / "model.json", ec)) {
    ASRC_ASSIGN_OR_RETURN(j, sherpa_layout(dir));
  } else {
    ASRC_ASSIGN_OR_RETURN(std::string text, read_file(where));
    j = nlohmann::json::parse(text, nullptr, false);
    if (j.is_discarded()) return Error(where + ": not valid JSON");
  }
  ASRC_RETURN_IF_ERROR(check_bundle_config(j, where));
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
    if (!safe_relative_path(file)) return Error(gw + ": " + quote(file) + " is not a file inside the bundle");
    fs::path p = root / file;
    if (!fs::is_regular_file(p, ec)) return Error(gw + ": file " + quote(p.string()) + " not found");
    ASRC_ASSIGN_OR_RETURN(GraphFile gf, load_graph_file(p.string(), ctx));
    gf.role = it.key();
    gf.file = file;
    roles.push_back(it.key());
    model.graphs.push_back(std::move(gf));
  }
  ASRC_RETURN_IF_ERROR(check_roles(j, roles, where));
  if (j.contains("tokens")) {
    if (!j["tokens"].is_string()) return Error(where + ": tokens must be a file name");
    std::string file = j["tokens"].get<std::string>();
    if (!safe_relative_path(file)) return Error(where + ": tokens: " + quote(file) + " is not a file inside the bundle");
    fs::path p = root / file;
    if (!fs::is_regular_file(p, ec)) return Error(where + ": tokens: file " + quote(p.string()) + " not found");
    ASRC_ASSIGN_OR_RETURN(model.tokens, read_tokens(p.string()));
  }
  j.erase("graphs");
  j.erase("tokens");
  model.config = j;
  return model;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// public API

Result<ir::Model> LoadModel(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) return Error(path + ": no such file or folder");
  if (fs::is_directory(path, ec)) return load_bundle(path);
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
  return load_graph_file(path, ctx);
}

Result<GraphFile> ParseGraphFile(const std::string& bytes, const std::string& name, const std::string& base_dir) {
  LoadContext ctx;
  ctx.base_dir = base_dir;
  return parse_graph_file(bytes, name, ctx);
}

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
  std::string tmp = temp_sibling(target, "tmp");
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
    Status st = write_graphs(model, tmp, {name}, name + ".data", options);
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
    if (!safe_file_name(file)) return cleanup(Error(path + ": bad graph file name " + quote(file)));
    if (graphs.contains(role)) return cleanup(Error(path + ": two graphs with role " + quote(role)));
    if (std::find(names.begin(), names.end(), file) != names.end() || file == "model.json" || file == "tokens.txt")
      return cleanup(Error(path + ": file name " + quote(file) + " used twice"));
    graphs[role] = file;
    names.push_back(file);
    roles.push_back(role);
  }
  j["graphs"] = graphs;
  if (!model.tokens.empty()) j["tokens"] = "tokens.txt";
  else j.erase("tokens");
  Status st = check_bundle_config(j, "model.json");
  if (st.ok()) st = check_roles(j, roles, "model.json");
  if (!st.ok()) return cleanup(st.With(path));
  st = write_graphs(model, tmp, names, "shared_weights.bin", options);
  if (!st.ok()) return cleanup(st.With(path));
  if (!model.tokens.empty()) {
    std::string text;
    for (size_t i = 0; i < model.tokens.size(); ++i) text += model.tokens[i] + " " + std::to_string(i) + "\n";
    st = write_bytes((fs::path(tmp) / "tokens.txt").string(), text);
    if (!st.ok()) return cleanup(st);
  }
  st = write_bytes((fs::path(tmp) / "model.json").string(), j.dump(2) + "\n");
  if (!st.ok()) return cleanup(st);
  std::string old;
  if (fs::exists(target, ec)) {
    if (!fs::is_directory(target, ec)) return cleanup(Error(path + ": exists and is not a folder"));
    old = temp_sibling(target, "old");
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

Result<Tensor> LoadTensorFile(const std::string& path, std::string* name) {
  ASRC_ASSIGN_OR_RETURN(std::string bytes, read_file(path));
  onnx::TensorProto tp;
  if (!parse_bytes(&tp, bytes)) return Error(path + ": not a valid TensorProto (truncated or corrupt)");
  if (!tp.unknown_fields().empty() || !tp.has_data_type())
    return Error(path + ": not a TensorProto (a sequence, map or optional value?)");
  LoadContext ctx;
  ctx.base_dir = fs::path(path).parent_path().string();
  if (ctx.base_dir.empty()) ctx.base_dir = ".";
  auto t = tensor_from_proto(tp, ctx);
  if (!t.ok()) return t.status().With(path + ": tensor " + quote(tp.name()));
  if (name) *name = tp.name();
  return t;
}

Status SaveTensorFile(const Tensor& t, const std::string& name, const std::string& path) {
  if (!t.defined()) return Error(path + ": cannot save an undefined tensor");
  onnx::TensorProto tp;
  tensor_to_proto_inline(t, &tp);
  tp.set_name(name);
  std::string bytes;
  if (!tp.SerializeToString(&bytes)) return Error(path + ": cannot serialize tensor");
  std::string tmp = temp_sibling(fs::path(path), "tmp");
  ASRC_RETURN_IF_ERROR(write_bytes(tmp, bytes));
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    fs::remove(tmp, ec);
    return Error(path + ": cannot move the written file into place");
  }
  return Status::Ok();
}

}  // namespace asrc::onnx_io
