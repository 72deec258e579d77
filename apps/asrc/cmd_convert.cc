// asrc convert IN OUT: load a model (file or bundle) and write it back (file or bundle).
// Refuses to write over its input, and to replace a folder that holds anything but a bundle's
// files. The written files pass the ONNX checker.
#include <iostream>
#include <map>

#include "cli_checks.h"
#include "commands.h"
#include "core/interrupts.h"
#include "onnx/onnx_io.h"
#include "output_safety.h"

namespace asrc::app {

void AddConvertCommand(CLI::App& root, CommandSet& set) {
  auto* sub = root.add_subcommand("convert", "Load a model (.onnx or bundle folder) and write it back");
  struct Opts {
    std::string in, out;
    int64_t external_threshold = 0;
    bool bundle = false;
    bool no_check = false;
  };
  auto o = std::make_shared<Opts>();
  sub->add_option("IN", o->in, "input .onnx file or bundle folder")->required();
  sub->add_option("OUT", o->out, "output .onnx file or bundle folder")->required();
  sub->add_option("--external-threshold", o->external_threshold,
                  "write initializers of at least this many bytes to external data (0 = inline)");
  sub->add_flag("--bundle", o->bundle, "write a bundle folder even for a single graph");
  sub->add_flag("--no-check", o->no_check,
                "skip the ONNX checker on the written files (for inputs newer than the checker, opset > 17)");
  set.add(sub, [o]() {
    if (o->external_threshold < 0)
      return Fail("convert: --external-threshold " + std::to_string(o->external_threshold) + ": must be >= 0");
    Status safe = RefuseOverInputs(o->out, {o->in}, "convert: output");
    if (safe.ok()) safe = CheckReplaceableBundleFolder(o->out);
    if (!safe.ok()) return Fail(safe.message());
    Status input = CheckInputPath(o->in, "input", true);
    if (!input.ok()) return Fail("convert: " + input.message());
    auto m = onnx_io::LoadModel(o->in);
    if (!m.ok()) return Fail(m.status().message());
    if (o->bundle) m->is_bundle = true;
    // Two roles naming one file load fine but cannot be written back; say so about IN, not OUT.
    std::map<std::string, std::string> role_of;
    for (const auto& g : m->graphs)
      if (!g.file.empty() && !role_of.emplace(g.file, g.role).second)
        return Fail("convert: " + o->in + ": model.json: graphs '" + role_of[g.file] + "' and '" + g.role +
                    "' both name '" + g.file + "'; a bundle keeps one file per graph");
    onnx_io::SaveOptions opt;
    opt.external_threshold = static_cast<size_t>(o->external_threshold);
    opt.check = !o->no_check;
    Status st = [&] {
      HoldInterrupts hold;  // Ctrl-C in the save: the save finishes (or is undone), then asrc stops
      return onnx_io::SaveModel(m.value(), o->out, opt);
    }();
    if (!st.ok()) {
      // The checker runs on the written copy, so its message names OUT; the model came from IN.
      const std::string& msg = st.message();
      size_t at = msg.find("ONNX checker:");
      if (at != std::string::npos)
        return Fail("convert: " + o->in + ": the model fails the " + msg.substr(at) + " (nothing written to " +
                    o->out + "; --no-check skips the check)");
      return Fail(msg);
    }
    std::cout << "wrote " << o->out << ": " << m->graphs.size() << " graph(s), " << m->ParamsTotal()
              << " params, " << m->BytesUnique() << " bytes unique\n";
    return 0;
  });
}

}  // namespace asrc::app
