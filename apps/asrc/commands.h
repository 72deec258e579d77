// Subcommand registration for the asrc CLI. Each cmd_<name>.cc defines one Add<Name>Command that
// adds a CLI11 subcommand and the function that runs it (returning the process exit code).
// main.cc lists them explicitly.
#pragma once

#include <functional>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>

namespace asrc::app {

struct CommandSet {
  std::vector<std::pair<CLI::App*, std::function<int()>>> entries;
  void add(CLI::App* sub, std::function<int()> run) { entries.emplace_back(sub, std::move(run)); }
};

// Prints "asrc: <message>" to stderr and returns exit code 1.
int Fail(const std::string& message);

void AddInspectCommand(CLI::App& root, CommandSet& set);
void AddConvertCommand(CLI::App& root, CommandSet& set);
void AddTranscribeCommand(CLI::App& root, CommandSet& set);
void AddEvalCommand(CLI::App& root, CommandSet& set);
void AddEvalMergeCommand(CLI::App& root, CommandSet& set);
void AddRunCommand(CLI::App& root, CommandSet& set);
void AddBenchCommand(CLI::App& root, CommandSet& set);
void AddPassesCommand(CLI::App& root, CommandSet& set);
void AddCompressCommand(CLI::App& root, CommandSet& set);
void AddAblateCommand(CLI::App& root, CommandSet& set);
void AddTrainCommand(CLI::App& root, CommandSet& set);
void AddExportCommand(CLI::App& root, CommandSet& set);

}  // namespace asrc::app
