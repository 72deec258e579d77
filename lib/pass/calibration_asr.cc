#include <algorithm>
#include <cmath>
#include <map>

#include "asr/audio.h"
#include "asr/eval.h"
#include "asr/features.h"
#include "asr/stream.h"
#include "pass/eval_asr.h"

namespace asrc::pass {

namespace {

using ir::Tensor;

Tensor Zeros(const asr::TensorSpec& s) { return Tensor(s.dtype, s.shape); }

int IndexOf(const std::vector<std::string>& names, const std::string& n) {
  auto it = std::find(names.begin(), names.end(), n);
  return it == names.end() ? -1 : static_cast<int>(it - names.begin());
}

// Orders named tensors as the collector's session wants them.
Result<std::vector<Tensor>> Order(const StatsCollector& c, std::map<std::string, Tensor>& named,
                                  const std::string& role) {
  std::vector<Tensor> out;
  for (const auto& n : c.input_names()) {
    auto it = named.find(n);
    if (it == named.end()) return Error("calibration: graph '" + role + "': no value for input '" + n + "'");
    out.push_back(it->second);
  }
  return out;
}

struct Stage {
  std::unique_ptr<StatsCollector> col;
  const ir::GraphFile* gf = nullptr;
};

Result<Stage> MakeStage(const ir::Model& model, const std::string& role, const Taps& taps,
                        uint64_t seed) {
  Stage s;
  s.gf = model.find(role);
  if (!s.gf || !s.gf->graph) return Error("calibration: bundle has no graph '" + role + "'");
  auto it = taps.find(role);
  std::vector<std::string> t = it == taps.end() ? std::vector<std::string>{} : it->second;
  ASRC_ASSIGN_OR_RETURN(s.col, StatsCollector::Create(*s.gf->graph, s.gf->opset(""), t, seed));
  return s;
}

}  // namespace

Calibrator MakeAsrCalibrator(const CalibrationSource& source, uint64_t seed) {
  return [source, seed](const ir::Model& model, const Taps& taps) -> Result<ModelStats> {
    ASRC_ASSIGN_OR_RETURN(asr::BundleConfig cfg, asr::BundleConfig::FromModel(model));
    ASRC_ASSIGN_OR_RETURN(auto entries, asr::ReadManifest(source.manifest, source.split));
    if (static_cast<int>(entries.size()) > source.limit) entries.resize(source.limit);
    ASRC_ASSIGN_OR_RETURN(auto fbank, asr::Fbank::Create(cfg.frontend));
    const bool cascaded = cfg.streaming();
    Stage causal, noncausal, encoder;
    if (cascaded) {
      ASRC_ASSIGN_OR_RETURN(causal, MakeStage(model, "encoder_causal", taps, seed));
      ASRC_ASSIGN_OR_RETURN(noncausal, MakeStage(model, "encoder_noncausal", taps, seed + 1));
    } else {
      ASRC_ASSIGN_OR_RETURN(encoder, MakeStage(model, "encoder", taps, seed));
    }
    ASRC_ASSIGN_OR_RETURN(Stage decoder, MakeStage(model, "decoder", taps, seed + 2));
    ASRC_ASSIGN_OR_RETURN(Stage joiner, MakeStage(model, "joiner", taps, seed + 3));
    const int F = fbank->options().feature_dim();
    int used = 0;
    for (const auto& e : entries) {
      auto audio = asr::LoadAudio(e.audio_path, cfg.frontend.sample_rate);
      if (!audio.ok()) continue;
      const auto& smp = audio.value().samples;
      std::vector<float> feats = fbank->Compute(smp.data(), static_cast<int64_t>(smp.size()));
      const int64_t T = static_cast<int64_t>(feats.size()) / F;
      if (T <= 0) continue;
      ++used;
      Tensor enc;  // [1, T', D]: what the decoder search consumes
      if (cascaded) {
        const int64_t chunk = cfg.chunk_frames, rc = cfg.right_context_frames;
        const int64_t n = (T + chunk - 1) / chunk, total = n * chunk + rc;
        feats.resize(total * F, cfg.pad_value);
        std::map<std::string, Tensor> named;
        for (const auto& c : cfg.cache) named[c.input] = Zeros(c);
        std::vector<float> out;
        int64_t D = 0;
        const auto& outs = causal.col->output_names();
        for (int64_t k = 0; k < n; ++k) {
          Tensor x(ir::DType::Float32, {1, chunk + rc, F});
          std::copy(feats.begin() + k * chunk * F, feats.begin() + (k * chunk + chunk + rc) * F,
                    x.data<float>());
          named["x"] = x;
          ASRC_ASSIGN_OR_RETURN(auto ins, Order(*causal.col, named, "encoder_causal"));
          ASRC_ASSIGN_OR_RETURN(auto res, causal.col->Run(ins));
          int eo = IndexOf(outs, "encoder_out");
          if (eo < 0) return Error("calibration: encoder_causal has no output 'encoder_out'");
          const Tensor& y = res[eo];
          D = y.dim(-1);
          out.insert(out.end(), y.data<float>(), y.data<float>() + y.numel());
          for (const auto& c : cfg.cache) {
            int pos = IndexOf(outs, c.output);
            if (pos < 0) return Error("calibration: encoder_causal has no output '" + c.output + "'");
            named[c.input] = res[pos];
          }
        }
        const int64_t Tp = std::min<int64_t>((T + cfg.subsampling_factor - 1) / cfg.subsampling_factor,
                                             static_cast<int64_t>(out.size()) / std::max<int64_t>(1, D));
        Tensor x(ir::DType::Float32, {1, Tp, D});
        std::copy(out.begin(), out.begin() + Tp * D, x.data<float>());
        std::map<std::string, Tensor> nc = {{"x", x}, {"x_lens", Tensor::FromVector(ir::DType::Int64, {1}, std::vector<int64_t>{Tp})}};
        ASRC_ASSIGN_OR_RETURN(auto ins, Order(*noncausal.col, nc, "encoder_noncausal"));
        ASRC_ASSIGN_OR_RETURN(auto res, noncausal.col->Run(ins));
        int eo = IndexOf(noncausal.col->output_names(), "encoder_out");
        if (eo < 0) return Error("calibration: encoder_noncausal has no output 'encoder_out'");
        enc = res[eo];
      } else {
        Tensor x(ir::DType::Float32, {1, T, F});
        std::copy(feats.begin(), feats.begin() + T * F, x.data<float>());
        std::map<std::string, Tensor> m = {{"x", x}, {"x_lens", Tensor::FromVector(ir::DType::Int64, {1}, std::vector<int64_t>{T})}};
        ASRC_ASSIGN_OR_RETURN(auto ins, Order(*encoder.col, m, "encoder"));
        ASRC_ASSIGN_OR_RETURN(auto res, encoder.col->Run(ins));
        int eo = IndexOf(encoder.col->output_names(), "encoder_out");
        if (eo < 0) return Error("calibration: encoder has no output 'encoder_out'");
        enc = res[eo];
      }
      // Greedy search through decoder and joiner (taps on both see realistic inputs).
      const bool lstm = cfg.decoder_type == "lstm";
      const int ctx_size = lstm ? 1 : cfg.context_size;
      std::vector<int64_t> context(ctx_size, cfg.blank_id);
      std::map<std::string, Tensor> dnamed;
      for (const auto& s : cfg.decoder_state) dnamed[s.input] = Zeros(s);
      Tensor dec_out;
      auto run_decoder = [&]() -> Status {
        dnamed["y"] = Tensor::FromVector(ir::DType::Int64, {1, ctx_size}, context);
        ASRC_ASSIGN_OR_RETURN(auto ins, Order(*decoder.col, dnamed, "decoder"));
        ASRC_ASSIGN_OR_RETURN(auto res, decoder.col->Run(ins));
        const auto& outs = decoder.col->output_names();
        int p = IndexOf(outs, "decoder_out");
        if (p < 0) return Error("calibration: decoder has no output 'decoder_out'");
        dec_out = res[p];
        for (const auto& s : cfg.decoder_state) {
          int q = IndexOf(outs, s.output);
          if (q >= 0) dnamed[s.input] = res[q];
        }
        return Status::Ok();
      };
      ASRC_RETURN_IF_ERROR(run_decoder());
      const int64_t Tp = enc.dim(1), D = enc.dim(-1);
      for (int64_t t = 0; t < Tp; ++t) {
        for (int sym = 0; sym < 5; ++sym) {
          Tensor ef(ir::DType::Float32, {1, D});
          std::copy(enc.data<float>() + t * D, enc.data<float>() + (t + 1) * D, ef.data<float>());
          Tensor df = dec_out.Reshaped({1, dec_out.numel()});
          std::map<std::string, Tensor> jn = {{"encoder_out", ef}, {"decoder_out", df}};
          ASRC_ASSIGN_OR_RETURN(auto ins, Order(*joiner.col, jn, "joiner"));
          ASRC_ASSIGN_OR_RETURN(auto res, joiner.col->Run(ins));
          const Tensor& lg = res[0];
          int64_t best = std::max_element(lg.data<float>(), lg.data<float>() + lg.numel()) - lg.data<float>();
          if (best == cfg.blank_id) break;
          context.erase(context.begin());
          context.push_back(best);
          ASRC_RETURN_IF_ERROR(run_decoder());
        }
      }
    }
    if (used == 0) return Error("calibration: " + source.manifest + ": no readable utterance");
    ModelStats stats;
    if (cascaded) {
      stats["encoder_causal"] = causal.col->stats();
      stats["encoder_noncausal"] = noncausal.col->stats();
    } else {
      stats["encoder"] = encoder.col->stats();
    }
    stats["decoder"] = decoder.col->stats();
    stats["joiner"] = joiner.col->stats();
    return stats;
  };
}

}  // namespace asrc::pass
