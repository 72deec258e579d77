// The explicit list of kernel families (no static self-registration that a linker could drop).
#include "runtime/kernel.h"

namespace asrc::runtime {

void RegisterElementwiseKernels(KernelRegistry& r);
void RegisterShapeKernels(KernelRegistry& r);
void RegisterReduceKernels(KernelRegistry& r);
void RegisterNNKernels(KernelRegistry& r);
void RegisterRnnKernels(KernelRegistry& r);
void RegisterControlKernels(KernelRegistry& r);
void RegisterQuantKernels(KernelRegistry& r);
void RegisterLossKernels(KernelRegistry& r);
void RegisterGradKernels(KernelRegistry& r);
void RegisterLstmGradKernels(KernelRegistry& r);

void RegisterAllKernels(KernelRegistry& r) {
  RegisterElementwiseKernels(r);
  RegisterShapeKernels(r);
  RegisterReduceKernels(r);
  RegisterNNKernels(r);
  RegisterRnnKernels(r);
  RegisterControlKernels(r);
  RegisterQuantKernels(r);
  RegisterLossKernels(r);
  RegisterGradKernels(r);
  RegisterLstmGradKernels(r);
}

}  // namespace asrc::runtime
