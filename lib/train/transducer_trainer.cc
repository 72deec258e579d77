// TransducerTrainer (train/transducer.h): composed graphs per shape, one set of weights.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <regex>
#include <set>

#include "grad/grad.h"
#include "runtime/session.h"
#include "train/mpi.h"
#include "train/transducer.h"

namespace asrc::train {

struct TransducerTrainer::Plan {
  ComposeShape shape;
  std::unique_ptr<ir::Graph> graph;
  std::unique_ptr<runtime::Session> session;
  std::vector<int> weight_slot;  // session input position of each trainable (training plans)
  int num_logits = 0;
};

namespace {

const char* const kRoles[] = {"encoder_causal", "encoder_noncausal", "encoder", "decoder", "joiner"};

int64_t OpsetOf(const ir::Model& m) {
  for (const ir::GraphFile& gf : m.graphs)
    if (gf.opset("") > 0) return gf.opset("");
  return 17;
}

// Float initializers "ROLE/<name>" of the composed graph that the loss reads (through any path):
// the weights to train, in graph order.
std::vector<std::string> FindTrainables(const ir::Graph& g, const ir::Value* loss, const std::regex& freeze) {
  std::set<const ir::Value*> seen{loss};
  std::vector<const ir::Value*> stack{loss};
  while (!stack.empty()) {
    const ir::Value* v = stack.back();
    stack.pop_back();
    if (!v->producer) continue;
    for (const ir::Value* in : v->producer->inputs)
      if (in && seen.insert(in).second) stack.push_back(in);
  }
  std::vector<std::string> names;
  for (const ir::Value* w : g.initializers) {
    std::string role, name;
    if (!seen.count(w) || !SplitWeightName(w->name, &role, &name)) continue;
    if (std::find(std::begin(kRoles), std::end(kRoles), role) == std::end(kRoles)) continue;
    if (w->initializer->dtype() != ir::DType::Float32 || w->initializer->numel() <= 1) continue;
    if (std::regex_search(name, freeze)) continue;
    names.push_back(w->name);
  }
  return names;
}

// For each trainable "ROLE/<name>", the first earlier trainable whose initializer in `model`
// is the same bytes (same buffer, offset, dtype and shape): the tied parameters.
std::vector<size_t> FindTies(const ir::Model& model, const std::vector<std::string>& names) {
  std::vector<const ir::Tensor*> init(names.size(), nullptr);
  std::vector<size_t> tie(names.size());
  for (size_t k = 0; k < names.size(); ++k) {
    tie[k] = k;
    std::string role, name;
    const auto* f = SplitWeightName(names[k], &role, &name) ? model.find(role) : nullptr;
    const ir::Graph* g = f ? f->graph.get() : nullptr;
    const ir::Value* v = g ? g->FindValue(name) : nullptr;
    if (!v || !v->initializer) continue;
    init[k] = &*v->initializer;
    for (size_t j = 0; j < k; ++j)
      if (init[j] && init[j]->SharesBufferWith(*init[k]) && init[j]->offset() == init[k]->offset() &&
          init[j]->dtype() == init[k]->dtype() && init[j]->shape() == init[k]->shape()) {
        tie[k] = j;
        break;
      }
  }
  return tie;
}

double Since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::string StepName(int64_t step, const std::string& id) {
  return "train: step " + std::to_string(step) + " (batch " + (id.empty() ? "?" : id) + ")";
}

// The utterances of a batch this data-parallel rank runs (all of them without `c`).
std::vector<const Utterance*> MyShard(const std::vector<const Utterance*>& utts, const Collective* c) {
  if (!c) return utts;
  std::vector<const Utterance*> mine;
  for (size_t i : ShardRows(utts.size(), c->Rank(), c->Size())) mine.push_back(utts[i]);
  return mine;
}

// Moves the plan for `shape` to the front of `plans`; null when absent.
template <class P>
P* Lookup(std::list<std::unique_ptr<P>>& plans, const ComposeShape& shape) {
  for (auto it = plans.begin(); it != plans.end(); ++it)
    if ((*it)->shape.chunks == shape.chunks && (*it)->shape.labels == shape.labels &&
        (*it)->shape.batch == shape.batch) {
      plans.splice(plans.begin(), plans, it);
      return plans.front().get();
    }
  return nullptr;
}

}  // namespace

TransducerTrainer::~TransducerTrainer() = default;

Result<std::unique_ptr<TransducerTrainer>> TransducerTrainer::Create(const ir::Model& student,
                                                                     const ir::Model* teacher,
                                                                     const TransducerTrainOptions& options) {
  std::unique_ptr<TransducerTrainer> t(new TransducerTrainer());
  t->opt_ = options;
  t->adam_ = AdamW(options.adamw);
  t->student_ = student;
  ASRC_ASSIGN_OR_RETURN(t->cfg_, asr::BundleConfig::FromModel(student));
  if (options.loss.kd) {
    if (!teacher) return Error("train: loss '" + std::string(options.loss.rnnt ? "rnnt+kd" : "kd") + "' needs a teacher");
    t->teacher_ = *teacher;
    t->has_teacher_ = true;
    auto tc = asr::BundleConfig::FromModel(*teacher);
    if (!tc.ok()) return tc.status().With("teacher");
    t->teacher_cfg_ = *tc;
    if (tc->vocab_size != t->cfg_.vocab_size || tc->tokens != t->cfg_.tokens || tc->blank_id != t->cfg_.blank_id)
      return Error("train: the teacher's vocabulary (" + std::to_string(tc->vocab_size) + " tokens) differs from the student's (" +
                   std::to_string(t->cfg_.vocab_size) + " tokens): KD needs the same tokens.txt");
    if (tc->subsampling_factor != t->cfg_.subsampling_factor)
      return Error("train: teacher and student subsample differently (" + std::to_string(tc->subsampling_factor) +
                   " vs " + std::to_string(t->cfg_.subsampling_factor) + "); their lattices would not align");
  }
  if (t->cfg_.streaming() && options.max_batch > 1) {  // a small batched graph composes: batches run
    const ComposeShape probe{1, 1, 2};
    t->batchable_ = ComposeTransducer(student, t->cfg_, probe, nullptr).ok() &&
                    (!t->has_teacher_ || (t->teacher_cfg_.streaming() &&
                                          ComposeTransducer(t->teacher_, t->teacher_cfg_, probe, nullptr).ok()));
  }
  try {
    std::regex check(options.freeze);
  } catch (const std::regex_error& e) {
    return Error("train: freeze regex '" + options.freeze + "': " + e.what());
  }
  return t;
}

Result<TransducerTrainer::Plan*> TransducerTrainer::PlanFor(const ComposeShape& shape) {
  if (Plan* p = Lookup(plans_, shape)) return p;
  const auto t0 = std::chrono::steady_clock::now();
  auto plan = std::make_unique<Plan>();
  plan->shape = shape;
  ASRC_ASSIGN_OR_RETURN(plan->graph, ComposeTransducer(student_, cfg_, shape, &opt_.loss));
  ir::Graph& g = *plan->graph;
  plan->num_logits = static_cast<int>(g.outputs.size()) - 1;
  if (names_.empty()) {
    names_ = FindTrainables(g, g.outputs[0], std::regex(opt_.freeze));
    if (names_.empty()) return Error("train: the bundle has no trainable weight on the loss path");
    tie_ = FindTies(student_, names_);
  }
  grad::GradientOptions gopt;
  gopt.opset = OpsetOf(student_);
  gopt.trainables_as_inputs = true;
  ASRC_ASSIGN_OR_RETURN(auto gg, grad::BuildGradient(g, "loss", names_, gopt));
  if (weights_.empty())  // a tied weight is the same tensor as the one it is tied to
    for (size_t k = 0; k < gg.trainable_values.size(); ++k)
      weights_.push_back(tie_[k] == k ? gg.trainable_values[k].Clone() : weights_[tie_[k]]);
  runtime::SessionOptions sopt;
  sopt.threads = opt_.threads;
  ASRC_ASSIGN_OR_RETURN(plan->session, runtime::Session::Create(g, gopt.opset, sopt));
  auto slots = plan->session->InputIndices(names_);
  if (!slots.ok()) return slots.status().With("train: a trainable is not an input of the gradient graph");
  plan->weight_slot = std::move(slots).value();
  plans_.push_front(std::move(plan));
  ++plans_built_;
  plan_s_ += Since(t0);
  while (plans_.size() > std::max<size_t>(1, opt_.max_plans)) plans_.pop_back();
  return plans_.front().get();
}

Result<TransducerTrainer::Plan*> TransducerTrainer::TeacherPlanFor(const ComposeShape& shape) {
  if (Plan* p = Lookup(teacher_plans_, shape)) return p;
  const auto t0 = std::chrono::steady_clock::now();
  auto plan = std::make_unique<Plan>();
  plan->shape = shape;
  auto g = ComposeTransducer(teacher_, teacher_cfg_, shape, nullptr);
  if (!g.ok()) return g.status().With("teacher");
  plan->graph = std::move(g).value();
  plan->num_logits = static_cast<int>(plan->graph->outputs.size());
  runtime::SessionOptions sopt;
  sopt.threads = opt_.threads;
  auto s = runtime::Session::Create(*plan->graph, OpsetOf(teacher_), sopt);
  if (!s.ok()) return s.status().With("teacher");
  plan->session = std::move(s).value();
  teacher_plans_.push_front(std::move(plan));
  ++plans_built_;
  plan_s_ += Since(t0);
  while (teacher_plans_.size() > std::max<size_t>(1, opt_.max_plans)) teacher_plans_.pop_back();
  return teacher_plans_.front().get();
}

namespace {

Result<std::vector<ir::Tensor>> RunByName(runtime::Session& s, const std::vector<std::pair<std::string, ir::Tensor>>& feeds,
                                          std::vector<ir::Tensor> inputs, const std::string& what) {
  const auto& names = s.input_names();
  inputs.resize(names.size());
  for (const auto& [name, t] : feeds) {
    auto it = std::find(names.begin(), names.end(), name);
    if (it != names.end()) inputs[it - names.begin()] = t;
  }
  for (size_t i = 0; i < names.size(); ++i)
    if (!inputs[i].defined()) return Error(what + ": input '" + names[i] + "' is not fed");
  std::vector<ir::Tensor> out;
  ASRC_RETURN_IF_ERROR(s.Run(inputs, &out).With(what));
  return out;
}

}  // namespace

std::vector<std::vector<const Utterance*>> TransducerTrainer::Groups(const std::vector<const Utterance*>& utts) const {
  std::vector<std::vector<const Utterance*>> groups;
  const bool batches = cfg_.streaming() && opt_.max_batch > 1 && batchable_;
  if (!batches) {
    for (const Utterance* u : utts) groups.push_back({u});
    return groups;
  }
  // Sorted by shape, so that a group pads little; stable, so that a batch's order decides ties.
  std::vector<const Utterance*> sorted = utts;
  auto key = [&](const Utterance* u) {
    const ComposeShape s = ShapeOf(cfg_, *u, opt_.label_pad, opt_.chunk_pad);
    return std::make_pair(s.chunks, s.labels);
  };
  std::stable_sort(sorted.begin(), sorted.end(), [&](const Utterance* a, const Utterance* b) { return key(a) < key(b); });
  for (size_t i = 0; i < sorted.size(); i += static_cast<size_t>(opt_.max_batch))
    groups.emplace_back(sorted.begin() + i, sorted.begin() + std::min(sorted.size(), i + static_cast<size_t>(opt_.max_batch)));
  return groups;
}

Result<std::vector<ir::Tensor>> TransducerTrainer::RunGroup(const std::vector<const Utterance*>& utts,
                                                            float loss_scale) {
  const ComposeShape shape = ShapeOf(cfg_, utts, opt_.label_pad, opt_.chunk_pad);
  std::string what = "utterance " + utts[0]->id;
  for (size_t i = 1; i < utts.size(); ++i) what += (i == 1 ? " (batch with " : ", ") + utts[i]->id + (i + 1 == utts.size() ? ")" : "");
  auto feeds = TransducerFeeds(cfg_, utts, shape, loss_scale);
  if (opt_.loss.kd) {
    ComposeShape ts = ShapeOf(teacher_cfg_, utts, opt_.label_pad, opt_.chunk_pad);
    ts.labels = shape.labels;
    ASRC_ASSIGN_OR_RETURN(Plan* tp, TeacherPlanFor(ts));
    const auto t0 = std::chrono::steady_clock::now();
    ASRC_ASSIGN_OR_RETURN(auto tout, RunByName(*tp->session, TransducerFeeds(teacher_cfg_, utts, ts, 1.f), {},
                                               "teacher (" + what + ")"));
    // The teacher's look-ahead logits stand in for a lattice it does not have.
    const bool student_causal = cfg_.streaming();
    if (student_causal) feeds.emplace_back("teacher_logits_causal", tout[0].Clone());
    feeds.emplace_back("teacher_logits_lookahead", tout.back().Clone());
    run_s_ += Since(t0);
  }
  ASRC_ASSIGN_OR_RETURN(Plan* p, PlanFor(shape));
  std::vector<ir::Tensor> inputs(p->session->input_names().size());
  for (size_t k = 0; k < weights_.size(); ++k) inputs[p->weight_slot[k]] = weights_[tie_[k]];
  const auto t0 = std::chrono::steady_clock::now();
  ASRC_ASSIGN_OR_RETURN(auto out, RunByName(*p->session, feeds, std::move(inputs), what));
  run_s_ += Since(t0);
  if (out.size() != 1 + p->num_logits + weights_.size() || out[0].numel() != 1)
    return Error("train: " + what + ": the composed graph returned " + std::to_string(out.size()) + " outputs");
  return out;
}

Result<StepStats> TransducerTrainer::Step(const std::vector<const Utterance*>& utts, const std::string& id) {
  StepStats s;
  s.step = step() + 1;
  int64_t tokens = 0;
  for (const Utterance* u : utts) tokens += static_cast<int64_t>(u->labels.size());
  const float scale = 1.f / static_cast<float>(std::max<int64_t>(1, tokens));
  if (weights_.empty() && !utts.empty()) {  // the weights exist once the first graph is planned
    auto p = PlanFor(ShapeOf(cfg_, *utts[0], opt_.label_pad, opt_.chunk_pad));
    if (!p.ok()) return Error(StepName(s.step, id) + ": " + p.status().message());
  }
  std::vector<ir::Tensor> acc;
  for (const ir::Tensor& w : weights_) acc.emplace_back(ir::DType::Float32, w.shape());
  for (const auto& group : Groups(MyShard(utts, opt_.collective))) {
    auto out = RunGroup(group, scale);
    if (!out.ok()) return Error(StepName(s.step, id) + ": " + out.status().message());
    const float l = out->at(0).data<float>()[0];
    if (!std::isfinite(l))
      return Error(StepName(s.step, id) + ": loss is " + LossText(l) + " (utterance " + group[0]->id +
                   (group.size() > 1 ? " and " + std::to_string(group.size() - 1) + " more" : std::string()) +
                   "); weights not updated");
    s.loss += l;
    const size_t first = out->size() - weights_.size();
    for (size_t k = 0; k < acc.size(); ++k) {
      float* a = acc[tie_[k]].data<float>();  // a tied weight's gradients sum into one
      const float* g = (*out)[first + k].data<float>();
      for (int64_t i = 0; i < acc[k].numel(); ++i) a[i] += g[i];
    }
  }
  std::vector<ir::Tensor*> gp, wp;  // one entry per parameter (tied weights once)
  std::vector<const ir::Tensor*> gc;
  for (size_t k = 0; k < acc.size(); ++k) {
    if (tie_[k] != k) continue;
    gp.push_back(&acc[k]);
    gc.push_back(&acc[k]);
    wp.push_back(&weights_[k]);
  }
  if (opt_.collective)  // the shards' sums (each scaled by the whole batch's tokens) add up
    ASRC_RETURN_IF_ERROR(AllReduceGradients(*opt_.collective, 1.0, &s.loss, gp).With(StepName(s.step, id)));
  if (opt_.clip_norm > 0) {
    ASRC_ASSIGN_OR_RETURN(s.grad_norm, ClipGradNorm(gp, opt_.clip_norm));
  } else {
    ASRC_ASSIGN_OR_RETURN(s.grad_norm, GradNorm(gc));
  }
  if (!std::isfinite(s.grad_norm))
    return Error(StepName(s.step, id) + ": gradient norm is " + std::to_string(s.grad_norm) + "; weights not updated");
  s.lr = opt_.schedule.At(s.step);
  Status st = adam_.Step(wp, gc, s.lr);
  if (!st.ok()) return Error(StepName(s.step, id) + ": " + st.message());
  return s;
}

Result<double> TransducerTrainer::Loss(const std::vector<const Utterance*>& utts) {
  int64_t tokens = 0;
  for (const Utterance* u : utts) tokens += static_cast<int64_t>(u->labels.size());
  const float scale = 1.f / static_cast<float>(std::max<int64_t>(1, tokens));
  double loss = 0;
  for (const auto& group : Groups(MyShard(utts, opt_.collective))) {
    ASRC_ASSIGN_OR_RETURN(auto out, RunGroup(group, scale));
    loss += out[0].data<float>()[0];
  }
  if (opt_.collective) ASRC_RETURN_IF_ERROR(AllReduceGradients(*opt_.collective, 1.0, &loss, {}));
  return loss;
}

Result<std::vector<ir::Tensor>> TransducerTrainer::Gradients(const Utterance& u) {
  ASRC_ASSIGN_OR_RETURN(auto out, RunGroup({&u}, 1.f));
  std::vector<ir::Tensor> r{out[0].Clone()};
  for (size_t k = out.size() - weights_.size(); k < out.size(); ++k) r.push_back(out[k].Clone());
  return r;
}

Result<std::vector<ir::Tensor>> TransducerTrainer::Gradients(const std::vector<const Utterance*>& utts) {
  std::vector<ir::Tensor> sum;
  for (const auto& group : Groups(utts)) {
    ASRC_ASSIGN_OR_RETURN(auto out, RunGroup(group, 1.f));
    const size_t first = out.size() - weights_.size();
    if (sum.empty()) {
      sum.push_back(out[0].Clone());
      for (size_t k = first; k < out.size(); ++k) sum.push_back(out[k].Clone());
      continue;
    }
    for (size_t k = 0; k <= weights_.size(); ++k) {
      float* a = sum[k].data<float>();
      const float* g = out[k == 0 ? 0 : first + k - 1].data<float>();
      for (int64_t i = 0; i < sum[k].numel(); ++i) a[i] += g[i];
    }
  }
  return sum;
}

Result<std::vector<ir::Tensor>> TransducerTrainer::Logits(const Utterance& u) {
  ASRC_ASSIGN_OR_RETURN(auto out, RunGroup({&u}, 1.f));
  std::vector<ir::Tensor> r;
  for (size_t k = 1; k < out.size() - weights_.size(); ++k) r.push_back(out[k].Clone());
  return r;
}

Status TransducerTrainer::CopyWeightsTo(ir::Model& model) const {
  std::vector<ir::Tensor> written(names_.size());  // a tied parameter: one tensor for all its graphs
  for (size_t k = 0; k < names_.size(); ++k) {
    std::string role, name;
    SplitWeightName(names_[k], &role, &name);
    ir::Graph* g = model.graph(role);
    ir::Value* v = g ? g->FindValue(name) : nullptr;
    if (!v || !v->initializer) return Error("train: the bundle's '" + role + "' graph has no initializer '" + name + "'");
    if (v->initializer->shape() != weights_[k].shape())
      return Error("train: '" + names_[k] + "' is " + ir::ShapeStr(weights_[k].shape()) + " in training, " +
                   ir::ShapeStr(v->initializer->shape()) + " in the bundle");
    if (!written[tie_[k]].defined()) written[tie_[k]] = weights_[tie_[k]].Clone();
    v->initializer = written[tie_[k]];
  }
  return Status::Ok();
}

}  // namespace asrc::train
