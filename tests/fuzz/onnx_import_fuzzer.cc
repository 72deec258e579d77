// libFuzzer target for the ONNX importer: any bytes must give a model that verifies, or an error
// Status — never a crash, a sanitizer report, or an allocation sized by the input's claims.
#include <cstddef>
#include <cstdint>
#include <string>

#include "onnx/onnx_io.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string bytes(reinterpret_cast<const char*>(data), size);
  // No base folder: external data references are rejected rather than read from disk.
  auto gf = asrc::onnx_io::ParseGraphFile(bytes, "fuzz.onnx", "");
  if (!gf.ok()) return 0;
  const asrc::ir::Graph& g = *gf->graph;
  if (!g.Verify().ok()) __builtin_trap();  // the importer promises verified graphs
  auto order = g.TopoOrder();
  if (!order.ok()) __builtin_trap();
  asrc::ir::Model m;
  m.graphs.push_back(std::move(gf).value());
  (void)m.ParamsTotal();
  (void)m.BytesUnique();
  return 0;
}
