// Word and character error rates.
//
// Normalization (applied to reference and hypothesis alike, each step configurable), by default
// the same as the teacher recipe's experiments/teacher/textnorm.py:
//   1. lowercase (ASCII letters);
//   2. hyphens become spaces; every other ASCII character that is not a letter, a digit, an
//      apostrophe or whitespace becomes a space (punctuation stripped, apostrophes kept);
//   3. apostrophes at the start or end of a word are dropped ("'tis" -> "tis", "dogs'" -> "dogs");
//   4. whitespace collapsed to single spaces, trimmed.
// Bytes >= 0x80 (non-ASCII UTF-8) are kept as they are.
// Errors: minimum edit distance (Levenshtein, unit costs); among the minimal alignments the
// backtrace prefers match/substitution, then deletion, then insertion. WER = (S + D + I) / N words.
// CER is the same over the Unicode code points of the normalized text, spaces included.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace asrc::asr {

struct NormalizeOptions {
  bool lowercase = true;
  bool strip_punctuation = true;      // step 2 (apostrophes kept, hyphens -> spaces)
  bool strip_edge_apostrophes = true;  // step 3
  bool collapse_whitespace = true;    // step 4
};

std::string NormalizeText(const std::string& text, const NormalizeOptions& options = {});
std::vector<std::string> SplitWords(const std::string& text);  // on whitespace
std::vector<std::string> SplitChars(const std::string& text);  // UTF-8 code points

enum class EditOp { kMatch, kSubstitution, kDeletion, kInsertion };

struct AlignedPair {
  EditOp op;
  std::string ref, hyp;  // empty for an insertion's ref / a deletion's hyp
};

struct ErrorCounts {
  int64_t ref_len = 0, substitutions = 0, deletions = 0, insertions = 0;
  int64_t errors() const { return substitutions + deletions + insertions; }
  ErrorCounts& operator+=(const ErrorCounts& o) {
    ref_len += o.ref_len;
    substitutions += o.substitutions;
    deletions += o.deletions;
    insertions += o.insertions;
    return *this;
  }
};

// Aligns `hyp` against `ref`; fills `alignment` (in order) when not null.
ErrorCounts Align(const std::vector<std::string>& ref, const std::vector<std::string>& hyp,
                  std::vector<AlignedPair>* alignment = nullptr);

// Word and character counts for one normalized pair.
struct PairScore {
  ErrorCounts words, chars;
};
PairScore ScorePair(const std::string& reference, const std::string& hypothesis,
                    const NormalizeOptions& options = {});

// "REF: the cat sat ***\nHYP: the bat sat down\n      S         I" style three-line alignment.
std::string FormatAlignment(const std::vector<AlignedPair>& alignment);

}  // namespace asrc::asr
