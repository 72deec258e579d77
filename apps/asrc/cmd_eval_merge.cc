// asrc eval-merge PARTIAL.json... --json OUT: combines the partial reports of a sharded
// `asrc eval --shard I/N` run (every shard exactly once) into the report an unsharded run gives.
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <utility>

#include "asr/eval.h"
#include "cli_checks.h"
#include "commands.h"
#include "output_safety.h"

namespace asrc::app {

namespace {

// The shards' own inputs are known only by their hashes (provenance model_hash, manifest_hash):
// an existing --json file with one of those contents is that manifest or model, not a report.
Status RefuseOverShardInputs(const std::string& json, const std::vector<asr::EvalReport>& parts) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(json, ec)) return Status::Ok();
  auto hash = ContentHash(json);
  if (!hash.ok()) return Status::Ok();  // unreadable: the write decides
  for (const asr::EvalReport& p : parts)
    for (auto [key, what] : {std::pair{"manifest_hash", "manifest"}, std::pair{"model_hash", "model"}})
      if (p.provenance.is_object() && p.provenance.value(key, "") == *hash)
        return Error("eval-merge: --json " + json + " holds the " + what + " the shards were evaluated on (its " +
                     "content hash is their " + key + "); choose another path");
  return Status::Ok();
}

}  // namespace

void AddEvalMergeCommand(CLI::App& root, CommandSet& set) {
  auto* sub = root.add_subcommand("eval-merge", "Merge the partial reports of a sharded asrc eval");
  struct Opts {
    std::vector<std::string> parts;
    std::string json;
  };
  auto o = std::make_shared<Opts>();
  sub->add_option("PARTIAL", o->parts, "Partial reports written by asrc eval --shard I/N --json")->required();
  sub->add_option("--json", o->json, "Write the merged report here")->required();
  set.add(sub, [o]() {
    if (o->json.empty()) return Fail("eval-merge: --json is empty; give a file");
    Status safe = RefuseOverInputs(o->json, o->parts, "eval-merge: --json");
    if (!safe.ok()) return Fail(safe.message());
    std::vector<asr::EvalReport> parts;
    for (const auto& p : o->parts) {
      Status input = CheckInputPath(p, "partial report", false);
      if (!input.ok()) return Fail("eval-merge: " + input.message());
      std::ifstream f(p);
      if (!f) return Fail(p + ": cannot open");
      nlohmann::json j;
      try {
        j = nlohmann::json::parse(f);
      } catch (const std::exception&) {
        return Fail(p + ": not valid JSON");
      }
      auto r = asr::EvalReport::FromJson(j);
      if (!r.ok()) return Fail(p + ": " + r.status().message());
      parts.push_back(std::move(r).value());
    }
    for (Status own : {RefuseOverShardInputs(o->json, parts), RefuseReplacingNonReport(o->json, "eval-merge: --json")})
      if (!own.ok()) return Fail(own.message());
    auto merged = asr::MergeReports(parts);
    if (!merged.ok()) {
      // MergeReports names shards by index; say which file each one is.
      std::string files;
      for (size_t i = 0; i < parts.size(); ++i)
        files += (i ? ", " : "") + std::to_string(parts[i].shard_index) + " = " + o->parts[i];
      return Fail(merged.status().message() + " (shards: " + files + ")");
    }
    std::cout << asr::FormatSummary(merged.value());
    Status scored = asr::RequireScoredWords(merged.value());
    if (!scored.ok()) return Fail("eval-merge: " + scored.message());
    Status st = WriteFileAtomic(o->json, merged->ToJson().dump(2) + "\n");
    return st.ok() ? 0 : Fail(st.message());
  });
}

}  // namespace asrc::app
