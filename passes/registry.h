// The built-in passes, as one explicit list (onnx/optimizer's pass_registry, LLVM's PassRegistry.def).
#pragma once

#include "pass/pass.h"

namespace asrc::passes {

// Every built-in pass; built once.
const pass::PassRegistry& BuiltinPasses();

}  // namespace asrc::passes
