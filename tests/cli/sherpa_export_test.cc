// `asrc export --format sherpa-onnx` end to end, checked by sherpa-onnx itself: a stateless
// student (the demo teacher with a stateless context-2 decoder, tests/passes/stateless_teacher.h)
// is exported, sherpa-onnx (npm sherpa-onnx-node, OfflineRecognizer, greedy) decodes a few
// default-eval utterances with it (tests/cli/sherpa_decode.js), and its hypotheses must equal
// `asrc eval --mode lookahead --max-symbols 1` on the exported folder utterance by utterance
// (same front end: waveform_scale 1 plus the encoder's offset). Against the source bundle the
// differences come from sherpa-onnx's front end only (its log floor on [-1, 1] samples): counted,
// and bounded. An LSTM bundle is refused naming its decoder.
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "doctest/doctest.h"
#include "onnx/onnx_io.h"
#include "passes/stateless_teacher.h"
#include "reference.h"
#include "test_io.h"

namespace fs = std::filesystem;
using namespace asrc;

namespace {

using Out = test::CommandOut;
using test::RunCommand;

Out Asrc(const std::string& args) { return RunCommand(std::string(ASRC_BIN) + " " + args); }

bool SherpaAvailable() {
  static const bool ok =
      std::system("node -e \"require('" ASRC_SOURCE_DIR
                  "/third_party/ort/node_modules/sherpa-onnx-node')\" >/dev/null 2>&1") == 0 &&
      std::system("flac --version >/dev/null 2>&1") == 0;
  return ok;
}

// Lowercase, single spaces, trimmed: sherpa-onnx writes "▁" as a space and keeps case.
std::string Norm(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == ' ' || c == '\t') {
      if (!o.empty() && o.back() != ' ') o.push_back(' ');
    } else {
      o.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    }
  }
  while (!o.empty() && o.back() == ' ') o.pop_back();
  return o;
}

std::map<std::string, std::string> AsrcHyps(const fs::path& json) {
  nlohmann::json j;
  std::ifstream(json) >> j;
  std::map<std::string, std::string> m;
  for (const auto& u : j["lookahead"]["per_utterance"]) m[u["id"]] = Norm(u["hypothesis"]);
  return m;
}

}  // namespace

TEST_CASE("export --format sherpa-onnx: sherpa-onnx decodes the student as asrc eval does") {
  const fs::path tmp = fs::temp_directory_path() / ("asrc_cli_sherpa_test_" + std::to_string(getpid()));
  fs::create_directories(tmp);
  REQUIRE(onnx_io::SaveModel(testing::StatelessTeacher(2), (tmp / "student").string()).ok());

  Out lstm = Asrc("export --format sherpa-onnx " ASRC_SOURCE_DIR "/experiments/teacher/bundle " + (tmp / "bad").string());
  CHECK(lstm.code == 1);
  CHECK(lstm.text.find("decoder_type is 'lstm'") != std::string::npos);
  CHECK(!fs::exists(tmp / "bad"));

  Out ex = Asrc("export --format sherpa-onnx " + (tmp / "student").string() + " " + (tmp / "sherpa").string());
  REQUIRE_MESSAGE(ex.code == 0, ex.text);
  for (const char* f : {"encoder.onnx", "decoder.onnx", "joiner.onnx", "tokens.txt"}) CHECK(fs::exists(tmp / "sherpa" / f));

  const std::string manifest = ASRC_SOURCE_DIR "/experiments/data/default_eval/manifest.jsonl";
  const std::string flags = " --mode lookahead --max-symbols 1 --limit 4 --no-progress --data " + manifest;
  Out ev_src = Asrc("eval " + (tmp / "student").string() + flags + " --json " + (tmp / "src.json").string());
  REQUIRE_MESSAGE(ev_src.code == 0, ev_src.text);
  Out ev_exp = Asrc("eval " + (tmp / "sherpa").string() + flags + " --json " + (tmp / "exp.json").string());
  REQUIRE_MESSAGE(ev_exp.code == 0, ev_exp.text);

  if (test::HaveReference(SherpaAvailable(), "sherpa-onnx (node + third_party/ort/node_modules/sherpa-onnx-node) and flac")) {
    Out sh = RunCommand("node " ASRC_SOURCE_DIR "/tests/cli/sherpa_decode.js " + (tmp / "sherpa").string() + " " + manifest +
                " " + (tmp / "sherpa.json").string() + " --limit 4");
    REQUIRE_MESSAGE(sh.code == 0, sh.text);
    nlohmann::json j;
    std::ifstream(tmp / "sherpa.json") >> j;
    auto exp = AsrcHyps(tmp / "exp.json"), src = AsrcHyps(tmp / "src.json");
    int same_exp = 0, same_src = 0, n = 0;
    for (const auto& u : j["utterances"]) {
      const std::string id = u["id"], hyp = Norm(u["text"]);
      CAPTURE(id);
      REQUIRE(exp.count(id));
      CHECK(hyp == exp[id]);
      CHECK(!hyp.empty());
      same_exp += hyp == exp[id];
      same_src += hyp == src[id];
      ++n;
    }
    MESSAGE("sherpa-onnx = asrc eval (export): " << same_exp << "/" << n << ", = asrc eval (source, look-ahead): "
                                                 << same_src << "/" << n);
    CHECK(n == 4);
    CHECK(same_src >= n - 1);  // the front ends differ only in near-silent bins
    test::RequireChecks(n, "sherpa-onnx");
  }
  fs::remove_all(tmp);
}
