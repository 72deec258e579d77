// Writing a file whole or not at all (README "Whole or not at all"): to a temporary sibling,
// fsync'd and renamed into place; the temporary is removed on an error and on SIGINT or SIGTERM
// during the write. Used by every report and JSON output of asrc (eval, eval-merge, compress,
// ablate).
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "core/interrupts.h"
#include "core/status.h"

namespace asrc {
namespace files_detail {

// The temporary being written, for the SIGINT/SIGTERM handler: an interrupted write leaves nothing.
inline char g_temp_path[4096];

extern "C" inline void AsrcRemoveTempAndDie(int sig) {
  if (g_temp_path[0]) ::unlink(g_temp_path);
  std::signal(sig, SIG_DFL);
  std::raise(sig);
}

// Installs the handler for the life of one write; restores the previous ones after. Inside a
// HoldInterrupts (core/interrupts.h) the signal is already held until the caller has finished or
// undone all of its writes, so the guard stands aside.
class TempGuard {
 public:
  explicit TempGuard(const std::string& tmp) {
    struct sigaction current {};
    sigaction(SIGINT, nullptr, &current);
    active_ = current.sa_handler != AsrcNoteSignal;
    if (!active_) return;
    std::snprintf(g_temp_path, sizeof g_temp_path, "%s", tmp.c_str());
    old_int_ = std::signal(SIGINT, AsrcRemoveTempAndDie);
    old_term_ = std::signal(SIGTERM, AsrcRemoveTempAndDie);
  }
  ~TempGuard() {
    if (!active_) return;
    std::signal(SIGINT, old_int_);
    std::signal(SIGTERM, old_term_);
    g_temp_path[0] = '\0';
  }
  TempGuard(const TempGuard&) = delete;
  TempGuard& operator=(const TempGuard&) = delete;

 private:
  bool active_ = false;
  void (*old_int_)(int) = nullptr;
  void (*old_term_)(int) = nullptr;
};

}  // namespace files_detail

// Writes `content` to `path` atomically. Errors name the path and the reason (full disk, ...).
inline Status WriteFileAtomic(const std::string& path, const std::string& content) {
  namespace fs = std::filesystem;
  fs::path target(path);
  std::string dir = target.parent_path().empty() ? "." : target.parent_path().string();
  std::string tmpl = dir + "/." + target.filename().string() + ".tmp.XXXXXX";
  std::vector<char> name(tmpl.begin(), tmpl.end());
  name.push_back('\0');
  int fd = ::mkstemp(name.data());
  if (fd < 0) return Error(path + ": cannot write (" + std::strerror(errno) + ")");
  const std::string tmp(name.data());
  files_detail::TempGuard guard(tmp);
  auto fail = [&](const char* step, int err) {
    ::close(fd);
    ::unlink(tmp.c_str());
    return Error(path + ": " + step + " failed (" + std::strerror(err) + "); nothing written");
  };
  size_t off = 0;
  while (off < content.size()) {
    ssize_t n = ::write(fd, content.data() + off, content.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return fail("write", n < 0 ? errno : ENOSPC);
    off += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) return fail("fsync", errno);
  // mkstemp creates 0600; give the file the permissions a plain create would.
  mode_t mask = ::umask(0);
  ::umask(mask);
  ::fchmod(fd, 0666 & ~mask);
  if (::close(fd) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return Error(path + ": close failed (" + std::strerror(err) + "); nothing written");
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return Error(path + ": cannot write (" + std::strerror(err) + ")");
  }
  return Status::Ok();
}

}  // namespace asrc
