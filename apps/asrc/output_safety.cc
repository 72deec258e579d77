#include "output_safety.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

namespace asrc::app {
namespace {
namespace fs = std::filesystem;

std::string CanonicalOrSelf(const std::string& p) {
  std::error_code ec;
  fs::path c = fs::weakly_canonical(fs::absolute(p, ec), ec);
  std::string s = ec ? p : c.string();
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  return s;
}

bool Inside(const std::string& x, const std::string& dir) {
  return x.size() > dir.size() && x.compare(0, dir.size(), dir) == 0 && x[dir.size()] == '/';
}

bool SameFile(const std::string& a, const std::string& b) {
  struct stat sa, sb;
  return ::stat(a.c_str(), &sa) == 0 && ::stat(b.c_str(), &sb) == 0 && sa.st_dev == sb.st_dev &&
         sa.st_ino == sb.st_ino;
}
}  // namespace

Status RefuseOverInputs(const std::string& out, const std::vector<std::string>& inputs,
                        const std::string& what) {
  if (out.empty()) return Error(what + " is empty; give a path");  // "" would mean the current folder
  const std::string o = CanonicalOrSelf(out);
  for (const auto& in : inputs) {
    if (in.empty()) continue;
    const std::string i = CanonicalOrSelf(in);
    std::error_code ec;
    bool clash = i == o || SameFile(in, out) || Inside(i, o) ||
                 (fs::is_directory(in, ec) && Inside(o, i));
    if (clash)
      return Error(what + " " + out + " would overwrite the input " + in + "; choose another path");
  }
  return Status::Ok();
}

Status CheckCanCreateFolder(const std::string& dir, const std::string& what) {
  if (dir.empty()) return Error(what + " is empty; give a folder");
  std::error_code ec;
  fs::path p = fs::absolute(dir, ec);
  while (!fs::exists(p, ec) && p.has_parent_path() && p != p.parent_path()) p = p.parent_path();
  if (!fs::is_directory(p, ec))
    return Error(what + " '" + dir + "': '" + p.string() + "' is not a folder");
  if (::access(p.c_str(), W_OK | X_OK) != 0)
    return Error(what + " '" + dir + "': cannot write in '" + p.string() + "' (" + std::strerror(errno) + ")");
  return Status::Ok();
}

Status RefuseReplacingNonReport(const std::string& path, const std::string& what) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0 || S_ISDIR(st.st_mode)) return Status::Ok();  // the write decides
  auto refuse = [&](const std::string& why) {
    return Error(what + " " + path + " exists and " + why + "; refusing to replace it (choose another path)");
  };
  if (!S_ISREG(st.st_mode)) return refuse("is not a regular file");
  if (st.st_size == 0) return Status::Ok();
  if (st.st_size > (int64_t{1} << 30)) return refuse("is not an asrc eval report (over 1 GiB)");
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::Ok();  // unreadable: the write decides
  nlohmann::json j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (j.is_object() && (j.contains("streaming") || j.contains("lookahead"))) return Status::Ok();
  return refuse("is not an asrc eval report");
}

Result<std::string> ContentHash(const std::string& path) {
  uint64_t h = 1469598103934665603ull;
  auto mix = [&h](const char* p, size_t n) {
    for (size_t i = 0; i < n; ++i) {
      h ^= static_cast<unsigned char>(p[i]);
      h *= 1099511628211ull;
    }
  };
  std::vector<fs::path> files;
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    for (const auto& e : fs::directory_iterator(path, ec))
      if (e.is_regular_file(ec)) files.push_back(e.path());
    std::sort(files.begin(), files.end());
  } else {
    files.push_back(path);
  }
  std::vector<char> buf(1 << 16);
  for (const auto& f : files) {
    if (files.size() > 1 || f != fs::path(path)) {
      std::string n = f.filename().string();
      mix(n.c_str(), n.size() + 1);
    }
    std::ifstream in(f, std::ios::binary);
    if (!in) return Error(f.string() + ": cannot read");
    while (in) {
      in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
      mix(buf.data(), static_cast<size_t>(in.gcount()));
    }
  }
  char out[17];
  std::snprintf(out, sizeof out, "%016llx", static_cast<unsigned long long>(h));
  return std::string(out);
}

}  // namespace asrc::app
