// Shared by `asrc run` and `asrc bench`: load MODEL, pick the graph to run (a lone .onnx file, or
// a bundle folder with --graph ROLE), read the --input NAME=FILE.pb tensors and plan a session.
// Errors are the one-line messages both commands print.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/status.h"
#include "ir/model.h"
#include "runtime/session.h"

namespace asrc::app {

struct LoadedGraph {
  ir::Model model;
  const ir::GraphFile* file = nullptr;  // the picked graph, inside `model`
  std::unique_ptr<runtime::Session> session;
  std::map<std::string, ir::Tensor> inputs;  // the --input tensors, by name
};

Result<std::unique_ptr<LoadedGraph>> LoadGraphForRun(const std::string& model_path,
                                                     const std::string& role,
                                                     const std::vector<std::string>& input_specs,
                                                     int threads);

}  // namespace asrc::app
