#include <cstdio>
#include <iostream>
#include <new>

#include "commands.h"

namespace asrc::app {
int Fail(const std::string& message) {
  std::cerr << "asrc: " << message << "\n";
  return 1;
}
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
  for (auto& [sub, run] : set.entries) {
    if (!sub->parsed()) continue;
    int rc = 1;
    try {
      rc = run();
    } catch (const std::bad_alloc& e) {  // ir::MemoryBudgetError says what was asked for
      return asrc::app::Fail(sub->get_name() + ": out of memory: " + e.what());
    }
    if (stdout_lost()) return asrc::app::Fail(lost);
    return rc;
  }
  return 1;
}
