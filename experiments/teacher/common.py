"""Shared helpers: manifests, Kaldi fbank front end, tokenizer, greedy search, WER."""
import io
import json
import os

import torch
import torchaudio

from textnorm import normalize, wer  # noqa: F401 (wer re-exported as C.wer)

FBANK_KW = dict(num_mel_bins=80, frame_length=25.0, frame_shift=10.0, sample_frequency=16000.0,
                window_type="povey", low_freq=20.0, high_freq=-400.0, dither=0.0, snip_edges=False,
                energy_floor=1.0)
WAVEFORM_SCALE = 32768.0

FRONTEND_JSON = {
    "type": "kaldi_fbank", "sample_rate": 16000, "num_mel_bins": 80, "frame_length_ms": 25.0,
    "frame_shift_ms": 10.0, "window_type": "povey", "low_freq": 20.0, "high_freq": -400.0,
    "dither": 0.0, "snip_edges": False, "preemphasis_coefficient": 0.97, "remove_dc_offset": True,
    "round_to_power_of_two": True, "use_energy": False, "use_log_fbank": True, "use_power": True,
    "energy_floor": 1.0, "waveform_scale": 32768.0,
}


def read_manifest(path, split=None):
    base = os.path.dirname(os.path.abspath(path))
    out = []
    for line in open(path, encoding="utf-8"):
        d = json.loads(line)
        if split is not None and d.get("split") != split:
            continue
        if not os.path.isabs(d["audio_filepath"]):
            d["audio_filepath"] = os.path.join(base, d["audio_filepath"])
        out.append(d)
    return out


def load_wave(path):
    w, sr = torchaudio.load(path)
    assert sr == 16000, (path, sr)
    return w[:1]


def fbank(wave):
    """wave [1, S] float in [-1, 1) -> [T, 80]"""
    return torchaudio.compliance.kaldi.fbank(wave * WAVEFORM_SCALE, **FBANK_KW)


def speed_perturb(wave, speed):
    if speed == 1.0:
        return wave
    return torchaudio.functional.resample(wave, int(round(16000 * speed)), 16000)


class Tokenizer:
    def __init__(self, model_bytes):
        import sentencepiece as spm
        self.sp = spm.SentencePieceProcessor()
        self.sp.LoadFromSerializedProto(model_bytes)
        assert self.sp.id_to_piece(0) == "<blk>"

    def __len__(self):
        return self.sp.get_piece_size()

    def encode(self, text):
        return self.sp.encode(normalize(text), out_type=int)

    def decode(self, ids):
        return self.sp.decode([i for i in ids if i > 0])

    def tokens_txt(self):
        return "".join("%s %d\n" % (self.sp.id_to_piece(i), i) for i in range(len(self)))


def train_bpe(texts, vocab_size, prefix):
    import sentencepiece as spm
    txt = prefix + ".txt"
    with open(txt, "w") as f:
        for t in texts:
            f.write(t + "\n")
    spm.SentencePieceTrainer.train(
        input=txt, model_prefix=prefix, vocab_size=vocab_size, model_type="bpe",
        character_coverage=1.0, user_defined_symbols=["<blk>"], unk_id=1, bos_id=-1, eos_id=-1,
        input_sentence_size=100000000, num_threads=1)
    return open(prefix + ".model", "rb").read()


@torch.no_grad()
def greedy_search(model, enc, max_sym=5, blank=0, lookahead=False):
    """enc [T, D] encoder frames (one utterance). Same semantics as the bundle runner:
    decoder starts from blank, per frame up to max_sym non-blank symbols. lookahead: the look-ahead
    pass's own decoder and joiner where the model has them (model.pair)."""
    dec, joiner = model.pair(lookahead)
    H, nl = dec.hidden, dec.num_layers
    state = (torch.zeros(nl, 1, H), torch.zeros(nl, 1, H))
    y = torch.tensor([[blank]], dtype=torch.int64)
    dout, state = dec(y, state)
    dproj = joiner.dec_proj(dout[:, 0])
    eproj = joiner.enc_proj(enc)
    hyp = []
    for t in range(enc.shape[0]):
        for _ in range(max_sym):
            logit = joiner.out(torch.tanh(eproj[t:t + 1] + dproj))
            k = int(logit.argmax(-1))
            if k == blank:
                break
            hyp.append(k)
            dout, state = dec(torch.tensor([[k]], dtype=torch.int64), state)
            dproj = joiner.dec_proj(dout[:, 0])
    return hyp


@torch.no_grad()
def decode_feats(model, feats_list, max_sym=5, batch=16):
    """Both passes on a list of [T, 80] feature tensors (whole-utterance chunk-masked causal forward,
    which equals the streaming runner of docs/bundle.md; look-ahead = non-causal encoder on the
    ceil(T/4) causal frames).  Returns (streaming_hyps, lookahead_hyps) as token id lists."""
    model.eval()
    order = sorted(range(len(feats_list)), key=lambda i: feats_list[i].shape[0])
    hs, hl = [None] * len(order), [None] * len(order)
    for b in range(0, len(order), batch):
        idx = order[b:b + batch]
        lens = torch.tensor([feats_list[i].shape[0] for i in idx])
        x = torch.nn.utils.rnn.pad_sequence([feats_list[i] for i in idx], batch_first=True)
        enc, elens = model.encoder_causal(x, lens)
        tmax = int(elens.max())
        enc = enc[:, :tmax]
        enc2, _ = model.encoder_noncausal(enc, elens)
        for j, i in enumerate(idx):
            n = int(elens[j])
            hs[i] = greedy_search(model, enc[j, :n], max_sym)
            hl[i] = greedy_search(model, enc2[j, :n], max_sym, lookahead=True)
    return hs, hl


def load_checkpoint(path):
    from model import CascadedTransducer
    ck = torch.load(path, map_location="cpu")
    model = CascadedTransducer(**ck["config"])
    model.load_state_dict(ck["model"])
    model.eval()
    return model, Tokenizer(ck["bpe_model"]), ck


REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))


def repo_relative(obj, data_root="/work/shared/data"):
    """Paths in a (nested) record, rewritten so that they mean the same on any machine: inside this
    repository (or another checkout of it: from its experiments/ on) -> relative to the repository root;
    inside the data folder (train.py --data) -> '<data>/...'; any other absolute path (a temporary folder
    of the machine that trained) -> '<machine-local>/NAME'. Relative paths and other values are kept."""
    if isinstance(obj, dict):
        return {k: repo_relative(v, data_root) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(repo_relative(v, data_root) for v in obj)
    if not isinstance(obj, str) or not os.path.isabs(obj):
        return obj
    p = os.path.normpath(obj)
    if p == REPO_ROOT or p.startswith(REPO_ROOT + os.sep):
        return os.path.relpath(p, REPO_ROOT)
    if "/experiments/" in p:
        return "experiments/" + p.split("/experiments/", 1)[1]
    d = os.path.normpath(data_root)
    if p == d or p.startswith(d + os.sep):
        return "<data>" + p[len(d):]
    return "<machine-local>/" + os.path.basename(p)
