// The explicit list of kernel families (no static self-registration that a linker could drop).
#include "runtime/kernel.h"

namespace asrc::runtime {

void RegisterElementwiseKernels(KernelRegistry& r);
void RegisterShapeKernels(KernelRegistry& r);
void RegisterStridedKernels(KernelRegistry& r);
void RegisterReduceKernels(KernelRegistry& r);
void RegisterNNKernels(KernelRegistry& r);
void RegisterRnnKernels(KernelRegistry& r);
void RegisterControlKernels(KernelRegistry& r);
void RegisterQuantKernels(KernelRegistry& r);
void RegisterConvIntegerKernels(KernelRegistry& r);
void RegisterLossKernels(KernelRegistry& r);
void RegisterGradKernels(KernelRegistry& r);
void RegisterLstmGradKernels(KernelRegistry& r);
void RegisterActivationKernels(KernelRegistry& r);
void RegisterPoolKernels(KernelRegistry& r);
void RegisterNormKernels(KernelRegistry& r);
void RegisterScatterKernels(KernelRegistry& r);
void RegisterArrangeKernels(KernelRegistry& r);
void RegisterSignalKernels(KernelRegistry& r);
void RegisterResizeKernels(KernelRegistry& r);
void RegisterConvTransposeKernels(KernelRegistry& r);
void RegisterEinsumKernels(KernelRegistry& r);
void RegisterVisionKernels(KernelRegistry& r);
void RegisterTextKernels(KernelRegistry& r);
void RegisterOptimizerKernels(KernelRegistry& r);
void RegisterQLinearConvKernels(KernelRegistry& r);
void RegisterRandomKernels(KernelRegistry& r);
void RegisterClassLossKernels(KernelRegistry& r);
void RegisterSequenceKernels(KernelRegistry& r);
void RegisterNBitsKernels(KernelRegistry& r);
void RegisterMsQuantKernels(KernelRegistry& r);
void RegisterQLstmKernels(KernelRegistry& r);

void RegisterAllKernels(KernelRegistry& r) {
  RegisterElementwiseKernels(r);
  RegisterShapeKernels(r);
  RegisterStridedKernels(r);
  RegisterReduceKernels(r);
  RegisterNNKernels(r);
  RegisterRnnKernels(r);
  RegisterControlKernels(r);
  RegisterQuantKernels(r);
  RegisterConvIntegerKernels(r);
  RegisterLossKernels(r);
  RegisterGradKernels(r);
  RegisterLstmGradKernels(r);
  RegisterActivationKernels(r);
  RegisterPoolKernels(r);
  RegisterNormKernels(r);
  RegisterScatterKernels(r);
  RegisterArrangeKernels(r);
  RegisterSignalKernels(r);
  RegisterResizeKernels(r);
  RegisterConvTransposeKernels(r);
  RegisterEinsumKernels(r);
  RegisterVisionKernels(r);
  RegisterTextKernels(r);
  RegisterOptimizerKernels(r);
  RegisterQLinearConvKernels(r);
  RegisterRandomKernels(r);
  RegisterClassLossKernels(r);
  RegisterSequenceKernels(r);
  RegisterNBitsKernels(r);
  RegisterMsQuantKernels(r);
  RegisterQLstmKernels(r);
}

}  // namespace asrc::runtime
