// The demo teacher with a stateless decoder, for the sherpa-onnx export tests: its LSTM decoder
// run from a zero state (batch 1) over the last `context` labels, decoder_out taken at the last
// position (experiments/export/make_stateless_teacher.py does the same on the ONNX files).
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <string>

#include "ir/model.h"
#include "onnx/onnx_io.h"

namespace asrc::testing {

inline ir::Model StatelessTeacher(int context = 1) {
  auto m = onnx_io::LoadModel(ASRC_SOURCE_DIR "/experiments/teacher/bundle");
  REQUIRE_MESSAGE(m.ok(), m.status().message());
  ir::Graph& d = *m->graph("decoder");
  for (const char* s : {"h", "c"}) {
    ir::Value* in = d.FindValue(s);
    REQUIRE(in);
    ir::Value* z = d.AddInitializer(std::string(s) + "_zero", ir::Tensor(ir::DType::Float32, {1, 1, 256}));
    d.ReplaceAllUses(in, z);
    d.inputs.erase(std::find(d.inputs.begin(), d.inputs.end(), in));
    d.RemoveValue(in);
  }
  d.outputs.resize(1);  // decoder_out
  ir::Value* y = d.inputs[0];
  REQUIRE(y->type.dims.size() == 2);
  y->type.dims[1] = ir::Dim{context, ""};
  // decoder_out = LSTM output at position -1 of the context (the export took position 0 of 1).
  ir::Value* pos = d.FindValue("/Constant_output_0");
  REQUIRE((pos && pos->producer && pos->producer->op_type == "Constant"));
  pos->producer->set_attr_tensor("value", ir::Tensor::ScalarInt64(-1));
  m->config["decoding"]["decoder_type"] = "stateless";
  m->config["decoding"]["context_size"] = context;
  m->config["decoding"].erase("decoder_state");
  REQUIRE(d.Verify().ok());
  return std::move(m).value();
}

}  // namespace asrc::testing
