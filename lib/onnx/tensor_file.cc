// TensorProto files (the ONNX conformance test data format), for `asrc run`.
#include <filesystem>

#include "onnx/onnx_internal.h"
#include "onnx/onnx_io.h"

namespace asrc::onnx_io {

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
