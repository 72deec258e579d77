// Helpers shared by the quantized kernels (quant.cc, conv_integer.cc): parameter reading and
// kernel factories. Internal to lib/runtime/kernels.
#pragma once

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "runtime/kernels/util.h"

namespace asrc::runtime::qk {

using ir::DType;
using ir::Tensor;

inline bool IsQuant8(DType d) { return d == DType::Uint8 || d == DType::Int8; }

// A scale or zero point given as an empty tensor is an error: kernels read their first entry
// (onnx_run_fuzzer: an empty a_zero_point of MatMulInteger). A bias may be empty (allow_empty).
inline Result<std::vector<float>> FloatValues(const Tensor& t, const char* what, bool allow_empty = false) {
  if (t.numel() == 0 && !allow_empty) return Error(std::string(what) + " is empty");
  std::vector<float> v(static_cast<size_t>(t.numel()));
  if (t.dtype() == DType::Float32) {
    // An empty tensor's data may be null, which memcpy must not get (onnx_run_fuzzer, UBSan).
    if (!v.empty()) ku::CopyBytes(v.data(), t.data<float>(), v.size() * sizeof(float));
  } else if (t.dtype() == DType::Float16) {
    for (size_t i = 0; i < v.size(); ++i) v[i] = ir::HalfToFloat(t.data<uint16_t>()[i]);
  } else {
    return Error(std::string(what) + " must be float32 or float16, got " +
                 ir::DTypeName(t.dtype()));
  }
  return v;
}

// Zero points as int32 (nullptr tensor: `count` zeros).
inline Result<std::vector<int32_t>> ZeroPoints(const Tensor* t, int64_t count, const char* what) {
  if (!t) return std::vector<int32_t>(static_cast<size_t>(count), 0);
  if (t->numel() == 0) return Error(std::string(what) + " is empty");
  // Checked before the conversion below: a float zero point (NaN, huge) would be an undefined cast.
  if (t->dtype() == DType::Float32 || t->dtype() == DType::Float64)
    return Error(std::string(what) + " has unsupported dtype " + ir::DTypeName(t->dtype()));
  std::vector<int32_t> v(static_cast<size_t>(t->numel()));
  bool ok = ku::DispatchNumeric(t->dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* p = t->data<T>();
    for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<int32_t>(p[i]);
  });
  if (!ok)
    return Error(std::string(what) + " has unsupported dtype " + ir::DTypeName(t->dtype()));
  return v;
}

inline const Tensor* ConstIn(const KernelInit& init, int i) {
  return i < static_cast<int>(init.constant_inputs.size()) ? init.constant_inputs[i] : nullptr;
}
inline bool HasIn(const ir::Node* n, int i) { return n->input(i) != nullptr; }

// DynamicQuantizeLinear of x[0, n) into y (uint8), with its scale and zero point; split over
// `pool` when it is non-null (quant.cc).
void DynamicQuantizeU8(const float* x, int64_t n, ThreadPool* pool, float* scale, uint8_t* zp, uint8_t* y);

template <class K>
KernelFactory WithInit() {
  return [](const KernelInit& init) -> Result<std::unique_ptr<Kernel>> {
    auto k = std::make_unique<K>();
    ASRC_RETURN_IF_ERROR(k->Init(init));
    return std::unique_ptr<Kernel>(std::move(k));
  };
}

}  // namespace asrc::runtime::qk
