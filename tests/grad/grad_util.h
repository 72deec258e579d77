// Helpers for gradient tests: small forward graphs built in code, the gradient graph run through
// runtime::Session, and central finite differences of the same forward graph.
#pragma once

#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "grad/grad.h"
#include "ir/graph.h"
#include "runtime/session.h"
#include "runtime/test_util.h"

namespace asrc::testing {

// Seeded uniform float32 tensors; 1-D int64 tensors (axes, shapes, indices) unless shaped.
inline ir::Tensor Rand(ir::Shape shape, uint32_t seed, float lo = -1.f, float hi = 1.f) {
  return RandomTensor(std::move(shape), seed, lo, hi);
}
inline ir::Tensor Ints(std::vector<int64_t> v, ir::Shape shape = {}) {
  if (shape.empty()) shape = {static_cast<int64_t>(v.size())};
  return I64(std::move(v), std::move(shape));
}

// A forward graph under construction. Weights are initializers, or graph inputs when
// `weights_as_inputs` (the finite-difference copy feeds perturbed weights on every run).
struct Net {
  explicit Net(bool weights_as_inputs) : as_inputs(weights_as_inputs) {}
  bool as_inputs;
  ir::Graph g{"net"};
  std::vector<std::pair<std::string, ir::Tensor>> feeds;
  std::map<std::string, ir::Tensor> weights;
  int counter = 0;

  // A graph input with the given value; `typed` records its static shape as value_info.
  ir::Value* Input(const std::string& name, const ir::Tensor& t, bool typed = false) {
    ir::Value* v = g.AddValue(name);
    g.inputs.push_back(v);
    feeds.emplace_back(name, t);
    if (typed) {
      v->type.has_type = v->type.has_shape = true;
      v->type.dtype = t.dtype();
      for (int64_t d : t.shape()) v->type.dims.push_back(ir::Dim{d, ""});
    }
    return v;
  }
  ir::Value* Weight(const std::string& name, const ir::Tensor& t) {
    weights[name] = t;
    if (!as_inputs) return g.AddInitializer(name, t.Clone());
    ir::Value* v = Input(name, t);
    return v;
  }
  ir::Value* Const(const ir::Tensor& t) { return g.AddInitializer("c" + std::to_string(counter++), t); }
  ir::Node* Node(const std::string& op, const std::vector<ir::Value*>& in, int n_out = 1,
                 const std::string& domain = "") {
    std::vector<std::string> outs;
    for (int i = 0; i < n_out; ++i) outs.push_back(op + "_" + std::to_string(counter++));
    return g.AddNode(op, in, outs, op + "_node_" + std::to_string(counter), domain);
  }
  ir::Value* Op(const std::string& op, const std::vector<ir::Value*>& in, const std::string& domain = "") {
    return Node(op, in, 1, domain)->outputs[0];
  }
};

// Builds the forward graph into a Net and returns the value the loss is taken of.
using BuildFn = std::function<ir::Value*(Net&)>;

inline Result<std::vector<ir::Tensor>> RunGraph(const ir::Graph& g,
                                                const std::vector<std::pair<std::string, ir::Tensor>>& feeds,
                                                int64_t opset = 17) {
  ASRC_ASSIGN_OR_RETURN(auto s, runtime::Session::Create(g, opset));
  return s->Run(feeds);
}

// loss = ReduceSum(y * R) with R a fixed random tensor of y's shape (so every element of y gets
// a different weight in the gradient).
inline ir::Value* AddLoss(Net& n, ir::Value* y, const ir::Shape& y_shape) {
  ir::Value* r = n.Const(Rand(y_shape, 999, -1.f, 1.f));
  ir::Node* red = n.Node("ReduceSum", {n.Op("Mul", {y, r})});
  red->set_attr_int("keepdims", 0);
  n.g.outputs.push_back(red->outputs[0]);
  return red->outputs[0];
}

struct GradCheck {
  std::map<std::string, double> rel_err;  // max |analytic - numeric| / max |numeric| per weight
  int backward_nodes = 0;
  std::map<std::string, int> op_counts;   // op types of the gradient graph
};

// Gradients of sum(y * R) w.r.t. each weight: from BuildGradient through runtime::Session, and
// by central differences (step eps) of the forward graph; at most `max_elems` elements per weight.
inline Result<GradCheck> CheckGradients(const BuildFn& build, double eps = 5e-3, int max_elems = 48,
                                        int64_t opset = 17) {
  ir::Shape y_shape;
  {
    Net probe(false);
    ir::Value* y = build(probe);
    probe.g.outputs.push_back(y);
    ASRC_ASSIGN_OR_RETURN(auto out, RunGraph(probe.g, probe.feeds, opset));
    y_shape = out[0].shape();
  }
  GradCheck res;
  Net net(false);
  ir::Value* loss = AddLoss(net, build(net), y_shape);
  std::vector<std::string> names;
  for (const auto& [name, t] : net.weights) names.push_back(name);
  grad::GradientOptions opt;
  opt.opset = opset;
  ASRC_ASSIGN_OR_RETURN(grad::GradientGraph gg, grad::BuildGradient(net.g, loss->name, names, opt));
  res.backward_nodes = gg.num_backward_nodes;
  for (ir::Node* n : net.g.nodes()) res.op_counts[n->op_type]++;
  ASRC_RETURN_IF_ERROR(net.g.Verify());
  ASRC_ASSIGN_OR_RETURN(auto outs, RunGraph(net.g, net.feeds, opset));

  Net fd(true);
  AddLoss(fd, build(fd), y_shape);
  ASRC_ASSIGN_OR_RETURN(auto session, runtime::Session::Create(fd.g, opset));
  // The loss with element i of weight w moved by delta; *moved: the step as stored in float.
  auto loss_at = [&](const std::string& w, int64_t i, float delta, float* moved) -> Result<double> {
    auto feeds = fd.feeds;
    for (auto& [name, t] : feeds)
      if (name == w) {
        t = t.Clone();
        float before = t.data<float>()[i];
        t.data<float>()[i] += delta;
        *moved = t.data<float>()[i] - before;
      }
    ASRC_ASSIGN_OR_RETURN(auto o, session->Run(feeds));
    return static_cast<double>(o[0].data<float>()[0]);
  };
  for (size_t k = 0; k < names.size(); ++k) {
    const ir::Tensor& analytic = outs[outs.size() - names.size() + k];
    const ir::Tensor& w = net.weights[names[k]];
    if (analytic.shape() != w.shape())
      return Error("gradient of '" + names[k] + "' has shape " + ir::ShapeStr(analytic.shape()) +
                   ", weight " + ir::ShapeStr(w.shape()));
    double max_num = 0, max_diff = 0;
    int64_t stride = std::max<int64_t>(1, w.numel() / max_elems);
    for (int64_t i = 0; i < w.numel(); i += stride) {
      float up = 0, down = 0;
      ASRC_ASSIGN_OR_RETURN(double lp, loss_at(names[k], i, static_cast<float>(eps), &up));
      ASRC_ASSIGN_OR_RETURN(double lm, loss_at(names[k], i, static_cast<float>(-eps), &down));
      double num = (lp - lm) / (static_cast<double>(up) - down);
      max_num = std::max(max_num, std::abs(num));
      max_diff = std::max(max_diff, std::abs(num - analytic.data<float>()[i]));
    }
    res.rel_err[names[k]] = max_diff / std::max(max_num, 1e-3);
  }
  return res;
}

// Runs CheckGradients and requires every weight's relative error <= tol.
inline GradCheck RequireGradients(const std::string& what, const BuildFn& build, double tol = 2e-3,
                                  double eps = 5e-3) {
  auto r = CheckGradients(build, eps);
  INFO(what);
  if (!r.ok()) FAIL(r.status().message());
  for (const auto& [name, err] : r->rel_err) {
    INFO(what << ": weight '" << name << "' relative error " << err);
    CHECK(err <= tol);
    if (std::getenv("ASRC_GRAD_VERBOSE")) MESSAGE(what << ": '" << name << "' relative error " << err);
  }
  return *r;
}

}  // namespace asrc::testing
