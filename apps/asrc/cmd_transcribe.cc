// asrc transcribe [MODEL] AUDIO... [--mode streaming|lookahead|both]: prints one line per file,
// "<file>\t<text>" (with --mode both: "<file>\tstreaming\t<text>" and "<file>\tlookahead\t<text>").
// MODEL (a bundle folder) defaults to the committed demo teacher. A file that cannot be read is
// reported on stderr and the others still run; the exit code is then 1.
#include <cstdio>
#include <iostream>
#include <memory>

#include "asr/stream.h"
#include "cli_checks.h"
#include "commands.h"
#include "core/paths.h"
#include "onnx/onnx_io.h"

namespace asrc::app {

void AddTranscribeCommand(CLI::App& root, CommandSet& set) {
  auto* sub = root.add_subcommand("transcribe", "Transcribe audio files with a transducer bundle");
  struct Opts {
    std::vector<std::string> args;
    std::string model;
    DecodeFlags decode{"lookahead"};
    bool timing = false;
  };
  auto o = std::make_shared<Opts>();
  sub->add_option("ARGS", o->args, "[MODEL] AUDIO... (MODEL: bundle folder; default the demo teacher)")
      ->required();
  sub->add_option("--model", o->model, "Bundle folder (instead of the first argument)");
  AddDecodeOptions(sub, &o->decode);
  sub->add_flag("--timing", o->timing, "Also print the real-time factor per file on stderr");
  set.add(sub, [o]() {
    std::vector<std::string> audio = o->args;
    std::string model = o->model;
    // A folder first is the model (an audio path is never a folder): one without model.json is an
    // error naming it, not the default teacher run on the rest.
    if (model.empty() && !audio.empty() &&
        (PathExists(audio[0] + "/.") || (audio[0].size() > 5 && audio[0].substr(audio[0].size() - 5) == ".onnx"))) {
      model = audio[0];
      audio.erase(audio.begin());
    }
    if (model.empty()) model = RepoPath("experiments/teacher/bundle");
    if (audio.empty()) return Fail("transcribe: no audio files given");
    Status flags = CheckDecodeFlags("transcribe", &o->decode);
    if (!flags.ok()) return Fail(flags.message());
    const DecodeFlags& d = o->decode;
    Status input = CheckInputPath(model, "model", true);
    if (!input.ok()) return Fail("transcribe: " + input.message());
    auto m = onnx_io::LoadModel(model);
    if (!m.ok()) return Fail(m.status().message());
    asr::RecognizerOptions ro;
    ro.threads = d.threads;
    ro.search.beam = d.beam;
    ro.search.max_symbols_per_frame = d.max_symbols;
    ro.lookahead_segment_s = d.segment_s;
    ro.lookahead_context_s = d.context_s;
    auto rec = asr::Recognizer::Create(m.value(), ro);
    if (!rec.ok()) return Fail(model + ": " + rec.status().message());
    auto& r = *rec.value();
    bool want_stream = d.mode != "lookahead", want_look = d.mode != "streaming";
    if (want_stream && !r.has_streaming()) {
      if (d.mode == "streaming")
        return Fail("transcribe: this bundle has no causal encoder (no streaming mode)");
      want_stream = false;
    }
    int failures = 0;
    for (const auto& path : audio) {
      // Read block by block: memory stays flat in the audio's length (asr::Recognizer::RecognizeFile).
      auto res = r.RecognizeFile(path, want_stream, want_look);
      if (!res.ok()) {
        std::cerr << "asrc: " << res.status().message() << "\n";
        ++failures;
        continue;
      }
      if (d.mode == "both") {
        if (want_stream) std::cout << path << "\tstreaming\t" << res->streaming_text << "\n";
        std::cout << path << "\tlookahead\t" << res->lookahead_text << "\n";
      } else {
        std::cout << path << "\t" << (want_stream ? res->streaming_text : res->lookahead_text) << "\n";
      }
      if (o->timing) {
        double secs = double(res->samples) / r.config().frontend.sample_rate;
        std::fprintf(stderr,
                     "%s: %.2f s audio, RTF streaming %.4f, look-ahead %.4f, final %.1f ms, "
                     "%lld look-ahead segments\n",
                     path.c_str(), secs, res->streaming_ms / 1000.0 / secs,
                     res->lookahead_ms / 1000.0 / secs, res->final_ms,
                     static_cast<long long>(res->lookahead_segments));
      }
    }
    return failures ? 1 : 0;
  });
}

}  // namespace asrc::app
