// Where the committed defaults live (demo teacher bundle, default eval set): relative to the
// source tree, found from $ASRC_SOURCE_DIR, else from the executable's location (build trees sit
// inside the source tree), else the current directory.
#pragma once

#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <string>

namespace asrc {

inline bool PathExists(const std::string& p) { return access(p.c_str(), F_OK) == 0; }

// `rel` (e.g. "experiments/teacher/bundle") resolved against the source tree root.
inline std::string RepoPath(const std::string& rel) {
  if (const char* env = std::getenv("ASRC_SOURCE_DIR"); env && *env) return std::string(env) + "/" + rel;
  char buf[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n > 0) {
    std::string dir(buf, static_cast<size_t>(n));
    while (true) {
      size_t s = dir.find_last_of('/');
      if (s == std::string::npos || s == 0) break;
      dir = dir.substr(0, s);
      if (PathExists(dir + "/docs/bundle.md") && PathExists(dir + "/experiments")) return dir + "/" + rel;
    }
  }
  return rel;
}

}  // namespace asrc
