// Helpers shared by the ONNX import, export and tensor-file units.
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <set>

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

#include "onnx/onnx_internal.h"

namespace asrc::onnx_io::detail {

bool ParseBytes(google::protobuf::Message* m, const std::string& bytes) {
  if (bytes.size() > static_cast<size_t>(INT_MAX)) return false;
  google::protobuf::io::ArrayInputStream ais(bytes.data(), static_cast<int>(bytes.size()));
  google::protobuf::io::CodedInputStream cis(&ais);
  cis.SetTotalBytesLimit(INT_MAX);
  cis.SetRecursionLimit(100);
  return m->ParseFromCodedStream(&cis) && cis.ConsumedEntireMessage();
}

Result<std::string> ReadFile(const std::string& path) {
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

bool ParseNonnegInt(const std::string& s, int64_t* out) {
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

bool SafeRelativePath(const std::string& loc) {
  if (loc.empty() || loc[0] == '/' || loc.find('\\') != std::string::npos) return false;
  fs::path p(loc);
  for (const auto& part : p)
    if (part == "..") return false;
  return true;
}

std::string Quote(const std::string& s) { return "'" + s + "'"; }

Status WriteBytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return Error(path + ": cannot write");
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) {  // a full disk: no half-written file left behind (a device such as /dev/full stays)
    std::error_code ec;
    if (fs::is_regular_file(path, ec)) fs::remove(path, ec);
    return Error(path + ": write failed");
  }
  return Status::Ok();
}

std::string TempSibling(const fs::path& target, const char* tag) {
  fs::path parent = target.parent_path();
  if (parent.empty()) parent = ".";
  return (parent / ("." + target.filename().string() + "." + tag + "-" + std::to_string(getpid()))).string();
}

bool TypeModeled(const onnx::TypeProto& tp, ir::TypeInfo* ti) {
  if (!tp.has_tensor_type()) return false;
  const auto& tt = tp.tensor_type();
  ti->has_type = true;
  int32_t et = tt.elem_type();
  ti->dtype = ir::DTypeKnown(et) ? static_cast<DType>(et) : DType::Undefined;
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

void TypeBuild(const ir::TypeInfo& ti, onnx::TypeProto* tp) {
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

const std::set<std::string> kBundleKeys = {"format", "version", "model_type", "graphs", "tokens",
                                           "frontend", "decoding", "streaming", "info"};

Status CheckBundleConfig(const nlohmann::json& j, const std::string& where) {
  if (!j.is_object()) return Error(where + ": top level must be a JSON object");
  for (auto it = j.begin(); it != j.end(); ++it)
    if (!kBundleKeys.count(it.key())) return Error(where + ": unknown key " + Quote(it.key()));
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

Status CheckRoles(const nlohmann::json& config, const std::vector<std::string>& roles, const std::string& where) {
  if (!config.contains("model_type")) return Status::Ok();
  std::string type = config["model_type"].get<std::string>();
  std::vector<std::string> need;
  if (type == "cascaded_transducer") need = {"encoder_causal", "encoder_noncausal", "decoder", "joiner"};
  else if (type == "transducer") need = {"encoder", "decoder", "joiner"};
  for (const auto& r : need)
    if (std::find(roles.begin(), roles.end(), r) == roles.end())
      return Error(where + ": model_type " + Quote(type) + " needs graph " + Quote(r) + " in \"graphs\"");
  return Status::Ok();
}

}  // namespace asrc::onnx_io::detail
