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

namespace asrc::train {

namespace {

constexpr char kMagic[8] = {'A', 'S', 'R', 'C', 'C', 'K', 'P', '1'};

std::string StepName(int64_t step, const Batch& batch) {
  return "train: step " + std::to_string(step) + " (batch " + (batch.id.empty() ? "?" : batch.id) + ")";
}

double GlobalNorm(const std::vector<ir::Tensor>& grads) {
  double sq = 0;
  for (const ir::Tensor& g : grads)
    for (int64_t k = 0; k < g.numel(); ++k) sq += static_cast<double>(g.data<float>()[k]) * g.data<float>()[k];
  return std::sqrt(sq);
}

}  // namespace

BatchFn WithTeacher(BatchFn batches, runtime::Session& teacher, const std::string& as_input) {
  return [batches = std::move(batches), &teacher, as_input](int64_t step, std::mt19937_64& rng) -> Result<Batch> {
    ASRC_ASSIGN_OR_RETURN(Batch b, batches(step, rng));
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
  ir::Value* loss_value = graph.find_value(loss);
  if (!loss_value) return Error("train: graph '" + graph.name + "' has no value '" + loss + "' (the loss)");
  for (const std::string& name : trainables) {
    ir::Value* v = graph.find_value(name);
    if (v && v->initializer && v->initializer->dtype() != ir::DType::Float32)
      return Error("train: trainable '" + name + "' is " + ir::dtype_name(v->initializer->dtype()) +
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
                 ir::shape_str(outputs[0].shape()) + ")");
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
  ASRC_ASSIGN_OR_RETURN(auto outputs, Run(batch));
  StepStats s;
  s.step = step() + 1;
  s.loss = outputs[0].data<float>()[0];
  if (!std::isfinite(s.loss))
    return Error(StepName(s.step, batch) + ": loss is " + std::to_string(s.loss) + "; weights not updated");
  // The session may hand out buffers it reuses; the optimizer scales and reads private copies.
  std::vector<ir::Tensor> grads;
  for (size_t k = 0; k < weights_.size(); ++k) grads.push_back(outputs[1 + k].Clone());
  std::vector<ir::Tensor*> gp;
  std::vector<const ir::Tensor*> gc;
  for (ir::Tensor& g : grads) {
    gp.push_back(&g);
    gc.push_back(&g);
  }
  if (opt_.clip_norm > 0) {
    ASRC_ASSIGN_OR_RETURN(s.grad_norm, ClipGradNorm(gp, opt_.clip_norm));
  } else {
    s.grad_norm = GlobalNorm(grads);
  }
  if (!std::isfinite(s.grad_norm))
    return Error(StepName(s.step, batch) + ": gradient norm is " + std::to_string(s.grad_norm) +
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
    if (options.stop && options.stop->load()) break;
    if (options.checkpoint_every > 0 && step() % options.checkpoint_every == 0 && step() < options.steps)
      ASRC_RETURN_IF_ERROR(save());
  }
  return save();
}

Status Trainer::SaveCheckpoint(const std::string& path) const {
  struct Entry {
    const ir::Tensor* t;
    const std::string* name;
    const char* group;
  };
  std::vector<Entry> entries;
  for (size_t k = 0; k < weights_.size(); ++k) entries.push_back({&weights_[k], &names_[k], "weight"});
  auto& self = const_cast<AdamW&>(adam_);  // exp_avg() has no const overload; read only here
  for (size_t k = 0; k < self.exp_avg().size(); ++k) {
    entries.push_back({&self.exp_avg()[k], &names_[k], "exp_avg"});
    entries.push_back({&self.exp_avg_sq()[k], &names_[k], "exp_avg_sq"});
  }
  std::ostringstream rng;
  rng << rng_;
  nlohmann::json header = {{"format", "asrc-checkpoint"}, {"version", 1},         {"step", step()},
                           {"seed", opt_.seed},           {"rng", rng.str()},     {"last_loss", last_loss_},
                           {"schedule", opt_.schedule.ToString()}};
  nlohmann::json tensors = nlohmann::json::array();
  uint64_t offset = 0;
  for (const Entry& e : entries) {
    tensors.push_back({{"name", *e.name},
                       {"group", e.group},
                       {"dtype", "float32"},
                       {"shape", e.t->shape()},
                       {"offset", offset},
                       {"nbytes", e.t->nbytes()}});
    offset += e.t->nbytes();
  }
  header["tensors"] = tensors;
  const std::string text = header.dump();
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) return Error("checkpoint: cannot write '" + tmp + "'");
    uint8_t len[8];
    for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(static_cast<uint64_t>(text.size()) >> (8 * i));
    f.write(kMagic, 8);
    f.write(reinterpret_cast<const char*>(len), 8);
    f.write(text.data(), static_cast<std::streamsize>(text.size()));
    for (const Entry& e : entries)
      f.write(reinterpret_cast<const char*>(e.t->raw()), static_cast<std::streamsize>(e.t->nbytes()));
    f.flush();
    if (!f) return Error("checkpoint: writing '" + tmp + "' failed (disk full?)");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0)
    return Error("checkpoint: cannot rename '" + tmp + "' to '" + path + "': " + std::strerror(errno));
  return Status::Ok();
}

Status Trainer::LoadCheckpoint(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return Error("checkpoint '" + path + "': cannot open");
  char magic[8];
  uint8_t len[8];
  f.read(magic, 8);
  f.read(reinterpret_cast<char*>(len), 8);
  if (!f || std::memcmp(magic, kMagic, 8) != 0) return Error("checkpoint '" + path + "': not an asrc checkpoint");
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= static_cast<uint64_t>(len[i]) << (8 * i);
  if (n > (1u << 30)) return Error("checkpoint '" + path + "': header length " + std::to_string(n) + " is corrupt");
  std::string text(n, '\0');
  f.read(text.data(), static_cast<std::streamsize>(n));
  if (!f) return Error("checkpoint '" + path + "': truncated header");
  nlohmann::json h = nlohmann::json::parse(text, nullptr, false);
  if (h.is_discarded() || !h.is_object() || h.value("format", "") != "asrc-checkpoint")
    return Error("checkpoint '" + path + "': the header is not asrc-checkpoint JSON");
  const std::streamoff data_start = f.tellg();
  f.seekg(0, std::ios::end);
  std::string data(static_cast<size_t>(f.tellg() - data_start), '\0');
  f.seekg(data_start);
  f.read(data.data(), static_cast<std::streamsize>(data.size()));
  if (!f) return Error("checkpoint '" + path + "': cannot read the data block");
  std::map<std::string, size_t> index;
  for (size_t k = 0; k < names_.size(); ++k) index[names_[k]] = k;
  std::vector<ir::Tensor> w(names_.size()), m(names_.size()), v(names_.size());
  try {
    for (const auto& e : h.at("tensors")) {
      const std::string name = e.at("name").get<std::string>(), group = e.at("group").get<std::string>();
      auto it = index.find(name);
      if (it == index.end()) return Error("checkpoint '" + path + "': tensor '" + name + "' is not a trainable here");
      const ir::Shape shape = e.at("shape").get<ir::Shape>();
      if (shape != weights_[it->second].shape())
        return Error("checkpoint '" + path + "': '" + name + "' has shape " + ir::shape_str(shape) +
                     ", the model " + ir::shape_str(weights_[it->second].shape()));
      ir::Tensor t(ir::DType::Float32, shape);
      const uint64_t off = e.at("offset").get<uint64_t>();
      if (e.at("dtype").get<std::string>() != "float32" || e.at("nbytes").get<uint64_t>() != t.nbytes() ||
          off + t.nbytes() > data.size())
        return Error("checkpoint '" + path + "': tensor '" + name + "' (" + group + ") is truncated or not float32");
      std::memcpy(t.raw(), data.data() + off, t.nbytes());
      auto& slot = group == "weight" ? w : group == "exp_avg" ? m : group == "exp_avg_sq" ? v : w;
      if (group != "weight" && group != "exp_avg" && group != "exp_avg_sq")
        return Error("checkpoint '" + path + "': tensor '" + name + "' has unknown group '" + group + "'");
      slot[it->second] = std::move(t);
    }
    const int64_t steps = h.at("step").get<int64_t>();
    for (size_t k = 0; k < names_.size(); ++k) {
      if (!w[k].defined()) return Error("checkpoint '" + path + "': no weight '" + names_[k] + "'");
      if (steps > 0 && (!m[k].defined() || !v[k].defined()))
        return Error("checkpoint '" + path + "': no optimizer state for '" + names_[k] + "'");
    }
    std::istringstream rng(h.at("rng").get<std::string>());
    std::mt19937_64 r;
    if (!(rng >> r)) return Error("checkpoint '" + path + "': the RNG state does not parse");
    weights_ = std::move(w);
    adam_.exp_avg() = steps > 0 ? std::move(m) : std::vector<ir::Tensor>{};
    adam_.exp_avg_sq() = steps > 0 ? std::move(v) : std::vector<ir::Tensor>{};
    adam_.set_steps(steps);
    rng_ = r;
    last_loss_ = h.value("last_loss", 0.0);
  } catch (const nlohmann::json::exception& e) {
    return Error("checkpoint '" + path + "': bad header: " + e.what());
  }
  return Status::Ok();
}

Status Trainer::CopyWeightsTo(ir::Graph& graph) const {
  for (size_t k = 0; k < names_.size(); ++k) {
    ir::Value* v = graph.find_value(names_[k]);
    if (!v || !v->initializer)
      return Error("train: graph '" + graph.name + "' has no initializer '" + names_[k] + "'");
    if (v->initializer->shape() != weights_[k].shape())
      return Error("train: initializer '" + names_[k] + "' in graph '" + graph.name + "' has shape " +
                   ir::shape_str(v->initializer->shape()) + ", the trained weight " +
                   ir::shape_str(weights_[k].shape()));
    v->initializer = weights_[k].Clone();
  }
  return Status::Ok();
}

}  // namespace asrc::train
