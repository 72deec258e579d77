// Small helpers the tests share for talking to outside references: raw float32 files (the format
// the node/python reference scripts read and write), their largest difference, and running a
// command with its output captured.
#pragma once

#include <doctest/doctest.h>
#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace asrc::test {

inline std::vector<float> ReadF32(const std::string& path) {
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  std::vector<float> v(static_cast<size_t>(f.tellg()) / sizeof(float));
  f.seekg(0);
  f.read(reinterpret_cast<char*>(v.data()), v.size() * sizeof(float));
  return v;
}

inline void WriteF32(const std::string& path, const std::vector<float>& v) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
}

// Largest |a - b|; infinity when the sizes differ.
inline double MaxDiff(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return INFINITY;
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, double(std::fabs(a[i] - b[i])));
  return m;
}

struct CommandOut {
  int code;          // exit status, -1 when killed
  std::string text;  // stdout and stderr together
};

inline CommandOut RunCommand(const std::string& cmd) {
  CommandOut o{0, ""};
  FILE* f = popen((cmd + " 2>&1").c_str(), "r");
  REQUIRE(f);
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) o.text.append(buf, n);
  int st = pclose(f);
  o.code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return o;
}

// Runs a reference script that prints JSON (`cmd`, without redirection): the test fails when it
// fails; its output is kept in `json_path` (for the caller to remove) and returned parsed.
inline nlohmann::json RunForJson(const std::string& cmd, const std::string& json_path) {
  REQUIRE_MESSAGE(std::system((cmd + " > " + json_path).c_str()) == 0, cmd);
  nlohmann::json j;
  std::ifstream(json_path) >> j;
  return j;
}

}  // namespace asrc::test
