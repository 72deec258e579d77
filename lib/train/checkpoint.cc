#include "train/checkpoint.h"

#include <cerrno>
#include <cstdio>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>

#include "ir/hash.h"
#include "ir/model.h"

namespace asrc::train {

namespace {
constexpr char kMagic[8] = {'A', 'S', 'R', 'C', 'C', 'K', 'P', '1'};

// A tensor read back: its bytes hash as written (files from before the hash have none) and its
// values are finite (a training step never stores a NaN: it stops first).
Status CheckEntry(const std::string& path, const nlohmann::json& e, const CheckpointEntry& c) {
  const std::string what = "checkpoint '" + path + "': tensor '" + c.name + "' (" + c.group + ")";
  if (e.contains("hash") && e.at("hash").get<std::string>() != ir::HashHex(ir::HashBytes(c.tensor.raw(), c.tensor.nbytes())))
    return Error(what + ": its bytes do not match the hash written with them (the file is corrupt)");
  const float* v = c.tensor.data<float>();
  for (int64_t i = 0; i < c.tensor.numel(); ++i)
    if (!std::isfinite(v[i])) return Error(what + ": holds a non-finite value at index " + std::to_string(i));
  return Status::Ok();
}
}  // namespace

Status WriteCheckpoint(const std::string& path, nlohmann::json header, const std::vector<CheckpointEntry>& entries) {
  header["format"] = "asrc-checkpoint";
  header["version"] = 1;
  nlohmann::json tensors = nlohmann::json::array();
  uint64_t offset = 0;
  for (const CheckpointEntry& e : entries) {
    tensors.push_back({{"name", e.name},
                       {"group", e.group},
                       {"dtype", "float32"},
                       {"shape", e.tensor.shape()},
                       {"offset", offset},
                       {"nbytes", e.tensor.nbytes()},
                       {"hash", ir::HashHex(ir::HashBytes(e.tensor.raw(), e.tensor.nbytes()))}});
    offset += e.tensor.nbytes();
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
    for (const CheckpointEntry& e : entries)
      f.write(reinterpret_cast<const char*>(e.tensor.raw()), static_cast<std::streamsize>(e.tensor.nbytes()));
    f.close();
    if (!f) {
      std::remove(tmp.c_str());  // a full disk leaves no partial checkpoint behind
      return Error("checkpoint: writing '" + tmp + "' failed (disk full?)");
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    std::remove(tmp.c_str());
    return Error("checkpoint: cannot rename '" + tmp + "' to '" + path + "': " + std::strerror(err));
  }
  return Status::Ok();
}

Result<CheckpointFile> ReadCheckpoint(const std::string& path) {
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
  CheckpointFile out;
  out.header = nlohmann::json::parse(text, nullptr, false);
  if (out.header.is_discarded() || !out.header.is_object() || out.header.value("format", "") != "asrc-checkpoint")
    return Error("checkpoint '" + path + "': the header is not asrc-checkpoint JSON");
  const std::streamoff data_start = f.tellg();
  f.seekg(0, std::ios::end);
  std::string data(static_cast<size_t>(f.tellg() - data_start), '\0');
  f.seekg(data_start);
  f.read(data.data(), static_cast<std::streamsize>(data.size()));
  if (!f) return Error("checkpoint '" + path + "': cannot read the data block");
  try {
    if (!out.header.at("step").is_number_integer() || out.header.at("step").get<int64_t>() < 0)
      return Error("checkpoint '" + path + "': 'step' is not an integer >= 0");
    for (const auto& e : out.header.at("tensors")) {
      CheckpointEntry c{e.at("name").get<std::string>(), e.at("group").get<std::string>(), {}};
      const ir::Shape shape = e.at("shape").get<ir::Shape>();
      for (int64_t d : shape)
        if (d < 0) return Error("checkpoint '" + path + "': tensor '" + c.name + "' has a negative dimension");
      c.tensor = ir::Tensor(ir::DType::Float32, shape);
      const uint64_t off = e.at("offset").get<uint64_t>();
      if (e.at("dtype").get<std::string>() != "float32" || e.at("nbytes").get<uint64_t>() != c.tensor.nbytes() ||
          off > data.size() || c.tensor.nbytes() > data.size() - off)
        return Error("checkpoint '" + path + "': tensor '" + c.name + "' (" + c.group + ") is truncated or not float32");
      std::memcpy(c.tensor.raw(), data.data() + off, c.tensor.nbytes());
      ASRC_RETURN_IF_ERROR(CheckEntry(path, e, c));
      out.entries.push_back(std::move(c));
    }
  } catch (const nlohmann::json::exception& e) {
    return Error("checkpoint '" + path + "': bad header: " + e.what());
  }
  return out;
}

Status CheckCheckpointTarget(const std::string& path, const std::vector<std::string>& inputs) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::is_directory(path, ec)) return Error("checkpoint '" + path + "' is a folder; give a file path");
  const fs::path target = fs::weakly_canonical(fs::absolute(path), ec);
  for (const std::string& in : inputs) {
    if (in.empty()) continue;
    const fs::path i = fs::weakly_canonical(fs::absolute(in), ec);
    const std::string rel = target.lexically_relative(i).string();
    if (fs::equivalent(path, in, ec) || target == i || (fs::is_directory(i, ec) && !rel.empty() && rel.rfind("..", 0) != 0))
      return Error("checkpoint '" + path + "' would overwrite the input '" + in + "'; choose another path");
  }
  if (!fs::exists(path, ec)) return Status::Ok();
  std::ifstream f(path, std::ios::binary);
  char magic[8] = {};
  f.read(magic, 8);
  if (!f || std::memcmp(magic, kMagic, 8) != 0)
    return Error("checkpoint '" + path + "' exists and is not an asrc checkpoint; refusing to overwrite it");
  return Status::Ok();
}

std::vector<CheckpointEntry> ParameterEntries(const std::vector<std::string>& names,
                                              const std::vector<const ir::Tensor*>& weights, const AdamW* adam) {
  std::vector<CheckpointEntry> entries;
  for (size_t k = 0; k < weights.size(); ++k) entries.push_back({names[k], "weight", *weights[k]});
  if (adam)
    for (size_t k = 0; k < adam->exp_avg().size(); ++k) {
      entries.push_back({names[k], "exp_avg", adam->exp_avg()[k]});
      entries.push_back({names[k], "exp_avg_sq", adam->exp_avg_sq()[k]});
    }
  return entries;
}

Status TakeGroup(const std::string& path, const CheckpointFile& file, const std::string& group,
                 const std::vector<std::string>& names, const std::vector<ir::Shape>& shapes, bool required,
                 std::vector<ir::Tensor>* out) {
  std::map<std::string, size_t> index;
  for (size_t k = 0; k < names.size(); ++k) index[names[k]] = k;
  std::vector<ir::Tensor> got(names.size());
  bool any = false;
  for (const CheckpointEntry& e : file.entries) {
    if (e.group != group) continue;
    any = true;
    auto it = index.find(e.name);
    if (it == index.end()) return Error("checkpoint '" + path + "': tensor '" + e.name + "' is not a trainable here");
    if (e.tensor.shape() != shapes[it->second])
      return Error("checkpoint '" + path + "': '" + e.name + "' has shape " + ir::ShapeStr(e.tensor.shape()) +
                   ", the model " + ir::ShapeStr(shapes[it->second]));
    got[it->second] = e.tensor;
  }
  out->clear();
  if (!any && !required) return Status::Ok();
  for (size_t k = 0; k < names.size(); ++k)
    if (!got[k].defined()) return Error("checkpoint '" + path + "': no " + group + " for '" + names[k] + "'");
  *out = std::move(got);
  return Status::Ok();
}

Status RestoreParameters(const std::string& path, const CheckpointFile& file, const std::vector<std::string>& names,
                         std::vector<ir::Tensor>* weights, AdamW* adam) {
  std::vector<ir::Shape> shapes;
  for (const ir::Tensor& w : *weights) shapes.push_back(w.shape());
  for (const CheckpointEntry& e : file.entries)
    if (e.group != "weight" && e.group != "exp_avg" && e.group != "exp_avg_sq" && e.group != "best")
      return Error("checkpoint '" + path + "': tensor '" + e.name + "' has unknown group '" + e.group + "'");
  std::vector<ir::Tensor> w, m, v;
  ASRC_RETURN_IF_ERROR(TakeGroup(path, file, "weight", names, shapes, true, &w));
  const int64_t steps = file.header.at("step").get<int64_t>();
  if (steps > 0) {
    Status sm = TakeGroup(path, file, "exp_avg", names, shapes, true, &m);
    Status sv = TakeGroup(path, file, "exp_avg_sq", names, shapes, true, &v);
    if (!sm.ok() || !sv.ok())
      return Error("checkpoint '" + path + "': no optimizer state at step " + std::to_string(steps) + " (" +
                   (sm.ok() ? sv : sm).message() + ")");
  }
  *weights = std::move(w);
  adam->exp_avg() = std::move(m);
  adam->exp_avg_sq() = std::move(v);
  adam->set_steps(steps);
  return Status::Ok();
}

}  // namespace asrc::train
