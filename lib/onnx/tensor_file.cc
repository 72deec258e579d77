// TensorProto files (the ONNX conformance test data format), for `asrc run`.
#include <filesystem>

#include "onnx/onnx_internal.h"  // first: it defines ONNX_API, which onnx-data.pb.h needs
#include <onnx/onnx-data.pb.h>
#include "onnx/onnx_io.h"

namespace asrc::onnx_io {

Result<Tensor> LoadTensorFile(const std::string& path, std::string* name) {
  ASRC_ASSIGN_OR_RETURN(std::string bytes, ReadFile(path));
  onnx::TensorProto tp;
  if (!ParseBytes(&tp, bytes)) return Error(path + ": not a valid TensorProto (truncated or corrupt)");
  if (!tp.unknown_fields().empty() || !tp.has_data_type())
    return Error(path + ": not a TensorProto (a sequence, map or optional value?)");
  LoadContext ctx;
  ctx.base_dir = fs::path(path).parent_path().string();
  if (ctx.base_dir.empty()) ctx.base_dir = ".";
  auto t = TensorFromProto(tp, ctx);
  if (!t.ok()) return t.status().With(path + ": tensor " + Quote(tp.name()));
  if (name) *name = tp.name();
  return t;
}

namespace {

Result<Tensor> FromSequenceProto(const onnx::SequenceProto& sp, const LoadContext& ctx) {
  if (sp.elem_type() != onnx::SequenceProto::TENSOR && sp.elem_type() != onnx::SequenceProto::UNDEFINED)
    return Error("sequence " + Quote(sp.name()) + ": elements of type " +
                 onnx::SequenceProto_DataType_Name(sp.elem_type()) + " are not supported (tensors only)");
  if (sp.sequence_values_size() || sp.map_values_size() || sp.optional_values_size() || sp.sparse_tensor_values_size())
    return Error("sequence " + Quote(sp.name()) + ": only tensor elements are supported");
  std::vector<Tensor> elems;
  for (const auto& tp : sp.tensor_values()) {
    auto t = TensorFromProto(tp, ctx);
    if (!t.ok()) return t.status().With("sequence " + Quote(sp.name()) + " element " + std::to_string(elems.size()));
    if (!elems.empty() && t->dtype() != elems[0].dtype())
      return Error("sequence " + Quote(sp.name()) + ": elements differ in dtype");
    elems.push_back(std::move(t).value());
  }
  const ir::DType d = elems.empty() ? ir::DType::Undefined : elems[0].dtype();
  return Tensor::Sequence(d, std::move(elems));
}

Result<Tensor> FromOptionalProto(const onnx::OptionalProto& op, const LoadContext& ctx) {
  switch (op.elem_type()) {
    case onnx::OptionalProto::UNDEFINED: return Tensor::Optional(ir::DType::Undefined, nullptr);
    case onnx::OptionalProto::TENSOR: {
      ASRC_ASSIGN_OR_RETURN(Tensor t, TensorFromProto(op.tensor_value(), ctx));
      return Tensor::Optional(t.dtype(), &t);
    }
    case onnx::OptionalProto::SEQUENCE: {
      ASRC_ASSIGN_OR_RETURN(Tensor s, FromSequenceProto(op.sequence_value(), ctx));
      return Tensor::Optional(s.dtype(), &s);
    }
    default:
      return Error("optional " + Quote(op.name()) + ": elements of type " +
                   onnx::OptionalProto_DataType_Name(op.elem_type()) + " are not supported");
  }
}

}  // namespace

Result<Tensor> LoadValueFile(const std::string& path, ir::ValueKind kind, std::string* name) {
  if (kind == ir::ValueKind::Tensor) return LoadTensorFile(path, name);
  ASRC_ASSIGN_OR_RETURN(std::string bytes, ReadFile(path));
  LoadContext ctx;
  ctx.base_dir = fs::path(path).parent_path().string();
  if (ctx.base_dir.empty()) ctx.base_dir = ".";
  if (kind == ir::ValueKind::Sequence) {
    onnx::SequenceProto sp;
    if (!ParseBytes(&sp, bytes) || !sp.unknown_fields().empty())
      return Error(path + ": not a valid SequenceProto");
    if (name) *name = sp.name();
    auto t = FromSequenceProto(sp, ctx);
    return t.ok() ? t : t.status().With(path);
  }
  if (kind == ir::ValueKind::Optional) {
    onnx::OptionalProto op;
    if (!ParseBytes(&op, bytes) || !op.unknown_fields().empty())
      return Error(path + ": not a valid OptionalProto");
    if (name) *name = op.name();
    auto t = FromOptionalProto(op, ctx);
    return t.ok() ? t : t.status().With(path);
  }
  return Error(path + ": map and sparse tensor values are not supported");
}

namespace {

void ToSequenceProto(const Tensor& seq, onnx::SequenceProto* sp) {
  sp->set_elem_type(onnx::SequenceProto::TENSOR);
  for (const Tensor& e : seq.elements()) TensorToProtoInline(e, sp->add_tensor_values());
}

// A value as the bytes of its file: TensorProto, SequenceProto or OptionalProto by kind().
Result<std::string> ValueBytes(const Tensor& t, const std::string& name) {
  std::string bytes;
  bool ok = false;
  if (t.kind() == ir::ValueKind::Tensor) {
    onnx::TensorProto tp;
    TensorToProtoInline(t, &tp);
    tp.set_name(name);
    ok = tp.SerializeToString(&bytes);
  } else if (t.kind() == ir::ValueKind::Sequence) {
    onnx::SequenceProto sp;
    ToSequenceProto(t, &sp);
    sp.set_name(name);
    ok = sp.SerializeToString(&bytes);
  } else if (t.kind() == ir::ValueKind::Optional) {
    onnx::OptionalProto op;
    op.set_name(name);
    op.set_elem_type(onnx::OptionalProto::UNDEFINED);
    if (!t.elements().empty() && t.elements()[0].is_tensor()) {
      op.set_elem_type(onnx::OptionalProto::TENSOR);
      TensorToProtoInline(t.elements()[0], op.mutable_tensor_value());
    } else if (!t.elements().empty()) {
      op.set_elem_type(onnx::OptionalProto::SEQUENCE);
      ToSequenceProto(t.elements()[0], op.mutable_sequence_value());
    }
    ok = op.SerializeToString(&bytes);
  }
  if (!ok) return Error(std::string("cannot serialize the ") + ir::ValueKindName(t.kind()));
  return bytes;
}

}  // namespace

Status SaveTensorFile(const Tensor& t, const std::string& name, const std::string& path) {
  if (!t.defined()) return Error(path + ": cannot save an undefined tensor");
  auto serialized = ValueBytes(t, name);
  if (!serialized.ok()) return serialized.status().With(path);
  const std::string& bytes = *serialized;
  std::string tmp = TempSibling(fs::path(path), "tmp");
  ASRC_RETURN_IF_ERROR(WriteBytes(tmp, bytes));
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    fs::remove(tmp, ec);
    return Error(path + ": cannot move the written file into place");
  }
  return Status::Ok();
}

}  // namespace asrc::onnx_io
