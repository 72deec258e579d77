// asrc export --format sherpa-onnx BUNDLE DIR: a bundle with a stateless decoder in sherpa-onnx's
// offline transducer layout (encoder.onnx, decoder.onnx, joiner.onnx, tokens.txt; passes/
// sherpa_export.h), a cascade merged into one look-ahead encoder. DIR also gets a model.json, so
// `asrc eval DIR` runs the export as sherpa-onnx does. Refuses to write over its input.
#include <iostream>

#include "cli_checks.h"
#include "commands.h"
#include "core/interrupts.h"
#include "onnx/onnx_io.h"
#include "output_safety.h"
#include "passes/sherpa_export.h"

namespace asrc::app {

void AddExportCommand(CLI::App& root, CommandSet& set) {
  auto* sub = root.add_subcommand("export", "Write a bundle in another runtime's layout (sherpa-onnx)");
  struct Opts {
    std::string format = "sherpa-onnx", in, out;
  };
  auto o = std::make_shared<Opts>();
  sub->add_option("--format", o->format, "Target layout: sherpa-onnx (offline transducer)")
      ->check(CLI::IsMember({"sherpa-onnx"}));
  sub->add_option("BUNDLE", o->in, "input bundle folder")->required();
  sub->add_option("DIR", o->out, "output folder")->required();
  set.add(sub, [o]() {
    Status safe = RefuseOverInputs(o->out, {o->in}, "export: output");
    if (safe.ok()) safe = CheckReplaceableBundleFolder(o->out);
    if (!safe.ok()) return Fail(safe.message());
    Status input = CheckInputPath(o->in, "bundle", true);
    if (!input.ok()) return Fail("export: " + input.message());
    auto m = onnx_io::LoadModel(o->in);
    if (!m.ok()) return Fail(m.status().message());
    auto e = passes::ExportSherpaOnnx(m.value());
    if (!e.ok()) return Fail("export: " + o->in + ": " + e.status().message());
    Status st = [&] {
      HoldInterrupts hold;  // Ctrl-C in the save: the save finishes (or is undone), then asrc stops
      return onnx_io::SaveModel(e->model, o->out);
    }();
    if (!st.ok()) return Fail("export: " + st.message());
    std::cout << "wrote " << o->out << " (sherpa-onnx offline transducer: encoder.onnx, decoder.onnx, "
              << "joiner.onnx, tokens.txt; model.json for asrc): " << e->model.BytesUnique() << " bytes of weights"
              << (e->chunk_frames > 0 ? ", cascade merged into one look-ahead encoder (Loop over " +
                                            std::to_string(e->chunk_frames) + "-frame chunks)"
                                      : std::string())
              << ", feature offset " << e->feature_offset << "\n";
    return 0;
  });
}

}  // namespace asrc::app
