#!/usr/bin/python3
"""Synthetic speech for the teacher recipe.

LJ sentences (and clauses of the longer ones) spoken by espeak-ng voice/variant combinations, flite
voices and Festival voices (kal/ked diphone, slt HTS), with rate/pitch/duration variation, augmented
(speed 0.9/1.0/1.1, pitch shift, reverberation, band-limiting, additive noise at random SNR: white,
pink, brown or babble mixed from other synthetic utterances), written as 16 kHz mono FLAC with
NeMo-style JSONL manifests.  Whole voices are held out for the synthetic test set, which is written (short
sentences, ~200 utterances) to experiments/data/default_eval/ (commit-ready); the training part
goes to a gitignored folder (default experiments/teacher/data_gen/).

No cathy dev/test sentence and no synthetic-test sentence (of this run's test set and of the
committed experiments/data/default_eval) appears in any training text (asserted).

  /usr/bin/python3 experiments/teacher/gen_data.py --data /work/shared/data --n-train 2000 --n-test 200
  # keep the committed eval set; as many utterances as 20 minutes allow:
  /usr/bin/python3 experiments/teacher/gen_data.py --n-train 40000 --test-out /tmp/deval --time-budget 1200
"""
import argparse
import json
import os
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
# more espeak-ng variants (training only; +f5 +m5 +m7 stay test-only)
ESPEAK_EXTRA_VARIANTS = ["+m6", "+m8", "+klatt2", "+klatt3", "+klatt4", "+klatt5", "+klatt6", "+Alex",
                         "+Andy", "+annie", "+Denis", "+edward", "+Gene", "+grandma", "+grandpa", "+iven",
                         "+john", "+linda", "+max", "+Michael", "+paul", "+quincy", "+rob", "+shelby",
                         "+steph", "+travis", "+victor", "+zac", "+whisper", "+whisperf"]
ESPEAK_TEST = ["en-029", "en-gb-x-gbcwmd"]
ESPEAK_TEST_VARIANTS = ["", "+f5", "+m5", "+m7"]
FLITE_TRAIN = ["awb", "slt", "kal16", "kal"]  # kal: the 8 kHz diphone voice (band-limited speech)
FLITE_TEST = ["rms"]
FESTIVAL_TRAIN = ["kal_diphone", "ked_diphone", "cmu_us_slt_arctic_hts"]  # festvox-* packages

OK_CHARS = re.compile(r"^[A-Za-z ,.;:'\"?!\-]+$")
SPEEDS = (0.9, 1.0, 1.1)

_BABBLE = None  # int16 babble track, loaded once per worker (init_worker)


def init_worker(babble_path):
    global _BABBLE
    _BABBLE = np.load(babble_path).astype(np.float32) if babble_path and os.path.exists(babble_path) else None


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


def clauses(raw, lo=4, hi=16):
    """Split a long sentence at , ; : into clauses, merging neighbours into pieces of lo..hi words."""
    parts = [p.strip() for p in re.split(r"(?<=[,;:])\s+", raw) if p.strip()]
    out, cur = [], []
    for p in parts:
        if cur and len(normalize(" ".join(cur + [p])).split()) > hi:
            out.append(" ".join(cur)); cur = []
        cur.append(p)
    if cur:
        out.append(" ".join(cur))
    res = []
    for c in out:
        c = c.rstrip(",;: ")
        n = normalize(c)
        if lo <= len(n.split()) <= hi:
            res.append((c, n))
    return res


def tts(job):
    """Run the job's synthesizer. Returns (sox input args, stdin bytes or None, temp file or None)."""
    if job["kind"] == "espeak":
        wav = subprocess.run(["espeak-ng", "-v", job["voice"], "-s", str(job["rate"]), "-p",
                              str(job["espeak_pitch"]), "--stdout", job["text"]],
                             check=True, capture_output=True).stdout
        return ["-t", "wav", "-"], wav, None
    tmp = job["out"] + ".tmp.wav"
    if job["kind"] == "flite":
        subprocess.run(["flite", "-voice", job["voice"], "-t", job["text"], "-o", tmp],
                       check=True, capture_output=True)
    elif not os.path.exists(tmp):  # festival (normally pre-synthesized by festival_batch)
        festival_batch([job])
    return [tmp], None, tmp


def festival_batch(jobs):
    """Synthesize festival jobs (one voice) in one festival process (its start-up costs more than an
    utterance): writes each job's out + '.tmp.wav'. Duration_Stretch varies the speaking rate."""
    lines = ["(voice_%s)" % jobs[0]["voice"]]
    for j in jobs:
        assert j["voice"] == jobs[0]["voice"]
        text = j["text"].replace("\\", " ").replace('"', "'")
        lines.append("(Parameter.set 'Duration_Stretch %.2f)" % j["stretch"])
        lines.append('(utt.save.wave (utt.synth (Utterance Text "%s")) "%s" \'riff)' % (text, j["out"] + ".tmp.wav"))
    script = jobs[0]["out"] + ".scm"
    with open(script, "w") as f:
        f.write("\n".join(lines) + "\n")
    try:
        subprocess.run(["festival", "-b", script], check=True, capture_output=True)
    finally:
        os.remove(script)


def synth_unit(unit):
    """A list of jobs (festival jobs of one voice are synthesized together) -> list of synth_one results."""
    if unit[0]["kind"] == "festival":
        try:
            festival_batch(unit)
        except subprocess.CalledProcessError as e:
            print("festival batch failed", e.stderr[:200], file=sys.stderr)
    return [synth_one(j) for j in unit]


def make_units(jobs, batch=12):
    """Group jobs into work units: single espeak/flite jobs; festival jobs by voice, batch at a time."""
    units, pending = [], {}
    for j in jobs:
        if j["kind"] != "festival":
            units.append([j])
            continue
        p = pending.setdefault(j["voice"], [])
        p.append(j)
        if len(p) == batch:
            units.append(p)
            pending[j["voice"]] = []
    units += [p for p in pending.values() if p]
    return units


def add_noise(x, job, rng):
    """Additive noise at job['snr'] dB: white, pink, brown, or babble (a random stretch of the babble
    track mixed from other synthetic utterances); 'legacy' (the test set's): white or brown, 1:1."""
    p = float(np.mean(x ** 2)) + 1e-9
    kind = job["noise"]
    if kind == "babble" and _BABBLE is not None and _BABBLE.size > x.size:
        a = int(rng.integers(0, _BABBLE.size - x.size))
        noise = _BABBLE[a:a + x.size].copy()
    else:
        noise = rng.standard_normal(x.size).astype(np.float32)
        if kind in ("pink", "babble"):  # babble without a track falls back to pink
            spec = np.fft.rfft(noise)
            spec[1:] /= np.sqrt(np.arange(1, spec.size))  # 1/f power
            spec[0] = 0
            noise = np.fft.irfft(spec, n=x.size).astype(np.float32)
        elif kind == "brown" or (kind == "legacy" and rng.random() < 0.5):  # legacy: white or brown, 1:1
            noise = np.cumsum(noise) * 0.05
            noise -= np.convolve(noise, np.ones(400) / 400, mode="same")
    noise *= np.sqrt(p / (np.mean(noise ** 2) + 1e-9) / (10 ** (job["snr"] / 10)))
    return x + noise


def synth_one(job):
    """job: dict(kind, voice, text, out, speed, pitch, reverb, band, noise, snr, seed). Returns (out, dur) or None."""
    rng = np.random.default_rng(job["seed"])
    tmp = None
    try:
        src, wav, tmp = tts(job)
        effects = ["speed", "%.3f" % job["speed"], "pitch", str(job["pitch"])]
        if job["reverb"] > 0:
            effects += ["reverb", str(job["reverb"]), "50", str(job["room"])]
        effects += ["rate", "16000", "channels", "1"]
        if job["band"]:
            effects += job["band"]
        effects += ["norm", "-3"]
        raw = subprocess.run(["sox"] + src + ["-t", "raw", "-e", "signed", "-b", "16", "-c", "1", "-"] + effects,
                             input=wav, check=True, capture_output=True).stdout
        x = np.frombuffer(raw, dtype=np.int16).astype(np.float32)
        if x.size < 1600:
            return None
        # trim leading/trailing near-silence to at most 0.25 s
        idx = np.nonzero(np.abs(x) > 300)[0]
        if idx.size == 0:
            return None
        x = x[max(0, idx[0] - 4000):min(x.size, idx[-1] + 4000)]
        if job["noise"]:
            x = add_noise(x, job, rng)
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
    finally:
        if tmp and os.path.exists(tmp):
            os.remove(tmp)


def band_limit(rng):
    """A random band limitation (sox effects): telephone band, low-pass, or high-pass."""
    r = rng.random()
    if r < 0.4:
        return ["sinc", "%d-%d" % (rng.integers(200, 400), rng.integers(3200, 3800))]
    if r < 0.8:
        return ["sinc", "-%d" % rng.integers(2500, 6000)]
    return ["sinc", "%d" % rng.integers(150, 500)]


def make_jobs(sentences, voices, out_dir, rng, split, seed0, reverb_p=0.3, noise_p=0.5, band_p=0.0,
              babble_p=0.0, discrete_speed=False):
    jobs = []
    for i, ((raw, norm), (kind, voice)) in enumerate(zip(sentences, voices)):
        uid = "synth_%s_%05d" % (split, i)
        job = dict(
            id=uid, kind=kind, voice=voice, text=raw, norm=norm,
            out=os.path.join(out_dir, uid + ".flac"),
            rate=int(rng.integers(140, 200)), espeak_pitch=int(rng.integers(30, 70)),
            speed=float(rng.uniform(0.9, 1.1)), pitch=int(rng.integers(-200, 200)),
            reverb=int(rng.integers(10, 60)) if rng.random() < reverb_p else 0,
            snr=float(rng.uniform(10, 30)) if rng.random() < noise_p else None,
            seed=seed0 + i)
        job["noise"] = "legacy" if job["snr"] is not None else None
        job["room"], job["band"], job["stretch"] = 100, None, 1.0
        if discrete_speed:  # the training recipe: speed 0.9/1.0/1.1, wider SNR, more augmentation kinds
            job["speed"] = float(SPEEDS[rng.integers(3)])
            job["stretch"] = float(rng.uniform(0.85, 1.25))
            job["room"] = int(rng.integers(20, 100))
            job["band"] = band_limit(rng) if rng.random() < band_p else None
            if job["snr"] is not None:
                job["snr"] = float(rng.uniform(3, 30))
                job["noise"] = "babble" if rng.random() < babble_p else ["white", "pink", "brown"][rng.integers(3)]
        jobs.append(job)
    return jobs


def voice_list(n, espeak_bases, espeak_variants, flite_voices, rng, flite_frac=0.25, festival_voices=(),
               festival_frac=0.0):
    out = []
    for _ in range(n):
        if festival_voices and rng.random() < festival_frac:
            out.append(("festival", festival_voices[rng.integers(len(festival_voices))]))
        elif rng.random() < flite_frac:
            out.append(("flite", flite_voices[rng.integers(len(flite_voices))]))
        else:
            out.append(("espeak", espeak_bases[rng.integers(len(espeak_bases))]
                        + espeak_variants[rng.integers(len(espeak_variants))]))
    return out


def make_babble(sentences, path, rng, jobs_n, seconds=120.0):
    """A babble track: 4 streams of clean synthetic training-voice utterances, overlapped and summed."""
    tmp_dir = path + ".d"
    os.makedirs(tmp_dir, exist_ok=True)
    n = 48
    voices = voice_list(n, ESPEAK_TRAIN, ESPEAK_TRAIN_VARIANTS, FLITE_TRAIN, rng, flite_frac=0.3)
    jobs = make_jobs(sentences[:n], voices, tmp_dir, rng, "babble", 5 * 10 ** 6, reverb_p=0.0, noise_p=0.0)
    with Pool(jobs_n) as pool:
        res = [r for r in pool.map(synth_one, jobs) if r]
    waves = []
    for out, _ in res:
        raw = subprocess.run(["sox", out, "-t", "raw", "-e", "signed", "-b", "16", "-"], check=True,
                             capture_output=True).stdout
        waves.append(np.frombuffer(raw, dtype=np.int16).astype(np.float32))
        os.remove(out)
    os.rmdir(tmp_dir)
    total = int(seconds * 16000)
    track = np.zeros(total, np.float32)
    for s in range(4):
        pos = int(rng.integers(0, 16000))
        stream = np.zeros(total, np.float32)
        for k in rng.permutation(len(waves)):
            w = waves[k]
            if pos >= total:
                break
            m = min(w.size, total - pos)
            stream[pos:pos + m] += w[:m]
            pos += m + int(rng.integers(0, 4000))
        track += stream
    track *= 8000.0 / (np.sqrt(np.mean(track ** 2)) + 1e-9)
    np.save(path, np.clip(track, -32000, 32000).astype(np.int16))


def write_jobs(jobs, man_dir, split, n_jobs, babble, t0, budget, man_name="manifest.jsonl"):
    """Synthesize jobs in a pool, appending manifest lines as results arrive; stop when budget (seconds
    since t0, 0: none) runs out. Returns (utterances, seconds of audio, per-source seconds)."""
    n, secs, per_src = 0, 0.0, {}
    with Pool(n_jobs, initializer=init_worker, initargs=(babble,)) as pool, \
            open(os.path.join(man_dir, man_name), "w") as f:
        units = make_units(jobs)
        pairs = ((j, r) for unit, res in zip(units, pool.imap(synth_unit, units, chunksize=2))
                 for j, r in zip(unit, res))
        for job, r in pairs:
            if r is not None:
                n += 1
                secs += r[1]
                per_src[job["kind"]] = per_src.get(job["kind"], 0.0) + r[1]
                f.write(json.dumps({"id": job["id"], "audio_filepath": os.path.relpath(r[0], man_dir),
                                    "duration": round(r[1], 3), "text": job["text"], "speaker": job["voice"],
                                    "source": job["kind"], "split": split}) + "\n")
                if n % 500 == 0:
                    f.flush()
                    print("%s: %d utterances, %.2f h, %.1f s elapsed" % (split, n, secs / 3600, time.time() - t0),
                          flush=True)
            if budget and time.time() - t0 > budget:
                print("time budget reached", flush=True)
                pool.terminate()
                break
    return n, secs, per_src


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="/work/shared/data")
    ap.add_argument("--out", default=os.path.join(HERE, "data_gen"))
    ap.add_argument("--test-out", default=os.path.join(ROOT, "experiments", "data", "default_eval"))
    ap.add_argument("--committed-test", default=os.path.join(ROOT, "experiments", "data", "default_eval",
                                                              "manifest.jsonl"),
                    help="its sentences are held out from training too (kept when --test-out is elsewhere)")
    ap.add_argument("--n-train", type=int, default=2000)
    ap.add_argument("--n-test", type=int, default=200)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--time-budget", type=float, default=0, help="seconds; stop generating training audio then")
    ap.add_argument("--festival-frac", type=float, default=0.3)
    ap.add_argument("--flite-frac", type=float, default=0.3, help="of the non-Festival utterances")
    ap.add_argument("--noise-p", type=float, default=0.5)
    ap.add_argument("--babble-p", type=float, default=0.35, help="of the noisy utterances")
    ap.add_argument("--reverb-p", type=float, default=0.3)
    ap.add_argument("--band-p", type=float, default=0.2)
    ap.add_argument("--manifest-name", default="manifest.jsonl")
    args = ap.parse_args()
    t0 = time.time()
    rng = np.random.default_rng(args.seed)

    cathy = [json.loads(l) for l in open(os.path.join(args.data, "cathy", "manifest.jsonl"))]
    cathy_heldout = {normalize(d["text"]) for d in cathy if d["split"] != "train"}
    cathy_train = {normalize(d["text"]) for d in cathy if d["split"] == "train"}
    committed_test = set()
    if args.committed_test and os.path.exists(args.committed_test):
        committed_test = {normalize(json.loads(l)["text"]) for l in open(args.committed_test)}

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
    banned = test_set | committed_test | cathy_heldout | cathy_train
    train = [s for s in uniq if s[1] not in banned and 4 <= nw(s) <= 16]
    # more text variety: clauses of the longer sentences (no duplicates, nothing held out)
    tseen = {s[1] for s in train}
    for s in uniq:
        if nw(s) > 16:
            for c in clauses(s[0]):
                if c[1] not in banned and c[1] not in tseen:
                    tseen.add(c[1]); train.append(c)
    n_unique = len(train)
    # the training set is drawn from its own generator: the test set's draws (voices, augmentation)
    # stay those the committed experiments/data/default_eval was generated with
    rng_train = np.random.default_rng([args.seed, 1])
    order = rng_train.permutation(n_unique)
    train = [train[i] for i in order]
    train = (train * (args.n_train // max(1, n_unique) + 1))[:args.n_train]  # repeats get other voices
    babble_text = train[-48:] if len(train) > 48 else train
    # the held-out texts of the test set and of cathy dev/test never occur in training text
    train_norm = {s[1] for s in train}
    assert not (train_norm & test_set)
    assert not (train_norm & committed_test)
    assert not (train_norm & cathy_heldout)
    assert not (cathy_train & test_set)
    print("training text: %d unique sentences/clauses, %d utterances planned" % (n_unique, len(train)), flush=True)

    os.makedirs(os.path.join(args.out, "flac"), exist_ok=True)
    os.makedirs(os.path.join(args.test_out, "flac"), exist_ok=True)
    test_jobs = make_jobs(test, voice_list(len(test), ESPEAK_TEST, ESPEAK_TEST_VARIANTS, FLITE_TEST, rng),
                          os.path.join(args.test_out, "flac"), rng, "test", 10 ** 6, reverb_p=0.2, noise_p=0.1)
    train_voices = voice_list(len(train), ESPEAK_TRAIN, ESPEAK_TRAIN_VARIANTS + ESPEAK_EXTRA_VARIANTS,
                              FLITE_TRAIN, rng_train, flite_frac=args.flite_frac, festival_voices=FESTIVAL_TRAIN,
                              festival_frac=args.festival_frac)
    train_jobs = make_jobs(train, train_voices, os.path.join(args.out, "flac"), rng_train, "train", 0,
                           reverb_p=args.reverb_p, noise_p=args.noise_p, band_p=args.band_p,
                           babble_p=args.babble_p, discrete_speed=True)
    voices_used = {j["voice"] for j in train_jobs}
    test_voices = {j["voice"] for j in test_jobs}
    assert not (voices_used & test_voices), "a test voice is used for training"
    assert not any(v.startswith(tuple(ESPEAK_TEST)) or v in FLITE_TEST for v in voices_used)

    write_jobs(test_jobs, args.test_out, "test", args.jobs, None, t0, 0)
    print("test: done, %.1f s elapsed" % (time.time() - t0), flush=True)
    babble = os.path.join(args.out, "babble.npy")
    if not train_jobs:
        return
    make_babble(babble_text, babble, rng_train, args.jobs)
    print("babble track: %.1f s elapsed" % (time.time() - t0), flush=True)
    n, secs, per_src = write_jobs(train_jobs, args.out, "train", args.jobs, babble, t0, args.time_budget,
                                  args.manifest_name)
    print("train: %d utterances, %.2f h (%s), %.1f s elapsed" % (
        n, secs / 3600, ", ".join("%s %.2f h" % (k, v / 3600) for k, v in sorted(per_src.items())),
        time.time() - t0), flush=True)
    # record the held-out text for the leakage checks in train.py
    with open(os.path.join(args.out, "heldout_texts.txt"), "w") as f:
        for s in sorted(test_set | committed_test | cathy_heldout):
            f.write(s + "\n")
    print("done in %.1f s" % (time.time() - t0))


if __name__ == "__main__":
    main()
