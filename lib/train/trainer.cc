#include "train/trainer.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "grad/grad.h"
#include "runtime/session.h"
#include "train/mpi.h"
#include "train/checkpoint.h"

namespace asrc::train {

namespace {

std::string StepName(int64_t step, const Batch& batch) {
  return "train: step " + std::to_string(step) + " (batch " + (batch.id.empty() ? "?" : batch.id) + ")";
}

}  // namespace

std::string LossText(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  return std::to_string(v);
}

BatchFn WithTeacher(BatchFn batches, runtime::Session& teacher, const std::string& as_input) {
  return [batches = std::move(batches), &teacher, as_input](int64_t step, std::mt19937_64& rng) -> Result<Batch> {
    ASRC_ASSIGN_OR_RETURN(Batch b, batches(step, rng));
    if (b.feeds.empty()) return b;  // an empty data-parallel shard
    std::vector<ir::Tensor> in;
    for (const std::string& name : teacher.input_names()) {
      auto it = std::find_if(b.feeds.begin(), b.feeds.end(), [&](const auto& f) { return f.first == name; });
      if (it == b.feeds.end()) return Error("teacher input '" + name + "' is not among the batch feeds");
      in.push_back(it->second);
    }
    std::vector<ir::Tensor> out;
    Status st = teacher.Run(in, &out);
    if (!st.ok()) return Error("teacher (batch " + b.id + "): " + st.message());
    b.feeds.emplace_back(as_input, out[0].Clone());
    return b;
  };
}

Trainer::~Trainer() = default;

Result<std::unique_ptr<Trainer>> Trainer::Create(ir::Graph& graph, const std::string& loss,
                                                 const std::vector<std::string>& trainables,
                                                 const TrainerOptions& options) {
  ir::Value* loss_value = graph.FindValue(loss);
  if (!loss_value) return Error("train: graph '" + graph.name + "' has no value '" + loss + "' (the loss)");
  for (const std::string& name : trainables) {
    ir::Value* v = graph.FindValue(name);
    if (v && v->initializer && v->initializer->dtype() != ir::DType::Float32)
      return Error("train: trainable '" + name + "' is " + ir::DTypeName(v->initializer->dtype()) +
                   ", not float32");
  }
  if (trainables.empty()) return Error("train: no trainable weights given");
  std::unique_ptr<Trainer> t(new Trainer());
  t->opt_ = options;
  t->adam_ = AdamW(options.adamw);
  t->rng_.seed(options.seed);
  t->names_ = trainables;
  // Only the loss and the gradients are needed per step: dropping the other outputs lets the
  // session free what only they used.
  std::vector<ir::Value*> saved_outputs = graph.outputs;
  graph.outputs = {loss_value};
  grad::GradientOptions gopt;
  gopt.opset = options.opset;
  gopt.trainables_as_inputs = true;
  auto gg = grad::BuildGradient(graph, loss, trainables, gopt);
  if (!gg.ok()) {
    graph.outputs = saved_outputs;
    return gg.status();
  }
  for (ir::Tensor& w : gg->trainable_values) t->weights_.push_back(w.Clone());
  runtime::SessionOptions sopt;
  sopt.threads = options.threads;
  ASRC_ASSIGN_OR_RETURN(t->session_, runtime::Session::Create(graph, options.opset, sopt));
  auto slots = t->session_->InputIndices(trainables);
  if (!slots.ok()) return slots.status().With("train: a trainable is not an input of the gradient graph");
  t->weight_slot_ = std::move(slots).value();
  return t;
}

Result<std::vector<ir::Tensor>> Trainer::Run(const Batch& batch) {
  const auto& inputs = session_->input_names();
  std::vector<ir::Tensor> feeds(inputs.size());
  for (size_t k = 0; k < weights_.size(); ++k) feeds[weight_slot_[k]] = weights_[k];
  for (const auto& [name, t] : batch.feeds) {
    auto it = std::find(inputs.begin(), inputs.end(), name);
    if (it != inputs.end()) feeds[it - inputs.begin()] = t;
  }
  for (size_t i = 0; i < inputs.size(); ++i)
    if (!feeds[i].defined()) return Error(StepName(step() + 1, batch) + ": input '" + inputs[i] + "' is not fed");
  std::vector<ir::Tensor> outputs;
  Status st = session_->Run(feeds, &outputs);
  if (!st.ok()) return Error(StepName(step() + 1, batch) + ": " + st.message());
  if (outputs.size() != 1 + weights_.size() || outputs[0].numel() != 1 ||
      outputs[0].dtype() != ir::DType::Float32)
    return Error(StepName(step() + 1, batch) + ": the loss is not a float32 scalar (shape " +
                 ir::ShapeStr(outputs[0].shape()) + ")");
  return outputs;
}

Result<double> Trainer::Loss(const Batch& batch) {
  ASRC_ASSIGN_OR_RETURN(auto outputs, Run(batch));
  return static_cast<double>(outputs[0].data<float>()[0]);
}

Result<std::vector<ir::Tensor>> Trainer::Gradients(const Batch& batch) {
  ASRC_ASSIGN_OR_RETURN(auto outputs, Run(batch));
  for (ir::Tensor& t : outputs) t = t.Clone();
  return outputs;
}

Result<StepStats> Trainer::Step(const Batch& batch) {
  StepStats s;
  s.step = step() + 1;
  // The session may hand out buffers it reuses; the optimizer scales and reads private copies.
  std::vector<ir::Tensor> grads;
  const bool data_parallel = opt_.collective && opt_.collective->Size() > 1;
  if (data_parallel && batch.feeds.empty()) {  // an empty shard: zero gradients
    for (const ir::Tensor& w : weights_) grads.emplace_back(ir::DType::Float32, w.shape());
  } else {
    ASRC_ASSIGN_OR_RETURN(auto outputs, Run(batch));
    s.loss = outputs[0].data<float>()[0];
    for (size_t k = 0; k < weights_.size(); ++k) grads.push_back(outputs[1 + k].Clone());
  }
  std::vector<ir::Tensor*> gp;
  std::vector<const ir::Tensor*> gc;
  for (ir::Tensor& g : grads) {
    gp.push_back(&g);
    gc.push_back(&g);
  }
  if (data_parallel)  // every rank now holds the whole batch's loss and gradients
    ASRC_RETURN_IF_ERROR(AllReduceGradients(*opt_.collective, batch.share, &s.loss, gp).With(StepName(s.step, batch)));
  if (!std::isfinite(s.loss))
    return Error(StepName(s.step, batch) + ": loss is " + LossText(s.loss) + "; weights not updated");
  if (opt_.clip_norm > 0) {
    ASRC_ASSIGN_OR_RETURN(s.grad_norm, ClipGradNorm(gp, opt_.clip_norm));
  } else {
    ASRC_ASSIGN_OR_RETURN(s.grad_norm, GradNorm(gc));
  }
  if (!std::isfinite(s.grad_norm))
    return Error(StepName(s.step, batch) + ": gradient norm is " + LossText(s.grad_norm) +
                 "; weights not updated");
  s.lr = opt_.schedule.At(s.step);
  std::vector<ir::Tensor*> wp;
  for (ir::Tensor& w : weights_) wp.push_back(&w);
  Status st = adam_.Step(wp, gc, s.lr);
  if (!st.ok()) return Error(StepName(s.step, batch) + ": " + st.message());
  last_loss_ = s.loss;
  return s;
}

Status Trainer::Train(const BatchFn& batches, const LoopOptions& options) {
  auto save = [&]() -> Status {
    if (options.checkpoint.empty()) return Status::Ok();
    return SaveCheckpoint(options.checkpoint);
  };
  while (step() < options.steps) {
    auto batch = batches(step() + 1, rng_);
    if (!batch.ok()) return Error("train: step " + std::to_string(step() + 1) + ": " + batch.status().message());
    auto s = Step(*batch);
    if (!s.ok()) {
      std::ifstream exists(options.checkpoint);
      std::string kept = options.checkpoint.empty() || !exists
                             ? ""
                             : "; the last checkpoint '" + options.checkpoint + "' is kept as it was";
      return Error(s.status().message() + kept);
    }
    if (options.on_step) options.on_step(*s);
    if (options.stop && AnyRank(opt_.collective, options.stop->load())) break;  // all ranks stop together
    if (options.checkpoint_every > 0 && step() % options.checkpoint_every == 0 && step() < options.steps)
      ASRC_RETURN_IF_ERROR(save());
  }
  return save();
}

Status Trainer::SaveCheckpoint(const std::string& path) const {
  std::vector<const ir::Tensor*> w;
  for (const ir::Tensor& t : weights_) w.push_back(&t);
  std::ostringstream rng;
  rng << rng_;
  nlohmann::json header = {{"step", step()},
                           {"seed", opt_.seed},
                           {"rng", rng.str()},
                           {"last_loss", last_loss_},
                           {"schedule", opt_.schedule.ToString()}};
  return WriteCheckpoint(path, header, ParameterEntries(names_, w, &adam_));
}

Status Trainer::LoadCheckpoint(const std::string& path) {
  ASRC_ASSIGN_OR_RETURN(CheckpointFile file, ReadCheckpoint(path));
  std::mt19937_64 r;
  double last_loss = 0;
  try {
    std::istringstream rng(file.header.value("rng", ""));
    if (!(rng >> r)) return Error("checkpoint '" + path + "': the RNG state does not parse");
    last_loss = file.header.value("last_loss", 0.0);
  } catch (const nlohmann::json::exception& e) {
    return Error("checkpoint '" + path + "': bad header: " + e.what());
  }
  ASRC_RETURN_IF_ERROR(RestoreParameters(path, file, names_, &weights_, &adam_));
  rng_ = r;
  last_loss_ = last_loss;
  return Status::Ok();
}

Status Trainer::CopyWeightsTo(ir::Graph& graph) const {
  for (size_t k = 0; k < names_.size(); ++k) {
    ir::Value* v = graph.FindValue(names_[k]);
    if (!v || !v->initializer)
      return Error("train: graph '" + graph.name + "' has no initializer '" + names_[k] + "'");
    if (v->initializer->shape() != weights_[k].shape())
      return Error("train: initializer '" + names_[k] + "' in graph '" + graph.name + "' has shape " +
                   ir::ShapeStr(v->initializer->shape()) + ", the trained weight " +
                   ir::ShapeStr(weights_[k].shape()));
    v->initializer = weights_[k].Clone();
  }
  return Status::Ok();
}

}  // namespace asrc::train
