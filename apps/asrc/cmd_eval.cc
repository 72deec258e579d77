// asrc eval [MODEL] --data MANIFEST.jsonl [--split NAME] [--mode streaming|lookahead|both]
//           [--beam N] [--threads N] [--limit N] [--json FILE] [--shard I/N] [--alignments]
// Word/character error rates and latency of a bundle on a NeMo-style manifest (asr::Evaluate).
// Prints a summary table; --json writes the report (keys in lib/asr/eval.h). With --shard I/N
// only every N-th utterance (from the I-th) is run and --json gets a partial report for
// `asrc eval-merge`, recording what it evaluated (model and manifest hashes, options).
// An unreadable utterance fails the run unless --skip-unreadable; a WER over zero reference words
// is an error, not 0; --json never overwrites an input and is written atomically.
#include <unistd.h>

#include <iostream>
#include <memory>

#include "asr/eval.h"
#include "cli_checks.h"
#include "commands.h"
#include "core/paths.h"
#include "output_safety.h"
#include "onnx/onnx_io.h"

namespace asrc::app {

namespace {
bool ParseShard(const std::string& s, int* index, int* count) {
  size_t slash = s.find('/');
  if (slash == std::string::npos) return false;
  try {
    size_t a = 0, b = 0;
    *index = std::stoi(s.substr(0, slash), &a);
    *count = std::stoi(s.substr(slash + 1), &b);
    if (a != slash || b != s.size() - slash - 1) return false;
  } catch (const std::exception&) {
    return false;
  }
  return *count >= 1 && *index >= 0 && *index < *count;
}
}  // namespace

void AddEvalCommand(CLI::App& root, CommandSet& set) {
  auto* sub = root.add_subcommand("eval", "WER/CER and latency of a bundle on a manifest (streaming and look-ahead)");
  struct Opts {
    std::string model, data, split, json, shard;
    DecodeFlags decode{"both"};
    int limit = 0;
    bool alignments = false, keep_case = false, keep_punct = false, no_progress = false;
    bool skip_unreadable = false;
  };
  auto o = std::make_shared<Opts>();
  sub->add_option("MODEL", o->model, "Bundle folder (default: the demo teacher, experiments/teacher/bundle)");
  sub->add_option("--data", o->data, "NeMo-style JSONL manifest (default: experiments/data/default_eval/manifest.jsonl)");
  sub->add_option("--split", o->split, "Keep only manifest lines whose \"split\" is this");
  AddDecodeOptions(sub, &o->decode);
  sub->add_option("--limit", o->limit, "Evaluate only the first N utterances (after --split)");
  CLI::Option* json_opt = sub->add_option("--json", o->json, "Write the report as JSON to this file");
  sub->add_option("--shard", o->shard, "I/N: evaluate shard I of N (writes a partial report for eval-merge)");
  sub->add_flag("--alignments", o->alignments, "Per-utterance word alignments in the JSON report");
  sub->add_flag("--keep-case", o->keep_case, "WER: do not lowercase");
  sub->add_flag("--keep-punctuation", o->keep_punct, "WER: do not strip punctuation");
  sub->add_flag("--no-progress", o->no_progress, "No progress bar");
  sub->add_flag("--skip-unreadable", o->skip_unreadable,
                "Score the utterances whose audio can be read and report the others as failed "
                "(default: an unreadable utterance fails the run)");
  set.add(sub, [o, json_opt]() {
    std::string model = o->model.empty() ? RepoPath("experiments/teacher/bundle") : o->model;
    std::string data = o->data.empty() ? RepoPath("experiments/data/default_eval/manifest.jsonl") : o->data;
    const DecodeFlags& d = o->decode;
    asr::EvalOptions eo;
    eo.streaming = d.mode != "lookahead";
    eo.lookahead = d.mode != "streaming";
    eo.beam = d.beam;
    eo.max_symbols_per_frame = d.max_symbols;
    eo.limit = o->limit;
    eo.split = o->split;
    eo.alignments = o->alignments;
    eo.normalize.lowercase = !o->keep_case;
    eo.normalize.strip_punctuation = !o->keep_punct;
    eo.progress = !o->no_progress;
    eo.skip_unreadable = o->skip_unreadable;
    Status flags = CheckDecodeFlags("eval", &o->decode);
    if (!flags.ok()) return Fail(flags.message());
    eo.threads = d.threads;
    eo.lookahead_segment_s = d.segment_s;
    eo.lookahead_context_s = d.context_s;
    if (o->limit < 0) return Fail("eval: --limit must be >= 0");
    if (!o->shard.empty()) {
      if (!ParseShard(o->shard, &eo.shard_index, &eo.shard_count))
        return Fail("eval: --shard '" + o->shard + "': expected I/N with 0 <= I < N");
      if (o->json.empty()) return Fail("eval: --shard needs --json (the partial report for eval-merge)");
    }
    for (Status st : {CheckInputPath(data, "manifest", false), CheckInputPath(model, "model", true)})
      if (!st.ok()) return Fail("eval: " + st.message());
    if (json_opt->count() > 0 && o->json.empty()) return Fail("eval: --json is empty; give a file");
    if (!o->json.empty()) {
      for (Status st : {RefuseOverInputs(o->json, {model, data}, "eval: --json"),
                        RefuseReplacingNonReport(o->json, "eval: --json")})
        if (!st.ok()) return Fail(st.message());
    }
    auto m = onnx_io::LoadModel(model);
    if (!m.ok()) return Fail(m.status().message());
    // model.json's errors say "model.json: <key>": name the bundle too.
    if (auto cfg = asr::BundleConfig::FromModel(m.value()); !cfg.ok())
      return Fail("eval: " + model + ": " + cfg.status().message());
    auto model_hash = ContentHash(model);
    auto data_hash = ContentHash(data);
    if (!model_hash.ok()) return Fail(model_hash.status().message());
    if (!data_hash.ok()) return Fail(data_hash.status().message());
    auto r = asr::Evaluate(m.value(), data, eo);
    // Manifest and audio errors name their files, model errors their graph or model.json.
    if (!r.ok()) return Fail("eval: " + r.status().message());
    r->provenance["model_hash"] = model_hash.value();
    r->provenance["manifest_hash"] = data_hash.value();
    std::cout << "model: " << model << "\ndata:  " << data
              << (o->split.empty() ? "" : " (split " + o->split + ")")
              << (eo.shard_count > 1 ? " shard " + o->shard : "") << "\n";
    std::cout << asr::FormatSummary(r.value());
    Status scored = r->partial ? Status::Ok() : asr::RequireScoredWords(r.value());
    if (!scored.ok()) return Fail("eval: " + data + ": " + scored.message());
    int64_t failed = r->streaming ? r->streaming->failed_utterances : r->lookahead->failed_utterances;
    if (failed > 0)
      std::cerr << "asrc: eval: skipped " << failed << " unreadable utterance(s) (listed in --json)\n";
    if (!o->json.empty()) {
      Status st = WriteFileAtomic(o->json, r->ToJson().dump(2) + "\n");
      if (!st.ok()) return Fail(st.message());
    }
    return 0;
  });
}

}  // namespace asrc::app
