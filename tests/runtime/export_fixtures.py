#!/usr/bin/python3
"""Exports small PyTorch models to ONNX for the runtime parity test (tests/runtime/parity_test.cc):
a conformer encoder (full and causal attention), an LSTM prediction network and a joiner.
Seeded and tiny (a few hundred KB each) so the files can be committed.
Usage: /usr/bin/python3 tests/runtime/export_fixtures.py [OUT_DIR]   (default tests/runtime/fixtures)
"""
import math
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F


class ConvSubsample(nn.Module):
    def __init__(self, feat, d):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(1, 8, 3, 2), nn.ReLU(), nn.Conv2d(8, 8, 3, 2), nn.ReLU())
        self.out = nn.Linear(8 * (((feat - 1) // 2 - 1) // 2), d)

    def forward(self, x):  # x [N, T, F]
        x = self.conv(x.unsqueeze(1))
        n, c, t, f = x.shape
        return self.out(x.transpose(1, 2).reshape(n, t, c * f))


class MHSA(nn.Module):
    def __init__(self, d, heads, causal):
        super().__init__()
        self.h, self.dk, self.causal = heads, d // heads, causal
        self.qkv = nn.Linear(d, 3 * d)
        self.out = nn.Linear(d, d)

    def forward(self, x):
        n, t, d = x.shape
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        q = q.view(n, t, self.h, self.dk).transpose(1, 2)
        k = k.view(n, t, self.h, self.dk).transpose(1, 2)
        v = v.view(n, t, self.h, self.dk).transpose(1, 2)
        s = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(self.dk)
        if self.causal:
            mask = torch.ones(t, t, dtype=torch.bool).triu(1)
            s = s.masked_fill(mask, -10000.0)
        a = torch.softmax(s, dim=-1)
        return self.out(torch.matmul(a, v).transpose(1, 2).reshape(n, t, d))


class ConvModule(nn.Module):
    def __init__(self, d, k, causal):
        super().__init__()
        self.causal, self.k = causal, k
        self.pw1 = nn.Conv1d(d, 2 * d, 1)
        self.dw = nn.Conv1d(d, d, k, groups=d, padding=0 if causal else k // 2)
        self.bn = nn.BatchNorm1d(d)
        self.pw2 = nn.Conv1d(d, d, 1)

    def forward(self, x):
        x = x.transpose(1, 2)
        x = F.glu(self.pw1(x), dim=1)
        if self.causal:
            x = F.pad(x, (self.k - 1, 0))
        x = self.pw2(F.silu(self.bn(self.dw(x))))
        return x.transpose(1, 2)


class FFN(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.ln = nn.LayerNorm(d)
        self.l1, self.l2 = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)

    def forward(self, x):
        return self.l2(F.silu(self.l1(self.ln(x))))


class Block(nn.Module):
    def __init__(self, d, heads, k, causal):
        super().__init__()
        self.ff1, self.ff2 = FFN(d), FFN(d)
        self.ln_att, self.ln_conv, self.ln_out = nn.LayerNorm(d), nn.LayerNorm(d), nn.LayerNorm(d)
        self.att = MHSA(d, heads, causal)
        self.conv = ConvModule(d, k, causal)

    def forward(self, x):
        x = x + 0.5 * self.ff1(x)
        x = x + self.att(self.ln_att(x))
        x = x + self.conv(self.ln_conv(x))
        x = x + 0.5 * self.ff2(x)
        return self.ln_out(x)


class Encoder(nn.Module):
    def __init__(self, causal, feat=40, d=48, heads=4, layers=2, k=7):
        super().__init__()
        self.sub = ConvSubsample(feat, d)
        self.blocks = nn.ModuleList([Block(d, heads, k, causal) for _ in range(layers)])

    def forward(self, x, x_lens):
        x = self.sub(x)
        for b in self.blocks:
            x = b(x)
        lens = ((x_lens - 1) // 2 - 1) // 2
        return x, lens


class LstmDecoder(nn.Module):
    def __init__(self, vocab=50, d=48, hidden=64, layers=2):
        super().__init__()
        self.emb = nn.Embedding(vocab, d)
        self.lstm = nn.LSTM(d, hidden, layers, batch_first=True)
        self.out = nn.Linear(hidden, d)

    def forward(self, y, h, c):
        e = self.emb(y)
        o, (h2, c2) = self.lstm(e, (h, c))
        return self.out(o[:, -1]), h2, c2


class Joiner(nn.Module):
    def __init__(self, d=48, vocab=50):
        super().__init__()
        self.enc, self.dec, self.out = nn.Linear(d, 64), nn.Linear(d, 64), nn.Linear(64, vocab)

    def forward(self, encoder_out, decoder_out):
        return self.out(torch.tanh(self.enc(encoder_out) + self.dec(decoder_out)))


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "fixtures")
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    for causal, name in ((False, "conformer_full"), (True, "conformer_causal")):
        m = Encoder(causal).eval()
        for mod in m.modules():  # non-trivial BatchNorm statistics
            if isinstance(mod, nn.BatchNorm1d):
                mod.running_mean.uniform_(-0.5, 0.5)
                mod.running_var.uniform_(0.5, 1.5)
        x = torch.randn(1, 100, 40)
        torch.onnx.export(m, (x, torch.tensor([100])), os.path.join(out, name + ".onnx"), opset_version=17,
                          input_names=["x", "x_lens"], output_names=["encoder_out", "encoder_out_lens"],
                          dynamic_axes={"x": {1: "T"}, "encoder_out": {1: "T_out"}})
    d = LstmDecoder().eval()
    torch.onnx.export(d, (torch.tensor([[3]]), torch.zeros(2, 1, 64), torch.zeros(2, 1, 64)),
                      os.path.join(out, "lstm_decoder.onnx"), opset_version=17,
                      input_names=["y", "h", "c"], output_names=["decoder_out", "h_out", "c_out"])
    j = Joiner().eval()
    torch.onnx.export(j, (torch.randn(1, 48), torch.randn(1, 48)), os.path.join(out, "joiner.onnx"),
                      opset_version=17, input_names=["encoder_out", "decoder_out"], output_names=["logit"])
    print("wrote fixtures to", out)


if __name__ == "__main__":
    with torch.no_grad():
        main()
