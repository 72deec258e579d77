// ONNX import/export for asrc's IR, and the bundle folder format (docs/bundle.md).
// Import is lossless for every field of ModelProto/GraphProto/NodeProto we meet (fields we do
// not model are carried opaquely); export writes files that pass the ONNX checker.
#pragma once

#include <string>

#include "core/status.h"
#include "ir/model.h"

namespace asrc::onnx_io {

struct SaveOptions {
  // Tensors with at least this many bytes go to external data (0 = never, all inline).
  size_t external_threshold = 0;
  // Force external data even when the file would stay under protobuf's 2 GiB limit.
  bool force_external = false;
  // Run onnx::checker::check_model on every written .onnx file (a failure is an error and
  // nothing is written). Off only for inputs that already fail the checker.
  bool check = true;
};

// Loads a lone .onnx file (bundle of one graph, role "model"), a bundle folder with model.json,
// or a sherpa-onnx transducer folder (encoder*/decoder*/joiner*.onnx, tokens.txt; no model.json).
// Errors name the file and the problem.
Result<ir::Model> LoadModel(const std::string& path);
// Loads one ONNX file into a GraphFile (external data resolved relative to its folder).
Result<ir::GraphFile> LoadGraphFile(const std::string& path);
// Parses serialized ModelProto bytes (used by the fuzzer); `name` is used in error messages.
Result<ir::GraphFile> ParseGraphFile(const std::string& bytes, const std::string& name,
                                     const std::string& base_dir);

// Writes a model: a bundle to a folder (model.json, one .onnx per graph, tokens.txt, external
// data with shared buffers written once), or a lone graph to a .onnx file. Writes into a
// temporary sibling and renames when complete. Refusing to overwrite the input the model was
// loaded from is the caller's job (the apps check paths).
Status SaveModel(const ir::Model& model, const std::string& path, const SaveOptions& options = {});

// TensorProto files (ONNX conformance test data format), for `asrc run`.
Result<ir::Tensor> LoadTensorFile(const std::string& path, std::string* name = nullptr);
// The same for any value kind the runtime runs: a TensorProto, or a SequenceProto of tensors or
// an OptionalProto (of a tensor or such a sequence) as ir::Tensor::Sequence / ::Optional values.
// `kind` says which message the file holds (the format does not); errors name the file.
Result<ir::Tensor> LoadValueFile(const std::string& path, ir::ValueKind kind, std::string* name = nullptr);
// Sequence and optional values are written as SequenceProto / OptionalProto (LoadValueFile reads them).
Status SaveTensorFile(const ir::Tensor& t, const std::string& name, const std::string& path);

}  // namespace asrc::onnx_io
