#include "passes/tar_decoder.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <random>

#include <Eigen/Dense>
#include <Eigen/SVD>

#include "passes/util.h"

namespace asrc::passes {

namespace {

using Mat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using Vec = Eigen::VectorXf;

ir::Tensor ToTensor(const Mat& m) {
  ir::Tensor t(ir::DType::Float32, {m.rows(), m.cols()});
  Eigen::Map<Mat>(t.data<float>(), m.rows(), m.cols()) = m;
  return t;
}

ir::Tensor ToTensor(const Vec& v) {
  ir::Tensor t(ir::DType::Float32, {v.size()});
  Eigen::Map<Vec>(t.data<float>(), v.size()) = v;
  return t;
}

// A dense layer: Gemm (transA = 0) or MatMul reading a constant 2-D float weight at input 1, with
// its bias (Gemm's C, or a MatMul's following Add of a constant).
struct Linear {
  ir::Node* mm = nullptr;
  ir::Node* bias_add = nullptr;  // MatMul + Add only
  bool out_in = false;           // weight stored [out, in] (Gemm transB = 1)

  ir::Value* in() const { return mm->input(0); }
  ir::Value* out() const { return bias_add ? bias_add->outputs[0] : mm->outputs[0]; }
  const ir::Value* bias_value() const {
    if (bias_add) return bias_add->input(bias_add->input(0) == mm->outputs[0] ? 1 : 0);
    return mm->op_type == "Gemm" ? mm->input(2) : nullptr;
  }
  // The weight as [out, in].
  Mat Weight() const {
    const ir::Tensor& t = *ConstantOf(mm->input(1));
    Mat w = Eigen::Map<const Mat>(t.data<float>(), t.dim(0), t.dim(1));
    if (!out_in) w.transposeInPlace();
    return w;
  }
  Vec Bias() const {
    const int64_t n = Weight().rows();
    const ir::Value* b = bias_value();
    const ir::Tensor* t = b ? ConstantOf(b) : nullptr;
    if (!t) return Vec::Zero(n);
    if (t->numel() == 1) return Vec::Constant(n, t->data<float>()[0]);
    return Eigen::Map<const Vec>(t->data<float>(), t->numel());
  }
};

std::optional<Linear> MatchLinear(ir::Node* n) {
  if (!n || (n->op_type != "Gemm" && n->op_type != "MatMul") || !IsFloatConstant(n->input(1), 2))
    return std::nullopt;
  Linear l;
  l.mm = n;
  if (n->op_type == "Gemm") {
    if (n->attr_int("transA", 0) != 0) return std::nullopt;
    if (n->input(2) && !IsFloatConstant(n->input(2))) return std::nullopt;
    l.out_in = n->attr_int("transB", 0) != 0;
    return l;
  }
  const auto& uses = n->outputs[0]->uses;
  if (uses.size() == 1 && uses[0].node->op_type == "Add") {
    ir::Node* add = uses[0].node;
    if (IsFloatConstant(add->input(1 - uses[0].input_index), 1)) l.bias_add = add;
  }
  return l;
}

// The Linear whose output is `v` (through its bias Add where there is one).
std::optional<Linear> LinearProducing(ir::Value* v) {
  ir::Node* p = v ? v->producer : nullptr;
  if (!p) return std::nullopt;
  if (auto l = MatchLinear(p)) return l->out() == v ? l : std::nullopt;
  if (p->op_type != "Add") return std::nullopt;
  for (ir::Value* operand : p->inputs) {
    auto l = operand ? MatchLinear(operand->producer) : std::nullopt;
    if (l && l->bias_add == p) return l;
  }
  return std::nullopt;
}

// Points `n`'s input `index` at a constant holding `t`: in place where the old constant is an
// initializer read only there, else a new initializer (the old one is left for dead-code removal).
void SetConst(ir::Graph& g, ir::Node* n, int index, ir::Tensor t) {
  ir::Value* old = n->input(index);
  if (old->initializer && old->uses.size() == 1 && !IsGraphOutput(g, old) &&
      std::find(g.inputs.begin(), g.inputs.end(), old) == g.inputs.end()) {
    old->type.dims.clear();
    for (int64_t d : t.shape()) old->type.dims.push_back(ir::Dim{d, ""});
    old->initializer = std::move(t);
    return;
  }
  g.set_input(n, index, AddConst(g, old->name, std::move(t)));
}

// Writes a new weight ([out, in]) and bias into `l`, in its own layout. A missing bias stays
// missing (callers only pass a zero bias then).
void SetLinear(ir::Graph& g, const Linear& l, const Mat& w, const Vec& b) {
  SetConst(g, l.mm, 1, ToTensor(l.out_in ? w : Mat(w.transpose())));
  const ir::Value* bv = l.bias_value();
  if (!bv) return;
  ir::Node* owner = l.bias_add ? l.bias_add : l.mm;
  const int index = l.bias_add ? (l.bias_add->input(0) == bv ? 0 : 1) : 2;
  SetConst(g, owner, index, ToTensor(b));
}

// The joiner, as tar-decoder needs it (see the header for the structure matched).
struct Joiner {
  ir::Graph* g = nullptr;
  ir::Value* dec_in = nullptr;  // the decoder_out input
  Linear out;                   // output layer: its weight is the tied matrix
  std::optional<Linear> enc, dec;  // projections into the hidden Add (nullopt: none)
  int64_t vocab = 0, width = 0;    // output layer [vocab, width]
};

Result<Joiner> MatchJoiner(ir::Graph& g, int64_t vocab_expected) {
  auto fail = [&](const std::string& what) {
    return Error("graph 'joiner': " + what);
  };
  Joiner j;
  j.g = &g;
  j.dec_in = g.FindValue("decoder_out");
  if (!j.dec_in || std::find(g.inputs.begin(), g.inputs.end(), j.dec_in) == g.inputs.end())
    return fail("no graph input 'decoder_out' (docs/bundle.md's joiner contract)");
  if (g.outputs.empty()) return fail("no graph output");
  ir::Value* logit = g.outputs[0];
  auto out = LinearProducing(logit);
  if (!out)
    return fail("output '" + logit->name + "' is produced by " +
                (logit->producer ? "'" + NodeLabel(logit->producer) + "' (" + logit->producer->op_type + ")"
                                 : std::string("no node")) +
                ", not a Gemm/MatMul of a constant 2-D weight: no output layer to tie the decoder's "
                "embedding to");
  j.out = *out;
  const Mat w = j.out.Weight();
  j.vocab = w.rows();
  j.width = w.cols();
  if (vocab_expected > 0 && j.vocab != vocab_expected)
    return fail("output layer '" + NodeLabel(j.out.mm) + "' has " + std::to_string(j.vocab) +
                " outputs, model.json decoding.vocab_size is " + std::to_string(vocab_expected));
  // Back from the output layer through unary activations to the Add of the two sides.
  ir::Node* add = nullptr;
  for (ir::Value* v = j.out.in(); v && v->producer;) {
    ir::Node* p = v->producer;
    if (p->op_type == "Add") {
      add = p;
      break;
    }
    if (p->inputs.size() != 1 || p->outputs.size() != 1 || v->uses.size() != 1) break;
    v = p->input(0);
  }
  if (!add)
    return fail("the output layer '" + NodeLabel(j.out.mm) +
                "' is not fed (through unary activations) by an Add of the encoder and decoder sides");
  for (ir::Value* side : add->inputs) {
    if (side == j.dec_in) continue;  // decoder_out feeds the Add directly
    auto l = LinearProducing(side);
    if (l && l->in() == j.dec_in) {
      j.dec = l;
    } else if (l) {
      j.enc = l;
    }
  }
  const bool direct = std::find(add->inputs.begin(), add->inputs.end(), j.dec_in) != add->inputs.end();
  if ((!j.dec && !direct) || j.dec_in->uses.size() != 1)
    return fail("input 'decoder_out' does not reach the hidden Add '" + NodeLabel(add) +
                "' through one Gemm/MatMul (or directly)");
  if (j.dec && j.dec->Weight().rows() != j.width)
    return fail("decoder projection '" + NodeLabel(j.dec->mm) + "' has " +
                std::to_string(j.dec->Weight().rows()) + " outputs, the output layer reads " +
                std::to_string(j.width));
  return j;
}

// The old decoder's embedding table: a Gather of a constant [V, D] indexed by a graph input.
const ir::Tensor* OldEmbedding(const ir::Graph& g) {
  for (const ir::Node* n : g.nodes()) {
    if (n->op_type != "Gather" || n->attr_int("axis", 0) != 0 || !IsFloatConstant(n->input(0), 2)) continue;
    if (std::find(g.inputs.begin(), g.inputs.end(), n->input(1)) != g.inputs.end())
      return ConstantOf(n->input(0));
  }
  return nullptr;
}

struct TarOptions {
  int64_t context, heads, dim;
  bool post;
  std::string init;
};

ir::Value* Axes(ir::Graph& g, const std::string& name, int64_t axis) {
  return g.AddInitializer(name, ir::Tensor::FromVector<int64_t>(ir::DType::Int64, {1}, {axis}));
}

// Sum of `x` over `axis`, kept as a size-1 axis when `keep`.
ir::Value* ReduceSum(ir::Graph& g, ir::Value* x, ir::Value* axes, bool keep, const std::string& name) {
  ir::Node* n = g.AddNode("ReduceSum", {x, axes}, {name}, name);
  n->set_attr_int("keepdims", keep ? 1 : 0);
  return n->outputs[0];
}

// x / sqrt(sum(x^2 over the last axis) + eps): unit vectors along the last axis.
ir::Value* Normalize(ir::Graph& g, ir::Value* x, ir::Value* last, ir::Value* eps, const std::string& p) {
  ir::Value* sq = g.AddNode("Mul", {x, x}, {p + "_sq"}, p + "_sq")->outputs[0];
  ir::Value* ss = ReduceSum(g, sq, last, true, p + "_sumsq");
  ir::Value* se = g.AddNode("Add", {ss, eps}, {p + "_sumsq_eps"}, p + "_eps")->outputs[0];
  ir::Value* norm = g.AddNode("Sqrt", {se}, {p + "_norm"}, p + "_norm")->outputs[0];
  return g.AddNode("Div", {x, norm}, {p + "_unit"}, p + "_unit")->outputs[0];
}

// The TAR decoder graph (equations in the header). `tied` is shared with the joiner.
std::unique_ptr<ir::Graph> BuildDecoder(const std::string& name, const ir::Tensor& tied,
                                        const TarOptions& o, std::mt19937_64& rng) {
  const int64_t V = tied.dim(0), D = tied.dim(1), C = o.context, H = o.heads;
  auto g = std::make_unique<ir::Graph>(name);
  ir::Value* y = g->AddValue("y");
  y->type = ir::TensorType(ir::DType::Int64, {ir::Dim{-1, "N"}, ir::Dim{C, ""}});
  g->inputs.push_back(y);
  ir::Value* table = g->AddInitializer("tar.tied_embedding", tied);
  // Position vectors: the mean tied row plus noise at the rows' RMS, so cosines start spread.
  Eigen::Map<const Mat> t(tied.data<float>(), V, D);
  const Eigen::RowVectorXf mean = t.colwise().mean();
  const float rms = std::sqrt(t.squaredNorm() / static_cast<float>(V * D)) + 1e-12f;
  ir::Tensor pos(ir::DType::Float32, {H, C, D});
  std::normal_distribution<float> noise(0.f, rms);
  for (int64_t i = 0; i < H * C; ++i)
    for (int64_t d = 0; d < D; ++d) pos.data<float>()[i * D + d] = mean[d] + noise(rng);
  ir::Value* P = g->AddInitializer("tar.position_vectors", pos);
  ir::Value* last = Axes(*g, "tar.axis_last", -1);
  ir::Value* eps = g->AddInitializer("tar.eps", ir::Tensor::Scalar(1e-8f));

  ir::Value* E = g->AddNode("Gather", {table, y}, {"tar.embed"}, "tar.embed")->outputs[0];  // [N,C,D]
  ir::Value* En = Normalize(*g, E, last, eps, "tar.embed");
  ir::Value* Pn = Normalize(*g, P, last, eps, "tar.pos");                       // [H,C,D]
  // sum_h cos(e_c, p_hc) = e_c/|e_c| . sum_h p_hc/|p_hc|
  ir::Value* Ps = ReduceSum(*g, Pn, Axes(*g, "tar.axis_heads", 0), false, "tar.pos_sum");  // [C,D]
  ir::Value* prod = g->AddNode("Mul", {En, Ps}, {"tar.cos_terms"}, "tar.cos_terms")->outputs[0];
  ir::Value* w = ReduceSum(*g, prod, last, true, "tar.weights");                 // [N,C,1]
  ir::Value* we = g->AddNode("Mul", {w, E}, {"tar.weighted"}, "tar.weighted")->outputs[0];
  ir::Value* sum = ReduceSum(*g, we, Axes(*g, "tar.axis_context", 1), false, "tar.sum");  // [N,D]
  ir::Value* scale = g->AddInitializer("tar.inv_count", ir::Tensor::Scalar(1.f / static_cast<float>(H * C)));
  const std::string avg_name = o.post ? "tar.average" : "decoder_out";
  ir::Value* out = g->AddNode("Mul", {sum, scale}, {avg_name}, "tar.average")->outputs[0];
  if (o.post) {  // Linear (identity at start) -> LayerNorm -> Swish
    ir::Node* lin = g->AddNode("Gemm", {out, g->AddInitializer("tar.post.weight", ToTensor(Mat(Mat::Identity(D, D)))),
                                         g->AddInitializer("tar.post.bias", ToTensor(Vec(Vec::Zero(D))))},
                                {"tar.post.linear"}, "tar.post.linear");
    lin->set_attr_int("transB", 1);
    ir::Node* ln = g->AddNode("LayerNormalization",
                               {lin->outputs[0], g->AddInitializer("tar.post.norm.scale", ToTensor(Vec(Vec::Ones(D)))),
                                g->AddInitializer("tar.post.norm.bias", ToTensor(Vec(Vec::Zero(D))))},
                               {"tar.post.norm"}, "tar.post.norm");
    ln->set_attr_int("axis", -1);
    ln->set_attr_float("epsilon", 1e-5f);
    ir::Value* sig = g->AddNode("Sigmoid", {ln->outputs[0]}, {"tar.post.sigmoid"}, "tar.post.sigmoid")->outputs[0];
    out = g->AddNode("Mul", {ln->outputs[0], sig}, {"decoder_out"}, "tar.post.swish")->outputs[0];
  }
  out->type = ir::TensorType(ir::DType::Float32, {ir::Dim{-1, "N"}, ir::Dim{D, ""}});
  g->outputs.push_back(out);
  return g;
}

// Truncated SVD of `t0` [V, D]: the reduced tied matrix U_r S_r [V, r] and the hidden-space
// projection V_r^T [r, D].
std::pair<Mat, Mat> Reduce(const Mat& t0, int64_t r) {
  Eigen::BDCSVD<Mat> svd(t0, Eigen::ComputeThinU | Eigen::ComputeThinV);
  Mat tied = svd.matrixU().leftCols(r) * svd.singularValues().head(r).asDiagonal();
  Mat proj = svd.matrixV().leftCols(r).transpose();
  return {tied, proj};
}

}  // namespace

std::vector<pass::OptionSpec> TarDecoderPass::options() const {
  return {
      {"context", int64_t{2}, "labels the decoder sees (the last N non-blank labels)", {}, 1, 64},
      {"heads", int64_t{4}, "heads of position vectors (each [context, width])", {}, 1, 256},
      {"post", false, "add Linear -> LayerNorm -> Swish after the average (WeNet)", {}},
      {"init", "joiner",
       "tied matrix from the joiner's output weights (joiner) or the old decoder's embedding (embedding)",
       {"joiner", "embedding"}},
      {"dim", int64_t{0},
       "tied embedding reduction: truncated-SVD rank of the tied matrix, the joiner's new hidden width "
       "(0 = keep)", {}, 0, 1e6},
  };
}

Result<bool> TarDecoderPass::Run(ir::Model& model, pass::PassContext& ctx) {
  const TarOptions o{ctx.GetInt("context"), ctx.GetInt("heads"), ctx.GetInt("dim"), ctx.GetBool("post"),
                     ctx.GetString("init")};
  // Check everything before touching the model.
  ir::GraphFile* dec_file = model.find("decoder");
  ir::Graph* joiner = model.graph("joiner");
  if (!dec_file || !dec_file->graph || !joiner)
    return Error("the model has no " + std::string(!joiner ? "'joiner'" : "'decoder'") +
                 " graph (a transducer bundle with decoder and joiner roles is needed)");
  const nlohmann::json& decoding = model.config.contains("decoding") ? model.config["decoding"] : nlohmann::json();
  int64_t vocab = 0;
  if (decoding.is_object() && decoding.contains("vocab_size") && decoding["vocab_size"].is_number_integer())
    vocab = decoding["vocab_size"].get<int64_t>();
  ASRC_ASSIGN_OR_RETURN(Joiner j, MatchJoiner(*joiner, vocab));
  if (o.dim > j.width)
    return Error("dim " + std::to_string(o.dim) + " exceeds the joiner's hidden width " +
                 std::to_string(j.width) + " (graph 'joiner')");
  const bool reduce = o.dim > 0 && o.dim < j.width;
  if (reduce && !j.enc)
    return Error("graph 'joiner': dim needs an encoder-side Gemm/MatMul into the hidden Add "
                 "to shrink, and none was found");
  Mat t0 = j.out.Weight();
  if (o.init == "embedding") {
    const ir::Tensor* e = OldEmbedding(*dec_file->graph);
    if (!e)
      return Error("init 'embedding': graph 'decoder' has no Gather of a constant [V, D] "
                   "embedding indexed by a graph input");
    if (e->dim(0) != j.vocab || e->dim(1) != j.width)
      return Error("init 'embedding': graph 'decoder' embedding is [" + std::to_string(e->dim(0)) +
                   ", " + std::to_string(e->dim(1)) + "], the joiner's output layer is [" +
                   std::to_string(j.vocab) + ", " + std::to_string(j.width) + "]");
    t0 = Eigen::Map<const Mat>(e->data<float>(), e->dim(0), e->dim(1));
  }

  const int64_t params_before = dec_file->graph->NumParams();
  // The tied matrix: the joiner's own weight where it already is [V, D] and stays as it is.
  Mat proj;  // [r, D] under reduction
  ir::Tensor tied;
  if (reduce) {
    Mat t;
    std::tie(t, proj) = Reduce(t0, o.dim);
    tied = ToTensor(t);
  } else if (o.init == "joiner" && j.out.out_in) {
    tied = *ConstantOf(j.out.mm->input(1));
  } else {
    tied = ToTensor(t0);
  }
  const int64_t width = tied.dim(1);

  // Joiner: the output layer reads the tied tensor as Gemm(transB = 1) [V, D].
  ir::Graph& g = *joiner;
  if (!j.out.out_in || !ConstantOf(j.out.mm->input(1))->SharesBufferWith(tied)) {
    if (j.out.mm->op_type == "MatMul") {  // MatMul(x, T^T): a Transpose keeps T one buffer
      ir::Value* tv = AddConst(g, "tar.tied_embedding", tied);
      ir::Node* tr = g.InsertNodeBefore(j.out.mm, "Transpose", {tv}, {g.UniqueName("tar.tied_embedding_t")},
                                          g.UniqueName("tar.tied_transpose"));
      tr->set_attr_ints("perm", {1, 0});
      g.set_input(j.out.mm, 1, tr->outputs[0]);
    } else {
      SetConst(g, j.out.mm, 1, tied);
      j.out.mm->set_attr_int("transB", 1);
    }
  }
  if (reduce) {
    SetLinear(g, *j.enc, proj * j.enc->Weight(), proj * j.enc->Bias());
    ctx.Bump("joiner_hidden_reduced", j.width - width);
  }
  if (j.dec) {  // the decoder output already lives in the tied space: identity, the old bias kept
    const Vec b = reduce ? Vec(proj * j.dec->Bias()) : j.dec->Bias();
    SetLinear(g, *j.dec, Mat::Identity(width, width), b);
  }
  j.dec_in->type.dims = {j.dec_in->type.dims.empty() ? ir::Dim{-1, "N"} : j.dec_in->type.dims[0], ir::Dim{width, ""}};
  if (reduce) {  // the hidden width changed: intermediate shapes are no longer known
    for (const auto& v : g.values()) {
      if (v->producer && !IsGraphOutput(g, v.get())) {
        v->type.has_shape = false;
        v->type.dims.clear();
      }
    }
  }
  RemoveDeadCode(g);

  // Decoder: a fresh graph; opset 17 for LayerNormalization and ReduceSum's axes input.
  dec_file->graph = BuildDecoder(dec_file->graph->name, tied, o, ctx.rng());
  bool has_default = false;
  for (auto& op : dec_file->opsets) {
    if (op.domain.empty() || op.domain == "ai.onnx") {
      op.version = std::max<int64_t>(op.version, 17);
      has_default = true;
    }
  }
  if (!has_default) dec_file->opsets.push_back({"", 17});
  if (dec_file->ir_version < 8) dec_file->ir_version = 8;

  nlohmann::json& dc = model.config["decoding"];
  dc["decoder_type"] = "stateless";
  dc["context_size"] = o.context;
  dc.erase("decoder_state");

  ctx.Bump("decoder_params_before", params_before);
  ctx.Bump("decoder_params_after", dec_file->graph->NumParams());
  ctx.Bump("tied_elements", tied.numel());
  ctx.Bump("position_vector_elements", o.heads * o.context * width);
  ctx.Bump("joiner_hidden_width", width);
  ctx.Note("tar-decoder: the decoder's embedding is the joiner's output weight (one buffer, counted once); "
           "its position vectors" + std::string(o.post ? " and post layers" : "") +
           " are untrained (and the joiner's decoder projection is reset to identity): WER needs `distill` after "
           "this pass");
  return true;
}

}  // namespace asrc::passes
