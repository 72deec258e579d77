#!/usr/bin/python3
"""Synthetic speech for the teacher recipe.

LJ sentences spoken by espeak-ng voice/variant combinations and flite voices, perturbed with sox
(speed, pitch, reverb) plus additive noise, written as 16 kHz mono FLAC with NeMo-style JSONL
manifests.  Whole voices are held out for the synthetic test set, which is written (short
sentences, ~200 utterances) to experiments/data/default_eval/ (commit-ready); the training part
goes to a gitignored folder (default experiments/teacher/data_gen/).

No cathy dev/test sentence and no synthetic-test sentence appears in any training text (asserted).

  /usr/bin/python3 experiments/teacher/gen_data.py --data /work/shared/data --n-train 2000 --n-test 200
"""
import argparse
import json
import os
import random
import re
import subprocess
import sys
import time
from multiprocessing import Pool

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
from textnorm import normalize  # noqa: E402

# Voices. Whole base voices are held out for the test set (and test-only variants).
ESPEAK_TRAIN = ["en-us", "en-gb", "en-gb-x-rp", "en-gb-scotland", "en-gb-x-gbclan", "en-us-nyc"]
ESPEAK_TRAIN_VARIANTS = ["", "+f1", "+f2", "+f3", "+f4", "+m1", "+m2", "+m3", "+m4", "+klatt"]
ESPEAK_TEST = ["en-029", "en-gb-x-gbcwmd"]
ESPEAK_TEST_VARIANTS = ["", "+f5", "+m5", "+m7"]
FLITE_TRAIN = ["awb", "slt", "kal16"]
FLITE_TEST = ["rms"]

OK_CHARS = re.compile(r"^[A-Za-z ,.;:'\"?!\-]+$")


def load_sentences(path):
    out = []
    for line in open(path, encoding="utf-8"):
        s = line.strip()
        if not s or not OK_CHARS.match(s):
            continue
        n = normalize(s)
        if not n:
            continue
        out.append((s, n))
    return out


def synth_one(job):
    """job: dict(kind, voice, text, out, speed, pitch, reverb, snr, seed). Returns (out, dur) or None."""
    rng = np.random.default_rng(job["seed"])
    try:
        if job["kind"] == "espeak":
            wav = subprocess.run(["espeak-ng", "-v", job["voice"], "-s", str(job["rate"]), "-p",
                                  str(job["espeak_pitch"]), "--stdout", job["text"]],
                                 check=True, capture_output=True).stdout
            src = ["-t", "wav", "-"]
        else:
            tmp = job["out"] + ".tmp.wav"
            subprocess.run(["flite", "-voice", job["voice"], "-t", job["text"], "-o", tmp],
                           check=True, capture_output=True)
            wav = None
            src = [tmp]
        effects = ["speed", "%.3f" % job["speed"], "pitch", str(job["pitch"])]
        if job["reverb"] > 0:
            effects += ["reverb", str(job["reverb"])]
        effects += ["rate", "16000", "channels", "1", "norm", "-3"]
        raw = subprocess.run(["sox"] + src + ["-t", "raw", "-e", "signed", "-b", "16", "-c", "1", "-"] + effects,
                             input=wav, check=True, capture_output=True).stdout
        if wav is None:
            os.remove(tmp)
        x = np.frombuffer(raw, dtype=np.int16).astype(np.float32)
        if x.size < 1600:
            return None
        # trim leading/trailing near-silence to at most 0.25 s
        env = np.abs(x) > 300
        idx = np.nonzero(env)[0]
        if idx.size == 0:
            return None
        a = max(0, idx[0] - 4000)
        b = min(x.size, idx[-1] + 4000)
        x = x[a:b]
        if job["snr"] is not None:
            p = float(np.mean(x ** 2)) + 1e-9
            noise = rng.standard_normal(x.size).astype(np.float32)
            if rng.random() < 0.5:  # pinkish noise
                noise = np.cumsum(noise) * 0.05
                noise -= np.convolve(noise, np.ones(400) / 400, mode="same")
            noise *= np.sqrt(p / (np.mean(noise ** 2) + 1e-9) / (10 ** (job["snr"] / 10)))
            x = x + noise
        peak = np.max(np.abs(x))
        if peak > 32000:
            x *= 32000 / peak
        pcm = x.astype(np.int16).tobytes()
        subprocess.run(["sox", "-t", "raw", "-r", "16000", "-e", "signed", "-b", "16", "-c", "1", "-",
                        "-C", "8", job["out"]], input=pcm, check=True, capture_output=True)
        return job["out"], x.size / 16000.0
    except subprocess.CalledProcessError as e:
        print("failed", job["voice"], job["text"][:40], e.stderr[:200], file=sys.stderr)
        return None


def make_jobs(sentences, voices, out_dir, rng, split, seed0, reverb_p=0.3, noise_p=0.5):
    jobs = []
    for i, ((raw, norm), (kind, voice)) in enumerate(zip(sentences, voices)):
        uid = "synth_%s_%05d" % (split, i)
        jobs.append(dict(
            id=uid, kind=kind, voice=voice, text=raw, norm=norm,
            out=os.path.join(out_dir, uid + ".flac"),
            rate=int(rng.integers(140, 200)), espeak_pitch=int(rng.integers(30, 70)),
            speed=float(rng.uniform(0.9, 1.1)), pitch=int(rng.integers(-200, 200)),
            reverb=int(rng.integers(10, 60)) if rng.random() < reverb_p else 0,
            snr=float(rng.uniform(10, 30)) if rng.random() < noise_p else None,
            seed=seed0 + i))
    return jobs


def voice_list(n, espeak_bases, espeak_variants, flite_voices, rng, flite_frac=0.25):
    out = []
    for _ in range(n):
        if rng.random() < flite_frac:
            out.append(("flite", flite_voices[rng.integers(len(flite_voices))]))
        else:
            out.append(("espeak", espeak_bases[rng.integers(len(espeak_bases))]
                        + espeak_variants[rng.integers(len(espeak_variants))]))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="/work/shared/data")
    ap.add_argument("--out", default=os.path.join(HERE, "data_gen"))
    ap.add_argument("--test-out", default=os.path.join(ROOT, "experiments", "data", "default_eval"))
    ap.add_argument("--n-train", type=int, default=2000)
    ap.add_argument("--n-test", type=int, default=200)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1234)
    args = ap.parse_args()
    t0 = time.time()
    rng = np.random.default_rng(args.seed)

    cathy = [json.loads(l) for l in open(os.path.join(args.data, "cathy", "manifest.jsonl"))]
    cathy_heldout = {normalize(d["text"]) for d in cathy if d["split"] != "train"}
    cathy_train = {normalize(d["text"]) for d in cathy if d["split"] == "train"}

    sents = load_sentences(os.path.join(args.data, "text", "lj_sentences.txt"))
    # drop anything that collides with cathy text at all (dev/test must never be trained on)
    sents = [s for s in sents if s[1] not in cathy_heldout and s[1] not in cathy_train]
    # unique normalized sentences
    seen, uniq = set(), []
    for s in sents:
        if s[1] not in seen:
            seen.add(s[1]); uniq.append(s)
    order = rng.permutation(len(uniq))
    uniq = [uniq[i] for i in order]
    nw = lambda s: len(s[1].split())
    test_pool = [s for s in uniq if 3 <= nw(s) <= 7]
    test = test_pool[:args.n_test]
    test_set = {s[1] for s in test}
    train = [s for s in uniq if s[1] not in test_set and 4 <= nw(s) <= 16][:args.n_train]
    # the held-out texts of the test set and of cathy dev/test never occur in training text
    train_norm = {s[1] for s in train}
    assert not (train_norm & test_set)
    assert not (train_norm & cathy_heldout)
    assert not (cathy_train & test_set)

    os.makedirs(os.path.join(args.out, "flac"), exist_ok=True)
    os.makedirs(os.path.join(args.test_out, "flac"), exist_ok=True)
    test_jobs = make_jobs(test, voice_list(len(test), ESPEAK_TEST, ESPEAK_TEST_VARIANTS, FLITE_TEST, rng),
                          os.path.join(args.test_out, "flac"), rng, "test", 10 ** 6, reverb_p=0.2, noise_p=0.1)
    train_jobs = make_jobs(train, voice_list(len(train), ESPEAK_TRAIN, ESPEAK_TRAIN_VARIANTS, FLITE_TRAIN, rng),
                           os.path.join(args.out, "flac"), rng, "train", 0)

    for jobs, man_dir, split in [(test_jobs, args.test_out, "test"), (train_jobs, args.out, "train")]:
        with Pool(args.jobs) as pool:
            res = pool.map(synth_one, jobs, chunksize=8)
        n = 0
        with open(os.path.join(man_dir, "manifest.jsonl"), "w") as f:
            for job, r in zip(jobs, res):
                if r is None:
                    continue
                n += 1
                f.write(json.dumps({"id": job["id"], "audio_filepath": os.path.relpath(r[0], man_dir),
                                    "duration": round(r[1], 3), "text": job["text"], "speaker": job["voice"],
                                    "split": split}) + "\n")
        print("%s: %d utterances, %.1f s elapsed" % (split, n, time.time() - t0), flush=True)
    # record the held-out text for the leakage checks in train.py
    with open(os.path.join(args.out, "heldout_texts.txt"), "w") as f:
        for s in sorted(test_set | cathy_heldout):
            f.write(s + "\n")
    print("done in %.1f s" % (time.time() - t0))


if __name__ == "__main__":
    main()
