// asrc run MODEL --input NAME=FILE.pb ... --output-dir DIR [--threads N] [--graph ROLE]
// Runs one graph of a model (a .onnx file, or a bundle folder with --graph) on inputs given as
// serialized ONNX TensorProto files, and writes each output to DIR/<output name>.pb with the
// tensor's name set (characters outside [A-Za-z0-9._-] in the file name become '_'). An output
// path that is one of the inputs (MODEL or an --input file) is refused before anything runs.
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <iostream>
#include <map>

#include "cli_checks.h"
#include "commands.h"
#include "core/interrupts.h"
#include "graph_cli.h"
#include "onnx/onnx_io.h"
#include "output_safety.h"
#include "runtime/session.h"

namespace asrc::app {

namespace {

// Picks the graph to run from a loaded model.
Result<const ir::GraphFile*> PickGraph(const ir::Model& model, const std::string& path,
                                       const std::string& role) {
  if (!role.empty()) {
    const ir::GraphFile* gf = model.find(role);
    if (!gf) return Error(path + ": no graph with role '" + role + "'");
    return gf;
  }
  if (model.graphs.size() != 1) {
    std::string roles;
    for (const auto& g : model.graphs) roles += (roles.empty() ? "" : ", ") + g.role;
    return Error(path + " holds several graphs (" + roles + "); choose one with --graph");
  }
  return &model.graphs[0];
}

// Parses NAME=FILE.pb options into named values: a TensorProto file, or a SequenceProto /
// OptionalProto file where the graph declares that input a sequence / an optional.
Result<std::map<std::string, ir::Tensor>> LoadNamedInputs(const std::vector<std::string>& specs,
                                                          const ir::Graph& graph) {
  std::map<std::string, ir::Tensor> out;
  for (const auto& s : specs) {
    auto eq = s.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == s.size())
      return Error("--input '" + s + "': expected NAME=FILE.pb");
    std::string name = s.substr(0, eq), file = s.substr(eq + 1);
    if (out.count(name)) return Error("--input '" + name + "' given twice");
    ASRC_RETURN_IF_ERROR(CheckInputPath(file, "--input " + name, false));
    const ir::Value* v = graph.FindValue(name);
    ASRC_ASSIGN_OR_RETURN(ir::Tensor t, onnx_io::LoadValueFile(file, v ? v->type.kind : ir::ValueKind::Tensor));
    out.emplace(name, std::move(t));
  }
  return out;
}

}  // namespace

Result<std::unique_ptr<LoadedGraph>> LoadGraphForRun(const std::string& model_path,
                                                     const std::string& role,
                                                     const std::vector<std::string>& input_specs,
                                                     int threads) {
  auto loaded = std::make_unique<LoadedGraph>();
  ASRC_RETURN_IF_ERROR(CheckInputPath(model_path, "model", true));
  ASRC_ASSIGN_OR_RETURN(loaded->model, onnx_io::LoadModel(model_path));
  ASRC_ASSIGN_OR_RETURN(loaded->file, PickGraph(loaded->model, model_path, role));
  // The ONNX checker requires a type on every graph input; planning cannot check the nodes that
  // read an untyped one.
  for (const ir::Value* v : loaded->file->graph->inputs)
    if (v && !v->type.has_type && v->type.opaque.empty())
      return Error(model_path + ": graph input '" + v->name + "' has no type (the ONNX checker rejects the model)");
  ASRC_ASSIGN_OR_RETURN(loaded->inputs, LoadNamedInputs(input_specs, *loaded->file->graph));
  runtime::SessionOptions opt;
  opt.threads = threads;
  auto session = runtime::Session::Create(*loaded->file->graph, loaded->file->opset(""), opt);
  if (!session.ok()) return session.status().With(model_path);
  loaded->session = std::move(session).value();
  return loaded;
}

namespace {

std::string SafeFileName(const std::string& name) {
  std::string f = name;
  for (char& c : f)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-')) c = '_';
  if (f.empty() || f == "." || f == "..") f = "_" + f;
  return f;
}

// Saves every output into a private folder inside `dir` and then moves them into place, so that
// an error (a full disk) leaves neither a partial output nor a temporary, and removes the folders
// it created for `dir`.
Status WriteOutputs(const std::vector<ir::Tensor>& outs, const std::vector<std::string>& names,
                    const std::vector<std::string>& paths, const std::string& dir) {
  namespace fs = std::filesystem;
  HoldInterrupts hold;  // Ctrl-C while writing: what was written is removed, then asrc stops
  std::error_code ec;
  fs::path created;  // the outermost folder this call creates
  for (fs::path p = fs::absolute(dir, ec); !p.empty() && !fs::exists(p, ec); p = p.parent_path()) {
    created = p;
    if (p == p.parent_path()) break;
  }
  fs::create_directories(dir, ec);
  if (ec) return Error(dir + ": cannot create folder: " + ec.message());
  const fs::path stage = fs::path(dir) / (".asrc-run.partial." + std::to_string(::getpid()));
  fs::create_directory(stage, ec);
  Status st = ec ? Error(dir + ": cannot write (" + ec.message() + ")") : Status::Ok();
  std::vector<fs::path> staged;
  for (size_t i = 0; i < outs.size() && st.ok(); ++i) {
    staged.push_back(stage / fs::path(paths[i]).filename());
    Status ws = onnx_io::SaveTensorFile(outs[i], names[i], staged.back().string());
    if (!ws.ok()) st = Error(paths[i] + ": cannot write output '" + names[i] + "' (" + ws.message() + ")");
  }
  if (st.ok() && hold.caught()) st = Error("interrupted");
  for (size_t i = 0; i < staged.size() && st.ok(); ++i) {
    fs::rename(staged[i], paths[i], ec);
    if (ec) st = Error(paths[i] + ": cannot move into place (" + ec.message() + ")");
  }
  fs::remove_all(stage, ec);
  if (!st.ok() && !created.empty()) fs::remove_all(created, ec);
  return st;
}

struct RunArgs {
  std::string model, output_dir, graph;
  std::vector<std::string> inputs;
  int threads = 1;
};

int RunRun(const RunArgs& a) {
  if (a.output_dir.empty()) return Fail("run: --output-dir is empty; give a folder");
  auto loaded = LoadGraphForRun(a.model, a.graph, a.inputs, a.threads);
  if (!loaded.ok()) return Fail(loaded.status().message());
  auto& session = (*loaded)->session;
  auto* named = &(*loaded)->inputs;
  std::vector<ir::Tensor> feeds;
  for (const auto& name : session->input_names()) {
    auto it = named->find(name);
    if (it == named->end()) return Fail(a.model + ": missing --input for graph input '" + name + "'");
    feeds.push_back(it->second);
    named->erase(it);
  }
  if (!named->empty())
    return Fail(a.model + ": graph has no input named '" + named->begin()->first + "'");
  const auto& names = session->output_names();
  std::vector<std::string> out_paths, in_paths{a.model};
  for (const auto& spec : a.inputs) in_paths.push_back(spec.substr(spec.find('=') + 1));
  for (const auto& n : names) {
    out_paths.push_back((std::filesystem::path(a.output_dir) / (SafeFileName(n) + ".pb")).string());
    Status safe = RefuseOverInputs(out_paths.back(), in_paths, "run: output '" + n + "'");
    if (!safe.ok()) return Fail(safe.message());
  }
  std::vector<ir::Tensor> outs;
  auto t0 = std::chrono::steady_clock::now();
  Status st = session->Run(feeds, &outs);
  double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  if (!st.ok()) return Fail(a.model + ": " + st.message());
  Status ws = WriteOutputs(outs, names, out_paths, a.output_dir);
  if (!ws.ok()) return Fail(ws.message());
  for (size_t i = 0; i < outs.size(); ++i) {
    const std::string& path = out_paths[i];
    const ir::Tensor& o = outs[i];
    if (o.is_tensor())
      std::cout << names[i] << " " << ir::DTypeName(o.dtype()) << " " << ir::ShapeStr(o.shape());
    else  // "seq sequence of 3 float32", "opt optional of 1 float32"
      std::cout << names[i] << " " << ir::ValueKindName(o.kind()) << " of " << o.elements().size() << " "
                << ir::DTypeName(o.dtype());
    std::cout << " -> " << path << "\n";
  }
  std::cout << "ran in " << ms << " ms (" << a.threads << " thread" << (a.threads == 1 ? "" : "s") << ")\n";
  return 0;
}

}  // namespace

void AddRunCommand(CLI::App& root, CommandSet& set) {
  auto args = std::make_shared<RunArgs>();
  CLI::App* sub = root.add_subcommand("run", "Run a graph on TensorProto inputs and write its outputs");
  sub->add_option("model", args->model, "model .onnx file (or bundle folder with --graph)")->required();
  sub->add_option("--input", args->inputs, "graph input as NAME=FILE.pb (repeatable)");
  sub->add_option("--output-dir", args->output_dir, "folder for <output name>.pb files")->required();
  sub->add_option("--threads", args->threads, "intra-op threads")->check(CLI::Range(1, 64));
  sub->add_option("--graph", args->graph, "graph role when MODEL is a bundle");
  set.add(sub, [args] { return RunRun(*args); });
}

}  // namespace asrc::app
