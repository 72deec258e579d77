// asrc convert IN OUT: load a model (file or bundle) and write it back (file or bundle).
// Refuses to write over its input. The written files pass the ONNX checker.
#include <filesystem>
#include <iostream>

#include "commands.h"
#include "onnx/onnx_io.h"

namespace asrc::app {
namespace {
namespace fs = std::filesystem;

std::string canonical_or_self(const std::string& p) {
  std::error_code ec;
  fs::path c = fs::weakly_canonical(fs::absolute(p, ec), ec);
  std::string s = ec ? p : c.string();
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  return s;
}

// True when writing `out` could clobber the input `in` (same path, or one inside the other).
bool overlaps(const std::string& in, const std::string& out) {
  std::string a = canonical_or_self(in), b = canonical_or_self(out);
  if (a == b) return true;
  auto inside = [](const std::string& x, const std::string& dir) {
    return x.size() > dir.size() && x.compare(0, dir.size(), dir) == 0 && x[dir.size()] == '/';
  };
  std::error_code ec;
  if (fs::is_directory(in, ec) && inside(b, a)) return true;
  if (inside(a, b)) return true;  // OUT would replace the folder holding IN
  return false;
}
}  // namespace

void AddConvertCommand(CLI::App& root, CommandSet& set) {
  auto* sub = root.add_subcommand("convert", "Load a model (.onnx or bundle folder) and write it back");
  struct Opts {
    std::string in, out;
    size_t external_threshold = 0;
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
    if (overlaps(o->in, o->out)) return Fail("convert: output " + o->out + " would overwrite the input " + o->in);
    auto m = onnx_io::LoadModel(o->in);
    if (!m.ok()) return Fail(m.status().message());
    if (o->bundle) m->is_bundle = true;
    onnx_io::SaveOptions opt;
    opt.external_threshold = o->external_threshold;
    opt.check = !o->no_check;
    Status st = onnx_io::SaveModel(m.value(), o->out, opt);
    if (!st.ok()) return Fail(st.message());
    std::cout << "wrote " << o->out << ": " << m->graphs.size() << " graph(s), " << m->params_total()
              << " params, " << m->bytes_unique() << " bytes unique\n";
    return 0;
  });
}

}  // namespace asrc::app
