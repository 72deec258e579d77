"""Speech architectures people export, run by asrc and compared with PyTorch and ONNX Runtime.

Exports small random-weight PyTorch/torchaudio models at opset 17, runs each with
`asrc run` on a seeded input, and prints max |asrc - ref| / max(1, max |ref|) per model against
PyTorch's output and against ONNX Runtime's (onnxruntime-node through tests/runtime/ort_run.js;
"-" when node or the package is missing), plus the ONNX ops each graph uses (issue 16).
Usage (after building apps/asrc):

  /usr/bin/python3 experiments/ops/parity.py [--asrc build/apps/asrc/asrc] [--out /tmp/ops_parity]
"""
import argparse
import json
import os
import subprocess
import sys

import numpy as np
import onnx
import torch
import torchaudio
from onnx import numpy_helper

torch.manual_seed(0)


class DeepSpeech(torch.nn.Module):
    """Conv2d front end + Hardtanh, a bidirectional tanh RNN, a linear classifier."""

    def __init__(self, n_mels=40, hidden=64, vocab=29):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 8, (11, 5), stride=(2, 2), padding=(5, 2))
        self.rnn = torch.nn.RNN(8 * (n_mels // 2), hidden, num_layers=2, bidirectional=True, batch_first=True)
        self.fc = torch.nn.Linear(2 * hidden, vocab)

    def forward(self, x):  # x [B, T, n_mels]
        y = torch.nn.functional.hardtanh(self.conv(x.unsqueeze(1)), 0, 20)  # [B, 8, T/2, n_mels/2]
        y = y.permute(0, 2, 1, 3).flatten(2)
        y, _ = self.rnn(y)
        return self.fc(y).log_softmax(-1)


class Wav2Vec2Features(torch.nn.Module):
    """wav2vec2's conv feature extractor (GroupNorm on the first layer, GELU) + projection."""

    def __init__(self):
        super().__init__()
        self.c0 = torch.nn.Conv1d(1, 32, 10, 5, bias=False)
        self.gn = torch.nn.GroupNorm(32, 32)
        self.c1 = torch.nn.Conv1d(32, 32, 3, 2, bias=False)
        self.c2 = torch.nn.Conv1d(32, 32, 2, 2, bias=False)
        self.ln = torch.nn.LayerNorm(32)
        self.proj = torch.nn.Linear(32, 48)

    def forward(self, wav):  # [B, samples]
        x = torch.nn.functional.gelu(self.gn(self.c0(wav.unsqueeze(1))))
        x = torch.nn.functional.gelu(self.c1(x))
        x = torch.nn.functional.gelu(self.c2(x))
        return self.proj(self.ln(x.transpose(1, 2)))


class WhisperEncoder(torch.nn.Module):
    """Conv1d + GELU twice (stride 2), sinusoid positions, pre-norm transformer layers."""

    def __init__(self, n_mels=40, d=64, layers=2):
        super().__init__()
        self.c1 = torch.nn.Conv1d(n_mels, d, 3, padding=1)
        self.c2 = torch.nn.Conv1d(d, d, 3, stride=2, padding=1)
        pos = torch.arange(200).unsqueeze(1) / torch.pow(10000, torch.arange(0, d, 2) / d)
        self.register_buffer("pos", torch.cat([pos.sin(), pos.cos()], 1))
        layer = torch.nn.TransformerEncoderLayer(d, 4, 128, dropout=0.0, activation="gelu", batch_first=True, norm_first=True)
        self.enc = torch.nn.TransformerEncoder(layer, layers)
        self.ln = torch.nn.LayerNorm(d)

    def forward(self, mel):  # [B, n_mels, T]
        x = torch.nn.functional.gelu(self.c2(torch.nn.functional.gelu(self.c1(mel)))).transpose(1, 2)
        x = x + self.pos[: x.shape[1]]
        return self.ln(self.enc(x))


class GruLstmDecoder(torch.nn.Module):
    """Reverse GRU and bidirectional LSTM with initial states, batch_first."""

    def __init__(self, d=32):
        super().__init__()
        self.gru = torch.nn.GRU(d, d, batch_first=True)
        self.lstm = torch.nn.LSTM(d, d, bidirectional=True, batch_first=True)

    def forward(self, x):
        y, _ = self.gru(x.flip(1))
        y, _ = self.lstm(y)
        return y


class UpsampleDecoder(torch.nn.Module):
    """ConvTranspose1d, AvgPool1d, InstanceNorm and nearest Upsample (vocoder/TTS shapes)."""

    def __init__(self):
        super().__init__()
        self.up = torch.nn.ConvTranspose1d(16, 8, 4, stride=2, padding=1)
        self.pool = torch.nn.AvgPool1d(3, stride=1, padding=1, count_include_pad=False)
        self.norm = torch.nn.InstanceNorm1d(8, affine=True)

    def forward(self, x):  # [B, 16, T]
        y = torch.nn.functional.leaky_relu(self.norm(self.pool(self.up(x))), 0.1)
        return torch.nn.functional.interpolate(y, scale_factor=2.0, mode="nearest")


def emformer():
    m = torchaudio.models.Emformer(input_dim=32, num_heads=4, ffn_dim=64, num_layers=2, segment_length=4,
                                   right_context_length=1)

    class Wrap(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.m = m

        def forward(self, x):  # [1, T + right_context, 32]
            lengths = torch.full((x.shape[0],), x.shape[1], dtype=torch.int64)
            return self.m(x, lengths)[0]

    return Wrap()


def wav2vec2():
    m = torchaudio.models.wav2vec2_model(
        extractor_mode="group_norm", extractor_conv_layer_config=[(32, 10, 5), (32, 3, 2), (32, 2, 2)],
        extractor_conv_bias=False, encoder_embed_dim=48, encoder_projection_dropout=0.0,
        encoder_pos_conv_kernel=16, encoder_pos_conv_groups=4, encoder_num_layers=2, encoder_num_heads=4,
        encoder_attention_dropout=0.0, encoder_ff_interm_features=96, encoder_ff_interm_dropout=0.0,
        encoder_dropout=0.0, encoder_layer_norm_first=False, encoder_layer_drop=0.0, aux_num_out=29)

    class Wrap(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.m = m

        def forward(self, wav):
            return self.m(wav)[0]

    return Wrap()


def conformer_ctc():
    enc = torchaudio.models.Conformer(input_dim=40, num_heads=4, ffn_dim=64, num_layers=2,
                                      depthwise_conv_kernel_size=7)

    class Wrap(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.enc = enc
            self.out = torch.nn.Linear(40, 29)

        def forward(self, x):  # [1, T, 40]
            lengths = torch.full((x.shape[0],), x.shape[1], dtype=torch.int64)
            return self.out(self.enc(x, lengths)[0]).log_softmax(-1)

    return Wrap()


MODELS = {
    "deepspeech_birnn": (DeepSpeech, lambda: torch.randn(1, 50, 40)),
    "wav2vec2_features": (Wav2Vec2Features, lambda: torch.randn(1, 1600)),
    "whisper_encoder": (WhisperEncoder, lambda: torch.randn(1, 40, 60)),
    "gru_lstm": (GruLstmDecoder, lambda: torch.randn(2, 7, 32)),
    "upsample_decoder": (UpsampleDecoder, lambda: torch.randn(1, 16, 20)),
    "emformer": (emformer, lambda: torch.randn(1, 17, 32)),
    "wav2vec2_torchaudio": (wav2vec2, lambda: torch.randn(1, 1600)),
    "conformer_ctc_torchaudio": (conformer_ctc, lambda: torch.randn(1, 30, 40)),
}


def run_ort(path, x, out_dir):
    """ONNX Runtime's output for input x, or None when it cannot run."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    os.makedirs(out_dir, exist_ok=True)
    x.numpy().astype(np.float32).tofile(os.path.join(out_dir, "x.bin"))
    with open(os.path.join(out_dir, "inputs.json"), "w") as f:
        json.dump([{"name": "x", "type": "float32", "dims": list(x.shape), "file": "x.bin"}], f)
    p = subprocess.run(["node", os.path.join(root, "tests/runtime/ort_run.js"), path, out_dir], capture_output=True, text=True)
    if p.returncode != 0:
        return None
    with open(os.path.join(out_dir, "outputs.json")) as f:
        meta = json.load(f)[0]
    return np.fromfile(os.path.join(out_dir, meta["file"]), dtype=np.float32).reshape(meta["dims"])


def rel_err(got, want):
    if got.shape != want.shape:
        return f"shape {got.shape} != {want.shape}"
    return f"{float(np.abs(got - want).max() / max(1.0, np.abs(want).max())):.2e}"


def run(name, make, make_input, asrc, out):
    model = make().eval()
    x = make_input()
    with torch.no_grad():
        want = model(x).numpy()
    path = os.path.join(out, name + ".onnx")
    try:
        torch.onnx.export(model, (x,), path, opset_version=17, input_names=["x"], output_names=["y"])
    except Exception as e:  # noqa: BLE001 - report and go on
        return name, f"export failed: {type(e).__name__}: {str(e).splitlines()[0][:120]} | -", ""
    ops = sorted({n.op_type for n in onnx.load(path).graph.node})
    inp = os.path.join(out, name + "_x.pb")
    with open(inp, "wb") as f:
        f.write(numpy_helper.from_array(x.numpy(), "x").SerializeToString())
    res = os.path.join(out, name + "_out")
    p = subprocess.run([asrc, "run", path, "--input", "x=" + inp, "--output-dir", res], capture_output=True, text=True)
    if p.returncode != 0:
        return name, "asrc failed: " + (p.stderr.strip().splitlines() or ["?"])[-1][:160] + " | -", " ".join(ops)
    t = onnx.TensorProto()
    with open(os.path.join(res, "y.pb"), "rb") as f:
        t.ParseFromString(f.read())
    got = numpy_helper.to_array(t)
    ort = run_ort(path, x, os.path.join(out, name + "_ort"))
    return name, rel_err(got, want) + " | " + (rel_err(got, ort) if ort is not None else "-"), " ".join(ops)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--asrc", default="build/apps/asrc/asrc")
    ap.add_argument("--out", default="/tmp/ops_parity")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    print("| model | vs PyTorch | vs ONNX Runtime | ONNX ops |")
    print("|---|---|---|---|")
    for name, (make, inp) in MODELS.items():
        n, err, ops = run(name, make, inp, a.asrc, a.out)
        print(f"| {n} | {err} | {ops} |")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
