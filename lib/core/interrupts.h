// SIGINT and SIGTERM held off while a command writes its outputs (compress, convert, export, run):
// the write finishes or is undone, then the signal takes effect with its default action, so an
// interrupt never leaves a half-written file or folder (or its temporary) behind.
#pragma once

#include <signal.h>

#include <csignal>

namespace asrc {

inline volatile std::sig_atomic_t g_caught_signal = 0;
extern "C" inline void AsrcNoteSignal(int sig) { g_caught_signal = sig; }

// Catches SIGINT and SIGTERM (by whichever thread receives them) for its lifetime.
class HoldInterrupts {
 public:
  HoldInterrupts() {
    g_caught_signal = 0;
    struct sigaction sa {};
    sa.sa_handler = AsrcNoteSignal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int_);
    sigaction(SIGTERM, &sa, &old_term_);
  }
  // Restores the previous handlers and delivers a signal caught meanwhile.
  ~HoldInterrupts() {
    sigaction(SIGINT, &old_int_, nullptr);
    sigaction(SIGTERM, &old_term_, nullptr);
    if (g_caught_signal) std::raise(g_caught_signal);
  }
  HoldInterrupts(const HoldInterrupts&) = delete;
  HoldInterrupts& operator=(const HoldInterrupts&) = delete;
  bool caught() const { return g_caught_signal != 0; }

 private:
  struct sigaction old_int_ {}, old_term_ {};
};

}  // namespace asrc
