#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>

#include <doctest/doctest.h>

#include "asr/wer.h"

using namespace asrc::asr;

TEST_CASE("normalization: case, punctuation, apostrophes, whitespace") {
  CHECK(NormalizeText("  Hello,   World!  ") == "hello world");
  CHECK(NormalizeText("Don't stop-believing; \"ok\".") == "don't stop believing ok");
  CHECK(NormalizeText("'Tis the dogs' bone") == "tis the dogs bone");
  CHECK(NormalizeText("A -- b") == "a b");
  NormalizeOptions keep;
  keep.lowercase = false;
  keep.strip_punctuation = false;
  keep.strip_edge_apostrophes = false;
  CHECK(NormalizeText("Hi,  There.", keep) == "Hi, There.");
  keep.collapse_whitespace = false;
  CHECK(NormalizeText("Hi,  There.", keep) == "Hi,  There.");
}

TEST_CASE("word alignment: hand-made pairs with known counts") {
  struct Case {
    const char *ref, *hyp;
    int n, s, d, i;
  } cases[] = {
      {"the cat sat on the mat", "the cat sat on the mat", 6, 0, 0, 0},
      {"the cat sat on the mat", "the bat sat on the mat", 6, 1, 0, 0},
      {"the cat sat on the mat", "the cat on the mat", 6, 0, 1, 0},
      {"the cat sat on the mat", "the cat sat on the big mat", 6, 0, 0, 1},
      {"a b c", "", 3, 0, 3, 0},
      {"", "x y", 0, 0, 0, 2},
      {"a b c d", "x a b d", 4, 0, 1, 1},  // ins x, del c
      {"one two three", "one too three four", 3, 1, 0, 1},
  };
  for (const auto& c : cases) {
    CAPTURE(c.ref);
    CAPTURE(c.hyp);
    std::vector<AlignedPair> al;
    ErrorCounts e = Align(SplitWords(c.ref), SplitWords(c.hyp), &al);
    CHECK(e.ref_len == c.n);
    CHECK(e.substitutions == c.s);
    CHECK(e.deletions == c.d);
    CHECK(e.insertions == c.i);
    // The alignment accounts for every word of both sides.
    int refs = 0, hyps = 0, errs = 0;
    for (const auto& p : al) {
      refs += p.op != EditOp::kInsertion;
      hyps += p.op != EditOp::kDeletion;
      errs += p.op != EditOp::kMatch;
    }
    CHECK(refs == c.n);
    CHECK(hyps == static_cast<int>(SplitWords(c.hyp).size()));
    CHECK(errs == e.errors());
  }
}

TEST_CASE("alignment text marks S, D and I") {
  std::vector<AlignedPair> al;
  Align(SplitWords("the cat sat"), SplitWords("the bat sat down"), &al);
  std::string text = FormatAlignment(al);
  CHECK(text == "REF: the cat sat ****\nHYP: the bat sat down\n         S       I\n");
}

TEST_CASE("character error rate counts code points, spaces included") {
  PairScore s = ScorePair("Ab c", "ab d");
  CHECK(s.chars.ref_len == 4);  // "ab c"
  CHECK(s.chars.errors() == 1);
  CHECK(SplitChars("na\xC3\xAFve").size() == 5);  // ï is one code point
}

TEST_CASE("WER agrees with an independent Python Levenshtein") {
  // Random sentences over a small vocabulary, so that errors of every kind occur.
  std::mt19937 rng(7);
  const char* vocab[] = {"a", "an", "the", "cat", "cats", "sat", "on", "mat", "dog", "it's", "ran"};
  auto sentence = [&](int max_len) {
    std::string s;
    int n = rng() % (max_len + 1);
    for (int i = 0; i < n; ++i) s += std::string(i ? " " : "") + vocab[rng() % 11];
    return s;
  };
  std::vector<std::pair<std::string, std::string>> pairs;
  for (int k = 0; k < 300; ++k) pairs.push_back({sentence(12), sentence(12)});
  std::string tsv = "/tmp/asrc_test_wer_pairs_" + std::to_string(getpid()) + ".tsv";
  std::string out = tsv + ".out";
  {
    std::ofstream f(tsv);
    for (auto& p : pairs) f << p.first << "\t" << p.second << "\n";
  }
  std::string cmd = "/usr/bin/python3 " ASRC_SOURCE_DIR "/tests/asr/wer_ref.py " + tsv + " > " + out;
  REQUIRE(std::system(cmd.c_str()) == 0);
  std::ifstream r(out);
  int64_t total_words = 0, total_err = 0, py_words = 0, py_err = 0;
  for (auto& p : pairs) {
    int64_t rw, we, rc, ce;
    REQUIRE(static_cast<bool>(r >> rw >> we >> rc >> ce));
    ErrorCounts w = Align(SplitWords(p.first), SplitWords(p.second));
    ErrorCounts c = Align(SplitChars(p.first), SplitChars(p.second));
    CHECK(w.ref_len == rw);
    CHECK(w.errors() == we);
    CHECK(c.ref_len == rc);
    CHECK(c.errors() == ce);
    total_words += w.ref_len, total_err += w.errors(), py_words += rw, py_err += we;
  }
  CHECK(total_words == py_words);
  CHECK(total_err == py_err);
  CHECK(total_err > 100);  // the pairs really differ
  std::remove(tsv.c_str());
  std::remove(out.c_str());
}
