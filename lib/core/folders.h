// Which existing folders an asrc command may replace with a bundle it writes (convert, export,
// compress's model/): README "Never deletes what it did not write".
#pragma once

#include <filesystem>
#include <string>

#include "core/status.h"

namespace asrc {

// OK when `dir` does not exist, is an empty folder, or holds only the files of a bundle
// (model.json, tokens.txt, *.onnx, *.data, *.bin) — the folders a bundle save may replace. A
// path that exists and is not a folder is left to the caller.
inline Status CheckReplaceableBundleFolder(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::exists(dir, ec)) return Status::Ok();
  if (!fs::is_directory(dir, ec)) return Status::Ok();  // a file: the save decides
  bool has_config = false;
  std::string foreign;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string n = e.path().filename().string();
    const std::string ext = e.path().extension().string();
    bool own = e.is_regular_file(ec) &&
               (n == "model.json" || n == "tokens.txt" || ext == ".onnx" || ext == ".data" || ext == ".bin");
    if (n == "model.json") has_config = true;
    if (!own && foreign.empty()) foreign = n;
  }
  if (ec) return Error(dir + ": cannot list folder (" + ec.message() + ")");
  bool empty = fs::is_empty(dir, ec);
  if (empty) return Status::Ok();
  if (!foreign.empty())
    return Error(dir + ": folder holds '" + foreign +
                 "', which is not part of a bundle; refusing to replace it (choose a new or empty folder)");
  if (!has_config)
    return Error(dir + ": folder is not empty and is not a bundle (no model.json); refusing to replace it");
  return Status::Ok();
}

}  // namespace asrc
