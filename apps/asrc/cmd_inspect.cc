// asrc inspect PATH [--json]: what is inside a model (a .onnx file or a bundle folder).
// Per graph: op histogram (nested subgraphs included), parameters and bytes, and the same per
// layer, where a layer is the name scope of an initializer ("encoder.layers.3" for
// "encoder.layers.3.ffn.w1.weight"; exporter-renamed weights such as "onnx::MatMul_12" take the
// scope of the node that reads them). Totals: params_total and bytes_unique (shared buffers once).
#include <iomanip>
#include <iostream>
#include <map>
#include <sstream>

#include <nlohmann/json.hpp>

#include "cli_checks.h"
#include "commands.h"
#include "onnx/onnx_io.h"

namespace asrc::app {
namespace {

std::vector<std::string> split_scope(const std::string& s) {
  std::vector<std::string> parts;
  std::string cur;
  for (char c : s) {
    if (c == '.' || c == '/') {
      if (!cur.empty()) parts.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) parts.push_back(cur);
  return parts;
}

bool all_digits(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

// Scope of a dotted/slashed name minus its leaf, cut after the first numeric component.
std::string layer_of_parts(const std::vector<std::string>& parts) {
  if (parts.size() <= 1) return parts.empty() ? std::string() : parts[0];
  size_t end = parts.size() - 1;
  for (size_t k = 1; k < parts.size() - 1; ++k)
    if (all_digits(parts[k])) {
      end = k + 1;
      break;
    }
  std::string out;
  for (size_t i = 0; i < end; ++i) out += (i ? "." : "") + parts[i];
  return out;
}

std::string layer_of(const ir::Value* v) {
  const std::string& n = v->name;
  bool anonymous = n.find("::") != std::string::npos ||
                   (n.find('.') == std::string::npos && n.find('/') == std::string::npos);
  if (!anonymous) return layer_of_parts(split_scope(n));
  for (const auto& u : v->uses) {
    if (!u.node->name.empty() && u.node->name.find('/') != std::string::npos) {
      auto parts = split_scope(u.node->name);  // "/encoder/layers.0/ffn/MatMul"
      std::string l = layer_of_parts(parts);
      if (!l.empty()) return l;
    }
  }
  return n.find("::") != std::string::npos ? "<other>" : n;
}

void count_ops(const ir::Graph& g, std::map<std::string, int64_t>* ops) {
  for (const ir::Node* n : g.nodes()) {
    (*ops)[n->domain.empty() ? n->op_type : n->domain + "." + n->op_type]++;
    for (const auto& a : n->attributes) {
      if (a.g) count_ops(*a.g, ops);
      for (const auto& sg : a.graphs)
        if (sg) count_ops(*sg, ops);
    }
  }
}

nlohmann::json value_json(const ir::Value* v) {
  nlohmann::json j;
  j["name"] = v->name;
  if (v->type.has_type && v->type.opaque.empty()) {
    j["dtype"] = ir::DTypeName(v->type.dtype);
    if (v->type.has_shape) {
      nlohmann::json dims = nlohmann::json::array();
      for (const auto& d : v->type.dims) {
        if (d.known()) dims.push_back(d.value);
        else dims.push_back(d.param.empty() ? "?" : d.param);
      }
      j["shape"] = dims;
    }
  }
  return j;
}

nlohmann::json inspect_json(const ir::Model& m, const std::string& path) {
  nlohmann::json out;
  out["path"] = path;
  out["bundle"] = m.is_bundle;
  nlohmann::json graphs = nlohmann::json::array();
  int64_t bytes_sum = 0;
  for (const auto& gf : m.graphs) {
    const ir::Graph& g = *gf.graph;
    nlohmann::json j;
    j["role"] = gf.role;
    j["file"] = gf.file;
    j["name"] = g.name;
    nlohmann::json opsets = nlohmann::json::object();
    for (const auto& o : gf.opsets) opsets[o.domain.empty() ? "ai.onnx" : o.domain] = o.version;
    j["opsets"] = opsets;
    std::map<std::string, int64_t> ops;
    count_ops(g, &ops);
    int64_t nodes = 0;
    for (const auto& [k, c] : ops) nodes += c;
    j["nodes"] = nodes;
    j["ops"] = ops;
    j["initializers"] = g.initializers.size();
    j["params"] = g.NumParams();
    int64_t bytes = ir::GraphBytes(g);
    bytes_sum += bytes;
    j["bytes"] = bytes;
    nlohmann::json ins = nlohmann::json::array(), outs = nlohmann::json::array();
    for (const ir::Value* v : g.inputs)
      if (!v->initializer) ins.push_back(value_json(v));
    for (const ir::Value* v : g.outputs) outs.push_back(value_json(v));
    j["inputs"] = ins;
    j["outputs"] = outs;
    // Layers in order of first appearance.
    std::vector<std::string> order;
    std::map<std::string, std::pair<int64_t, int64_t>> layers;
    for (const ir::Value* v : g.initializers) {
      std::string l = layer_of(v);
      if (!layers.count(l)) order.push_back(l);
      layers[l].first += v->initializer->numel();
      layers[l].second += static_cast<int64_t>(v->initializer->nbytes());
    }
    nlohmann::json lj = nlohmann::json::array();
    for (const auto& l : order)
      lj.push_back({{"name", l}, {"params", layers[l].first}, {"bytes", layers[l].second}});
    j["layers"] = lj;
    graphs.push_back(j);
  }
  out["graphs"] = graphs;
  out["params_total"] = m.ParamsTotal();
  out["bytes_unique"] = m.BytesUnique();
  out["bytes_sum_over_graphs"] = bytes_sum;
  if (!m.tokens.empty()) out["tokens"] = m.tokens.size();
  return out;
}

std::string human_bytes(int64_t b) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(2);
  if (b >= (int64_t{1} << 20)) s << b / 1048576.0 << " MiB";
  else if (b >= 1024) s << b / 1024.0 << " KiB";
  else s << b << " B";
  return s.str();
}

void print_text(const nlohmann::json& j) {
  std::cout << j["path"].get<std::string>() << (j["bundle"].get<bool>() ? " (bundle)" : "") << "\n";
  for (const auto& g : j["graphs"]) {
    std::cout << "\ngraph '" << g["role"].get<std::string>() << "' (" << g["file"].get<std::string>()
              << "): " << g["nodes"] << " nodes, " << g["initializers"] << " initializers, "
              << g["params"] << " params, " << human_bytes(g["bytes"].get<int64_t>()) << "\n";
    std::cout << "  opsets:";
    for (auto it = g["opsets"].begin(); it != g["opsets"].end(); ++it) std::cout << " " << it.key() << "=" << it.value();
    std::cout << "\n  inputs:";
    for (const auto& v : g["inputs"]) std::cout << " " << v["name"].get<std::string>() << (v.contains("shape") ? v["shape"].dump() : "");
    std::cout << "\n  outputs:";
    for (const auto& v : g["outputs"]) std::cout << " " << v["name"].get<std::string>() << (v.contains("shape") ? v["shape"].dump() : "");
    std::cout << "\n  ops:\n";
    std::vector<std::pair<int64_t, std::string>> ops;
    for (auto it = g["ops"].begin(); it != g["ops"].end(); ++it) ops.emplace_back(-it.value().get<int64_t>(), it.key());
    std::sort(ops.begin(), ops.end());
    for (const auto& [c, name] : ops) std::cout << "    " << std::setw(24) << std::left << name << " " << -c << "\n";
    std::cout << "  layers:\n";
    for (const auto& l : g["layers"])
      std::cout << "    " << std::setw(40) << std::left << l["name"].get<std::string>() << " " << std::setw(12)
                << std::right << l["params"] << " params  " << human_bytes(l["bytes"].get<int64_t>()) << "\n";
  }
  std::cout << "\nparams_total " << j["params_total"] << ", bytes_unique " << j["bytes_unique"] << " ("
            << human_bytes(j["bytes_unique"].get<int64_t>()) << ")\n";
}

}  // namespace

void AddInspectCommand(CLI::App& root, CommandSet& set) {
  auto* sub = root.add_subcommand("inspect", "Show graphs, op histogram, parameters and bytes of a model");
  auto path = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  sub->add_option("PATH", *path, ".onnx file or bundle folder")->required();
  sub->add_flag("--json", *json, "Print JSON (params_total, bytes_unique, per graph and per layer)");
  set.add(sub, [path, json]() {
    Status input = CheckInputPath(*path, "model", true);
    if (!input.ok()) return Fail("inspect: " + input.message());
    auto m = onnx_io::LoadModel(*path);
    if (!m.ok()) return Fail(m.status().message());
    nlohmann::json j = inspect_json(m.value(), *path);
    if (*json) std::cout << j.dump(2) << "\n";
    else print_text(j);
    return 0;
  });
}

}  // namespace asrc::app
