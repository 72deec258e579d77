#!/usr/bin/python3
"""Exports the benchmark models (random weights, fixed seed) into bench/models/ (gitignored).

  conformer_4m.onnx   conformer encoder, ~4M params (d=144, 7 layers), input x [1, T, 80]
  conformer_25m.onnx  conformer encoder, ~25M params (d=256, 16 layers)
  decoder_step.onnx   one LSTM prediction-network step: y [1,1] int64, h, c [1,1,512]
  joiner_step.onnx    one joiner step: encoder_out [1,256], decoder_out [1,512] -> logits [1,500]
  *_int8.onnx         the same with every MatMul/Gemm on a constant weight rewritten the way ONNX
                      Runtime's dynamic quantizer writes it: DynamicQuantizeLinear(x) ->
                      MatMulInteger(x_q, W_q, x_zp, W_zp) -> Cast -> Mul(x_scale * W_scale)
                      [-> Add(bias)], int8 weights, symmetric, per output channel; and
                      every ungrouped Conv likewise into DynamicQuantizeLinear + ConvInteger
                      (depthwise convolutions stay float).
  inputs/<model>/<name>.pb  inputs as ONNX TensorProto files (the same for the fp32 and int8
                      model), and <name>.bin raw little-endian data plus inputs.json for node.

Opset 17, exported with torch.onnx.export (torch 1.13). Run with Debian's python:
  /usr/bin/python3 bench/make_models.py [--out bench/models] [--frames 300] [--full-range]

Weights are quantized to 7 bits ([-63, 63], ORT's reduce_range) by default: ONNX Runtime's AVX2
u8 x s8 kernel adds pairs of products into int16 with saturation (vpmaddubsw), so with full-range
weights its MatMulInteger results differ from the ONNX definition (measured here: joiner logits
off by 0.27 of a 1.0 output scale, while ours match a numpy reference exactly). With 7-bit
weights no pair sum can saturate and both runtimes compute the same integers.
"""
import argparse
import json
import math
import os

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

torch.manual_seed(0)
np.random.seed(0)


class FeedForward(torch.nn.Module):
    def __init__(self, d, ff):
        super().__init__()
        self.norm = torch.nn.LayerNorm(d)
        self.w1 = torch.nn.Linear(d, ff)
        self.w2 = torch.nn.Linear(ff, d)

    def forward(self, x):
        h = self.w1(self.norm(x))
        return self.w2(h * torch.sigmoid(h))  # Swish


class SelfAttention(torch.nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.norm = torch.nn.LayerNorm(d)
        self.qkv = torch.nn.Linear(d, 3 * d)
        self.out = torch.nn.Linear(d, d)
        self.heads = heads
        self.dh = d // heads

    def forward(self, x):
        b, t, d = x.shape
        qkv = self.qkv(self.norm(x)).reshape(b, t, 3, self.heads, self.dh).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        att = torch.softmax(torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(self.dh), dim=-1)
        y = torch.matmul(att, v).transpose(1, 2).reshape(b, t, d)
        return self.out(y)


class ConvModule(torch.nn.Module):
    """Pointwise convolutions as Linear layers on [B, T, C] (the same math as 1x1 Conv1d)."""

    def __init__(self, d, kernel):
        super().__init__()
        self.norm = torch.nn.LayerNorm(d)
        self.pw1 = torch.nn.Linear(d, 2 * d)
        self.dw = torch.nn.Conv1d(d, d, kernel, padding=kernel // 2, groups=d)
        self.bn = torch.nn.BatchNorm1d(d)
        self.pw2 = torch.nn.Linear(d, d)

    def forward(self, x):
        h = torch.nn.functional.glu(self.pw1(self.norm(x)), dim=-1)
        h = self.bn(self.dw(h.transpose(1, 2))).transpose(1, 2)
        return self.pw2(h * torch.sigmoid(h))


class ConformerLayer(torch.nn.Module):
    def __init__(self, d, ff, heads, kernel):
        super().__init__()
        self.ff1 = FeedForward(d, ff)
        self.att = SelfAttention(d, heads)
        self.conv = ConvModule(d, kernel)
        self.ff2 = FeedForward(d, ff)
        self.norm = torch.nn.LayerNorm(d)

    def forward(self, x):
        x = x + 0.5 * self.ff1(x)
        x = x + self.att(x)
        x = x + self.conv(x)
        x = x + 0.5 * self.ff2(x)
        return self.norm(x)


class ConformerEncoder(torch.nn.Module):
    def __init__(self, d, ff, heads, layers, kernel, feat=80, sub_channels=None):
        super().__init__()
        c = sub_channels or d
        self.sub = torch.nn.Sequential(
            torch.nn.Conv2d(1, c, 3, stride=2), torch.nn.ReLU(),
            torch.nn.Conv2d(c, c, 3, stride=2), torch.nn.ReLU())
        f = ((feat - 1) // 2 - 1) // 2
        self.proj = torch.nn.Linear(c * f, d)
        self.layers = torch.nn.ModuleList(
            [ConformerLayer(d, ff, heads, kernel) for _ in range(layers)])
        pe = torch.zeros(2000, d)
        pos = torch.arange(2000).unsqueeze(1)
        div = torch.exp(torch.arange(0, d, 2) * (-math.log(10000.0) / d))
        pe[:, 0::2] = torch.sin(pos * div)
        pe[:, 1::2] = torch.cos(pos * div)
        self.register_buffer("pe", pe.unsqueeze(0))

    def forward(self, x):  # x: [B, T, F]
        h = self.sub(x.unsqueeze(1))  # [B, C, T', F']
        b, c, t, f = h.shape
        h = self.proj(h.permute(0, 2, 1, 3).reshape(b, t, c * f))
        h = h + self.pe[:, :t]
        for layer in self.layers:
            h = layer(h)
        return h


class DecoderStep(torch.nn.Module):
    def __init__(self, vocab=500, embed=256, hidden=512, out=512):
        super().__init__()
        self.embed = torch.nn.Embedding(vocab, embed)
        self.lstm = torch.nn.LSTM(embed, hidden, batch_first=True)
        self.proj = torch.nn.Linear(hidden, out)

    def forward(self, y, h, c):
        e = self.embed(y)  # [1, 1, E]
        o, (h2, c2) = self.lstm(e, (h, c))
        return self.proj(o), h2, c2


class JoinerStep(torch.nn.Module):
    def __init__(self, enc=256, dec=512, joiner=512, vocab=500):
        super().__init__()
        self.enc = torch.nn.Linear(enc, joiner)
        self.dec = torch.nn.Linear(dec, joiner)
        self.out = torch.nn.Linear(joiner, vocab)

    def forward(self, encoder_out, decoder_out):
        return self.out(torch.tanh(self.enc(encoder_out) + self.dec(decoder_out)))


def randomize_norms(model):
    # Random-weight models still need sane normalization statistics.
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm1d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)


def export(model, args, path, input_names, output_names, dynamic_axes=None):
    model.eval()
    with torch.no_grad():
        torch.onnx.export(model, args, path, opset_version=17, input_names=input_names,
                          output_names=output_names, dynamic_axes=dynamic_axes,
                          do_constant_folding=True)
    onnx.checker.check_model(onnx.load(path))


# ------------------------------------------------------------------------------------------------
# Dynamic int8 quantization as a graph rewrite.

def quantize_weight(w, reduce_range):
    """Symmetric int8 per output channel (columns of a [K, N] weight)."""
    qmax = 63.0 if reduce_range else 127.0
    amax = np.maximum(np.abs(w).max(axis=0), 1e-8)
    scale = (amax / qmax).astype(np.float32)
    q = np.clip(np.rint(w / scale), -qmax, qmax).astype(np.int8)
    return q, scale


def quantize_model(src, dst, reduce_range=False):
    m = onnx.load(src)
    g = m.graph
    inits = {i.name: i for i in g.initializer}
    consumers = {}
    for n in g.node:
        for name in n.input:
            consumers[name] = consumers.get(name, 0) + 1
    new_nodes, new_inits, dropped = [], [], set()
    count = 0

    def weight_of(node):
        if node.op_type == "MatMul" and node.input[1] in inits:
            w = numpy_helper.to_array(inits[node.input[1]])
            return (w, None) if w.ndim == 2 and w.dtype == np.float32 else None
        if node.op_type == "Gemm" and node.input[1] in inits:
            attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
            if attrs.get("alpha", 1.0) != 1.0 or attrs.get("beta", 1.0) != 1.0 or attrs.get("transA", 0):
                return None
            w = numpy_helper.to_array(inits[node.input[1]])
            if attrs.get("transB", 0):
                w = w.T
            bias = node.input[2] if len(node.input) > 2 and node.input[2] else None
            return (np.ascontiguousarray(w), bias)
        return None

    def conv_ok(node):
        if node.op_type != "Conv" or node.input[1] not in inits:
            return False
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        return attrs.get("group", 1) == 1 and numpy_helper.to_array(inits[node.input[1]]).ndim in (3, 4)

    def rewrite_conv(node):
        # Conv -> DynamicQuantizeLinear + ConvInteger (scalar zero points, as ORT's kernel
        # requires) -> Cast -> Mul(x_scale * per-output-channel W scale) [-> Add(bias)].
        w = numpy_helper.to_array(inits[node.input[1]])
        m_out = w.shape[0]
        flat = w.reshape(m_out, -1)
        qmax = 63.0 if reduce_range else 127.0
        scale = (np.maximum(np.abs(flat).max(axis=1), 1e-8) / qmax).astype(np.float32)
        q = np.clip(np.rint(flat / scale[:, None]), -qmax, qmax).astype(np.int8).reshape(w.shape)
        bshape = [m_out] + [1] * (w.ndim - 2)
        p = f"{node.name or node.output[0]}_q"
        new_inits.extend([numpy_helper.from_array(q, p + "_W"),
                          numpy_helper.from_array(np.array(0, np.int8), p + "_Wzp"),
                          numpy_helper.from_array(scale.reshape(bshape), p + "_Wscale")])
        bias = node.input[2] if len(node.input) > 2 and node.input[2] else None
        out = node.output[0]
        mul_out = out if bias is None else p + "_mul"
        conv = helper.make_node("ConvInteger", [p + "_x", p + "_W", p + "_xzp", p + "_Wzp"],
                                [p + "_acc"], name=p + "_conv")
        conv.attribute.extend(node.attribute)
        new_nodes.extend([
            helper.make_node("DynamicQuantizeLinear", [node.input[0]],
                             [p + "_x", p + "_xs", p + "_xzp"], name=p + "_dql"),
            conv,
            helper.make_node("Cast", [p + "_acc"], [p + "_accf"], to=TensorProto.FLOAT,
                             name=p + "_cast"),
            helper.make_node("Mul", [p + "_xs", p + "_Wscale"], [p + "_scale"], name=p + "_s"),
            helper.make_node("Mul", [p + "_accf", p + "_scale"], [mul_out], name=p + "_mul"),
        ])
        if bias is not None:
            b = numpy_helper.to_array(inits[bias]).reshape(bshape)
            new_inits.append(numpy_helper.from_array(b, p + "_bias"))
            new_nodes.append(helper.make_node("Add", [mul_out, p + "_bias"], [out], name=p + "_badd"))
            consumers[bias] -= 1
            if consumers[bias] == 0:
                dropped.add(bias)
        consumers[node.input[1]] -= 1
        if consumers[node.input[1]] == 0:
            dropped.add(node.input[1])

    for node in g.node:
        if conv_ok(node):
            count += 1
            rewrite_conv(node)
            continue
        found = weight_of(node)
        if found is None:
            new_nodes.append(node)
            continue
        w, bias = found
        count += 1
        p = f"{node.name or node.output[0]}_q"
        q, scale = quantize_weight(w, reduce_range)
        new_inits += [numpy_helper.from_array(q, p + "_W"),
                      numpy_helper.from_array(np.zeros(q.shape[1], np.int8), p + "_Wzp"),
                      numpy_helper.from_array(scale, p + "_Wscale")]
        x = node.input[0]
        out = node.output[0]
        mul_out = out if bias is None else p + "_mul"
        new_nodes += [
            helper.make_node("DynamicQuantizeLinear", [x], [p + "_x", p + "_xs", p + "_xzp"],
                             name=p + "_dql"),
            helper.make_node("MatMulInteger", [p + "_x", p + "_W", p + "_xzp", p + "_Wzp"],
                             [p + "_acc"], name=p + "_mmi"),
            helper.make_node("Cast", [p + "_acc"], [p + "_accf"], to=TensorProto.FLOAT,
                             name=p + "_cast"),
            helper.make_node("Mul", [p + "_xs", p + "_Wscale"], [p + "_scale"], name=p + "_s"),
            helper.make_node("Mul", [p + "_accf", p + "_scale"], [mul_out], name=p + "_mul"),
        ]
        if bias is not None:
            new_nodes.append(helper.make_node("Add", [mul_out, bias], [out], name=p + "_bias"))
        consumers[node.input[1]] -= 1
        if consumers[node.input[1]] == 0:
            dropped.add(node.input[1])
    del g.node[:]
    g.node.extend(new_nodes)
    kept = [i for i in g.initializer if i.name not in dropped]
    del g.initializer[:]
    g.initializer.extend(kept + new_inits)
    onnx.checker.check_model(m)
    onnx.save(m, dst)
    return count


# ------------------------------------------------------------------------------------------------

def save_inputs(folder, tensors):
    os.makedirs(folder, exist_ok=True)
    meta = []
    for name, arr in tensors:
        t = numpy_helper.from_array(arr, name)
        with open(os.path.join(folder, name + ".pb"), "wb") as f:
            f.write(t.SerializeToString())
        arr.tofile(os.path.join(folder, name + ".bin"))
        meta.append({"name": name, "dtype": str(arr.dtype), "shape": list(arr.shape),
                     "file": name + ".bin"})
    with open(os.path.join(folder, "inputs.json"), "w") as f:
        json.dump(meta, f, indent=1)


def count_params(model):
    return sum(p.numel() for p in model.parameters())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "models"))
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--full-range", action="store_true",
                    help="8-bit weights [-127, 127] instead of the default 7-bit [-63, 63]")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    summary = {}

    encoders = {
        "conformer_4m": ConformerEncoder(d=144, ff=576, heads=4, layers=7, kernel=15),
        "conformer_25m": ConformerEncoder(d=256, ff=1024, heads=4, layers=16, kernel=31),
    }
    x = torch.randn(1, args.frames, 80)
    for name, enc in encoders.items():
        randomize_norms(enc)
        path = os.path.join(args.out, name + ".onnx")
        export(enc, (x,), path, ["x"], ["encoder_out"], {"x": {1: "T"}, "encoder_out": {1: "T_out"}})
        summary[name] = count_params(enc)
        save_inputs(os.path.join(args.out, "inputs", name), [("x", x.numpy())])

    dec = DecoderStep()
    y = torch.tensor([[7]], dtype=torch.int64)
    h = torch.randn(1, 1, 512) * 0.1
    c = torch.randn(1, 1, 512) * 0.1
    export(dec, (y, h, c), os.path.join(args.out, "decoder_step.onnx"), ["y", "h", "c"],
           ["decoder_out", "h_out", "c_out"])
    summary["decoder_step"] = count_params(dec)
    save_inputs(os.path.join(args.out, "inputs", "decoder_step"),
                [("y", y.numpy()), ("h", h.numpy()), ("c", c.numpy())])

    joi = JoinerStep()
    e = torch.randn(1, 256)
    d = torch.randn(1, 512)
    export(joi, (e, d), os.path.join(args.out, "joiner_step.onnx"), ["encoder_out", "decoder_out"],
           ["logits"])
    summary["joiner_step"] = count_params(joi)
    save_inputs(os.path.join(args.out, "inputs", "joiner_step"),
                [("encoder_out", e.numpy()), ("decoder_out", d.numpy())])

    for name in list(summary):
        src = os.path.join(args.out, name + ".onnx")
        n = quantize_model(src, os.path.join(args.out, name + "_int8.onnx"), not args.full_range)
        print(f"{name}: {summary[name] / 1e6:.2f}M params, {n} matmuls/convs quantized")
    with open(os.path.join(args.out, "models.json"), "w") as f:
        json.dump({"params": summary, "frames": args.frames, "opset": 17,
                   "reduce_range": not args.full_range}, f, indent=1)


if __name__ == "__main__":
    main()
