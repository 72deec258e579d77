// Internals shared by the ONNX import, export and tensor-file units of lib/onnx (not a public
// header: include onnx/onnx_io.h).
#pragma once

#include <climits>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include <google/protobuf/message.h>
#include <nlohmann/json.hpp>
#include <onnx/onnx_pb.h>

#include "core/status.h"
#include "ir/model.h"

namespace asrc::onnx_io::detail {

// Protobuf fields we do not model, as serialized bytes (empty when none), and back.
template <class M>
std::string UnknownBytes(const M& m) {
  if (m.unknown_fields().empty()) return std::string();
  std::string s;
  m.unknown_fields().SerializeToString(&s);
  return s;
}

template <class M>
void MergeUnknown(const std::string& bytes, M* m) {
  if (!bytes.empty()) m->MergeFromString(bytes);
}

// Parses `bytes` into `m` with the 2 GiB total and depth-100 limits; false when invalid.
bool ParseBytes(google::protobuf::Message* m, const std::string& bytes);
Result<std::string> ReadFile(const std::string& path);
// Writes `bytes` to `path` (created or truncated); when the write fails (a full disk) the
// half-written regular file is removed.
Status WriteBytes(const std::string& path, const std::string& bytes);
// A decimal integer in [0, 2^63) with nothing else around it.
bool ParseNonnegInt(const std::string& s, int64_t* out);
// External data locations (and bundle file names) must stay inside the model's folder.
bool SafeRelativePath(const std::string& loc);
std::string Quote(const std::string& s);
// ".<name>.<tag>-<pid>" next to `target`: written first, renamed into place when complete.
std::string TempSibling(const std::filesystem::path& target, const char* tag);

struct LoadContext {
  std::string base_dir;  // folder for external data ("" = none allowed)
  // (canonical file, offset, bytes) -> buffer, so tensors stored once are shared once loaded.
  std::map<std::tuple<std::string, int64_t, int64_t>, std::shared_ptr<ir::Buffer>>* shared = nullptr;
};

// TensorProto -> Tensor, checking types, sizes and external data (onnx_import.cc).
Result<ir::Tensor> TensorFromProto(const onnx::TensorProto& p, const LoadContext& ctx);
// Tensor -> TensorProto with the data inline (raw_data, or string_data) (onnx_export.cc).
void TensorToProtoInline(const ir::Tensor& t, onnx::TensorProto* p);

// The modeled part of a TypeProto (tensor type with element type and shape); false otherwise.
bool TypeModeled(const onnx::TypeProto& tp, ir::TypeInfo* ti);
void TypeBuild(const ir::TypeInfo& ti, onnx::TypeProto* tp);

// model.json checks shared by loading and saving a bundle: known keys and value kinds, and the
// graph roles `model_type` needs.
Status CheckBundleConfig(const nlohmann::json& j, const std::string& where);
Status CheckRoles(const nlohmann::json& config, const std::vector<std::string>& roles,
                   const std::string& where);

}  // namespace asrc::onnx_io::detail

namespace asrc::onnx_io {

// Names the import, export and tensor-file units all use.
namespace fs = std::filesystem;
using ir::Attribute;
using ir::DType;
using ir::Graph;
using ir::GraphFile;
using ir::Node;
using ir::Tensor;
using ir::Value;
using namespace detail;

}  // namespace asrc::onnx_io
