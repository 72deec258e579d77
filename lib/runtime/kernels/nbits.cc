// com.microsoft MatMulNBits: ONNX Runtime's contrib op for weights block-quantized along K to 2,
// 4 or 8 bits, as its quantization tools (MatMulNBitsQuantizer, "4-bit weight-only") write
// models people share.
//   A float32 [..., K]; B uint8 [N, k_blocks, blob], k_blocks = ceil(K / block_size),
//   blob = block_size * bits / 8, codes packed low bits first along K; scales float32
//   [N * k_blocks] (or [N, k_blocks]); zero_points (optional) uint8 [N, ceil(k_blocks * bits / 8)]
//   packed the same way per column, or float32 [N * k_blocks]; absent: 2^(bits - 1);
//   g_idx (input 4, act-order) is refused; bias (input 5) float32 [N].
//   Attributes K, N, bits (default 4), block_size (a power of two >= 16); accuracy_level is
//   ignored (always computed in float32, ONNX Runtime's accuracy_level 0).
// Y = A W^T (+ bias), W[n, k] = (code(n, k) - zp(n, k / block_size)) * scale(n, k / block_size).
// When B, scales and zero points are constants (weights, the usual case) W is dequantized once at
// plan time, transposed to [K, N] for the float GEMM; otherwise on every run.
// tests/runtime/parity_test.cc checks it against a plain loop over the contract and against
// ONNX Runtime.
#include "runtime/gemm.h"
#include "runtime/kernels/quant.h"
#include "runtime/kernels/util.h"

namespace asrc::runtime {

namespace {

using ku::DType;
using ku::Tensor;
using qk::ConstIn;
using qk::HasIn;

struct NBitsShape {
  int64_t K = 0, N = 0, bits = 4, block = 0, blocks = 0, blob = 0;
};

// The b-bit code at position j of a low-first packed byte string.
inline int NBitsCode(const uint8_t* p, int64_t j, int64_t bits) {
  const int64_t bit = j * bits;
  return (p[bit / 8] >> (bit % 8)) & ((1 << bits) - 1);
}

// W^T [K, N], block by block: one scale and zero point per (column, block), codes unpacked a
// byte at a time.
void DequantizeNBitsTransposed(const NBitsShape& s, const uint8_t* b, const float* scales,
                               const uint8_t* zp_packed, const float* zp_float, float* wt) {
  const int64_t zp_row = (s.blocks * s.bits + 7) / 8;
  const int per_byte = static_cast<int>(8 / s.bits), mask = (1 << s.bits) - 1;
  for (int64_t n = 0; n < s.N; ++n)
    for (int64_t kb = 0; kb < s.blocks; ++kb) {
      const float scale = scales[n * s.blocks + kb];
      float zp = static_cast<float>(1 << (s.bits - 1));
      if (zp_packed) zp = static_cast<float>(NBitsCode(zp_packed + n * zp_row, kb, s.bits));
      if (zp_float) zp = zp_float[n * s.blocks + kb];
      const uint8_t* blob = b + (n * s.blocks + kb) * s.blob;
      const int64_t k0 = kb * s.block, k1 = std::min(s.K, k0 + s.block);
      for (int64_t k = k0; k < k1; ++k) {
        const int64_t j = k - k0;
        const int code = (blob[j / per_byte] >> ((j % per_byte) * s.bits)) & mask;
        wt[k * s.N + n] = (static_cast<float>(code) - zp) * scale;
      }
    }
}

class MatMulNBitsKernel : public Kernel {
 public:
  explicit MatMulNBitsKernel(NBitsShape s) : s_(s) {}

  Status Init(const KernelInit& init) {
    const Tensor* b = ConstIn(init, 1);
    const Tensor* sc = ConstIn(init, 2);
    const Tensor* zp = ConstIn(init, 3);
    if (b && sc && (zp || !HasIn(init.node, 3))) {
      ASRC_RETURN_IF_ERROR(Dequantize(*b, *sc, zp, wt_));
      const_w_ = true;
    }
    return Status::Ok();
  }

  Status Run(KernelContext& ctx) override {
    const Tensor& a = *ctx.in(0);
    if (a.dtype() != DType::Float32)
      return Error(std::string("A must be float32 (the dtype this kernel has), got ") + ir::DTypeName(a.dtype()));
    if (a.rank() < 1 || a.dim(-1) != s_.K)
      return Error("A " + ir::ShapeStr(a.shape()) + " must end in K = " + std::to_string(s_.K));
    std::vector<float> run_w;
    if (!const_w_) ASRC_RETURN_IF_ERROR(Dequantize(*ctx.in(1), *ctx.in(2), ctx.in(3), run_w));
    const std::vector<float>& wt = const_w_ ? wt_ : run_w;
    const Tensor* bias = ctx.in(5);
    if (bias && (bias->dtype() != DType::Float32 || bias->numel() != s_.N))
      return Error("bias must be float32 with N = " + std::to_string(s_.N) + " entries");
    ir::Shape out = a.shape();
    out.back() = s_.N;
    Tensor& y = ctx.Alloc(0, DType::Float32, out);
    const int64_t M = s_.K == 0 ? 0 : a.numel() / s_.K;
    if (bias)
      SgemmBias(false, false, M, s_.N, s_.K, a.data<float>(), s_.K, wt.data(), s_.N, bias->data<float>(),
                y.data<float>(), s_.N, ctx.threads);
    else
      Sgemm(false, false, M, s_.N, s_.K, 1.f, a.data<float>(), s_.K, wt.data(), s_.N, 0.f, y.data<float>(), s_.N,
            ctx.threads);
    return Status::Ok();
  }

 private:
  Status Dequantize(const Tensor& b, const Tensor& sc, const Tensor* zp, std::vector<float>& wt) const {
    if (b.dtype() != DType::Uint8 || b.shape() != ir::Shape{s_.N, s_.blocks, s_.blob})
      return Error("B must be uint8 [N, k_blocks, blob] = " + ir::ShapeStr({s_.N, s_.blocks, s_.blob}) + ", got " +
                   ir::DTypeName(b.dtype()) + ir::ShapeStr(b.shape()));
    if (sc.dtype() != DType::Float32 || sc.numel() != s_.N * s_.blocks)
      return Error("scales must be float32 with N * k_blocks = " + std::to_string(s_.N * s_.blocks) + " entries, got " +
                   ir::DTypeName(sc.dtype()) + ir::ShapeStr(sc.shape()));
    const uint8_t* zp_packed = nullptr;
    const float* zp_float = nullptr;
    if (zp && zp->dtype() == DType::Uint8 && zp->numel() == s_.N * ((s_.blocks * s_.bits + 7) / 8))
      zp_packed = zp->data<uint8_t>();
    else if (zp && zp->dtype() == DType::Float32 && zp->numel() == s_.N * s_.blocks)
      zp_float = zp->data<float>();
    else if (zp)
      return Error("zero_points must be uint8 [N * ceil(k_blocks * bits / 8)] or float32 [N * k_blocks], got " +
                   std::string(ir::DTypeName(zp->dtype())) + ir::ShapeStr(zp->shape()));
    wt.assign(static_cast<size_t>(s_.K * s_.N), 0.f);
    DequantizeNBitsTransposed(s_, b.data<uint8_t>(), sc.data<float>(), zp_packed, zp_float, wt.data());
    return Status::Ok();
  }

  NBitsShape s_;
  std::vector<float> wt_;  // W^T [K, N] when constant
  bool const_w_ = false;
};

}  // namespace

void RegisterNBitsKernels(KernelRegistry& r) {
  r.Register("com.microsoft", "MatMulNBits", DType::Undefined, [](const KernelInit& init) -> ku::KernelPtr {
    const ir::Node& n = *init.node;
    NBitsShape s;
    s.K = n.attr_int("K", -1);
    s.N = n.attr_int("N", -1);
    s.bits = n.attr_int("bits", 4);
    s.block = n.attr_int("block_size", 0);
    if (s.K < 0 || s.N < 0) return Error("MatMulNBits needs the K and N attributes");
    if (s.bits != 2 && s.bits != 4 && s.bits != 8)
      return Error("MatMulNBits: bits=" + std::to_string(s.bits) + " is not supported (2, 4, 8)");
    if (s.block < 16 || (s.block & (s.block - 1)) != 0)
      return Error("MatMulNBits: block_size " + std::to_string(s.block) + " must be a power of two >= 16");
    if (n.num_inputs() < 3 || !n.inputs[0] || !n.inputs[1] || !n.inputs[2])
      return Error("MatMulNBits needs inputs A, B and scales");
    if (HasIn(&n, 4)) return Error("MatMulNBits: g_idx (act-order) is not supported");
    s.blocks = (s.K + s.block - 1) / s.block;
    s.blob = s.block * s.bits / 8;
    auto k = std::make_unique<MatMulNBitsKernel>(s);
    ASRC_RETURN_IF_ERROR(k->Init(init));
    return std::unique_ptr<Kernel>(std::move(k));
  });
}

}  // namespace asrc::runtime
