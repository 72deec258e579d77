#include "asr/wer.h"

#include <algorithm>
#include <cctype>

namespace asrc::asr {

std::string NormalizeText(const std::string& text, const NormalizeOptions& o) {
  std::string t;
  t.reserve(text.size());
  for (unsigned char c : text) {
    if (o.lowercase && c >= 'A' && c <= 'Z') c = static_cast<unsigned char>(c - 'A' + 'a');
    if (o.strip_punctuation && c < 0x80) {
      bool keep = std::isalnum(c) || c == '\'' || std::isspace(c);
      if (!keep) c = ' ';
    }
    t.push_back(static_cast<char>(c));
  }
  if (o.strip_edge_apostrophes) {
    std::vector<std::string> words = SplitWords(t);
    std::string out;
    for (auto& w : words) {
      size_t b = w.find_first_not_of('\'');
      if (b == std::string::npos) continue;
      size_t e = w.find_last_not_of('\'');
      if (!out.empty()) out.push_back(' ');
      out += w.substr(b, e - b + 1);
    }
    // SplitWords already collapsed whitespace.
    return out;
  }
  if (o.collapse_whitespace) {
    std::string out;
    for (auto& w : SplitWords(t)) {
      if (!out.empty()) out.push_back(' ');
      out += w;
    }
    return out;
  }
  return t;
}

std::vector<std::string> SplitWords(const std::string& text) {
  std::vector<std::string> words;
  std::string cur;
  for (unsigned char c : text) {
    if (c < 0x80 && std::isspace(c)) {
      if (!cur.empty()) words.push_back(std::move(cur));
      cur.clear();
    } else {
      cur.push_back(static_cast<char>(c));
    }
  }
  if (!cur.empty()) words.push_back(std::move(cur));
  return words;
}

std::vector<std::string> SplitChars(const std::string& text) {
  std::vector<std::string> chars;
  for (size_t i = 0; i < text.size();) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
    len = std::min(len, text.size() - i);
    chars.push_back(text.substr(i, len));
    i += len;
  }
  return chars;
}

ErrorCounts Align(const std::vector<std::string>& ref, const std::vector<std::string>& hyp,
                  std::vector<AlignedPair>* alignment) {
  const size_t n = ref.size(), m = hyp.size();
  // Full table for the backtrace: sizes here are sentences, not documents.
  std::vector<int32_t> d((n + 1) * (m + 1));
  auto at = [&](size_t i, size_t j) -> int32_t& { return d[i * (m + 1) + j]; };
  for (size_t i = 0; i <= n; ++i) at(i, 0) = static_cast<int32_t>(i);
  for (size_t j = 0; j <= m; ++j) at(0, j) = static_cast<int32_t>(j);
  for (size_t i = 1; i <= n; ++i)
    for (size_t j = 1; j <= m; ++j)
      at(i, j) = std::min({at(i - 1, j - 1) + (ref[i - 1] == hyp[j - 1] ? 0 : 1), at(i - 1, j) + 1,
                           at(i, j - 1) + 1});
  ErrorCounts c;
  c.ref_len = static_cast<int64_t>(n);
  std::vector<AlignedPair> rev;
  size_t i = n, j = m;
  while (i > 0 || j > 0) {
    if (i > 0 && j > 0 && at(i, j) == at(i - 1, j - 1) + (ref[i - 1] == hyp[j - 1] ? 0 : 1)) {
      bool same = ref[i - 1] == hyp[j - 1];
      if (!same) ++c.substitutions;
      if (alignment) rev.push_back({same ? EditOp::kMatch : EditOp::kSubstitution, ref[i - 1], hyp[j - 1]});
      --i, --j;
    } else if (i > 0 && at(i, j) == at(i - 1, j) + 1) {
      ++c.deletions;
      if (alignment) rev.push_back({EditOp::kDeletion, ref[i - 1], ""});
      --i;
    } else {
      ++c.insertions;
      if (alignment) rev.push_back({EditOp::kInsertion, "", hyp[j - 1]});
      --j;
    }
  }
  if (alignment) alignment->assign(rev.rbegin(), rev.rend());
  return c;
}

PairScore ScorePair(const std::string& reference, const std::string& hypothesis,
                    const NormalizeOptions& options) {
  std::string r = NormalizeText(reference, options), h = NormalizeText(hypothesis, options);
  PairScore s;
  s.words = Align(SplitWords(r), SplitWords(h));
  s.chars = Align(SplitChars(r), SplitChars(h));
  return s;
}

std::string FormatAlignment(const std::vector<AlignedPair>& alignment) {
  std::string ref = "REF:", hyp = "HYP:", ops = "    ";
  for (const auto& p : alignment) {
    size_t w = std::max({p.ref.size(), p.hyp.size(), size_t{1}});
    std::string r = p.op == EditOp::kInsertion ? std::string(w, '*') : p.ref;
    std::string h = p.op == EditOp::kDeletion ? std::string(w, '*') : p.hyp;
    char mark = p.op == EditOp::kMatch ? ' ' : p.op == EditOp::kSubstitution ? 'S'
                : p.op == EditOp::kDeletion ? 'D' : 'I';
    ref += " " + r + std::string(w - r.size(), ' ');
    hyp += " " + h + std::string(w - h.size(), ' ');
    ops += " " + std::string(1, mark) + std::string(w - 1, ' ');
  }
  auto rtrim = [](std::string s) {
    while (!s.empty() && s.back() == ' ') s.pop_back();
    return s;
  };
  return rtrim(ref) + "\n" + rtrim(hyp) + "\n" + rtrim(ops) + "\n";
}

}  // namespace asrc::asr
