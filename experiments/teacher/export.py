#!/usr/bin/python3
"""Export a checkpoint (or a randomly initialised preset) as an asrc bundle (docs/bundle.md).

  /usr/bin/python3 experiments/teacher/export.py --ckpt experiments/teacher/exp/demo/best.pt --out experiments/teacher/bundle
  /usr/bin/python3 experiments/teacher/export.py --random paper --out experiments/teacher/paper_scale/bundle
"""
import argparse
import json
import os
import platform
import sys
import time

import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import common as C  # noqa: E402
from model import CascadedTransducer, PRESETS, PAD_VALUE, RIGHT_CONTEXT, SUBSAMPLING, count  # noqa: E402

OPSET = 17


class CausalWrap(nn.Module):
    def __init__(self, enc):
        super().__init__()
        self.enc = enc

    def forward(self, x, cache_0, cache_1, cache_2, offset):
        return self.enc.forward_chunk(x, cache_0, cache_1, cache_2, offset)


class NonCausalWrap(nn.Module):
    def __init__(self, enc):
        super().__init__()
        self.enc = enc

    def forward(self, x, x_lens):
        return self.enc(x, x_lens)


class DecoderWrap(nn.Module):
    def __init__(self, dec):
        super().__init__()
        self.dec = dec

    def forward(self, y, h, c):
        out, (h2, c2) = self.dec.lstm(self.dec.embed(y), (h, c))
        return out[:, 0], h2, c2


class JoinerWrap(nn.Module):
    def __init__(self, j):
        super().__init__()
        self.j = j

    def forward(self, encoder_out, decoder_out):
        return self.j(encoder_out, decoder_out)


def cache_spec(enc):
    L, d, K, nl = enc.left_context, enc.d, enc.kernel, enc.num_layers
    return [
        {"input": "cache_0", "output": "new_cache_0", "shape": [nl, 1, L, d], "dtype": "float32"},
        {"input": "cache_1", "output": "new_cache_1", "shape": [nl, 1, L, d], "dtype": "float32"},
        {"input": "cache_2", "output": "new_cache_2", "shape": [nl, 1, d, K - 1], "dtype": "float32"},
        {"input": "offset", "output": "new_offset", "shape": [1], "dtype": "int64"},
    ]


def export_pair(decoder, joiner, out, suffix, d, H, nl_dec):
    torch.onnx.export(DecoderWrap(decoder),
                      (torch.zeros(1, 1, dtype=torch.int64), torch.zeros(nl_dec, 1, H), torch.zeros(nl_dec, 1, H)),
                      os.path.join(out, "decoder%s.onnx" % suffix), opset_version=OPSET,
                      input_names=["y", "h", "c"], output_names=["decoder_out", "h_out", "c_out"],
                      dynamic_axes={"y": {0: "N"}, "h": {1: "N"}, "c": {1: "N"}, "decoder_out": {0: "N"},
                                    "h_out": {1: "N"}, "c_out": {1: "N"}},
                      do_constant_folding=True)
    torch.onnx.export(JoinerWrap(joiner), (torch.randn(1, d), torch.randn(1, H)),
                      os.path.join(out, "joiner%s.onnx" % suffix), opset_version=OPSET,
                      input_names=["encoder_out", "decoder_out"], output_names=["logit"],
                      dynamic_axes={"encoder_out": {0: "N"}, "decoder_out": {0: "N"}, "logit": {0: "N"}},
                      do_constant_folding=True)


def export(model, tok, out, info_extra):
    os.makedirs(out, exist_ok=True)
    model.eval()
    enc = model.encoder_causal
    cfg = model.config
    W = enc.chunk_frames + RIGHT_CONTEXT
    d, H, nl_dec, V = cfg["d"], cfg["dec_hidden"], cfg["dec_layers"], cfg["vocab"]
    with torch.no_grad():
        cache = enc.init_cache(1)
        torch.onnx.export(CausalWrap(enc), (torch.randn(1, W, 80), *cache),
                          os.path.join(out, "encoder_causal.onnx"), opset_version=OPSET,
                          input_names=["x", "cache_0", "cache_1", "cache_2", "offset"],
                          output_names=["encoder_out", "new_cache_0", "new_cache_1", "new_cache_2", "new_offset"],
                          do_constant_folding=True)
        torch.onnx.export(NonCausalWrap(model.encoder_noncausal),
                          (torch.randn(1, 20, d), torch.tensor([20], dtype=torch.int64)),
                          os.path.join(out, "encoder_noncausal.onnx"), opset_version=OPSET,
                          input_names=["x", "x_lens"], output_names=["encoder_out", "encoder_out_lens"],
                          dynamic_axes={"x": {0: "N", 1: "T"}, "x_lens": {0: "N"},
                                        "encoder_out": {0: "N", 1: "T"}, "encoder_out_lens": {0: "N"}},
                          do_constant_folding=True)
        export_pair(model.decoder, model.joiner, out, "", d, H, nl_dec)
        if cfg.get("lookahead_decoder"):  # the look-ahead pass's own pair (docs/bundle.md)
            export_pair(model.decoder_la, model.joiner_la, out, "_lookahead", d, H, nl_dec)
    model.eval()  # the wrappers' export restores their default train mode into the submodules
    with open(os.path.join(out, "tokens.txt"), "w") as f:
        f.write(tok.tokens_txt())
    params = {"encoder_causal": count(model.encoder_causal), "encoder_noncausal": count(model.encoder_noncausal),
              "decoder": count(model.decoder), "joiner": count(model.joiner)}
    graphs = {"encoder_causal": "encoder_causal.onnx", "encoder_noncausal": "encoder_noncausal.onnx",
              "decoder": "decoder.onnx", "joiner": "joiner.onnx"}
    if cfg.get("lookahead_decoder"):
        params.update(decoder_lookahead=count(model.decoder_la), joiner_lookahead=count(model.joiner_la))
        graphs.update(decoder_lookahead="decoder_lookahead.onnx", joiner_lookahead="joiner_lookahead.onnx")
    params["total"] = sum(params.values())
    info = {"params": params, "model_config": cfg,
            "cache_meaning": {
                "cache_0": "attention keys of the last left_context (%d) subsampled frames, per causal layer [layers, N, L, d]" % enc.left_context,
                "cache_1": "attention values of the last left_context subsampled frames, per causal layer [layers, N, L, d]",
                "cache_2": "causal depthwise-conv input history (kernel-1 frames), per causal layer [layers, N, d, kernel-1]",
                "offset": "subsampled frames processed so far; masks the not-yet-filled part of the attention cache"},
            "export": {"opset": OPSET, "torch": torch.__version__, "exported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}}
    info.update(info_extra)
    mj = {
        "format": "asrc-bundle",
        "version": 1,
        "model_type": "cascaded_transducer",
        "graphs": graphs,
        "tokens": "tokens.txt",
        "frontend": C.FRONTEND_JSON,
        "decoding": {
            "blank_id": 0,
            "vocab_size": V,
            "decoder_type": "lstm",
            "context_size": 1,
            "decoder_state": [{"input": "h", "output": "h_out", "shape": [nl_dec, 1, H]},
                              {"input": "c", "output": "c_out", "shape": [nl_dec, 1, H]}],
            "subsampling_factor": SUBSAMPLING,
            "lookahead_input": "encoder_causal_out",
        },
        "streaming": {
            "chunk_frames": enc.chunk_frames,
            "right_context_frames": RIGHT_CONTEXT,
            "pad_value": PAD_VALUE,
            "cache": cache_spec(enc),
        },
        "info": info,
    }
    with open(os.path.join(out, "model.json"), "w") as f:
        json.dump(mj, f, indent=2)
        f.write("\n")
    return mj


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", help="training checkpoint (.pt)")
    ap.add_argument("--random", choices=sorted(PRESETS), help="export a preset with random weights instead")
    ap.add_argument("--vocab", type=int, default=0, help="with --random: vocab size (default: preset's)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    torch.set_num_threads(2)
    if args.ckpt:
        model, tok, ck = C.load_checkpoint(args.ckpt)
        hist = ck.get("history", [])
        info = {"weights": "trained", "checkpoint": os.path.basename(args.ckpt), "epochs": ck["epoch"],
                "steps": ck["step"], "training_time_s": round(ck["train_time"], 1),
                "training_hardware": ck.get("hardware", "2 shared CPU cores (AMD EPYC, AVX2), no GPU"),
                "data": C.repo_relative(ck.get("data", {}), ck.get("args", {}).get("data", "/work/shared/data")),
                "train_args": C.repo_relative(ck.get("args", {}), ck.get("args", {}).get("data", "/work/shared/data")),
                "dev_wer_last_epoch": {k: hist[-1][k] for k in ("dev_wer_streaming", "dev_wer_lookahead")} if hist else {},
                "best": ck.get("best"),
                "paths": "relative to the repository root; <data> = train.py --data (the folder with cathy/ and "
                         "text/lj_sentences.txt); <machine-local> = a temporary folder of the training machine"}
    else:
        assert args.random
        torch.manual_seed(0)
        cfg = dict(PRESETS[args.random])
        if args.vocab:
            cfg["vocab"] = args.vocab
        model = CascadedTransducer(**cfg).eval()
        tok = None
        info = {"weights": "random (untrained, for size/speed work only)", "preset": args.random}
    if tok is None:
        # random weights: a placeholder vocabulary of the right size with <blk> at 0
        class _T:
            def tokens_txt(self):
                V = model.config["vocab"]
                return "<blk> 0\n<unk> 1\n" + "".join("tok%d %d\n" % (i, i) for i in range(2, V))
        tok = _T()
    mj = export(model, tok, args.out, info)
    print("exported", args.out, json.dumps(mj["info"]["params"]))
    for f in sorted(os.listdir(args.out)):
        print("  %-24s %8.2f MB" % (f, os.path.getsize(os.path.join(args.out, f)) / 1e6))


if __name__ == "__main__":
    main()
