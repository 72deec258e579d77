// Walks every model of Debian's libonnx-testdata, writes it back with SaveModel and checks the
// written ModelProto equals the original after normalizing what may legitimately differ:
// tensor storage form (float_data/int32_data/... vs raw_data), attribute type presence,
// value_info order. Compared with protobuf's MessageDifferencer (an outside reference).
#include <doctest/doctest.h>

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include <google/protobuf/util/message_differencer.h>
#include <onnx/checker.h>
#include <onnx/onnx_pb.h>

#include "onnx/onnx_io.h"
#include "onnx_test_util.h"
#include "reference.h"

namespace fs = std::filesystem;
using google::protobuf::util::MessageDifferencer;

TEST_CASE("every libonnx-testdata model round-trips") {
  const fs::path root = asrc::test::OnnxTestdataRoot();
  if (!asrc::test::HaveReference(asrc::test::OnnxTestdataAvailable(), asrc::test::OnnxTestdataWhat())) return;
  std::vector<fs::path> models;
  for (const auto& e : fs::recursive_directory_iterator(root))
    if (e.is_regular_file() && e.path().extension() == ".onnx") models.push_back(e.path());
  std::sort(models.begin(), models.end());
  REQUIRE(models.size() > 1000);

  fs::path tmp = fs::temp_directory_path() / ("asrc_rt_" + std::to_string(::getpid()));
  fs::create_directories(tmp);
  int ok = 0, checker_skipped = 0;
  std::vector<std::string> failures;
  for (const auto& p : models) {
    onnx::ModelProto orig;
    REQUIRE(asrc_test::ReadProto(p.string(), &orig));
    bool orig_valid = true;
    try {
      onnx::checker::check_model(p.string());
    } catch (const std::exception&) {
      orig_valid = false;
      ++checker_skipped;
    }
    auto model = asrc::onnx_io::LoadModel(p.string());
    if (!model.ok()) {
      failures.push_back(p.string() + ": load: " + model.status().message());
      continue;
    }
    fs::path out = tmp / "out.onnx";
    asrc::onnx_io::SaveOptions opt;
    opt.check = orig_valid;
    auto st = asrc::onnx_io::SaveModel(model.value(), out.string(), opt);
    if (!st.ok()) {
      failures.push_back(p.string() + ": save: " + st.message());
      continue;
    }
    onnx::ModelProto back;
    REQUIRE(asrc_test::ReadProto(out.string(), &back));
    asrc_test::Normalize(&orig);
    asrc_test::Normalize(&back);
    std::string diff;
    if (!asrc_test::Equivalent(orig, back, &diff)) {
      failures.push_back(p.string() + ": differs: " + diff.substr(0, 400));
      continue;
    }
    ++ok;
  }
  fs::remove_all(tmp);
  for (const auto& f : failures) std::cerr << f << "\n";
  std::cout << ok << "/" << models.size() << " models round-trip (" << checker_skipped
            << " originals fail the ONNX checker; their copies were written unchecked)\n";
  CHECK(ok == static_cast<int>(models.size()));
}
