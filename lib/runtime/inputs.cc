#include "runtime/inputs.h"

#include <random>

namespace asrc::runtime {

Result<ir::Shape> ResolveInputShape(const ir::Value& v, const std::map<std::string, int64_t>& dims,
                                    int64_t default_dim) {
  if (!v.type.has_type || !v.type.opaque.empty())
    return Error("input '" + v.name + "' has no tensor type; pass it with --input");
  if (!v.type.has_shape) return Error("input '" + v.name + "' has no static shape; pass it with --input");
  ir::Shape s;
  for (size_t i = 0; i < v.type.dims.size(); ++i) {
    const ir::Dim& d = v.type.dims[i];
    if (d.known()) {
      s.push_back(d.value);
      continue;
    }
    auto it = dims.find(d.param);
    bool batch_like = d.param == "N" || d.param == "B" || d.param.find("batch") != std::string::npos;
    s.push_back(it != dims.end() ? it->second : (i == 0 || batch_like) ? 1 : default_dim);
  }
  return s;
}

namespace {
bool Contains(const std::string& s, const char* sub) { return s.find(sub) != std::string::npos; }
bool TokenLike(const std::string& n) {
  return n == "y" || Contains(n, "token") || Contains(n, "label") || Contains(n, "ids");
}
}  // namespace

Result<std::vector<ir::Tensor>> MakeInputs(const ir::Graph& g,
                                           const std::map<std::string, int64_t>& dims,
                                           int64_t default_dim, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> uf(-1.f, 1.f);
  std::uniform_int_distribution<int> ui(1, 9);
  std::vector<const ir::Value*> feeds;
  for (const ir::Value* v : g.inputs)
    if (!v->initializer) feeds.push_back(v);
  int64_t time_len = -1;
  for (const ir::Value* v : feeds) {
    if (v->type.dtype != ir::DType::Float32 || !v->type.has_shape || v->type.dims.size() < 2) continue;
    auto s = ResolveInputShape(*v, dims, default_dim);
    if (s.ok()) { time_len = (*s)[1]; break; }
  }
  std::vector<ir::Tensor> out;
  for (const ir::Value* v : feeds) {
    ASRC_ASSIGN_OR_RETURN(ir::Shape s, ResolveInputShape(*v, dims, default_dim));
    ir::Tensor t(v->type.dtype, s);
    int64_t n = t.numel();
    switch (v->type.dtype) {
      case ir::DType::Float32:
        for (int64_t i = 0; i < n; ++i) t.data<float>()[i] = uf(rng);
        break;
      case ir::DType::Float16:
        for (int64_t i = 0; i < n; ++i) t.data<uint16_t>()[i] = ir::FloatToHalf(uf(rng));
        break;
      case ir::DType::Int64: case ir::DType::Int32: {
        for (int64_t i = 0; i < n; ++i) {
          int64_t val = 0;
          if (Contains(v->name, "len")) val = time_len >= 0 ? time_len : default_dim;
          else if (TokenLike(v->name)) val = ui(rng);
          if (v->type.dtype == ir::DType::Int64) t.data<int64_t>()[i] = val;
          else t.data<int32_t>()[i] = static_cast<int32_t>(val);
        }
        break;
      }
      case ir::DType::Bool:
        for (int64_t i = 0; i < n; ++i) t.data<bool>()[i] = true;
        break;
      default:
        return Error("input '" + v->name + "': cannot generate " + ir::DTypeName(v->type.dtype) +
                     " data; pass it with --input");
    }
    out.push_back(std::move(t));
  }
  return out;
}

}  // namespace asrc::runtime
