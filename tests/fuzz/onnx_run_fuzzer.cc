// libFuzzer target that loads AND runs a mutated graph: any bytes that import must plan into a
// session or give an error Status, and a planned session must run on small generated inputs or
// give an error Status — never a crash, a sanitizer report, an abort or an uncaught exception.
// Memory is capped by the memory budget (ir/tensor.h: 256 MiB here), so an input whose shapes
// claim terabytes is an error, not an out-of-memory kill.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "ir/tensor.h"
#include "onnx/onnx_io.h"
#include "runtime/session.h"

namespace {

// Inputs from the graph's declared types: unknown dims are 2, known dims up to 16 (larger ones
// are fed as declared only while the input stays under 4096 elements; else no run).
bool MakeInputs(const asrc::ir::Graph& g, const std::vector<std::string>& names, uint32_t seed,
                std::vector<asrc::ir::Tensor>* feeds) {
  using asrc::ir::DType;
  for (const std::string& name : names) {
    const asrc::ir::Value* v = g.FindValue(name);
    if (!v) return false;
    DType dt = v->type.has_type && v->type.dtype != DType::Undefined ? v->type.dtype : DType::Float32;
    asrc::ir::Shape shape;
    int64_t numel = 1;
    for (const auto& d : v->type.dims) {
      int64_t n = d.known() ? d.value : 2;
      if (n < 0 || n > 4096) return false;
      shape.push_back(n);
      numel *= n;
      if (numel > 4096) return false;
    }
    asrc::ir::Tensor t(dt, shape);
    if (dt == DType::String) {
      for (auto& s : t.strings) s = "a";
    } else {
      uint8_t* p = static_cast<uint8_t*>(t.raw());
      // Small values whatever the dtype: the low byte of each element varies, the rest is 0
      // (bools 0 or 1, as the importer and tensor files give them).
      const size_t es = asrc::ir::DTypeSize(dt);
      for (int64_t i = 0; i < t.numel(); ++i) {
        seed = seed * 1664525u + 1013904223u;
        p[i * es] = static_cast<uint8_t>((seed >> 24) & (dt == DType::Bool ? 0x1 : 0x3));
      }
    }
    feeds->push_back(std::move(t));
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  asrc::ir::SetMemoryBudget(size_t{256} << 20);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string bytes(reinterpret_cast<const char*>(data), size);
  auto gf = asrc::onnx_io::ParseGraphFile(bytes, "fuzz.onnx", "");
  if (!gf.ok()) return 0;
  const asrc::ir::Graph& g = *gf->graph;
  auto session = asrc::runtime::Session::Create(g, gf->opset(""));
  if (!session.ok()) return 0;
  std::vector<asrc::ir::Tensor> feeds, outputs;
  if (!MakeInputs(g, (*session)->input_names(), static_cast<uint32_t>(size), &feeds)) return 0;
  (void)(*session)->Run(feeds, &outputs);
  (void)(*session)->Run(feeds, &outputs);  // a second run reuses the session's buffers
  return 0;
}
