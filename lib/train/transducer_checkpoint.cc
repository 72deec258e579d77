// TransducerTrainer checkpoints (train/transducer.h, train/checkpoint.h).
#include "train/transducer.h"

namespace asrc::train {

Status TransducerTrainer::Prepare(const Utterance& u) {
  return PlanFor(ShapeOf(cfg_, u, opt_.label_pad, opt_.chunk_pad)).status();
}

std::vector<std::string> TransducerTrainer::parameter_names() const {
  std::vector<std::string> names;
  for (size_t k = 0; k < names_.size(); ++k)
    if (tie_[k] == k) names.push_back(names_[k]);
  return names;
}

std::vector<ir::Tensor> TransducerTrainer::parameters() const {
  std::vector<ir::Tensor> w;
  for (size_t k = 0; k < weights_.size(); ++k)
    if (tie_[k] == k) w.push_back(weights_[k]);
  return w;
}

Status TransducerTrainer::SaveCheckpoint(const std::string& path, nlohmann::json header,
                                         std::vector<CheckpointEntry> more) const {
  if (weights_.empty()) return Error("checkpoint '" + path + "': the trainer has not planned a graph yet");
  const std::vector<ir::Tensor> params = parameters();
  std::vector<const ir::Tensor*> w;
  for (const ir::Tensor& t : params) w.push_back(&t);
  std::vector<CheckpointEntry> entries = ParameterEntries(parameter_names(), w, &adam_);
  for (CheckpointEntry& e : more) entries.push_back(std::move(e));
  header["step"] = step();
  return WriteCheckpoint(path, std::move(header), entries);
}

Result<CheckpointFile> TransducerTrainer::LoadCheckpoint(const std::string& path) {
  if (weights_.empty()) return Error("checkpoint '" + path + "': Prepare the trainer before loading");
  ASRC_ASSIGN_OR_RETURN(CheckpointFile file, ReadCheckpoint(path));
  std::vector<ir::Tensor> params = parameters();
  ASRC_RETURN_IF_ERROR(RestoreParameters(path, file, parameter_names(), &params, &adam_));
  for (size_t k = 0, j = 0; k < weights_.size(); ++k)
    if (tie_[k] == k) weights_[k] = params[j++];
  for (size_t k = 0; k < weights_.size(); ++k)  // a tied weight is the same tensor as its parameter
    if (tie_[k] != k) weights_[k] = weights_[tie_[k]];
  return file;
}

}  // namespace asrc::train
