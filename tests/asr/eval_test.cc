// Manifest reading, percentiles, report JSON and merging (no model needed).
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <fstream>

#include <doctest/doctest.h>

#include "asr/eval.h"

using namespace asrc;
using namespace asrc::asr;

TEST_CASE("manifest: relative and absolute paths, split filter, errors with line numbers") {
  const std::string path = "/tmp/asrc_test_manifest_" + std::to_string(getpid()) + ".jsonl";
  {
    std::ofstream f(path);
    f << R"({"audio_filepath": "flac/a.flac", "text": "A b.", "split": "test", "duration": 1.5})" << "\n";
    f << "\n";
    f << R"({"audio_filepath": "/abs/b.wav", "text": "c", "split": "train", "id": "bee"})" << "\n";
    f << R"({"audio_filepath": "c.wav", "text": "d", "split": "test", "extra": [1, 2]})" << "\n";
  }
  auto all = ReadManifest(path, "");
  REQUIRE(all.ok());
  REQUIRE(all->size() == 3);
  CHECK((*all)[0].audio_path == "/tmp/flac/a.flac");
  CHECK((*all)[0].id == "flac/a.flac");
  CHECK((*all)[0].duration == 1.5);
  CHECK((*all)[1].audio_path == "/abs/b.wav");
  CHECK((*all)[1].id == "bee");
  auto test = ReadManifest(path, "test");
  REQUIRE(test.ok());
  REQUIRE(test->size() == 2);
  CHECK((*test)[1].index == 1);
  CHECK((*test)[1].text == "d");
  {
    std::ofstream f(path, std::ios::app);
    f << R"({"audio_filepath": "x.wav"})" << "\n";
  }
  auto bad = ReadManifest(path, "");
  REQUIRE(!bad.ok());
  CHECK(bad.status().message() == path + ":5: 'text' missing");
  {
    std::ofstream f(path);
    f << "{not json\n";
  }
  bad = ReadManifest(path, "");
  REQUIRE(!bad.ok());
  CHECK(bad.status().message() == path + ":1: not valid JSON");
  std::remove(path.c_str());
}

TEST_CASE("percentiles interpolate linearly, as numpy.percentile") {
  CHECK(Percentile({}, 50) == 0);
  CHECK(Percentile({3}, 90) == 3);
  CHECK(Percentile({4, 1, 3, 2}, 50) == doctest::Approx(2.5));
  CHECK(Percentile({1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 90) == doctest::Approx(9.1));
}

TEST_CASE("partial reports round-trip through JSON and merge by utterance index") {
  auto part = [](int shard, std::vector<int> idx) {
    EvalReport r;
    r.partial = true;
    r.shard_index = shard;
    r.shard_count = 2;
    ModeReport m;
    m.mode = "lookahead";
    for (int i : idx) {
      UtteranceResult u;
      u.index = i;
      u.id = "u" + std::to_string(i);
      u.reference = "a b";
      u.hypothesis = i % 2 ? "a" : "a b";
      m.per_utterance.push_back(u);
      m.words += 2;
      m.deletions += i % 2;
      m.chars += 3;
      m.char_errors += 2 * (i % 2);
      m.utterances += 1;
      m.audio_seconds += 2;
      m.compute_seconds += 0.1;
      m.final_ms.push_back(10.0 * i);
      m.cpu_seconds += 0.05;
    }
    m.Finalize();
    r.lookahead = m;
    return r;
  };
  auto a = EvalReport::FromJson(part(0, {0, 2, 4}).ToJson());
  auto b = EvalReport::FromJson(part(1, {1, 3}).ToJson());
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  auto m = MergeReports({b.value(), a.value()});
  REQUIRE(m.ok());
  REQUIRE(!m->streaming);
  const ModeReport& l = *m->lookahead;
  CHECK(l.words == 10);
  CHECK(l.deletions == 2);
  CHECK(l.wer == doctest::Approx(20.0));
  CHECK(l.rtf == doctest::Approx(0.05));
  CHECK(Percentile(l.final_ms, 50) == doctest::Approx(20.0));
  REQUIRE(l.per_utterance.size() == 5);
  for (int i = 0; i < 5; ++i) CHECK(l.per_utterance[i].id == "u" + std::to_string(i));
  nlohmann::json j = m->ToJson();
  CHECK(!j.contains("shard"));
  CHECK(!j["lookahead"].contains("final_ms"));
  CHECK(j["lookahead"]["final_ms_p90"].get<double>() == doctest::Approx(36.0));
  CHECK(!MergeReports({a.value(), a.value()}).ok());  // shard 0 twice
  CHECK(!EvalReport::FromJson(m->ToJson()).ok());     // a full report is not a partial one
  CHECK(RequireScoredWords(m.value()).ok());

  // Shards of different evaluations, an utterance twice or in the wrong shard, negative counts.
  EvalReport other = b.value();
  other.provenance["beam"] = 4;
  auto mixed = MergeReports({a.value(), other});
  REQUIRE(!mixed.ok());
  CHECK(mixed.status().message().find("differ in beam") != std::string::npos);
  EvalReport dup = b.value();
  dup.lookahead->per_utterance[0].id = "u0";
  auto twice = MergeReports({a.value(), dup});
  REQUIRE(!twice.ok());
  CHECK(twice.status().message().find("'u0': id appears twice") != std::string::npos);
  EvalReport wrong = b.value();
  wrong.lookahead->per_utterance[0].index = 2;
  CHECK(!MergeReports({a.value(), wrong}).ok());
  nlohmann::json neg = part(1, {1, 3}).ToJson();
  neg["lookahead"]["deletions"] = -1;
  auto bad = EvalReport::FromJson(neg);
  REQUIRE(!bad.ok());
  CHECK(bad.status().message() == "lookahead.deletions: negative or not finite");
  nlohmann::json old = part(1, {1, 3}).ToJson();
  old.erase("provenance");
  CHECK(!EvalReport::FromJson(old).ok());
}

TEST_CASE("a WER over zero reference words is undefined, not 0") {
  ModeReport m;
  m.mode = "lookahead";
  m.utterances = 2;
  m.failed_utterances = 2;
  m.Finalize();
  CHECK(std::isnan(m.wer));
  CHECK(std::isnan(m.cer));
  CHECK(m.ToJson()["wer"].is_null());
  EvalReport r;
  r.lookahead = m;
  Status st = RequireScoredWords(r);
  REQUIRE(!st.ok());
  CHECK(st.message() == "lookahead: WER undefined: the 0 scored utterance(s) have no reference words (2 failed)");
  CHECK(FormatSummary(r).find("n/a") != std::string::npos);
}
