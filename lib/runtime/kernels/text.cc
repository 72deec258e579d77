// Text kernels: StringNormalizer (stopword removal and case change; case folding is ASCII-only,
// other UTF-8 bytes pass through unchanged) and TfIdfVectorizer (n-grams with skips over int32,
// int64 or string tokens; TF, IDF or TFIDF weighting).
#include <cctype>
#include <map>
#include <set>

#include "runtime/kernels/util.h"

namespace asrc::runtime {
namespace {

using namespace ku;

std::string Fold(std::string s, int action) {  // 0 none, 1 lower, 2 upper
  for (char& c : s) {
    unsigned char u = static_cast<unsigned char>(c);
    if (action == 1) c = static_cast<char>(std::tolower(u));
    else if (action == 2) c = static_cast<char>(std::toupper(u));
  }
  return s;
}

class StringNormalizerKernel : public Kernel {
 public:
  StringNormalizerKernel(int action, bool case_sensitive, std::vector<std::string> stop)
      : action_(action), case_sensitive_(case_sensitive) {
    for (auto& s : stop) stop_.insert(case_sensitive ? s : Fold(s, 1));
  }
  Status Run(KernelContext& ctx) override {
    const Tensor& x = *ctx.in(0);
    if (x.dtype() != DType::String) return DTypeError("StringNormalizer", x.dtype());
    if (!(x.rank() == 1 || (x.rank() == 2 && x.dim(0) == 1)))
      return Error("StringNormalizer: input must be [C] or [1, C], got " + ir::ShapeStr(x.shape()));
    std::vector<std::string> kept;
    for (const auto& s : x.strings)
      if (!stop_.count(case_sensitive_ ? s : Fold(s, 1))) kept.push_back(Fold(s, action_));
    if (kept.empty()) kept.push_back("");  // all removed: one empty string, as ONNX specifies
    int64_t n = static_cast<int64_t>(kept.size());
    Tensor& y = ctx.Alloc(0, DType::String, x.rank() == 1 ? Shape{n} : Shape{1, n});
    y.strings = std::move(kept);
    return Status::Ok();
  }

 private:
  int action_;
  bool case_sensitive_;
  std::set<std::string> stop_;
};

struct TfIdfAttrs {
  int64_t min_n = 1, max_n = 1, max_skip = 0;
  int mode = 0;  // 0 TF, 1 IDF, 2 TFIDF
  std::vector<int64_t> counts, indexes, pool_ints;
  std::vector<std::string> pool_strings;
  std::vector<float> weights;
};

class TfIdfKernel : public Kernel {
 public:
  explicit TfIdfKernel(TfIdfAttrs a) : a_(std::move(a)) {
    // One map from n-gram (tokens as strings) to its output index, per n.
    bool strings = !a_.pool_strings.empty();
    int64_t pool_n = strings ? static_cast<int64_t>(a_.pool_strings.size()) : static_cast<int64_t>(a_.pool_ints.size());
    int64_t k = 0;
    for (size_t g = 0; g < a_.counts.size(); ++g) {
      int64_t n = static_cast<int64_t>(g) + 1;
      int64_t end = g + 1 < a_.counts.size() ? a_.counts[g + 1] : pool_n;
      for (int64_t p = a_.counts[g]; p + n <= end; p += n, ++k) {
        std::vector<std::string> gram;
        for (int64_t j = 0; j < n; ++j)
          gram.push_back(strings ? a_.pool_strings[p + j] : std::to_string(a_.pool_ints[p + j]));
        if (k < static_cast<int64_t>(a_.indexes.size())) grams_[gram] = a_.indexes[k];
      }
    }
    for (int64_t i : a_.indexes) out_size_ = std::max(out_size_, i + 1);
  }
  Status Run(KernelContext& ctx) override {
    const Tensor& x = *ctx.in(0);
    std::vector<std::string> tok;
    if (x.dtype() == DType::String) tok = x.strings;
    else if (x.dtype() == DType::Int32 || x.dtype() == DType::Int64) {
      ASRC_ASSIGN_OR_RETURN(std::vector<int64_t> v, Int64s(x));
      for (int64_t t : v) tok.push_back(std::to_string(t));
    } else {
      return DTypeError("TfIdfVectorizer", x.dtype());
    }
    if (x.rank() != 1 && x.rank() != 2) return Error("TfIdfVectorizer: input must be [C] or [N, C]");
    int64_t rows = x.rank() == 2 ? x.dim(0) : 1, C = x.rank() == 2 ? x.dim(1) : x.dim(0);
    Tensor& y = ctx.Alloc(0, DType::Float32, x.rank() == 2 ? Shape{rows, out_size_} : Shape{out_size_});
    float* py = y.data<float>();
    std::fill(py, py + y.numel(), 0.f);
    for (int64_t r = 0; r < rows; ++r) {
      const std::string* row = tok.data() + r * C;
      float* out = py + r * out_size_;
      for (int64_t start = 0; start < C; ++start)
        // Only grams that fit in the row: n <= C - start and start + (n - 1) * (skip + 1) < C,
        // bounded before the loops so that huge attribute values neither overflow nor spin.
        for (int64_t n = a_.min_n; n <= a_.max_n && n <= C - start; ++n) {
          // Unigrams have no gaps to skip: count them once.
          const int64_t max_skip = n == 1 ? 0 : std::min(a_.max_skip, (C - start - 1) / (n - 1) - 1);
          for (int64_t skip = 0; skip <= max_skip; ++skip) {
            std::vector<std::string> gram;
            for (int64_t j = 0; j < n; ++j) gram.push_back(row[start + j * (skip + 1)]);
            auto it = grams_.find(gram);
            if (it != grams_.end()) out[it->second] += 1.f;
          }
        }
      for (int64_t i = 0; i < out_size_; ++i) {
        float w = i < static_cast<int64_t>(a_.weights.size()) ? a_.weights[i] : 1.f;
        if (a_.mode == 1) out[i] = out[i] > 0 ? w : 0.f;
        else if (a_.mode == 2) out[i] *= w;
      }
    }
    return Status::Ok();
  }

 private:
  TfIdfAttrs a_;
  std::map<std::vector<std::string>, int64_t> grams_;
  int64_t out_size_ = 0;
};

}  // namespace

void RegisterTextKernels(KernelRegistry& r) {
  r.Register("", "StringNormalizer", DType::Undefined, NeedInputs(1, [](const KernelInit& i) -> KernelPtr {
    std::string act = i.node->attr_string("case_change_action", "NONE");
    int action = act == "NONE" ? 0 : act == "LOWER" ? 1 : act == "UPPER" ? 2 : -1;
    if (action < 0) return Error("StringNormalizer: unsupported case_change_action '" + act + "'");
    const ir::Attribute* sw = i.node->attr("stopwords");
    return Make<StringNormalizerKernel>(
        action, i.node->attr_int("is_case_sensitive", 0) != 0, sw ? sw->strings : std::vector<std::string>{});
  }));
  r.Register("", "TfIdfVectorizer", DType::Undefined, NeedInputs(1, [](const KernelInit& i) -> KernelPtr {
    const ir::Node& n = *i.node;
    TfIdfAttrs a;
    a.min_n = n.attr_int("min_gram_length", 1);
    a.max_n = n.attr_int("max_gram_length", 1);
    a.max_skip = n.attr_int("max_skip_count", 0);
    std::string mode = n.attr_string("mode", "TF");
    a.mode = mode == "TF" ? 0 : mode == "IDF" ? 1 : mode == "TFIDF" ? 2 : -1;
    if (a.mode < 0) return Error("TfIdfVectorizer: unsupported mode '" + mode + "'");
    a.counts = n.attr_ints("ngram_counts");
    a.indexes = n.attr_ints("ngram_indexes");
    a.pool_ints = n.attr_ints("pool_int64s");
    const ir::Attribute* ps = n.attr("pool_strings");
    if (ps) a.pool_strings = ps->strings;
    a.weights = n.attr_floats("weights");
    if (a.min_n < 1 || a.max_n < a.min_n || a.max_skip < 0 || a.counts.empty())
      return Error("TfIdfVectorizer: bad gram lengths, skip count or ngram_counts");
    const int64_t pool_n = static_cast<int64_t>(a.pool_strings.empty() ? a.pool_ints.size() : a.pool_strings.size());
    for (size_t g = 0; g < a.counts.size(); ++g)
      if (a.counts[g] < 0 || (g > 0 && a.counts[g] < a.counts[g - 1])) return Error("TfIdfVectorizer: ngram_counts must be ascending");
    // Offsets into the pool, and output indexes, must be in range (found by onnx_run_fuzzer).
    if (a.counts.back() > pool_n)
      return Error("TfIdfVectorizer: ngram_counts point past the pool (pool_int64s or pool_strings, " +
                   std::to_string(pool_n) + " entries)");
    for (int64_t k : a.indexes)
      if (k < 0 || k == std::numeric_limits<int64_t>::max())
        return Error("TfIdfVectorizer: ngram_indexes must be in [0, 2^63 - 1)");
    return Make<TfIdfKernel>(std::move(a));
  }));
}

}  // namespace asrc::runtime
