// Einsum, the plain reference: every combination of the output and summed labels, in double.
// Handles explicit ("ij,jk->ik") and implicit ("ij,jk") outputs, repeated labels (diagonals),
// and "..." (broadcast, right-aligned across inputs). Numeric dtypes; float16 via float32.
#include <algorithm>
#include <cctype>
#include <map>

#include "runtime/kernels/util.h"

namespace asrc::runtime {
namespace {

using namespace ku;

// Label ids: letters as their char code; ellipsis dims as kEll + position from the right.
constexpr int kEll = 1000;

struct Term {
  std::vector<int> labels;  // before ellipsis expansion; -1 marks "..."
};

Result<Term> ParseTerm(const std::string& s) {
  Term t;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == ' ') continue;
    if (c == '.') {
      if (s.compare(i, 3, "...") != 0) return Error("Einsum: stray '.' in '" + s + "'");
      t.labels.push_back(-1);
      i += 2;
    } else if (std::isalpha(static_cast<unsigned char>(c))) {
      t.labels.push_back(c);
    } else {
      return Error(std::string("Einsum: unexpected character '") + c + "'");
    }
  }
  return t;
}

// Expands "..." to `ell` labels (kEll + ell - 1 down to kEll: the rightmost is kEll).
std::vector<int> Expand(const Term& t, int ell) {
  std::vector<int> v;
  for (int l : t.labels) {
    if (l != -1) { v.push_back(l); continue; }
    for (int j = ell - 1; j >= 0; --j) v.push_back(kEll + j);
  }
  return v;
}

class EinsumKernel : public Kernel {
 public:
  explicit EinsumKernel(std::string eq) : eq_(std::move(eq)) {}
  Status Run(KernelContext& ctx) override {
    size_t arrow = eq_.find("->");
    std::string lhs = eq_.substr(0, arrow);
    std::vector<Term> terms;
    for (size_t start = 0;;) {
      size_t comma = lhs.find(',', start);
      ASRC_ASSIGN_OR_RETURN(Term t, ParseTerm(lhs.substr(start, comma - start)));
      terms.push_back(t);
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
    size_t n_in = terms.size();
    if (ctx.inputs.size() != n_in) return Error("Einsum: equation names " + std::to_string(n_in) + " inputs, got " + std::to_string(ctx.inputs.size()));
    DType dt = ctx.in(0)->dtype();
    std::vector<Tensor> xs;
    std::vector<std::vector<int>> labels(n_in);
    std::map<int, int64_t> size;
    int max_ell = 0;
    for (size_t i = 0; i < n_in; ++i) {
      if (!ctx.in(static_cast<int>(i))) return Error("Einsum: input " + std::to_string(i) + " is missing");
      const Tensor& t = *ctx.in(static_cast<int>(i));
      if (t.dtype() != dt) return Error("Einsum: input dtypes differ");
      Tensor d(DType::Float64, t.shape());
      if (!ConvertInto(t, d).ok() || t.dtype() == DType::Bool) return DTypeError("Einsum", t.dtype());
      xs.push_back(std::move(d));
      int letters = 0;
      bool has_ell = false;
      for (int l : terms[i].labels) {
        if (l == -1) has_ell = true;
        else ++letters;
      }
      int ell = t.rank() - letters;
      if (ell < 0 || (ell > 0 && !has_ell)) return Error("Einsum: term " + std::to_string(i) + " does not match rank " + std::to_string(t.rank()));
      max_ell = std::max(max_ell, ell);
      labels[i] = Expand(terms[i], ell);
      for (int d = 0; d < t.rank(); ++d) {
        int l = labels[i][d];
        auto it = size.find(l);
        if (it == size.end() || it->second == 1) size[l] = t.dim(d);
        else if (t.dim(d) != it->second && !(l >= kEll && t.dim(d) == 1))
          return Error("Einsum: label sizes disagree (" + std::to_string(t.dim(d)) + " vs " + std::to_string(it->second) + ")");
      }
    }
    std::vector<int> out;
    if (arrow != std::string::npos) {
      ASRC_ASSIGN_OR_RETURN(Term t, ParseTerm(eq_.substr(arrow + 2)));
      out = Expand(t, max_ell);
    } else {  // implicit: ellipsis dims, then letters used once, alphabetically
      for (int j = max_ell - 1; j >= 0; --j) out.push_back(kEll + j);
      std::map<int, int> count;
      for (const auto& ls : labels)
        for (int l : ls) ++count[l];
      for (const auto& [l, c] : count)
        if (l < kEll && c == 1) out.push_back(l);
    }
    // Loop labels: output labels first, then the summed ones.
    std::vector<int> loop = out;
    for (const auto& [l, s] : size)
      if (std::find(out.begin(), out.end(), l) == out.end()) loop.push_back(l);
    Shape os;
    for (int l : out) {
      if (!size.count(l)) return Error("Einsum: output label not in any input");
      os.push_back(size[l]);
    }
    std::map<int, int> pos;
    for (size_t j = 0; j < loop.size(); ++j) pos[loop[j]] = static_cast<int>(j);
    // Per input, the stride each loop position contributes (0 for broadcast size-1 dims).
    std::vector<std::vector<int64_t>> st(n_in, std::vector<int64_t>(loop.size(), 0));
    for (size_t i = 0; i < n_in; ++i) {
      std::vector<int64_t> s = Strides(xs[i].shape());
      for (size_t d = 0; d < labels[i].size(); ++d)
        if (xs[i].dim(static_cast<int>(d)) != 1 || size[labels[i][d]] == 1) st[i][pos[labels[i][d]]] += s[d];
    }
    int64_t out_n = ir::ShapeNumel(os), sum_n = 1;
    for (size_t j = out.size(); j < loop.size(); ++j) sum_n *= size[loop[j]];
    Tensor y(DType::Float64, os);
    std::vector<int64_t> idx(loop.size(), 0);
    for (int64_t o = 0; o < out_n; ++o) {
      double acc = 0;
      for (int64_t sidx = 0; sidx < sum_n; ++sidx) {
        double prod = 1;
        for (size_t i = 0; i < n_in; ++i) {
          int64_t off = 0;
          for (size_t j = 0; j < loop.size(); ++j) off += idx[j] * st[i][j];
          prod *= xs[i].data<double>()[off];
        }
        acc += prod;
        for (int j = static_cast<int>(loop.size()) - 1; j >= static_cast<int>(out.size()); --j) {
          if (++idx[j] < size[loop[j]]) break;
          idx[j] = 0;
        }
      }
      y.data<double>()[o] = acc;
      for (int j = static_cast<int>(out.size()) - 1; j >= 0; --j) {
        if (++idx[j] < size[loop[j]]) break;
        idx[j] = 0;
      }
    }
    Tensor& res = ctx.Alloc(0, dt, os);
    return ConvertInto(y, res);
  }

 private:
  std::string eq_;
};

}  // namespace

void RegisterEinsumKernels(KernelRegistry& r) {
  r.Register("", "Einsum", DType::Undefined, NeedInputs(1, [](const KernelInit& i) -> KernelPtr {
    std::string eq = i.node->attr_string("equation", "");
    if (eq.empty()) return Error("Einsum needs an equation");
    return Make<EinsumKernel>(eq);
  }));
}

}  // namespace asrc::runtime
