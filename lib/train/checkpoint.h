// Checkpoint files, shared by train::Trainer (one graph) and train::TransducerTrainer (bundles).
//
// One file, written to "<path>.tmp" and renamed over <path>, so a crash never leaves a
// half-written checkpoint and the last good one survives:
//   bytes 0..7   magic "ASRCCKP1"
//   bytes 8..15  header length H, uint64 little-endian
//   H bytes      JSON header: {"format":"asrc-checkpoint","version":1,"step":S, ...the caller's
//                fields..., "tensors":[{"name","group","dtype":"float32","shape":[..],"offset":O,
//                "nbytes":N,"hash":H},...]}; O counts from the start of the data block, H is
//                ir::HashBytes of the tensor's bytes (16 hex digits; checked on reading when present)
//   the rest     data block: the tensors' raw little-endian float32 bytes
// Groups in use: "weight", "exp_avg", "exp_avg_sq" (AdamW's moments) and, for bundle training,
// "best" (the weights with the best dev score so far).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"
#include "ir/tensor.h"
#include "train/optimizer.h"

namespace asrc::train {

struct CheckpointEntry {
  std::string name, group;
  ir::Tensor tensor;  // float32
};

struct CheckpointFile {
  nlohmann::json header;  // holds at least "step"
  std::vector<CheckpointEntry> entries;
};

// Writes `header` (its "format", "version" and "tensors" are set here) and the entries, atomically.
Status WriteCheckpoint(const std::string& path, nlohmann::json header, const std::vector<CheckpointEntry>& entries);
// Reads a file written by WriteCheckpoint; a truncated or corrupt file (bytes that do not match
// their hash, a non-finite value, a negative step, a header field of the wrong type) is an error
// naming the file and the tensor.
Result<CheckpointFile> ReadCheckpoint(const std::string& path);

// An error when writing a checkpoint to `path` would replace what is not a checkpoint: a folder,
// one of `inputs` (the same file, or a file inside an input folder), or an existing file that
// does not start as an asrc checkpoint does. Errors name the path and what it is.
Status CheckCheckpointTarget(const std::string& path, const std::vector<std::string>& inputs);

// The entries for weights `names[k]` (group "weight") and, when adam is non-null and has taken a
// step, its moments.
std::vector<CheckpointEntry> ParameterEntries(const std::vector<std::string>& names,
                                              const std::vector<const ir::Tensor*>& weights, const AdamW* adam);

// The tensors of `group` for `names`, each checked against `shapes`; an entry of another name, a
// wrong shape, and (when `required`) a missing name are errors naming the file and the tensor.
// Without `required`, *out is empty when the group has no entry at all.
Status TakeGroup(const std::string& path, const CheckpointFile& file, const std::string& group,
                 const std::vector<std::string>& names, const std::vector<ir::Shape>& shapes, bool required,
                 std::vector<ir::Tensor>* out);

// Restores weights (into *weights) and AdamW's moments and step count from a file written with
// ParameterEntries for the same names; nothing changes on an error.
Status RestoreParameters(const std::string& path, const CheckpointFile& file, const std::vector<std::string>& names,
                         std::vector<ir::Tensor>* weights, AdamW* adam);

}  // namespace asrc::train
