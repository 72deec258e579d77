// Shared by the tests/train tests: running a PyTorch reference script, comparing tensors.
#pragma once

#include <sys/wait.h>

#include <cmath>
#include <cstdlib>
#include <string>

#include <doctest/doctest.h>

#include "ir/tensor.h"
#include "reference.h"

namespace asrc::testing {

// Runs `command` (a /usr/bin/python3 reference script, which exits 3 when PyTorch is missing).
// Returns false when the reference is unavailable: a failure under CI=true, else a message.
inline bool RunReference(const std::string& command, const char* what) {
  const int rc = std::system(command.c_str());
  if (rc != 0 && WIFEXITED(rc) && WEXITSTATUS(rc) == 3) return test::HaveReference(false, what);
  REQUIRE(rc == 0);
  return true;
}

// max |a - b| / max |b| over float32 tensors (b the reference, which must not be all zeros).
inline double RelDiff(const ir::Tensor& a, const ir::Tensor& b) {
  REQUIRE(a.shape() == b.shape());
  REQUIRE(b.numel() > 0);
  double diff = 0, scale = 0;
  for (int64_t i = 0; i < a.numel(); ++i) {
    diff = std::max(diff, std::abs(double(a.data<float>()[i]) - b.data<float>()[i]));
    scale = std::max(scale, std::abs(double(b.data<float>()[i])));
  }
  REQUIRE(scale > 0);
  return diff / scale;
}

}  // namespace asrc::testing
