#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <new>
#include <string>

#include "commands.h"

namespace asrc::app {
int Fail(const std::string& message) {
  std::cerr << "asrc: " << message << "\n";
  return 1;
}

namespace {
// ASRC_MEMORY_BUDGET as lib/ir/tensor.cc reads it (a number, then at most one of K M G T): a value
// it cannot read is ignored there (the machine's memory is used), so it is an error here.
bool ValidMemoryBudget(const char* env) {
  char* end = nullptr;
  const double v = std::strtod(env, &end);
  if (end == env) return false;
  double unit = 1;
  if (*end) {
    const std::string units = "kKmMgGtT";
    const size_t u = units.find(*end);
    const std::string rest = end + 1;  // "8G", "8GB", "8GiB"
    if (u == std::string::npos || !(rest.empty() || rest == "B" || rest == "iB")) return false;
    unit = std::pow(1024.0, static_cast<double>(u / 2 + 1));
  }
  return v > 0 && v * unit < 1.8e19;
}
}  // namespace
}  // namespace asrc::app

int main(int argc, char** argv) {
  CLI::App app{"asrc — compress on-device speech recognizers (ONNX in, smaller ONNX out, measured)"};
  app.require_subcommand(1);
  asrc::app::CommandSet set;
  asrc::app::AddInspectCommand(app, set);
  asrc::app::AddConvertCommand(app, set);
  asrc::app::AddTranscribeCommand(app, set);
  asrc::app::AddEvalCommand(app, set);
  asrc::app::AddEvalMergeCommand(app, set);
  asrc::app::AddRunCommand(app, set);
  asrc::app::AddBenchCommand(app, set);
  asrc::app::AddPassesCommand(app, set);
  asrc::app::AddCompressCommand(app, set);
#if defined(HAVE_ASRC_PASSES)
  asrc::app::AddExportCommand(app, set);
#endif
  asrc::app::AddAblateCommand(app, set);
#if defined(HAVE_ASRC_TRAIN) && defined(HAVE_ASRC_ASR)
  asrc::app::AddTrainCommand(app, set);
#endif
  // Output lost to a full disk (`> /dev/full`) is a failure, not exit 0 (a closed pipe: SIGPIPE).
  auto stdout_lost = [] {
    std::cout.flush();
    return !std::cout || std::fflush(stdout) != 0 || std::ferror(stdout);
  };
  const char* lost = "cannot write to standard output (disk full or pipe closed)";
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);  // --help: the help on stdout, 0
    return stdout_lost() ? asrc::app::Fail(lost) : rc;
  }
  if (const char* env = std::getenv("ASRC_MEMORY_BUDGET"); env && *env && !asrc::app::ValidMemoryBudget(env))
    return asrc::app::Fail(std::string("ASRC_MEMORY_BUDGET '") + env +
                           "': expected a size such as 8G, 512M or 1073741824 (bytes)");
  for (auto& [sub, run] : set.entries) {
    if (!sub->parsed()) continue;
    int rc = 1;
    try {
      rc = run();
    } catch (const std::bad_alloc& e) {  // ir::MemoryBudgetError says what was asked for
      return asrc::app::Fail(sub->get_name() + ": out of memory: " + e.what());
    } catch (const std::exception& e) {  // not an abort: one line, and an exit code of its own
      asrc::app::Fail(sub->get_name() + ": internal error: " + e.what() +
                      " (a bug in asrc: please report it with the command line)");
      return 70;  // EX_SOFTWARE
    }
    if (stdout_lost()) return asrc::app::Fail(lost);
    return rc;
  }
  return 1;
}
