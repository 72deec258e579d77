#!/usr/bin/python3
"""Pack the training data as compact features so training can run on a machine that has neither the
audio nor the TTS voices (e.g. a borrowed GPU machine with a 64 MiB transfer limit).

Computes the Kaldi fbank features (common.FBANK_KW) of cathy train (speed 1.0; tempo is perturbed
in the feature domain by train.py --tempo) and dev, and of the synthetic training set; trains the
BPE model on the training text; stores the features as uint8 with a per-utterance, per-bin affine
map (max quantization error 1/510 of the bin's range in that utterance, ~0.05 in log-mel units),
the BPE model bytes and the token ids, in one pickle.

The features of each set are quantized to --bits levels per bin and utterance (uniform between the
bin's min and max in that utterance) and stored as one lzma blob with a frame-delta filter. At 6 bits
the quantization step is ~1/63 of a bin's range (~0.25 in log-mel units); measured sizes: 8-bit
~6.2 kB/s of audio, 6-bit ~4.5 kB/s, 5-bit ~3.5 kB/s.

  /usr/bin/python3 experiments/teacher/pack_feats.py --out .devcarry/pack.pkl [--max-synth-hours 1.2]
"""
import argparse
import lzma
import os
import pickle
import sys
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import common as C  # noqa: E402
from textnorm import normalize  # noqa: E402


FILTERS = [{"id": lzma.FILTER_DELTA, "dist": 80}, {"id": lzma.FILTER_LZMA2, "preset": 6}]


def quantize(f, bits):
    """f [T, 80] float -> (uint8 [T, 80] in [0, 2^bits - 1], lo [80] f32, step [80] f32)."""
    top = (1 << bits) - 1
    lo = f.min(0)
    step = np.maximum(f.max(0) - lo, 1e-6) / top
    q = np.clip(np.rint((f - lo) / step), 0, top).astype(np.uint8)
    return q, lo.astype(np.float32), step.astype(np.float32)


def pack_set(items, tok, bits):
    qs, los, steps = [], [], []
    for it in items:
        q, lo, step = quantize(C.fbank(C.load_wave(it["audio_filepath"])).numpy(), bits)
        qs.append(q); los.append(lo); steps.append(step)
    q = np.concatenate(qs)
    return dict(bits=bits, ids=[it["id"] for it in items], texts=[it["text"] for it in items],
                tokens=[np.array(tok.encode(it["text"]), dtype=np.int16) for it in items],
                lens=np.array([len(x) for x in qs], dtype=np.int32), lo=np.stack(los), step=np.stack(steps),
                q=lzma.compress(q.tobytes(), format=lzma.FORMAT_XZ, filters=FILTERS), frames=q.shape[0])


def unpack_set(s):
    """-> list of (features float32 [T, 80] numpy, tokens int64 numpy, text)."""
    q = np.frombuffer(lzma.decompress(s["q"]), dtype=np.uint8).reshape(s["frames"], 80)
    out, o = [], 0
    for i, n in enumerate(s["lens"]):
        f = q[o:o + n].astype(np.float32) * s["step"][i] + s["lo"][i]
        out.append((f, s["tokens"][i].astype(np.int64), s["texts"][i]))
        o += n
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="/work/shared/data")
    ap.add_argument("--synth", default=os.path.join(HERE, "data_gen", "manifest.jsonl"))
    ap.add_argument("--synth-test", default=os.path.join(HERE, "..", "data", "default_eval", "manifest.jsonl"))
    ap.add_argument("--max-synth-hours", type=float, default=1.2)
    ap.add_argument("--bpe-vocab", type=int, default=256)
    ap.add_argument("--bpe-from", default="", help="tokenize with this checkpoint's BPE model instead of training "
                    "one (to continue training it with train.py --init-from)")
    ap.add_argument("--bits-cathy", type=int, default=6)
    ap.add_argument("--bits-dev", type=int, default=8)
    ap.add_argument("--bits-synth", type=int, default=5)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    t0 = time.time()
    man = os.path.join(args.data, "cathy", "manifest.jsonl")
    cathy_train = C.read_manifest(man, "train")
    cathy_dev = C.read_manifest(man, "dev")
    cathy_test = C.read_manifest(man, "test")
    synth_all = C.read_manifest(args.synth)
    synth, hours = [], 0.0
    for d in synth_all:  # the manifest is already in random order
        if hours + d["duration"] / 3600 > args.max_synth_hours:
            break
        synth.append(d)
        hours += d["duration"] / 3600
    synth_test = C.read_manifest(args.synth_test) if os.path.exists(args.synth_test) else []
    heldout = {normalize(d["text"]) for d in cathy_dev + cathy_test + synth_test}
    train_texts = [normalize(d["text"]) for d in cathy_train + synth]
    leak = heldout & set(train_texts)
    assert not leak, "held-out sentences in training text: %s" % sorted(leak)[:5]

    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    if args.bpe_from:
        bpe = torch.load(args.bpe_from, map_location="cpu")["bpe_model"]
    else:
        bpe = C.train_bpe(train_texts, args.bpe_vocab, os.path.splitext(os.path.abspath(args.out))[0] + "_bpe")
    tok = C.Tokenizer(bpe)
    pack = dict(bpe_model=bpe, fbank=C.FBANK_KW,
                cathy_train=pack_set(cathy_train, tok, args.bits_cathy),
                cathy_dev=pack_set(cathy_dev, tok, args.bits_dev),
                synth_train=pack_set(synth, tok, args.bits_synth),
                info=dict(cathy_train_utts=len(cathy_train),
                          cathy_train_hours=sum(d["duration"] for d in cathy_train) / 3600,
                          synth_train_utts=len(synth), synth_train_hours=hours,
                          synth_voices=sorted({d["speaker"] for d in synth}),
                          heldout_checked=len(heldout), bits=dict(cathy_train=args.bits_cathy,
                          cathy_dev=args.bits_dev, synth_train=args.bits_synth)))
    tmp = args.out + ".tmp"
    with open(tmp, "wb") as f:
        pickle.dump(pack, f, protocol=4)
    os.replace(tmp, args.out)
    print("packed cathy train %d, dev %d, synth %d (%.2f h) -> %s (%.1f MB) in %.0f s" % (
        len(cathy_train), len(cathy_dev), len(synth), hours, args.out, os.path.getsize(args.out) / 1e6,
        time.time() - t0))


if __name__ == "__main__":
    main()
