"""Speech architectures people export, run by asrc and compared with PyTorch and ONNX Runtime.

Exports small random-weight PyTorch/torchaudio models at opset 17, runs each with
`asrc run` on a seeded input, and prints max |asrc - ref| / max(1, max |ref|) per model against
PyTorch's output and against ONNX Runtime's (onnxruntime-node through tests/runtime/ort_run.js;
"-" when ORT cannot run it: its error is printed under the table), the parameter counts of
PyTorch and of `asrc inspect --json`, and the ONNX ops each graph uses (issue 16). Models with
several inputs (the RNN-T joiner) name them x0, x1, ...; int64 inputs (predictor tokens) pass as is.
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


# wav2vec2's feature-extractor conv layers (channels, kernel, stride), 32 channels each: a short
# 20x ladder for the tiny parity input, and the real extractor's strides (320x: 3 s at 16 kHz ->
# 149 frames, where the 20x ladder would give 2399) for bench/arch_bench.py.
WAV2VEC2_20X = [(32, 10, 5), (32, 3, 2), (32, 2, 2)]
WAV2VEC2_320X = [(32, 10, 5)] + [(32, 3, 2)] * 4 + [(32, 2, 2)] * 2


def wav2vec2(conv_layers=WAV2VEC2_20X):
    m = torchaudio.models.wav2vec2_model(
        extractor_mode="group_norm", extractor_conv_layer_config=conv_layers,
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


_RNNT = {}


def emformer_rnnt():
    """One random-weight torchaudio Emformer RNN-T (emformer_rnnt_model), shared by its three pieces."""
    if "m" not in _RNNT:
        _RNNT["m"] = torchaudio.models.emformer_rnnt_model(
            input_dim=32, encoding_dim=32, num_symbols=29, segment_length=4, right_context_length=1,
            time_reduction_input_dim=32, time_reduction_stride=2, transformer_num_heads=4, transformer_ffn_dim=64,
            transformer_num_layers=2, transformer_dropout=0.0, transformer_activation="gelu",
            transformer_left_context_length=0, transformer_max_memory_size=0,
            transformer_weight_init_scale_strategy="depthwise", transformer_tanh_on_mem=True, symbol_embedding_dim=16,
            num_lstm_layers=2, lstm_layer_norm=True, lstm_layer_norm_epsilon=1e-3, lstm_dropout=0.0).eval()
    return _RNNT["m"]


def rnnt_transcriber():
    class Wrap(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.m = emformer_rnnt().transcriber

        def forward(self, x):  # [1, 2 * (T + right_context), 32] features
            lengths = torch.full((x.shape[0],), x.shape[1], dtype=torch.int64)
            return self.m(x, lengths)[0]

    return Wrap()


def rnnt_predictor():
    class Wrap(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.m = emformer_rnnt().predictor

        def forward(self, tokens):  # [1, U] int64 symbols; embedding, 2 layer-normed LSTM layers, linear
            lengths = torch.full((tokens.shape[0],), tokens.shape[1], dtype=torch.int64)
            return self.m(tokens, lengths)[0]

    return Wrap()


def rnnt_joiner():
    class Wrap(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.m = emformer_rnnt().joiner

        def forward(self, source, target):  # [1, T, 32], [1, U, 32] -> [1, T, U, 29]
            lengths = torch.full((1,), 1, dtype=torch.int64)
            return self.m(source, lengths, target, lengths)[0]

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
    "emformer_rnnt_transcriber": (rnnt_transcriber, lambda: torch.randn(1, 34, 32)),
    "emformer_rnnt_predictor": (rnnt_predictor, lambda: torch.randint(0, 29, (1, 6), dtype=torch.int64)),
    "emformer_rnnt_joiner": (rnnt_joiner, lambda: (torch.randn(1, 8, 32), torch.randn(1, 6, 32))),
}


def input_names(xs):
    return ["x"] if len(xs) == 1 else [f"x{i}" for i in range(len(xs))]


def run_ort(path, xs, out_dir):
    """ONNX Runtime's output for inputs xs, or (None, ORT's error line) when it cannot run."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    os.makedirs(out_dir, exist_ok=True)
    spec = []
    for name, x in zip(input_names(xs), xs):
        x.numpy().tofile(os.path.join(out_dir, name + ".bin"))
        spec.append({"name": name, "type": str(x.numpy().dtype), "dims": list(x.shape), "file": name + ".bin"})
    with open(os.path.join(out_dir, "inputs.json"), "w") as f:
        json.dump(spec, f)
    p = subprocess.run(["node", os.path.join(root, "tests/runtime/ort_run.js"), path, out_dir], capture_output=True, text=True)
    if p.returncode != 0:
        return None, (p.stderr.strip().splitlines() or ["?"])[-1]
    with open(os.path.join(out_dir, "outputs.json")) as f:
        meta = json.load(f)[0]
    return np.fromfile(os.path.join(out_dir, meta["file"]), dtype=np.float32).reshape(meta["dims"]), None


def rel_err(got, want):
    if got.shape != want.shape:
        return f"shape {got.shape} != {want.shape}"
    return f"{float(np.abs(got - want).max() / max(1.0, np.abs(want).max())):.2e}"


def asrc_params(asrc, path):
    """params_total from `asrc inspect --json`, or its error line."""
    p = subprocess.run([asrc, "inspect", "--json", path], capture_output=True, text=True)
    if p.returncode != 0:
        return "inspect failed: " + (p.stderr.strip().splitlines() or ["?"])[-1][:120]
    return json.loads(p.stdout)["params_total"]


def torch_params(model):
    """PyTorch's parameter count, and the count over distinct tensors: the exporter keeps one
    initializer for parameters with equal shape and values (fresh LayerNorm weights are all 1)."""
    params = list(model.parameters())
    distinct = {(tuple(p.shape), p.detach().numpy().tobytes()): p.numel() for p in params}
    total = sum(p.numel() for p in params)
    uniq = sum(distinct.values())
    return str(total) if uniq == total else f"{total} ({uniq} distinct)"


def run(name, make, make_input, asrc, out, ort_errors):
    """One table row: (name, error vs PyTorch, error vs ORT, params PyTorch / asrc inspect, ops)."""
    torch.manual_seed(0)  # each model's weights and input do not depend on --only
    model = make().eval()
    xs = make_input()
    xs = xs if isinstance(xs, tuple) else (xs,)
    names = input_names(xs)
    n_params = torch_params(model)
    with torch.no_grad():
        want = model(*xs).numpy()
    path = os.path.join(out, name + ".onnx")
    try:
        torch.onnx.export(model, xs, path, opset_version=17, input_names=names, output_names=["y"])
    except Exception as e:  # noqa: BLE001 - report and go on
        return name, f"export failed: {type(e).__name__}: {str(e).splitlines()[0][:120]}", "-", n_params, ""
    ops = " ".join(sorted({n.op_type for n in onnx.load(path).graph.node}))
    params = f"{n_params} / {asrc_params(asrc, path)}"
    cmd = [asrc, "run", path, "--output-dir", os.path.join(out, name + "_out")]
    for n, x in zip(names, xs):
        inp = os.path.join(out, f"{name}_{n}.pb")
        with open(inp, "wb") as f:
            f.write(numpy_helper.from_array(x.numpy(), n).SerializeToString())
        cmd += ["--input", f"{n}={inp}"]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        return name, "asrc failed: " + (p.stderr.strip().splitlines() or ["?"])[-1][:160], "-", params, ops
    t = onnx.TensorProto()
    with open(os.path.join(out, name + "_out", "y.pb"), "rb") as f:
        t.ParseFromString(f.read())
    got = numpy_helper.to_array(t)
    ort, ort_err = run_ort(path, xs, os.path.join(out, name + "_ort"))
    if ort_err is not None:
        ort_errors[name] = ort_err
    return name, rel_err(got, want), (rel_err(got, ort) if ort is not None else "-"), params, ops


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--asrc", default="build/apps/asrc/asrc")
    ap.add_argument("--out", default="/tmp/ops_parity")
    ap.add_argument("--only", default="", help="comma-separated model names")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    print("| model | vs PyTorch | vs ONNX Runtime | params: PyTorch / asrc inspect | ONNX ops |")
    print("|---|---|---|---|---|")
    ort_errors = {}
    for name, (make, inp) in MODELS.items():
        if a.only and name not in a.only.split(","):
            continue
        row = run(name, make, inp, a.asrc, a.out, ort_errors)
        print("| " + " | ".join(str(c) for c in row) + " |")
        sys.stdout.flush()
    for name, err in ort_errors.items():
        print(f"ONNX Runtime on {name}: {err}")


if __name__ == "__main__":
    main()
