// References from outside asrc — ONNX Runtime (node + onnxruntime-node), PyTorch/torchaudio
// (/usr/bin/python3), the ONNX conformance data (Debian's libonnx-testdata) and the committed
// fixtures — must not vanish silently. A test asks for each one with HaveReference():
//   - present: true, and the test compares;
//   - missing, CI unset: a message saying what is missing and that the check was skipped; false;
//   - missing, CI=true (.ci/run sets it): a test failure naming what is missing; false.
// The caller returns (or skips that case) on false. A parity test also counts its comparisons
// and ends with RequireChecks(): zero comparisons count as a missing reference.
#pragma once

#include <doctest/doctest.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>

namespace asrc::test {

// CI=true (or any value but "", "0", "false"), as CI services and .ci/run set it.
inline bool InCi() {
  const char* v = std::getenv("CI");
  return v && *v && std::strcmp(v, "0") != 0 && std::strcmp(v, "false") != 0;
}

inline bool HaveReference(bool available, const std::string& what) {
  if (available) return true;
  if (InCi()) {
    FAIL_CHECK("reference missing (CI=true): " << what);
  } else {
    MESSAGE("reference missing, check skipped: " << what << " (a failure under CI=true)");
  }
  return false;
}

// The end of a parity test: `checks` comparisons were made against `what`.
inline void RequireChecks(int checks, const std::string& what) {
  HaveReference(checks > 0, "no comparison ran against " + what);
}

inline bool Exists(const std::string& path) { return std::filesystem::exists(path); }

// A path under the source tree.
inline std::string SourcePath(const std::string& rel) { return std::string(ASRC_SOURCE_DIR) + "/" + rel; }

// node can load onnxruntime-node from third_party/ort (checked once per process).
inline bool OrtAvailable() {
  static const bool ok =
      std::system("node -e \"require('" ASRC_SOURCE_DIR
                  "/third_party/ort/node_modules/onnxruntime-node')\" >/dev/null 2>&1") == 0;
  return ok;
}
inline constexpr const char* kOrt = "ONNX Runtime (node + third_party/ort/node_modules/onnxruntime-node)";

// /usr/bin/python3 can import torch and torchaudio (checked once per process).
inline bool TorchAvailable() {
  static const bool ok = std::system("/usr/bin/python3 -c 'import torch, torchaudio' >/dev/null 2>&1") == 0;
  return ok;
}
inline constexpr const char* kTorch = "PyTorch + torchaudio (/usr/bin/python3 -c 'import torch, torchaudio')";

// The ONNX conformance models and their test_data_set_* folders: Debian's libonnx-testdata, or
// $ASRC_ONNX_TESTDATA (the same layout: node/, real/, ...).
inline std::string OnnxTestdataRoot() {
  const char* env = std::getenv("ASRC_ONNX_TESTDATA");
  return env && *env ? env : "/usr/share/libonnx-testdata/data";
}
inline std::string OnnxNodeTests() { return OnnxTestdataRoot() + "/node"; }
inline bool OnnxTestdataAvailable() { return Exists(OnnxNodeTests()); }
inline std::string OnnxTestdataWhat() {
  return "ONNX conformance data (Debian libonnx-testdata, or $ASRC_ONNX_TESTDATA): " + OnnxTestdataRoot();
}

}  // namespace asrc::test
